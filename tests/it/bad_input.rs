//! Bad input gets a one-line error naming the file, line or flag — never a panic, never a
//! manifest, never a leftover temporary file.

use crate::common::*;
use std::path::Path;
use utk::output::reader::OutputReader;

const GOOD: &str = "{\"text\":\"A good line of text.\"}\n";

/// Runs augment on `input` and checks it fails with `needles`, leaving nothing that looks done.
fn rejects(input: &Path, extra: &[&str], needles: &[&str]) {
    let out = input.with_extension("out");
    let (i, o, q) = (
        input.display().to_string(),
        out.display().to_string(),
        qwen().display().to_string(),
    );
    let mut args = vec!["augment", i.as_str(), "-t", q.as_str(), "-o", o.as_str()];
    if !extra.contains(&"--seq-len") {
        args.extend_from_slice(&["-L", "256"]);
    }
    args.extend_from_slice(extra);
    let run = utk(&args, None).fails_with(needles);
    // One error line (clap adds a hint line for flag errors).
    let errors = run.stderr().lines().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "one error line expected:\n{}", run.stderr());
    assert!(
        !out.join("manifest.json").exists(),
        "a failed run wrote a manifest"
    );
    if out.exists() {
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "a failed run left files: {left:?}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_lines_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let many_good = GOOD.repeat(40);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "malformed.jsonl",
            format!("{many_good}{{\"text\": \"oops\n").into_bytes(),
            vec!["malformed.jsonl:41:", "malformed JSON", "--skip-bad-lines"],
        ),
        (
            "missing.jsonl",
            format!("{GOOD}{{\"content\":\"x\"}}\n").into_bytes(),
            vec!["missing.jsonl:2:", "no \"text\" field", "--text-key"],
        ),
        (
            "number.jsonl",
            format!("{GOOD}{GOOD}{{\"text\":17}}\n").into_bytes(),
            vec!["number.jsonl:3:", "is a number"],
        ),
        (
            "array.jsonl",
            b"[1,2]\n".to_vec(),
            vec!["array.jsonl:1:", "JSON object"],
        ),
        (
            "utf8.jsonl",
            [GOOD.as_bytes(), b"{\"text\":\"caf\xe9\"}\n"].concat(),
            vec!["utf8.jsonl:2:", "invalid UTF-8 at byte 12"],
        ),
    ];
    for (name, bytes, needles) in cases {
        rejects(&write(d, name, &bytes), &[], &needles);
    }
}

#[test]
fn broken_files_and_streams_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    rejects(
        &write(d, "empty.jsonl", b""),
        &[],
        &["empty.jsonl", "is empty"],
    );
    rejects(
        &write(d, "blank.jsonl", b"\n\n  \n"),
        &[],
        &["blank.jsonl", "no documents"],
    );
    let body = GOOD.repeat(2000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    rejects(
        &write(d, "cut.jsonl.gz", &gz[..gz.len() - 9]),
        &[],
        &["cut.jsonl.gz", "gzip stream is corrupt or truncated"],
    );
    let zst = zstd::encode_all(body.as_bytes(), 3).unwrap();
    rejects(
        &write(d, "cut.jsonl.zst", &zst[..zst.len() / 2]),
        &[],
        &["cut.jsonl.zst", "zstd stream is corrupt or truncated"],
    );
    let empty_gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
        .finish()
        .unwrap();
    rejects(
        &write(d, "nothing.jsonl.gz", &empty_gz),
        &[],
        &["nothing.jsonl.gz", "no documents"],
    );
    rejects(
        &d.join("does-not-exist.jsonl"),
        &[],
        &["does-not-exist.jsonl", "does not exist"],
    );
    rejects(&d.join("*.nomatch"), &[], &["matches no files"]);
}

#[test]
fn bad_flag_values_name_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "ok.jsonl", GOOD.as_bytes());
    rejects(&input, &["--seq-len", "12x"], &["--seq-len", "12x"]);
    rejects(&input, &["--split-prob", "1.5"], &["--split-prob"]);
    rejects(&input, &["--chunks", "1:1"], &["--chunks", "2 to 1024"]);
    rejects(&input, &["--threads", "0"], &["--threads"]);
    rejects(&input, &["--label-len", "0"], &["--label-len"]);
    rejects(&input, &["--order", "random"], &["--order"]);
    rejects(
        &input,
        &["--chunking", "fixed", "--chunk-tokens", "0"],
        &["--chunk-tokens"],
    );
    let o = tmp.path().join("o").display().to_string();
    let i = input.display().to_string();
    utk(
        &["augment", &i, "-t", "/nonexistent/tokenizer.json", "-o", &o],
        None,
    )
    .fails_with(&["--tokenizer", "/nonexistent/tokenizer.json"]);
    let junk = write(tmp.path(), "tokenizer.json", b"{\"not\": \"a tokenizer\"}");
    utk(
        &["augment", &i, "-t", &junk.display().to_string(), "-o", &o],
        None,
    )
    .fails_with(&["--tokenizer", "tokenizer.json"]);
    // Not UTF-8: named with the byte where it stops being text, whichever backend reads it
    // (the fast encoder's and the crate's reads share one check).
    let mut json = std::fs::read(qwen()).unwrap();
    let at = json.len() / 2;
    json[at] = 0xff;
    let bad = write(tmp.path(), "bad-tokenizer.json", &json);
    for backend in ["auto", "tokenizers", "fast"] {
        utk(
            &[
                "augment",
                &i,
                "-t",
                &bad.display().to_string(),
                "-o",
                &o,
                "--tokenizer-backend",
                backend,
            ],
            None,
        )
        .fails_with(&[
            "bad-tokenizer.json: not UTF-8 text",
            &format!("at byte {at}"),
        ]);
    }
}

#[test]
fn skip_bad_lines_counts_and_records_them() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        "mixed.jsonl",
        format!("{GOOD}{{bad\n\n{GOOD}{{\"text\":null}}\n{GOOD}").as_bytes(),
    );
    let out = tmp.path().join("o");
    let run = augment(&[&input], &qwen(), &out, &["-L", "64", "--skip-bad-lines"]);
    assert!(
        run.stdout().contains("2 bad lines skipped"),
        "{}",
        run.stdout()
    );
    let m = OutputReader::open(&out).unwrap().manifest;
    assert_eq!(
        (
            m.counts.documents,
            m.counts.bad_lines.count,
            m.counts.blank_lines
        ),
        (3, 2, 1)
    );
    assert!(
        m.counts.bad_lines.examples[0].contains("mixed.jsonl:2: malformed JSON"),
        "{:?}",
        m.counts.bad_lines
    );
    assert!(m.counts.bad_lines.examples[1].contains("mixed.jsonl:5: field \"text\" is null"));
    // Line numbers in the provenance sidecar count blank and skipped lines too.
    let lines: Vec<u64> = OutputReader::open(&out)
        .unwrap()
        .docs()
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![1, 4, 6]);
}

#[test]
fn an_existing_output_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "ok.jsonl", GOOD.as_bytes());
    let out = tmp.path().join("o");
    augment(&[&input], &qwen(), &out, &["-L", "64"]);
    let (i, o, q) = (
        input.display().to_string(),
        out.display().to_string(),
        qwen().display().to_string(),
    );
    utk(&["augment", &i, "-t", &q, "-o", &o, "-L", "64"], None)
        .fails_with(&["already holds a utk output", "--force"]);
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    utk(
        &["augment", &i, "-t", &q, "-o", &other.display().to_string()],
        None,
    )
    .fails_with(&["is not empty"]);
    utk(
        &["augment", &i, "-t", &q, "-o", &o, "-L", "128", "--force"],
        None,
    )
    .ok();
    assert_eq!(OutputReader::open(&out).unwrap().manifest.seq_len, 128);
    // A forced run that fails leaves no manifest claiming the old output is complete.
    let bad = write(tmp.path(), "bad.jsonl", b"{nope}\n");
    utk(
        &[
            "augment",
            &bad.display().to_string(),
            "-t",
            &q,
            "-o",
            &o,
            "--force",
        ],
        None,
    )
    .fails_with(&["bad.jsonl:1:"]);
    assert!(!out.join("manifest.json").exists());
    assert!(OutputReader::open(&out)
        .err()
        .unwrap()
        .to_string()
        .contains("did not finish"));
}
