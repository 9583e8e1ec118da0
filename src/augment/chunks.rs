//! Where a piece is split: the chunk boundaries for each chunking mode.

use crate::config::Chunking;
use rand::Rng;

/// The `n + 1` boundaries (from 0 to `len`) of `n` chunks of a piece of `len` tokens.
///
/// `Uniform` draws the split points uniformly among all placements in which every chunk has at
/// least `min_chunk` tokens (stars and bars: the `len - n·min_chunk` free tokens are distributed
/// over the `n` chunks by `n - 1` bars placed uniformly among the free tokens and bars). The
/// caller guarantees `n · min_chunk <= len` (`Uniform`, `Equal`) or `n · chunk_tokens <= len`
/// (`Fixed`).
pub fn boundaries(
    len: usize,
    n: usize,
    chunking: Chunking,
    min_chunk: usize,
    chunk_tokens: usize,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut bounds = Vec::with_capacity(n + 1);
    bounds.push(0);
    if n > 1 {
        match chunking {
            Chunking::Uniform => {
                let free = len - n * min_chunk;
                let mut bars = rand::seq::index::sample(rng, free + n - 1, n - 1).into_vec();
                bars.sort_unstable();
                // Bar k sits after `bars[k] - k` free tokens; chunk k ends after k+1 minimums.
                for (k, bar) in bars.into_iter().enumerate() {
                    bounds.push(bar - k + (k + 1) * min_chunk);
                }
            }
            Chunking::Equal => {
                let (q, r) = (len / n, len % n);
                let mut at = 0;
                for k in 0..n - 1 {
                    at += q + usize::from(k < r);
                    bounds.push(at);
                }
            }
            Chunking::Fixed => {
                for k in 1..n {
                    bounds.push(k * chunk_tokens);
                }
            }
        }
    }
    bounds.push(len);
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uniform_split_point_is_uniform_over_allowed_positions() {
        // len 10, min 3, two chunks: the split point is 3..=7, each with probability 1/5.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut hist = [0u32; 11];
        for _ in 0..50_000 {
            let b = boundaries(10, 2, Chunking::Uniform, 3, 0, &mut rng);
            assert_eq!((b[0], b[2]), (0, 10));
            hist[b[1]] += 1;
        }
        for (pos, &count) in hist.iter().enumerate() {
            if (3..=7).contains(&pos) {
                assert!(
                    (count as f64 / 50_000.0 - 0.2).abs() < 0.01,
                    "{pos}: {count}"
                );
            } else {
                assert_eq!(count, 0, "{pos}");
            }
        }
    }

    #[test]
    fn every_mode_respects_its_minimum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for len in 6..60 {
            for n in 2..=len / 3 {
                let b = boundaries(len, n, Chunking::Uniform, 3, 0, &mut rng);
                assert_eq!(b.len(), n + 1);
                assert!(b.windows(2).all(|w| w[1] - w[0] >= 3), "{b:?}");
                let e = boundaries(len, n, Chunking::Equal, 3, 0, &mut rng);
                assert!(e
                    .windows(2)
                    .all(|w| w[1] - w[0] >= len / n && w[1] - w[0] <= len / n + 1));
            }
        }
        assert_eq!(
            boundaries(2500, 2, Chunking::Fixed, 1, 1024, &mut rng),
            vec![0, 1024, 2500]
        );
    }
}
