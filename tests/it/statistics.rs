//! Statistical tests with fixed seeds over many documents: the decisions come out as configured.

use crate::common::lib_run::{random_docs, run};
use utk::config::{AugmentConfig, Order};

/// Pieces holding a whole document: their shape was decided with the whole length in view.
fn whole_pieces(cfg: &AugmentConfig, lengths: &[usize], seed: u64) -> Vec<(usize, u32)> {
    let r = run(cfg, &random_docs(lengths, seed));
    r.plans
        .iter()
        .flat_map(|p| p.pieces.iter())
        .filter(|p| p.doc_offset == 0 && p.ends_doc)
        .map(|p| (p.len, p.shape.chunks))
        .collect()
}

fn lengths(n: usize, lo: usize, hi: usize) -> Vec<usize> {
    (0..n).map(|i| lo + (i * 7919) % (hi - lo)).collect()
}

#[test]
fn split_rate_and_chunk_counts_match_the_configuration() {
    for (p, dist, expect) in [
        (0.8, "2:0.5,3:0.5", vec![(2u32, 0.5), (3, 0.5)]),
        (0.3, "2:0.2,3:0.3,4:0.5", vec![(2, 0.2), (3, 0.3), (4, 0.5)]),
    ] {
        let cfg = AugmentConfig {
            seq_len: 16384,
            seed: 11,
            split_prob: p,
            chunks: dist.parse().unwrap(),
            ..Default::default()
        };
        let pieces = whole_pieces(&cfg, &lengths(12000, 20, 900), 3);
        let min = cfg.min_chunk_tokens;
        let eligible: Vec<_> = pieces.iter().filter(|(len, _)| *len >= 2 * min).collect();
        let split = eligible.iter().filter(|(_, n)| *n >= 2).count() as f64 / eligible.len() as f64;
        assert!(eligible.len() > 8000, "{}", eligible.len());
        assert!((split - p).abs() < 0.02, "split rate {split} for p={p}");
        // Pieces too short for two chunks are never split.
        assert!(pieces.iter().all(|(len, n)| *len >= 2 * min || *n == 1));
        let max = expect.iter().map(|e| e.0).max().unwrap() as usize;
        let roomy: Vec<_> = pieces
            .iter()
            .filter(|(len, n)| *len >= max * min && *n >= 2)
            .collect();
        for (count, weight) in expect {
            let freq =
                roomy.iter().filter(|(_, n)| *n == count).count() as f64 / roomy.len() as f64;
            assert!(
                (freq - weight).abs() < 0.03,
                "{count} chunks: {freq} vs {weight} (p={p})"
            );
        }
    }
}

#[test]
fn split_points_are_uniform_among_allowed_placements() {
    // Every document 200 tokens, always split in two, min 32: the split point is uniform on 32..=168.
    let cfg = AugmentConfig {
        seq_len: 8192,
        seed: 5,
        split_prob: 1.0,
        chunks: "2".parse().unwrap(),
        ..Default::default()
    };
    let r = run(&cfg, &random_docs(&vec![200; 6000], 9));
    let mut hist = vec![0u32; 201];
    for w in &r.windows {
        for s in w
            .spans
            .iter()
            .filter(|s| s.chunk == 1 && s.chunks == 2 && s.doc_offset == 0)
        {
            let whole = r.plans[s.window as usize]
                .pieces
                .iter()
                .any(|p| p.doc == s.doc && p.len == 200);
            if whole {
                hist[s.len as usize] += 1;
            }
        }
    }
    let total: u32 = hist.iter().sum();
    assert!(
        hist[..32].iter().chain(&hist[169..]).all(|&c| c == 0),
        "a chunk below the minimum"
    );
    // Ten bands of the 137 allowed positions: each holds its share within 15%.
    let positions: Vec<usize> = (32..=168).collect();
    for band in positions.chunks(14) {
        let got: u32 = band.iter().map(|&i| hist[i]).sum();
        let want = total as f64 * band.len() as f64 / positions.len() as f64;
        assert!(
            (got as f64 - want).abs() < 0.15 * want,
            "band {band:?}: {got} vs {want:.0}"
        );
    }
}

#[test]
fn order_is_preserved_only_when_asked() {
    let lengths = lengths(3000, 100, 600);
    for order in [Order::Preserve, Order::Shuffle] {
        let cfg = AugmentConfig {
            seq_len: 8192,
            seed: 2,
            split_prob: 1.0,
            order,
            ..Default::default()
        };
        let r = run(&cfg, &random_docs(&lengths, 4));
        let (mut pieces, mut reversed) = (0, 0);
        for w in &r.windows {
            let mut by_doc: std::collections::BTreeMap<u64, Vec<u16>> = Default::default();
            for s in &w.spans {
                by_doc.entry(s.doc).or_default().push(s.chunk);
            }
            for chunks in by_doc.values().filter(|c| c.len() >= 2) {
                pieces += 1;
                reversed += usize::from(chunks.windows(2).any(|c| c[0] > c[1]));
            }
        }
        let rate = reversed as f64 / pieces as f64;
        match order {
            Order::Preserve => assert_eq!(reversed, 0),
            // 2 chunks out of order half the time, 3 chunks 5/6 of the time: about 2/3 overall.
            Order::Shuffle => assert!((rate - 2.0 / 3.0).abs() < 0.05, "{rate}"),
        }
    }
}
