//! Hand-written matchers for the `Split` patterns of the supported tokenizer families.
//!
//! The `tokenizers` crate runs these patterns with Oniguruma: at each position the alternatives
//! are tried left to right with backtracking, and the first that matches wins. Each matcher
//! below follows one exact pattern string alternative by alternative (the comments quote them),
//! over the same Unicode classes (see [`super::classes`]). Every supported pattern matches at
//! every position (each character is a letter, a number, white space or "other", and some
//! alternative starts with each), so the pre-tokens tile the text with no gaps; the matchers rely
//! on that, and [`PreTokenizer::for_each`] asserts it in debug builds.
//!
//! [`PreTokenizer::safe_cut`] finds places where a long text may be cut and both halves
//! pre-tokenized alone with the same result: the proof is in its comment, per pattern.

use super::classes::{Classes, L, N, NL, S};

/// Qwen2 / Qwen2.5 / Qwen3: cl100k with single digits.
pub const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3 and OpenAI cl100k: numbers in groups of up to three digits.
pub const CL100K: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2 (and `ByteLevel` with `use_regex: true`, which uses this pattern internally).
pub const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Which pattern a [`PreTokenizer`] implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Qwen2,
    Cl100k,
    Gpt2,
}

impl Pattern {
    /// The pattern whose source is exactly `regex`, if it is one this module implements.
    pub fn recognise(regex: &str) -> Option<Pattern> {
        match regex {
            QWEN2 => Some(Pattern::Qwen2),
            CL100K => Some(Pattern::Cl100k),
            GPT2 => Some(Pattern::Gpt2),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Qwen2 => "qwen2",
            Pattern::Cl100k => "cl100k",
            Pattern::Gpt2 => "gpt2",
        }
    }
}

/// The class flags of `c` (letter 1, number 2, white space 4, `\r`/`\n` 8), for tests.
#[doc(hidden)]
pub fn class_flags(c: char) -> u8 {
    Classes::default().of(c as u32)
}

/// Decodes the character starting at `b[i]`; `b` is valid UTF-8 (it comes from a `&str`).
#[inline(always)]
fn decode(b: &[u8], i: usize) -> (u32, usize) {
    let b0 = b[i] as u32;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xe0 {
        (((b0 & 0x1f) << 6) | (b[i + 1] as u32 & 0x3f), 2)
    } else if b0 < 0xf0 {
        (
            ((b0 & 0x0f) << 12) | ((b[i + 1] as u32 & 0x3f) << 6) | (b[i + 2] as u32 & 0x3f),
            3,
        )
    } else {
        (
            ((b0 & 0x07) << 18)
                | ((b[i + 1] as u32 & 0x3f) << 12)
                | ((b[i + 2] as u32 & 0x3f) << 6)
                | (b[i + 3] as u32 & 0x3f),
            4,
        )
    }
}

/// Splits text into pre-tokens with one of the supported patterns.
#[derive(Clone, Copy)]
pub struct PreTokenizer {
    pattern: Pattern,
    classes: Classes,
}

impl PreTokenizer {
    pub fn new(pattern: Pattern) -> Self {
        PreTokenizer {
            pattern,
            classes: Classes::default(),
        }
    }

    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Calls `f` with each pre-token of `text`, in order; together they are exactly `text`.
    #[inline]
    pub fn for_each(&self, text: &str, mut f: impl FnMut(&[u8])) {
        let b = text.as_bytes();
        self.for_each_range(text, |start, end| f(&b[start..end]));
    }

    /// Calls `f` with the byte range of each pre-token of `text`, in order.
    #[inline]
    pub fn for_each_range(&self, text: &str, mut f: impl FnMut(usize, usize)) {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let e = match self.pattern {
                Pattern::Qwen2 => self.next_cl100k(b, i, 1),
                Pattern::Cl100k => self.next_cl100k(b, i, 3),
                Pattern::Gpt2 => self.next_gpt2(b, i),
            };
            debug_assert!(e > i && e <= b.len());
            f(i, e);
            i = e;
        }
    }

    /// The class flags of the character at `b[i]`, and its length in bytes.
    #[inline(always)]
    fn class_at(&self, b: &[u8], i: usize) -> (u32, u8, usize) {
        let (c, l) = decode(b, i);
        (c, self.classes.of(c), l)
    }

    /// The end of the run of characters starting at `i` whose flags satisfy `keep`.
    #[inline(always)]
    fn run(&self, b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
        while i < b.len() {
            let (_, k, l) = self.class_at(b, i);
            if !keep(k) {
                break;
            }
            i += l;
        }
        i
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)` after the apostrophe at `i - 1`: the end of the match.
    /// Oniguruma's case folding also lets U+017F LATIN SMALL LETTER LONG S match `s`; no other
    /// character folds to one of these letters.
    fn contraction_ci(b: &[u8], i: usize) -> Option<usize> {
        let lower = |j: usize| b.get(j).map(|c| c.to_ascii_lowercase());
        match lower(i)? {
            b's' | b't' | b'm' | b'd' => Some(i + 1),
            b'r' | b'v' if lower(i + 1) == Some(b'e') => Some(i + 2),
            b'l' if lower(i + 1) == Some(b'l') => Some(i + 2),
            0xc5 if b.get(i + 1) == Some(&0xbf) => Some(i + 2), // ſ
            _ => None,
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` (case-sensitive) after the apostrophe at `i - 1`.
    fn contraction_cs(b: &[u8], i: usize) -> Option<usize> {
        match b.get(i)? {
            b's' | b't' | b'm' | b'd' => Some(i + 1),
            b'r' | b'v' if b.get(i + 1) == Some(&b'e') => Some(i + 2),
            b'l' if b.get(i + 1) == Some(&b'l') => Some(i + 2),
            _ => None,
        }
    }

    /// The Qwen2 / cl100k pattern at `i`; `max_digits` is 1 (`\p{N}`) or 3 (`\p{N}{1,3}`).
    #[inline(always)]
    fn next_cl100k(&self, b: &[u8], i: usize, max_digits: usize) -> usize {
        let n = b.len();
        let (c0, k0, l0) = self.class_at(b, i);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c0 == '\'' as u32 {
            if let Some(e) = Self::contraction_ci(b, i + 1) {
                return e;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional character cannot be a letter, so a letter at i
        // starts the run; otherwise a non-newline, non-number character followed by a letter.
        if k0 & L != 0 {
            return self.run(b, i + l0, |k| k & L != 0);
        }
        if k0 & (N | NL) == 0 && i + l0 < n {
            let (_, k1, l1) = self.class_at(b, i + l0);
            if k1 & L != 0 {
                return self.run(b, i + l0 + l1, |k| k & L != 0);
            }
        }
        // \p{N} or \p{N}{1,3}
        if k0 & N != 0 {
            let mut e = i + l0;
            for _ in 1..max_digits {
                if e >= n {
                    break;
                }
                let (_, k, l) = self.class_at(b, e);
                if k & N == 0 {
                    break;
                }
                e += l;
            }
            return e;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let other = |k: u8| k & (L | N | S) == 0;
        let mut j = i;
        if c0 == ' ' as u32 && i + 1 < n && other(self.class_at(b, i + 1).1) {
            j = i + 1;
        }
        if j > i || other(k0) {
            let mut e = self.run(b, j, other);
            while e < n && (b[e] == b'\r' || b[e] == b'\n') {
                e += 1;
            }
            return e;
        }
        // Here the character at i is white space.
        self.whitespace(b, i, true)
    }

    /// The GPT-2 pattern at `i`.
    #[inline(always)]
    fn next_gpt2(&self, b: &[u8], i: usize) -> usize {
        let n = b.len();
        let (c0, k0, _) = self.class_at(b, i);
        // 's|'t|'re|'ve|'m|'ll|'d
        if c0 == '\'' as u32 {
            if let Some(e) = Self::contraction_cs(b, i + 1) {
                return e;
            }
        }
        //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class.
        let (j, k) = if c0 == ' ' as u32 && i + 1 < n {
            match self.class_at(b, i + 1).1 {
                k if k & S == 0 => (i + 1, k),
                _ => (i, k0),
            }
        } else {
            (i, k0)
        };
        if k & L != 0 {
            return self.run(b, j, |k| k & L != 0);
        }
        if k & N != 0 {
            return self.run(b, j, |k| k & N != 0);
        }
        if k & S == 0 {
            return self.run(b, j, |k| k & (L | N | S) == 0);
        }
        self.whitespace(b, i, false)
    }

    /// White space at `i`: `\s*[\r\n]+` (only if `newline_rule`), then `\s+(?!\S)`, then `\s+`.
    #[inline(always)]
    fn whitespace(&self, b: &[u8], i: usize, newline_rule: bool) -> usize {
        let n = b.len();
        let mut e = i;
        let mut last_start = i;
        let mut last_newline_end = 0;
        let mut count = 0usize;
        while e < n {
            let (c, k, l) = self.class_at(b, e);
            if k & S == 0 {
                break;
            }
            if c == '\r' as u32 || c == '\n' as u32 {
                last_newline_end = e + l;
            }
            last_start = e;
            e += l;
            count += 1;
        }
        // \s*[\r\n]+ : \s* backtracks from the end of the run to the last newline, which
        // [\r\n]+ takes (nothing after it in the run is a newline).
        if newline_rule && last_newline_end > 0 {
            return last_newline_end;
        }
        // \s+(?!\S) : the whole run at the end of the text; otherwise the run less its last
        // character (which is then followed by white space), if that leaves one.
        if e == n {
            return e;
        }
        if count >= 2 {
            return last_start;
        }
        // \s+
        e
    }

    /// Whether `text` may be cut at byte `p` (pre-tokenizing `text[..p]` and `text[p..]` alone
    /// gives the pre-tokens of `text`), checked on a sufficient condition: `text[p-2]` is
    /// printable ASCII (not white space), `text[p-1]` is `\n` and `text[p]` an ASCII letter.
    ///
    /// Proof for Qwen2/cl100k. No alternative can match `\n` followed by a letter (the letter
    /// runs exclude `\n` from their optional first character; the others end before letters), so
    /// `p` is a pre-token boundary of the whole text. Matches before `p` read at most one character
    /// past their end, and only when that end is `p - 1` or `p`: the run of "other" characters
    /// or its `[\r\n]*` tail stops at the letter or at the end of the text alike; the white-space
    /// run is the single `\n` at `p-1`, which `\s*[\r\n]+` takes before any look-ahead is tried.
    /// No alternative looks behind, so matching from `p` is the same as from the start of a text.
    ///
    /// Proof for GPT-2. The same boundary argument holds (the optional first character is a
    /// space). The `\n` at `p - 1` is a one-character white-space run: in the whole text
    /// `\s+(?!\S)` fails (a letter follows) and `\s+` takes it; at the end of `text[..p]`,
    /// `\s+(?!\S)` takes it: the same pre-token.
    ///
    /// NFC cannot interact across `p` either: no canonical composition has an ASCII character as
    /// its second part and ASCII characters are starters, so normalizing each side alone gives
    /// the normalization of the whole (tested on the composition tables).
    #[inline]
    pub fn safe_cut(text: &[u8], p: usize) -> bool {
        p >= 2
            && p < text.len()
            && text[p - 1] == b'\n'
            && text[p].is_ascii_alphabetic()
            && (0x21..0x7f).contains(&text[p - 2])
    }
}

/// Cuts `text` into parts of about `target` bytes at [`PreTokenizer::safe_cut`] positions.
/// Returns the cut positions (exclusive ends of each part, the last being `text.len()`).
pub fn cut_points(text: &str, target: usize) -> Vec<usize> {
    let b = text.as_bytes();
    let mut cuts = Vec::new();
    let mut start = 0;
    while b.len() - start > target + target / 2 {
        let mut p = start + target;
        let mut found = None;
        for q in memchr::memchr_iter(b'\n', &b[p - 1..]) {
            p = start + target - 1 + q + 1;
            if PreTokenizer::safe_cut(b, p) {
                found = Some(p);
                break;
            }
            if p - start > 4 * target {
                break;
            }
        }
        match found {
            Some(p) => {
                cuts.push(p);
                start = p;
            }
            None => break,
        }
    }
    cuts.push(b.len());
    cuts
}
