//! The pack stage's state between batches: the packer, what it counted, and the windows not yet
//! handed on (augmented and sent to the writer by the caller's `hand_on`).

use super::long::OpenDoc;
use super::tally;
use crate::augment::WindowShaper;
use crate::output::manifest::Counts;
use crate::pack::{DocPart, Packer, WindowPlan};
use crate::record::{DocBatch, DocRecord};
use anyhow::Result;

/// Augments completed windows and sends them on.
pub(super) type HandOn<'h> = &'h dyn Fn(&[WindowPlan]) -> Result<()>;

pub(super) struct Packing<'a> {
    pub packer: Packer<WindowShaper<'a>>,
    pub counts: Counts,
    /// Pieces by chunk count (see [`tally`]).
    pub by_chunks: Vec<u64>,
    plans: Vec<WindowPlan>,
    /// Windows are handed on every `group` windows (and at the end of each batch), so memory
    /// does not grow with a document's length.
    group: usize,
    /// A document streamed in pieces (see `long.rs`).
    open: OpenDoc,
}

impl<'a> Packing<'a> {
    pub fn new(packer: Packer<WindowShaper<'a>>, group: usize) -> Self {
        Packing {
            packer,
            counts: Counts::default(),
            by_chunks: Vec::new(),
            plans: Vec::new(),
            group,
            open: OpenDoc::default(),
        }
    }

    /// Packs one batch and hands its windows on; returns its ids (for reuse, when they are a
    /// whole batch's) and its records.
    pub fn batch(
        &mut self,
        batch: DocBatch,
        hand_on: HandOn,
    ) -> Result<(Option<Vec<u32>>, Vec<DocRecord>)> {
        self.counts.input_tokens += batch.ids.len() as u64;
        let ids = if self.open.takes(&batch) {
            let ended = self.open.add(&batch)?;
            let keep = if ended { None } else { self.packer.lookahead() };
            if ended || keep.is_some() {
                let part = DocPart {
                    ordinal: self.counts.documents,
                    base: self.open.base,
                    keep,
                };
                let ids = std::mem::take(&mut self.open.ids);
                let placed = self.place(part, &ids, hand_on);
                self.open.ids = ids;
                self.open.placed(placed?, ended);
            }
            self.counts.documents += ended as u64;
            None
        } else {
            for (_, ids) in batch.iter() {
                let part = DocPart {
                    ordinal: self.counts.documents,
                    base: 0,
                    keep: None,
                };
                self.place(part, ids, hand_on)?;
                self.counts.documents += 1;
            }
            Some(batch.ids)
        };
        self.flush(hand_on)?;
        Ok((ids, batch.docs))
    }

    /// Places a document's ids (or a part's), handing on every `group` windows.
    fn place(&mut self, part: DocPart, ids: &[u32], hand_on: HandOn) -> Result<usize> {
        let mut offset = 0;
        loop {
            offset = self
                .packer
                .push_part_from(part, ids, offset, &mut self.plans, self.group)?;
            if self.plans.len() < self.group {
                return Ok(offset);
            }
            self.flush(hand_on)?;
        }
    }

    fn flush(&mut self, hand_on: HandOn) -> Result<()> {
        tally(&self.plans, &mut self.counts, &mut self.by_chunks);
        hand_on(&self.plans)?;
        for plan in self.plans.drain(..) {
            self.packer.recycle(plan);
        }
        Ok(())
    }
}
