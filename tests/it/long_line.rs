//! Very long JSONL lines streamed in bounded pieces (issue 15, item 1): the same bytes as the
//! whole-line path, whatever the block edges, and a broken line still an error naming its line.
//!
//! `UTK_LONG_LINE_BYTES` lowers the streaming threshold (16 MiB) so that small fixtures stream;
//! it also makes the text pieces and the encoder's cuts that small, so escapes, multibyte
//! characters and cuts land on every kind of edge.

use crate::common::{qwen, MODES};
use std::path::Path;
use std::process::Output;

/// A text of `lines` lines with escapes, multibyte characters, special-token spellings and
/// safe cut places (`\n` then a letter) throughout.
fn long_text(lines: usize) -> String {
    let pieces = [
        "Plain words, and then more.",
        "é中😀 \"quoted\" back\\slash\ttab",
        "<|im_start|>user said: <|im_end|>",
        "  indented (2) and 3 digits 456",
        "\u{1}\u{1f}\u{7f} controls, é vs e\u{301}, ﬁ",
    ];
    (0..lines)
        .map(|i| format!("{} {i}\n", pieces[i % pieces.len()]))
        .collect()
}

/// Writes the corpus: short documents around long ones, the text field first, after other
/// fields (one of them a nested "text"), escaped as ASCII or as raw UTF-8.
fn corpus(dir: &Path) -> std::path::PathBuf {
    let text = long_text(400);
    let lines = [
        serde_json::json!({"text": "short first"}).to_string(),
        serde_json::json!({"text": text, "id": 1}).to_string(),
        serde_json::json!({"text": "short between"}).to_string(),
        ascii_escaped(
            &serde_json::json!({"id": "x", "meta": {"text": "no"}, "text": text[77..].to_string()})
                .to_string(),
        ),
        serde_json::json!({"text": format!("{}{}", text, text), "after": [1, {"a": "b"}]})
            .to_string(),
        serde_json::json!({"text": "short last"}).to_string(),
    ];
    let path = dir.join("long.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Every non-ASCII character as a `\u` escape (surrogate pairs above U+FFFF).
fn ascii_escaped(json: &str) -> String {
    json.chars()
        .map(|c| match c as u32 {
            0..=0x7f => c.to_string(),
            _ => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("\\u{u:04x}"))
                .collect(),
        })
        .collect()
}

fn run(input: &Path, out: &Path, extra: &[&str], threshold: Option<usize>) -> Output {
    let mut cmd = crate::common::utk_command();
    cmd.arg("augment")
        .arg(input)
        .arg("-t")
        .arg(qwen())
        .arg("-o")
        .arg(out)
        .args(["-q", "--force"])
        .args(extra);
    match threshold {
        Some(n) => cmd.env("UTK_LONG_LINE_BYTES", n.to_string()),
        None => cmd.env_remove("UTK_LONG_LINE_BYTES"),
    };
    cmd.output().expect("run utk")
}

/// Every file but the manifest (its command line and timings differ), by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn streamed_lines_give_the_same_bytes_as_whole_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let input = corpus(tmp.path());
    let modes: Vec<&[&str]> = MODES
        .iter()
        .copied()
        .chain([&["-L", "500", "--method", "cip"][..]])
        .collect();
    for (m, mode) in modes.iter().enumerate() {
        let whole = tmp.path().join(format!("whole{m}"));
        let out = run(&input, &whole, mode, None);
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = files(&whole);
        assert!(want.iter().any(|(n, _)| n == "provenance.docs"));
        // Thresholds that put the first block's edge, the pieces and the encoder's cuts at
        // different places (inside escapes and multibyte characters among them).
        let thresholds: &[usize] = if m == 0 {
            &[16, 17, 18, 19, 21, 23, 64, 100, 333, 4096]
        } else {
            &[29, 1000]
        };
        for &t in thresholds {
            let streamed = tmp.path().join(format!("streamed{m}-{t}"));
            let out = run(&input, &streamed, mode, Some(t));
            assert!(
                out.status.success(),
                "{mode:?} {t}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got = files(&streamed);
            assert_eq!(got.len(), want.len(), "{mode:?} {t}");
            for ((n, a), (_, b)) in want.iter().zip(&got) {
                assert!(a == b, "{mode:?}, threshold {t}: {n} differs");
            }
        }
    }
}

#[test]
fn a_broken_long_line_is_an_error_naming_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = serde_json::to_string(&long_text(200)).unwrap();
    let body = &text[1..text.len() - 1];
    let cases = [
        // Broken inside the string, far from its start: found while streaming.
        (
            format!("{{\"text\": \"{body}\\x{body}\"}}"),
            "invalid escape",
        ),
        (
            format!("{{\"text\": \"{body}\\ud800 {body}\"}}"),
            "lone surrogate",
        ),
        // Broken after the string: found by checking the line once it ends.
        (
            format!("{{\"text\": \"{body}\", \"id\": tru}}"),
            "malformed JSON",
        ),
        (
            format!("{{\"text\": \"{body}\"}} trailing"),
            "malformed JSON",
        ),
        // The input ends inside the string.
        (
            format!("{{\"text\": \"{body}"),
            "ends inside the text string",
        ),
    ];
    for (i, (line, what)) in cases.iter().enumerate() {
        let input = tmp.path().join(format!("broken{i}.jsonl"));
        let after = match i {
            4 => "", // the file ends inside the string
            _ => "\n{\"text\": \"ok\"}\n",
        };
        std::fs::write(&input, format!("{{\"text\": \"ok\"}}\n{line}{after}")).unwrap();
        let out_dir = tmp.path().join(format!("out{i}"));
        let out = run(&input, &out_dir, &["-L", "256"], Some(100));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(&format!("broken{i}.jsonl:2: ")) && err.contains(what),
            "{what}: {err}"
        );
        assert!(
            !out_dir.join("manifest.json").exists(),
            "{what}: a manifest was written"
        );
        // The whole-line path refuses it too.
        assert!(!run(&input, &out_dir, &["-L", "256"], None).status.success());
    }
}
