#!/usr/bin/env python3
"""Derive the fast-encoder test tokenizers from tests/fixtures/tokenizers/qwen3-mini.

The fast encoder supports three pre-tokenizer patterns (Qwen2, cl100k/Llama-3, GPT-2) and
options (NFC or no normalizer, ignore_merges, both merges formats, raw and normalized added
tokens). qwen3-mini covers the Qwen2 pattern; the two files written here are qwen3-mini with the
other patterns and options swapped in, so every supported shape is tested against the
`tokenizers` crate on committed files. Nothing here comes from Llama 3's files: the vocabulary
and merges are Qwen3's (Apache-2.0), see qwen3-mini/PACKAGE_LICENSE.

  cl100k-mini  Split(cl100k / Llama-3 pattern) + ByteLevel; no normalizer; ignore_merges; merges
               as "a b" strings; 2,000 more Qwen3 vocabulary entries than the merges reach (so
               ignore_merges changes ids); an extra normalized, non-special added token.
  gpt2-mini    ByteLevel(use_regex: true) alone (GPT-2 style); NFC; merges as pairs; extra added
               tokens: a normalized one whose content is not NFC, and a special one.
  o200k-mini   Split(o200k pattern, as in gpt-oss and GPT-4o) + ByteLevel; no normalizer;
               ignore_merges (as gpt-oss).
  cl100k-invert-mini  Split(cl100k pattern, behavior Removed, invert true, as OpenAI's
               cl100k_base is often written, e.g. gpt-3.5-turbo's file) + ByteLevel.
  deepseek-mini  DeepSeek-V3's pre-tokenizer: a Sequence of three Splits (digits, CJK, the main
               pattern; the regexes exactly as in DeepSeek-V3's tokenizer.json) + ByteLevel; no
               normalizer; DeepSeek's full-width special tokens added (normalized, as there).
  tekken-mini  Split(Mistral's Tekken pattern: o200k without contractions, single digits) +
               ByteLevel (Mistral NeMo, Pixtral, Mistral Small 3).
  digits-mini  Sequence[Digits(individual_digits), ByteLevel(use_regex: true)] (SmolLM2,
               StarCoder2 style).
  nfkc-mini    the Qwen2 pattern with an NFKC normalizer; a normalized added token whose content
               is not NFKC.

Usage: scripts/make-fast-fixtures.py QWEN3_TOKENIZER_JSON
(QWEN3_TOKENIZER_JSON, the full Qwen3 file, only supplies the extra vocabulary of cl100k-mini.)
"""
import copy
import json
import os
import sys

O200K = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# DeepSeek-V3's three Split regexes as json.load reads them from its tokenizer.json: the kana
# bound is the character U+3040 and the CR/LF in the third are the characters themselves.
DEEPSEEK = ["\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]
TEKKEN = O200K.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)?", "").replace("\\p{N}{1,3}", "\\p{N}")
CL100K = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
root = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizers")
mini = json.load(open(os.path.join(root, "qwen3-mini", "tokenizer.json"), encoding="utf-8"))
full = json.load(open(sys.argv[1], encoding="utf-8"))
nv = len(mini["model"]["vocab"])


def added(t, content, normalized, special):
    ids = [a["id"] for a in t["added_tokens"]]
    t["added_tokens"].append({"id": max(ids) + 1, "content": content, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": normalized, "special": special})


def write(name, t, note):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    json.dump(t, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False,
              separators=(",", ":"))
    open(os.path.join(d, "README.md"), "w").write(note)
    print(name, len(t["model"]["vocab"]), "vocab,", len(t["model"]["merges"]), "merges,",
          len(t["added_tokens"]), "added tokens")


# cl100k-mini
t = copy.deepcopy(mini)
extra = {tok: i for tok, i in full["model"]["vocab"].items() if nv <= i < nv + 2000}
t["model"]["vocab"].update(extra)
nv2 = len(t["model"]["vocab"])
for i, a in enumerate(t["added_tokens"]):
    a["id"] = nv2 + i
t["normalizer"] = None
t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = CL100K
t["model"]["ignore_merges"] = True
t["model"]["merges"] = [f"{a} {b}" for a, b in t["model"]["merges"]]
added(t, "ΩΩ", True, False)
write("cl100k-mini", t, "Test tokenizer derived by scripts/make-fast-fixtures.py from qwen3-mini "
      "(Qwen3 vocabulary and merges, Apache-2.0): the cl100k / Llama-3 split pattern, ignore_merges, "
      "no normalizer.\n")

# gpt2-mini
t = copy.deepcopy(mini)
t["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
added(t, "e\u0301t\u00e9", True, False)
added(t, "<sp>", True, True)
write("gpt2-mini", t, "Test tokenizer derived by scripts/make-fast-fixtures.py from qwen3-mini "
      "(Qwen3 vocabulary and merges, Apache-2.0): GPT-2 style ByteLevel(use_regex) pre-tokenizer, "
      "NFC, normalized added tokens.\n")


def split(regex, behavior="Isolated", invert=False):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": behavior, "invert": invert}


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
NOTE = ("Test tokenizer derived by scripts/make-fast-fixtures.py from qwen3-mini (Qwen3 vocabulary "
        "and merges, Apache-2.0, see qwen3-mini/PACKAGE_LICENSE): ")

# o200k-mini
t = copy.deepcopy(mini)
t["normalizer"] = None
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(O200K), BYTE_LEVEL]}
t["model"]["ignore_merges"] = True
write("o200k-mini", t, NOTE + "the o200k split pattern (gpt-oss, GPT-4o), ignore_merges, no normalizer.\n")

# cl100k-invert-mini
t = copy.deepcopy(mini)
t["normalizer"] = None
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(CL100K, "Removed", True), BYTE_LEVEL]}
write("cl100k-invert-mini", t, NOTE + "the cl100k split pattern written as Split(behavior Removed, "
      "invert true), as gpt-3.5-turbo's file has it; no normalizer.\n")

# deepseek-mini
t = copy.deepcopy(mini)
t["normalizer"] = None
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(r) for r in DEEPSEEK] + [BYTE_LEVEL]}
added(t, "<\uff5cbegin\u2581of\u2581sentence\uff5c>", True, True)
added(t, "<\uff5cend\u2581of\u2581sentence\uff5c>", True, True)
write("deepseek-mini", t, NOTE + "DeepSeek-V3's pre-tokenizer (three Split steps in a Sequence, "
      "regexes exactly as in its tokenizer.json) and its full-width special tokens; no normalizer.\n")

# nfkc-mini
t = copy.deepcopy(mini)
t["normalizer"] = {"type": "NFKC"}
added(t, "\ufb01x", True, False)
write("nfkc-mini", t, NOTE + "the Qwen2 split pattern with an NFKC normalizer, and a normalized added "
      "token whose content is not NFKC.\n")

# tekken-mini
t = copy.deepcopy(mini)
t["normalizer"] = None
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(TEKKEN), BYTE_LEVEL]}
write("tekken-mini", t, NOTE + "Mistral's Tekken split pattern (o200k without contractions, single "
      "digits), no normalizer.\n")

# digits-mini
t = copy.deepcopy(mini)
t["normalizer"] = None
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True}, dict(BYTE_LEVEL, use_regex=True)]}
write("digits-mini", t, NOTE + "Digits(individual_digits) then ByteLevel with its GPT-2 regex "
      "(SmolLM2 / StarCoder2 style), no normalizer.\n")
