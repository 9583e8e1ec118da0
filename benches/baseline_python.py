#!/usr/bin/env python3
"""The baseline `utk augment` is measured against: what a user would write in Python.

Hugging Face `tokenizers` (Tokenizer.from_file + encode_batch_fast, Rust underneath, rayon
threads) over the same JSONL(.zst) documents in stream order, in batches; the end-of-document
token appended to every document; plain packing into windows of exactly --seq-len tokens with
numpy (concatenate and cut, no augmentation, last window padded); windows written as one raw
int32 file. Nothing is kept in memory beyond one batch and one partial window.

Tokenizer settings match utk's defaults so the token counts can be compared exactly:
add_special_tokens=False, tok.encode_special_tokens = True (text spelling <|endoftext|> stays
ordinary text), padding and truncation off, EOD = <|endoftext|> appended per document.

Threads: the tokenizers library sizes its rayon pool from RAYON_NUM_THREADS when it is first
used, so --threads sets that variable *before* `tokenizers` is imported (and sets
TOKENIZERS_PARALLELISM=true so batch encoding runs in parallel).

Prints one JSON object on stdout: documents, input_tokens, windows, seconds, tokens_per_s, ...
Run by benches/augment.sh; by hand:

    python3 benches/baseline_python.py --tokenizer qwen3/tokenizer.json --threads 2 \
        --out /tmp/windows.bin corpus.jsonl.zst
"""

import argparse
import io
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="JSONL files, plain or .zst (detected by magic bytes)")
    p.add_argument("--tokenizer", required=True, help="Hugging Face tokenizer.json")
    p.add_argument("--seq-len", type=int, default=131072, help="window length in tokens")
    p.add_argument("--threads", type=int, default=2, help="RAYON_NUM_THREADS for tokenizers")
    p.add_argument("--batch-bytes", type=int, default=8 << 20,
                   help="text per encode_batch_fast call (utk also uses 8 MiB batches)")
    p.add_argument("--text-key", default="text")
    p.add_argument("--eod-token", default="<|endoftext|>")
    p.add_argument("--out", required=True, help="packed windows, raw little-endian int32")
    p.add_argument("--doc-tokens", help="optional: write per-document token counts (uint64, EOD "
                   "included) here, to compare with utk's provenance.docs")
    return p.parse_args()


ARGS = parse_args()
# Must happen before the first import of tokenizers: its rayon pool reads this once.
os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
os.environ["TOKENIZERS_PARALLELISM"] = "true"

import numpy as np  # noqa: E402
import zstandard  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def open_lines(path):
    """Binary line iterator (split on b"\\n" only, like utk), decompressing zstd."""
    raw = open(path, "rb")
    head = raw.read(4)
    raw.seek(0)
    if head == ZSTD_MAGIC:
        # read_across_frames: concatenated .zst files are one stream, as for `zstd -d`.
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(stream, 1 << 20)
    return raw


def batches(paths, key, batch_bytes):
    batch, size = [], 0
    for path in paths:
        with open_lines(path) as f:
            for line in f:
                if not line.strip():
                    continue
                text = json.loads(line)[key]
                batch.append(text)
                size += len(text) + 64  # same accounting as utk's reader
                if size >= batch_bytes:
                    yield batch
                    batch, size = [], 0
    if batch:
        yield batch


class Packer:
    """Concatenate-and-cut into fixed windows, writing each full window as it completes."""

    def __init__(self, seq_len, out):
        self.seq_len, self.out = seq_len, out
        self.pending, self.pending_len, self.windows = [], 0, 0

    def push(self, arr):
        self.pending.append(arr)
        self.pending_len += len(arr)
        if self.pending_len < self.seq_len:
            return
        buf = np.concatenate(self.pending)
        full = len(buf) // self.seq_len * self.seq_len
        buf[:full].tofile(self.out)
        self.windows += full // self.seq_len
        rest = buf[full:]
        self.pending, self.pending_len = ([rest] if len(rest) else []), len(rest)

    def finish(self, pad_id):
        if self.pending_len:
            buf = np.concatenate(self.pending)
            tail = np.full(self.seq_len, pad_id, dtype=np.int32)
            tail[: len(buf)] = buf
            tail.tofile(self.out)
            self.windows += 1
            return self.seq_len - len(buf)
        return 0


def main():
    a = ARGS
    start = time.perf_counter()
    tok = Tokenizer.from_file(a.tokenizer)
    tok.no_padding()
    tok.no_truncation()
    tok.encode_special_tokens = True
    eod = tok.token_to_id(a.eod_token)
    if eod is None:
        sys.exit(f"{a.eod_token!r} is not a token of {a.tokenizer}")
    eod_arr = np.array([eod], dtype=np.int32)

    docs = tokens = 0
    per_doc = open(a.doc_tokens, "wb") if a.doc_tokens else None
    with open(a.out, "wb") as out:
        packer = Packer(a.seq_len, out)
        for batch in batches(a.inputs, a.text_key, a.batch_bytes):
            encs = tok.encode_batch_fast(batch, add_special_tokens=False)
            counts = np.empty(len(encs), dtype=np.uint64)
            for i, e in enumerate(encs):
                ids = np.array(e.ids, dtype=np.int32)
                packer.push(ids)
                packer.push(eod_arr)
                counts[i] = len(ids) + 1
            docs += len(encs)
            tokens += int(counts.sum())
            if per_doc:
                counts.tofile(per_doc)
        pad = packer.finish(eod)
    if per_doc:
        per_doc.close()
    secs = time.perf_counter() - start
    print(json.dumps({
        "tool": "python tokenizers " + __import__("tokenizers").__version__
                + " + numpy " + np.__version__,
        "threads": a.threads,
        "documents": docs,
        "input_tokens": tokens,
        "windows": packer.windows,
        "pad_tokens": pad,
        "seconds": round(secs, 3),
        "tokens_per_s": round(tokens / secs, 1),
    }))


if __name__ == "__main__":
    main()
