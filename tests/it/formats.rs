//! `--format megatron,olmo,npy`: every format holds the same windows, byte for byte where the
//! dtypes agree, with headers trainers parse, and the manifest names every file.

use crate::common::check::check_output;
use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use utk::choice::Choice;
use utk::codec::npy::parse_npy_header;
use utk::codec::Dtype;
use utk::output::reader::OutputReader;
use utk::output::Format;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The files in `dir` besides the manifest, with their sizes.
fn on_disk(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(n, _)| n != "manifest.json")
        .collect()
}

fn reference(dir: &Path) -> Vec<Vec<u32>> {
    let eod = OutputReader::open(dir).unwrap().manifest.special_tokens["eod"];
    reference_ids(&qwen(), &doc_texts(&docs(), "text"), eod)
}

#[test]
fn all_formats_hold_the_same_windows() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra, megatron_dtype, wide_dtype) in [
        ("narrow", &["-L", "1000"][..], Dtype::Uint16, Dtype::Uint16),
        (
            "wide",
            &["-L", "777", "--special-base", "70000"],
            Dtype::Int32,
            Dtype::Uint32,
        ),
    ] {
        let out = tmp.path().join(name);
        let mut args = extra.to_vec();
        args.extend(["--format", "npy,megatron", "--format", "olmo,parquet"]);
        augment(&[&docs()], &qwen(), &out, &args);
        let m = OutputReader::open(&out).unwrap().manifest;
        let (w, l) = (m.windows, m.seq_len as u64);
        assert_eq!(m.formats, Format::ALL);
        assert_eq!(m.token_dtype, megatron_dtype.name(), "{name}");

        // The manifest lists exactly the files on disk, with sizes and dtypes.
        let listed: BTreeMap<String, u64> =
            m.files.iter().map(|f| (f.path.clone(), f.bytes)).collect();
        assert_eq!(listed, on_disk(&out), "{name}");
        let dtype_of = |p: &str| m.files.iter().find(|f| f.path == p).unwrap().dtype;
        assert_eq!(dtype_of("tokens.bin"), Some(megatron_dtype));
        assert_eq!(dtype_of("tokens.olmo.bin"), Some(wide_dtype));
        assert_eq!(dtype_of("tokens.npy"), Some(wide_dtype));
        assert_eq!(dtype_of("loss_mask.olmo.bin"), Some(Dtype::Bool));
        assert_eq!(dtype_of("loss_mask.npy"), Some(Dtype::Uint8));
        assert_eq!(dtype_of("windows.parquet"), Some(Dtype::Int32));
        assert_eq!(dtype_of("provenance.spans"), None);

        // Non-negative int32 and uint32 (and uint16 and uint16) have the same little-endian bytes:
        // every format's data is Megatron's .bin.
        let tokens = read(&out, "tokens.bin");
        let mask = read(&out, "loss_mask.bin");
        assert_eq!(tokens.len() as u64, w * l * megatron_dtype.size() as u64);
        assert_eq!(read(&out, "tokens.olmo.bin"), tokens, "{name}: olmo tokens");
        assert_eq!(read(&out, "loss_mask.olmo.bin"), mask, "{name}: olmo mask");
        for (file, data, dtype) in [
            ("tokens.npy", &tokens, wide_dtype),
            ("loss_mask.npy", &mask, Dtype::Uint8),
        ] {
            let bytes = read(&out, file);
            let h = parse_npy_header(&bytes).unwrap();
            assert_eq!((h.dtype, h.shape.clone()), (dtype, vec![w, l]), "{file}");
            assert_eq!(h.data_offset % 64, 0);
            assert_eq!(&bytes[..6], b"\x93NUMPY");
            assert_eq!(&bytes[6..8], &[1, 0], "{file}: version 1.0");
            assert_eq!(&bytes[h.data_offset..], &data[..], "{name}: {file} data");
        }

        // Read through each format, the output passes the independent checker.
        let reference = reference(&out);
        check_output(&out, &reference);
        let via_megatron = OutputReader::open_format(&out, Format::Megatron).unwrap();
        for f in [Format::Olmo, Format::Npy, Format::Parquet] {
            let r = OutputReader::open_format(&out, f).unwrap();
            let dtype = if f == Format::Parquet {
                Dtype::Int32
            } else {
                wide_dtype
            };
            assert_eq!((r.format, r.token_dtype), (f, dtype));
            for i in 0..w {
                assert_eq!(r.window_tokens(i), via_megatron.window_tokens(i));
                assert_eq!(r.window_mask(i), via_megatron.window_mask(i));
            }
        }
    }
}

#[test]
fn outputs_without_megatron_read_and_check_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    augment(&[&docs()], &qwen(), &full, &["-L", "900", "--seed", "3"]);
    for (name, format, files) in [
        (
            "olmo",
            "olmo",
            &["tokens.olmo.bin", "loss_mask.olmo.bin"][..],
        ),
        ("npy", "npy", &["tokens.npy", "loss_mask.npy"]),
    ] {
        let out = tmp.path().join(name);
        augment(
            &[&docs()],
            &qwen(),
            &out,
            &["-L", "900", "--seed", "3", "--format", format],
        );
        let mut expect: Vec<&str> = files.to_vec();
        expect.extend(["provenance.docs", "provenance.spans"]);
        expect.sort();
        assert_eq!(on_disk(&out).into_keys().collect::<Vec<_>>(), expect);
        let r = OutputReader::open(&out).unwrap();
        assert_eq!(r.format.name(), format);
        assert_eq!(r.manifest.token_dtype, "uint16");
        // The formats do not change the windows: same bytes as the Megatron run.
        let m = OutputReader::open(&full).unwrap();
        assert_eq!(r.windows(), m.windows());
        for w in 0..m.windows() {
            assert_eq!(r.window_tokens(w), m.window_tokens(w), "{name}: window {w}");
            assert_eq!(r.window_mask(w), m.window_mask(w));
        }
        check_output(&out, &reference(&out));
        let err = OutputReader::open_format(&out, Format::Megatron)
            .err()
            .expect("no Megatron output");
        assert!(format!("{err:#}").contains("no megatron output"), "{err:#}");
    }
}

#[test]
fn default_format_is_megatron_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    augment(&[&docs()], &qwen(), &out, &["-L", "2k"]);
    assert_eq!(
        on_disk(&out).into_keys().collect::<Vec<_>>(),
        [
            "loss_mask.bin",
            "loss_mask.idx",
            "provenance.docs",
            "provenance.spans",
            "tokens.bin",
            "tokens.idx"
        ]
    );
    assert_eq!(
        OutputReader::open(&out).unwrap().manifest.formats,
        [Format::Megatron]
    );
}

#[test]
fn damaged_or_mislabelled_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    augment(
        &[&docs()],
        &qwen(),
        &out,
        &["-L", "1k", "--format", "npy,olmo"],
    );
    assert!(OutputReader::open(&out).is_ok());
    // A header that disagrees with the manifest (same length, so sizes still match).
    let path = out.join("tokens.npy");
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let at = bad.windows(3).position(|w| w == b"<u2").unwrap();
    bad[at..at + 3].copy_from_slice(b"<i2");
    std::fs::write(&path, &bad).unwrap();
    let err = OutputReader::open_format(&out, Format::Npy).err().unwrap();
    assert!(format!("{err:#}").contains("tokens.npy"), "{err:#}");
    std::fs::write(&path, &good).unwrap();
    // A truncated OLMo file: the manifest's size no longer matches.
    let olmo = out.join("tokens.olmo.bin");
    let bytes = std::fs::read(&olmo).unwrap();
    std::fs::write(&olmo, &bytes[..bytes.len() - 2]).unwrap();
    let err = OutputReader::open(&out).err().unwrap();
    assert!(format!("{err:#}").contains("tokens.olmo.bin"), "{err:#}");
}

#[test]
fn force_removes_every_format_of_the_previous_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    augment(
        &[&docs()],
        &qwen(),
        &out,
        &["-L", "2k", "--format", "npy,olmo"],
    );
    augment(&[&docs()], &qwen(), &out, &["-L", "2k", "--force"]);
    let names: Vec<String> = on_disk(&out).into_keys().collect();
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".npy") || n.contains("olmo")),
        "stale files of the earlier run: {names:?}"
    );
    OutputReader::open(&out).unwrap();
}

#[test]
fn a_failed_run_leaves_no_file_of_any_format() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(docs()).unwrap();
    text.push_str("{\"text\": broken\n");
    std::fs::write(&input, text).unwrap();
    let out = tmp.path().join("o");
    let (i, t, o) = (
        input.display().to_string(),
        qwen().display().to_string(),
        out.display().to_string(),
    );
    utk(
        &[
            "augment",
            &i,
            "-t",
            &t,
            "-o",
            &o,
            "-L",
            "1k",
            "--format",
            "megatron,olmo,npy",
        ],
        None,
    )
    .fails_with(&["bad.jsonl"]);
    let left: Vec<String> = std::fs::read_dir(&out)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn unknown_format_names_the_flag() {
    let (d, t) = (docs().display().to_string(), qwen().display().to_string());
    utk(
        &[
            "augment",
            &d,
            "-t",
            &t,
            "-o",
            "/nonexistent",
            "--format",
            "tfrecord",
        ],
        None,
    )
    .fails_with(&["--format", "tfrecord", "megatron"]);
}
