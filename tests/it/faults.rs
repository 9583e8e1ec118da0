//! Faults around a run: a file-size limit (standing in for a full disk or a quota) is a one-line
//! error naming the file, with every temporary file removed and no manifest; a second run into
//! an output that a run holds is refused at once, naming the holder; a lock left by a killed run
//! does not block the next one.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Names in `dir` (hidden ones too).
fn left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_file_size_limit_is_a_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 16 KiB per file: the token files of the fixture are larger.
    let script = format!(
        "ulimit -f 16; exec {} augment {} -t {} -o {} -L 2048 --format megatron,olmo,npy",
        env!("CARGO_BIN_EXE_utk"),
        s(&docs()),
        s(&qwen()),
        s(&out)
    );
    let run = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "the run succeeded under the limit");
    assert!(run.status.code().is_some(), "killed by a signal: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("File too large") && errors[0].contains(&s(&out.join("tokens"))),
        "{stderr}"
    );
    assert!(left(&out).is_empty(), "left behind: {:?}", left(&out));
}

#[test]
fn one_writer_per_output() {
    use std::os::fd::AsRawFd;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    augment(&[&docs()], &qwen(), &out, &["-L", "2048"]);
    // Another run holds the output: a second is refused before touching anything.
    let lock_path = out.join(".utk.lock");
    let held = std::fs::File::create(&lock_path).unwrap();
    std::fs::write(&lock_path, "4242").unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let before = std::fs::read(out.join("tokens.bin")).unwrap();
    let args = [
        "augment",
        &s(&docs()),
        "-t",
        &s(&qwen()),
        "-o",
        &s(&out),
        "-L",
        "1000",
        "--force",
    ]
    .map(String::from);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    utk(&refs, None).fails_with(&[&s(&out), "another utk run (process 4242)"]);
    assert_eq!(std::fs::read(out.join("tokens.bin")).unwrap(), before);
    assert!(out.join("manifest.json").exists());
    // The holder is gone (a killed run): its lock file stays, unlocked, and blocks nothing.
    drop(held);
    assert!(lock_path.exists());
    utk(&refs, None).ok();
    assert!(!lock_path.exists());
    utk(&["verify", &s(&out)], None).ok();
}
