//! Untrusted files: utk reads and writes only where the user pointed it. Planted symlinks at
//! every temporary name are never written through; manifests that name files outside their
//! directory (absolute, `..`, symlinks) are refused by `verify` and `inspect`; `--force` removes
//! only the regular files the previous manifest lists; crafted indexes with huge counts are
//! errors, not allocations.

use crate::common::*;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Every file `augment` can write, besides the manifest.
const OUTPUT_FILES: &[&str] = &[
    "tokens.bin",
    "tokens.idx",
    "loss_mask.bin",
    "loss_mask.idx",
    "tokens.olmo.bin",
    "loss_mask.olmo.bin",
    "tokens.npy",
    "loss_mask.npy",
    "provenance.spans",
    "provenance.docs",
    "manifest.json",
];

const VICTIM: &str = "do not overwrite\n";

fn victim(dir: &Path) -> std::path::PathBuf {
    let v = dir.join("victim.txt");
    std::fs::write(&v, VICTIM).unwrap();
    v
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn planted_symlinks_at_temporary_names_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let v = victim(tmp.path());
    for name in OUTPUT_FILES {
        symlink(&v, out.join(format!(".{name}.partial"))).unwrap();
    }
    let fmt = ["-L", "2048", "--format", "megatron,olmo,npy"];
    augment(&[&docs()], &qwen(), &out, &fmt);
    assert_eq!(std::fs::read_to_string(&v).unwrap(), VICTIM);
    utk(&["verify", &s(&out)], None).ok();
    // `utk tokenize` into a shared directory: its PREFIX.* temporaries too.
    let tok = tmp.path().join("tok");
    std::fs::create_dir(&tok).unwrap();
    for ext in ["bin", "idx", "json"] {
        symlink(&v, tok.join(format!(".corpus.{ext}.partial"))).unwrap();
    }
    let prefix = s(&tok.join("corpus"));
    utk(
        &["tokenize", &s(&docs()), "-t", &s(&qwen()), "-o", &prefix],
        None,
    )
    .ok();
    assert_eq!(std::fs::read_to_string(&v).unwrap(), VICTIM);
}

#[test]
fn force_removes_only_listed_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    augment(&[&docs()], &qwen(), &out, &["-L", "2048"]);
    // A file the manifest does not list stays; a listed name that is now a symlink is replaced
    // as an entry, and what it pointed to is untouched.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let v = victim(tmp.path());
    std::fs::remove_file(out.join("tokens.bin")).unwrap();
    symlink(&v, out.join("tokens.bin")).unwrap();
    augment(&[&docs()], &qwen(), &out, &["-L", "1000", "--force"]);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_to_string(&v).unwrap(), VICTIM);
    assert!(!std::fs::symlink_metadata(out.join("tokens.bin"))
        .unwrap()
        .file_type()
        .is_symlink());
    utk(&["verify", &s(&out)], None).ok();
}

/// Rewrites the manifest's entry for `file` to `path`.
fn point_manifest(out: &Path, file: &str, path: &str) {
    let m = out.join("manifest.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    for f in j["files"].as_array_mut().unwrap() {
        if f["path"] == file {
            f["path"] = path.into();
        }
    }
    std::fs::write(&m, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
}

#[test]
fn manifests_cannot_point_outside_their_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let v = victim(tmp.path());
    let made = |name: &str| {
        let out = tmp.path().join(name);
        augment(&[&docs()], &qwen(), &out, &["-L", "2048"]);
        out
    };
    let dotdot = made("dotdot");
    point_manifest(&dotdot, "provenance.docs", "../victim.txt");
    let absolute = made("absolute");
    point_manifest(&absolute, "provenance.docs", &s(&v));
    let linked = made("linked");
    std::fs::remove_file(linked.join("provenance.docs")).unwrap();
    symlink(&v, linked.join("provenance.docs")).unwrap();
    for (out, why) in [
        (&dotdot, "not a file inside the directory"),
        (&absolute, "not a file inside the directory"),
        (&linked, "outside the directory"),
    ] {
        utk(&["verify", &s(out)], None).fails_with(&[why, "refusing to read it"]);
        utk(&["inspect", &s(out), "--raw"], None).fails_with(&[why]);
    }
}

#[test]
fn crafted_counts_are_errors_not_allocations() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let run = |input: &Path, extra: &[&str]| {
        let mut a = vec![
            "augment".to_string(),
            s(input),
            "-t".into(),
            s(&qwen()),
            "-o".into(),
            s(&t.join(format!(
                "out-{}",
                input.file_name().unwrap().to_string_lossy()
            ))),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        utk(&a.iter().map(String::as_str).collect::<Vec<_>>(), None)
    };
    // A Megatron index claiming 2^40 sequences in a 34-byte file.
    let mut idx = b"MMIDIDX\x00\x00".to_vec();
    idx.extend(1u64.to_le_bytes());
    idx.push(8);
    idx.extend((1u64 << 40).to_le_bytes());
    idx.extend((1u64 << 40).to_le_bytes());
    std::fs::write(t.join("huge.idx"), &idx).unwrap();
    std::fs::write(t.join("huge.bin"), [0u8; 8]).unwrap();
    run(&t.join("huge"), &[]).fails_with(&["huge.idx", "counts"]);
    // A .npy shard declaring 2^62 elements.
    let dict = "{'descr': '<u4', 'fortran_order': False, 'shape': (4611686018427387904,), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend((dict.len() as u16).to_le_bytes());
    npy.extend(dict.as_bytes());
    npy.extend([0u8; 16]);
    std::fs::write(t.join("huge.npy"), &npy).unwrap();
    run(&t.join("huge.npy"), &[]).fails_with(&["huge.npy", "declares 4611686018427387904"]);
    // A datatrove index whose last end is 2^63.
    std::fs::write(t.join("huge.ds"), [0u8; 16]).unwrap();
    std::fs::write(t.join("huge.ds.index"), (1u64 << 63).to_le_bytes()).unwrap();
    run(&t.join("huge.ds"), &[]).fails_with(&["huge.ds", "neither uint16 nor uint32"]);
    // An output whose manifest claims 2^60 windows of 0 tokens, or of 2^20.
    let out = t.join("made");
    augment(&[&docs()], &qwen(), &out, &["-L", "2048"]);
    let m = out.join("manifest.json");
    let original = std::fs::read(&m).unwrap();
    for (windows, seq_len, why) in [
        (1u64 << 60, 0u64, "seq_len is 0"),
        (
            1u64 << 60,
            1 << 20,
            "the manifest says 1152921504606846976 windows",
        ),
    ] {
        let mut j: serde_json::Value = serde_json::from_slice(&original).unwrap();
        j["windows"] = windows.into();
        j["seq_len"] = seq_len.into();
        std::fs::write(&m, serde_json::to_vec(&j).unwrap()).unwrap();
        utk(&["verify", &s(&out)], None).fails_with(&[why]);
    }
}
