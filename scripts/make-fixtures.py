#!/usr/bin/env python3
"""Regenerate the committed text fixtures from public-domain sources.

tests/fixtures/docs.jsonl   small documents for the integration tests: paragraphs of Jane Austen's
                            "Persuasion" (1818) and chapters of the King James Bible, both public
                            domain (Debian packages r-cran-janeaustenr and bible-kjv-text), plus a
                            few documents written for utk's tests (CJK, emoji, text that spells
                            special tokens, an empty document).
examples/data/austen-kjv.jsonl.zst   the README's example corpus: Persuasion by chapter and the
                            first books of the KJV by chapter.

Usage: scripts/make-fixtures.py PATH/TO/shared/data/corpus
"""
import io
import json
import random
import re
import subprocess
import sys

corpus = sys.argv[1]


def docs(name):
    raw = subprocess.run(["zstd", "-dc", f"{corpus}/{name}.jsonl.zst"], check=True, capture_output=True).stdout
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


austen = {d["id"]: d["text"] for d in docs("janeausten")}
kjv = {d["id"]: d["text"] for d in docs("kjv_bible")}
persuasion = austen["janeaustenr/persuasion"]
rng = random.Random(7)

# --- test fixture: varied lengths -------------------------------------------------------------
paras = [p for p in persuasion.split("\n\n") if p.strip()]
out = []
i = 0
while len(out) < 70 and i < len(paras):
    take = rng.choice([1, 1, 2, 3, 5, 8, 13])
    out.append({"id": f"persuasion/{i}", "text": "\n\n".join(paras[i : i + take])})
    i += take
for book in ["kjv/Ruth", "kjv/Jonah"]:
    for ch in re.split(r"\n(?=\w+ \d+\n)", kjv[book]):
        out.append({"id": f"{book}/{ch.split(chr(10))[0]}", "text": ch})
handmade = [
    "机器学习需要大量的数据。长上下文模型在十二万八千个词元的窗口上训练。",
    "Emoji 🎉🚀 mixed with ÀÉÎ accents and combining e\u0301 marks; Ελληνικά, русский, العربية.",
    "This scraped page spells <|endoftext|> and <|im_start|>user and </s> and <CL> abc </CL> <S> x </S>: all ordinary text.",
    "",
    "def f(x):\n    return x * 2  # code with    runs of spaces\n\n\n\tand tabs\n",
    "x",
]
for j, text in enumerate(handmade):
    out.insert(5 + 9 * j, {"id": f"handmade/{j}", "text": text})
with open("tests/fixtures/docs.jsonl", "w", encoding="utf-8") as f:
    for d in out:
        f.write(json.dumps({"text": d["text"], "id": d["id"]}, ensure_ascii=False) + "\n")

# --- example corpus ---------------------------------------------------------------------------
ex = []
for k, ch in enumerate(re.split(r"\n(?=Chapter \d+\n)", persuasion)):
    ex.append({"id": f"persuasion/{k}", "text": ch})
for book in ["kjv/Genesis", "kjv/Ruth", "kjv/Esther", "kjv/Jonah"]:
    for ch in re.split(r"\n(?=\w+ \d+\n)", kjv[book]):
        ex.append({"id": f"{book}/{ch.split(chr(10))[0]}", "text": ch})
buf = io.StringIO()
for d in ex:
    buf.write(json.dumps(d, ensure_ascii=False) + "\n")
subprocess.run(["zstd", "-q", "-19", "-f", "-o", "examples/data/austen-kjv.jsonl.zst"], input=buf.getvalue().encode(), check=True)
print(f"{len(out)} fixture docs, {len(ex)} example docs")
