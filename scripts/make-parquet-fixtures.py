#!/usr/bin/env python3
"""Regenerate the committed parquet fixtures under tests/fixtures/parquet/ (needs pyarrow).

Every file is made from tests/fixtures/docs.jsonl (see scripts/make-fixtures.py), so the tests can
check that the same documents read as parquet and as JSONL give byte-identical windows:

docs.parquet              all documents: `text` (string), `id` (string), `n` (int64); zstd, row
                          groups of 10 rows (several row groups, decoded side by side)
docs-large-snappy.parquet the first 20 documents, `text` as large_string, snappy, one row group
docs-binary-gzip.parquet  the first 20 documents, `text` as binary, gzip, row groups of 7 rows
nested.parquet            the first 30 documents with the text in a struct: `meta` {`lang`, `content`},
                          `text` an int64 (a wrong-type column), `a.b` (a name with a dot) holding
                          the text again; zstd, row groups of 16 rows
nested.jsonl              the same rows as JSON lines (`meta.content`, `a.b`)
nulls.parquet             6 rows of `text` (string) where rows 2 and 4 are null
bad-utf8.parquet          4 rows of `text` (binary) where row 1 is not UTF-8
empty.parquet             a `text` column and no rows
truncated.parquet         docs.parquet cut to its first 3000 bytes (no footer)
corrupt.parquet           the first 20 documents (gzip, row groups of 7 rows, no dictionary, no
                          statistics) with bytes inside its second row group's compressed page
                          overwritten (the footer is intact: the damage shows when rows are read)

Usage: scripts/make-parquet-fixtures.py   (from anywhere; writes next to docs.jsonl)
"""
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

root = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
out = root / "parquet"
out.mkdir(exist_ok=True)
docs = [json.loads(line) for line in (root / "docs.jsonl").read_text("utf-8").splitlines() if line.strip()]
texts = [d["text"] for d in docs]
ids = [d["id"] for d in docs]


def write(name, table, **kwargs):
    pq.write_table(table, out / name, **kwargs)


write(
    "docs.parquet",
    pa.table({"id": ids, "text": texts, "n": list(range(len(docs)))}),
    compression="zstd",
    row_group_size=10,
)
write(
    "docs-large-snappy.parquet",
    pa.table({"text": pa.array(texts[:20], pa.large_string())}),
    compression="snappy",
)
write(
    "docs-binary-gzip.parquet",
    pa.table({"text": pa.array([t.encode() for t in texts[:20]], pa.binary())}),
    compression="gzip",
    row_group_size=7,
)

few = texts[:30]
meta = pa.array(
    [{"lang": "en", "content": t} for t in few],
    pa.struct([("lang", pa.string()), ("content", pa.string())]),
)
write(
    "nested.parquet",
    pa.table({"id": ids[:30], "meta": meta, "text": list(range(30)), "a.b": few}),
    compression="zstd",
    row_group_size=16,
)
with open(out / "nested.jsonl", "w", encoding="utf-8") as f:
    for i, t in zip(ids, few):
        f.write(json.dumps({"id": i, "meta": {"lang": "en", "content": t}, "a.b": t}, ensure_ascii=False) + "\n")

write("nulls.parquet", pa.table({"text": ["zero", "one", None, "three", None, "five"]}))
write("bad-utf8.parquet", pa.table({"text": pa.array([b"ok", b"caf\xe9", b"fine", b"end"], pa.binary())}))
write("empty.parquet", pa.table({"text": pa.array([], pa.string())}))

whole = (out / "docs.parquet").read_bytes()
(out / "truncated.parquet").write_bytes(whole[:3000])

# Overwrite bytes inside the second row group's compressed page (its header is a few dozen bytes),
# keeping the footer.
plain = pa.table({"text": pa.array([t.encode() for t in texts[:20]], pa.binary())})
write("corrupt.parquet", plain, compression="gzip", row_group_size=7, use_dictionary=False, write_statistics=False)
data = bytearray((out / "corrupt.parquet").read_bytes())
chunk = pq.ParquetFile(out / "corrupt.parquet").metadata.row_group(1).column(0)
start = chunk.data_page_offset + 100
data[start : start + 64] = bytes(range(64))
(out / "corrupt.parquet").write_bytes(bytes(data))
print(f"wrote {len(list(out.iterdir()))} files to {out}")
