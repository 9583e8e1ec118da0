//! The tokenizer cache (`--tokenizer-cache`): a second run reads the fast encoder's tables from
//! it and writes the same bytes; an entry is found by the tokenizer file's content, and a damaged,
//! foreign or unwritable cache never changes the output or fails the run.

use crate::common::{docs, fixture, utk, Run};
use std::path::{Path, PathBuf};

/// Byte-level and SentencePiece-style fixtures (the two builders the cache serves).
const FIXTURES: &[&str] = &[
    "qwen3-mini",
    "o200k-mini",
    "deepseek-mini",
    "cl100k-mini",
    "nfkc-mini",
    "llama2-mini",
    "gemma-mini",
];

fn tokenizer(name: &str) -> PathBuf {
    fixture(&format!("tokenizers/{name}/tokenizer.json"))
}

/// `utk tokenize DOCS -t TOK -o PREFIX --tokenizer-cache CACHE`, asserting success; the ids.
fn tokenize(tok: &Path, out: &Path, name: &str, cache: &str) -> (Run, Vec<u8>) {
    std::fs::create_dir_all(out.join("out")).unwrap();
    let prefix = out.join("out").join(name);
    let run = utk(
        &[
            "tokenize",
            &docs().display().to_string(),
            "-t",
            &tok.display().to_string(),
            "-o",
            &prefix.display().to_string(),
            "--tokenizer-cache",
            cache,
            "--force",
        ],
        None,
    )
    .ok();
    let bin = std::fs::read(prefix.with_extension("bin")).unwrap();
    (run, bin)
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    list.sort();
    list
}

fn says(run: &Run, what: &str) {
    assert!(run.stdout().contains(what), "{what:?}\n{}", run.explain());
}

#[test]
fn a_second_run_reads_the_tables_from_the_cache_and_writes_the_same_ids() {
    for name in FIXTURES {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let c = cache.to_str().unwrap();
        let tok = tokenizer(name);
        let (off, reference) = tokenize(&tok, tmp.path(), "off", "off");
        assert!(!off.stdout().contains("cache"), "{}", off.explain());
        let (first, ids) = tokenize(&tok, tmp.path(), "first", c);
        says(&first, "tables written to the cache");
        assert_eq!(ids, reference, "{name}: first run");
        assert_eq!(entries(&cache).len(), 1, "{name}");
        let (second, ids) = tokenize(&tok, tmp.path(), "second", c);
        says(&second, "tables read from the cache");
        assert_eq!(ids, reference, "{name}: from the cache");
    }
}

#[test]
fn a_damaged_entry_is_rebuilt_from_the_file() {
    for name in ["qwen3-mini", "llama2-mini"] {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let c = cache.to_str().unwrap();
        let tok = tokenizer(name);
        let (_, reference) = tokenize(&tok, tmp.path(), "first", c);
        let entry = entries(&cache).pop().unwrap();
        let good = std::fs::read(&entry).unwrap();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        for damaged in [&good[..good.len() / 2], &flipped[..], &[][..]] {
            std::fs::write(&entry, damaged).unwrap();
            let (run, ids) = tokenize(&tok, tmp.path(), "again", c);
            says(&run, "tables written to the cache");
            assert_eq!(ids, reference, "{name}");
            assert_eq!(std::fs::read(&entry).unwrap(), good, "{name}: rewritten");
        }
    }
}

/// An entry others can write could hold any tables: it is rebuilt, not used.
#[cfg(unix)]
#[test]
fn an_entry_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let tok = tokenizer("qwen3-mini");
    let (_, reference) = tokenize(&tok, tmp.path(), "first", c);
    let entry = entries(&cache).pop().unwrap();
    let mode = |m| std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(m)).unwrap();
    mode(0o644);
    let (run, _) = tokenize(&tok, tmp.path(), "readable", c);
    says(&run, "tables read from the cache");
    for m in [0o664, 0o646] {
        mode(m);
        let (run, ids) = tokenize(&tok, tmp.path(), "writable", c);
        says(&run, "tables written to the cache");
        assert_eq!(ids, reference);
    }
}

#[test]
fn an_entry_is_found_by_the_files_content() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let json = std::fs::read_to_string(tokenizer("qwen3-mini")).unwrap();
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    std::fs::write(&a, &json).unwrap();
    let (_, reference) = tokenize(&a, tmp.path(), "a", c);
    // The same file elsewhere is the same entry.
    std::fs::write(&b, &json).unwrap();
    let (run, ids) = tokenize(&b, tmp.path(), "b", c);
    says(&run, "tables read from the cache");
    assert_eq!(ids, reference);
    // Same length, other bytes: another entry. Put a's entry in its place: its checksum holds
    // but it was made from another file, so it is not used.
    let swapped = json.replacen(
        r#""truncation":null,"padding":null"#,
        r#""padding":null,"truncation":null"#,
        1,
    );
    assert!(swapped != json && swapped.len() == json.len());
    std::fs::write(&b, &swapped).unwrap();
    let (run, ids) = tokenize(&b, tmp.path(), "b2", c);
    says(&run, "tables written to the cache");
    assert_eq!(ids, reference);
    let list = entries(&cache);
    assert_eq!(list.len(), 2, "{list:?}");
    // Swap the two entries: each one's checksum and length hold, but each was made from the
    // other file, so neither is used.
    let (x, y) = (
        std::fs::read(&list[0]).unwrap(),
        std::fs::read(&list[1]).unwrap(),
    );
    std::fs::write(&list[0], &y).unwrap();
    std::fs::write(&list[1], &x).unwrap();
    for (file, name) in [(&a, "a2"), (&b, "b3")] {
        let (run, ids) = tokenize(file, tmp.path(), name, c);
        says(&run, "tables written to the cache");
        assert_eq!(ids, reference, "{}", file.display());
    }
}

#[test]
fn an_unwritable_cache_only_costs_the_saving() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let tok = tokenizer("qwen3-mini");
    let (_, reference) = tokenize(&tok, tmp.path(), "off", "off");
    let (run, ids) = tokenize(&tok, tmp.path(), "file", file.to_str().unwrap());
    says(&run, "tables not cached: cannot write");
    assert_eq!(ids, reference);
}

#[test]
fn the_crate_backend_and_off_use_no_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = utk(
        &[
            "tokenize",
            &docs().display().to_string(),
            "-t",
            &tokenizer("qwen3-mini").display().to_string(),
            "-o",
            &tmp.path().join("crate").display().to_string(),
            "--tokenizer-backend",
            "tokenizers",
            "--tokenizer-cache",
            cache.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    assert!(!run.stdout().contains("cache"), "{}", run.explain());
    assert!(entries(&cache).is_empty());
    let mut cmd = crate::common::utk_command();
    let out = cmd
        .env("UTK_TOKENIZER_CACHE", "off")
        .args(["tokenize", &docs().display().to_string(), "-t"])
        .arg(tokenizer("qwen3-mini"))
        .arg("-o")
        .arg(tmp.path().join("env-off"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cache"));
}

/// Writing an entry removes this user's entries of older formats (no utk reads them any more)
/// and nothing else: not a newer format's, not other files, not others' entries.
#[cfg(unix)]
#[test]
fn writing_an_entry_removes_older_formats() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let put = |name: &str, mode: u32| {
        let path = cache.join(name);
        std::fs::write(&path, b"old tables").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let old = [
        put("0badcafe-164819.v1.utk-tokenizer", 0o600),
        put("12345678-9.v0.utk-tokenizer", 0o644),
    ];
    let kept = [
        put("0badcafe-164819.v999.utk-tokenizer", 0o600),
        put("notes.v1.txt", 0o600),
        put("v1.utk-tokenizer", 0o600),
        // Writable by others: not an entry this user's utk would trust, so not its to remove.
        put("deadbeef-1.v1.utk-tokenizer", 0o666),
    ];
    let tok = tokenizer("qwen3-mini");
    let (run, _) = tokenize(&tok, tmp.path(), "first", cache.to_str().unwrap());
    says(&run, "(2 entries of older utk versions removed)");
    for path in &old {
        assert!(!path.exists(), "{}", path.display());
    }
    for path in &kept {
        assert!(path.exists(), "{}", path.display());
    }
    let (run, _) = tokenize(&tok, tmp.path(), "second", cache.to_str().unwrap());
    says(&run, "tables read from the cache");
    assert_eq!(entries(&cache).len(), kept.len() + 1);
}
