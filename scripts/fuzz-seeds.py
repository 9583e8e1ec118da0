#!/usr/bin/env python3
"""Writes the starting corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's own
fixtures, plus a few small hand-made files. Run by scripts/fuzz.sh; needs only the standard library
(gzip) and the `zstd` command when present. The corpora are not committed: they are regenerated."""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
OUTPUT = os.path.join(ROOT, "tests", "fixtures", "fuzz", "output")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def lines():
    docs = [
        {"text": "The knot is tied.\nUntie it."},
        {"text": "漢字かなカナ 🙂 \u00e9\u0301", "id": 7},
        {"meta": {"lang": "en"}, "text": "nested and \"quoted\""},
        {"text": ""},
        {"text": None},
        {"text": 12},
        {"other": "no text key"},
    ]
    out = [json.dumps(d, ensure_ascii=False).encode() for d in docs]
    out.append(rb'{"text": "escapes \ud83d\ude42 \n\t\u00e9"}')
    out.append(b'{"text": "unterminated')
    out.append(b'{"text": "bad \\ud800 surrogate"}')
    out.append(b'\xff\xfe not utf-8')
    return out


def text_seeds():
    for i, line in enumerate(lines()):
        put("jsonl_line", f"line{i}", line)
    body = b"\n".join(lines()) + b"\n"
    put("text_file", "plain.jsonl", body)
    put("text_file", "crlf.jsonl", body.replace(b"\n", b"\r\n"))
    put("text_file", "gzip.jsonl.gz", gzip.compress(body))
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c"], input=body, capture_output=True, check=True)
        put("text_file", "zstd.jsonl.zst", z.stdout)
        put("text_file", "zstd-truncated", z.stdout[:-5])
    put("text_file", "gzip-truncated", gzip.compress(body)[:-9])


def shard_seeds():
    for name in ["tokens", "loss_mask"]:
        idx = open(os.path.join(OUTPUT, name + ".idx"), "rb").read()
        binlen = os.path.getsize(os.path.join(OUTPUT, name + ".bin"))
        put("megatron_idx", name, struct.pack("<H", binlen) + idx)
        put("npy", name, open(os.path.join(OUTPUT, name + ".npy"), "rb").read())
    ends = [3, 10, 10, 20]
    put("datatrove_index", "u16", struct.pack("<H", 40) + struct.pack("<4Q", *ends))
    put("datatrove_index", "u32", struct.pack("<H", 80) + struct.pack("<4Q", *ends))
    put("datatrove_index", "empty", b"\x00\x00")


def tiny_byte_level():
    """A byte-level BPE over the 256 byte symbols with a handful of merges."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    syms = [chr(c) for c in cs]
    vocab = {s: i for i, s in enumerate(syms)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    pattern = r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    return {
        "version": "1.0",
        "added_tokens": [
            {"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


def tiny_spm():
    """A SentencePiece-style BPE with byte fallback and `Prepend ▁`."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for s in ["▁", "t", "h", "e", "a", "n", "d", "th", "▁th", "▁the", "an", "▁an", "▁and"]:
        vocab[s] = len(vocab)
    merges = [["t", "h"], ["▁", "th"], ["▁th", "e"], ["a", "n"], ["▁", "an"], ["▁an", "d"]]
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for c, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2)]]
    return {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def tokenizer_seeds():
    put("tokenizer_json", "tiny-byte-level.json", json.dumps(tiny_byte_level(), ensure_ascii=False).encode())
    put("tokenizer_json", "tiny-spm.json", json.dumps(tiny_spm(), ensure_ascii=False).encode())
    fixtures = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
    for name in sorted(os.listdir(fixtures)):
        path = os.path.join(fixtures, name, "tokenizer.json")
        if os.path.exists(path) and os.path.getsize(path) < 200_000:
            put("tokenizer_json", name + ".json", open(path, "rb").read())


def output_seeds():
    for i, name in enumerate(sorted(os.listdir(OUTPUT))):
        put("output_dir", name, bytes([i]) + open(os.path.join(OUTPUT, name), "rb").read())


def main():
    targets = sys.argv[1:]
    for t in targets or []:
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)
    text_seeds()
    shard_seeds()
    tokenizer_seeds()
    output_seeds()


if __name__ == "__main__":
    main()
