//! An independent checker of an `augment` output, written from the specification (method.md),
//! used as the test oracle: exact lengths, no token lost or altered, layout, mask policy, labels,
//! knots, backtrace lists and chunk order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use utk::output::reader::OutputReader;

pub struct Checked {
    pub windows: u64,
    pub pieces_by_chunks: BTreeMap<u16, u64>,
    pub content_tokens: u64,
}

fn id(m: &BTreeMap<String, u32>, k: &str) -> u32 {
    *m.get(k)
        .unwrap_or_else(|| panic!("manifest lacks special token {k}"))
}

/// Checks `dir` against `reference` (the expected ids of every document, EOD included).
pub fn check_output(dir: &Path, reference: &[Vec<u32>]) -> Checked {
    let out = OutputReader::open(dir).expect("open output");
    let m = &out.manifest;
    let cfg = &m.config;
    let sp = &m.special_tokens;
    let (cl, cl_end, bt, bt_sep, bt_end, pad, eod) = (
        id(sp, "cl"),
        id(sp, "cl_end"),
        id(sp, "bt"),
        id(sp, "bt_sep"),
        id(sp, "bt_end"),
        id(sp, "pad"),
        id(sp, "eod"),
    );
    let roles: HashMap<u32, String> = sp.iter().map(|(k, &v)| (v, k.clone())).collect();
    let knot = |kind: &str, b: u16| id(sp, &format!("{kind}{b}"));
    let l = m.seq_len;
    assert_eq!(
        m.counts.documents as usize,
        reference.len(),
        "document count"
    );
    assert_eq!(out.docs().count(), reference.len());
    for (d, rec) in out.docs().enumerate() {
        assert_eq!(
            rec.tokens as usize,
            reference[d].len(),
            "doc {d} token count"
        );
    }

    let spans: Vec<_> = out.spans().collect();
    let mut by_window: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, s) in spans.iter().enumerate() {
        by_window.entry(s.window).or_default().push(i);
    }
    let mut covered: Vec<Vec<(u64, u64)>> = vec![Vec::new(); reference.len()];
    let mut pieces_by_chunks = BTreeMap::new();
    let mut content_tokens = 0;
    let last_window = m.windows.saturating_sub(1);
    for w in 0..m.windows {
        let toks = out.window_tokens(w);
        let mask = out.window_mask(w);
        assert_eq!(toks.len(), l);
        let idx = by_window.get(&w).cloned().unwrap_or_default();
        let mut in_span = vec![false; l];
        // Spans: content equal to the reference, mask 1, EOD only at a document's end.
        for &i in &idx {
            let s = spans[i];
            let (a, b) = (s.start as usize, (s.start + s.len) as usize);
            assert!(s.len > 0 && b <= l, "window {w}: span {s:?} out of range");
            let doc = &reference[s.doc as usize];
            let (o, e) = (
                s.doc_offset as usize,
                s.doc_offset as usize + s.len as usize,
            );
            assert_eq!(
                &toks[a..b],
                &doc[o..e],
                "window {w}: doc {} tokens {o}..{e} altered",
                s.doc
            );
            assert!(
                mask[a..b].iter().all(|&x| x == 1),
                "window {w}: content masked"
            );
            for (k, &t) in toks[a..b].iter().enumerate() {
                let at_end = o + k + 1 == doc.len();
                assert_eq!(t == eod, at_end, "window {w}: EOD misplaced at {}", a + k);
                if t != eod {
                    assert!(
                        !roles.contains_key(&t),
                        "window {w}: role {} inside content",
                        roles[&t]
                    );
                }
            }
            in_span[a..b].iter_mut().for_each(|x| *x = true);
            covered[s.doc as usize].push((s.doc_offset, s.len as u64));
            content_tokens += s.len as u64;
        }
        // Everything else is markup with the documented mask, or trailing pad in the last window.
        let mut labels_seen: HashSet<Vec<u32>> = HashSet::new();
        let mut i = 0;
        while i < l {
            if in_span[i] {
                i += 1;
                continue;
            }
            let t = toks[i];
            if t == cl {
                assert_eq!(mask[i], 0);
                let end = (i + 1..l)
                    .find(|&j| toks[j] == cl_end)
                    .expect("unclosed <CL>");
                let label = toks[i + 1..end].to_vec();
                assert!(!label.is_empty(), "empty label");
                assert!(
                    mask[i..=end].iter().all(|&x| x == 0),
                    "window {w}: label tokens are targets"
                );
                assert!(labels_seen.insert(label), "window {w}: duplicate label");
                i = end + 1;
            } else if t == bt {
                assert_eq!(mask[i], 0, "<S> must not be a target");
                let end = (i + 1..l)
                    .find(|&j| toks[j] == bt_end)
                    .expect("unclosed <S>");
                assert!(
                    mask[i + 1..=end].iter().all(|&x| x == 1),
                    "window {w}: backtrace not a target"
                );
                i = end + 1;
            } else if t == pad {
                assert_eq!(w, last_window, "pad outside the last window");
                assert!(
                    toks[i..].iter().all(|&x| x == pad) && mask[i..].iter().all(|&x| x == 0),
                    "pad not trailing"
                );
                break;
            } else if roles
                .get(&t)
                .is_some_and(|r| r.starts_with("tail") || r.starts_with("head"))
            {
                assert_eq!(mask[i], 0, "knot is a target");
                i += 1;
            } else {
                panic!("window {w}: stray token {t} at {i} outside every span and markup");
            }
        }
        // Per piece (a document's spans in this window): knots, labels, order, backtrace.
        let mut pieces: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &i in &idx {
            pieces.entry(spans[i].doc).or_default().push(i);
        }
        let cut_doc = idx.last().map(|&i| spans[i].doc);
        for (doc, members) in &pieces {
            let n = spans[members[0]].chunks;
            assert_eq!(
                members.len(),
                n as usize,
                "window {w} doc {doc}: {} spans for {n} chunks",
                members.len()
            );
            *pieces_by_chunks.entry(n).or_insert(0) += 1;
            let order: Vec<u16> = members.iter().map(|&i| spans[i].chunk).collect();
            if cfg.order == utk::config::Order::Preserve || n == 1 {
                assert!(
                    order.windows(2).all(|p| p[0] < p[1]),
                    "window {w} doc {doc}: order {order:?} not preserved"
                );
            }
            if n == 1 {
                continue;
            }
            let mut labels = vec![Vec::new(); n as usize];
            let mut ends = vec![0usize; n as usize];
            for &i in members {
                let s = spans[i];
                let mut a = s.start as usize;
                if s.chunk > 1 {
                    assert_eq!(
                        toks[a - 1],
                        knot("head", s.chunk - 1),
                        "window {w}: missing head knot"
                    );
                    a -= 1;
                }
                assert_eq!(toks[a - 1], cl_end);
                let open = (0..a - 1)
                    .rev()
                    .find(|&j| toks[j] == cl)
                    .expect("label start");
                labels[s.chunk as usize - 1] = toks[open + 1..a - 1].to_vec();
                let mut b = (s.start + s.len) as usize;
                if s.chunk < n {
                    assert_eq!(
                        toks[b],
                        knot("tail", s.chunk),
                        "window {w}: missing tail knot"
                    );
                    b += 1;
                }
                ends[s.chunk as usize - 1] = b;
            }
            if cfg.backtrace {
                let last_placed = *members
                    .iter()
                    .max_by_key(|&&i| spans[i].start)
                    .expect("member");
                let at = ends[spans[last_placed].chunk as usize - 1];
                let mut expect = vec![bt];
                for (k, lab) in labels.iter().enumerate() {
                    if k > 0 {
                        expect.push(bt_sep);
                    }
                    expect.extend(lab);
                }
                expect.push(bt_end);
                assert_eq!(
                    &toks[at..at + expect.len()],
                    &expect[..],
                    "window {w} doc {doc}: backtrace"
                );
            }
            let _ = cut_doc;
        }
        // The piece cut by the window end: its last-placed chunk ends the window.
        if let Some(&last) = idx.last() {
            let s = spans[last];
            let doc_len = reference[s.doc as usize].len() as u64;
            let doc_spans: Vec<_> = idx
                .iter()
                .filter(|&&i| spans[i].doc == s.doc)
                .map(|&i| spans[i])
                .collect();
            let piece_end = doc_spans
                .iter()
                .map(|x| x.doc_offset + x.len as u64)
                .max()
                .expect("span");
            if piece_end < doc_len {
                let mut end = (s.start + s.len) as usize;
                if s.chunk < s.chunks {
                    end += 1;
                }
                if s.chunks > 1 && cfg.backtrace {
                    end = (end..l)
                        .find(|&j| toks[j] == bt_end)
                        .expect("backtrace end")
                        + 1;
                }
                assert_eq!(end, l, "window {w}: the cut piece does not end the window");
            }
        }
    }
    // No token lost or duplicated: each document covered exactly once, in order.
    for (d, mut c) in covered.into_iter().enumerate() {
        c.sort();
        let mut at = 0;
        for (o, n) in c {
            assert_eq!(o, at, "doc {d}: tokens {at}..{o} lost or duplicated");
            at += n;
        }
        let dropped = m.counts.dropped_tokens > 0;
        if !dropped {
            assert_eq!(at as usize, reference[d].len(), "doc {d}: tail lost");
        }
    }
    assert_eq!(
        m.counts.input_tokens,
        reference.iter().map(|r| r.len() as u64).sum::<u64>()
    );
    Checked {
        windows: m.windows,
        pieces_by_chunks,
        content_tokens,
    }
}
