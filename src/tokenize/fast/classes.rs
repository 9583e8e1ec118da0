//! Character classes for the pre-tokenizer patterns, with Oniguruma's Unicode tables.
//!
//! Every supported pattern is written in terms of `\p{L}`, `\p{N}`, `\s`, the two letter-case
//! unions of o200k (`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` and `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`), `\p{M}`,
//! `[\p{P}\p{S}]` (DeepSeek) and a few literal characters, so one byte of flags per code point is
//! enough. ASCII is answered from a 128-entry
//! table; other code points from a two-level table (blocks of 128 code points, shared when equal)
//! built once from the ranges in [`super::tables`].

use super::tables::{
    LETTER, LOWER, MARK, MODIFIER, NUMBER, OTHER_LETTER, PUNCT, SPACE, SYMBOL, TITLE, UPPER,
};
use std::sync::OnceLock;

/// `\p{L}`.
pub const L: u8 = 1;
/// `\p{N}`.
pub const N: u8 = 2;
/// `\s`.
pub const S: u8 = 4;
/// `\r` or `\n`.
pub const NL: u8 = 8;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k's upper-case-like letters).
pub const UP: u8 = 16;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k's lower-case-like letters).
pub const LO: u8 = 32;
/// `\p{M}`.
pub const M: u8 = 64;
/// `[\p{P}\p{S}]`.
pub const PS: u8 = 128;

const BLOCK_SHIFT: u32 = 7;
const BLOCK: usize = 1 << BLOCK_SHIFT;
const CODE_POINTS: usize = 0x110000;

struct Table {
    /// `index[cp >> 7]` is the block holding `cp`'s flags.
    index: Vec<u16>,
    blocks: Vec<[u8; BLOCK]>,
    /// One bit per code point below U+10000, set for letters: runs of three-byte letters (CJK)
    /// are walked with one look-up each instead of the two of `index` and `blocks`.
    bmp_letters: Vec<u64>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut flat = vec![0u8; CODE_POINTS];
        let classes: [(&[(u32, u32)], u8); 11] = [
            (LETTER, L),
            (NUMBER, N),
            (SPACE, S),
            (UPPER, UP),
            (TITLE, UP),
            (MODIFIER, UP | LO),
            (OTHER_LETTER, UP | LO),
            (MARK, UP | LO | M),
            (LOWER, LO),
            (PUNCT, PS),
            (SYMBOL, PS),
        ];
        for (ranges, flag) in classes {
            for &(a, b) in ranges {
                for f in &mut flat[a as usize..=b as usize] {
                    *f |= flag;
                }
            }
        }
        flat[b'\r' as usize] |= NL;
        flat[b'\n' as usize] |= NL;
        let bmp_letters = flat[..0x10000]
            .chunks(64)
            .map(|chunk| {
                (chunk.iter().enumerate())
                    .filter(|(_, &f)| f & L != 0)
                    .fold(0u64, |bits, (k, _)| bits | 1 << k)
            })
            .collect();
        let mut blocks: Vec<[u8; BLOCK]> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let index = flat
            .chunks(BLOCK)
            .map(|chunk| {
                let block: [u8; BLOCK] = chunk.try_into().expect("whole blocks");
                *seen.entry(block).or_insert_with(|| {
                    blocks.push(block);
                    (blocks.len() - 1) as u16
                })
            })
            .collect();
        Table {
            index,
            blocks,
            bmp_letters,
        }
    })
}

/// The flags of ASCII characters, without touching the big table.
static ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_uppercase() {
            L | UP
        } else if b.is_ascii_lowercase() {
            L | LO
        } else if b.is_ascii_digit() {
            N
        } else if b == b'\r' || b == b'\n' {
            S | NL
        } else if (b >= 0x09 && b <= 0x0d) || b == b' ' {
            S
        } else if b.is_ascii_punctuation() {
            PS
        } else {
            0
        };
        c += 1;
    }
    t
};

/// The flags of the ASCII character `b` (below 0x80): the one definition of the ASCII classes,
/// which the window classifier is tested against as well.
#[inline(always)]
pub fn ascii(b: u8) -> u8 {
    ASCII[usize::from(b & 0x7f)]
}

/// A classifier holding a reference to the table, so the hot loop does not touch the `OnceLock`.
#[derive(Clone, Copy)]
pub struct Classes {
    table: &'static Table,
}

impl Default for Classes {
    fn default() -> Self {
        Classes { table: table() }
    }
}

impl Classes {
    /// Whether `cp`, below U+10000, is a letter (has the flag `L`).
    #[inline(always)]
    pub fn bmp_letter(&self, cp: u32) -> bool {
        debug_assert!(cp < 0x10000);
        super::pretok::bit(&self.table.bmp_letters, cp)
    }

    /// The flags of code point `cp`.
    #[inline(always)]
    pub fn of(&self, cp: u32) -> u8 {
        if cp < 128 {
            ASCII[cp as usize]
        } else {
            let block = self.table.index[(cp >> BLOCK_SHIFT) as usize] as usize;
            self.table.blocks[block][cp as usize & (BLOCK - 1)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bmp_letter_bits_are_the_letter_flags() {
        let c = Classes::default();
        for cp in 0..0x10000u32 {
            assert_eq!(c.bmp_letter(cp), c.of(cp) & L != 0, "{cp:#x}");
        }
    }

    #[test]
    fn ascii_table_agrees_with_oniguruma_ranges() {
        let t = table();
        for cp in 0..128u32 {
            let block = t.index[(cp >> BLOCK_SHIFT) as usize] as usize;
            assert_eq!(ASCII[cp as usize], t.blocks[block][cp as usize], "{cp:#x}");
        }
    }

    #[test]
    fn some_known_code_points() {
        let c = Classes::default();
        assert_eq!(c.of('中' as u32), L | UP | LO);
        assert_eq!(c.of('é' as u32), L | LO);
        assert_eq!(c.of('É' as u32), L | UP);
        assert_eq!(c.of(0x301), UP | LO | M);
        assert_eq!(c.of('…' as u32), PS);
        assert_eq!(c.of('٣' as u32), N);
        assert_eq!(c.of('Ⅻ' as u32), N);
        assert_eq!(c.of(0x3000), S);
        assert_eq!(c.of(0x85), S);
        assert_eq!(c.of(0x200b), 0); // zero-width space is not \s
        assert_eq!(c.of('🎉' as u32), PS);
        assert_eq!(c.of(0x200d), 0);
        assert_eq!(c.of(0x10ffff), 0);
    }
}
