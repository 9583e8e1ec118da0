//! Stage 3: pack documents, in stream order, into windows of exactly `seq_len` tokens.
//!
//! The packer never drops a token. Before a piece is placed it asks the [`Shaper`] (implemented by
//! the augmentation) how many tokens of markup — labels, knots, backtrace list — the piece will
//! cost, so the markup is budgeted inside the window instead of pushing content off its end (the
//! authors' code loses about 1% of all tokens that way). A document that does not fit is cut: the
//! cut piece fills the window exactly and the remainder is the first piece of the next window.

use anyhow::{bail, Result};

/// How a piece will be augmented, decided before it is placed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Number of chunks (1 = not split).
    pub chunks: u32,
    /// One label (token ids) per chunk; empty when not split.
    pub labels: Vec<Vec<u32>>,
    /// Tokens the augmentation adds for this piece.
    pub overhead: usize,
}

/// A run of one document's tokens inside a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Ordinal of the source document.
    pub doc: u64,
    /// Token offset of the piece inside its document.
    pub doc_offset: u64,
    /// Offset of the piece's tokens in [`WindowPlan::tokens`].
    pub start: usize,
    pub len: usize,
    /// True when the piece ends its document (its last token is EOD). Only the piece cut by the
    /// window end — always the window's last piece — has `ends_doc == false`.
    pub ends_doc: bool,
    pub shape: Shape,
}

/// The pieces of one window and their content, before augmentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowPlan {
    pub index: u64,
    /// The pieces' original tokens, back to back.
    pub tokens: Vec<u32>,
    pub pieces: Vec<Piece>,
    /// Tokens the window will hold once augmented: content plus every piece's overhead.
    pub used: usize,
}

impl WindowPlan {
    pub fn content(&self, piece: &Piece) -> &[u32] {
        &self.tokens[piece.start..piece.start + piece.len]
    }

    /// The piece cut by the window end, if any.
    pub fn cut_piece(&self) -> Option<usize> {
        match self.pieces.last() {
            Some(p) if !p.ends_doc => Some(self.pieces.len() - 1),
            _ => None,
        }
    }
}

/// Decides each piece's shape and what it costs, with the window's space in view.
pub trait Shaper {
    /// Called before the first piece of every window.
    fn begin_window(&mut self, window: u64);

    /// Shapes the next piece: `available` (≥ 1) tokens remain in the document and `space` (≥ 1)
    /// in the window. Returns how many tokens to take and the shape. Contract: if everything
    /// fits (`take == available`), `take + overhead <= space`; otherwise the piece fills the window
    /// exactly, `take + overhead == space`, with `take >= 1`.
    fn shape(&mut self, available: usize, space: usize) -> Result<(usize, Shape)>;

    /// A bound `k` such that [`Shaper::shape`] decides the same (and draws the same) for every
    /// `available > k`: then a document can be placed before its end is known, keeping its last
    /// `k` tokens back. `None` when the decision depends on the whole remaining length.
    fn lookahead(&self) -> Option<usize> {
        None
    }
}

/// Where a part of a document goes (see [`Packer::push_part_from`]).
#[derive(Clone, Copy, Debug)]
pub struct DocPart {
    /// Ordinal of the document.
    pub ordinal: u64,
    /// Token offset of the part's first id inside its document.
    pub base: u64,
    /// `None` when the part ends the document; otherwise how many of its last tokens wait for
    /// the ids that follow.
    pub keep: Option<usize>,
}

/// Fills windows from a stream of documents.
pub struct Packer<S> {
    seq_len: usize,
    shaper: S,
    current: Option<WindowPlan>,
    next_index: u64,
    /// Token buffers of finished plans, reused for new windows.
    spare: Vec<Vec<u32>>,
}

impl<S: Shaper> Packer<S> {
    pub fn new(seq_len: usize, shaper: S) -> Self {
        Packer {
            seq_len,
            shaper,
            current: None,
            next_index: 0,
            spare: Vec::new(),
        }
    }

    /// Takes back a plan that has been augmented, to reuse its buffer for a later window.
    pub fn recycle(&mut self, plan: WindowPlan) {
        if self.spare.len() < 64 {
            self.spare.push(plan.tokens);
        }
    }

    /// Adds document number `ordinal` given by its ids (EOD last); every window it completes is
    /// appended to `out`.
    pub fn push_ids(
        &mut self,
        ordinal: u64,
        tokens: &[u32],
        out: &mut Vec<WindowPlan>,
    ) -> Result<()> {
        self.push_ids_from(ordinal, tokens, 0, out, usize::MAX)?;
        Ok(())
    }

    /// [`Packer::push_ids`] in steps, so that a long document's windows need not all be held at
    /// once: places the document's tokens from `offset` on, stopping once `out` holds `max_out`
    /// windows, and returns the offset reached (`tokens.len()` when the document is placed).
    /// Called again from that offset (with the same `tokens`), it goes on exactly as one call
    /// would have: the pieces depend only on the tokens and the window being filled.
    pub fn push_ids_from(
        &mut self,
        ordinal: u64,
        tokens: &[u32],
        offset: usize,
        out: &mut Vec<WindowPlan>,
        max_out: usize,
    ) -> Result<usize> {
        let part = DocPart {
            ordinal,
            base: 0,
            keep: None,
        };
        self.push_part_from(part, tokens, offset, out, max_out)
    }

    /// The shaper's [`Shaper::lookahead`].
    pub fn lookahead(&self) -> Option<usize> {
        self.shaper.lookahead()
    }

    /// [`Packer::push_ids_from`] for a part of a document: `tokens` are its ids from token
    /// `part.base` of the document on. With `part.keep == Some(k)` more ids follow: pieces are
    /// placed only while more than `k` tokens remain (the shaper decides the same for any
    /// larger remainder, [`Shaper::lookahead`]), and the rest waits for the next part. Placing a
    /// document part by part gives exactly the windows of placing it whole.
    pub fn push_part_from(
        &mut self,
        part: DocPart,
        tokens: &[u32],
        mut offset: usize,
        out: &mut Vec<WindowPlan>,
        max_out: usize,
    ) -> Result<usize> {
        let len = tokens.len();
        let keep = part.keep.unwrap_or(0);
        while offset + keep < len && out.len() < max_out {
            if self.current.is_none() {
                self.shaper.begin_window(self.next_index);
                let mut tokens = self.spare.pop().unwrap_or_default();
                tokens.clear();
                tokens.reserve(self.seq_len);
                self.current = Some(WindowPlan {
                    index: self.next_index,
                    tokens,
                    pieces: Vec::new(),
                    used: 0,
                });
                self.next_index += 1;
            }
            let window = self.current.as_mut().expect("set above");
            let space = self.seq_len - window.used;
            let available = len - offset;
            let (take, shape) = self.shaper.shape(available, space)?;
            let fits = take == available && take + shape.overhead <= space;
            let fills = take >= 1 && take < available && take + shape.overhead == space;
            if !(fits || fills) || (fits && part.keep.is_some()) {
                bail!(
                    "internal error: shaper took {take} of {available} tokens with overhead {} into {space} free",
                    shape.overhead
                );
            }
            window.pieces.push(Piece {
                doc: part.ordinal,
                doc_offset: part.base + offset as u64,
                start: window.tokens.len(),
                len: take,
                ends_doc: take == available && part.keep.is_none(),
                shape,
            });
            window
                .tokens
                .extend_from_slice(&tokens[offset..offset + take]);
            window.used += take + window.pieces.last().map_or(0, |p| p.shape.overhead);
            offset += take;
            if window.used == self.seq_len {
                out.extend(self.current.take());
            }
        }
        Ok(offset)
    }

    /// The last, incomplete window (if any tokens are left over).
    pub fn finish(self) -> Option<WindowPlan> {
        self.current.filter(|w| !w.pieces.is_empty())
    }
}
