//! Hand-written matchers for the `Split` patterns of the supported tokenizer families.
//!
//! The `tokenizers` crate runs these patterns with Oniguruma: at each position the alternatives
//! are tried left to right with backtracking, and the first that matches wins. Each matcher
//! below follows one exact pattern string alternative by alternative (the comments quote them),
//! over the same Unicode classes (see [`super::classes`]). Most supported patterns match at
//! every position (each character is a letter, a number, white space or "other", and some
//! alternative starts with each), so their pre-tokens tile the text with no gaps ("tiling"
//! patterns, [`Pattern::tiles`]). The steps of DeepSeek's `Sequence` do not tile: where no
//! alternative matches, the crate keeps the characters up to the next match as one piece (a
//! "gap"), and each later `Split` step runs over every piece of the one before, as a text of its
//! own ([`PreTokenizer::for_each_range`]).
//!
//! Patterns without a hand-written matcher are compiled by [`super::compiled`] when they fit its
//! grammar; they are steps like the others (with gaps, never cut).
//!
//! [`PreTokenizer::safe_cut`] finds places where a long text may be cut and both halves
//! pre-tokenized alone with the same result: the proof is in its comment, per pattern.

use super::classes::{Classes, L, LO, M, N, NL, PS, S, UP};
use super::compiled::Compiled;
use super::window;

/// Qwen2 / Qwen2.5 / Qwen3: cl100k with single digits.
pub const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3 and OpenAI cl100k: numbers in groups of up to three digits.
pub const CL100K: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2 (and `ByteLevel` with `use_regex: true`, which uses this pattern internally).
pub const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// OpenAI o200k (GPT-4o, gpt-oss): letters split by case, contractions attached.
pub const O200K: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Mistral's Tekken (Mistral NeMo, Pixtral, Mistral Small 3): o200k without the contractions,
/// with single digits.
pub const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// DeepSeek-V3 step 1: runs of up to three digits.
pub const DIGITS3: &str = r"\p{N}{1,3}";
/// DeepSeek-V3 step 2: runs of CJK ideographs U+4E00–U+9FA5 and kana U+3040–U+30FF, as in the
/// file (the first bound of the kana range is the character U+3040 itself, a JSON `\u3040`).
pub const DEEPSEEK_CJK: &str = "[一-龥\u{3040}-ゟ゠-ヿ]+";
/// The same with the bound written as the regex escape `\u3040`.
pub const DEEPSEEK_CJK_ESCAPED: &str = r"[一-龥\u3040-ゟ゠-ヿ]+";
/// DeepSeek-V3 step 3, as in the file: carriage return and line feed are the characters
/// themselves (JSON `\r`, `\n`), not regex escapes.
pub const DEEPSEEK: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
/// The same with `\r` and `\n` written as regex escapes (inside character classes, where a
/// character and its escape are the same member).
pub const DEEPSEEK_ESCAPED: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;

/// Which pattern a pre-tokenizer step implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Qwen2,
    Cl100k,
    Gpt2,
    O200k,
    Tekken,
    Digits3,
    DeepSeekCjk,
    DeepSeek,
    /// The `Digits` pre-tokenizer with `individual_digits`: each `char::is_numeric` character
    /// alone (a `Split` of that predicate, `Isolated`).
    DigitsEach,
    /// `Digits` without `individual_digits`: runs of `char::is_numeric` characters (`Contiguous`,
    /// which makes one piece of each run of numeric characters and of each run of others).
    DigitsRuns,
    /// A pattern without a hand-written matcher, compiled ([`super::compiled`]): the index of
    /// its matcher in the pre-tokenizer.
    Compiled(u16),
}

impl Pattern {
    /// The pattern whose source is exactly `regex`, if it is one this module implements.
    pub fn recognise(regex: &str) -> Option<Pattern> {
        match regex {
            QWEN2 => Some(Pattern::Qwen2),
            CL100K => Some(Pattern::Cl100k),
            GPT2 => Some(Pattern::Gpt2),
            O200K => Some(Pattern::O200k),
            TEKKEN => Some(Pattern::Tekken),
            DIGITS3 => Some(Pattern::Digits3),
            DEEPSEEK_CJK | DEEPSEEK_CJK_ESCAPED => Some(Pattern::DeepSeekCjk),
            DEEPSEEK | DEEPSEEK_ESCAPED => Some(Pattern::DeepSeek),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Qwen2 => "qwen2",
            Pattern::Cl100k => "cl100k",
            Pattern::Gpt2 => "gpt2",
            Pattern::O200k => "o200k",
            Pattern::Tekken => "tekken",
            Pattern::Digits3 => "digits{1,3}",
            Pattern::DeepSeekCjk => "deepseek-cjk",
            Pattern::DeepSeek => "deepseek",
            Pattern::DigitsEach => "digits (individual)",
            Pattern::DigitsRuns => "digits",
            Pattern::Compiled(_) => "compiled",
        }
    }

    /// Whether the pattern matches at every position of every non-empty text, so that its
    /// matches alone tile the text. Proof for the first five: every character is a letter
    /// (o200k: every letter is in its upper- or lower-case class, tested on every code point),
    /// a number, white space or none of those, and an alternative starts with each of the four
    /// kinds (`\s+` with white space, the "other" run with the rest); none matches the empty
    /// string.
    pub fn tiles(self) -> bool {
        matches!(
            self,
            Pattern::Qwen2 | Pattern::Cl100k | Pattern::Gpt2 | Pattern::O200k | Pattern::Tekken
        )
    }
}

/// The class flags of `c` (letter 1, number 2, white space 4, `\r`/`\n` 8), for tests.
#[doc(hidden)]
pub fn class_flags(c: char) -> u8 {
    Classes::default().of(c as u32)
}

/// Decodes the character starting at `b[i]`; `b` is valid UTF-8 (it comes from a `&str`).
#[inline(always)]
pub(super) fn decode(b: &[u8], i: usize) -> (u32, usize) {
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

/// Whether bit `cp` of the bitmap `bits` (one bit per code point) is set.
#[inline(always)]
pub(super) fn bit(bits: &[u64], cp: u32) -> bool {
    bits[cp as usize / 64] >> (cp % 64) & 1 != 0
}

/// The end of the run of three-byte characters from `i` whose code points pass `keep`: most CJK
/// text, walked without the general decoding's branches. `b` is valid UTF-8 and `i` is on a
/// character boundary.
#[inline(always)]
pub(super) fn three_byte_run(b: &[u8], mut i: usize, keep: impl Fn(u32) -> bool) -> usize {
    while let Some(&[b0, b1, b2]) = b.get(i..i + 3) {
        if b0 & 0xf0 != 0xe0 {
            break;
        }
        let cp = (u32::from(b0 & 0x0f) << 12) | (u32::from(b1 & 0x3f) << 6) | u32::from(b2 & 0x3f);
        if !keep(cp) {
            break;
        }
        i += 3;
    }
    i
}

/// Whether `b[i]` is a space and `b[i + 1]` an ASCII letter: the commonest pre-token's start.
#[inline(always)]
fn space_then_letter(b: &[u8], i: usize) -> bool {
    b[i] == b' ' && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
}

/// The length of the UTF-8 sequence whose first byte is `b0`.
#[inline(always)]
fn utf8_len(b0: u8) -> usize {
    match b0 {
        0..=0x7f => 1,
        0x80..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The end of the run of up to `max` characters at `i` that are `char::is_numeric` (what the
/// crate's `Digits` pre-tokenizer tests), if there is one.
#[inline(always)]
fn numeric_run(b: &[u8], i: usize, max: usize) -> Option<usize> {
    let mut e = i;
    let mut count = 0;
    while e < b.len() && count < max {
        let (c, l) = decode(b, e);
        if !char::from_u32(c).is_some_and(char::is_numeric) {
            break;
        }
        e += l;
        count += 1;
    }
    (e > i).then_some(e)
}

/// The end of the run of ASCII letters from `i`: `A`–`Z` and `a`–`z` with `fold` =
/// [`BOTH_CASES`], `a`–`z` only with `fold` = 0. Eight bytes at a time: each byte is tested for
/// `(byte | fold) - 'a' < 26` in its own lane (bit 7 cleared first, so no lane carries into the
/// next; a byte with bit 7 set is not ASCII, so it ends the run). The pattern matchers then go on
/// from there character by character (the run's class also has non-ASCII letters).
#[inline(always)]
fn ascii_letters(b: &[u8], mut i: usize, fold: u64) -> usize {
    const HI: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let low = (x | fold) & !HI;
        // Bit 7 of a lane: at least 'a' (+0x1f), and not above 'z' (+0x05), and ASCII.
        let ok = low.wrapping_add(ONES * 0x1f) & !low.wrapping_add(ONES * 0x05) & !x & HI;
        if ok != HI {
            return i + ((!ok & HI).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && (b[i] | fold as u8).wrapping_sub(b'a') < 26 {
        i += 1;
    }
    i
}

/// The `fold` of [`ascii_letters`] that takes both cases.
const BOTH_CASES: u64 = 0x2020_2020_2020_2020;

/// What receives the pre-tokens, as byte ranges: any `FnMut(usize, usize)`, or a type whose
/// [`Sink::piece`] is `#[inline(always)]`, which puts it inside each matcher's loop (a closure is
/// a function of its own that the compiler may decline to inline into the several loops).
pub trait Sink {
    fn piece(&mut self, start: usize, end: usize);

    /// Several pieces in order, `(start, end)` each: what the loop of a tiling pattern hands
    /// over, [`BATCH`] at a time.
    #[inline(always)]
    fn pieces(&mut self, ranges: &[(usize, usize)]) {
        for &(start, end) in ranges {
            self.piece(start, end);
        }
    }

    /// Called once after the last piece of a text.
    #[inline(always)]
    fn finish(&mut self) {}
}

impl<F: FnMut(usize, usize)> Sink for F {
    #[inline(always)]
    fn piece(&mut self, start: usize, end: usize) {
        self(start, end)
    }
}

/// Pre-tokens a tiling pattern's loop gathers before handing them to the sink.
pub const BATCH: usize = 16;

/// The pre-tokens a tiling pattern's loop holds before handing them over.
struct Batch {
    ranges: [(usize, usize); BATCH],
    held: usize,
}

impl Batch {
    /// Holds `range`, handing the batch to `f` when it is full (a function, not a closure: the
    /// compiler inlines it into the loop, which it declined to do with a closure).
    #[inline(always)]
    fn push(&mut self, range: (usize, usize), f: &mut impl Sink) {
        self.ranges[self.held] = range;
        self.held += 1;
        if self.held == BATCH {
            f.pieces(&self.ranges);
            self.held = 0;
        }
    }
}

/// Splits text into pre-tokens with one supported pattern, or a sequence of them.
#[derive(Clone)]
pub struct PreTokenizer {
    /// At least one step; each step after the first splits every piece of the one before.
    steps: Vec<Pattern>,
    /// The matchers of the `Pattern::Compiled` steps.
    compiled: Vec<Compiled>,
    classes: Classes,
}

impl PreTokenizer {
    pub fn new(pattern: Pattern) -> Self {
        Self::sequence(vec![pattern])
    }

    /// `Split` steps applied in order; `steps` is not empty.
    pub fn sequence(steps: Vec<Pattern>) -> Self {
        Self::with_compiled(steps, vec![])
    }

    /// `Split` steps applied in order, `Pattern::Compiled(k)` being `compiled[k]`.
    pub fn with_compiled(steps: Vec<Pattern>, compiled: Vec<Compiled>) -> Self {
        assert!(!steps.is_empty(), "a pre-tokenizer has at least one step");
        PreTokenizer {
            steps,
            compiled,
            classes: Classes::default(),
        }
    }

    /// One compiled pattern (for the tests, which compare it with the crate), or why not.
    #[doc(hidden)]
    pub fn compile(regex: &str) -> Result<Self, String> {
        Ok(Self::with_compiled(
            vec![Pattern::Compiled(0)],
            vec![Compiled::new(regex)?],
        ))
    }

    /// Whether [`Self::safe_cut`]'s proof covers every step (not for compiled patterns).
    pub fn cuttable(&self) -> bool {
        !self.steps.iter().any(|s| matches!(s, Pattern::Compiled(_)))
    }

    pub fn steps(&self) -> &[Pattern] {
        &self.steps
    }

    /// Calls `f` with each pre-token of `text`, in order; together they are exactly `text`.
    #[inline]
    pub fn for_each(&self, text: &str, mut f: impl FnMut(&[u8])) {
        let b = text.as_bytes();
        self.for_each_range(text, |start, end| f(&b[start..end]));
    }

    /// Calls `f` with the byte range of each pre-token of `text`, in order.
    #[inline]
    pub fn for_each_range(&self, text: &str, mut f: impl Sink) {
        let b = text.as_bytes();
        // One tiling pattern: a loop specialised for it (the common case, and the fastest).
        match self.steps[..] {
            [Pattern::Qwen2] => self.tile_windows(
                b,
                &mut f,
                |b, i| window::starts(b, i, false),
                |b, i| self.next_cl100k(b, i, 1),
            ),
            [Pattern::Cl100k] => self.tile_windows(
                b,
                &mut f,
                |b, i| window::starts(b, i, true),
                |b, i| self.next_cl100k(b, i, 3),
            ),
            [Pattern::Gpt2] => {
                self.tile_windows(b, &mut f, window::starts_gpt2, |b, i| self.next_gpt2(b, i))
            }
            [Pattern::O200k] => self.tile_windows(
                b,
                &mut f,
                |b, i| window::starts_o200k(b, i, true, true),
                |b, i| self.next_o200k(b, i, true, 3),
            ),
            [Pattern::Tekken] => self.tile_windows(
                b,
                &mut f,
                |b, i| window::starts_o200k(b, i, false, false),
                |b, i| self.next_o200k(b, i, false, 1),
            ),
            _ => self.split_steps(&self.steps, b, 0, b.len(), &mut f),
        }
        f.finish();
    }

    /// The pre-tokens of a tiling pattern, handed to `f` [`BATCH`] at a time: gathered in this
    /// loop's own array, the matchers' state stays in registers, and the sink's work on a batch
    /// overlaps (the encoder asks for all their cache lines first). `window` gives the trusted
    /// starts of the window at `i` and its first non-ASCII byte ([`window::starts`]): over ASCII
    /// text the pre-tokens between a window's starts are taken 64 bytes at a time and the next
    /// window starts at the last one; from a non-ASCII byte to past it, and in the last bytes
    /// of the text, `next` gives the end of the pre-token at `i`, one at a time.
    #[inline(always)]
    fn tile_windows(
        &self,
        b: &[u8],
        f: &mut impl Sink,
        window: impl Fn(&[u8], usize) -> (u64, usize),
        next: impl Fn(&[u8], usize) -> usize,
    ) {
        let mut batch = Batch {
            ranges: [(0, 0); BATCH],
            held: 0,
        };
        let (mut i, mut scalar_until) = (0, 0);
        let windows_end = b.len().saturating_sub(64 + window::LOOKAHEAD);
        while i < b.len() {
            if i >= scalar_until && i < windows_end {
                let (starts, seen) = window(b, i);
                let mut rest = starts & !1;
                if seen < i + 64 {
                    // Past the non-ASCII byte one pre-token at a time; where the window found
                    // nothing before it (text mostly not ASCII), a window's length further.
                    scalar_until = seen + if rest == 0 { 64 } else { 1 };
                }
                if rest != 0 {
                    let mut from = i;
                    while rest != 0 {
                        let to = i + rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        batch.push((from, to), f);
                        from = to;
                    }
                    i = from;
                    continue;
                }
            }
            let e = next(b, i);
            debug_assert!(e > i && e <= b.len());
            batch.push((i, e), f);
            i = e;
        }
        f.pieces(&batch.ranges[..batch.held]);
    }

    /// The pre-tokens of `text` by this (single, tiling) pattern's matcher one pre-token at a
    /// time: the reference for [`Self::tile_windows`] in the tests.
    #[cfg(test)]
    pub(super) fn one_at_a_time(&self, text: &str) -> Vec<(usize, usize)> {
        let (b, mut i, mut out) = (text.as_bytes(), 0, vec![]);
        while i < b.len() {
            let e = self
                .match_at(self.steps[0], b, i)
                .expect("a tiling pattern");
            out.push((i, e));
            i = e;
        }
        out
    }

    /// Splits `b[start..end]` as a text of its own with `steps[0]`, as the crate's `Split` does
    /// with `Isolated` (the matches, and the gaps between them, each one piece), then each piece
    /// with the remaining steps. The matchers read `b[..end]`, so the piece's end is the end of
    /// their text; none looks behind its starting position, so starting at `start` is starting
    /// at the beginning of a text.
    fn split_steps(&self, steps: &[Pattern], b: &[u8], start: usize, end: usize, f: &mut dyn Sink) {
        let Some((&step, rest)) = steps.split_first() else {
            f.piece(start, end);
            return;
        };
        let text = &b[..end];
        let (mut i, mut gap) = (start, start);
        loop {
            i = Self::skip(step, text, i);
            if i >= end {
                break;
            }
            match self.match_at(step, text, i) {
                Some(e) => {
                    debug_assert!(e > i && e <= end);
                    if gap < i {
                        self.split_steps(rest, b, gap, i, f);
                    }
                    self.split_steps(rest, b, i, e, f);
                    i = e;
                    gap = e;
                }
                None => i += utf8_len(b[i]),
            }
        }
        if gap < end {
            self.split_steps(rest, b, gap, end, f);
        }
    }

    /// The first position from `i` where a match of `pattern` may start, skipping bytes that
    /// cannot start one: for the digit step, ASCII bytes other than digits; for the CJK step,
    /// every byte but the lead bytes 0xE3–0xE9 of U+3000–U+9FFF (continuation bytes are never
    /// in that range, so this stops on a character boundary). Other patterns: `i`.
    #[inline(always)]
    fn skip(pattern: Pattern, b: &[u8], mut i: usize) -> usize {
        match pattern {
            // An ASCII character is `\p{N}`, or `char::is_numeric`, exactly when it is a digit.
            Pattern::Digits3 | Pattern::DigitsEach | Pattern::DigitsRuns => {
                while i < b.len() && b[i] < 0x80 && !b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Pattern::DeepSeekCjk => {
                while i < b.len() && !(0xe3..=0xe9).contains(&b[i]) {
                    i += 1;
                }
            }
            _ => {}
        }
        i
    }

    /// The end of the match of `pattern` at `i`, if one starts there.
    fn match_at(&self, pattern: Pattern, b: &[u8], i: usize) -> Option<usize> {
        match pattern {
            Pattern::Qwen2 => Some(self.next_cl100k(b, i, 1)),
            Pattern::Cl100k => Some(self.next_cl100k(b, i, 3)),
            Pattern::Gpt2 => Some(self.next_gpt2(b, i)),
            Pattern::O200k => Some(self.next_o200k(b, i, true, 3)),
            Pattern::Tekken => Some(self.next_o200k(b, i, false, 1)),
            Pattern::Digits3 => self.digits(b, i, 3),
            Pattern::DeepSeekCjk => self.deepseek_cjk(b, i),
            Pattern::DeepSeek => self.next_deepseek(b, i),
            Pattern::DigitsEach => numeric_run(b, i, 1),
            Pattern::DigitsRuns => numeric_run(b, i, usize::MAX),
            Pattern::Compiled(k) => self.compiled[k as usize].match_at(b, i),
        }
    }

    /// The class flags of the character at `b[i]`, and its length in bytes.
    #[inline(always)]
    fn class_at(&self, b: &[u8], i: usize) -> (u32, u8, usize) {
        let (c, l) = decode(b, i);
        (c, self.classes.of(c), l)
    }

    /// The end of the run of letters (`\p{L}`) starting at `i`: ASCII letters eight at a time,
    /// three-byte characters (CJK) with one bit each, the others one at a time.
    #[inline(always)]
    fn letters(&self, b: &[u8], mut i: usize) -> usize {
        loop {
            i = ascii_letters(b, i, BOTH_CASES);
            // An ASCII character that is not an ASCII letter is not a letter.
            if b.get(i).is_none_or(|&c| c < 0x80) {
                return i;
            }
            i = three_byte_run(b, i, |cp| self.classes.bmp_letter(cp));
            if i >= b.len() {
                return i;
            }
            let (_, k, l) = self.class_at(b, i);
            if k & L == 0 {
                return i;
            }
            i += l;
        }
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
    pub(super) fn contraction_ci(b: &[u8], i: usize) -> Option<usize> {
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
    pub(super) fn contraction_cs(b: &[u8], i: usize) -> Option<usize> {
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
        // The commonest pre-token, a space and a word, by the second alternative below
        // without classifying its first two characters.
        if space_then_letter(b, i) {
            return self.letters(b, i + 2);
        }
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
            return self.letters(b, i + l0);
        }
        if k0 & (N | NL) == 0 && i + l0 < n {
            let (_, k1, l1) = self.class_at(b, i + l0);
            if k1 & L != 0 {
                return self.letters(b, i + l0 + l1);
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
        // The commonest pre-token, a space and a word (` ?\p{L}+`), without classifying its
        // first two characters.
        if space_then_letter(b, i) {
            return self.letters(b, i + 2);
        }
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
            return self.letters(b, j);
        }
        if k & N != 0 {
            return self.run(b, j, |k| k & N != 0);
        }
        if k & S == 0 {
            return self.run(b, j, |k| k & (L | N | S) == 0);
        }
        self.whitespace(b, i, false)
    }

    /// `\p{N}{1,max}` at `i`.
    #[inline(always)]
    fn digits(&self, b: &[u8], i: usize, max: usize) -> Option<usize> {
        let mut e = i;
        for _ in 0..max {
            if e >= b.len() {
                break;
            }
            let (_, k, l) = self.class_at(b, e);
            if k & N == 0 {
                break;
            }
            e += l;
        }
        (e > i).then_some(e)
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)?` at `i`: the end of the contraction, or `i`.
    #[inline(always)]
    fn optional_contraction(b: &[u8], i: usize) -> usize {
        if b.get(i) == Some(&b'\'') {
            Self::contraction_ci(b, i + 1).unwrap_or(i)
        } else {
            i
        }
    }

    /// o200k's `U* W+ C?` at `j`, where U is `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, W is
    /// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` and C the optional contraction (Tekken has none: `contractions`
    /// false). `U*` is greedy: it takes the whole run of U, and if no W follows, gives characters
    /// back one at a time until `W+` can start, that is at the last character of the run that is
    /// also in W (none: no match). `W+` is greedy too, and `C?` always succeeds (possibly empty),
    /// so nothing else backtracks.
    #[inline(always)]
    fn o200k_lower(&self, b: &[u8], j: usize, contractions: bool) -> Option<usize> {
        let n = b.len();
        let (mut e, mut last_w) = (j, None);
        while e < n {
            let (_, k, l) = self.class_at(b, e);
            if k & UP == 0 {
                if k & LO != 0 {
                    // W+ starts right after the U run, at e.
                    return Some(self.lower_tail(b, e + l, contractions));
                }
                break;
            }
            if k & LO != 0 {
                last_w = Some(e);
            }
            e += l;
        }
        Some(self.lower_tail(b, last_w?, contractions))
    }

    /// `W* C?` at `j` (the rest of a `W+` whose first character ends at `j`, or a `W*`).
    #[inline(always)]
    fn lower_tail(&self, b: &[u8], j: usize, contractions: bool) -> usize {
        // ASCII letters in W are the lower-case ones, so the run ends at any other ASCII
        // character.
        let a = ascii_letters(b, j, 0);
        let m = match b.get(a) {
            Some(&c) if c >= 0x80 => self.run(b, a, |k| k & LO != 0),
            _ => a,
        };
        if contractions {
            Self::optional_contraction(b, m)
        } else {
            m
        }
    }

    /// o200k's `U+ W* C?` at `j` (classes as in [`Self::o200k_lower`]); all greedy, and only
    /// `U+` can fail (on an empty run).
    #[inline(always)]
    fn o200k_upper(&self, b: &[u8], j: usize, contractions: bool) -> Option<usize> {
        let k = self.run(b, j, |k| k & UP != 0);
        (k > j).then(|| self.lower_tail(b, k, contractions))
    }

    /// The o200k pattern at `i` (Tekken's with `contractions` false and `max_digits` 1). Its first
    /// two alternatives start with `[^\r\n\p{L}\p{N}]?`: the optional character is tried first
    /// taken, then not, before the next alternative.
    #[inline(always)]
    fn next_o200k(&self, b: &[u8], i: usize, contractions: bool, max_digits: usize) -> usize {
        let n = b.len();
        // The commonest pre-token, a space and a lower-case word: the first alternative below,
        // its `U*` empty, without classifying the first two characters.
        if b[i] == b' ' && b.get(i + 1).is_some_and(u8::is_ascii_lowercase) {
            return self.lower_tail(b, i + 2, contractions);
        }
        let (c0, k0, l0) = self.class_at(b, i);
        // k1: the class of the character after an optional first one, 0 when there is none. A
        // `U* W+` needs a character of U or W where it starts and a `U+` one of U: where there
        // is none, the attempt is skipped (it would fail), so punctuation and white space do
        // not try the four letter attempts in turn.
        let k1 = if k0 & (L | N | NL) == 0 && i + l0 < n {
            self.class_at(b, i + l0).1
        } else {
            0
        };
        // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:…)?
        if k1 & (UP | LO) != 0 {
            if let Some(e) = self.o200k_lower(b, i + l0, contractions) {
                return e;
            }
        }
        if k0 & (UP | LO) != 0 {
            if let Some(e) = self.o200k_lower(b, i, contractions) {
                return e;
            }
        }
        // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:…)?
        if k1 & UP != 0 {
            if let Some(e) = self.o200k_upper(b, i + l0, contractions) {
                return e;
            }
        }
        if k0 & UP != 0 {
            if let Some(e) = self.o200k_upper(b, i, contractions) {
                return e;
            }
        }
        // \p{N}{1,3} (Tekken: \p{N})
        if let Some(e) = self.digits(b, i, max_digits) {
            return e;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        let other = |k: u8| k & (L | N | S) == 0;
        let mut j = i;
        if c0 == ' ' as u32 && i + 1 < n && other(self.class_at(b, i + 1).1) {
            j = i + 1;
        }
        if j > i || other(k0) {
            let mut e = self.run(b, j, other);
            while e < n && matches!(b[e], b'\r' | b'\n' | b'/') {
                e += 1;
            }
            return e;
        }
        // Here the character at i is white space (a letter or number matched above).
        self.whitespace(b, i, true)
    }

    /// DeepSeek-V3's CJK step `[一-龥\u3040-ゟ゠-ヿ]+` at `i`.
    #[inline(always)]
    fn deepseek_cjk(&self, b: &[u8], i: usize) -> Option<usize> {
        let cjk = |c: u32| (0x4e00..=0x9fa5).contains(&c) || (0x3040..=0x30ff).contains(&c);
        let mut e = i;
        while e < b.len() {
            let (c, l) = decode(b, e);
            if !cjk(c) {
                break;
            }
            e += l;
        }
        (e > i).then_some(e)
    }

    /// DeepSeek-V3's main step at `i`, if an alternative matches there.
    #[inline(always)]
    fn next_deepseek(&self, b: &[u8], i: usize) -> Option<usize> {
        let n = b.len();
        let (c0, k0, l0) = self.class_at(b, i);
        // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : the class is all of ASCII punctuation.
        if b[i].is_ascii_punctuation() && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            let mut e = i + 2;
            while e < n && b[e].is_ascii_alphabetic() {
                e += 1;
            }
            return Some(e);
        }
        // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : the optional character taken if a run follows,
        // else the run at i.
        let lm = |k: u8| k & (L | M) != 0;
        if k0 & (NL | L | PS) == 0 && i + l0 < n && lm(self.class_at(b, i + l0).1) {
            return Some(self.run(b, i + l0, lm));
        }
        if lm(k0) {
            return Some(self.run(b, i, lm));
        }
        //  ?[\p{P}\p{S}]+[\r\n]*
        let ps = |k: u8| k & PS != 0;
        let mut j = i;
        if c0 == ' ' as u32 && i + 1 < n && ps(self.class_at(b, i + 1).1) {
            j = i + 1;
        }
        if j > i || ps(k0) {
            let mut e = self.run(b, j, ps);
            while e < n && (b[e] == b'\r' || b[e] == b'\n') {
                e += 1;
            }
            return Some(e);
        }
        // \s*[\r\n]+|\s+(?!\S)|\s+ ; anything else starts no match (a gap).
        (k0 & S != 0).then(|| self.whitespace(b, i, true))
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
    /// Proof for o200k and Tekken (o200k less the contractions, which only removes reads). The
    /// letter alternatives cannot take `\n` (their optional first character
    /// excludes it, their classes and the contraction do not hold it), so the match holding the
    /// `\n` is the "other" run (ending in `[\r\n/]*`, which stops at the letter or at the end of
    /// the text alike) or `\s*[\r\n]+` taking the `\n` alone, as above: `p` is a boundary. The
    /// letter, number and contraction parts stop at the `\n` without reading past it; the
    /// white-space alternatives as for cl100k.
    ///
    /// Proof for DeepSeek's three steps, each over the pieces of the one before. Digits and CJK
    /// (and the `Digits` pre-tokenizer's steps): neither `\n` nor an ASCII letter is in their
    /// classes, so the pieces before `p` are the
    /// same and the piece holding `p - 1` also holds `p` (a gap); the next step gets it whole in
    /// the text and cut at `p` in the halves. The main step over that piece: the punctuation +
    /// ASCII letters and the letter alternatives cannot hold `\n`, so it is held by
    /// ` ?[\p{P}\p{S}]+[\r\n]*` (ASCII punctuation at `p - 2`) or taken alone by
    /// `\s*[\r\n]+` (also when the piece starts at `p - 1`), ending at `p` either way; nothing
    /// before reads past `p - 1`, and no step looks behind. A tiling pattern over a piece that
    /// starts at `p - 1` takes the `\n` alone as well (`\s*[\r\n]+`; GPT-2: `\s+(?!\S)` at the
    /// end of the left half, `\s+` in the whole text). Every step satisfies this for any
    /// piece holding `p - 1` and `p`, so any sequence of the supported steps does.
    ///
    /// NFC and NFKC cannot interact across `p` either: no canonical composition has an ASCII character as
    /// its second part and ASCII characters are starters, so normalizing each side alone gives
    /// the normalization of the whole (tested on the composition tables). The letter at `p` may
    /// compose with marks after it, but the composite is a letter (tested), which is all the
    /// proofs above use.
    #[inline]
    pub fn safe_cut(text: &[u8], p: usize) -> bool {
        p >= 2
            && p < text.len()
            && text[p - 1] == b'\n'
            && text[p].is_ascii_alphabetic()
            && (0x21..0x7f).contains(&text[p - 2])
    }
}

/// Cuts `text` into parts of about `target` bytes at [`PreTokenizer::safe_cut`] positions (a
/// part is longer where safe positions are rare: the search goes on to the next one, so a long
/// stretch without one does not leave the rest of a document uncut, in one part on one thread
/// with its ids held twice). Returns the cut positions (exclusive ends of each part, the last
/// being `text.len()`).
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
