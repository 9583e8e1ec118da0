//! `-o -`: the windows as JSON lines on standard output, nothing on disk, the summary on standard
//! error, and a reader that closes the pipe early ends the run quietly with status 0.

use crate::common::*;
use std::io::Read;
use std::process::Stdio;
use utk::output::reader::OutputReader;

#[test]
fn windows_go_to_stdout_as_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("npy");
    let mode = ["-L", "512", "--seed", "9"];
    augment(
        &[&docs()],
        &qwen(),
        &dir,
        &[&mode[..], &["--format", "npy"]].concat(),
    );
    let (d, q) = (docs().display().to_string(), qwen().display().to_string());
    let mut args = vec!["augment", &d, "-t", &q, "-o", "-"];
    args.extend_from_slice(&mode);
    let run = utk(&args, None).ok();
    assert!(
        !std::path::Path::new("-").exists(),
        "a directory named - was created"
    );
    assert!(run
        .stderr()
        .contains("windows of 512 tokens to standard output"));
    let npy = OutputReader::open(&dir).unwrap();
    let lines: Vec<String> = run.stdout().lines().map(String::from).collect();
    assert_eq!(lines.len() as u64, npy.windows());
    for (w, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ids: Vec<u32> = serde_json::from_value(v["input_ids"].clone()).unwrap();
        let mask: Vec<u8> = serde_json::from_value(v["loss_mask"].clone()).unwrap();
        assert_eq!(ids, npy.window_tokens(w as u64));
        assert_eq!(mask, npy.window_mask(w as u64));
    }
    // Text read from standard input, windows written to standard output.
    let text = std::fs::read(docs()).unwrap();
    let mut args = vec!["augment", "-", "-t", &q, "-o", "-", "--quiet"];
    args.extend_from_slice(&mode);
    let piped = utk(&args, Some(&text)).ok();
    assert_eq!(piped.stdout(), run.stdout());
    assert_eq!(piped.stderr(), "");
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child = crate::common::utk_command()
        .args(["augment", &docs().display().to_string()])
        .args(["-t", &qwen().display().to_string(), "-o", "-", "-L", "64"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's read end is closed here, long before the ~700 windows are written.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with(b"{\"input_ids\": ["));
    assert!(out.status.success(), "status {}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn what_needs_a_directory_is_refused_on_a_stream() {
    let (d, q) = (docs().display().to_string(), qwen().display().to_string());
    for (flags, what) in [
        (&["--upsample-long", "100:2"][..], "--upsample-long"),
        (
            &["--method", "plain", "--doc-boundaries"][..],
            "--doc-boundaries",
        ),
        (&["--num-shards", "2", "--shard-index", "0"][..], "a part"),
    ] {
        let mut args = vec!["augment", &d, "-t", &q, "-o", "-", "-L", "512"];
        args.extend_from_slice(flags);
        let run = utk(&args, None).fails_with(&[what, "needs an output directory"]);
        assert!(run.stdout().is_empty(), "{what}: windows were written");
    }
}
