//! The budget: what each piece will cost, decided before the packer places it.
//!
//! For every piece the shaper draws (from the window's `Plan` generator) whether to split it and
//! into how many chunks, draws the chunk labels, and computes the exact number of tokens the
//! markup adds. If the whole piece plus markup fits, it is placed whole; otherwise the piece is cut
//! so that content plus markup fill the window exactly, with fewer chunks if the shorter piece
//! cannot hold the drawn number (at least `--min-chunk-tokens` per chunk).
//!
//! CIP adds no markup: a piece takes what plain packing would take, then the same draws decide
//! whether and into how many chunks it is split (at least `--min-chunk-tokens` per chunk).

use super::labels::LabelMaker;
use crate::config::{AugmentConfig, Chunking, Method};
use crate::pack::{Shape, Shaper};
use crate::rng::{window_rng, Purpose};
use crate::tokenize::Encoder;
use anyhow::Result;
use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The [`Shaper`] for every method: UtK's budget, or no markup at all for plain packing.
pub struct WindowShaper<'a> {
    cfg: &'a AugmentConfig,
    rng: ChaCha8Rng,
    labels: LabelMaker<'a>,
    dist: WeightedIndex<f64>,
    /// Labels drawn for the piece being shaped.
    pending: Vec<Vec<u32>>,
}

impl<'a> WindowShaper<'a> {
    pub fn new(cfg: &'a AugmentConfig, encoder: &'a Encoder) -> Result<Self> {
        Ok(WindowShaper {
            cfg,
            rng: window_rng(cfg.seed, 0, Purpose::Plan),
            labels: LabelMaker::new(encoder, cfg.label_len),
            dist: WeightedIndex::new(&cfg.chunks.weights)?,
            pending: Vec::new(),
        })
    }

    /// Chunks a piece of `len` tokens gets, given the draws; 1 means not split.
    fn chunk_count(&self, len: usize, split: bool, drawn: u32) -> u32 {
        if !split {
            return 1;
        }
        let fit = match self.cfg.chunking {
            Chunking::Fixed => len / self.cfg.chunk_tokens,
            Chunking::Uniform | Chunking::Equal => {
                (drawn as usize).min(len / self.cfg.min_chunk_tokens)
            }
        };
        if fit >= 2 {
            fit as u32
        } else {
            1
        }
    }

    /// Tokens added for a piece with these chunk labels.
    fn overhead(&self, labels: &[Vec<u32>]) -> usize {
        let n = labels.len();
        if n < 2 {
            return 0;
        }
        let label_tokens: usize = labels.iter().map(Vec::len).sum();
        let chunk_labels = 2 * n + label_tokens; // <CL> label </CL> per chunk
        let knots = 2 * (n - 1); // T_b and H_b per boundary
        let backtrace = if self.cfg.backtrace {
            2 + (n - 1) + label_tokens
        } else {
            0
        };
        chunk_labels + knots + backtrace
    }

    /// CIP: plain packing's piece, split by the same draws as UtK's (no labels, no overhead).
    fn shape_cip(&mut self, available: usize, space: usize) -> (usize, Shape) {
        let take = available.min(space);
        let split = self.rng.random_bool(self.cfg.split_prob);
        let drawn = self.cfg.chunks.counts[self.dist.sample(&mut self.rng)];
        let shape = Shape {
            chunks: self.chunk_count(take, split, drawn),
            ..Shape::default()
        };
        (take, shape)
    }

    fn ensure_labels(&mut self, n: usize) -> Result<()> {
        while self.pending.len() < n {
            let label = self.labels.draw(&mut self.rng)?;
            self.pending.push(label);
        }
        Ok(())
    }
}

impl Shaper for WindowShaper<'_> {
    /// Plain and CIP take `min(available, space)`; UtK with uniform or equal chunking draws
    /// `min(drawn, available / --min-chunk-tokens)` chunks, the same for every `available` from
    /// `max chunks × --min-chunk-tokens` on. With fixed chunking the first chunk count tried is
    /// `available / --chunk-tokens` (and as many labels are drawn): it needs the whole length.
    fn lookahead(&self) -> Option<usize> {
        let seq_len = self.cfg.seq_len;
        match (self.cfg.method, self.cfg.chunking) {
            (Method::Plain | Method::Cip, _) => Some(seq_len),
            (_, Chunking::Uniform | Chunking::Equal) => {
                let most = self.cfg.chunks.counts.iter().copied().max().unwrap_or(0) as usize;
                Some(seq_len.max(most.saturating_mul(self.cfg.min_chunk_tokens)))
            }
            (_, Chunking::Fixed) => None,
        }
    }

    fn begin_window(&mut self, window: u64) {
        self.rng = window_rng(self.cfg.seed, window, Purpose::Plan);
        self.labels.reset();
    }

    fn shape(&mut self, available: usize, space: usize) -> Result<(usize, Shape)> {
        if self.cfg.method == Method::Plain {
            return Ok((
                available.min(space),
                Shape {
                    chunks: 1,
                    ..Shape::default()
                },
            ));
        }
        if self.cfg.method == Method::Cip {
            return Ok(self.shape_cip(available, space));
        }
        let split = self.rng.random_bool(self.cfg.split_prob);
        let drawn = self.cfg.chunks.counts[self.dist.sample(&mut self.rng)];
        self.pending.clear();
        let mut n = self.chunk_count(available, split, drawn);
        let (take, overhead) = loop {
            let labels_needed = if n >= 2 { n as usize } else { 0 };
            self.ensure_labels(labels_needed)?;
            let overhead = self.overhead(&self.pending[..labels_needed]);
            if available + overhead <= space {
                break (available, overhead);
            }
            let take = space.saturating_sub(overhead);
            let fit = self.chunk_count(take, split, drawn);
            if n == 1 || (fit >= n && take > 0) {
                break (take, overhead);
            }
            n = fit;
        };
        let keep = if n >= 2 { n as usize } else { 0 };
        for unused in self.pending.drain(keep..) {
            self.labels.release(&unused);
        }
        Ok((
            take,
            Shape {
                chunks: n,
                labels: std::mem::take(&mut self.pending),
                overhead,
            },
        ))
    }
}
