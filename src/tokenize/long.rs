//! One long document encoded as its text is read: the text goes in piece by piece, and the ids of
//! what can already be cut off (see [`FastEncoder::stream_cut`]) come out, so neither the whole
//! text nor all its ids are held at once. The ids are exactly [`Encoder::encode_doc`]'s.

use super::fast::FastEncoder;
use super::{Backing, Encoder};

/// Text is cut off and encoded once this much waits (bytes).
const ENCODE_AT: usize = 8 << 20;

/// A document being encoded piece by piece (made by [`Encoder::long_doc`]).
pub struct LongDoc<'e> {
    fast: &'e FastEncoder,
    encoder: &'e Encoder,
    /// Text not encoded yet (from the last cut on).
    text: String,
    /// `text` is not searched for a cut again before it is this long (doubles when none is
    /// found, so a text without cuts costs linear time, and is then held whole).
    next_try: usize,
    /// Text is cut off once this much waits.
    encode_at: usize,
    last: Option<u32>,
}

impl Encoder {
    /// A document to encode piece by piece, when the backend can cut text as it comes: the fast
    /// encoder's byte-level BPE with a pre-tokenizer it has a proof for. `None` otherwise (the
    /// `tokenizers` crate and SentencePiece-style models encode a document whole).
    pub fn long_doc(&self) -> Option<LongDoc<'_>> {
        match &self.backing {
            Backing::Fast { fast, .. } if fast.streams() => Some(LongDoc {
                fast,
                encoder: self,
                text: String::new(),
                next_try: ENCODE_AT,
                encode_at: ENCODE_AT,
                last: None,
            }),
            _ => None,
        }
    }
}

impl LongDoc<'_> {
    /// Cuts text off once `bytes` wait (at most the default; smaller for tests).
    pub fn encode_at(mut self, bytes: usize) -> Self {
        self.encode_at = bytes.clamp(1, ENCODE_AT);
        self.next_try = self.encode_at;
        self
    }

    /// Adds the next piece of text; returns the ids that are certain (possibly none).
    pub fn push(&mut self, piece: &str) -> Vec<u32> {
        self.text.push_str(piece);
        if self.text.len() < self.next_try {
            return Vec::new();
        }
        let cut = self.fast.stream_cut(&self.text);
        if cut == 0 {
            self.next_try = 2 * self.text.len();
            return Vec::new();
        }
        let ids = self.fast.encode(&self.text[..cut]);
        self.text.drain(..cut);
        self.next_try = self.encode_at;
        self.last = ids.last().copied().or(self.last);
        ids
    }

    /// The ids of the rest of the text, and the EOD as [`Encoder::encode_doc`] appends it.
    pub fn finish(self) -> Vec<u32> {
        let mut ids = self.fast.encode(&self.text);
        let last = ids.last().copied().or(self.last);
        let e = self.encoder;
        if !(e.add_special_tokens && last == Some(e.eod.id)) {
            ids.push(e.eod.id);
        }
        ids
    }
}
