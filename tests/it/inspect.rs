//! `utk inspect`: text, JSON, raw ids, summary and plot of a real output.

use crate::common::*;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use utk::output::reader::OutputReader;

fn output(tmp: &Path, extra: &[&str]) -> String {
    let out = tmp.join("o");
    augment(&[&docs()], &qwen(), &out, extra);
    out.display().to_string()
}

#[test]
fn text_shows_structure_and_map() {
    let tmp = tempfile::tempdir().unwrap();
    let o = output(tmp.path(), &["-L", "2048", "--seed", "3"]);
    let plain = utk(&["inspect", &o, "--window", "1", "--color", "never"], None)
        .ok()
        .stdout();
    assert!(plain.starts_with("window 1 of "), "{plain}");
    for needle in [
        "⟦⟨CL⟩⟧",
        "⟦⟨/CL⟩⟧",
        "⟦⟨T1⟩⟧",
        "⟦⟨H1⟩⟧",
        "⟦⟨S⟩⟧",
        "⟨/S⟩",
        "⟨EOD⟩",
        "map of window 1",
        "tests/fixtures/docs.jsonl:",
        "backtrace",
    ] {
        assert!(plain.contains(needle), "missing {needle}:\n{plain}");
    }
    assert!(!plain.contains('\x1b'));
    let colored = utk(&["inspect", &o, "-w", "1", "--color", "always"], None)
        .ok()
        .stdout();
    assert!(colored.contains("\x1b[2;33m⟨CL⟩"));
    let short = utk(
        &[
            "inspect",
            &o,
            "-w",
            "1",
            "--max-chars",
            "40",
            "--color",
            "never",
        ],
        None,
    )
    .ok()
    .stdout();
    assert!(short.contains("tokens hidden …]"));
    let raw = utk(
        &["inspect", &o, "-w", "1", "--raw", "--color", "never"],
        None,
    )
    .ok()
    .stdout();
    assert!(raw.contains("⟦⟨CL⟩⟧") && raw.split_whitespace().any(|w| w.parse::<u32>().is_ok()));
    // --random is reproducible.
    let a = utk(
        &["inspect", &o, "--random", "--seed", "9", "--color", "never"],
        None,
    )
    .ok()
    .stdout();
    let b = utk(
        &["inspect", &o, "--random", "--seed", "9", "--color", "never"],
        None,
    )
    .ok()
    .stdout();
    assert_eq!(a, b);
    utk(&["inspect", &o, "--window", "999"], None).fails_with(&["--window 999", "windows"]);
}

#[test]
fn json_matches_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let o = output(tmp.path(), &["-L", "2048"]);
    let reader = OutputReader::open(Path::new(&o)).unwrap();
    for w in 0..reader.windows() {
        let s = utk(
            &["inspect", &o, "--window", &w.to_string(), "--json", "--raw"],
            None,
        )
        .ok()
        .stdout();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        let mask: Vec<u8> = serde_json::from_value(v["mask"].clone()).unwrap();
        assert_eq!(tokens, reader.window_tokens(w));
        assert_eq!(mask, reader.window_mask(w));
        let chunks = v["chunks"].as_array().unwrap();
        let spans: Vec<_> = reader.spans().filter(|s| s.window == w).collect();
        assert_eq!(chunks.len(), spans.len());
        for (c, s) in chunks.iter().zip(spans) {
            assert_eq!(c["content"]["start"], s.start);
            assert_eq!(c["doc"], s.doc);
        }
    }
    let s = utk(&["inspect", &o, "--json"], None).ok().stdout();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert!(v["chunks"][0]["text"].is_string() && v.get("tokens").is_none());
}

#[test]
fn summary_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let o = output(tmp.path(), &["-L", "4096"]);
    let svg = tmp.path().join("knots.svg");
    let s = utk(
        &[
            "inspect",
            &o,
            "--summary",
            "--plot",
            &svg.display().to_string(),
        ],
        None,
    )
    .ok()
    .stdout();
    for needle in [
        "windows of 4096 tokens",
        "overhead",
        "pieces by chunk count",
        "knot distances",
        "plot written",
    ] {
        assert!(s.contains(needle), "missing {needle}:\n{s}");
    }
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.matches("<rect").count() > 10);
    utk(&["inspect", &o, "--summary", "--plot", "x.png"], None).fails_with(&["only .svg"]);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = output(tmp.path(), &["-L", "64k"]);
    let mut child = crate::common::utk_command()
        .args(["inspect", &o, "--json", "--raw"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped here, with most of the output (about 400 KB) unwritten.
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
