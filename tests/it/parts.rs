//! Parts of a run (`--num-shards N --shard-index I`, Slurm array variables), resume, and
//! `utk merge`: one part is a plain run byte for byte; N parts hold every document exactly once,
//! in order (their merge's document records are the plain run's, byte for byte); a merge
//! verifies against the input; a rerun does only what is missing; wrong merges are refused and
//! write nothing.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `utk augment` of `inputs` into `out` as part `i` of `n`, with `extra` settings.
fn part(inputs: &[&Path], out: &Path, n: u32, i: u32, extra: &[&str]) -> Run {
    let (n, i) = (n.to_string(), i.to_string());
    let mut args = vec!["-q", "-L", "1000", "--num-shards", &n, "--shard-index", &i];
    args.extend(extra);
    augment(inputs, &qwen(), out, &args)
}

fn part_dir(out: &Path, n: u32, i: u32) -> PathBuf {
    out.join(format!("part-{i:05}-of-{n:05}"))
}

/// The fixture split into three inputs: plain, gzip (never cut) and plain again.
fn three_inputs(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(docs()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let a = dir.join("a.jsonl");
    fs::write(&a, join(&lines[..30])).unwrap();
    let b = dir.join("b.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, join(&lines[30..40]).as_bytes()).unwrap();
    fs::write(&b, gz.finish().unwrap()).unwrap();
    let c = dir.join("c.jsonl");
    fs::write(&c, join(&lines[40..])).unwrap();
    vec![a, b, c]
}

/// Every file of `a` but the manifest equals `b`'s.
fn same_files(a: &Path, b: &Path) {
    for e in fs::read_dir(a).unwrap() {
        let name = e.unwrap().file_name();
        if name == "manifest.json" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let (x, y) = (
            fs::read(a.join(&name)).unwrap(),
            fs::read(b.join(&name)).unwrap(),
        );
        assert!(x == y, "{} differs", name.to_string_lossy());
    }
}

/// A rerun of a complete part said "nothing to do" and left its manifest as it was.
fn left_alone(rerun: &Run, dir: &Path, manifest_before: &[u8]) {
    let out = rerun.stdout();
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(
        fs::read(dir.join("manifest.json")).unwrap(),
        manifest_before
    );
}

#[test]
fn one_part_is_a_plain_run_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_inputs(tmp.path());
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let formats = ["--format", "megatron,olmo,npy", "--seed", "7"];
    let plain = tmp.path().join("plain");
    augment(
        &inputs,
        &qwen(),
        &plain,
        &[&["-q", "-L", "1000"][..], &formats].concat(),
    );
    let parts = tmp.path().join("parts");
    part(&inputs, &parts, 1, 0, &formats);
    let one = part_dir(&parts, 1, 0);
    same_files(&plain, &one);
    let (mut a, mut b) = (manifest(&plain), manifest(&one));
    for m in [&mut a, &mut b] {
        let m = m.as_object_mut().unwrap();
        for key in ["command", "cpu_seconds", "part"] {
            m.remove(key);
        }
    }
    assert_eq!(
        a, b,
        "the manifests differ beyond command, cpu_seconds and part"
    );
}

#[test]
fn parts_hold_every_document_once_in_order_and_merge_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_inputs(tmp.path());
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let plain = tmp.path().join("plain");
    augment(&inputs, &qwen(), &plain, &["-q", "-L", "1000"]);
    let plain_docs = fs::read(plain.join("provenance.docs")).unwrap();
    // More parts than inputs, and more parts than lines (empty parts).
    for n in [2u32, 5, 97] {
        let parts = tmp.path().join(format!("parts{n}"));
        for i in 0..n {
            part(&inputs, &parts, n, i, &["--format", "megatron,olmo,npy"]);
        }
        let merged = tmp.path().join(format!("merged{n}"));
        utk(&["merge", &s(&parts), "-o", &s(&merged), "-q"], None).ok();
        let docs = fs::read(merged.join("provenance.docs")).unwrap();
        assert!(
            docs == plain_docs,
            "{n} parts: the documents differ from the plain run's"
        );
        let m = manifest(&merged);
        assert_eq!(m["parts"].as_array().unwrap().len(), n as usize);
        assert_eq!(m["input"]["sources"], manifest(&plain)["input"]["sources"]);
        let mut args = vec!["verify".to_string(), s(&merged), "--input".into()];
        args.extend(inputs.iter().map(|p| s(p)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = utk(&args, None).ok();
        assert!(
            run.stdout().contains("84 documents re-tokenized"),
            "{}",
            run.stdout()
        );
    }
}

#[test]
fn a_part_does_not_depend_on_threads_and_parts_draw_their_own_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    part(&[&docs()], &a, 3, 1, &["-j", "1"]);
    part(&[&docs()], &b, 3, 1, &["-j", "2"]);
    same_files(&part_dir(&a, 3, 1), &part_dir(&b, 3, 1));
    let m = manifest(&part_dir(&a, 3, 1));
    assert_eq!(m["config"]["seed"], 0);
    assert_ne!(m["part"]["stream_seed"], 0);
}

#[test]
fn a_rerun_does_only_what_is_missing_and_refuses_another_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for i in 0..3 {
        part(&[&docs()], &out, 3, i, &[]);
    }
    let dir = part_dir(&out, 3, 1);
    let before = fs::read(dir.join("tokens.bin")).unwrap();
    let manifest_before = fs::read(dir.join("manifest.json")).unwrap();
    // `utk augment` of the fixture into `out` with `extra` flags, not quiet (the summary is read).
    let (d, q, o) = (s(&docs()), s(&qwen()), s(&out));
    let run = |extra: &[&str]| {
        let mut args = vec!["augment", &d, "-t", &q, "-o", &o, "-L", "1000"];
        args.extend_from_slice(extra);
        utk(&args, None)
    };
    const PART_1: [&str; 4] = ["--num-shards", "3", "--shard-index", "1"];
    let again = run(&[]);
    // Without the flags and outside Slurm: a plain run into a non-empty directory is refused.
    again.fails_with(&["is not empty"]);
    let rerun = run(&PART_1).ok();
    left_alone(&rerun, &dir, &manifest_before);
    // A part whose run did not finish (no manifest) is redone, to the same bytes.
    fs::remove_file(dir.join("manifest.json")).unwrap();
    fs::write(dir.join("tokens.bin"), b"half").unwrap();
    let redo = run(&PART_1).ok();
    assert!(
        redo.stderr().contains("did not finish"),
        "{}",
        redo.stderr()
    );
    assert_eq!(fs::read(dir.join("tokens.bin")).unwrap(), before);
    // Another configuration is refused, naming the difference.
    run(&[&PART_1[..], &["--split-prob", "0.3"]].concat()).fails_with(&[
        "another configuration",
        "config.split_prob",
        "--force",
    ]);
}

#[test]
fn merge_refuses_missing_incomplete_or_mismatched_parts_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for i in [0, 1, 3] {
        part(&[&docs()], &out, 4, i, &[]);
    }
    let merged = tmp.path().join("merged");
    let merge = || utk(&["merge", &s(&out), "-o", &s(&merged)], None);
    merge().fails_with(&["part 2 of 4", "part-00002-of-00004", "missing"]);
    assert!(!merged.exists());
    part(&[&docs()], &out, 4, 2, &["--split-prob", "0.5"]);
    merge().fails_with(&["part-00002-of-00004", "another configuration", "split_prob"]);
    assert!(!merged.exists());
    part(&[&docs()], &out, 4, 2, &["--force"]);
    fs::remove_file(part_dir(&out, 4, 3).join("manifest.json")).unwrap();
    merge().fails_with(&["part 3 of 4 is incomplete"]);
    assert!(!merged.exists());
    part(&[&docs()], &out, 4, 3, &[]);
    fs::create_dir(out.join("part-00000-of-00002")).unwrap();
    merge().fails_with(&["two splits"]);
    fs::remove_dir(out.join("part-00000-of-00002")).unwrap();
    merge().ok();
    utk(&["verify", &s(&merged)], None).ok();
}

#[test]
fn slurm_array_variables_choose_the_part_and_the_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = crate::common::utk_command();
        cmd.args([
            "augment",
            &s(&docs()),
            "-t",
            &s(&qwen()),
            "-o",
            &s(&out),
            "-L",
            "1000",
        ]);
        cmd.args(extra).envs(env.iter().copied());
        cmd.output().unwrap()
    };
    let array = [
        ("SLURM_ARRAY_TASK_ID", "12"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let o = run(&array, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("part 2 of 3 (from SLURM_ARRAY_TASK_ID"),
        "{stdout}"
    );
    assert_eq!(
        manifest(&part_dir(&out, 3, 2))["part"]["chosen_by"],
        "slurm"
    );
    let o = run(&array, &["--num-shards", "2", "--shard-index", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(part_dir(&out, 2, 0).join("manifest.json").is_file());
    let stepped = [
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let o = run(&stepped, &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("contiguous array"));
}

#[test]
fn standard_input_and_bad_part_numbers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = s(&tmp.path().join("out"));
    let q = s(&qwen());
    let base = ["augment", "-", "-t", q.as_str(), "-o", out.as_str()];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    // Refused before standard input is read (null here: nothing to write into a closed pipe).
    utk(&with(&["--num-shards", "2", "--shard-index", "1"]), None)
        .fails_with(&["standard input", "cannot be split"]);
    utk(&with(&["--num-shards", "2", "--shard-index", "2"]), None)
        .fails_with(&["part index 2 is not below"]);
    utk(&with(&["--num-shards", "2"]), None).fails_with(&["--shard-index"]);
}

#[test]
fn token_shards_split_by_documents_and_tokenize_parts_list_for_megatron() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = tmp.path().join("tok");
    for i in 0..3 {
        let (n, i) = ("3".to_string(), i.to_string());
        let args = [
            "tokenize",
            &s(&docs()),
            "-t",
            &s(&qwen()),
            "-o",
            &s(&tok),
            "-q",
            "--num-shards",
            &n,
            "--shard-index",
            &i,
        ];
        utk(&args, None).ok();
    }
    // One part writes the plain run's dataset.
    let one = tmp.path().join("one");
    let plain = tmp.path().join("plain");
    let q = s(&qwen());
    let base = ["tokenize", &s(&docs()), "-t", &q, "-q"];
    let one_part = ["-o", &s(&one), "--num-shards", "1", "--shard-index", "0"];
    utk(&[&base[..], &one_part].concat(), None).ok();
    utk(&[&base[..], &["-o", &s(&plain)]].concat(), None).ok();
    for ext in ["bin", "idx"] {
        let a = fs::read(one.join(format!("part-00000-of-00001/tokens.{ext}"))).unwrap();
        assert!(
            a == fs::read(plain.with_extension(ext)).unwrap(),
            "tokens.{ext} differs"
        );
    }
    let list = utk(&["merge", "--data-path", &s(&tok)], None).ok().stdout();
    let words: Vec<&str> = list.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{list}");
    assert!(words[1].ends_with("part-00000-of-00003/tokens"), "{list}");
    let total: u64 = (0..3).map(|k| words[2 * k].parse::<u64>().unwrap()).sum();
    // The parts' documents are the whole corpus's: augment them and compare with the text.
    let prefixes: Vec<PathBuf> = (0..3).map(|k| PathBuf::from(words[2 * k + 1])).collect();
    let refs: Vec<&Path> = prefixes.iter().map(PathBuf::as_path).collect();
    let from_parts = tmp.path().join("from-parts");
    augment(&refs, &qwen(), &from_parts, &["-q", "-L", "1000"]);
    assert_eq!(manifest(&from_parts)["counts"]["input_tokens"], total);
    // A Megatron shard is cut between documents; the merge numbers them as in the shard.
    let whole = tmp.path().join("whole");
    augment(&[&prefixes[0]], &qwen(), &whole, &["-q", "-L", "1000"]);
    let parts = tmp.path().join("shard-parts");
    for i in 0..4 {
        part(&[&prefixes[0]], &parts, 4, i, &[]);
    }
    let sources = manifest(&part_dir(&parts, 4, 1))["part"]["sources"].clone();
    assert!(sources[0]["range"].is_array(), "{sources}");
    let merged = tmp.path().join("merged");
    utk(&["merge", &s(&parts), "-o", &s(&merged), "-q"], None).ok();
    let docs = fs::read(merged.join("provenance.docs")).unwrap();
    assert!(docs == fs::read(whole.join("provenance.docs")).unwrap());
    let verify = ["verify", &s(&merged), "--input", &s(&prefixes[0])];
    utk(&verify, None).ok();
}

mod split {
    use proptest::prelude::*;
    use std::path::Path;
    use utk::input::{Input, InputFiles, InputFormat, Source, TextOptions};
    use utk::part::Part;

    /// Writes files of `lines` (line lengths) to `dir`; every third file gzip-compressed.
    fn files(dir: &Path, lines: &[Vec<usize>]) -> Vec<String> {
        let mut names = Vec::new();
        for (i, ls) in lines.iter().enumerate() {
            let text: String = ls.iter().map(|&n| format!("{}\n", "x".repeat(n))).collect();
            let path = dir.join(format!("{i:03}.jsonl"));
            let bytes = match i % 3 {
                2 => {
                    let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
                    gz.finish().unwrap()
                }
                _ => text.into_bytes(),
            };
            std::fs::write(&path, bytes).unwrap();
            names.push(path.display().to_string());
        }
        names
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The parts' pieces of each file follow each other from its first byte to its last, in
        /// part order; every cut inside a file is at a line start; compressed files stay whole.
        #[test]
        fn parts_cover_every_byte_once_at_line_starts(
            lines in prop::collection::vec(prop::collection::vec(0usize..300, 1..40), 1..6),
            count in 1u32..40,
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let names = files(tmp.path(), &lines);
            let text = TextOptions { text_key: "text".into(), skip_bad_lines: false };
            let input = Input::resolve(&names, InputFormat::Jsonl, text).unwrap();
            let mut next = vec![0u64; names.len()];
            for index in 0..count {
                let (part, record) = input.select_part(&Part::new(index, count).unwrap()).unwrap();
                let InputFiles::Text(sources) = &part.files else { panic!("text") };
                prop_assert_eq!(sources.len(), record.len());
                for (source, r) in sources.iter().zip(&record) {
                    let i = r.input as usize;
                    let whole = std::fs::read(&names[i]).unwrap();
                    let (a, b) = match source {
                        Source::File(_) => (0, whole.len() as u64),
                        Source::Range(_, a, b) => (*a, *b),
                        Source::Stdin => panic!("no stdin"),
                    };
                    prop_assert_eq!(a, next[i], "file {} part {}", i, index);
                    prop_assert!(a == 0 || whole[a as usize - 1] == b'\n');
                    prop_assert!(i % 3 != 2 || (a == 0 && b == whole.len() as u64));
                    next[i] = b;
                }
            }
            for (i, n) in names.iter().enumerate() {
                prop_assert_eq!(next[i], std::fs::metadata(n).unwrap().len());
            }
        }
    }
}

#[test]
fn merge_joins_doc_boundaries_and_parquet_and_refuses_upsampled_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cip");
    let extra = [
        "--method",
        "cip",
        "--doc-boundaries",
        "--format",
        "megatron,npy,parquet",
    ];
    for i in 0..3 {
        part(&[&docs()], &out, 3, i, &extra);
    }
    let merged = tmp.path().join("cip-merged");
    utk(&["merge", &s(&out), "-o", &s(&merged), "-q"], None).ok();
    let lens = fs::read(merged.join("doc_lens.bin")).unwrap();
    let from_parts: usize = (0..3)
        .map(|i| {
            fs::metadata(part_dir(&out, 3, i).join("doc_lens.bin"))
                .unwrap()
                .len() as usize
        })
        .sum();
    assert_eq!(lens.len(), from_parts);
    let run = utk(&["verify", &s(&merged), "--input", &s(&docs())], None).ok();
    assert!(run.stdout().contains("checksum"), "{}", run.stdout());
    // windows.parquet joined row by row: the same windows as tokens.bin.
    let (dtype, ids, mask) =
        utk::output::parquet::read_windows(&merged.join("windows.parquet"), 1000).unwrap();
    let bin = fs::read(merged.join("tokens.bin")).unwrap();
    assert_eq!(mask.len(), bin.len() / 2);
    for i in 0..mask.len() {
        let a = utk::codec::dtype::decode_at(&ids, dtype, i);
        let b = utk::codec::dtype::decode_at(&bin, utk::codec::Dtype::Uint16, i);
        assert_eq!(a, b, "token {i}");
    }

    let up = tmp.path().join("up");
    for i in 0..2 {
        part(&[&docs()], &up, 2, i, &["--upsample-long", "200:2"]);
    }
    let refused = tmp.path().join("up-merged");
    utk(&["merge", &s(&up), "-o", &s(&refused)], None).fails_with(&[
        "part-00000-of-00002",
        "--upsample-long",
        "--data-path",
    ]);
    assert!(!refused.exists());
}

#[test]
fn an_upsampled_part_resumes_and_refuses_another_upsampling() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("up");
    let up = ["--upsample-long", "200:2"];
    part(&[&docs()], &out, 2, 1, &up);
    let dir = part_dir(&out, 2, 1);
    let manifest_before = fs::read(dir.join("manifest.json")).unwrap();
    assert!(manifest(&dir)["upsample"]["sources"][0]["input_tokens"].as_u64() > Some(0));
    // The same part again: complete, nothing to do (the report's counts are outcomes).
    let (d, q, o) = (s(&docs()), s(&qwen()), s(&out));
    let base = ["augment", &d, "-t", &q, "-o", &o, "-L", "1000"];
    let run = |extra: &[&str]| {
        let args = [
            &base[..],
            &["--num-shards", "2", "--shard-index", "1"],
            extra,
        ]
        .concat();
        utk(&args, None)
    };
    let rerun = run(&up).ok();
    left_alone(&rerun, &dir, &manifest_before);
    // Another factor, no upsampling, or another source are other configurations.
    run(&["--upsample-long", "200:3"]).fails_with(&["another configuration", "upsample.factor"]);
    run(&[]).fails_with(&["another configuration", "upsample"]);
    run(&[&up[..], &["--upsample-source-key", "id"]].concat())
        .fails_with(&["another configuration", "upsample.source"]);
}
