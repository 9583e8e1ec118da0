#!/usr/bin/env python3
"""Write tests/fixtures/tricky-strings.jsonl: hand-picked texts for the differential tests of the
fast encoder against the `tokenizers` crate. One JSON object per line: {"case": ..., "text": ...}.
JSON escapes keep control characters and unusual code points readable and intact.
Usage: scripts/make-tricky-strings.py  (writes the file; no inputs)
"""
import json
import os

cases = [
    ("ascii prose", "The quick brown fox jumps over the lazy dog. It's 4:30 p.m., isn't it?"),
    ("ascii punctuation", "!!!??? ... --- ((())) [x] {y} <z> @#$%^&*_+=|\\/~`"),
    ("empty", ""),
    ("one space", " "),
    ("one newline", "\n"),
    ("cjk", "机器学习需要大量的数据。长上下文模型在十二万八千个词元的窗口上训练。"),
    ("classical chinese", "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n\n白日依山尽，黄河入海流。"),
    ("japanese", "日本語のテキストとカタカナ、ひらがな。ｶﾀｶﾅ半角も。"),
    ("korean", "한국어 텍스트와 자모 조합: \u1100\u1161\u11a8 그리고 \u1112\u1161\u11ab."),
    ("emoji", "Emoji 🎉🚀 family 👨‍👩‍👧‍👦 skin 👍🏽 flags 🇺🇸🇯🇵 keycap 1️⃣ ✨"),
    ("mixed scripts", "Ελληνικά, русский, العربية, עברית, हिन्दी, ไทย, and English in one line."),
    ("whitespace runs", "a  b   c    d\t\te\t \tf \n g  \n\n  h   \r\n\r\n   i"),
    ("trailing spaces", "line with trailing spaces   "),
    ("trailing newlines", "text\n\n\n"),
    ("leading whitespace", "   \n\t  leading"),
    ("unicode spaces", "a\u00a0b\u3000c\u2003d\u2028e\u2029f\u0085g\u000bh\u000ci\u1680j\u202fk\u205fl"),
    ("spaces before newline", "x   \n   y \r\n z\t\n"),
    ("cr only", "one\rtwo\r\rthree"),
    ("digits", "1 12 123 1234 12345 123456789 3.14159 -42 1e10 0x1F 007"),
    ("non-ascii digits", "٣٤٥ ۱۲۳ १२३ １２３ ²³ ½ Ⅻ ⅷ 〇 ①②"),
    ("contractions", "I'm you're he's she'd we'll they've can't won't IT'S WE'LL THEY'VE I'D Y'ALL"),
    ("contraction folds", "'ſ 'ſt 'K 'ﬆ 'Ｓ 'ʟʟ 'Ve 'rE ''s 's' '"),
    ("curly apostrophes", "it’s don’t ‘quoted’ “double”"),
    ("code python", "def f(x):\n    return x * 2  # comment\n\n\n\tif x:\n\t\tpass\n"),
    ("code rust", "fn main() -> Result<(), Box<dyn Error>> {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{v:?}\");\n}\n"),
    ("code c", "static int foo(struct bar *b)\n{\n\tif (!b)\n\t\treturn -EINVAL;\n\treturn b->x << 2;\n}\n"),
    ("json", "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\\n\"}"),
    ("url and email", "https://example.com/path?q=1&r=two#frag mailto:someone@example.org"),
    ("combining marks", "e\u0301 a\u0300 o\u0308 n\u0303 A\u030a \u212b \u2126 \u1e0a\u0323 q\u0307\u0323"),
    ("nfc singletons", "\u2000\u2001 \u0340\u0341 \u0374 \u037e \u0387 \u1f71"),
    ("hangul jamo", "\u1100\u1161\u11a8\u1100\u1161 \u110b\u1173\u11af"),
    ("lone combining", "\u0301\u0301abc \u0301"),
    ("valid but odd utf-8", "\ufffd \ufeffbom \uffff \ufffe \ue000 \U0010ffff \U0001f9ff \u0000 nul \u0080\u009f c1"),
    ("bidi and zero-width", "abc\u200b\u200c\u200d\u2060def \u200e\u200f\u202a\u202e"),
    ("long word", "a" * 3000),
    ("long cjk run", "中文字符" * 800),
    ("long digits", "1234567890" * 200),
    ("long whitespace", " " * 2000 + "x" + "\n" * 500 + "y" + "\t" * 300),
    ("long punctuation", "=-" * 1000 + "\n"),
    ("base64", "TWFuIGlzIGRpc3Rpbmd1aXNoZWQsIG5vdCBvbmx5IGJ5IGhpcyByZWFzb24sIGJ1dCBieSB0aGlz" * 20),
    ("special tokens spelled", "This spells <|endoftext|> and <|im_start|>user and <|im_end|> and </s>: ordinary text."),
    ("non-special added tokens", "<think>reasoning</think> then <tool_call>{}</tool_call><|fim_prefix|>a<|fim_middle|>"),
    ("added tokens adjacent", "<think><think></think><|endoftext|><think>x<|endoftext|"),
    ("added tokens overlapping", "<<think>> <|<think>|> <|im_start<think>"),
    ("added token shadowed by special", "<|endoftext|><think>"),
    ("normalized added tokens", "ΩΩΩ été ete\u0301 e\u0301te\u0301 <sp> <sp<sp>>"),
    ("mixed everything", "Hi! 你好, мир 🌍. It's 2024-01-01T12:00:00Z\n\tcode();  \n\n 'S 123456\u3000终"),
]

path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tricky-strings.jsonl")
with open(path, "w", encoding="utf-8") as f:
    for case, text in cases:
        f.write(json.dumps({"case": case, "text": text}) + "\n")
print(f"{path}: {len(cases)} cases")
