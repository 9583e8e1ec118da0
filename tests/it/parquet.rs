//! Parquet input (tests/fixtures/parquet/, made by scripts/make-parquet-fixtures.py from
//! docs.jsonl): the same documents as parquet and as JSONL give byte-identical windows, whatever
//! the codec, string type or nesting; every bad file or row gets a one-line error naming the file
//! and row; provenance records row indices.

use crate::common::*;
use std::path::{Path, PathBuf};
use utk::output::reader::OutputReader;

fn pq(name: &str) -> PathBuf {
    fixture("parquet").join(name)
}

/// The token and mask bytes of an output (megatron and npy), for comparing runs.
fn window_bytes(out: &Path) -> Vec<Vec<u8>> {
    [
        "tokens.bin",
        "tokens.idx",
        "loss_mask.bin",
        "tokens.npy",
        "loss_mask.npy",
    ]
    .iter()
    .map(|f| std::fs::read(out.join(f)).unwrap())
    .collect()
}

fn run(input: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["-L", "1000", "--format", "megatron,npy", "--seed", "3"];
    args.extend_from_slice(extra);
    augment(&[input], &qwen(), out, &args)
}

/// The first `n` documents of docs.jsonl as a JSONL file.
fn first_docs(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(docs()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let p = dir.join(format!("first{n}.jsonl"));
    std::fs::write(&p, lines[..n].join("\n") + "\n").unwrap();
    p
}

#[test]
fn parquet_and_jsonl_give_identical_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let first20 = first_docs(t, 20);
    let first30 = first_docs(t, 30);
    let cases: Vec<(PathBuf, PathBuf, &[&str])> = vec![
        (docs(), pq("docs.parquet"), &[]),
        (docs(), pq("docs.parquet"), &["--input-format", "parquet"]),
        (first20.clone(), pq("docs-large-snappy.parquet"), &[]),
        (first20, pq("docs-binary-gzip.parquet"), &[]),
        (
            first30.clone(),
            pq("nested.parquet"),
            &["--text-key", "meta.content"],
        ),
        (
            first30.clone(),
            pq("nested.jsonl"),
            &["--text-key", "meta.content"],
        ),
        (
            first30.clone(),
            pq("nested.parquet"),
            &["--text-key", r"a\.b"],
        ),
        (first30, pq("nested.jsonl"), &["--text-key", r"a\.b"]),
    ];
    for (i, (jsonl, other, extra)) in cases.into_iter().enumerate() {
        let (a, b) = (t.join(format!("j{i}")), t.join(format!("p{i}")));
        run(&jsonl, &a, &[]);
        run(&other, &b, extra);
        assert!(
            window_bytes(&a) == window_bytes(&b),
            "{} {extra:?} differs from {}",
            other.display(),
            jsonl.display()
        );
    }
}

#[test]
fn provenance_records_row_indices_and_verify_reads_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run(&pq("docs.parquet"), &out, &[]);
    let o = OutputReader::open(&out).unwrap();
    assert_eq!(o.manifest.input.format, "parquet");
    let rows: Vec<u64> = o.docs().map(|d| d.line).collect();
    assert_eq!(rows, (0..rows.len() as u64).collect::<Vec<_>>());
    assert_eq!(rows.len() as u64, o.manifest.counts.documents);
    let (o, i, q) = (
        out.display().to_string(),
        pq("docs.parquet").display().to_string(),
        qwen().display().to_string(),
    );
    utk(&["verify", &o, "--input", &i, "-t", &q], None).ok();
    // The output was made from parquet rows: the JSONL of the same documents is another input.
    let d = docs().display().to_string();
    utk(&["verify", &o, "--input", &d, "-t", &q], None).fails_with(&[]);
}

#[test]
fn utk_tokenize_reads_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let q = qwen().display().to_string();
    let mut bins = Vec::new();
    for (name, input) in [("j", docs()), ("p", pq("docs.parquet"))] {
        let prefix = tmp.path().join(name).display().to_string();
        let i = input.display().to_string();
        utk(&["tokenize", &i, "-t", &q, "-o", &prefix, "--quiet"], None).ok();
        bins.push(std::fs::read(format!("{prefix}.bin")).unwrap());
    }
    assert!(bins[0] == bins[1]);
}

#[test]
fn null_and_non_utf8_rows_are_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, rows) in [("nulls.parquet", vec![2, 4]), ("bad-utf8.parquet", vec![1])] {
        let out = tmp.path().join(file);
        run(&pq(file), &out, &["--skip-bad-lines"]);
        let o = OutputReader::open(&out).unwrap();
        let bad = &o.manifest.counts.bad_lines;
        assert_eq!(bad.count, rows.len() as u64);
        for (example, row) in bad.examples.iter().zip(&rows) {
            assert!(
                example.contains(&format!("{file}: row {row}: ")),
                "{example}"
            );
        }
        let kept: Vec<u64> = o.docs().map(|d| d.line).collect();
        let all = if file == "nulls.parquet" { 6 } else { 4 };
        let expected: Vec<u64> = (0..all).filter(|r| !rows.contains(r)).collect();
        assert_eq!(kept, expected);
    }
}

/// Runs augment on `input` and checks the one-line error, and that nothing was left behind.
fn rejects(input: &Path, extra: &[&str], needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (i, o, q) = (
        input.display().to_string(),
        out.display().to_string(),
        qwen().display().to_string(),
    );
    let mut args = vec!["augment", &i, "-t", &q, "-o", &o, "-L", "256"];
    args.extend_from_slice(extra);
    let run = utk(&args, None).fails_with(needles);
    let errors = run.stderr().lines().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "one error line expected:\n{}", run.stderr());
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn bad_parquet_gets_a_one_line_error_naming_file_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("a.jsonl");
    std::fs::write(&jsonl, "{\"text\":\"hello\"}\n").unwrap();
    let cases: Vec<(PathBuf, Vec<&str>, Vec<&str>)> = vec![
        (
            pq("nulls.parquet"),
            vec![],
            vec!["nulls.parquet: row 2: the text is null", "--skip-bad-lines"],
        ),
        (
            pq("bad-utf8.parquet"),
            vec![],
            vec!["bad-utf8.parquet: row 1:", "not UTF-8", "--skip-bad-lines"],
        ),
        (
            pq("truncated.parquet"),
            vec![],
            vec![
                "truncated.parquet: not a readable parquet file",
                "truncated or corrupt",
            ],
        ),
        (
            pq("corrupt.parquet"),
            vec![],
            vec![
                "corrupt.parquet: rows 7 to 13 (row group 1) cannot be read",
                "corrupt",
            ],
        ),
        (
            pq("empty.parquet"),
            vec![],
            vec!["empty.parquet: no documents"],
        ),
        (
            pq("docs.parquet"),
            vec!["--text-key", "body"],
            vec![
                "docs.parquet: no column \"body\" (columns: id, text, n)",
                "--text-key",
            ],
        ),
        (
            pq("nested.parquet"),
            vec![],
            vec![
                "nested.parquet: column \"text\" is Int64, not a string or binary column",
                "--text-key",
            ],
        ),
        (
            pq("nested.parquet"),
            vec!["--text-key", "meta.body"],
            vec!["no column \"meta.body\" (fields of \"meta\": lang, content)"],
        ),
        (
            pq("nested.parquet"),
            vec!["--text-key", "id.x"],
            vec!["column \"id\" is Utf8, not a struct"],
        ),
        (
            pq("nested.parquet"),
            vec!["--text-key", "meta"],
            vec!["column \"meta\" is Struct", "not a string or binary column"],
        ),
        (
            pq("nested.parquet"),
            vec!["--text-key", "a..b"],
            vec!["--text-key \"a..b\" has an empty field name", r"\."],
        ),
        (
            jsonl.clone(),
            vec!["--input-format", "parquet"],
            vec!["a.jsonl is not a parquet file", "--input-format"],
        ),
    ];
    for (input, extra, needles) in &cases {
        rejects(input, extra, needles);
    }
    // A mix of parquet and JSONL in one run, and parquet on standard input.
    let (p, j, q) = (
        pq("docs.parquet").display().to_string(),
        jsonl.display().to_string(),
        qwen().display().to_string(),
    );
    let o = tmp.path().join("mix").display().to_string();
    utk(&["augment", &p, &j, "-t", &q, "-o", &o], None).fails_with(&[
        "inputs mix parquet",
        "docs.parquet",
        "a.jsonl",
    ]);
    utk(
        &[
            "augment",
            "-",
            "--input-format",
            "parquet",
            "-t",
            &q,
            "-o",
            &o,
        ],
        None,
    )
    .fails_with(&["standard input", "--input-format"]);
}

#[test]
fn parquet_output_holds_the_windows_of_the_other_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let mode = ["-L", "777", "--seed", "5", "--format"];
    augment(
        &[&docs()],
        &qwen(),
        &a,
        &[&mode[..], &["npy,parquet", "-j", "1"]].concat(),
    );
    augment(
        &[&docs()],
        &qwen(),
        &b,
        &[&mode[..], &["parquet", "-j", "2"]].concat(),
    );
    // 32-bit ids above 2^31 cannot happen with real vocabularies; 70000 stays int32.
    augment(
        &[&docs()],
        &qwen(),
        &c,
        &[&mode[..], &["parquet", "--special-base", "70000"]].concat(),
    );
    let file = |d: &Path| std::fs::read(d.join("windows.parquet")).unwrap();
    assert!(
        file(&a) == file(&b),
        "thread count or other formats changed the parquet bytes"
    );
    let npy = OutputReader::open_format(&a, utk::output::Format::Npy).unwrap();
    for dir in [&a, &b, &c] {
        let pq = OutputReader::open_format(dir, utk::output::Format::Parquet).unwrap();
        assert_eq!(pq.token_dtype.name(), "int32");
        let listed = pq
            .manifest
            .files
            .iter()
            .find(|f| f.path == "windows.parquet")
            .unwrap();
        assert_eq!(
            listed.bytes,
            std::fs::metadata(dir.join("windows.parquet"))
                .unwrap()
                .len()
        );
        if dir == &c {
            assert!((0..pq.windows()).any(|w| pq.window_tokens(w).iter().any(|&t| t >= 70000)));
            continue;
        }
        assert_eq!(pq.windows(), npy.windows());
        for w in 0..npy.windows() {
            assert_eq!(pq.window_tokens(w), npy.window_tokens(w));
            assert_eq!(pq.window_mask(w), npy.window_mask(w));
        }
    }
    let (b, q) = (b.display().to_string(), qwen().display().to_string());
    let d = docs().display().to_string();
    utk(&["verify", &b, "--input", &d, "-t", &q], None).ok();
}
