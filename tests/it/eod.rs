//! The default end-of-document token: the first special token of the candidate list (DeepSeek's
//! full-width spelling included), else the special `eos_token` of a `tokenizer_config.json` beside
//! the `tokenizer.json`; a chat model's end-of-turn `eos_token` never wins over its document
//! separator. Each case runs on the fast path and on the `tokenizers` crate, which must agree.
//!
//! The tokenizers are `tests/fixtures/tokenizers/qwen3-mini` with the text of its
//! `<|endoftext|>` changed, written with a config to a temporary directory.

use std::path::{Path, PathBuf};
use utk::tokenize::{Backend, Encoder, EncoderOptions};

const QWEN_EOT: u32 = 6256;

fn qwen3_mini() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizers/qwen3-mini/tokenizer.json");
    std::fs::read_to_string(path).expect("fixture")
}

/// qwen3-mini with `<|endoftext|>` spelled `eot`, and `config` (if any) beside it.
fn tokenizer_dir(eot: &str, config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = r#""content":"<|endoftext|>""#;
    let json = qwen3_mini();
    assert!(json.contains(from));
    let to = serde_json::json!({ "content": eot }).to_string();
    let to = &to[1..to.len() - 1];
    std::fs::write(
        dir.path().join("tokenizer.json"),
        json.replacen(from, to, 1),
    )
    .unwrap();
    if let Some(config) = config {
        std::fs::write(dir.path().join("tokenizer_config.json"), config).unwrap();
    }
    dir
}

/// The EOD (id, token, rule) on both backends, which must agree; or both errors, which must too.
fn eod(dir: &Path) -> Result<(u32, String, String), String> {
    let load = |backend| {
        let opts = EncoderOptions {
            backend,
            ..EncoderOptions::default()
        };
        Encoder::load(&dir.join("tokenizer.json"), &opts)
            .map(|e| (e.eod.id, e.eod.token.clone().unwrap(), e.eod.rule.clone()))
            .map_err(|e| e.to_string())
    };
    let fast = load(Backend::Auto);
    assert_eq!(fast, load(Backend::Tokenizers));
    fast
}

#[test]
fn deepseek_full_width_spelling_is_a_candidate() {
    let dir = tokenizer_dir("<｜end▁of▁sentence｜>", None);
    let (id, token, rule) = eod(dir.path()).unwrap();
    assert_eq!((id, token.as_str()), (QWEN_EOT, "<｜end▁of▁sentence｜>"));
    assert!(rule.starts_with("first special token of"), "{rule}");
}

#[test]
fn a_special_eos_token_of_the_config_is_used_when_no_candidate_matches() {
    for config in [
        r#"{"eos_token": "<EOT>", "bos_token": null}"#,
        r#"{"eos_token": {"__type": "AddedToken", "content": "<EOT>", "special": true}}"#,
    ] {
        let dir = tokenizer_dir("<EOT>", Some(config));
        let (id, token, rule) = eod(dir.path()).unwrap();
        assert_eq!((id, token.as_str()), (QWEN_EOT, "<EOT>"), "{config}");
        assert!(
            rule.contains("eos_token of tokenizer_config.json"),
            "{rule}"
        );
    }
}

#[test]
fn a_chat_eos_token_never_wins_over_the_document_separator() {
    let dir = tokenizer_dir("<|endoftext|>", Some(r#"{"eos_token": "<|im_end|>"}"#));
    let (id, token, _) = eod(dir.path()).unwrap();
    assert_eq!((id, token.as_str()), (QWEN_EOT, "<|endoftext|>"));
}

#[test]
fn without_a_usable_eos_token_the_error_says_why() {
    for (config, why) in [
        (None, "there is no"),
        (Some(r#"{"eos_token": "<think>"}"#), "not marked special"),
        (Some(r#"{"eos_token": "<nope>"}"#), "is not a token"),
        (Some(r#"{"bos_token": "<EOT>"}"#), "names no eos_token"),
        (Some("not json"), "is not JSON"),
    ] {
        let dir = tokenizer_dir("<EOT>", config);
        let err = eod(dir.path()).unwrap_err();
        assert!(
            err.contains("no end-of-document token") && err.contains(why),
            "{config:?}: {err}"
        );
        assert!(err.contains("eod_token"), "{err}");
    }
}

/// BERT-style WordPiece with `--add-special-tokens`: the post-processor's template
/// `[CLS] … [SEP]` already ends with the EOD (`[SEP]`, the last candidate), so no second `[SEP]`
/// is appended: `[SEP] [SEP]` would put an EOD inside the document (README, "The end-of-document
/// token"). Without the flag: `… [SEP]`, the appended EOD.
#[test]
fn bert_with_special_tokens_ends_with_one_sep() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizers/minilm/tokenizer.json");
    let load = |add_special_tokens, eod_id| {
        let options = EncoderOptions {
            add_special_tokens,
            eod_id,
            ..EncoderOptions::default()
        };
        Encoder::load(&path, &options).unwrap()
    };
    let (cls, sep, mask) = (101, 102, 103);
    let plain = load(false, None);
    assert_eq!(
        (plain.eod.id, plain.eod.token.as_deref()),
        (sep, Some("[SEP]"))
    );
    let text = "Hello world.\nA second line.";
    let a = plain.encode_doc(text).unwrap();
    assert_eq!(a.iter().filter(|&&t| t == sep).count(), 1, "{a:?}");
    assert_eq!(a.last(), Some(&sep));
    let words = &a[..a.len() - 1];
    let b = load(true, None).encode_doc(text).unwrap();
    assert_eq!(b, [&[cls][..], words, &[sep]].concat());
    // Another EOD is appended after the template as usual.
    let c = load(true, Some(mask)).encode_doc(text).unwrap();
    assert_eq!(c, [&[cls][..], words, &[sep, mask]].concat());
}
