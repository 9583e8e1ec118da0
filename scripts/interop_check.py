#!/usr/bin/env python3
"""Checks `utk augment` and `utk tokenize` outputs with the readers trainers use (run by scripts/interop.sh).

Usage: interop_check.py [--megatron] [--olmo-core] [--tokenized PREFIX]... [OUT_DIR...]

The reference for every output is what utk itself wrote as its Megatron dataset, read here by a
small independent reader written from docs/formats (the `.idx` layout), not by utk's code. An
output written without Megatron is compared with a given output of the same configuration that
has it (same input, configuration and seed give the same windows whatever the formats).

Against that reference, window by window and token by token:
- the OLMo files as OLMo-core reads them (headerless array of the manifest's dtype, instance i =
  tokens [i·L, (i+1)·L), label mask as np.bool_);
- the .npy files through np.load(..., mmap_mode="r");
- the examples: UtkNpyDataset (numpy only), the OLMo-core settings;
- with --megatron: megatron-core's IndexedDataset on both datasets, the example UtkWindowDataset
  built through megatron-core's BlendedMegatronDatasetBuilder, Megatron's loss formula on its
  samples, and a torch DataLoader and loss over the npy example;
- with --olmo-core: OLMo-core's NumpyFSLDatasetConfig from the example, every instance.

A `utk tokenize` prefix (--tokenized PREFIX, repeatable) is read by the same independent reader
and checked against its PREFIX.json sidecar (dtype, document count, token count, one document per
sequence) and against the Python `tokenizers` library: document i of the sidecar's JSONL sources
encoded as utk encodes (no post-processor specials, special-token text as ordinary text:
encode_special_tokens=True), plus the sidecar's EOD id. `utk augment PREFIX` must give the same
windows, byte for byte, as `utk augment` on the text with the same flags. With --megatron,
megatron-core's IndexedDataset reads the prefix and every sequence is compared.

Prints one line per check and ends with `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

MEGATRON_CODES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, fn, *args):
        try:
            detail = fn(*args)
        except Exception as e:  # a check that raises has failed, whatever it raised
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            if not isinstance(e, AssertionError):
                traceback.print_exc(limit=3)
            return
        self.passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""))


def read_megatron(prefix):
    """(dtype, lengths, pointers, doc_indices) of PREFIX.idx, checked against PREFIX.bin."""
    raw = open(prefix + ".idx", "rb").read()
    assert raw[:9] == b"MMIDIDX\x00\x00", "bad magic"
    version = int.from_bytes(raw[9:17], "little")
    assert version == 1, f"version {version}"
    dtype = np.dtype(MEGATRON_CODES[raw[17]])
    s = int.from_bytes(raw[18:26], "little")
    d = int.from_bytes(raw[26:34], "little")
    assert len(raw) == 34 + 12 * s + 8 * d, f"idx size {len(raw)} for S={s} D={d}"
    lengths = np.frombuffer(raw, dtype="<i4", count=s, offset=34)
    pointers = np.frombuffer(raw, dtype="<i8", count=s, offset=34 + 4 * s)
    docs = np.frombuffer(raw, dtype="<i8", count=d, offset=34 + 12 * s)
    expect = np.concatenate([[0], np.cumsum(lengths.astype(np.int64) * dtype.itemsize)[:-1]]) if s else []
    assert np.array_equal(pointers, expect), "pointers are not the running byte offsets"
    assert docs[-1] == s, "the last document index is not the sequence count"
    assert os.path.getsize(prefix + ".bin") == int(lengths.sum()) * dtype.itemsize, ".bin size"
    return dtype, lengths, pointers, docs


def compare_windows(what, got, ref):
    """Asserts got == ref window by window; names the first differing window and token."""
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, reference {ref.shape}"
    for w in range(ref.shape[0]):
        diff = np.nonzero(np.asarray(got[w]) != np.asarray(ref[w]))[0]
        if len(diff):
            j = int(diff[0])
            raise AssertionError(
                f"{what}: window {w} token {j}: {got[w][j]} != reference {ref[w][j]} ({len(diff)} tokens differ)"
            )
    return f"{ref.shape[0]} windows x {ref.shape[1]}"


class Output:
    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "manifest.json")) as f:
            self.m = json.load(f)
        self.L = int(self.m["seq_len"])
        self.W = int(self.m["windows"])
        self.files = {f["path"]: f for f in self.m["files"]}
        self.formats = self.m.get("formats", ["megatron"])
        self.name = os.path.basename(path.rstrip("/"))
        self.ref_tokens = None
        self.ref_mask = None

    def same_windows_as(self, other):
        keys = ("config", "vocab_size", "special_tokens", "seq_len", "windows", "counts")
        return all(self.m[k] == other.m[k] for k in keys) and self.m["input"]["sources"] == other.m["input"]["sources"]


def check_manifest(o):
    on_disk = sorted(n for n in os.listdir(o.path) if n != "manifest.json")
    listed = sorted(o.files)
    assert on_disk == listed, f"on disk {on_disk}, listed {listed}"
    for name, f in o.files.items():
        size = os.path.getsize(os.path.join(o.path, name))
        assert size == f["bytes"], f"{name}: {size} bytes, manifest {f['bytes']}"
        assert f["role"] and f["format"], f"{name}: no role or format"
        if f["role"] in ("tokens", "loss_mask"):
            np.dtype(f["dtype"])  # a numpy dtype name
    roles = {(f["format"].split("-")[0], f["role"]) for f in o.m["files"]}
    for fmt in o.formats:
        if fmt == "parquet":
            assert ("parquet", "tokens+loss_mask") in roles, "parquet: windows.parquet missing"
            continue
        key = {"megatron": "megatron", "olmo": "olmo", "npy": "npy"}[fmt]
        assert (key, "tokens") in roles and (key, "loss_mask") in roles, f"{fmt}: token or mask file missing"
    return f"{len(listed)} files, formats {','.join(o.formats)}"


def check_megatron_reference(o):
    tdtype, tlen, _, tdocs = read_megatron(os.path.join(o.path, "tokens"))
    mdtype, mlen, _, _ = read_megatron(os.path.join(o.path, "loss_mask"))
    assert len(tlen) == o.W and len(mlen) == o.W, f"{len(tlen)} sequences for {o.W} windows"
    assert (tlen == o.L).all() and (mlen == o.L).all(), "a sequence is not seq_len long"
    assert list(tdocs) == list(range(o.W + 1)), "not one document per window"
    assert tdtype.name == o.files["tokens.bin"]["dtype"] == o.m["token_dtype"], f"token dtype {tdtype}"
    assert mdtype == np.uint8, f"mask dtype {mdtype}"
    tokens = np.fromfile(os.path.join(o.path, "tokens.bin"), dtype=tdtype.newbyteorder("<")).reshape(o.W, o.L)
    mask = np.fromfile(os.path.join(o.path, "loss_mask.bin"), dtype=np.uint8).reshape(o.W, o.L)
    assert set(np.unique(mask)) <= {0, 1}, "mask values other than 0/1"
    assert int(tokens.max()) < o.m["vocab_size"], "a token id at or past vocab_size"
    o.ref_tokens, o.ref_mask = tokens, mask
    return f"{o.W} windows, {tdtype.name}"


def check_inspect_raw(o):
    """What utk itself reports (`utk inspect --json --raw`) equals what the readers read."""
    utk = os.environ.get("UTK_BIN", "utk")
    for w in range(o.W):
        out = subprocess.run([utk, "inspect", o.path, "--window", str(w), "--json", "--raw"], check=True, capture_output=True, text=True).stdout
        doc = json.loads(out)
        assert doc["tokens"] == o.ref_tokens[w].tolist(), f"window {w}: tokens differ from utk inspect"
        assert doc["mask"] == o.ref_mask[w].tolist(), f"window {w}: mask differs from utk inspect"
    return f"{o.W} windows"


def check_provenance(o):
    """Every span utk reports as content is a target in the reference mask, and spans do not overlap."""
    rec = np.dtype([("doc", "<u8"), ("doc_offset", "<u8"), ("window", "<u4"), ("start", "<u4"), ("len", "<u4"), ("chunk", "<u2"), ("chunks", "<u2")])
    spans = np.fromfile(os.path.join(o.path, "provenance.spans"), dtype=rec)
    covered = np.zeros((o.W, o.L), dtype=np.int32)
    for s in spans:
        w, a, b = int(s["window"]), int(s["start"]), int(s["start"] + s["len"])
        assert b <= o.L and w < o.W, f"span {s} out of range"
        covered[w, a:b] += 1
    assert covered.max() <= 1, "overlapping spans"
    content = covered == 1
    assert (o.ref_mask[content] == 1).all(), "a content token is not a target"
    return f"{len(spans)} spans, {int(content.sum())} content tokens"


def check_olmo_tokens(o):
    f = o.files["tokens.olmo.bin"]
    flat = np.memmap(os.path.join(o.path, "tokens.olmo.bin"), dtype=np.dtype(f["dtype"]).newbyteorder("<"), mode="r")
    assert f["dtype"] in ("uint16", "uint32"), f"dtype {f['dtype']}"
    if o.m["vocab_size"] <= 65536:
        assert f["dtype"] == "uint16", "uint16 would do"
    assert len(flat) == o.W * o.L, f"{len(flat)} tokens for {o.W} x {o.L}"
    # OLMo-core's fixed-length instance i is tokens [i*L, (i+1)*L) of the flat array.
    inst = np.stack([flat[i * o.L:(i + 1) * o.L] for i in range(o.W)]) if o.W else flat.reshape(0, o.L)
    return compare_windows("tokens.olmo.bin", inst, o.ref_tokens) + f", {f['dtype']}"


def check_olmo_mask(o):
    f = o.files["loss_mask.olmo.bin"]
    assert f["dtype"] == "bool", f"dtype {f['dtype']}"
    flat = np.memmap(os.path.join(o.path, "loss_mask.olmo.bin"), dtype=np.bool_, mode="r")
    raw = np.memmap(os.path.join(o.path, "loss_mask.olmo.bin"), dtype=np.uint8, mode="r")
    assert set(np.unique(raw)) <= {0, 1}, "bytes other than 0/1 in an np.bool_ array"
    return compare_windows("loss_mask.olmo.bin", flat.reshape(o.W, o.L), o.ref_mask.astype(np.bool_))


def check_npy(o, name, ref, dtype_expected):
    arr = np.load(os.path.join(o.path, name), mmap_mode="r")
    assert arr.dtype == np.dtype(o.files[name]["dtype"]), f"dtype {arr.dtype}, manifest {o.files[name]['dtype']}"
    if dtype_expected is not None:
        assert arr.dtype == dtype_expected, f"dtype {arr.dtype}"
    assert arr.shape == (o.W, o.L), f"shape {arr.shape}"
    assert arr.offset % 64 == 0, f"data at byte {arr.offset}, not 64-aligned"
    return compare_windows(name, arr, ref) + f", {arr.dtype}"


def check_npy_example(o):
    from torch_npy_dataset import IGNORE_INDEX, UtkNpyDataset

    ds = UtkNpyDataset(o.path)
    assert len(ds) == o.W, f"{len(ds)} samples"
    for w in range(o.W):
        s = ds[w]
        assert np.array_equal(s["input_ids"], o.ref_tokens[w]), f"window {w}: input_ids"
        assert np.array_equal(s["loss_mask"], o.ref_mask[w]), f"window {w}: loss_mask"
        expect = np.where(o.ref_mask[w] == 1, o.ref_tokens[w].astype(np.int64), IGNORE_INDEX)
        assert np.array_equal(s["labels"], expect), f"window {w}: labels"
    return f"{o.W} samples"


def check_parquet(o):
    import pyarrow.parquet as pq

    f = pq.ParquetFile(os.path.join(o.path, "windows.parquet"))
    t = f.read()
    ids_type, mask_type = t.schema.field("input_ids").type, t.schema.field("loss_mask").type
    assert str(ids_type.value_type) == o.files["windows.parquet"]["dtype"], f"input_ids {ids_type}"
    assert str(mask_type.value_type) == "uint8", f"loss_mask {mask_type}"
    ids = np.asarray(t.column("input_ids").combine_chunks().flatten()).reshape(-1, o.L)
    mask = np.asarray(t.column("loss_mask").combine_chunks().flatten()).reshape(-1, o.L)
    compare_windows("input_ids", ids, o.ref_tokens)
    compare_windows("loss_mask", mask, o.ref_mask)
    return f"{t.num_rows} rows in {f.metadata.num_row_groups} row group(s), {ids_type}"


def check_parquet_labels(o):
    from hf_trainer_parquet import IGNORE_INDEX, labels_for

    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(o.path, "windows.parquet"))
    labels = labels_for(t.column("input_ids").to_pylist(), t.column("loss_mask").to_pylist())
    expect = np.where(o.ref_mask == 1, o.ref_tokens.astype(np.int64), IGNORE_INDEX)
    assert np.array_equal(labels, expect), "labels differ from input_ids masked with -100"
    return f"{o.W} windows"


def check_parquet_datasets(o):
    from hf_trainer_parquet import IGNORE_INDEX, load_windows

    ds = load_windows(o.path)
    assert len(ds) == o.W, f"{len(ds)} rows"
    for w in range(o.W):
        s = ds[w]
        assert np.array_equal(s["input_ids"], o.ref_tokens[w]), f"window {w}: input_ids"
        expect = np.where(o.ref_mask[w] == 1, o.ref_tokens[w].astype(np.int64), IGNORE_INDEX)
        assert np.array_equal(s["labels"], expect), f"window {w}: labels"
    return f"{o.W} rows through datasets.load_dataset('parquet')"


def check_olmo_settings(o):
    from olmo_core_config import olmo_settings

    s = olmo_settings(o.path)
    assert s["sequence_length"] == o.L
    (tok,), (mask,) = s["paths"], s["label_mask_paths"]
    assert os.path.getsize(tok) == o.W * o.L * np.dtype(s["dtype"]).itemsize, "token file size"
    assert os.path.getsize(mask) == o.W * o.L, "mask file size"
    assert s["vocab_size"] >= o.m["vocab_size"] and s["eos_token_id"] == o.m["special_tokens"]["eod"]
    return f"dtype {s['dtype']}"


# ---- `utk tokenize` prefixes ------------------------------------------------------------------

# `utk augment` settings run on a tokenized prefix and on its text: the windows must be the same.
AUGMENT_CONFIGS = {
    "L2048": ["-L", "2048"],
    "L1000-shuffle-drop": ["-L", "1000", "--order", "shuffle", "--seed", "7", "--chunks", "2:0.5,5:0.5", "--min-chunk-tokens", "8", "--tail", "drop"],
}
# Byte-identical between the two runs. provenance.docs (where each document came from: a JSONL
# line, an index in the shard) and the manifest's input description rightly differ.
AUGMENT_SAME_FILES = ("tokens.bin", "tokens.idx", "loss_mask.bin", "loss_mask.idx", "provenance.spans")
AUGMENT_SAME_KEYS = ("config", "vocab_size", "special_tokens", "token_dtype", "seq_len", "windows")


class Tokenized:
    """A `utk tokenize` prefix: PREFIX.bin, PREFIX.idx and the PREFIX.json sidecar."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.name = os.path.basename(prefix)
        with open(prefix + ".json") as f:
            self.side = json.load(f)
        self.eod = int(self.side["eod"]["id"])
        self.dtype = None
        self.seqs = None  # the sequences as the independent reader reads them
        self._tokenizer = None

    def eod_flags(self):
        """The flags that chose this prefix's EOD, for an `utk augment` run with its settings."""
        rule = self.side["eod"]["rule"]
        if rule == "--eod-id":
            return ["--eod-id", str(self.eod)]
        if rule == "--eod-token":
            return ["--eod-token", self.side["eod"]["token"]]
        return []

    def tokenizer(self):
        """The sidecar's tokenizer.json in the Python `tokenizers` library, set up as utk documents
        its own: no padding or truncation, special-token text encoded as ordinary text."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = self.side["tokenizer"]
            with open(path, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            assert sha == self.side["tokenizer_sha256"], f"{path}: sha256 {sha}, sidecar {self.side['tokenizer_sha256']}"
            tok = Tokenizer.from_file(path)
            tok.no_padding()
            tok.no_truncation()
            tok.encode_special_tokens = True
            self._tokenizer = tok
        return self._tokenizer

    def max_id(self):
        """The highest id the tokenizer or the EOD can put in the file."""
        return max(max(self.tokenizer().get_vocab(with_added_tokens=True).values()), self.eod)


def read_texts(side):
    """The documents of the sidecar's JSONL sources, in order, and the blank lines skipped."""
    texts, blank = [], 0
    for src in side["sources"]:
        with open(src, "rb") as f:
            magic = f.read(4)
        assert magic[:2] != b"\x1f\x8b" and magic != b"\x28\xb5\x2f\xfd", f"{src}: compressed sources are not read here"
        with open(src, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    blank += 1
                    continue
                texts.append(json.loads(line)[side["text_key"]])
    return texts, blank


def first_difference(got, want):
    """A message naming the first position where two id sequences differ."""
    n = min(len(got), len(want))
    diff = np.nonzero(np.asarray(got[:n], dtype=np.int64) != np.asarray(want[:n], dtype=np.int64))[0]
    j = int(diff[0]) if len(diff) else n
    return f"{len(got)} ids, expected {len(want)}; first difference at {j}: {[int(x) for x in got[j:j + 4]]} vs {[int(x) for x in want[j:j + 4]]}"


def check_tokenized_index(t):
    """The .idx read by the independent reader agrees with the sidecar: dtype, one document per
    sequence, document and token counts, EOD included."""
    with open(t.prefix + ".idx", "rb") as f:
        code = f.read(18)[17]
    dtype, lengths, _, docs = read_megatron(t.prefix)
    side = t.side
    assert dtype == np.dtype(side["dtype"]), f"dtype code {code} ({dtype}), sidecar {side['dtype']}"
    n = int(side["documents"])
    assert len(lengths) == n, f"{len(lengths)} sequences, sidecar {n} documents"
    assert list(docs) == list(range(n + 1)), "document_indices are not 0..N: not one document per sequence"
    assert int(lengths.sum()) == side["tokens"], f"{int(lengths.sum())} tokens, sidecar {side['tokens']}"
    assert (lengths >= 1).all(), "an empty sequence: no room for the EOD"
    flat = np.fromfile(t.prefix + ".bin", dtype=dtype.newbyteorder("<"))
    t.dtype = dtype
    t.seqs = np.split(flat, np.cumsum(lengths)[:-1]) if n else []
    return f"{n} documents, {len(flat)} tokens, {dtype.name} (code {code})"


def check_tokenized_dtype_rule(t):
    """uint16 when every id the file can hold is below 65,500, else int32 (Megatron's rule)."""
    top = t.max_id()
    want = np.dtype(np.uint16 if top + 1 < 65500 else np.int32)
    assert t.dtype == want, f"{t.dtype} for ids up to {top}; the rule gives {want}"
    return f"ids up to {top}: {want.name}"


def check_tokenized_eod(t):
    """Every sequence ends with the sidecar's EOD, and no other token is the EOD."""
    for i, seq in enumerate(t.seqs):
        assert int(seq[-1]) == t.eod, f"sequence {i} ends with {int(seq[-1])}, not the EOD {t.eod}"
        inner = np.nonzero(seq[:-1] == t.eod)[0]
        assert not len(inner), f"sequence {i}: the EOD {t.eod} at token {int(inner[0])} of {len(seq)}"
    return f"EOD {t.eod} ends each of {len(t.seqs)} sequences, nowhere else"


def check_tokenized_ids(t):
    """Document i's ids are the Python `tokenizers` encoding of its text, plus the EOD."""
    import tokenizers

    side = t.side
    assert side["bad_lines"]["count"] == 0, f"{side['bad_lines']['count']} bad lines skipped: documents cannot be paired"
    texts, blank = read_texts(side)
    assert blank == side["blank_lines"], f"{blank} blank lines in the sources, sidecar {side['blank_lines']}"
    assert len(texts) == len(t.seqs), f"{len(texts)} documents in the sources, {len(t.seqs)} sequences"
    tok = t.tokenizer()
    encs = tok.encode_batch(texts, add_special_tokens=False)
    for i, (enc, seq) in enumerate(zip(encs, t.seqs)):
        want = enc.ids + [t.eod]
        if not np.array_equal(seq.astype(np.int64), np.array(want, dtype=np.int64)):
            raise AssertionError(f"document {i} ({texts[i][:40]!r}): {first_difference(seq, want)}")
    # How many documents the setting matters for: they would differ had specials been parsed.
    tok.encode_special_tokens = False
    try:
        parsed = tok.encode_batch(texts, add_special_tokens=False)
    finally:
        tok.encode_special_tokens = True
    spelled = sum(a.ids != b.ids for a, b in zip(encs, parsed))
    return f"{len(texts)} documents, tokenizers {tokenizers.__version__}, {spelled} spelling special tokens"


def check_tokenized_augment(t, config, flags):
    """`utk augment PREFIX` and `utk augment` on the prefix's text, same flags: the same windows."""
    utk = os.environ.get("UTK_BIN", "utk")
    runs = {}
    for kind, inputs in (("shard", [t.prefix]), ("text", t.side["sources"])):
        out = os.path.join(os.path.dirname(os.path.abspath(t.prefix)), f"augment-{t.name}-{config}-{kind}")
        cmd = [utk, "augment", *inputs, "-t", t.side["tokenizer"], "-o", out, "--quiet", "--force", *t.eod_flags(), *flags]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}"
        with open(os.path.join(out, "manifest.json")) as f:
            runs[kind] = (out, json.load(f))
    (shard, ms), (text, mt) = runs["shard"], runs["text"]
    assert ms["input"]["format"] == "megatron", f"the prefix was read as {ms['input']['format']}"
    assert mt["input"]["format"] == "jsonl", f"the text was read as {mt['input']['format']}"
    for k in AUGMENT_SAME_KEYS:
        assert ms[k] == mt[k], f"manifest {k}: {ms[k]} from the prefix, {mt[k]} from the text"
    cs = {k: v for k, v in ms["counts"].items() if k != "input_bytes"}
    ct = {k: v for k, v in mt["counts"].items() if k != "input_bytes"}
    assert cs == ct, f"manifest counts: {cs} from the prefix, {ct} from the text"
    assert ms["windows"] > 0, "no windows"
    for name in AUGMENT_SAME_FILES:
        with open(os.path.join(shard, name), "rb") as f:
            a = f.read()
        with open(os.path.join(text, name), "rb") as f:
            b = f.read()
        if a != b:
            j = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            raise AssertionError(f"{name}: {len(a)} bytes from the prefix, {len(b)} from the text; first difference at byte {j}")
    size = os.path.getsize(os.path.join(shard, "tokens.bin"))
    return f"{ms['windows']} windows, tokens.bin {size} bytes identical ({' '.join(t.eod_flags() + flags)})"


# ---- megatron-core (torch) -------------------------------------------------------------------


def check_indexed_dataset(o, name, ref):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    ds = IndexedDataset(os.path.join(o.path, name), multimodal=False, mmap=True)
    assert len(ds) == o.W, f"{len(ds)} sequences"
    assert list(ds.sequence_lengths) == [o.L] * o.W, "sequence lengths"
    assert list(ds.document_indices) == list(range(o.W + 1)), "document indices"
    got = np.stack([ds[i] for i in range(o.W)]) if o.W else np.zeros((0, o.L))
    return compare_windows(f"IndexedDataset({name})", got, ref) + f", {ds.index.dtype.__name__}"


class IdsOnlyTokenizer:
    """The few tokenizer attributes megatron-core's dataset config reads."""

    def __init__(self, m):
        self.vocab_size = int(m["vocab_size"])
        self.pad = int(m["special_tokens"]["pad"])
        self.eod = int(m["special_tokens"]["eod"])
        self.unique_identifiers = {"class": "IdsOnlyTokenizer", "vocab_size": self.vocab_size}


def megatron_loss(logits, labels, loss_mask):
    """Megatron's GPT loss: per-position cross-entropy against labels, weighted by loss_mask."""
    import torch

    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    return (losses * loss_mask).sum() / loss_mask.sum()


def reference_loss(logits, window, mask, ids):
    """The mean of -log p(window[j] | position j-1) over utk's targets j >= 1, computed directly.

    `ids` are the token ids the logits' classes stand for (the ids of the batch, sorted), which
    keeps the logits small whatever the vocabulary."""
    logp = logits.log_softmax(-1).double().numpy()
    cls = np.searchsorted(ids, window)
    terms = [-logp[b, j - 1, cls[b][j]] for b in range(len(window)) for j in range(1, len(window[b])) if mask[b][j]]
    return float(np.mean(terms))


def compress(labels, ids):
    """Labels as indices into `ids` (negative labels, ignored by the loss, are kept)."""
    import torch

    out = torch.from_numpy(np.searchsorted(ids, labels.clamp(min=0).numpy())).long()
    return torch.where(labels < 0, labels, out)


def check_megatron_example(o):
    import torch
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDatasetConfig
    from megatron_utk_dataset import UtkWindowDataset

    config = GPTDatasetConfig(
        random_seed=1234,
        sequence_length=o.L,
        blend=([o.path], None),
        split="100,0,0",
        tokenizer=IdsOnlyTokenizer(o.m),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,
    )
    epochs = 2
    train, valid, test = BlendedMegatronDatasetBuilder(
        UtkWindowDataset, [epochs * o.W, 0, 0], lambda: True, config
    ).build()
    assert valid is None and test is None
    assert len(train) == epochs * o.W, f"{len(train)} samples for {epochs} epochs of {o.W}"
    seen = np.zeros(o.W, dtype=np.int64)
    pad = o.m["special_tokens"]["pad"]
    positions = torch.arange(o.L)
    for i in range(len(train)):
        w = int(train.order[i])
        s = train[i]
        seen[w] += 1
        window = torch.from_numpy(o.ref_tokens[w].astype(np.int64))
        mask = torch.from_numpy(o.ref_mask[w].astype(np.float32))
        assert torch.equal(s["tokens"], window), f"sample {i} (window {w}): tokens"
        assert torch.equal(s["labels"][:-1], window[1:]) and int(s["labels"][-1]) == pad, f"sample {i}: labels"
        assert torch.equal(s["loss_mask"][:-1], mask[1:]) and float(s["loss_mask"][-1]) == 0.0, f"sample {i}: loss_mask"
        assert torch.equal(s["position_ids"], positions), f"sample {i}: position_ids"
        assert s["tokens"].dtype == torch.long and s["loss_mask"].dtype == torch.float
    assert (seen == epochs).all(), f"windows drawn {seen.min()}..{seen.max()} times, not {epochs}"
    assert float(train[None]["loss_mask"].sum()) == 0.0, "a padding sample counts in the loss"
    # The mask reaches the loss: Megatron's formula on a batch equals the mean over utk's targets.
    batch = torch.utils.data.default_collate([train[i] for i in range(min(4, len(train)))])
    rows = [int(train.order[i]) for i in range(batch["tokens"].shape[0])]
    ids = np.unique(np.concatenate([batch["labels"].numpy().ravel(), o.ref_tokens[rows].ravel()]))
    torch.manual_seed(0)
    logits = torch.randn(len(rows), o.L, len(ids), dtype=torch.float32)
    got = float(megatron_loss(logits, compress(batch["labels"], ids), batch["loss_mask"]))
    want = reference_loss(logits, o.ref_tokens[rows], o.ref_mask[rows], ids)
    assert abs(got - want) < 1e-4 * max(1.0, abs(want)), f"Megatron loss {got} != loss over utk targets {want}"
    return f"{len(train)} samples, loss {got:.4f} == {want:.4f}"


def check_npy_torch(o):
    import torch
    from torch_npy_dataset import UtkNpyDataset, causal_lm_loss

    ds = UtkNpyDataset(o.path)
    batches = list(ds.loader(batch_size=4, shuffle=False))
    assert sum(b["input_ids"].shape[0] for b in batches) == o.W
    b = batches[0]
    assert b["input_ids"].dtype == torch.int64 and b["input_ids"].shape[1] == o.L
    n = b["input_ids"].shape[0]
    ids = np.unique(o.ref_tokens[:n])
    torch.manual_seed(0)
    logits = torch.randn(n, o.L, len(ids))
    got = float(causal_lm_loss(logits, compress(b["labels"], ids)))
    want = reference_loss(logits, o.ref_tokens[:n], o.ref_mask[:n], ids)
    assert abs(got - want) < 1e-4 * max(1.0, abs(want)), f"loss {got} != loss over utk targets {want}"
    return f"{len(batches)} batches, loss {got:.4f} == {want:.4f}"


def check_tokenized_indexed_dataset(t):
    """megatron-core's IndexedDataset reads the prefix as the independent reader does, whole
    sequences and the partial reads GPTDataset makes; its dtype is megatron-core's own choice."""
    from megatron.core.datasets.indexed_dataset import DType, IndexedDataset

    ds = IndexedDataset(t.prefix, multimodal=False, mmap=True)
    n = len(t.seqs)
    assert len(ds) == n, f"{len(ds)} sequences, reference {n}"
    assert list(ds.sequence_lengths) == [len(s) for s in t.seqs], "sequence lengths"
    assert list(ds.document_indices) == list(range(n + 1)), "document indices"
    assert np.dtype(ds.index.dtype) == t.dtype, f"dtype {ds.index.dtype}, reference {t.dtype}"
    optimal = np.dtype(DType.optimal_dtype(t.max_id() + 1))
    assert t.dtype == optimal, f"{t.dtype}, megatron-core's optimal_dtype gives {optimal}"
    for i, ref in enumerate(t.seqs):
        got = ds[i]
        if got.dtype != t.dtype or not np.array_equal(got, ref):
            raise AssertionError(f"sequence {i} ({got.dtype}): {first_difference(got, ref)}")
        if len(ref) > 2:
            part = ds.get(i, offset=1, length=len(ref) - 2)
            assert np.array_equal(part, ref[1:-1]), f"sequence {i}: get(offset=1, length={len(ref) - 2})"
    return f"{n} sequences, {ds.index.dtype.__name__}"


# ---- OLMo-core (torch) -----------------------------------------------------------------------


def check_olmo_core(o, work_dir):
    import torch
    from olmo_core_config import utk_olmo_dataset_config

    ds = utk_olmo_dataset_config(o.path, work_dir=work_dir).build()
    ds.prepare()
    assert len(ds) == o.W, f"{len(ds)} instances for {o.W} windows"
    for i in range(o.W):
        inst = ds[i]
        ids = inst["input_ids"]
        assert torch.equal(ids, torch.from_numpy(o.ref_tokens[i].astype(np.int64)).to(ids.dtype)), f"instance {i}: input_ids"
        lm = inst["label_mask"]
        assert torch.equal(lm.bool(), torch.from_numpy(o.ref_mask[i].astype(np.bool_))), f"instance {i}: label_mask"
    return f"{o.W} instances"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--megatron", action="store_true", help="also check with megatron-core and torch")
    ap.add_argument("--olmo-core", action="store_true", help="also check with OLMo-core and torch")
    ap.add_argument("--datasets", action="store_true", help="also read parquet outputs with Hugging Face datasets")
    ap.add_argument("--tokenized", action="append", default=[], metavar="PREFIX", help="a `utk tokenize` output prefix (repeatable)")
    ap.add_argument("outputs", nargs="*", metavar="OUT_DIR", help="`utk augment` output directories")
    args = ap.parse_intermixed_args()
    if not args.outputs and not args.tokenized:
        ap.error("give at least one OUT_DIR or --tokenized PREFIX")

    r = Report()
    outputs = [Output(p) for p in args.outputs]
    for o in outputs:
        r.check(f"{o.name}: manifest lists every file", check_manifest, o)
        if "megatron" in o.formats:
            r.check(f"{o.name}: megatron reference read", check_megatron_reference, o)
    for o in outputs:
        if o.ref_tokens is None:
            twins = [t for t in outputs if t.ref_tokens is not None and o.same_windows_as(t)]
            if not twins:
                r.check(f"{o.name}: has a reference", lambda: (_ for _ in ()).throw(AssertionError("no Megatron output of the same run given")))
                continue
            o.ref_tokens, o.ref_mask = twins[0].ref_tokens, twins[0].ref_mask
            print(f"     {o.name}: no Megatron output; reference: {twins[0].name} (same configuration)")
            r.check(f"{o.name}: provenance agrees", check_provenance, o)
        else:
            r.check(f"{o.name}: provenance agrees", check_provenance, o)
        r.check(f"{o.name}: utk inspect --json --raw agrees", check_inspect_raw, o)
        wide = o.m["vocab_size"] > 65536
        if "olmo" in o.formats:
            r.check(f"{o.name}: olmo tokens (OLMo-core layout)", check_olmo_tokens, o)
            r.check(f"{o.name}: olmo label mask (np.bool_)", check_olmo_mask, o)
            r.check(f"{o.name}: olmo example settings", check_olmo_settings, o)
        if "npy" in o.formats:
            r.check(f"{o.name}: tokens.npy via np.load", check_npy, o, "tokens.npy", o.ref_tokens, np.dtype("<u4" if wide else "<u2"))
            r.check(f"{o.name}: loss_mask.npy via np.load", check_npy, o, "loss_mask.npy", o.ref_mask, np.dtype("u1"))
            r.check(f"{o.name}: UtkNpyDataset example", check_npy_example, o)
        if "parquet" in o.formats:
            r.check(f"{o.name}: windows.parquet via pyarrow", check_parquet, o)
            r.check(f"{o.name}: hf_trainer_parquet labels", check_parquet_labels, o)
        if args.datasets and "parquet" in o.formats:
            r.check(f"{o.name}: hf_trainer_parquet.load_windows (datasets)", check_parquet_datasets, o)
        if args.megatron and "megatron" in o.formats:
            r.check(f"{o.name}: megatron-core IndexedDataset(tokens)", check_indexed_dataset, o, "tokens", o.ref_tokens)
            r.check(f"{o.name}: megatron-core IndexedDataset(loss_mask)", check_indexed_dataset, o, "loss_mask", o.ref_mask)
            r.check(f"{o.name}: UtkWindowDataset via BlendedMegatronDatasetBuilder", check_megatron_example, o)
        if args.megatron and "npy" in o.formats:
            r.check(f"{o.name}: UtkNpyDataset through a torch DataLoader", check_npy_torch, o)
        if args.olmo_core and "olmo" in o.formats:
            r.check(f"{o.name}: OLMo-core NumpyFSLDatasetConfig", check_olmo_core, o, os.path.join(os.path.dirname(o.path), f"olmo-work-{o.name}"))
    for t in [Tokenized(p) for p in args.tokenized]:
        r.check(f"{t.name}: tokenized index agrees with PREFIX.json", check_tokenized_index, t)
        if t.seqs is None:
            continue
        r.check(f"{t.name}: tokenized dtype by Megatron's rule", check_tokenized_dtype_rule, t)
        r.check(f"{t.name}: EOD ends every document, only there", check_tokenized_eod, t)
        r.check(f"{t.name}: ids == Python tokenizers (encode_special_tokens) + EOD", check_tokenized_ids, t)
        for config, flags in AUGMENT_CONFIGS.items():
            r.check(f"{t.name}: utk augment PREFIX == utk augment text ({config})", check_tokenized_augment, t, config, flags)
        if args.megatron:
            r.check(f"{t.name}: megatron-core IndexedDataset(PREFIX)", check_tokenized_indexed_dataset, t)
    print(f"{r.passed} passed, {r.failed} failed")
    sys.exit(1 if r.failed else 0)


if __name__ == "__main__":
    main()
