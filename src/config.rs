//! The augmentation's configuration: every knob, its default (the paper's best setting), and the
//! parsers for the spellings users type (`128k`, `2:0.5,3:0.5`). It serializes into the manifest.

use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Which transformation is applied to each packed window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Untie the Knots: chunk, label, knot, shuffle, backtrace.
    Utk,
    /// Plain packing ("CT"/"ABF" baseline): concatenate documents and cut at the window end.
    Plain,
    /// CIP (LongSkywork's chunk-interleaved pretraining): plain packing's windows, each piece
    /// split into chunks and the chunks of a window interleaved, each piece's in order; no
    /// markup. See docs/paper.md.
    Cip,
}

/// How chunk boundaries are placed inside a split piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chunking {
    /// Split points uniform among all placements that respect `--min-chunk-tokens`.
    Uniform,
    /// Chunks of (as nearly as possible) equal length.
    Equal,
    /// Chunks of exactly `--chunk-tokens` tokens; the last chunk takes the remainder (the paper's
    /// "1K chunks" ablation). The chunk count follows from the length, not from `--chunks`.
    Fixed,
}

/// Whether a piece's chunks keep their relative order after the shuffle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Chunk 1 of a piece always comes before chunk 2 (the paper's better setting).
    Preserve,
    /// Full shuffle ("disrupt order" ablation).
    Shuffle,
}

/// What happens to the last, incomplete window of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tail {
    /// Pad it to `seq_len` with the pad token (loss mask 0).
    Pad,
    /// Do not write it; its tokens are counted as dropped in the manifest.
    Drop,
}

crate::impl_choice!(Method { Utk => "utk", Plain => "plain", Cip => "cip" });
crate::impl_choice!(Chunking { Uniform => "uniform", Equal => "equal", Fixed => "fixed" });
crate::impl_choice!(Order { Preserve => "preserve", Shuffle => "shuffle" });
crate::impl_choice!(Tail { Pad => "pad", Drop => "drop" });

/// A discrete distribution over chunk counts, e.g. `2:0.5,3:0.5`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkDist {
    pub counts: Vec<u32>,
    pub weights: Vec<f64>,
}

impl ChunkDist {
    pub fn max(&self) -> u32 {
        self.counts.iter().copied().max().unwrap_or(2)
    }
}

impl std::str::FromStr for ChunkDist {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut counts = Vec::new();
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (n, w) = match part.split_once(':') {
                Some((n, w)) => (n.trim(), w.trim()),
                None => (part, "1"),
            };
            let n: u32 = n
                .parse()
                .with_context(|| format!("`{n}` in `{s}` is not a chunk count"))?;
            let w: f64 = w
                .parse()
                .with_context(|| format!("`{w}` in `{s}` is not a weight"))?;
            if !(2..=1024).contains(&n) {
                bail!(
                    "chunk count {n} in `{s}` is out of range: a split piece has 2 to 1024 chunks"
                );
            }
            if !(w.is_finite() && w >= 0.0) {
                bail!("weight {w} in `{s}` must be a finite number >= 0");
            }
            if counts.contains(&n) {
                bail!("chunk count {n} appears twice in `{s}`");
            }
            counts.push(n);
            weights.push(w);
        }
        if counts.is_empty() || weights.iter().sum::<f64>() <= 0.0 {
            bail!("`{s}` has no chunk count with a positive weight (expected e.g. `2:0.5,3:0.5`)");
        }
        Ok(ChunkDist { counts, weights })
    }
}

/// Parses a window length: `131072`, `128k`/`128K` (×1024), `1m` (×1048576).
pub fn parse_seq_len(s: &str) -> Result<usize> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1024),
        Some('m' | 'M') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    let n: usize = digits
        .parse()
        .ok()
        .and_then(|n: usize| n.checked_mul(mult))
        .with_context(|| format!("`{s}` is not a length (expected e.g. 131072, 128k or 192k)"))?;
    if n == 0 || n > i32::MAX as usize {
        bail!(
            "`{s}`: a window must hold between 1 and {} tokens",
            i32::MAX
        );
    }
    Ok(n)
}

/// Everything that decides how windows are packed and augmented.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    pub method: Method,
    pub seq_len: usize,
    pub seed: u64,
    pub split_prob: f64,
    pub chunks: ChunkDist,
    pub chunking: Chunking,
    pub chunk_tokens: usize,
    pub min_chunk_tokens: usize,
    pub label_len: usize,
    pub order: Order,
    pub backtrace: bool,
    pub tail: Tail,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            method: Method::Utk,
            seq_len: 131072,
            seed: 0,
            split_prob: 0.8,
            chunks: "2:0.5,3:0.5".parse().expect("valid default"),
            chunking: Chunking::Uniform,
            chunk_tokens: 1024,
            min_chunk_tokens: 32,
            label_len: 6,
            order: Order::Preserve,
            backtrace: true,
            tail: Tail::Pad,
        }
    }
}

impl AugmentConfig {
    /// Checks the combination of values; names the setting at fault.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.split_prob) {
            let what = format!("{} must be between 0 and 1", self.split_prob);
            return Err(SettingError::about(Setting::SplitProb, what).into());
        }
        if self.min_chunk_tokens == 0 {
            return Err(SettingError::about(Setting::MinChunkTokens, "must be at least 1").into());
        }
        if self.label_len == 0 || self.label_len > 64 {
            let what = format!("{} must be between 1 and 64", self.label_len);
            return Err(SettingError::about(Setting::LabelLen, what).into());
        }
        if self.method == Method::Cip && self.order == Order::Shuffle {
            let what =
                "shuffle cannot be used with method cip, which keeps each piece's chunks in order";
            return Err(SettingError::about(Setting::Order, what).into());
        }
        if self.chunking == Chunking::Fixed {
            if self.chunk_tokens == 0 {
                return Err(SettingError::about(Setting::ChunkTokens, "must be at least 1").into());
            }
            if self.seq_len / self.chunk_tokens > 4096 {
                let what = format!(
                    "{} would allow {} chunks per piece in a {}-token window; utk supports at \
                     most 4096 (use larger chunks)",
                    self.chunk_tokens,
                    self.seq_len / self.chunk_tokens,
                    self.seq_len
                );
                return Err(SettingError::about(Setting::ChunkTokens, what).into());
            }
        }
        Ok(())
    }

    /// The largest number of chunks one piece can be split into: it sets how many knot ids exist.
    pub fn max_chunks(&self) -> u32 {
        match (self.method, self.chunking) {
            (Method::Plain | Method::Cip, _) => 1,
            (Method::Utk, Chunking::Fixed) => (self.seq_len / self.chunk_tokens).max(2) as u32,
            (Method::Utk, _) => self.chunks.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_len_spellings() {
        assert_eq!(parse_seq_len("131072").unwrap(), 131072);
        assert_eq!(parse_seq_len("128k").unwrap(), 131072);
        assert_eq!(parse_seq_len("192K").unwrap(), 196608);
        assert_eq!(parse_seq_len("1m").unwrap(), 1 << 20);
        for bad in ["", "k", "0", "12x", "-5", "99999999999999999999k"] {
            assert!(parse_seq_len(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunk_distribution_spellings() {
        let d: ChunkDist = "2:0.5,3:0.5".parse().unwrap();
        assert_eq!(d.counts, vec![2, 3]);
        assert_eq!(d.max(), 3);
        let d: ChunkDist = "4".parse().unwrap();
        assert_eq!((d.counts, d.weights), (vec![4], vec![1.0]));
        for bad in ["", "1:1", "2:-1", "2:0", "x:1", "2:1,2:1", "2:nan"] {
            assert!(bad.parse::<ChunkDist>().is_err(), "{bad}");
        }
    }
}
