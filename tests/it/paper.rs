//! The paper's comparison arms (docs/paper.md): `--method cip`, `--doc-boundaries` and
//! `--upsample-long`, each against its definition and against plain packing.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use utk::augment::Span;
use utk::output::doc_lens::DocLens;
use utk::output::reader::OutputReader;

fn run(tmp: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = tmp.join(name);
    augment(&[&docs()], &qwen(), &out, extra);
    out
}

/// Per window: each document's content tokens in the window, in chunk order, and the window's
/// tokens sorted (its multiset).
type Layout = Vec<(BTreeMap<u64, Vec<u32>>, Vec<u32>)>;

fn layout(dir: &Path) -> Layout {
    let out = OutputReader::open(dir).unwrap();
    let spans: Vec<Span> = out.spans().collect();
    (0..out.windows())
        .map(|w| {
            let t = out.window_tokens(w);
            let mut mine: Vec<&Span> = spans.iter().filter(|s| s.window == w).collect();
            mine.sort_by_key(|s| (s.doc, s.chunk));
            let mut by_doc: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
            for s in mine {
                let c = &t[s.start as usize..(s.start + s.len) as usize];
                by_doc.entry(s.doc).or_default().extend_from_slice(c);
            }
            let mut sorted = t.clone();
            sorted.sort_unstable();
            (by_doc, sorted)
        })
        .collect()
}

#[test]
fn cip_windows_hold_exactly_plain_packings_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, extra) in [
        &["-L", "1500"][..],
        &["-L", "700", "--chunks", "2:1,3:1,4:1", "--seed", "3"],
        &["-L", "4k", "--split-prob", "0.5", "--chunking", "equal"],
        &["-L", "900", "--tail", "drop", "--min-chunk-tokens", "100"],
    ]
    .iter()
    .enumerate()
    {
        let plain = run(
            tmp.path(),
            &format!("p{i}"),
            &[*extra, &["--method", "plain"][..]].concat(),
        );
        let cip = run(
            tmp.path(),
            &format!("c{i}"),
            &[*extra, &["--method", "cip"][..]].concat(),
        );
        let (p, c) = (layout(&plain), layout(&cip));
        assert_eq!(p.len(), c.len(), "{extra:?}: window count");
        for (w, (pw, cw)) in p.iter().zip(&c).enumerate() {
            assert_eq!(pw.1, cw.1, "{extra:?}: window {w} multiset differs");
            assert_eq!(pw.0, cw.0, "{extra:?}: window {w} pieces differ in order");
        }
        let m = OutputReader::open(&cip).unwrap().manifest;
        assert_eq!(m.counts.inserted_tokens, 0);
        assert!(
            m.counts.pieces_by_chunks.keys().any(|k| k != "1"),
            "{extra:?}: nothing split"
        );
        let o = cip.display().to_string();
        let d = docs().display().to_string();
        let v = utk(&["verify", &o, "--input", &d], None).ok();
        assert!(
            v.stdout().contains("CIP: chunks back to back"),
            "{}",
            v.stdout()
        );
    }
}

#[test]
fn cip_chunks_keep_their_order_and_split_every_piece_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let cip = run(
        tmp.path(),
        "c",
        &["-L", "1000", "--method", "cip", "--min-chunk-tokens", "8"],
    );
    let out = OutputReader::open(&cip).unwrap();
    let cfg = &out.manifest.config;
    assert_eq!((cfg.split_prob, cfg.chunks.counts.clone()), (1.0, vec![2]));
    let mut interleaved = false;
    for w in 0..out.windows() {
        let spans: Vec<Span> = out.spans().filter(|s| s.window == w).collect();
        let mut next: BTreeMap<u64, u16> = BTreeMap::new();
        for (k, s) in spans.iter().enumerate() {
            let n = next.entry(s.doc).or_insert(1);
            assert_eq!(s.chunk, *n, "window {w}: chunk out of order");
            *n += 1;
            // Every piece long enough for two chunks of 8 tokens is split in two.
            assert_eq!(s.chunks == 2, piece_len(&spans, s.doc) >= 16);
            interleaved |= k > 0 && spans[k - 1].doc != s.doc && s.chunk == 2;
        }
        // Spans tile the window from token 0.
        let mut at = 0;
        for s in &spans {
            assert_eq!(s.start, at);
            at += s.len;
        }
    }
    assert!(interleaved, "no chunk of one piece between two of another");
}

fn piece_len(spans: &[Span], doc: u64) -> u64 {
    spans
        .iter()
        .filter(|s| s.doc == doc)
        .map(|s| s.len as u64)
        .sum()
}

#[test]
fn cip_structure_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let cip = run(tmp.path(), "c", &["-L", "1500", "--method", "cip"]);
    let out = OutputReader::open(&cip).unwrap();
    let cl = out.manifest.special_tokens["cl"];
    drop(out);
    // A markup token where CIP inserts none.
    let path = cip.join("tokens.bin");
    let mut b = std::fs::read(&path).unwrap();
    b[20..22].copy_from_slice(&(cl as u16).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let o = cip.display().to_string();
    utk(&["verify", &o], None).fails_with(&["window 0, token 10", "<CL> inside a chunk"]);
    let d = docs().display().to_string();
    let o2 = tmp.path().join("x").display().to_string();
    let t = qwen().display().to_string();
    utk(
        &[
            "augment", &d, "-t", &t, "-o", &o2, "--method", "cip", "--order", "shuffle",
        ],
        None,
    )
    .fails_with(&["--order shuffle cannot be used with method cip"]);
}

#[test]
fn doc_boundaries_list_every_windows_segments() {
    let tmp = tempfile::tempdir().unwrap();
    for method in ["plain", "cip"] {
        let dir = run(
            tmp.path(),
            method,
            &["-L", "1200", "--method", method, "--doc-boundaries"],
        );
        let out = OutputReader::open(&dir).unwrap();
        let lens = DocLens::open(&dir, &out.manifest)
            .unwrap()
            .expect("doc_lens listed");
        let eod = out.manifest.special_tokens["eod"];
        let spans: Vec<Span> = out.spans().collect();
        for w in 0..out.windows() {
            let seg = lens.window(w);
            let t = out.window_tokens(w);
            assert_eq!(seg.iter().sum::<i64>(), 1200, "window {w}");
            let mine: Vec<&Span> = spans.iter().filter(|s| s.window == w).collect();
            let mut at = 0usize;
            for (k, &l) in seg.iter().enumerate() {
                let end = at + l as usize;
                match mine.get(k) {
                    Some(s) => assert_eq!((s.start as usize, s.len as usize), (at, l as usize)),
                    // The trailing pad, in the last window only.
                    None => {
                        assert_eq!((k + 1, w + 1), (seg.len(), out.windows()));
                        assert!(t[at..]
                            .iter()
                            .all(|&x| x == out.manifest.special_tokens["pad"]));
                    }
                }
                // Plain: a segment is a document's part, so EOD ends it or the window does.
                if method == "plain" && k < mine.len() {
                    assert!(t[end - 1] == eod || end == 1200);
                    assert!(!t[at..end - 1].contains(&eod));
                }
                at = end;
            }
        }
        let o = dir.display().to_string();
        let v = utk(&["verify", &o], None).ok();
        assert!(
            v.stdout().contains("doc_lens: every window"),
            "{}",
            v.stdout()
        );
        // One segment length changed: verify names the window and the segment.
        let bin = dir.join("doc_lens.bin");
        let mut b = std::fs::read(&bin).unwrap();
        let first = i32::from_le_bytes(b[0..4].try_into().unwrap());
        b[0..4].copy_from_slice(&(first - 1).to_le_bytes());
        std::fs::write(&bin, &b).unwrap();
        utk(&["verify", &o], None).fails_with(&["window 0: doc_lens segment 0"]);
    }
    let d = docs().display().to_string();
    let t = qwen().display().to_string();
    let o = tmp.path().join("utk").display().to_string();
    utk(
        &["augment", &d, "-t", &t, "-o", &o, "--doc-boundaries"],
        None,
    )
    .fails_with(&["--doc-boundaries cannot be used with --method utk"]);
    assert!(!tmp.path().join("utk").exists());
}

/// The fixture documents as two input files (two sources): the first 30 lines and the rest.
fn two_sources(tmp: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(docs()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (tmp.join("a.jsonl"), tmp.join("b.jsonl"));
    std::fs::write(&a, lines[..30].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[30..].join("\n") + "\n").unwrap();
    (a, b)
}

#[test]
fn upsampling_repeats_long_documents_and_keeps_each_sources_share() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_sources(tmp.path());
    let (min, factor) = (1500u64, 3u32);
    for (i, method) in ["utk", "plain", "cip"].iter().enumerate() {
        let out = tmp.path().join(format!("u{i}"));
        let up = format!("{min}:{factor}");
        let run = augment(
            &[&a, &b],
            &qwen(),
            &out,
            &["-L", "2k", "--method", method, "--upsample-long", &up],
        );
        assert!(run.stdout().contains("upsampling"), "{}", run.stdout());
        let o = OutputReader::open(&out).unwrap();
        let report = o
            .manifest
            .upsample
            .clone()
            .expect("upsample in the manifest");
        assert_eq!((report.min_tokens, report.factor), (min, factor));
        // Occurrences of each input document, and where in the stream.
        let mut seen: BTreeMap<(u32, u64), Vec<usize>> = BTreeMap::new();
        let mut tokens = [0u64; 2];
        for (k, d) in o.docs().enumerate() {
            seen.entry((d.source, d.line)).or_default().push(k);
            tokens[d.source as usize] += d.tokens;
        }
        let mut long = 0;
        for (&(_, _), at) in &seen {
            let rec = o.doc(at[0]).unwrap();
            if rec.tokens >= min {
                long += 1;
                assert_eq!(at.len(), factor as usize);
                assert!(
                    at.windows(2).all(|w| w[1] > w[0] + 1),
                    "copies adjacent: {at:?}"
                );
            } else {
                assert_eq!(at.len(), 1);
            }
        }
        assert!(long >= 2, "the fixture has long documents");
        for (s, src) in report.sources.iter().enumerate() {
            assert_eq!(tokens[s], src.output_tokens);
            assert!(
                src.dropped_documents > 0 && src.long_documents > 0,
                "{src:?}"
            );
            // The short documents pay for the copies: the share of each source is kept.
            assert!(src.mixture_kept, "{src:?}");
            assert!(
                src.output_tokens.abs_diff(src.input_tokens) < min,
                "{src:?}"
            );
            assert_eq!(src.repeated_tokens, (factor as u64 - 1) * src.long_tokens);
        }
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("spill")), "{names:?}");
        let (o_s, a_s, b_s) = (
            out.display().to_string(),
            a.display().to_string(),
            b.display().to_string(),
        );
        let v = utk(&["verify", &o_s, "--input", &a_s, &b_s], None).ok();
        assert!(
            v.stdout().contains("re-tokenized from the input and equal"),
            "{}",
            v.stdout()
        );
    }
}

#[test]
fn upsampling_is_deterministic_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_sources(tmp.path());
    let runs: Vec<PathBuf> = ["1", "2"]
        .iter()
        .map(|j| {
            let out = tmp.path().join(format!("j{j}"));
            augment(
                &[&a, &b],
                &qwen(),
                &out,
                &[
                    "-L",
                    "2k",
                    "--upsample-long",
                    "1500:4",
                    "-j",
                    j,
                    "--method",
                    "cip",
                    "--doc-boundaries",
                ],
            );
            out
        })
        .collect();
    for f in [
        "tokens.bin",
        "doc_lens.bin",
        "provenance.docs",
        "provenance.spans",
    ] {
        assert_eq!(
            std::fs::read(runs[0].join(f)).unwrap(),
            std::fs::read(runs[1].join(f)).unwrap(),
            "{f}"
        );
    }
    // A token of the last copy of a long document, changed: only the input can tell.
    let out = &runs[0];
    let o = OutputReader::open(out).unwrap();
    let docs: Vec<_> = o.docs().collect();
    let last_long = (0..docs.len())
        .rev()
        .find(|&k| docs[k].tokens >= 1500)
        .unwrap();
    let span = o
        .spans()
        .find(|s| s.doc == last_long as u64 && s.len > 2)
        .unwrap();
    let seq_len = o.manifest.seq_len;
    let at = 2 * (span.window as usize * seq_len + span.start as usize + 1);
    drop(o);
    let path = out.join("tokens.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let (o_s, a_s, b_s) = (
        out.display().to_string(),
        a.display().to_string(),
        b.display().to_string(),
    );
    // The manifest's checksum catches the change; with the checksum made to match (as a
    // deliberate edit would), the structure is still fine and only the input tells.
    utk(&["verify", &o_s], None).fails_with(&["tokens.bin", "CRC-32C"]);
    let mpath = out.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let crc = utk::output::checksum::file_crc32c(&path).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == "tokens.bin" {
            f["crc32c"] = serde_json::Value::String(format!("{crc:08x}"));
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    utk(&["verify", &o_s], None).ok();
    utk(&["verify", &o_s, "--input", &a_s, &b_s], None)
        .fails_with(&["copies equal the input, expected 4"]);
    // Without the second file, its documents are missing.
    utk(
        &["verify", &runs[1].display().to_string(), "--input", &a_s],
        None,
    )
    .fails_with(&["a long document at source 1", "is not in the input"]);
}

/// The fixture documents as two input files whose documents carry `meta.source`, cutting across
/// the files: "alpha", "beta" and the number 7 in turn, five lines each (each gets one of the
/// long documents of the fixture at lines 7, 31 and 55), with some documents without it (no
/// `meta`, `meta` without `source`, or `null`). Returns the files and, per input document in
/// order, its file, line and source value.
type FieldDocs = Vec<(usize, u64, Option<String>)>;

fn field_sources(tmp: &Path) -> (PathBuf, PathBuf, FieldDocs) {
    let text = std::fs::read_to_string(docs()).unwrap();
    let (mut files, mut docs) = ([String::new(), String::new()], Vec::new());
    for (i, line) in text.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let value = match i % 10 {
            9 => None,
            6 => {
                v["meta"] = serde_json::json!({"other": 1});
                None
            }
            4 => {
                v["meta"] = serde_json::json!({"source": null});
                None
            }
            _ => {
                let s = [
                    serde_json::json!("alpha"),
                    serde_json::json!("beta"),
                    serde_json::json!(7),
                ];
                v["meta"] = serde_json::json!({"source": s[i / 5 % 3]});
                Some(["alpha", "beta", "7"][i / 5 % 3].to_string())
            }
        };
        let f = usize::from(i >= 42);
        files[f] += &format!("{v}\n");
        docs.push((f, files[f].lines().count() as u64, value));
    }
    let (a, b) = (tmp.join("fa.jsonl"), tmp.join("fb.jsonl"));
    std::fs::write(&a, &files[0]).unwrap();
    std::fs::write(&b, &files[1]).unwrap();
    (a, b, docs)
}

/// `(source name, standing for documents without the field)` of an input document.
fn source_of(doc: &(usize, u64, Option<String>), files: &[String; 2]) -> (String, bool) {
    match &doc.2 {
        Some(v) => (v.clone(), false),
        None => (files[doc.0].clone(), true),
    }
}

#[test]
fn upsampling_by_field_keeps_each_field_sources_share() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, fdocs) = field_sources(tmp.path());
    let files = [a.display().to_string(), b.display().to_string()];
    let (min, factor) = (1500u64, 2u32);
    let up = format!("{min}:{factor}");
    let runs: Vec<PathBuf> = ["1", "2"]
        .iter()
        .map(|j| {
            let out = tmp.path().join(format!("f{j}"));
            let key = ["--upsample-source-key", "meta.source"];
            let run = augment(
                &[&a, &b],
                &qwen(),
                &out,
                &[&["-L", "2k", "--upsample-long", &up, "-j", j][..], &key].concat(),
            );
            assert!(
                run.stdout().contains("per source (field \"meta.source\""),
                "{}",
                run.stdout()
            );
            out
        })
        .collect();
    for f in ["tokens.bin", "provenance.docs", "provenance.spans"] {
        let read = |r: &PathBuf| std::fs::read(r.join(f)).unwrap();
        assert_eq!(
            read(&runs[0]),
            read(&runs[1]),
            "{f} differs between -j 1 and -j 2"
        );
    }
    let o = OutputReader::open(&runs[0]).unwrap();
    let report = o.manifest.upsample.clone().unwrap();
    let other = OutputReader::open(&runs[1]).unwrap().manifest.upsample;
    assert_eq!(
        Some(&report),
        other.as_ref(),
        "sources numbered in stream order"
    );
    assert_eq!(report.source, "field:meta.source");
    let without = fdocs.iter().filter(|d| d.2.is_none()).count() as u64;
    assert_eq!(report.documents_without_field, Some(without));
    // Every source's input and output tokens, derived here from the input and the sidecar.
    let texts: Vec<String> = [&a, &b].iter().flat_map(|p| doc_texts(p, "text")).collect();
    let ids = reference_ids(&qwen(), &texts, o.manifest.tokenizer.eod.id);
    let mut want: BTreeMap<(String, bool), (u64, u64)> = BTreeMap::new();
    let mut index = BTreeMap::new();
    for (k, d) in fdocs.iter().enumerate() {
        want.entry(source_of(d, &files)).or_default().0 += ids[k].len() as u64;
        index.insert((d.0 as u32, d.1), k);
    }
    for d in o.docs() {
        let k = index[&(d.source, d.line)];
        want.get_mut(&source_of(&fdocs[k], &files)).unwrap().1 += d.tokens;
    }
    let mut got: BTreeMap<(String, bool), (u64, u64)> = BTreeMap::new();
    for s in &report.sources {
        got.insert(
            (s.source.clone(), s.without_field),
            (s.input_tokens, s.output_tokens),
        );
        // The share is kept: output tokens equal input tokens within one short document.
        assert!(
            s.mixture_kept && s.output_tokens.abs_diff(s.input_tokens) < min,
            "{s:?}"
        );
    }
    assert_eq!(got, want);
    assert_eq!(got.len(), 5, "alpha, beta, 7 and the two files");
    for name in ["alpha", "beta", "7"] {
        let s = report.sources.iter().find(|s| s.source == name).unwrap();
        let in_both = (0..2).all(|f| {
            fdocs
                .iter()
                .any(|d| d.0 == f && d.2.as_deref() == Some(name))
        });
        assert!(in_both, "{name} is in both files");
        assert!(s.long_documents > 0 && s.dropped_documents > 0, "{s:?}");
    }
    assert!(report
        .sources
        .iter()
        .any(|s| s.long_documents > 0 && !s.without_field));
    let o_s = runs[0].display().to_string();
    utk(&["verify", &o_s], None).ok();
    let v = utk(&["verify", &o_s, "--input", &files[0], &files[1]], None).ok();
    assert!(
        v.stdout().contains("re-tokenized from the input and equal"),
        "{}",
        v.stdout()
    );
}

#[test]
fn upsampling_by_field_is_verified_against_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, fdocs) = field_sources(tmp.path());
    let out = tmp.path().join("f");
    let key = ["--upsample-source-key", "meta.source"];
    augment(
        &[&a, &b],
        &qwen(),
        &out,
        &[&["-L", "2k", "--upsample-long", "1500:2"][..], &key].concat(),
    );
    let (o_s, a_s, b_s) = (
        out.display().to_string(),
        a.display().to_string(),
        b.display().to_string(),
    );
    // The manifest moves 100 tokens from one source to another: the total still holds, so only
    // the input can tell.
    let mpath = out.join("manifest.json");
    let original = std::fs::read(&mpath).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&original).unwrap();
    for (i, delta) in [(0usize, -100i64), (1, 100)] {
        let s = &mut m["upsample"]["sources"][i];
        for f in ["input_tokens", "output_tokens"] {
            s[f] = serde_json::json!(s[f].as_i64().unwrap() + delta);
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    utk(&["verify", &o_s], None).ok();
    utk(&["verify", &o_s, "--input", &a_s, &b_s], None).fails_with(&[
        "source 0 (",
        "the input has",
        "the manifest says",
    ]);
    // A total that does not add up is seen without the input.
    m["upsample"]["sources"][0]["output_tokens"] = serde_json::json!(1);
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    utk(&["verify", &o_s], None).fails_with(&["the manifest's sources add up to"]);
    std::fs::write(&mpath, &original).unwrap();
    utk(&["verify", &o_s, "--input", &a_s, &b_s], None).ok();
    // An input whose source field changed (a document of "alpha" now says "gamma").
    let k = fdocs
        .iter()
        .position(|d| d.0 == 1 && d.2.as_deref() == Some("alpha"))
        .unwrap();
    let line = fdocs[k].1 as usize;
    let text = std::fs::read_to_string(&b).unwrap();
    let changed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i + 1 == line {
            true => l.replace("\"source\":\"alpha\"", "\"source\":\"gamma\""),
            false => l.to_string(),
        })
        .collect();
    assert_ne!(changed.join("\n") + "\n", text);
    std::fs::write(&b, changed.join("\n") + "\n").unwrap();
    utk(&["verify", &o_s, "--input", &a_s, &b_s], None)
        .fails_with(&["sources the manifest does not list: [\"gamma\"]"]);
}

#[test]
fn upsampling_source_key_refusals_and_mistakes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, fdocs) = field_sources(tmp.path());
    let (a_s, b_s, t) = (
        a.display().to_string(),
        b.display().to_string(),
        qwen().display().to_string(),
    );
    let o = tmp.path().join("o");
    let o_s = o.display().to_string();
    let run = |inputs: &[&str], extra: &[&str]| {
        let mut args = vec!["augment"];
        args.extend(inputs);
        args.extend(["-t", &t, "-o", &o_s, "-L", "2k"]);
        args.extend(extra);
        utk(&args, None)
    };
    let key = ["--upsample-source-key", "meta.source"];
    run(&[&a_s], &key).fails_with(&["--upsample-source-key", "--upsample-long, which is not set"]);
    let up = [&["--upsample-long", "1500:2"][..], &key].concat();
    let parquet = fixture("parquet/docs.parquet").display().to_string();
    run(&[&parquet], &up).fails_with(&["--upsample-source-key reads a JSONL field", "parquet"]);
    let shard = tmp.path().join("ids.u16");
    std::fs::write(&shard, [1u8, 0, 2, 0, 0, 0]).unwrap();
    let shard_s = shard.display().to_string();
    let mut shard_args = up.clone();
    shard_args.extend(["--input-format", "u16", "--eod-id", "0"]);
    run(&[&shard_s], &shard_args)
        .fails_with(&["--upsample-source-key", "token shards have no fields"]);
    run(
        &[&a_s],
        &[&["--upsample-long", "1500:2", "--upsample-source-key", "a..b"][..]].concat(),
    )
    .fails_with(&["--upsample-source-key \"a..b\" has an empty field name"]);
    // A name no document has (a typo) stops the run before any window.
    let typo = [
        "--upsample-long",
        "1500:2",
        "--upsample-source-key",
        "meta.sourec",
    ];
    run(&[&a_s, &b_s], &typo).fails_with(&[
        "--upsample-source-key",
        &format!("none of the {} documents has this field", fdocs.len()),
    ]);
    assert!(!o.join("manifest.json").exists());
    // An object as the source: a bad line naming file and line (or skipped and counted).
    let c = tmp.path().join("c.jsonl");
    std::fs::write(&c, "{\"text\":\"a b c\",\"meta\":{\"source\":\"x\"}}\n{\"text\":\"d e\",\"meta\":{\"source\":{\"k\":1}}}\n").unwrap();
    let c_s = c.display().to_string();
    run(&[&c_s], &up).fails_with(&[&format!(
        "{c_s}:2: source field \"meta.source\" is an object"
    )]);
    let mut skip = up.clone();
    skip.push("--skip-bad-lines");
    let r = run(&[&c_s], &skip).ok();
    assert!(r.stdout().contains("1 bad lines skipped"), "{}", r.stdout());
}

mod cip_properties {
    use crate::common::lib_run::{random_docs, run};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use utk::augment::Window;
    use utk::config::{AugmentConfig, ChunkDist, Chunking, Method, Order};

    /// Each document's content tokens in the window, in chunk order.
    fn pieces(w: &Window) -> BTreeMap<u64, Vec<u32>> {
        let mut spans = w.spans.clone();
        spans.sort_by_key(|s| (s.doc, s.chunk));
        let mut by_doc: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for s in spans {
            let c = &w.tokens[s.start as usize..(s.start + s.len) as usize];
            by_doc.entry(s.doc).or_default().extend_from_slice(c);
        }
        by_doc
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn cip_is_plain_packing_rearranged(
            seq_len in 16usize..3000,
            seed in any::<u64>(),
            split_prob in 0.0f64..=1.0,
            chunks in prop_oneof![Just("2"), Just("3"), Just("2:1,5:1")],
            chunking in prop_oneof![Just(Chunking::Uniform), Just(Chunking::Equal)],
            min_chunk_tokens in 1usize..50,
            lengths in prop::collection::vec(1usize..2500, 1..30),
            doc_seed in any::<u64>(),
        ) {
            let docs = random_docs(&lengths, doc_seed);
            let cfg = AugmentConfig {
                method: Method::Cip,
                seq_len,
                seed,
                split_prob,
                chunks: chunks.parse::<ChunkDist>().unwrap(),
                chunking,
                min_chunk_tokens,
                order: Order::Preserve,
                ..AugmentConfig::default()
            };
            let cip = run(&cfg, &docs);
            let plain = run(&AugmentConfig { method: Method::Plain, ..cfg.clone() }, &docs);
            prop_assert_eq!(cip.windows.len(), plain.windows.len());
            for (c, p) in cip.windows.iter().zip(&plain.windows) {
                let (mut a, mut b) = (c.tokens.clone(), p.tokens.clone());
                a.sort_unstable();
                b.sort_unstable();
                prop_assert_eq!(a, b, "window {} multiset", c.index);
                prop_assert_eq!(pieces(c), pieces(p), "window {} pieces", c.index);
                prop_assert_eq!(&c.mask, &p.mask);
                let mut at = 0;
                let mut next: BTreeMap<u64, u16> = BTreeMap::new();
                for s in &c.spans {
                    prop_assert_eq!(s.start, at, "chunks back to back");
                    at += s.len;
                    let n = next.entry(s.doc).or_insert(1);
                    prop_assert_eq!(s.chunk, *n, "chunks in order");
                    *n += 1;
                    if s.chunks >= 2 {
                        prop_assert!(s.len as usize >= min_chunk_tokens);
                    }
                }
            }
        }
    }
}

#[test]
fn summaries_list_twenty_field_sources_and_count_the_rest() {
    // `id` differs for every document of the fixture: one source per document.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("up");
    let (d, q, o) = (
        docs().display().to_string(),
        qwen().display().to_string(),
        out.display().to_string(),
    );
    let flags = ["--upsample-long", "200:2", "--upsample-source-key", "id"];
    let args = [
        &["augment", &d, "-t", &q, "-o", &o, "-L", "1000"][..],
        &flags,
    ]
    .concat();
    let run = utk(&args, None).ok();
    let sources = manifest(&out)["upsample"]["sources"]
        .as_array()
        .unwrap()
        .len();
    assert!(sources > 20, "{sources} sources");
    let more = format!("… {} more sources", sources - 20);
    assert!(run.stdout().contains(&more), "{}", run.stdout());
    let summary = utk(&["inspect", &o, "--summary"], None).ok();
    let listed = summary.stdout().matches("upsampled (>=").count();
    assert_eq!(listed, 20, "{}", summary.stdout());
    assert!(summary.stdout().contains(&more), "{}", summary.stdout());
}
