//! `--tokenizer-backend`: the fast encoder is taken when it supports the file, says so in the
//! summary and the manifest, writes exactly the bytes the crate backend writes, and refuses
//! clearly when asked for a file it does not support.

use crate::common::*;
use utk::output::reader::OutputReader;

fn augment(dir: &std::path::Path, tokenizer: &std::path::Path, extra: &[&str]) -> Run {
    let docs = docs();
    let mut args = vec![
        "augment",
        docs.to_str().unwrap(),
        "-t",
        tokenizer.to_str().unwrap(),
        "-L",
        "1024",
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    utk(&args, None)
}

#[test]
fn fast_and_crate_backends_write_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--parse-special"], &["--add-special-tokens"]] {
        let auto = tmp.path().join("auto");
        let slow = tmp.path().join("slow");
        let mut a = extra.to_vec();
        a.push("--force");
        let run = augment(&auto, &qwen(), &a).ok();
        assert!(
            run.stdout().contains("tokenizer      fast-bpe ("),
            "{}",
            run.stdout()
        );
        a.extend(["--tokenizer-backend", "tokenizers"]);
        let run = augment(&slow, &qwen(), &a).ok();
        assert!(
            run.stdout().contains("tokenizer      tokenizers ("),
            "{}",
            run.stdout()
        );
        for f in [
            "tokens.bin",
            "loss_mask.bin",
            "tokens.idx",
            "provenance.docs",
        ] {
            let x = std::fs::read(auto.join(f)).unwrap();
            let y = std::fs::read(slow.join(f)).unwrap();
            assert!(x == y, "{f} differs between backends with {extra:?}");
        }
        let m = OutputReader::open(&auto).unwrap().manifest;
        assert_eq!(m.tokenizer.backend, "fast-bpe");
        assert!(m.tokenizer.backend_detail.contains("qwen2 split pattern"));
        let m = OutputReader::open(&slow).unwrap().manifest;
        assert_eq!(m.tokenizer.backend, "tokenizers");
    }
}

#[test]
fn unsupported_tokenizers_fall_back_or_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let run = augment(&out, &minilm(), &[]).ok();
    assert!(
        run.stdout()
            .contains("tokenizers (fast encoder not used: model WordPiece"),
        "{}",
        run.stdout()
    );
    let m = OutputReader::open(&out).unwrap().manifest;
    assert_eq!(m.tokenizer.backend, "tokenizers");
    augment(
        &tmp.path().join("p"),
        &minilm(),
        &["--tokenizer-backend", "fast"],
    )
    .fails_with(&["--tokenizer-backend fast", "model WordPiece"]);
}
