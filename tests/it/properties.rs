//! Property tests of the packer and augmenter invariants with random documents and settings.

use crate::common::lib_run::{encoder, random_docs, run};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use utk::augment::WindowShaper;
use utk::config::{AugmentConfig, ChunkDist, Chunking, Method, Order, Tail};
use utk::pack::{DocPart, Packer};

fn config() -> impl Strategy<Value = AugmentConfig> {
    (
        (16usize..3000, any::<u64>(), 0.0f64..=1.0),
        prop_oneof![
            Just("2:0.5,3:0.5"),
            Just("2"),
            Just("2:1,3:1,4:1,6:1"),
            Just("3:0.2,8:0.8")
        ],
        prop_oneof![
            Just(Chunking::Uniform),
            Just(Chunking::Equal),
            Just(Chunking::Fixed)
        ],
        (1usize..300, 1usize..40, 3usize..8),
        (
            prop_oneof![Just(Order::Preserve), Just(Order::Shuffle)],
            any::<bool>(),
            prop_oneof![Just(Method::Utk), Just(Method::Utk), Just(Method::Plain)],
        ),
    )
        .prop_map(
            |(
                (seq_len, seed, split_prob),
                chunks,
                chunking,
                (chunk_tokens, min_chunk_tokens, label_len),
                (order, backtrace, method),
            )| AugmentConfig {
                method,
                seq_len,
                seed,
                split_prob,
                chunks: chunks.parse::<ChunkDist>().unwrap(),
                chunking,
                chunk_tokens: chunk_tokens.max(min_chunk_tokens),
                min_chunk_tokens,
                label_len,
                order,
                backtrace,
                tail: Tail::Pad,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn windows_are_exact_and_every_token_is_placed_once(
        cfg in config(),
        lengths in prop::collection::vec(1usize..2500, 1..40),
        doc_seed in any::<u64>(),
    ) {
        let docs = random_docs(&lengths, doc_seed);
        let r = run(&cfg, &docs);
        let sp = &r.specials;
        let mut covered: Vec<Vec<(u64, u32)>> = vec![Vec::new(); docs.len()];
        for (wi, (w, plan)) in r.windows.iter().zip(&r.plans).enumerate() {
            let last = wi + 1 == r.windows.len();
            prop_assert_eq!(w.tokens.len(), cfg.seq_len);
            if !(last && r.padded_tail) {
                prop_assert_eq!(plan.used, cfg.seq_len, "window {} not full", wi);
                prop_assert!(!w.tokens.contains(&sp.pad));
            }
            // Content: equal to the document, mask 1; everything is accounted for.
            let mut content = 0usize;
            let mut is_content = vec![false; cfg.seq_len];
            for s in &w.spans {
                let doc = &docs[s.doc as usize];
                let (a, b) = (s.start as usize, (s.start + s.len) as usize);
                prop_assert_eq!(&w.tokens[a..b], &doc[s.doc_offset as usize..s.doc_offset as usize + s.len as usize]);
                prop_assert!(w.mask[a..b].iter().all(|&m| m == 1));
                is_content[a..b].iter_mut().for_each(|c| *c = true);
                covered[s.doc as usize].push((s.doc_offset, s.len));
                content += s.len as usize;
            }
            let overhead: usize = plan.pieces.iter().map(|p| p.shape.overhead).sum();
            prop_assert_eq!(content + overhead, plan.used);
            // Markup that is a target is exactly the backtrace lists minus their <S>.
            let bt_targets: usize = plan.pieces.iter().filter(|p| p.shape.chunks >= 2 && cfg.backtrace)
                .map(|p| p.shape.labels.iter().map(Vec::len).sum::<usize>() + p.shape.chunks as usize)
                .sum();
            let markup_targets = (0..cfg.seq_len).filter(|&i| !is_content[i] && w.mask[i] == 1).count();
            prop_assert_eq!(markup_targets, bt_targets);
            // Labels unique per window; chunk order per piece.
            let mut labels = HashSet::new();
            for p in &plan.pieces {
                for l in &p.shape.labels {
                    prop_assert!(labels.insert(l.clone()), "duplicate label in window {}", wi);
                }
            }
            let mut order: BTreeMap<u64, Vec<u16>> = BTreeMap::new();
            for s in &w.spans {
                order.entry(s.doc).or_default().push(s.chunk);
            }
            for (doc, chunks) in order {
                let sorted = chunks.windows(2).all(|c| c[0] < c[1]);
                if cfg.order == Order::Preserve || cfg.method == Method::Plain {
                    prop_assert!(sorted, "window {} doc {}: {:?}", wi, doc, chunks);
                }
            }
            // The cut piece's last-placed chunk ends the window.
            if let Some(c) = plan.cut_piece() {
                let s = w.spans.last().unwrap();
                prop_assert_eq!(s.doc, plan.pieces[c].doc);
                prop_assert_eq!(s.chunk, s.chunks, "the cut piece's last chunk must end the window");
            }
        }
        for (d, mut c) in covered.into_iter().enumerate() {
            c.sort();
            let mut at = 0u64;
            for (o, n) in c {
                prop_assert_eq!(o, at, "doc {} gap or overlap", d);
                at += n as u64;
            }
            prop_assert_eq!(at as usize, docs[d].len(), "doc {} incomplete", d);
        }
    }

    /// The pipeline hands a long document's windows on a few at a time (`push_ids_from` with a
    /// bound): the plans are exactly those of one `push_ids` per document.
    #[test]
    fn packing_in_steps_gives_the_same_plans(
        cfg in config(),
        lengths in prop::collection::vec(1usize..9000, 1..8),
        max_out in 1usize..4,
    ) {
        let docs = random_docs(&lengths, 9);
        let mut whole = Packer::new(cfg.seq_len, WindowShaper::new(&cfg, encoder()).unwrap());
        let mut steps = Packer::new(cfg.seq_len, WindowShaper::new(&cfg, encoder()).unwrap());
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for (i, d) in docs.iter().enumerate() {
            whole.push_ids(i as u64, d, &mut want).unwrap();
            let mut offset = 0;
            while offset < d.len() {
                let mut out = Vec::new();
                offset = steps.push_ids_from(i as u64, d, offset, &mut out, max_out).unwrap();
                prop_assert!(out.len() <= max_out);
                got.extend(out);
            }
        }
        want.extend(whole.finish());
        got.extend(steps.finish());
        prop_assert_eq!(got, want);
    }

    /// A streamed document's ids arrive in parts and the pack stage places all but the shaper's
    /// look-ahead as they come (`push_part_from`): the plans are exactly those of one
    /// `push_ids` per document, whatever the parts.
    #[test]
    fn packing_a_document_as_it_arrives_gives_the_same_plans(
        cfg in config(),
        lengths in prop::collection::vec(1usize..9000, 1..6),
        part in 1usize..2500,
    ) {
        let docs = random_docs(&lengths, 11);
        let mut whole = Packer::new(cfg.seq_len, WindowShaper::new(&cfg, encoder()).unwrap());
        let mut parts = Packer::new(cfg.seq_len, WindowShaper::new(&cfg, encoder()).unwrap());
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for (i, d) in docs.iter().enumerate() {
            whole.push_ids(i as u64, d, &mut want).unwrap();
            let (mut held, mut base) = (Vec::new(), 0u64);
            for (k, ids) in d.chunks(part).enumerate() {
                held.extend_from_slice(ids);
                let ends = (k + 1) * part >= d.len();
                let keep = if ends { None } else { parts.lookahead() };
                if !ends && keep.is_none() {
                    continue;
                }
                let at = DocPart { ordinal: i as u64, base, keep };
                let placed = parts.push_part_from(at, &held, 0, &mut got, usize::MAX).unwrap();
                prop_assert!(ends || held.len() - placed <= keep.unwrap());
                held.drain(..placed);
                base += placed as u64;
            }
            prop_assert!(held.is_empty());
        }
        want.extend(whole.finish());
        got.extend(parts.finish());
        prop_assert_eq!(got, want);
    }

    #[test]
    fn same_seed_same_windows(cfg in config(), lengths in prop::collection::vec(1usize..2000, 1..20)) {
        let docs = random_docs(&lengths, 5);
        prop_assert_eq!(run(&cfg, &docs).windows, run(&cfg, &docs).windows);
    }
}
