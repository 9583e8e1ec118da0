//! Token shards as `augment` input: every layout written here by hand (independently of utk's
//! writers), read back into exactly the windows that the same documents give as text; and every
//! kind of damaged input fails with a clear error, no panic and no manifest.

use crate::common::check::check_output;
use crate::common::*;
use std::path::{Path, PathBuf};
use utk::output::reader::OutputReader;

/// qwen3-mini's `<|endoftext|>`.
const EOD: u32 = 6256;

fn reference() -> Vec<Vec<u32>> {
    reference_ids(&qwen(), &doc_texts(&docs(), "text"), EOD)
}

fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// A Megatron `.idx` written field by field from formats.md (not with utk's encoder).
fn idx_by_hand(code: u8, itemsize: u64, seq_lens: &[i32], doc_idx: &[i64]) -> Vec<u8> {
    let mut b = b"MMIDIDX\x00\x00".to_vec();
    b.extend(1u64.to_le_bytes());
    b.push(code);
    b.extend((seq_lens.len() as u64).to_le_bytes());
    b.extend((doc_idx.len() as u64).to_le_bytes());
    b.extend(le(seq_lens, i32::to_le_bytes));
    let mut ptr = 0i64;
    for &l in seq_lens {
        b.extend(ptr.to_le_bytes());
        ptr += l as i64 * itemsize as i64;
    }
    b.extend(le(doc_idx, i64::to_le_bytes));
    assert_eq!(b.len(), 34 + 12 * seq_lens.len() + 8 * doc_idx.len());
    b
}

/// Writes documents as an int32 Megatron dataset, one sequence each; odd documents lose their
/// EOD (the reader must add it back).
fn megatron_int32(dir: &Path, docs: &[Vec<u32>]) -> PathBuf {
    let prefix = dir.join("shard");
    let mut bin = Vec::new();
    let mut lens = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let d = if i % 2 == 1 {
            &d[..d.len() - 1]
        } else {
            &d[..]
        };
        bin.extend(le(d, |x| (x as i32).to_le_bytes()));
        lens.push(d.len() as i32);
    }
    let docs_idx: Vec<i64> = (0..=lens.len() as i64).collect();
    std::fs::write(prefix.with_extension("bin"), bin).unwrap();
    std::fs::write(
        prefix.with_extension("idx"),
        idx_by_hand(4, 4, &lens, &docs_idx),
    )
    .unwrap();
    prefix
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Same tokens and loss mask as the text run.
fn same_windows(a: &Path, b: &Path) {
    for f in ["tokens.bin", "tokens.idx", "loss_mask.bin", "loss_mask.idx"] {
        assert!(read(&a.join(f)) == read(&b.join(f)), "{f} differs");
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn megatron_int32_gives_the_windows_of_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference();
    let prefix = megatron_int32(tmp.path(), &reference);
    for extra in [&["-L", "2048"][..], &["-L", "1000", "--order", "shuffle"]] {
        let text = tmp.path().join("text");
        let shard = tmp.path().join("shard-out");
        augment(&[&docs()], &qwen(), &text, extra);
        let mut args = extra.to_vec();
        args.push("--force");
        augment(&[&prefix], &qwen(), &shard, &args);
        same_windows(&text, &shard);
        check_output(&shard, &reference);
        let out = OutputReader::open(&shard).unwrap();
        assert_eq!(out.manifest.input.format, "megatron");
        assert_eq!(out.manifest.counts.documents, reference.len() as u64);
        // The .bin path itself names the dataset too.
        augment(&[&prefix.with_extension("bin")], &qwen(), &shard, &args);
        same_windows(&text, &shard);
        std::fs::remove_dir_all(&text).unwrap();
    }
}

#[test]
fn megatron_uint16_with_documents_of_several_sequences() {
    // Hand-checked bytes: 3 sequences [100 101] [102] [103 104 105], documents {0,1} and {2}.
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("u16");
    let bin: Vec<u8> = vec![100, 0, 101, 0, 102, 0, 103, 0, 104, 0, 105, 0];
    let idx = idx_by_hand(8, 2, &[2, 1, 3], &[0, 2, 3]);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &b"MMIDIDX\0\0"[..], &[1, 0, 0, 0, 0, 0, 0, 0], &[8],
        &[3, 0, 0, 0, 0, 0, 0, 0], &[3, 0, 0, 0, 0, 0, 0, 0],
        &[2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0], &[4, 0, 0, 0, 0, 0, 0, 0], &[6, 0, 0, 0, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0], &[2, 0, 0, 0, 0, 0, 0, 0], &[3, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(idx, expected);
    std::fs::write(prefix.with_extension("bin"), bin).unwrap();
    std::fs::write(prefix.with_extension("idx"), idx).unwrap();
    let out = tmp.path().join("o");
    augment(
        &[&prefix],
        &qwen(),
        &out,
        &["-L", "16", "--method", "plain"],
    );
    check_output(&out, &[vec![100, 101, 102, EOD], vec![103, 104, 105, EOD]]);
    let docs = read(&out.join("provenance.docs"));
    assert_eq!(docs.len(), 48);
    assert_eq!(&docs[8..16], &0u64.to_le_bytes()); // document index 0
    assert_eq!(&docs[32..40], &1u64.to_le_bytes()); // document index 1
}

#[test]
fn raw_u16_and_u32_split_at_the_eod() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference();
    let flat: Vec<u32> = reference.concat();
    let text = tmp.path().join("text");
    augment(&[&docs()], &qwen(), &text, &["-L", "2048"]);
    // u16, every document ends with EOD.
    let raw16 = tmp.path().join("ids.u16");
    std::fs::write(&raw16, le(&flat, |x| (x as u16).to_le_bytes())).unwrap();
    let o16 = tmp.path().join("o16");
    augment(
        &[&raw16],
        &qwen(),
        &o16,
        &["-L", "2048", "--input-format", "u16"],
    );
    same_windows(&text, &o16);
    // u32 in two files, the second without its final EOD, with --eod-id given.
    let half = reference.len() / 2;
    let a: Vec<u32> = reference[..half].concat();
    let mut b: Vec<u32> = reference[half..].concat();
    b.pop();
    let (ra, rb) = (tmp.path().join("a.u32"), tmp.path().join("b.u32"));
    std::fs::write(&ra, le(&a, u32::to_le_bytes)).unwrap();
    std::fs::write(&rb, le(&b, u32::to_le_bytes)).unwrap();
    let o32 = tmp.path().join("o32");
    let eod = EOD.to_string();
    augment(
        &[&ra, &rb],
        &qwen(),
        &o32,
        &["-L", "2048", "--input-format", "u32", "--eod-id", &eod],
    );
    same_windows(&text, &o32);
    let m = OutputReader::open(&o32).unwrap().manifest;
    assert_eq!(m.input.format, "u32");
    assert_eq!(m.input.sources.len(), 2);
}

/// A `.npy` file as `numpy.save` writes it (format 1.0, header padded to 64 bytes, `\n` last).
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((dict.len() as u16).to_le_bytes());
    b.extend(dict.as_bytes());
    assert_eq!(b.len() % 64, 0);
    b.extend(data);
    b
}

#[test]
fn npy_int64_and_uint16_read_like_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let flat: Vec<u32> = reference().concat();
    let text = tmp.path().join("text");
    augment(&[&docs()], &qwen(), &text, &["-L", "2048"]);
    for (descr, data) in [
        ("<i8", le(&flat, |x| (x as i64).to_le_bytes())),
        ("<u2", le(&flat, |x| (x as u16).to_le_bytes())),
    ] {
        let p = tmp.path().join(format!("ids{}.npy", &descr[1..]));
        std::fs::write(&p, npy(descr, &format!("({},)", flat.len()), &data)).unwrap();
        let o = tmp.path().join(format!("o{}", &descr[1..]));
        augment(&[&p], &qwen(), &o, &["-L", "2048"]);
        same_windows(&text, &o);
        assert_eq!(OutputReader::open(&o).unwrap().manifest.input.format, "npy");
    }
}

#[test]
fn datatrove_ds_with_index() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference();
    let text = tmp.path().join("text");
    augment(&[&docs()], &qwen(), &text, &["-L", "2048"]);
    for (width, name) in [(2usize, "a.ds"), (4, "b.ds")] {
        let ds = tmp.path().join(name);
        let flat: Vec<u32> = reference.concat();
        let data = if width == 2 {
            le(&flat, |x| (x as u16).to_le_bytes())
        } else {
            le(&flat, u32::to_le_bytes)
        };
        std::fs::write(&ds, data).unwrap();
        let mut ends = Vec::new();
        let mut at = 0u64;
        for d in &reference {
            at += d.len() as u64;
            ends.push(at);
        }
        std::fs::write(
            tmp.path().join(format!("{name}.index")),
            le(&ends, u64::to_le_bytes),
        )
        .unwrap();
        let o = tmp.path().join(format!("o{width}"));
        augment(&[&ds], &qwen(), &o, &["-L", "2048"]);
        same_windows(&text, &o);
        assert_eq!(
            OutputReader::open(&o).unwrap().manifest.input.format,
            "datatrove"
        );
    }
}

/// Runs augment on `inputs`, expects failure naming every needle, and no manifest.
fn refused(tmp: &Path, inputs: &[&str], extra: &[&str], needles: &[&str]) {
    let out = tmp.join("refused");
    let (tok, dir) = (qwen(), out.clone());
    let mut args = vec!["augment"];
    args.extend(inputs);
    args.extend(["-t", path_str(&tok), "-o", path_str(&dir)]);
    args.extend(extra);
    let run = utk(&args, None).fails_with(needles);
    let err = run.stderr();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line:\n{err}");
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn damaged_shards_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let reference = reference();
    let prefix = megatron_int32(t, &reference);
    let bin = read(&prefix.with_extension("bin"));
    let idx = read(&prefix.with_extension("idx"));
    let write_pair = |name: &str, b: &[u8], i: &[u8]| {
        let p = t.join(name);
        std::fs::write(p.with_extension("bin"), b).unwrap();
        std::fs::write(p.with_extension("idx"), i).unwrap();
        p.display().to_string()
    };
    let p = write_pair("trunc", &bin[..bin.len() - 4], &idx);
    refused(t, &[&p], &[], &["trunc.bin", "truncated"]);
    let other = idx_by_hand(4, 4, &[3, 4], &[0, 1, 2]);
    let p = write_pair("mismatch", &bin, &other);
    refused(t, &[&p], &[], &["mismatch.bin", "another"]);
    let mut bad = idx.clone();
    bad[0] = b'X';
    let p = write_pair("magic", &bin, &bad);
    refused(t, &[&p], &[], &["magic.idx", "bad magic"]);
    let mut bad = idx.clone();
    bad[9] = 2;
    let p = write_pair("version", &bin, &bad);
    refused(t, &[&p], &[], &["version.idx", "version 2"]);
    // Out of vocabulary: token 7 of the shard.
    let mut oov = bin.clone();
    oov[28..32].copy_from_slice(&100_000i32.to_le_bytes());
    let p = write_pair("oov", &oov, &idx);
    refused(
        t,
        &[&p],
        &[],
        &["oov.bin", "token 7", "100000", "vocabulary"],
    );
    // Odd-sized raw file.
    let raw = t.join("odd.u16");
    std::fs::write(&raw, [1u8, 0, 2]).unwrap();
    refused(
        t,
        &[path_str(&raw)],
        &["--input-format", "u16"],
        &["odd.u16", "3 bytes"],
    );
    let raw = t.join("odd.u32");
    std::fs::write(&raw, [1u8, 0, 0, 0, 2, 0]).unwrap();
    refused(
        t,
        &[path_str(&raw)],
        &["--input-format", "u32"],
        &["odd.u32", "6 bytes"],
    );
    // .npy: float, 2-D, truncated.
    let f = t.join("float.npy");
    std::fs::write(
        &f,
        npy("<f4", "(2,)", &le(&[1.0f32, 2.0], f32::to_le_bytes)),
    )
    .unwrap();
    refused(t, &[path_str(&f)], &[], &["float.npy", "<f4", "integer"]);
    let f = t.join("twod.npy");
    std::fs::write(&f, npy("<i4", "(1, 2)", &le(&[1i32, 2], i32::to_le_bytes))).unwrap();
    refused(t, &[path_str(&f)], &[], &["twod.npy", "1-D"]);
    let f = t.join("short.npy");
    std::fs::write(&f, npy("<i4", "(3,)", &le(&[1i32, 2], i32::to_le_bytes))).unwrap();
    refused(t, &[path_str(&f)], &[], &["short.npy", "truncated"]);
    // Text and shards together.
    refused(
        t,
        &[&p, path_str(&docs())],
        &[],
        &["mix token shards", "utk tokenize"],
    );
    // A forced format that does not fit.
    refused(
        t,
        &[path_str(&docs())],
        &["--input-format", "megatron"],
        &["docs.jsonl", "PREFIX.idx"],
    );
}

fn tokenize(inputs: &[&Path], prefix: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["tokenize".into()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend([
        "-t".into(),
        qwen().display().to_string(),
        "-o".into(),
        prefix.display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    utk(&refs, None)
}

#[test]
fn tokenize_then_augment_equals_augment_of_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&[&docs()], &prefix, &["-j", "2"]).ok();
    // The dataset, checked against formats.md and an independent encoding.
    let reference = reference();
    let idx = read(&prefix.with_extension("idx"));
    let n = reference.len();
    assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
    assert_eq!(idx[17], 8, "uint16: the vocabulary is below 65,500");
    assert_eq!(&idx[18..26], &(n as u64).to_le_bytes());
    assert_eq!(&idx[26..34], &(n as u64 + 1).to_le_bytes());
    assert_eq!(idx.len(), 34 + 12 * n + 8 * (n + 1));
    let flat: Vec<u32> = reference.concat();
    assert!(read(&prefix.with_extension("bin")) == le(&flat, |x| (x as u16).to_le_bytes()));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&read(&prefix.with_extension("json"))).unwrap();
    assert_eq!(sidecar["documents"], n as u64);
    assert_eq!(sidecar["eod"]["id"], EOD);
    // Same bytes with one thread.
    let one = tmp.path().join("one");
    tokenize(&[&docs()], &one, &["-j", "1"]).ok();
    assert!(read(&one.with_extension("bin")) == read(&prefix.with_extension("bin")));
    assert!(read(&one.with_extension("idx")) == idx);
    for (i, extra) in MODES.iter().enumerate() {
        let text = tmp.path().join(format!("t{i}"));
        let shard = tmp.path().join(format!("s{i}"));
        augment(&[&docs()], &qwen(), &text, extra);
        augment(&[&prefix], &qwen(), &shard, extra);
        same_windows(&text, &shard);
        // Spans agree (document ordinals and offsets); docs differ only in `line`.
        assert!(read(&text.join("provenance.spans")) == read(&shard.join("provenance.spans")));
    }
}

#[test]
fn tokenize_refuses_bad_input_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\":\"fine\"}\n{\"text\":3}\n").unwrap();
    let prefix = tmp.path().join("out");
    tokenize(&[&bad], &prefix, &[]).fails_with(&["bad.jsonl:2", "--skip-bad-lines"]);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input is left: {left:?}");
    tokenize(&[&bad], &prefix, &["--skip-bad-lines"]).ok();
    tokenize(&[&bad], &prefix, &[]).fails_with(&["out.json exists", "--force"]);
    let out = tmp.path().join("o");
    augment(&[&prefix], &qwen(), &out, &["-L", "8", "--method", "plain"]);
}

/// `utk augment` reading a prefix made by `utk tokenize` checks the record beside it
/// (`PREFIX.json`): another tokenizer file or another EOD is refused, naming the record.
#[test]
fn the_tokenize_record_guards_against_another_tokenizer_or_eod() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&[&docs()], &prefix, &[]).ok();
    let record: serde_json::Value =
        serde_json::from_slice(&read(&prefix.with_extension("json"))).unwrap();
    assert_eq!(record["parse_special"], false);
    assert_eq!(record["add_special_tokens"], false);
    assert!(record["backend"].is_string());

    // The same tokens in a file with other bytes: refused, with the way out.
    let other = tmp.path().join("other-tokenizer.json");
    let mut bytes = read(&qwen());
    bytes.push(b'\n');
    std::fs::write(&other, bytes).unwrap();
    let out = tmp.path().join("out");
    let args = |tok: &Path| {
        vec![
            "augment".to_string(),
            prefix.display().to_string(),
            "-t".into(),
            tok.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "-L".into(),
            "256".into(),
        ]
    };
    let run = |a: Vec<String>| utk(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    run(args(&other)).fails_with(&["corpus.bin", "another tokenizer.json", "corpus.json aside"]);
    assert!(!out.join("manifest.json").exists());

    let mut eod = args(&qwen());
    eod.extend(["--eod-id".into(), "70000".into()]);
    run(eod).fails_with(&["EOD id 6256", "70000", "--eod-id 6256"]);

    // The special-token settings of the record must be the run's.
    let mut parse = args(&qwen());
    parse.push("--parse-special".into());
    run(parse).fails_with(&["tokenized without --parse-special", "this run is with it"]);
    assert!(!out.join("manifest.json").exists());

    // Moved aside, the record is not checked; the ids are the same, so the windows are too.
    run(args(&qwen())).ok();
    let first = read(&out.join("tokens.bin"));
    std::fs::rename(prefix.with_extension("json"), tmp.path().join("moved.json")).unwrap();
    let mut forced = args(&other);
    forced.push("--force".into());
    run(forced).ok();
    assert!(read(&out.join("tokens.bin")) == first);
}

#[test]
fn the_tokenize_record_checksums_catch_changed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("corpus");
    tokenize(&[&docs()], &prefix, &[]).ok();
    let (bin, json) = (prefix.with_extension("bin"), prefix.with_extension("json"));
    let record: serde_json::Value = serde_json::from_slice(&read(&json)).unwrap();
    let files = record["files"].as_array().unwrap();
    for (f, ext) in files.iter().zip(["bin", "idx"]) {
        let data = read(&prefix.with_extension(ext));
        assert_eq!(f["path"], format!("corpus.{ext}"));
        assert_eq!(f["bytes"], data.len() as u64);
        assert_eq!(f["crc32c"], format!("{:08x}", crc32c::crc32c(&data)));
    }
    let out = tmp.path().join("out");
    let (p, o) = (path_str(&prefix), path_str(&out));
    let tok = qwen();
    let args = [
        "augment",
        p,
        "-t",
        path_str(&tok),
        "-o",
        o,
        "-L",
        "256",
        "--force",
    ];
    utk(&args, None).ok();

    // Two different uint16 ids swapped: every id is still valid, only the checksum can tell.
    let good = read(&bin);
    let mut swapped = good.clone();
    let k = (0..good.len() / 2 - 1)
        .find(|&k| good[2 * k..2 * k + 2] != good[2 * k + 2..2 * k + 4])
        .unwrap();
    swapped[2 * k..2 * k + 4].rotate_left(2);
    std::fs::write(&bin, &swapped).unwrap();
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let run = utk(&args, None).fails_with(&["corpus.bin: CRC-32C", "corpus.json records"]);
    assert_eq!(run.stderr().trim_end().lines().count(), 1);
    assert!(!out.join("manifest.json").exists());

    // Truncated: refused by the recorded size before anything is read.
    std::fs::write(&bin, &good[..good.len() - 2]).unwrap();
    utk(&args, None).fails_with(&[
        "corpus.bin is",
        "bytes but",
        "records",
        "utk tokenize again",
    ]);

    // Moved aside, the record is not checked.
    std::fs::write(&bin, &swapped).unwrap();
    std::fs::rename(&json, tmp.path().join("moved.json")).unwrap();
    utk(&args, None).ok();
}
