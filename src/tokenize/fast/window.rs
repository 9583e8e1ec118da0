//! The pre-token starts of the Qwen2 / cl100k pattern over 64 bytes of ASCII text at once.
//!
//! The character-at-a-time matcher ([`super::pretok`]) spends most of its instructions deciding,
//! character by character, which alternative of the pattern applies. Over ASCII text every one of
//! those decisions is a function of a few neighbouring characters' classes, so a window of 64
//! bytes can be classified with a handful of vector compares (one bit per byte and class) and
//! its pre-token starts computed with a few dozen word operations; the pre-tokens are then the
//! stretches between consecutive starts.
//!
//! The rules, for a window whose first byte starts a pre-token (so nothing before it matters):
//!
//! - A letter starts a pre-token unless it follows a letter, or a white-space character other
//!   than `\r`/`\n` (which always starts a pre-token when a non-space follows it, and takes the
//!   letters as `[^\r\n\p{L}\p{N}]?\p{L}+`), or an "other" character (not a letter, number or
//!   white space) that itself starts a pre-token. After a contraction (`'s`, `'re`, …, at an
//!   apostrophe that starts a pre-token) a letter starts one even after a letter.
//! - An other character starts a pre-token unless it follows another one or a space
//!   (` ?[^\s\p{L}\p{N}]+`).
//! - A digit starts one at the start of a run of digits, and (cl100k) every third digit on.
//! - `\r` and `\n` right after a run of other characters belong to it (`[\r\n]*`). The rest of
//!   the white space forms runs: a run starts a pre-token; a run holding a newline ends its first
//!   pre-token after its last newline (`\s*[\r\n]+`); what is left, if it is two characters or
//!   more, splits before its last character (`\s+(?!\S)`, as a non-space follows it).
//!
//! A start is only trusted where the window saw everything that decides it: before the first
//! non-ASCII byte, and not inside a white-space run that may go on past what the window saw.
//! The caller hands over the pre-tokens between trusted starts and starts the next window at the
//! last one. Every rule is checked against the character-at-a-time matcher by the tests in
//! `tests.rs`, on random text.

use super::classes::{self, L, N, NL, S, UP};
use super::pretok::PreTokenizer;

/// Bytes a window looks at past its 64 (the contraction after an apostrophe at its last byte).
pub const LOOKAHEAD: usize = 3;

/// One bit per byte of a window, bit `k` for byte `k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Classes {
    /// `A`–`Z`, `a`–`z`.
    pub letter: u64,
    /// `A`–`Z`.
    pub upper: u64,
    pub digit: u64,
    /// `\t`, `\n`, `\v`, `\f`, `\r`, space: the ASCII characters of `\s`.
    pub white: u64,
    /// `\r`, `\n`.
    pub newline: u64,
    /// The space, U+0020.
    pub space: u64,
    pub apostrophe: u64,
    pub slash: u64,
    /// Bytes of 0x80 and above.
    pub high: u64,
}

/// The classes of `w` (64 bytes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn classify(w: &[u8; 64]) -> Classes {
    use std::arch::x86_64::*;
    let mut c = Classes::default();
    // SAFETY: SSE2 is part of x86_64, so these intrinsics are always available; the loads are
    // unaligned ones within `w`.
    unsafe {
        for k in 0..4 {
            let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast());
            let splat = |x: u8| _mm_set1_epi8(x as i8);
            let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (16 * k);
            // Signed compares: bytes of 0x80 and above are negative, in no class but `high`.
            let between = |x: __m128i, lo: u8, hi: u8| {
                _mm_and_si128(
                    _mm_cmpgt_epi8(x, splat(lo - 1)),
                    _mm_cmplt_epi8(x, splat(hi + 1)),
                )
            };
            let space = _mm_cmpeq_epi8(v, splat(b' '));
            let newline = _mm_or_si128(
                _mm_cmpeq_epi8(v, splat(b'\n')),
                _mm_cmpeq_epi8(v, splat(b'\r')),
            );
            c.letter |= bits(between(_mm_or_si128(v, splat(0x20)), b'a', b'z'));
            c.upper |= bits(between(v, b'A', b'Z'));
            c.digit |= bits(between(v, b'0', b'9'));
            c.white |= bits(_mm_or_si128(space, between(v, b'\t', b'\r')));
            c.newline |= bits(newline);
            c.space |= bits(space);
            c.apostrophe |= bits(_mm_cmpeq_epi8(v, splat(b'\'')));
            c.slash |= bits(_mm_cmpeq_epi8(v, splat(b'/')));
            c.high |= bits(v);
        }
    }
    c
}

/// The classes of `w` (64 bytes), a byte at a time: the definition [`classify`] is tested
/// against, and the classifier on other architectures.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(super) fn classify_bytes(w: &[u8; 64]) -> Classes {
    let mut c = Classes::default();
    for (k, &b) in w.iter().enumerate() {
        let bit = 1u64 << k;
        let set = |mask: &mut u64, yes: bool| *mask |= if yes { bit } else { 0 };
        // The matchers' own flags of an ASCII character; a non-ASCII byte is in `high` alone.
        let flags = if b < 0x80 { classes::ascii(b) } else { 0 };
        set(&mut c.letter, flags & L != 0);
        set(&mut c.upper, flags & UP != 0);
        set(&mut c.digit, flags & N != 0);
        set(&mut c.white, flags & S != 0);
        set(&mut c.newline, flags & NL != 0);
        set(&mut c.space, b == b' ');
        set(&mut c.apostrophe, b == b'\'');
        set(&mut c.slash, b == b'/');
        set(&mut c.high, b >= 0x80);
    }
    c
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn classify(w: &[u8; 64]) -> Classes {
    classify_bytes(w)
}

/// `seed` spread towards higher bits along runs of `within` (a bit is set if a seed bit below
/// it is joined to it by bits of `within`), in six steps.
#[inline(always)]
pub(super) fn spread_up(seed: u64, within: u64) -> u64 {
    let (mut a, mut m) = (seed & within, within);
    for shift in [1, 2, 4, 8, 16, 32] {
        a |= (a << shift) & m;
        m &= m << shift;
    }
    a
}

/// [`spread_up`] towards lower bits.
#[inline(always)]
pub(super) fn spread_down(seed: u64, within: u64) -> u64 {
    let (mut a, mut m) = (seed & within, within);
    for shift in [1, 2, 4, 8, 16, 32] {
        a |= (a >> shift) & m;
        m &= m >> shift;
    }
    a
}

/// Bits `from..to` of a window (those below 64).
#[inline(always)]
fn span(from: usize, to: usize) -> u64 {
    let below = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    below(to) & !below(from)
}

/// What a window saw: the classes of its bytes up to its first non-ASCII one (the bytes from
/// there on are in none), the number of bytes before it, and their mask.
struct Look {
    c: Classes,
    seen: usize,
    valid: u64,
}

/// The window `b[i..i + 64]`.
#[inline(always)]
fn look(b: &[u8], i: usize) -> Look {
    let w: &[u8; 64] = b[i..i + 64].try_into().expect("64 bytes");
    let c = classify(w);
    let seen = c.high.trailing_zeros() as usize;
    let valid = if seen == 64 { !0 } else { (1u64 << seen) - 1 };
    let c = Classes {
        letter: c.letter & valid,
        upper: c.upper & valid,
        digit: c.digit & valid,
        white: c.white & valid,
        newline: c.newline & valid,
        space: c.space & valid,
        apostrophe: c.apostrophe & valid,
        slash: c.slash & valid,
        high: c.high,
    };
    Look { c, seen, valid }
}

/// The starts in the white-space runs `runs` (white space less the newlines a run of other
/// characters took): each run's start, after its last newline if anything follows that in the
/// run, and its last character if what follows its last newline (or the run) is two characters
/// or more.
#[inline(always)]
fn white_starts(runs: u64, newline: u64) -> u64 {
    let run_start = runs & !(runs << 1);
    // A run ends where the next byte is not in one; at the window's edge the byte after it is
    // not looked at here (a run reaching the edge is cut in `trusted`).
    let run_end = runs & !(runs >> 1);
    let plain = runs & !newline;
    let tail = spread_down(run_end & !newline, plain);
    run_start | (tail & ((runs & newline) << 1)) | (run_end & !newline & (plain << 1))
}

/// The starts of runs of digits, and every third digit on with `three_digits`, else every digit.
#[inline(always)]
fn digit_starts(digit: u64, three_digits: bool) -> u64 {
    if !three_digits {
        return digit;
    }
    let mut starts = digit & !(digit << 1);
    let three = digit & (digit << 1) & (digit << 2);
    let mut next = (starts << 3) & three;
    while next != 0 {
        starts |= next;
        next = (next << 3) & three;
    }
    starts
}

/// The window at `i`'s starts, `starts` (letters, digits, other characters) and those of the
/// white-space runs `runs` (with the newline rule for the `newline` bytes in them), that it saw
/// everything of, and its first non-ASCII byte: a run touching the edge of what was seen may go
/// on (past a non-ASCII byte, or past the window), so its splits are not known, its start is.
#[inline(always)]
fn trusted(b: &[u8], i: usize, w: &Look, starts: u64, runs: u64, newline: u64) -> (u64, usize) {
    let all = (1 | starts | white_starts(runs, newline)) & w.valid;
    let seen = w.seen;
    let open = seen < 64 || {
        let next = b[i + 64];
        next >= 0x80 || classes::ascii(next) & S != 0
    };
    if open && seen > 0 && runs >> (seen - 1) & 1 != 0 {
        let run_start = runs & !(runs << 1);
        let cut = 63 - run_start.leading_zeros();
        return (all & (u64::MAX >> (63 - cut)), i + seen);
    }
    (all, i + seen)
}

/// The trusted pre-token starts of the window `b[i..i + 64]` (bit `k` for `i + k`; bit 0, as
/// `i` starts a pre-token, is set unless that byte is not ASCII) for the Qwen2 (`three_digits`
/// false) or cl100k pattern, and the window's first non-ASCII byte (`i + 64` if none). The
/// caller makes sure `b` holds [`LOOKAHEAD`] bytes past the window.
#[inline(always)]
pub(super) fn starts(b: &[u8], i: usize, three_digits: bool) -> (u64, usize) {
    let w = look(b, i);
    let (c, valid) = (&w.c, w.valid);
    let other = valid & !(c.letter | c.digit | c.white);
    let other_start = other & !(other << 1) & !(c.space << 1);
    // Newlines right after a run of other characters belong to it.
    let taken = spread_up(c.newline & (other << 1), c.newline);
    let runs = c.white & !taken;

    let mut letter_start =
        c.letter & !(c.letter << 1) & !((c.white & !c.newline) << 1) & !(other_start << 1);
    let mut quotes = c.apostrophe & other_start;
    while quotes != 0 {
        let k = quotes.trailing_zeros() as usize;
        quotes &= quotes - 1;
        if let Some(e) = PreTokenizer::contraction_ci(b, i + k + 1) {
            // The letter after a contraction starts a pre-token (the rest already do).
            if e - i < 64 {
                letter_start |= 1 << (e - i);
            }
        }
    }
    let starts = letter_start | digit_starts(c.digit, three_digits) | other_start;
    trusted(b, i, &w, starts, runs, c.newline)
}

/// [`starts`] for the o200k pattern (Tekken's with `contractions` false and `three_digits`
/// false). Its words are a run of capitals then a run of small letters, either possibly empty,
/// with an optional contraction after them (`'s`, …, any case); so a capital after a small
/// letter starts a word, and so does whatever follows a contraction. A run of other characters
/// takes the newlines and slashes after it (`[\r\n/]*`): after those a slash goes with them,
/// any other character starts a pre-token.
#[inline(always)]
pub(super) fn starts_o200k(
    b: &[u8],
    i: usize,
    contractions: bool,
    three_digits: bool,
) -> (u64, usize) {
    let w = look(b, i);
    let (c, valid) = (&w.c, w.valid);
    let small = c.letter & !c.upper;
    // Apostrophes that end a word with a contraction (after a letter, but not right after
    // another contraction, which ends its pre-token), the letters of those contractions, and
    // the bytes after them.
    let (mut suffix, mut inside, mut after) = (0u64, 0u64, 0u64);
    if contractions {
        let mut quotes = c.apostrophe & (c.letter << 1);
        while quotes != 0 {
            let k = quotes.trailing_zeros() as usize;
            quotes &= quotes - 1;
            if after >> k & 1 != 0 {
                continue;
            }
            if let Some(e) = PreTokenizer::contraction_ci(b, i + k + 1) {
                suffix |= 1 << k;
                inside |= span(k + 1, e - i);
                if e - i < 64 {
                    after |= 1 << (e - i);
                }
            }
        }
    }
    let other = valid & !(c.letter | c.digit | c.white | suffix);
    // Newlines right after a run of other characters, and the newlines and slashes after them.
    let taken = spread_up(c.newline & (other << 1), c.newline | c.slash);
    let other_start = other & !taken & ((!(other << 1) & !(c.space << 1)) | (taken << 1));
    let runs = c.white & !taken;

    let letter_start =
        ((c.letter & !(c.letter << 1) & !((c.white & !c.newline) << 1) & !(other_start << 1))
            | (c.upper & (small << 1)))
            & !inside
            | after;
    let starts = letter_start | digit_starts(c.digit, three_digits) | other_start;
    trusted(b, i, &w, starts, runs, c.newline)
}

/// [`starts`] for the GPT-2 pattern (and `ByteLevel`'s own regex). Only a space joins the run
/// after it (` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, each run of one class, digits
/// unbounded); contractions (lower case only) at an apostrophe that starts a pre-token; white
/// space without the newline rule (a run splits before its last character).
#[inline(always)]
pub(super) fn starts_gpt2(b: &[u8], i: usize) -> (u64, usize) {
    let w = look(b, i);
    let (c, valid) = (&w.c, w.valid);
    let other = valid & !(c.letter | c.digit | c.white);
    let after_space = c.space << 1;
    let other_start = other & !(other << 1) & !after_space;
    let mut letter_start = c.letter & !(c.letter << 1) & !after_space;
    let mut quotes = c.apostrophe & other_start;
    while quotes != 0 {
        let k = quotes.trailing_zeros() as usize;
        quotes &= quotes - 1;
        if let Some(e) = PreTokenizer::contraction_cs(b, i + k + 1) {
            // The contraction's letters (one or two) start nothing, the letter after it does
            // (the rest already do).
            letter_start &= !span(k + 1, e - i);
            if e - i < 64 {
                letter_start |= 1 << (e - i);
            }
        }
    }
    let digit_start = c.digit & !(c.digit << 1) & !after_space;
    trusted(
        b,
        i,
        &w,
        letter_start | digit_start | other_start,
        c.white,
        0,
    )
}
