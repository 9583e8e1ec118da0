//! A document streamed from a very long line (see `input/long_stream.rs`) through the tokenize
//! and pack stages in bounded pieces.
//!
//! The tokenize stage sends the ids that are certain as they are encoded
//! ([`crate::tokenize::long::LongDoc`]), each piece as a [`DocBatch`] with no record, and then
//! the document's last ids with its [`DocRecord`] (whose `tokens` counts the whole document).
//! The pack stage gathers the pieces in an [`OpenDoc`] and places all but the shaper's
//! look-ahead ([`crate::pack::Shaper::lookahead`]) as they come; with fixed chunking (no
//! look-ahead) it places the document once its end, and so its length, is known.

use crate::input::long_stream::{piece_bytes, LongPiece, LongText};
use crate::input::TextDoc;
use crate::record::{DocBatch, DocRecord};
use crate::tokenize::Encoder;
use anyhow::{bail, Result};
use std::sync::mpsc::SyncSender;

/// Encodes the streamed document `doc` whose text comes from `text`, sending its ids on.
/// Returns its token count, or `None` if the reader or the next stage stopped (their error is
/// the one reported).
pub(super) fn tokenize(
    encoder: &Encoder,
    pool: &rayon::ThreadPool,
    doc: &TextDoc,
    text: &LongText,
    out: &SyncSender<DocBatch>,
) -> Result<Option<u64>> {
    let Some(mut long) = encoder.long_doc().map(|d| d.encode_at(2 * piece_bytes())) else {
        bail!("internal error: a streamed document for an encoder that cannot stream");
    };
    let mut tokens = 0u64;
    loop {
        match text.next() {
            Some(LongPiece::Text(piece)) => {
                let ids = pool.install(|| long.push(&piece));
                drop(piece);
                tokens += ids.len() as u64;
                if !ids.is_empty() && out.send(piece_batch(ids)).is_err() {
                    return Ok(None);
                }
            }
            Some(LongPiece::End) => break,
            None => return Ok(None),
        }
    }
    let ids = pool.install(|| long.finish());
    tokens += ids.len() as u64;
    let record = DocRecord {
        source: doc.source,
        line: doc.line,
        tokens,
    };
    let end = DocBatch {
        ids,
        docs: vec![record],
        ..DocBatch::default()
    };
    Ok(out.send(end).is_ok().then_some(tokens))
}

/// A piece of a streamed document: ids and no record.
fn piece_batch(ids: Vec<u32>) -> DocBatch {
    DocBatch {
        ids,
        ..DocBatch::default()
    }
}

/// The ids of a streamed document not placed yet.
#[derive(Default)]
pub(super) struct OpenDoc {
    pub ids: Vec<u32>,
    /// Offset in the document of `ids[0]`.
    pub base: u64,
    /// Ids received so far.
    received: u64,
}

impl OpenDoc {
    /// Whether `batch` is (or ends) a streamed document: a piece has no record, and the batch
    /// after pieces holds the document's end.
    pub fn takes(&self, batch: &DocBatch) -> bool {
        batch.docs.is_empty() || self.received > 0
    }

    /// Adds `batch`'s ids; true when it ends the document.
    pub fn add(&mut self, batch: &DocBatch) -> Result<bool> {
        self.ids.extend_from_slice(&batch.ids);
        self.received += batch.ids.len() as u64;
        match batch.docs.as_slice() {
            [] => Ok(false),
            [d] if d.tokens == self.received => Ok(true),
            _ => bail!("internal error: a streamed document's end does not match its pieces"),
        }
    }

    /// The first `placed` ids are placed; `ended`: the document is.
    pub fn placed(&mut self, placed: usize, ended: bool) {
        if ended {
            *self = OpenDoc::default();
        } else {
            self.ids.drain(..placed);
            self.base += placed as u64;
        }
    }
}
