//! `utk verify` passes on real outputs of every augment mode and fails, precisely, on damage.

use crate::common::*;
use std::path::{Path, PathBuf};

fn verify(out: &Path, with_input: bool) -> Run {
    verify_by(out, with_input, &[])
}

/// `verify`, with `--input` and `extra` (e.g. a tokenizer backend).
fn verify_by(out: &Path, with_input: bool, extra: &[&str]) -> Run {
    let o = out.display().to_string();
    let d = docs().display().to_string();
    let mut args = vec!["verify", o.as_str()];
    if with_input {
        args.extend(["--input", d.as_str()]);
    }
    args.extend(extra);
    utk(&args, None)
}

const BY_CRATE: &str = "and equal token for token (by the tokenizers crate, independently";
const BY_FAST: &str = "and equal token for token (by utk's fast encoder";

fn fresh(tmp: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = tmp.join(name);
    augment(&[&docs()], &qwen(), &out, extra);
    out
}

#[test]
fn passes_on_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, extra) in MODES.iter().enumerate() {
        let out = fresh(tmp.path(), &format!("m{i}"), extra);
        let run = verify(&out, true).ok();
        assert!(run.stdout().contains(" OK"), "{extra:?}: {}", run.stdout());
        assert!(
            run.stdout()
                .contains("documents re-tokenized from the input and equal"),
            "{}",
            run.stdout()
        );
        assert!(run.stdout().contains(BY_CRATE), "{}", run.stdout());
        let fast = verify_by(&out, true, &["--tokenizer-backend", "fast"]).ok();
        assert!(fast.stdout().contains(BY_FAST), "{}", fast.stdout());
        if extra.contains(&"--no-backtrace") {
            assert!(run.stdout().contains("backtracing off"));
        } else {
            assert!(run.stdout().contains("untied from the tokens"));
        }
    }
    let wp = tmp.path().join("wordpiece");
    augment(&[&docs()], &minilm(), &wp, &["-L", "4k"]);
    let (o, d) = (wp.display().to_string(), docs().display().to_string());
    utk(&["verify", &o, "--input", &d], None).ok();
    // With the template's [CLS] … [SEP], whose [SEP] is the EOD (tests/it/eod.rs): main appended a
    // second [SEP], an EOD inside the document, and verify rejected its own output.
    let wp = tmp.path().join("wordpiece-specials");
    augment(
        &[&docs()],
        &minilm(),
        &wp,
        &["-L", "4k", "--add-special-tokens"],
    );
    let o = wp.display().to_string();
    utk(&["verify", &o, "--input", &d], None).ok();
    // WordPiece has no fast encoder: `auto` falls back to the crate, `fast` says why not.
    let run = utk(
        &["verify", &o, "--input", &d, "--tokenizer-backend", "auto"],
        None,
    )
    .ok();
    assert!(run.stdout().contains(BY_CRATE), "{}", run.stdout());
    utk(
        &["verify", &o, "--input", &d, "--tokenizer-backend", "fast"],
        None,
    )
    .fails_with(&["--input", "fast"]);
}

/// Rewrites token `i` of window `w` of a uint16 output.
fn poke_token(out: &Path, seq_len: usize, w: usize, i: usize, value: u16) {
    let path = out.join("tokens.bin");
    let mut b = std::fs::read(&path).unwrap();
    let at = 2 * (w * seq_len + i);
    b[at..at + 2].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, b).unwrap();
}

#[test]
fn fails_precisely_on_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fresh(tmp.path(), "base", &["-L", "2048"]);
    let copy = |name: &str| {
        let dst = tmp.path().join(name);
        std::fs::create_dir(&dst).unwrap();
        for e in std::fs::read_dir(&base).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        dst
    };
    let reader = utk::output::reader::OutputReader::open(&base).unwrap();
    let w = (0..reader.windows())
        .find(|&w| utk::inspect::window_view(&reader, w).unwrap().chunks.len() >= 3)
        .expect("a window with 3 chunks") as usize;
    assert!(w < 10);
    let view = utk::inspect::window_view(&reader, w as u64).unwrap();
    let content = view.chunks[0].content.clone();
    let t = reader.window_tokens(w as u64);

    // A flipped content token: the structure holds, the checksum names the file, the input the
    // token.
    let flipped = copy("flipped");
    let at = content.start + 3;
    poke_token(&flipped, 2048, w, at, (t[at] as u16) ^ 1);
    let run = verify(&flipped, false).fails_with(&[
        "tokens.bin: CRC-32C ",
        "the manifest records",
        "FAILED verification: 1 problems",
    ]);
    assert!(!run.stderr().contains("loss_mask.bin"), "{}", run.stderr());
    for backend in ["tokenizers", "fast"] {
        verify_by(&flipped, true, &["--tokenizer-backend", backend]).fails_with(&[
            "tokens.bin: CRC-32C ",
            &format!("window {w}, token {at}"),
            "the input gives",
        ]);
    }
    // A manifest of a utk that recorded no checksums: not checked, and said so.
    strip_checksums(&flipped);
    let run = verify(&flipped, false).ok();
    assert!(
        run.stdout()
            .contains("not checked against a checksum (the manifest records none"),
        "{}",
        run.stdout()
    );

    // A content token turned into a knot: the structure breaks.
    let forged = copy("forged");
    poke_token(
        &forged,
        2048,
        w,
        content.start + 1,
        reader.manifest.special_tokens["tail1"] as u16,
    );
    verify(&forged, false).fails_with(&[&format!("window {w}"), "FAILED"]);

    // A wrong mask byte.
    let masked = copy("masked");
    let mut m = std::fs::read(masked.join("loss_mask.bin")).unwrap();
    m[w * 2048 + content.start + 5] ^= 1;
    std::fs::write(masked.join("loss_mask.bin"), m).unwrap();
    verify(&masked, false).fails_with(&[&format!(
        "window {w}, token {}: loss mask is 0, the policy says 1",
        content.start + 5
    )]);

    // Two neighbouring chunks swapped (tokens and mask together): the sidecar and order disagree.
    let swapped = copy("swapped");
    let (a, b) = (view.chunks[0].extent.clone(), view.chunks[1].extent.clone());
    let swap = |bytes: &mut Vec<u8>, item: usize| {
        let (x0, x1, y1) = (
            (w * 2048 + a.start) * item,
            (w * 2048 + a.end) * item,
            (w * 2048 + b.end) * item,
        );
        let mut region = bytes[x1..y1].to_vec();
        region.extend_from_slice(&bytes[x0..x1]);
        bytes[x0..y1].copy_from_slice(&region);
    };
    assert_eq!(a.end, b.start);
    for (file, item) in [("tokens.bin", 2), ("loss_mask.bin", 1)] {
        let mut bytes = std::fs::read(swapped.join(file)).unwrap();
        swap(&mut bytes, item);
        std::fs::write(swapped.join(file), bytes).unwrap();
    }
    verify(&swapped, false).fails_with(&[&format!("window {w}"), "provenance span"]);

    // A truncated .bin, and a missing manifest.
    let cut = copy("cut");
    let bin = std::fs::read(cut.join("tokens.bin")).unwrap();
    std::fs::write(cut.join("tokens.bin"), &bin[..bin.len() - 2]).unwrap();
    verify(&cut, false).fails_with(&["tokens.bin", "bytes, the manifest says"]);
    // A damaged index that can no longer be opened: its checksum still names it.
    let idx = copy("idx");
    let mut b = std::fs::read(idx.join("tokens.idx")).unwrap();
    b[0] ^= 0xff;
    std::fs::write(idx.join("tokens.idx"), b).unwrap();
    verify(&idx, false).fails_with(&["tokens.idx: CRC-32C "]);
    let bare = copy("bare");
    std::fs::remove_file(bare.join("manifest.json")).unwrap();
    verify(&bare, false).fails_with(&["no manifest.json"]);

    // The wrong input: a document missing.
    let short = tmp.path().join("short.jsonl");
    let text = std::fs::read_to_string(docs()).unwrap();
    std::fs::write(&short, text.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let o = base.display().to_string();
    utk(
        &["verify", &o, "--input", &short.display().to_string()],
        None,
    )
    .fails_with(&["FAILED"]);
}

/// Removes the checksums from the manifest in `out`, as utk wrote them before it recorded any.
fn strip_checksums(out: &Path) {
    let path = out.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        assert!(f.as_object_mut().unwrap().remove("crc32c").is_some());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// Every format's files get a checksum, the `.npy` files with the header rewritten at the end
/// included, and a flipped byte in any of them is named.
#[test]
fn every_file_of_every_format_is_checksummed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fresh(
        tmp.path(),
        "all",
        &["-L", "2048", "--format", "megatron,olmo,npy"],
    );
    let m = utk::output::reader::read_manifest(&out).unwrap();
    assert_eq!(m.files.len(), 10);
    let run = verify(&out, false).ok();
    assert!(
        run.stdout()
            .contains("10 files match their CRC-32C checksums"),
        "{}",
        run.stdout()
    );
    for f in &m.files {
        let bytes = std::fs::read(out.join(&f.path)).unwrap();
        assert_eq!(f.bytes, bytes.len() as u64);
        let want = utk::output::checksum::file_crc32c(&out.join(&f.path)).unwrap();
        assert_eq!(f.crc32c.as_deref(), Some(format!("{want:08x}").as_str()));
        let damaged = tmp.path().join(format!("damaged-{}", f.path));
        std::fs::create_dir(&damaged).unwrap();
        for e in std::fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), damaged.join(e.file_name())).unwrap();
        }
        let mut b = bytes.clone();
        let at = b.len() - 1;
        b[at] ^= 0x10;
        std::fs::write(damaged.join(&f.path), b).unwrap();
        verify(&damaged, false).fails_with(&[&format!("{}: CRC-32C ", f.path)]);
    }
}

/// `utk tokenize DOCS -o PREFIX` with the fixture tokenizer, asserting success.
fn tokenize(prefix: &Path) {
    let (d, t, p) = (
        docs().display().to_string(),
        qwen().display().to_string(),
        prefix.display().to_string(),
    );
    utk(&["tokenize", &d, "-t", &t, "-o", &p], None).ok();
}

fn verify_with(out: &Path, input: &Path) -> Run {
    let (o, i) = (out.display().to_string(), input.display().to_string());
    utk(&["verify", &o, "--input", &i], None)
}

#[test]
fn shard_input_is_read_not_retokenized() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&prefix);
    for (i, extra) in [&["-L", "2048"][..], &["-L", "1000", "--order", "shuffle"]]
        .iter()
        .enumerate()
    {
        let out = tmp.path().join(format!("s{i}"));
        augment(&[&prefix], &qwen(), &out, extra);
        for input in [prefix.clone(), prefix.with_extension("bin")] {
            let run = verify_with(&out, &input).ok();
            assert!(run.stdout().contains(" OK"), "{}", run.stdout());
            assert!(
                run.stdout()
                    .contains("documents read from the shards and equal token for token"),
                "{}",
                run.stdout()
            );
            assert!(!run.stdout().contains("re-tokenized"), "{}", run.stdout());
        }
    }
    // Shards are not re-tokenized, so a backend that cannot re-tokenize them does not matter:
    // WordPiece has no fast encoder, and `--tokenizer-backend fast` still reads its shards.
    let wp = tmp.path().join("wp-corpus");
    let (d, t, p) = (
        docs().display().to_string(),
        minilm().display().to_string(),
        wp.display().to_string(),
    );
    utk(&["tokenize", &d, "-t", &t, "-o", &p], None).ok();
    let out = tmp.path().join("wp-out");
    augment(&[&wp], &minilm(), &out, &["-L", "4k"]);
    let o = out.display().to_string();
    let run = utk(
        &["verify", &o, "--input", &p, "--tokenizer-backend", "fast"],
        None,
    )
    .ok();
    assert!(run.stdout().contains("documents read from the shards"));
}

#[test]
fn a_flipped_shard_token_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&prefix);
    let out = tmp.path().join("out");
    augment(&[&prefix], &qwen(), &out, &["-L", "2048"]);
    // Document 0, token 3 (uint16 ids, documents one after the other).
    let bin = prefix.with_extension("bin");
    let mut b = std::fs::read(&bin).unwrap();
    let was = u16::from_le_bytes([b[6], b[7]]);
    let now = was ^ 1;
    assert!(was != 6256 && now != 6256, "not the EOD");
    b[6..8].copy_from_slice(&now.to_le_bytes());
    std::fs::write(&bin, b).unwrap();
    // The checksum in `utk tokenize`'s record catches it first; without the record, the
    // comparison with the output finds the token.
    verify_with(&out, &prefix).fails_with(&["corpus.bin: CRC-32C", "corpus.json records"]);
    std::fs::rename(
        prefix.with_extension("json"),
        tmp.path().join("record-aside.json"),
    )
    .unwrap();
    verify_with(&out, &prefix).fails_with(&[
        "window 0, token ",
        &format!("document 0 token 3: found Some({was}), the input gives Some({now})"),
        "FAILED",
    ]);
    // Without the input, the output alone is still consistent.
    verify(&out, false).ok();
}

#[test]
fn input_kind_must_match_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&prefix);
    let from_shards = tmp.path().join("from-shards");
    augment(&[&prefix], &qwen(), &from_shards, &["-L", "2048"]);
    verify_with(&from_shards, &docs()).fails_with(&[
        "made from token shards (megatron)",
        "--input: ",
        "the input is JSONL text",
    ]);
    let from_text = fresh(tmp.path(), "from-text", &["-L", "2048"]);
    verify_with(&from_text, &prefix).fails_with(&[
        "made from JSONL text",
        "the input is token shards",
        "corpus.bin",
    ]);
}
