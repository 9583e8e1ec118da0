//! A long text fed to the fast encoder in pieces, as it is read: where the text read so far may
//! be cut whatever follows, so that its ids can be handed on before the rest exists.

use super::pretok::PreTokenizer;
use super::FastEncoder;

impl FastEncoder {
    /// Whether [`FastEncoder::stream_cut`] can find cuts: the cases [`FastEncoder::encode_in_parts`]
    /// cuts (byte-level BPE, no normalized added token, a pre-tokenizer with a proof of where it
    /// restarts). SentencePiece-style models and the rest are encoded whole.
    pub fn streams(&self) -> bool {
        self.spm.is_none() && self.normalized_added.is_none() && self.pre.cuttable()
    }

    /// The last position `p > 0` in `text`, the beginning of a longer text, at which that text
    /// can be cut whatever follows — its ids are those of `text[..p]` followed by those of the
    /// rest — or 0 if there is none. `p` is a [`PreTokenizer::safe_cut`] (printable ASCII, `\n`,
    /// an ASCII letter: the pattern restarts there and no normalization reaches across), and no
    /// added-token match reaches across it: `p` is at least the longest added token before the
    /// end, so every match starting before `p` is decided by `text` alone, and none of them
    /// covers `p`.
    pub fn stream_cut(&self, text: &str) -> usize {
        let b = text.as_bytes();
        let added = self.raw_added.as_ref().filter(|a| a.any_kept);
        let reach = added.map_or(0, |a| a.automaton.max_pattern_len());
        let limit = b.len().saturating_sub(reach);
        // Every match, kept or left as text: the split's iterator resumes after either.
        let matches: Vec<(usize, usize)> = match added {
            Some(a) => a
                .automaton
                .find_iter(b)
                .map(|m| (m.start(), m.end()))
                .take_while(|&(start, _)| start < limit)
                .collect(),
            None => Vec::new(),
        };
        let mut end = limit;
        while let Some(q) = memchr::memrchr(b'\n', &b[..end]) {
            let p = q + 1;
            if PreTokenizer::safe_cut(b, p) && !covered(&matches, p) {
                return p;
            }
            end = q;
        }
        0
    }
}

/// Whether one of `matches` (sorted, not overlapping) starts before `p` and ends after it.
fn covered(matches: &[(usize, usize)], p: usize) -> bool {
    let i = matches.partition_point(|&(start, _)| start < p);
    i > 0 && matches[i - 1].1 > p
}
