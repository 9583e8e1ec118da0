//! Replays the inputs the fuzz targets (`fuzz/`, see `docs/fuzzing.md`) found interesting —
//! every crash fixed since, and a minimised corpus per target — through the same entry points
//! (`utk::fuzzing`), on stable Rust. A panic fails the test and names the file.

use std::path::Path;

fn regressions() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

#[test]
fn every_target_has_regression_inputs() {
    for (name, _) in utk::fuzzing::TARGETS {
        let dir = regressions().join(name);
        let n = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .count();
        assert!(n > 0, "{} holds no input", dir.display());
    }
}

#[test]
fn regression_inputs_do_not_panic() {
    for (name, target) in utk::fuzzing::TARGETS {
        let dir = regressions().join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{} panicked", file.display());
        }
    }
}

#[test]
fn empty_and_tiny_inputs_do_not_panic() {
    for (_, target) in utk::fuzzing::TARGETS {
        for data in [&b""[..], b"\0", b"\xff\xff", b"{}", b"PAR1"] {
            target(data);
        }
    }
}
