//! Turns a window plan into the window's tokens, loss mask and provenance spans.
//!
//! Chunks of all pieces are placed in a uniformly random order. With `--order preserve` each
//! piece's chunks are then re-assigned, in their original order, to the positions its chunks got
//! (drawn as a random interleaving, which is the same distribution). The piece cut by the window
//! end is the exception: its last chunk ends the window in both modes, which is what separates it
//! from its neighbours when it has no EOD (with a full shuffle, a cut last chunk placed mid-window
//! would have neither EOD nor tail knot to mark its end). Layout of a chunk of a split piece:
//! `<CL> label </CL> [H_{j-1}] content [T_j]`, and after a piece's last-placed chunk
//! `<S> l_1 <s> l_2 … l_n </S>`.
//!
//! CIP places chunks as `--order preserve` does (a random interleaving, the cut piece's last
//! chunk last) and writes their content only: no label, knot or backtrace list.

use super::chunks::boundaries;
use crate::config::{AugmentConfig, Method, Order};
use crate::pack::WindowPlan;
use crate::rng::{window_rng, Purpose};
use crate::tokenize::SpecialTokens;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;

/// Where one chunk's original tokens landed (one record of the provenance sidecar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Ordinal of the source document.
    pub doc: u64,
    /// Token offset of the chunk's first content token inside its document.
    pub doc_offset: u64,
    /// Window ordinal.
    pub window: u64,
    /// Offset of the chunk's first content token inside the window.
    pub start: u32,
    /// Number of content tokens.
    pub len: u32,
    /// 1-based chunk index inside its piece.
    pub chunk: u16,
    /// Number of chunks of the piece.
    pub chunks: u16,
}

/// An augmented window, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub index: u64,
    pub tokens: Vec<u32>,
    /// 1 = the token is a training target, 0 = it is not.
    pub mask: Vec<u8>,
    pub spans: Vec<Span>,
}

impl Window {
    /// Pads the window to `len` tokens with `pad` (loss mask 0).
    pub fn pad_to(&mut self, len: usize, pad: u32) {
        self.tokens.resize(len, pad);
        self.mask.resize(len, 0);
    }
}

/// The chunk placement order: `(piece, chunk)` pairs, chunk 1-based.
fn placement(
    plan: &WindowPlan,
    cfg: &AugmentConfig,
    rng: &mut impl rand::Rng,
) -> Vec<(usize, u32)> {
    let chunks = |i: usize| plan.pieces[i].shape.chunks;
    let cut = plan.cut_piece();
    if cfg.method == Method::Plain {
        return (0..plan.pieces.len()).map(|i| (i, 1)).collect();
    }
    match (cfg.method, cfg.order) {
        (Method::Cip, _) | (_, Order::Preserve) => {
            // A random interleaving of the pieces' chunk sequences; the cut piece's last chunk is
            // held back and ends the window.
            let mut seq: Vec<usize> = Vec::new();
            for i in 0..plan.pieces.len() {
                let n = chunks(i) - u32::from(Some(i) == cut);
                seq.extend(std::iter::repeat_n(i, n as usize));
            }
            seq.shuffle(rng);
            let mut next = vec![1u32; plan.pieces.len()];
            let mut order: Vec<(usize, u32)> = seq
                .into_iter()
                .map(|i| {
                    next[i] += 1;
                    (i, next[i] - 1)
                })
                .collect();
            if let Some(c) = cut {
                order.push((c, chunks(c)));
            }
            order
        }
        (_, Order::Shuffle) => {
            // A full shuffle, except that the cut piece's last chunk still ends the window: its
            // content has neither EOD nor a tail knot, so nothing else could mark where it ends.
            let mut order: Vec<(usize, u32)> = (0..plan.pieces.len())
                .flat_map(|i| (1..=chunks(i)).map(move |j| (i, j)))
                .filter(|&(i, j)| Some(i) != cut || j < chunks(i))
                .collect();
            order.shuffle(rng);
            if let Some(c) = cut {
                order.push((c, chunks(c)));
            }
            order
        }
    }
}

/// Augments one window. The result holds exactly `plan.used` tokens.
pub fn arrange(plan: &WindowPlan, cfg: &AugmentConfig, sp: &SpecialTokens) -> Result<Window> {
    arrange_into(plan, cfg, sp, Vec::new(), Vec::new())
}

/// [`arrange`] into the given (emptied) token and mask buffers, which are reused.
pub fn arrange_into(
    plan: &WindowPlan,
    cfg: &AugmentConfig,
    sp: &SpecialTokens,
    tokens: Vec<u32>,
    mask: Vec<u8>,
) -> Result<Window> {
    let mut out = Emitter { tokens, mask };
    out.tokens.clear();
    out.mask.clear();
    out.tokens.reserve(plan.used);
    out.mask.reserve(plan.used);
    let mut rng = window_rng(cfg.seed, plan.index, Purpose::Arrange);
    let bounds: Vec<Vec<usize>> = plan
        .pieces
        .iter()
        .map(|p| {
            boundaries(
                p.len,
                p.shape.chunks as usize,
                cfg.chunking,
                cfg.min_chunk_tokens,
                cfg.chunk_tokens,
                &mut rng,
            )
        })
        .collect();
    let order = placement(plan, cfg, &mut rng);
    let mut remaining: Vec<u32> = plan.pieces.iter().map(|p| p.shape.chunks).collect();
    let mut spans = Vec::with_capacity(order.len());
    for (i, j) in order {
        let piece = &plan.pieces[i];
        let n = piece.shape.chunks;
        let (lo, hi) = (bounds[i][j as usize - 1], bounds[i][j as usize]);
        let split = n >= 2 && cfg.method == Method::Utk;
        if split {
            out.open_chunk(sp, &piece.shape.labels[j as usize - 1], j);
        }
        spans.push(Span {
            doc: piece.doc,
            doc_offset: piece.doc_offset + lo as u64,
            window: plan.index,
            start: out.tokens.len() as u32,
            len: (hi - lo) as u32,
            chunk: j as u16,
            chunks: n as u16,
        });
        out.emit(&plan.content(piece)[lo..hi], 1);
        if split && j < n {
            out.emit(&[sp.tails[j as usize - 1]], 0);
        }
        remaining[i] -= 1;
        if split && remaining[i] == 0 && cfg.backtrace {
            out.backtrace(sp, &piece.shape.labels);
        }
    }
    let Emitter { tokens, mask } = out;
    if tokens.len() != plan.used {
        bail!(
            "internal error: window {} has {} tokens, its plan budgeted {}",
            plan.index,
            tokens.len(),
            plan.used
        );
    }
    Ok(Window {
        index: plan.index,
        tokens,
        mask,
        spans,
    })
}
/// A window's tokens and loss mask, written together.
struct Emitter {
    tokens: Vec<u32>,
    mask: Vec<u8>,
}

impl Emitter {
    /// Appends `ids`, each with loss-mask value `target`.
    fn emit(&mut self, ids: &[u32], target: u8) {
        self.tokens.extend_from_slice(ids);
        self.mask.resize(self.mask.len() + ids.len(), target);
    }

    /// `<CL> label </CL>` and, for chunk `j > 1`, its head knot (none of them targets).
    fn open_chunk(&mut self, sp: &SpecialTokens, label: &[u32], j: u32) {
        self.emit(&[sp.cl], 0);
        self.emit(label, 0);
        self.emit(&[sp.cl_end], 0);
        if j > 1 {
            self.emit(&[sp.heads[j as usize - 2]], 0);
        }
    }

    /// `<S> l1 <s> l2 … </S>`: every token a target but the opening `<S>`.
    fn backtrace(&mut self, sp: &SpecialTokens, labels: &[Vec<u32>]) {
        self.emit(&[sp.bt], 0);
        for (k, label) in labels.iter().enumerate() {
            if k > 0 {
                self.emit(&[sp.bt_sep], 1);
            }
            self.emit(label, 1);
        }
        self.emit(&[sp.bt_end], 1);
    }
}
