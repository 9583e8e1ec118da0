//! Differential tests: the fast encoder gives exactly the `tokenizers` crate's ids.
//!
//! Every committed byte-level test tokenizer (one per supported pre-tokenizer or normalizer
//! shape, see scripts/make-fast-fixtures.py) and SentencePiece-style BPE one (scripts/make-spm-fixtures.py,
//! plus edits of them for the other shapes) × the texts of tests/fixtures/tricky-strings.jsonl,
//! with special tokens encoded as text (utk's default) and parsed (`--parse-special`); texts cut
//! into tiny parts as long documents are; random Unicode strings (proptest); and the
//! pre-tokenizers against the crate's on every code point; every `Split` behavior, accepted only
//! where it gives the crate's ids; compiled split patterns against the crate's `Split`.

use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior,
    Tokenizer,
};
use utk::tokenize::fast::pretok::{self, Pattern};
use utk::tokenize::FastEncoder;

const BYTE_LEVEL: &[(&str, &[Pattern])] = &[
    ("qwen3-mini", &[Pattern::Qwen2]),
    ("cl100k-mini", &[Pattern::Cl100k]),
    ("gpt2-mini", &[Pattern::Gpt2]),
    ("o200k-mini", &[Pattern::O200k]),
    ("cl100k-invert-mini", &[Pattern::Cl100k]),
    (
        "deepseek-mini",
        &[Pattern::Digits3, Pattern::DeepSeekCjk, Pattern::DeepSeek],
    ),
    ("nfkc-mini", &[Pattern::Qwen2]),
    ("tekken-mini", &[Pattern::Tekken]),
    ("digits-mini", &[Pattern::DigitsEach, Pattern::Gpt2]),
];

/// SentencePiece-style BPE with byte fallback (scripts/make-spm-fixtures.py): Gemma's shape
/// (Replace) and Llama 2's (Prepend + Replace, ignore_merges, a normalized added token).
const SPM: &[&str] = &["gemma-mini", "llama2-mini"];

/// The other SentencePiece-BPE shapes, as edits of those two: Gemma as newer converters write it
/// (a `Split` on `' '` that finds none after the normalizer), and the `Metaspace` pre-tokenizer
/// without a normalizer (Llama/Mistral files converted with `legacy: false`), every
/// `prepend_scheme`, splitting or not.
fn spm_variants() -> Vec<(String, String)> {
    let read = |name: &str| {
        std::fs::read_to_string(fixture(&format!("tokenizers/{name}/tokenizer.json"))).unwrap()
    };
    let edit = |json: &str, from: &str, to: &str| {
        assert!(json.contains(from), "{from}");
        json.replacen(from, to, 1)
    };
    let no_pre = r#""pre_tokenizer":null"#;
    let split = r#""pre_tokenizer":{"type":"Split","pattern":{"String":" "},"behavior":"MergedWithPrevious","invert":false}"#;
    let mut out = vec![(
        "gemma-mini + Split ' '".to_string(),
        edit(&read("gemma-mini"), no_pre, split),
    )];
    let llama = read("llama2-mini");
    let normalizer = r#""normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"#;
    let llama = edit(&llama, normalizer, r#""normalizer":null"#);
    for (scheme, split) in [
        ("first", false),
        ("always", false),
        ("never", false),
        ("first", true),
        ("always", true),
    ] {
        let meta = format!(
            r#""pre_tokenizer":{{"type":"Metaspace","replacement":"▁","prepend_scheme":"{scheme}","split":{split}}}"#
        );
        let mut json = edit(&llama, no_pre, &meta);
        if split {
            json = edit(&json, r#""ignore_merges":true"#, r#""ignore_merges":false"#);
        }
        out.push((
            format!("llama2-mini + Metaspace {scheme} split {split}"),
            json,
        ));
    }
    out
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

struct Pair {
    name: String,
    crate_tok: Tokenizer,
    fast: FastEncoder,
}

/// The crate's tokenizer and the fast encoder for a fixture, with `encode_special_tokens`.
fn load(name: &str, encode_special_tokens: bool) -> Pair {
    let json = std::fs::read_to_string(fixture(&format!("tokenizers/{name}/tokenizer.json")))
        .expect("fixture");
    load_json(name, &json, encode_special_tokens)
}

fn load_json(name: &str, json: &str, encode_special_tokens: bool) -> Pair {
    let mut crate_tok: Tokenizer = json.parse().expect("the crate loads the fixture");
    crate_tok.set_encode_special_tokens(encode_special_tokens);
    let (fast, _) = FastEncoder::new(json, encode_special_tokens)
        .unwrap_or_else(|why| panic!("{name}: fast encoder refused: {why}"));
    Pair {
        name: name.to_string(),
        crate_tok,
        fast,
    }
}

fn pairs() -> &'static [Pair] {
    static PAIRS: OnceLock<Vec<Pair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        BYTE_LEVEL
            .iter()
            .map(|&(name, _)| name)
            .chain(SPM.iter().copied())
            .flat_map(|name| [load(name, true), load(name, false)])
            .chain(
                spm_variants()
                    .iter()
                    .flat_map(|(n, j)| [load_json(n, j, true), load_json(n, j, false)]),
            )
            .collect()
    })
}

fn crate_ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
    tok.encode_fast(text, false)
        .expect("crate encodes")
        .get_ids()
        .to_vec()
}

/// Asserts every way the fast encoder computes ids agrees with the crate on `text`.
fn check(p: &Pair, case: &str, text: &str) {
    let want = crate_ids(&p.crate_tok, text);
    let mut got = Vec::new();
    p.fast.encode_into(text, &mut got);
    assert_eq!(got, want, "{}: {case}: {text:?}", p.name);
    assert_eq!(p.fast.encode(text), want, "{}: {case} (encode)", p.name);
    for part in [2, 7, 40] {
        assert_eq!(
            p.fast.encode_in_parts(text, part),
            want,
            "{}: {case}: cut into parts of {part} bytes",
            p.name
        );
    }
    if p.fast.streams() {
        for piece in [1, 3, 16] {
            assert_eq!(
                streamed(&p.fast, text, piece),
                want,
                "{}: {case}: streamed in pieces of {piece} bytes",
                p.name
            );
        }
    }
}

/// The ids of `text` given to the encoder in pieces of about `piece` bytes, as a streamed long
/// line is: what [`FastEncoder::stream_cut`] allows is encoded as soon as it is read.
fn streamed(fast: &FastEncoder, text: &str, piece: usize) -> Vec<u32> {
    let (mut ids, mut held, mut at) = (Vec::new(), String::new(), 0);
    while at < text.len() {
        let mut end = (at + piece).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        held.push_str(&text[at..end]);
        at = end;
        let cut = fast.stream_cut(&held);
        ids.extend(fast.encode(&held[..cut]));
        held.drain(..cut);
    }
    ids.extend(fast.encode(&held));
    ids
}

/// An added token spanning a safe cut place (`.\nThe`) is never cut, whatever the pieces.
#[test]
fn streaming_never_cuts_an_added_token() {
    let json = std::fs::read_to_string(fixture("tokenizers/qwen3-mini/tokenizer.json")).unwrap();
    let end = r#"}],"normalizer""#;
    assert!(json.contains(r#""id":6281,"#) && !json.contains(r#""id":6282,"#));
    let token = r#"},{"id":6282,"content":"s.\nThe","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false"#;
    let edited = json.replacen(end, &format!("{token}{end}"), 1);
    let mut crate_tok: Tokenizer = edited.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    let (fast, _) = FastEncoder::new(&edited, true).unwrap();
    assert!(fast.streams());
    let text = "Some words.\nThe end\nIts.\nThe thing\nAnd s.\nThere\n".repeat(20);
    let want = crate_ids(&crate_tok, &text);
    assert!(want.contains(&6282));
    for piece in 1..24 {
        assert_eq!(streamed(&fast, &text, piece), want, "pieces of {piece}");
    }
}

fn tricky() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("tricky-strings.jsonl"))
        .expect("fixture")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["case"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn tricky_strings_give_the_crates_ids() {
    let cases = tricky();
    assert!(cases.len() > 40);
    for p in pairs() {
        for (case, text) in &cases {
            check(p, case, text);
        }
        // All cases in one document, joined by lines: exercises cuts between them.
        let all: Vec<&str> = cases.iter().map(|(_, t)| t.as_str()).collect();
        check(p, "all cases joined", &all.join("\nA"));
    }
}

#[test]
fn long_documents_are_cut_and_encoded_in_parallel_exactly() {
    let docs = std::fs::read_to_string(fixture("docs.jsonl")).expect("fixture");
    let mut text = String::new();
    for l in docs.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        text.push_str(v["text"].as_str().unwrap());
        text.push_str("\n<think>\n");
    }
    while text.len() < 600 << 10 {
        text = text.repeat(2);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for p in pairs().iter().step_by(2) {
        let want = crate_ids(&p.crate_tok, &text);
        assert_eq!(pool.install(|| p.fast.encode(&text)), want, "{}", p.name);
    }
}

#[test]
fn text_spelling_added_tokens() {
    let qwen = &pairs()[0];
    let think = qwen.crate_tok.token_to_id("<think>").unwrap();
    let eot = qwen.crate_tok.token_to_id("<|endoftext|>").unwrap();
    let ids = qwen.fast.encode("<think>x<|endoftext|>");
    assert_eq!(ids[0], think, "a non-special added token is split out");
    assert!(
        !ids.contains(&eot),
        "a special token spelled in text stays text"
    );
    let parsing = &pairs()[1];
    assert!(parsing.fast.encode("<|endoftext|>").contains(&eot));
}

/// The token table read from the file (no crate) is the crate's: every model and added token's
/// id, every special flag and matching option, the highest id; and an `Encoder` on the fast path
/// resolves EOD and the UtK special tokens exactly as one on the crate.
#[test]
fn the_token_table_read_from_the_file_is_the_crates() {
    use utk::tokenize::{Backend, Encoder, EncoderOptions, SpecialTokens};
    let names = BYTE_LEVEL.iter().map(|&(name, _)| name);
    for name in names.chain(SPM.iter().copied()) {
        let path = fixture(&format!("tokenizers/{name}/tokenizer.json"));
        let json = std::fs::read_to_string(&path).unwrap();
        let tok: Tokenizer = json.parse().unwrap();
        let (_, vocab) = FastEncoder::new(&json, true).unwrap();
        let model = tok.get_vocab(false);
        assert_eq!(vocab.model().len(), model.len(), "{name}");
        for (t, id) in &model {
            assert_eq!(vocab.model().get(t), Some(*id), "{name}: {t:?}");
        }
        let decoder = tok.get_added_tokens_decoder();
        assert_eq!(vocab.added().len(), decoder.len(), "{name}");
        for a in vocab.added() {
            let c = &decoder[&a.id];
            assert_eq!(
                (
                    &c.content,
                    c.special,
                    c.single_word,
                    c.lstrip,
                    c.rstrip,
                    c.normalized
                ),
                (
                    &a.content,
                    a.special,
                    a.single_word,
                    a.lstrip,
                    a.rstrip,
                    a.normalized
                ),
                "{name}: added {}",
                a.id
            );
            assert_eq!(vocab.token_to_id(&a.content), tok.token_to_id(&a.content));
        }
        let max = *model.values().chain(decoder.keys()).max().unwrap();
        assert_eq!(vocab.max_known_id(), max, "{name}");
        for id in 0..=max + 1 {
            let special = decoder.get(&id).is_some_and(|t| t.special);
            assert_eq!(vocab.is_special(id), special, "{name}: id {id}");
            assert_eq!(
                vocab.id_to_token(id),
                tok.id_to_token(id),
                "{name}: id {id}"
            );
        }

        let load = |backend| {
            let opts = EncoderOptions {
                backend,
                ..EncoderOptions::default()
            };
            Encoder::load(&path, &opts).unwrap()
        };
        let (fast, crate_enc) = (load(Backend::Auto), load(Backend::Tokenizers));
        assert_eq!(fast.backend(), "fast-bpe", "{name}");
        assert_eq!(crate_enc.backend(), "tokenizers", "{name}");
        assert_eq!(fast.max_known_id(), crate_enc.max_known_id(), "{name}");
        assert_eq!(
            (fast.eod.id, &fast.eod.token),
            (crate_enc.eod.id, &crate_enc.eod.token),
            "{name}"
        );
        let overrides = ["cl=<|endoftext|>".to_string()];
        let specials =
            |e: &Encoder| SpecialTokens::resolve(e, 4, &overrides, None).map(|s| s.to_map());
        match (specials(&fast), specials(&crate_enc)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
            (a, b) => panic!("{name}: {a:?} vs {b:?}"),
        }
    }
}

#[test]
fn other_tokenizers_are_refused_with_a_reason() {
    let json = std::fs::read_to_string(fixture("tokenizers/minilm/tokenizer.json")).unwrap();
    let why = FastEncoder::new(&json, true)
        .err()
        .expect("WordPiece is refused");
    assert!(why.contains("WordPiece"), "{why}");

    let qwen = std::fs::read_to_string(fixture("tokenizers/qwen3-mini/tokenizer.json")).unwrap();
    for (from, to, expect) in [
        (r#"\p{N}|"#, r#"\d|"#, "no fast matcher"),
        (r#""type":"NFC""#, r#""type":"NFD""#, "normalizer NFD"),
        (
            r#""behavior":"Isolated""#,
            r#""behavior":"Removed""#,
            "behavior",
        ),
        (r#""dropout":null"#, r#""dropout":0.5"#, "dropout"),
        // An added token whose listed id is not the one the crate gives it.
        (r#""id":6256,"#, r#""id":9999,"#, "gives it 6256"),
        (
            r#""ignore_merges":false"#,
            r#""ignore_merges":false,"foo":1"#,
            "foo",
        ),
    ] {
        assert!(qwen.contains(from), "{from}");
        let edited = qwen.replacen(from, to, 1);
        let why = FastEncoder::new(&edited, true)
            .err()
            .unwrap_or_else(|| panic!("{to} accepted"));
        assert!(why.contains(expect), "{to}: {why}");
    }
}

/// SentencePiece-style BPE: the shapes of text where the crate merges one long word, and where
/// the cut rule and the prepended '▁' matter.
#[test]
fn sentencepiece_bpe_edge_cases_give_the_crates_ids() {
    let mut texts: Vec<String> = vec![
        "".into(),
        " ".into(),
        "  leading and trailing  ".into(),
        "▁already▁replaced ▁ mixed".into(),
        "<bos>text<eos> <s>x</s>".into(),
        "<start_of_turn>user\nhi<end_of_turn>".into(),
        "ΩΩ x ΩΩ xΩΩ x".into(),
        "tab\tseparated\t\tvalues\n\n\nend".into(),
        "naïve café e\u{301}\u{302} 🎉🎉 👩‍👩‍👧 \u{10ffff}\u{80}".into(),
        "機器學習需要大量的數據。長上下文模型在十二萬八千個詞元的窗口上訓練。".into(),
    ];
    for c in ["a", " ", "▁", "\n", "\t", "的", "🎉", "ab", " the", "<s>"] {
        texts.push(c.repeat(3000));
    }
    let mut mixed = String::new();
    for i in 0..4000u32 {
        mixed.push(char::from_u32(0x20 + (i * 7919) % 0x3000).unwrap_or(' '));
    }
    texts.push(mixed);
    for p in pairs()
        .iter()
        .filter(|p| p.name.contains("-mini ") || SPM.contains(&&*p.name))
    {
        for text in &texts {
            check(p, "edge case", text);
        }
    }
}

/// A byte-level file with `byte_fallback: true` (which never falls back: every byte is a token)
/// stays on the byte-level path.
#[test]
fn byte_level_bpe_with_byte_fallback_stays_byte_level() {
    let qwen = std::fs::read_to_string(fixture("tokenizers/qwen3-mini/tokenizer.json")).unwrap();
    let from = r#""byte_fallback":false"#;
    assert!(qwen.contains(from));
    let json = qwen.replacen(from, r#""byte_fallback":true"#, 1);
    let p = load_json("qwen3-mini + byte_fallback", &json, true);
    assert!(p.fast.description().starts_with("byte-level"));
    for (case, text) in tricky() {
        check(&p, &case, &text);
    }
}

/// SentencePiece-BPE files the fast path cannot prove are refused with the reason.
#[test]
fn sentencepiece_bpe_shapes_not_implemented_are_refused() {
    let gemma = std::fs::read_to_string(fixture("tokenizers/gemma-mini/tokenizer.json")).unwrap();
    let (fast, _) = FastEncoder::new(&gemma, true).unwrap();
    assert!(fast.description().contains("SentencePiece"));
    let llama = std::fs::read_to_string(fixture("tokenizers/llama2-mini/tokenizer.json")).unwrap();
    let (fast, _) = FastEncoder::new(&llama, true).unwrap();
    assert!(fast.description().contains("Prepend"));
    assert!(fast.post_processor_adds_tokens());
    let metaspace = r#""pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}"#;
    for (from, to, expect) in [
        (
            r#""pre_tokenizer":null"#,
            metaspace,
            "pre-tokenizer Metaspace",
        ),
        (r#""content":"▁"}"#, r#""content":"_"}"#, "content"),
        (r#""String":" ""#, r#""Regex":" ""#, "pattern"),
        (r#""dropout":null"#, r#""dropout":0.1"#, "dropout"),
        (r#""<0x80>":"#, r#""<0x80x>":"#, "byte 0x80"),
        (r#""fuse_unk":true"#, r#""fuse_unk":true,"x":1"#, "x"),
        (
            r#""normalizer":{"type":"Replace","pattern":{"String":" "},"content":"▁"}"#,
            r#""normalizer":{"type":"NFKC"}"#,
            "normalizer NFKC",
        ),
    ] {
        assert!(gemma.contains(from), "{from}");
        let edited = gemma.replacen(from, to, 1);
        let why = FastEncoder::new(&edited, true)
            .err()
            .unwrap_or_else(|| panic!("{to} accepted"));
        assert!(why.contains(expect), "{to}: {why}");
    }
    let nfkc = llama.replacen(
        r#"{"type":"Prepend","prepend":"▁"}"#,
        r#"{"type":"NFKC"}"#,
        1,
    );
    let why = FastEncoder::new(&nfkc, true).err().unwrap();
    assert!(why.contains("NFKC"), "{why}");
    let variants = spm_variants();
    for (i, ignore_merges, from, to, expect) in [
        (0, false, r#""invert":false"#, r#""invert":true"#, "invert"),
        (
            0,
            false,
            r#""String":" "},"behavior""#,
            r#""String":"x"},"behavior""#,
            "pattern",
        ),
        (4, true, "", "", "splitting Metaspace"),
        (
            1,
            false,
            r#""replacement":"▁""#,
            r#""replacement":"_""#,
            "replacement",
        ),
        (
            1,
            false,
            r#""prepend_scheme":"first""#,
            r#""prepend_scheme":"x""#,
            "\"x\"",
        ),
    ] {
        let (name, mut edited) = variants[i].clone();
        if ignore_merges {
            edited = edited.replacen(r#""ignore_merges":false"#, r#""ignore_merges":true"#, 1);
        }
        assert!(edited.contains(from), "{name}: {from}");
        let edited = edited.replacen(from, to, 1);
        let why = FastEncoder::new(&edited, true)
            .err()
            .unwrap_or_else(|| panic!("{name}: {to} accepted"));
        assert!(why.contains(expect), "{name}: {to}: {why}");
    }
}

/// Every `Split` behavior × `invert` on a tiling pattern (Qwen2) and on a step with gaps
/// (DeepSeek's digits): the fast path accepts exactly the combinations that keep each match and
/// each gap as one piece, and then gives the crate's ids; the others are refused, and give other
/// pre-tokens than `Isolated` (so refusing them is needed, not just cautious).
#[test]
fn split_behaviors_are_accepted_exactly_where_they_give_the_same_pieces() {
    let mut texts: Vec<String> = tricky().into_iter().map(|(_, t)| t).collect();
    texts.extend(["a  1", "1abc"].map(String::from));
    let behaviors = [
        "Isolated",
        "Removed",
        "MergedWithPrevious",
        "MergedWithNext",
        "Contiguous",
    ];
    for (name, tiles) in [("qwen3-mini", true), ("deepseek-mini", false)] {
        let json =
            std::fs::read_to_string(fixture(&format!("tokenizers/{name}/tokenizer.json"))).unwrap();
        let mut isolated: Tokenizer = json.parse().unwrap();
        isolated.set_encode_special_tokens(true);
        let from = r#""behavior":"Isolated","invert":false"#;
        assert!(json.contains(from), "{name}");
        for behavior in behaviors {
            for invert in [false, true] {
                let to = format!(r#""behavior":"{behavior}","invert":{invert}"#);
                let expect = behavior == "Isolated"
                    || (tiles
                        && (behavior.starts_with("Merged") || (behavior == "Removed" && invert)));
                let edited = json.replacen(from, &to, 1);
                check_behavior(&format!("{name}: {to}"), &edited, expect, &isolated, &texts);
            }
        }
    }
}

/// The fast path accepts `json` iff `expect`; if it does, it gives the crate's ids on `texts`;
/// if not, the crate's pre-tokens differ from `isolated`'s on one of them.
fn check_behavior(what: &str, json: &str, expect: bool, isolated: &Tokenizer, texts: &[String]) {
    let mut crate_tok: Tokenizer = json.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    match FastEncoder::new(json, true) {
        Ok((fast, _)) => {
            assert!(expect, "{what} accepted");
            for text in texts {
                let want = crate_ids(&crate_tok, text);
                assert_eq!(fast.encode(text), want, "{what}: {text:?}");
            }
        }
        Err(why) => {
            assert!(!expect, "{what} refused: {why}");
            assert!(why.contains("behavior"), "{why}");
            let differs =
                |t: &String| crate_pretokens(&crate_tok, t) != crate_pretokens(isolated, t);
            assert!(
                texts.iter().any(differs),
                "{what} gives Isolated's pre-tokens on every text"
            );
        }
    }
}

/// `Digits` without `individual_digits` (runs of numeric characters), on digits-mini edited.
#[test]
fn digit_runs_give_the_crates_ids() {
    let json = std::fs::read_to_string(fixture("tokenizers/digits-mini/tokenizer.json")).unwrap();
    let from = r#""individual_digits":true"#;
    assert!(json.contains(from));
    let edited = json.replacen(from, r#""individual_digits":false"#, 1);
    let mut crate_tok: Tokenizer = edited.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    let (fast, _) = FastEncoder::new(&edited, true).unwrap();
    assert!(
        fast.description().contains("digits +"),
        "{}",
        fast.description()
    );
    let mut texts: Vec<String> = tricky().into_iter().map(|(_, t)| t).collect();
    texts.push("a 12345 b½Ⅻ〇𝟘 99\n0".into());
    for text in &texts {
        assert_eq!(fast.encode(text), crate_ids(&crate_tok, text), "{text:?}");
        assert_eq!(
            fast.encode_in_parts(text, 5),
            crate_ids(&crate_tok, text),
            "{text:?}"
        );
    }
}

/// `ByteLevel` with its regex alone in a `Sequence` is GPT-2's split; without it, nothing splits
/// (refused).
#[test]
fn byte_level_alone_in_a_sequence() {
    let json = std::fs::read_to_string(fixture("tokenizers/gpt2-mini/tokenizer.json")).unwrap();
    let from = r#""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#;
    assert!(json.contains(from));
    let to = r#""pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}"#;
    let edited = json.replacen(from, to, 1);
    let mut crate_tok: Tokenizer = edited.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    let (fast, _) = FastEncoder::new(&edited, true).unwrap();
    for (case, text) in tricky() {
        let want = crate_ids(&crate_tok, &text);
        assert_eq!(fast.encode(&text), want, "{case}");
        assert_eq!(fast.encode_in_parts(&text, 3), want, "{case} (parts)");
    }
    let no_regex = edited.replacen(r#""use_regex":true"#, r#""use_regex":false"#, 1);
    let why = FastEncoder::new(&no_regex, true).err().expect("refused");
    assert!(why.contains("does not split"), "{why}");
}

/// NFKC with texts cut into parts (nfkc-mini's normalized added token would stop cutting, so it
/// is made raw here): compatibility characters and combining marks right after each cut.
#[test]
fn nfkc_texts_cut_into_parts_give_the_crates_ids() {
    let json = std::fs::read_to_string(fixture("tokenizers/nfkc-mini/tokenizer.json")).unwrap();
    let from =
        r#""content":"ﬁx","single_word":false,"lstrip":false,"rstrip":false,"normalized":true"#;
    assert!(json.contains(from));
    let edited = json.replacen(from, &from.replace("true", "false"), 1);
    let mut crate_tok: Tokenizer = edited.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    let (fast, _) = FastEncoder::new(&edited, true).unwrap();
    let mut texts: Vec<String> = tricky().into_iter().map(|(_, t)| t).collect();
    texts.push("x.\nAﬁ① e\u{301}\u{323}\n\nｶﾞ ㌀ x)\nB\u{301}\u{302}ﬁx Ⅻ\n½\n".repeat(40));
    for text in &texts {
        let want = crate_ids(&crate_tok, text);
        for part in [1, 3, 16] {
            assert_eq!(
                fast.encode_in_parts(text, part),
                want,
                "{text:?} in parts of {part}"
            );
        }
    }
}

/// The pre-token byte ranges the crate's pre-tokenizer gives.
fn crate_pretokens(tok: &Tokenizer, text: &str) -> Vec<(usize, usize)> {
    let mut pts = PreTokenizedString::from(text);
    tok.get_pre_tokenizer()
        .unwrap()
        .pre_tokenize(&mut pts)
        .unwrap();
    pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(_, o, _)| o)
        .collect()
}

fn fast_pretokens(steps: &[Pattern], text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    pretok::PreTokenizer::sequence(steps.to_vec()).for_each(text, |w| {
        out.push((at, at + w.len()));
        at += w.len();
    });
    out
}

/// Oniguruma's classes, as the crate compiles them, on every code point; and every letter is in
/// one of o200k's two case classes (which [`Pattern::tiles`] relies on).
#[test]
fn character_classes_agree_with_oniguruma_on_every_code_point() {
    let chars: String = (0..=0x10ffffu32).filter_map(char::from_u32).collect();
    for c in chars.chars() {
        let k = pretok::class_flags(c);
        assert!(k & 1 == 0 || k & (16 | 32) != 0, "U+{:04X}", c as u32);
    }
    for (regex, flag) in [
        (r"\p{L}", 1u8),
        (r"\p{N}", 2),
        (r"\s", 4),
        (r"[\r\n]", 8),
        (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", 16),
        (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", 32),
        (r"\p{M}", 64),
        (r"[\p{P}\p{S}]", 128),
    ] {
        let re = tokenizers::utils::SysRegex::new(regex).unwrap();
        let mut onig = vec![false; 0x110000];
        for (start, _) in re.find_iter(&chars) {
            onig[chars[start..].chars().next().unwrap() as usize] = true;
        }
        for c in chars.chars() {
            let ours = pretok::class_flags(c) & flag != 0;
            assert_eq!(ours, onig[c as usize], "{regex} on U+{:04X}", c as u32);
        }
    }
}

/// Code points of every class in contexts that exercise each alternative of each pattern.
#[test]
fn pre_tokenizers_agree_with_the_crate_in_context() {
    let sample: Vec<char> = (0..0x800u32)
        .chain((0x800..=0x10ffff).step_by(61))
        .filter_map(char::from_u32)
        .collect();
    for (i, &(name, steps)) in BYTE_LEVEL.iter().enumerate() {
        let tok = &pairs()[2 * i].crate_tok;
        for block in sample.chunks(1024) {
            let mut text = String::new();
            for &c in block {
                for t in [
                    "a", "A", "1", " ", "'", "'S", ".", "/", "\n", "  ", "\u{301}", "中", "ア",
                ] {
                    text.push(c);
                    text.push_str(t);
                }
                text.push(c);
                text.push(c);
            }
            assert_eq!(
                fast_pretokens(steps, &text),
                crate_pretokens(tok, &text),
                "{name}: block from {:?}",
                block[0]
            );
        }
    }
}

/// Characters that stress the patterns, and any character at all.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ' ', ' ', '\n', '\r', '\t', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{3000}', '\u{2028}',
            '\'', 's', 'S', 't', 'r', 'e', 'v', 'm', 'l', 'L', 'd', '\u{17f}', 'a', 'Z', '0', '7',
            '٣', '²', '.', ',', '!', '<', '>', '|', '/', '_', '中', '文', 'é', '\u{301}', '\u{308}',
            'A', '\u{212b}', '\u{1100}', '\u{1161}', '\u{11a8}', '🎉', '\u{200d}', '\u{fe0f}',
            'Σ', 'ǅ', 'ʰ', '一', 'ア', 'ー', '゠', '\u{3040}', '\u{ff5c}', 'ﬁ', '①', '½', '＄',
            'Ⅻ', '〇', '𝟘', '▁', '\u{2580}', '\u{2582}', '的', '是', '\u{10ffff}', '\u{80}',
        ]),
        2 => proptest::char::range('\u{0}', '\u{7f}'),
        1 => any::<char>(),
    ]
}

fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => prop::collection::vec(tricky_char(), 1..12).prop_map(|v| v.into_iter().collect::<String>()),
        1 => prop::sample::select(vec![
            "<|endoftext|>", "<think>", "</think>", "<|im_start|>", "<|fim_pad|>", "ΩΩ", "été",
            "e\u{301}té", "<sp>", "\nA", "'ll", "'VE", " 123", "\r\n", "<｜end▁of▁sentence｜>",
            "ﬁx", "HTTPServer's", "1234567", "日本語のテキスト", "\n/", "!/\n",
            // SentencePiece-BPE specials and spaces.
            "<s>", "</s>", "<bos>", "<eos>", "<mask>", "<start_of_turn>", "ΩΩ x", " ΩΩ x", "▁",
            "▁▁", "    ", "\t\t", " the", "的", "。",
        ]).prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_unicode_strings_give_the_crates_ids(text in tricky_text()) {
        for p in pairs() {
            let want = crate_ids(&p.crate_tok, &text);
            prop_assert_eq!(&p.fast.encode(&text), &want, "{}", p.name);
            prop_assert_eq!(&p.fast.encode_in_parts(&text, 3), &want, "{} (cut)", p.name);
        }
    }

    #[test]
    fn any_string_gives_the_crates_ids(text in ".{0,64}") {
        for p in pairs().iter().step_by(2) {
            prop_assert_eq!(&p.fast.encode(&text), &crate_ids(&p.crate_tok, &text), "{}", p.name);
        }
    }
}

/// Patterns compiled by the fast path's small backtracking matcher (src/tokenize/fast/compiled.rs)
/// against the crate's `Split` on every code point in context and on the tricky strings: every
/// hand-written pattern (and its hand-written matcher, for each spelling recognised), and others
/// real tokenizers use or that exercise the grammar.
#[test]
fn compiled_patterns_agree_with_the_crate() {
    let mut patterns: Vec<String> = [
        pretok::QWEN2,
        pretok::CL100K,
        pretok::GPT2,
        pretok::O200K,
        pretok::TEKKEN,
        pretok::DIGITS3,
        pretok::DEEPSEEK_CJK,
        pretok::DEEPSEEK_CJK_ESCAPED,
        pretok::DEEPSEEK,
        pretok::DEEPSEEK_ESCAPED,
    ]
    .map(String::from)
    .to_vec();
    patterns.extend(
        [
            // tiktoken's own cl100k spelling, with possessive quantifiers
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?+|\p{N}|\s+",
            // DeepSeek-LLM / Coder style steps
            r"[\r\n]",
            r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯＡ-Ｚａ-ｚ𐐀-𐑏]+",
            r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
            r"[一-龥ࠀ-一가-퟿]+",
            r"\p{N}+",
            r"[\p{P}\$\+<=>\^~\|]+",
            r"\s{2,}|\S+|\s",
            r"\P{L}+|\p{L}{1,4}",
            r" ?\p{L}+(?=\s)|\S|\s",
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
            r"[\u3040-\u30ff]+|[^\S\n]+|\p{Lu}\p{Ll}*|\p{M}",
        ]
        .map(String::from),
    );
    let texts = context_texts();
    for pattern in &patterns {
        let fast = pretok::PreTokenizer::compile(pattern)
            .unwrap_or_else(|why| panic!("{pattern:?} refused: {why}"));
        let split = Split::new(
            SplitPattern::Regex(pattern.clone()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        for text in &texts {
            let mut pts = PreTokenizedString::from(text.as_str());
            split.pre_tokenize(&mut pts).unwrap();
            let want: Vec<(usize, usize)> = pts
                .get_splits(OffsetReferential::Original, OffsetType::Byte)
                .into_iter()
                .map(|(_, o, _)| o)
                .collect();
            let mut got = Vec::new();
            fast.for_each_range(text, |s, e| got.push((s, e)));
            assert!(
                got == want,
                "{pattern:?} on {:?}",
                &text[..text.len().min(80)]
            );
            // A recognised spelling: its hand-written matcher too.
            if let Some(p) = Pattern::recognise(pattern) {
                let mut got = Vec::new();
                pretok::PreTokenizer::new(p).for_each_range(text, |s, e| got.push((s, e)));
                assert!(got == want, "{p:?} on {:?}", &text[..text.len().min(80)]);
            }
        }
    }
}

/// The tricky strings, and code points of every class in contexts that exercise each
/// alternative of each pattern.
fn context_texts() -> Vec<String> {
    let sample: Vec<char> = (0..0x800u32)
        .chain((0x800..=0x10ffff).step_by(61))
        .filter_map(char::from_u32)
        .collect();
    let mut texts: Vec<String> = tricky().into_iter().map(|(_, t)| t).collect();
    for block in sample.chunks(2048) {
        let mut text = String::new();
        for &c in block {
            for t in [
                "a", "A", "1", " ", "'", "'S", ".", "\n", "  ", "\u{301}", "中", "ア",
            ] {
                text.push(c);
                text.push_str(t);
            }
            text.push(c);
            text.push(c);
        }
        texts.push(text);
    }
    texts
}

/// Syntax outside the compiled grammar is refused, with the reason.
#[test]
fn patterns_outside_the_grammar_are_refused() {
    for (pattern, why) in [
        (r"\d+|\s+", "\\d"),
        (r"(ab)+|\s", "outside the grammar"),
        (r".", "outside the grammar"),
        (r"\p{Han}+", "Han"),
        (r"[[:alpha:]]", "POSIX"),
        (r"[a-z&&[^aeiou]]", "&&"),
        (r"a*?", "lazy"),
        (r"a|", "empty"),
        (r"x*", "empty"),
        (r"^a", "outside the grammar"),
        (r"\w+", "\\w"),
        (r"(?i:ab)", "outside the grammar"),
        (r"[z-a]", "range"),
        (r"a{2", "{"),
        (r"\p{N}{1,3}+", "after {1,3}"),
        (r"[a-b-c]", "a - after"),
    ] {
        let err = pretok::PreTokenizer::compile(pattern)
            .err()
            .unwrap_or_else(|| panic!("{pattern:?} accepted"));
        assert!(err.contains(why), "{pattern:?}: {err}");
    }
}

/// A whole tokenizer whose pattern is compiled: the crate's ids, also when asked to cut (it does
/// not: no proof).
#[test]
fn a_tokenizer_with_a_compiled_pattern_gives_the_crates_ids() {
    let json = std::fs::read_to_string(fixture("tokenizers/qwen3-mini/tokenizer.json")).unwrap();
    let from = r#"\\p{N}|"#;
    assert!(json.contains(from));
    let edited = json.replacen(from, r#"\\p{N}{1,2}|"#, 1);
    let mut crate_tok: Tokenizer = edited.parse().unwrap();
    crate_tok.set_encode_special_tokens(true);
    let (fast, _) = FastEncoder::new(&edited, true).unwrap();
    assert!(
        fast.description().contains("compiled"),
        "{}",
        fast.description()
    );
    for (case, text) in tricky() {
        let want = crate_ids(&crate_tok, &text);
        assert_eq!(fast.encode(&text), want, "{case}");
        assert_eq!(fast.encode_in_parts(&text, 3), want, "{case} (parts)");
    }
}
