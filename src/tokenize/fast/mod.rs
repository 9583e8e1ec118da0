//! The fast encoder: the same ids as the `tokenizers` crate for the byte-level BPE families
//! people pretrain with, computed at memory speed.
//!
//! The crate is the reference for *what* the ids are; this module computes them with the same
//! pipeline, specialised: added tokens are split out with the same Aho-Corasick automaton
//! (leftmost-longest; with `encode_special_tokens`, special tokens are matched and then left as
//! text, exactly as the crate does), each remaining piece is NFC- or NFKC-normalized only when a
//! quick check says it may change, pre-tokenized by matchers written for its exact `Split`
//! patterns (ASCII text of the commonest ones 64 bytes at a time: [`window`]), or else compiled
//! from a pattern of a small proven grammar ([`compiled`]), one or several in sequence
//! ([`pretok`]), and each pre-token is merged by rank ([`bpe`]) behind a per-thread cache. No
//! offsets, no per-token strings. Long documents are cut where the pattern provably restarts and
//! the parts are encoded in parallel on the caller's rayon pool.
//!
//! SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma) shares the added-token
//! splitting and is otherwise encoded by [`spm`], which cuts the text where no merge can reach
//! across (see there for why that is exact).
//!
//! [`FastEncoder::new`] accepts a file only if it can show the file has one of the shapes
//! implemented here ([`load`]); otherwise it returns the reason and the caller uses the crate.
//! It reads everything from the file (the token table through [`crate::tokenize::vocab`]), so a
//! run on the fast path never loads the crate's tokenizer.

mod bpe;
pub mod cache;
mod classes;
mod compiled;
mod load;
pub mod pretok;
mod shared;
mod spm;
mod stream;
#[rustfmt::skip]
mod tables;
mod window;

use crate::tokenize::vocab::Vocab;
use aho_corasick::AhoCorasick;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::OnceLock;
use unicode_normalization_alignments::char::canonical_combining_class;
use unicode_normalization_alignments::{
    is_nfc_quick, is_nfkc_quick, IsNormalized, UnicodeNormalization,
};

use cache::{Kind, Slot};
pub use load::Unsupported;
use load::{Merge, Merges};
use pretok::PreTokenizer;

/// Text longer than this (bytes) is cut into parts encoded in parallel.
const PARALLEL_ABOVE: usize = 256 << 10;
/// The size of those parts.
const PART: usize = 64 << 10;

/// Encodes `parts` in parallel on the current rayon pool, a group at a time, appending each
/// group's ids in order to one buffer: a long text's ids are held once, not once per part and
/// again joined (for a document of hundreds of MB that copy was gigabytes).
pub(super) fn encode_parts<T: Sync>(
    parts: &[T],
    encode: impl Fn(&T, &mut Vec<u32>) + Sync,
) -> Vec<u32> {
    let per_group = 16 * rayon::current_num_threads().max(1);
    let mut out = Vec::new();
    for group in parts.chunks(per_group) {
        let encoded: Vec<Vec<u32>> = group
            .par_iter()
            .map(|p| {
                let mut ids = Vec::new();
                encode(p, &mut ids);
                ids
            })
            .collect();
        out.reserve(encoded.iter().map(Vec::len).sum());
        for ids in encoded {
            out.extend_from_slice(&ids);
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Normalizer {
    None,
    Nfc,
    Nfkc,
}

impl Normalizer {
    /// `s` normalized, as the crate's normalizer does it (the same `unicode-normalization-
    /// alignments` functions); borrowed when a quick check says nothing changes.
    fn apply(self, s: &str) -> Cow<'_, str> {
        match self {
            Normalizer::Nfc if !is_nfc(s) => Cow::Owned(s.nfc().map(|(c, _)| c).collect()),
            Normalizer::Nfkc if !is_nfkc(s) => Cow::Owned(s.nfkc().map(|(c, _)| c).collect()),
            _ => Cow::Borrowed(s),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Normalizer::None => "no",
            Normalizer::Nfc => "NFC",
            Normalizer::Nfkc => "NFKC",
        }
    }
}

/// An added-token matcher: the automaton and, per pattern, its id and whether a match is left as
/// text (a special token under `encode_special_tokens`).
struct AddedTokens {
    automaton: AhoCorasick,
    ids: Vec<(u32, bool)>,
    /// False when every match would be left as text: then nothing needs scanning.
    any_kept: bool,
}

impl AddedTokens {
    /// Calls `f` on the pieces between kept matches and on the kept matches, in order.
    fn split<'t>(this: Option<&Self>, text: &'t str, mut f: impl FnMut(Part<'t>)) {
        let Some(this) = this.filter(|a| a.any_kept) else {
            f(Part::Text(text));
            return;
        };
        let mut start = 0;
        for m in this.automaton.find_iter(text) {
            let (id, skip) = this.ids[m.pattern().as_usize()];
            if skip {
                continue;
            }
            if start < m.start() {
                f(Part::Text(&text[start..m.start()]));
            }
            f(Part::Id(id));
            start = m.end();
        }
        if start < text.len() {
            f(Part::Text(&text[start..]));
        }
    }
}

/// A fast, exact encoder for one supported `tokenizer.json`.
pub struct FastEncoder {
    pre: PreTokenizer,
    bpe: bpe::Bpe,
    normalizer: Normalizer,
    raw_added: Option<AddedTokens>,
    normalized_added: Option<AddedTokens>,
    post_processor_adds_tokens: bool,
    description: String,
    /// A SentencePiece-style BPE model ([`spm`]): when set, it encodes the text (with
    /// `raw_added` and `normalized_added`), and `pre`, `bpe` and `normalizer` are unused.
    spm: Option<Box<spm::Spm>>,
}

/// A fast encoder built from a file, with what the cache keeps of it.
pub struct Built {
    pub fast: FastEncoder,
    pub vocab: Vocab,
    kind: Kind,
    merges: Vec<Merge>,
}

impl Built {
    /// Writes the cache entry `slot` for the file `json` (SHA-256 `sha256`); the number of
    /// entries of older formats removed beside it, or why not.
    pub fn write_cache(&self, slot: &Slot, json: &str, sha256: &str) -> Result<usize, String> {
        self.with_tables(|t| slot.write(json, sha256, t))
    }

    /// The bytes [`Self::write_cache`] writes.
    pub fn cache_entry(&self, json: &str, sha256: &str) -> Result<Vec<u8>, String> {
        self.with_tables(|t| cache::entry(json, sha256, t))
    }

    /// `f` of what the cache keeps: the pair table is the encoder's own (the SentencePiece
    /// model's when there is one), written out, not built again.
    fn with_tables<R>(&self, f: impl FnOnce(&cache::Tables) -> R) -> R {
        let mut pairs = Vec::new();
        match &self.fast.spm {
            Some(spm) => spm.write_pairs(&mut pairs),
            None => self.fast.bpe.write_pairs(&mut pairs),
        }
        f(&cache::Tables {
            kind: self.kind,
            vocab: &self.vocab,
            merges: &self.merges,
            pairs: &pairs,
        })
    }
}

/// A unit of work of one document: a token id, or text to normalize and encode.
enum Part<'t> {
    Id(u32),
    Text(&'t str),
}

impl FastEncoder {
    /// The fast encoder and the token table for the file `json`; or why the fast path cannot
    /// prove it gives the `tokenizers` crate's ids for it. `encode_special_tokens` is the crate
    /// setting: special added tokens spelled in text stay text.
    pub fn new(
        json: &str,
        encode_special_tokens: bool,
    ) -> Result<(FastEncoder, Vocab), Unsupported> {
        Self::build(json, encode_special_tokens).map(|b| (b.fast, b.vocab))
    }

    /// [`Self::new`], keeping what the cache stores.
    pub fn build(json: &str, encode_special_tokens: bool) -> Result<Built, Unsupported> {
        let built = |kind| {
            move |(fast, vocab, merges)| Built {
                fast,
                vocab,
                kind,
                merges,
            }
        };
        // A byte-fallback BPE is SentencePiece-style, unless its pre-tokenizer is byte-level
        // (then byte fallback never happens): if spm refuses it, the byte-level path may take it.
        let spm_refused = match spm::may_be(json).then(|| spm::build(json, encode_special_tokens)) {
            Some(Some(Ok(b))) => return Ok(built(Kind::SentencePiece)(b)),
            Some(Some(Err(why))) => Some(why),
            _ => None,
        };
        load::parse(json)
            .and_then(|parsed| load::build(parsed, encode_special_tokens))
            .map(built(Kind::ByteLevel))
            .map_err(|why| spm_refused.unwrap_or(why))
    }

    /// The encoder and token table from a cache entry: its rest of the file is read and checked
    /// as a file is, by the builder that made the entry.
    pub fn from_cache(
        entry: cache::Entry,
        encode_special_tokens: bool,
    ) -> Result<(FastEncoder, Vocab), Unsupported> {
        let cache::Entry {
            kind,
            rest,
            vocab,
            merges,
            pairs,
            ..
        } = entry;
        let (fast, vocab, _) = match kind {
            Kind::ByteLevel => load::parse_cached(&rest, vocab, merges, pairs)
                .and_then(|parsed| load::build(parsed, encode_special_tokens)),
            Kind::SentencePiece => load::file_cached(&rest, vocab).and_then(|file| {
                let merges = Merges::Ids(merges, pairs);
                spm::build_from(file, merges, encode_special_tokens)
            }),
        }?;
        Ok((fast, vocab))
    }

    /// What was recognised, for the summary.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the file's post-processor adds tokens (BOS, CLS, …) when asked to; the fast path
    /// does not implement post-processors.
    pub fn post_processor_adds_tokens(&self) -> bool {
        self.post_processor_adds_tokens
    }

    /// Appends the ids of `text` to `out` (no special tokens added), on this thread.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        if let Some(spm) = &self.spm {
            let normalized_added = self.normalized_added.as_ref();
            return spm.encode_into(self.raw_added.as_ref(), normalized_added, text, out);
        }
        AddedTokens::split(self.raw_added.as_ref(), text, |part| match part {
            Part::Text(piece) => self.encode_piece(piece, out),
            Part::Id(id) => out.push(id),
        });
    }

    /// The ids of `text`; long texts are cut at safe places and encoded in parallel on the
    /// current rayon pool.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        if text.len() <= PARALLEL_ABOVE {
            let mut out = Vec::with_capacity(text.len() / 3 + 1);
            self.encode_into(text, &mut out);
            return out;
        }
        self.encode_in_parts(text, PART)
    }

    /// The ids of `text`, cut into parts of about `part_bytes` encoded in parallel (public for
    /// the differential tests, which cut small texts into tiny parts).
    #[doc(hidden)]
    pub fn encode_in_parts(&self, text: &str, part_bytes: usize) -> Vec<u32> {
        if self.normalized_added.is_some() || !self.pre.cuttable() {
            // A normalized added token could span a cut, and a compiled pattern has no proof of
            // where it restarts: no proof, so no cutting.
            let mut out = Vec::with_capacity(text.len() / 3 + 1);
            self.encode_into(text, &mut out);
            return out;
        }
        if let Some(spm) = &self.spm {
            return spm.encode_in_parts(self.raw_added.as_ref(), text, part_bytes);
        }
        let mut parts = Vec::new();
        AddedTokens::split(self.raw_added.as_ref(), text, |part| match part {
            Part::Text(piece) => {
                let mut start = 0;
                for end in pretok::cut_points(piece, part_bytes) {
                    parts.push(Part::Text(&piece[start..end]));
                    start = end;
                }
            }
            id => parts.push(id),
        });
        encode_parts(&parts, |p, out| match p {
            Part::Id(id) => out.push(*id),
            Part::Text(t) => self.encode_piece(t, out),
        })
    }

    /// A piece between raw added tokens: normalize, split out normalized added tokens, encode.
    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        let normalized = self.normalizer.apply(piece);
        AddedTokens::split(
            self.normalized_added.as_ref(),
            &normalized,
            |part| match part {
                Part::Text(text) => self.encode_normalized(text, out),
                Part::Id(id) => out.push(id),
            },
        );
    }

    #[inline]
    fn encode_normalized(&self, text: &str, out: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        self.bpe.with_cache(|bpe| {
            self.pre
                .for_each_range(text, EncodeSink::new(bpe, bytes, out))
        });
    }
}

/// Pre-tokens [`EncodeSink`] holds before it encodes them (when they come one at a time).
const AHEAD: usize = pretok::BATCH;

/// The pre-tokenizer's [`pretok::Sink`] that encodes each pre-token into `out`, [`AHEAD`] at a
/// time: first it asks for the cache lines their look-ups will read, then it encodes them in
/// order. A look-up in the shared table reads a line at random in 16 MB, mostly not in the
/// core's cache; one after the other, each waited for its line (half of the pre-tokenizer
/// loop's samples were on that one load), while these requests overlap. Tiling patterns hand
/// over their pre-tokens in batches ([`pretok::Sink::pieces`]); the others one at a time, held
/// here.
struct EncodeSink<'a, 'b> {
    bpe: &'a mut bpe::Encoding<'b>,
    bytes: &'a [u8],
    out: &'a mut Vec<u32>,
    ranges: [(usize, usize); AHEAD],
    held: usize,
}

impl<'a, 'b> EncodeSink<'a, 'b> {
    fn new(bpe: &'a mut bpe::Encoding<'b>, bytes: &'a [u8], out: &'a mut Vec<u32>) -> Self {
        EncodeSink {
            bpe,
            bytes,
            out,
            ranges: [(0, 0); AHEAD],
            held: 0,
        }
    }

    /// Encodes `ranges` after asking for their cache lines.
    #[inline(always)]
    fn encode(
        bpe: &mut bpe::Encoding<'b>,
        bytes: &[u8],
        out: &mut Vec<u32>,
        ranges: &[(usize, usize)],
    ) {
        for &(start, end) in ranges {
            bpe.prefetch(bytes, start, end);
        }
        for &(start, end) in ranges {
            bpe.encode(bytes, start, end, out);
        }
    }

    #[inline(always)]
    fn encode_held(&mut self) {
        Self::encode(self.bpe, self.bytes, self.out, &self.ranges[..self.held]);
        self.held = 0;
    }
}

impl pretok::Sink for EncodeSink<'_, '_> {
    #[inline(always)]
    fn piece(&mut self, start: usize, end: usize) {
        self.ranges[self.held] = (start, end);
        self.held += 1;
        if self.held == AHEAD {
            self.encode_held();
        }
    }

    #[inline(always)]
    fn pieces(&mut self, ranges: &[(usize, usize)]) {
        debug_assert_eq!(
            self.held, 0,
            "a tiling pattern hands over every piece in batches"
        );
        Self::encode(self.bpe, self.bytes, self.out, ranges);
    }

    #[inline(always)]
    fn finish(&mut self) {
        self.encode_held();
    }
}

/// True when `s` is certainly NFC (then normalizing it changes nothing).
fn is_nfc(s: &str) -> bool {
    static TRIVIAL: OnceLock<Box<[u64]>> = OnceLock::new();
    let trivial = TRIVIAL.get_or_init(|| trivial_bmp(|c| is_nfc_quick(std::iter::once(c))));
    runs_pass(s, trivial, |run| {
        is_nfc_quick(run.chars()) == IsNormalized::Yes
    })
}

/// True when `s` is certainly NFKC (ASCII is: no ASCII character has a compatibility mapping).
fn is_nfkc(s: &str) -> bool {
    static TRIVIAL: OnceLock<Box<[u64]>> = OnceLock::new();
    let trivial = TRIVIAL.get_or_init(|| trivial_bmp(|c| is_nfkc_quick(std::iter::once(c))));
    runs_pass(s, trivial, |run| {
        is_nfkc_quick(run.chars()) == IsNormalized::Yes
    })
}

/// A bit per code point below U+10000: set when the quick check treats the character as it
/// treats ASCII, that is when its combining class is 0 and `quick` (the check on the character
/// alone) says `Yes`.
fn trivial_bmp(quick: impl Fn(char) -> IsNormalized) -> Box<[u64]> {
    let mut bits = vec![0u64; 0x10000 / 64].into_boxed_slice();
    for cp in 0..0x10000u32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        if canonical_combining_class(c) == 0 && quick(c) == IsNormalized::Yes {
            bits[cp as usize / 64] |= 1 << (cp % 64);
        }
    }
    bits
}

/// Whether `check` holds for every maximal run of characters of `s` not marked in `trivial`
/// (ASCII is trivial). The quick check is one pass over the characters whose state is the
/// combining class of the previous one and whether a `Maybe` was seen; a trivial character
/// leaves the answer as it is and resets the class to 0, as at the start of a text, so the whole
/// text is `Yes` exactly when each run between trivial characters is `Yes` on its own. Most
/// text (ASCII, most CJK, most letters with precomposed accents) is trivial and is skipped with
/// a table look-up per character, ASCII eight bytes at a time and three-byte characters in a
/// loop of their own.
fn runs_pass(s: &str, trivial: &[u64], check: impl Fn(&str) -> bool) -> bool {
    const HI: u64 = 0x8080_8080_8080_8080;
    let b = s.as_bytes();
    let (mut i, mut run) = (0, None);
    while i < b.len() {
        if run.is_none() {
            while let Some(chunk) = b.get(i..i + 8) {
                if u64::from_le_bytes(chunk.try_into().expect("8 bytes")) & HI != 0 {
                    break;
                }
                i += 8;
            }
            i = pretok::three_byte_run(b, i, |cp| pretok::bit(trivial, cp));
            if i >= b.len() {
                break;
            }
        }
        let (cp, len) = pretok::decode(b, i);
        let is_trivial = cp < 0x80 || (cp < 0x10000 && pretok::bit(trivial, cp));
        match (is_trivial, run) {
            (true, Some(start)) => {
                if !check(&s[start..i]) {
                    return false;
                }
                run = None;
            }
            (false, None) => run = Some(i),
            _ => {}
        }
        i += len;
    }
    run.is_none_or(|start| check(&s[start..]))
}

#[cfg(test)]
mod tests;
