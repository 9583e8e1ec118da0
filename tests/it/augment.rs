//! End-to-end tests of `utk augment`: run the built binary on committed fixtures and check the
//! output against an independent re-encoding of the input.

use crate::common::check::check_output;
use crate::common::*;
use std::path::Path;
use utk::output::reader::OutputReader;

fn eod_of(dir: &Path) -> u32 {
    OutputReader::open(dir).unwrap().manifest.special_tokens["eod"]
}

#[test]
fn qwen_windows_are_exact_and_lose_no_token() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, extra) in MODES.iter().enumerate() {
        let out = tmp.path().join(format!("o{i}"));
        augment(&[&docs()], &qwen(), &out, extra);
        let reference = reference_ids(&qwen(), &doc_texts(&docs(), "text"), eod_of(&out));
        let checked = check_output(&out, &reference);
        assert!(checked.windows > 1, "{extra:?}");
        let m = OutputReader::open(&out).unwrap().manifest;
        assert_eq!(m.counts.output_tokens, m.windows * m.seq_len as u64);
        if !extra.contains(&"plain") {
            assert!(
                checked.pieces_by_chunks.keys().any(|&n| n >= 2),
                "{extra:?}: nothing was split"
            );
        }
    }
}

#[test]
fn wordpiece_tokenizer_with_padding_and_truncation_in_its_file() {
    // The file enables padding and truncation at 128 tokens: utk must turn both off.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    augment(&[&docs()], &minilm(), &out, &["-L", "4k"]);
    let m = OutputReader::open(&out).unwrap().manifest;
    assert_eq!(m.token_dtype, "uint16");
    assert_eq!(m.tokenizer.eod.token.as_deref(), Some("[SEP]"));
    let reference = reference_ids(&minilm(), &doc_texts(&docs(), "text"), eod_of(&out));
    assert!(
        reference.iter().any(|r| r.len() > 1000),
        "fixture has long documents"
    );
    check_output(&out, &reference);
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        "tokens.bin",
        "tokens.idx",
        "loss_mask.bin",
        "loss_mask.idx",
        "provenance.spans",
        "provenance.docs",
    ];
    let mut first: Option<Vec<Vec<u8>>> = None;
    for threads in ["1", "2", "8"] {
        let out = tmp.path().join(format!("t{threads}"));
        augment(
            &[&docs()],
            &qwen(),
            &out,
            &["-L", "1024", "--seed", "42", "--threads", threads],
        );
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        let m = OutputReader::open(&out).unwrap().manifest;
        assert_eq!(m.config.seed, 42);
        match &first {
            None => first = Some(bytes),
            Some(f) => assert!(f == &bytes, "threads={threads} changed the output"),
        }
    }
    let other = tmp.path().join("seed43");
    augment(&[&docs()], &qwen(), &other, &["-L", "1024", "--seed", "43"]);
    assert_ne!(
        std::fs::read(other.join("tokens.bin")).unwrap(),
        first.unwrap()[0],
        "the seed changes nothing"
    );
}

#[test]
fn gzip_zstd_and_stdin_inputs_give_the_same_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = std::fs::read(docs()).unwrap();
    let gz = tmp.path().join("docs.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    // Named .jsonl but zstd inside: detection is by content.
    let zst = tmp.path().join("docs-really-zstd.jsonl");
    std::fs::write(&zst, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();

    let plain = tmp.path().join("plain");
    augment(&[&docs()], &qwen(), &plain, &["-L", "2k"]);
    let expect = std::fs::read(plain.join("tokens.bin")).unwrap();
    for (name, input) in [("gz", &gz), ("zst", &zst)] {
        let out = tmp.path().join(name);
        augment(&[input], &qwen(), &out, &["-L", "2k"]);
        assert_eq!(
            std::fs::read(out.join("tokens.bin")).unwrap(),
            expect,
            "{name}"
        );
    }
    let out = tmp.path().join("stdin");
    let o = out.display().to_string();
    let q = qwen().display().to_string();
    utk(
        &["augment", "-", "-t", &q, "-o", &o, "-L", "2k"],
        Some(&zstd::encode_all(&raw[..], 1).unwrap()),
    )
    .ok();
    assert_eq!(
        std::fs::read(out.join("tokens.bin")).unwrap(),
        expect,
        "stdin"
    );
    assert_eq!(
        OutputReader::open(&out).unwrap().manifest.input.sources,
        vec!["-".to_string()]
    );
}

#[test]
fn directories_and_globs_expand_in_sorted_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("b.jsonl"), "{\"text\":\"second\"}\n").unwrap();
    std::fs::write(dir.join("a.jsonl"), "{\"text\":\"first\"}\n").unwrap();
    std::fs::write(dir.join("sub/c.jsonl"), "{\"text\":\"third\"}\n").unwrap();
    std::fs::write(dir.join(".hidden.jsonl"), "not json").unwrap();
    let out = tmp.path().join("o");
    augment(&[&dir], &qwen(), &out, &["-L", "64"]);
    let m = OutputReader::open(&out).unwrap().manifest;
    let names: Vec<String> = m
        .input
        .sources
        .iter()
        .map(|s| Path::new(s).file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(names, ["a.jsonl", "b.jsonl", "c.jsonl"]);
    let glob = format!("{}/*.jsonl", dir.display());
    let out2 = tmp.path().join("o2");
    augment(&[Path::new(&glob)], &qwen(), &out2, &["-L", "64"]);
    assert_eq!(
        OutputReader::open(&out2).unwrap().manifest.counts.documents,
        2
    );
}

#[test]
fn text_that_spells_special_tokens_stays_ordinary() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("inject.jsonl");
    std::fs::write(
        &input,
        "{\"text\":\"before <|endoftext|> after <|im_start|> x\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("o");
    augment(&[&input], &qwen(), &out, &["-L", "64", "--tail", "pad"]);
    let r = OutputReader::open(&out).unwrap();
    let eod = r.manifest.special_tokens["eod"];
    let toks = r.window_tokens(0);
    assert_eq!(
        toks.iter().filter(|&&t| t == eod).count(),
        1,
        "text injected a document boundary: {toks:?}"
    );
    // With --parse-special the user opts in and gets the control token.
    let out2 = tmp.path().join("o2");
    augment(&[&input], &qwen(), &out2, &["-L", "64", "--parse-special"]);
    let toks = OutputReader::open(&out2).unwrap().window_tokens(0);
    assert_eq!(toks.iter().filter(|&&t| t == eod).count(), 2);
}

#[test]
fn tail_is_padded_or_dropped_as_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let pad = tmp.path().join("pad");
    augment(&[&docs()], &qwen(), &pad, &["-L", "3000"]);
    let m = OutputReader::open(&pad).unwrap().manifest;
    assert!(m.counts.pad_tokens > 0 && m.counts.dropped_tokens == 0);
    let drop = tmp.path().join("drop");
    augment(
        &[&docs()],
        &qwen(),
        &drop,
        &["-L", "3000", "--tail", "drop"],
    );
    let d = OutputReader::open(&drop).unwrap().manifest;
    assert_eq!((d.counts.pad_tokens, d.windows), (0, m.windows - 1));
    assert!(d.counts.dropped_tokens > 0);
    let reference = reference_ids(
        &qwen(),
        &doc_texts(&docs(), "text"),
        d.special_tokens["eod"],
    );
    check_output(&drop, &reference);
}

#[test]
fn special_token_ids_follow_the_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let q = qwen().display().to_string();
    let d = docs().display().to_string();
    let run = |name: &str, extra: &[&str]| {
        let o = tmp.path().join(name).display().to_string();
        let mut args = vec![
            "augment",
            d.as_str(),
            "-t",
            q.as_str(),
            "-o",
            o.as_str(),
            "-L",
            "2k",
        ];
        args.extend_from_slice(extra);
        utk(&args, None)
    };
    // Defaults: new ids right after the highest id the tokenizer knows (6281 in this file).
    run("default", &[]).ok();
    let m = OutputReader::open(&tmp.path().join("default"))
        .unwrap()
        .manifest;
    assert_eq!(m.tokenizer.max_known_id, 6281);
    let ids: Vec<u32> = m
        .special_tokens
        .iter()
        .filter(|(k, _)| *k != "eod")
        .map(|(_, &v)| v)
        .collect();
    assert!(ids.iter().all(|&i| i > 6281), "{:?}", m.special_tokens);
    assert_eq!(m.vocab_size, *ids.iter().max().unwrap() as u64 + 1);
    // A token the tokenizer marks special may take a role; the output must still check out.
    run(
        "mapped",
        &[
            "--special-token",
            "cl=<|vision_pad|>",
            "--special-token",
            "pad=6263",
        ],
    )
    .ok();
    let m = OutputReader::open(&tmp.path().join("mapped"))
        .unwrap()
        .manifest;
    assert_eq!(
        (m.special_tokens["cl"], m.special_tokens["pad"]),
        (6267, 6263)
    );
    let reference = reference_ids(
        &qwen(),
        &doc_texts(&docs(), "text"),
        m.special_tokens["eod"],
    );
    check_output(&tmp.path().join("mapped"), &reference);
    // Ordinary tokens and added tokens not marked special can come out of text: refused.
    run("think", &["--special-token", "cl=<think>"]).fails_with(&["ordinary token", "<think>"]);
    run("word", &["--special-token", "bt=the"]).fails_with(&["ordinary token"]);
    run(
        "twice",
        &[
            "--special-token",
            "cl=<|vision_pad|>",
            "--special-token",
            "bt=<|vision_pad|>",
        ],
    )
    .fails_with(&["already used"]);
    run("eod", &["--special-token", "pad=<|endoftext|>"]).fails_with(&["already used for eod"]);
    run("role", &["--special-token", "knot=5"]).fails_with(&["unknown role"]);
    // Ids in spare rows past 65,500 switch the token files to int32.
    run("wide", &["--special-base", "70000"]).ok();
    let m = OutputReader::open(&tmp.path().join("wide"))
        .unwrap()
        .manifest;
    assert_eq!(
        (m.token_dtype.as_str(), m.special_tokens["pad"]),
        ("int32", 70000)
    );
    let reference = reference_ids(
        &qwen(),
        &doc_texts(&docs(), "text"),
        m.special_tokens["eod"],
    );
    check_output(&tmp.path().join("wide"), &reference);
    run("low", &["--special-base", "100"]).fails_with(&["--special-base", "6281"]);
}

#[test]
fn eod_choice_is_explicit_and_a_tokenizer_without_one_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    augment(
        &[&docs()],
        &qwen(),
        &out,
        &["-L", "2k", "--eod-token", "<|im_end|>"],
    );
    assert_eq!(
        OutputReader::open(&out).unwrap().manifest.special_tokens["eod"],
        6258
    );
    // The same tokenizer with no special tokens at all.
    let mut t: serde_json::Value = serde_json::from_slice(&std::fs::read(qwen()).unwrap()).unwrap();
    for tok in t["added_tokens"].as_array_mut().unwrap() {
        tok["special"] = serde_json::Value::Bool(false);
    }
    let plain = tmp.path().join("nospecial.json");
    std::fs::write(&plain, serde_json::to_vec(&t).unwrap()).unwrap();
    let (p, d, o) = (
        plain.display().to_string(),
        docs().display().to_string(),
        tmp.path().join("x").display().to_string(),
    );
    utk(&["augment", &d, "-t", &p, "-o", &o], None)
        .fails_with(&["no end-of-document token", "--eod-token"]);
    utk(
        &[
            "augment",
            &d,
            "-t",
            &p,
            "-o",
            &o,
            "--eod-token",
            "<|endoftext|>",
        ],
        None,
    )
    .fails_with(&["not marked special"]);
    assert!(!tmp.path().join("x/manifest.json").exists());
    let o2 = tmp.path().join("y").display().to_string();
    utk(
        &[
            "augment", &d, "-t", &p, "-o", &o2, "--eod-id", "9000", "-L", "2k",
        ],
        None,
    )
    .ok();
}
