//! Split patterns without a hand-written matcher, compiled into a small backtracking matcher.
//!
//! A pattern is accepted only in this grammar, where the matcher provably does what Oniguruma
//! does (the `tokenizers` crate's engine):
//!
//! - alternatives `a|b|…` at the top level, each a sequence of items that cannot match the
//!   empty string as a whole (so every match is at least one character, as the crate's
//!   splitting needs);
//! - an item is one character set with an optional quantifier (`?`, `*`, `+`, `{n}`, `{n,}`,
//!   `{n,m}`; the first three greedy or possessive `…+`; lazy ones are refused), the exact group
//!   `(?i:'s|'t|'re|'ve|'m|'ll|'d)` (optionally `?`), or a one-character look-ahead `(?!x)` or
//!   `(?=x)`;
//! - a character set is a literal character, an escape (`\r`, `\n`, `\t`, `\uHHHH`, an escaped
//!   ASCII punctuation character), `\s`, `\S`, `\p{…}`/`\P{…}` for the properties L, N, Lu, Ll,
//!   Lt, Lm, Lo, M, P and S, or a bracket class `[…]`/`[^…]` of those and of ranges between
//!   literal characters.
//!
//! Anything else (groups, `.`, anchors, `\d`, `\w`, other properties, nested classes, `&&`,
//! case-insensitivity elsewhere) is refused with its reason, and the file falls back to the
//! crate. Within the grammar, matching is Oniguruma's backtracking order: alternatives left to
//! right, the first that matches wins; a greedy item takes as many characters as it can and gives
//! them back one at a time while the rest of its alternative fails; a possessive item never
//! gives back; the contraction group tries its alternatives in order (at most one can match; its
//! case folding is the hand-written matchers', tested against the crate) before skipping when
//! optional. Properties come from Oniguruma's own tables ([`super::tables`]). The differential
//! tests compile every hand-written pattern and others this way and compare with the crate on
//! every code point in context.
//!
//! No proof of where a text may be cut is made for a compiled pattern, so texts using one are not
//! cut into parallel parts, and only the `Isolated` behavior is accepted (its matches may leave
//! gaps).

use super::pretok::{decode, PreTokenizer};
use super::tables::{
    LETTER, LOWER, MARK, MODIFIER, NUMBER, OTHER_LETTER, PUNCT, SPACE, SYMBOL, TITLE, UPPER,
};
use std::sync::OnceLock;

const PROPERTIES: [(&str, &[(u32, u32)]); 11] = [
    ("L", LETTER),
    ("N", NUMBER),
    ("Space", SPACE),
    ("Lu", UPPER),
    ("Ll", LOWER),
    ("Lt", TITLE),
    ("Lm", MODIFIER),
    ("Lo", OTHER_LETTER),
    ("M", MARK),
    ("P", PUNCT),
    ("S", SYMBOL),
];
const SPACE_BIT: u16 = 1 << 2;

/// The property bits (bit `k` for `PROPERTIES[k]`) of every code point, in blocks of 128.
struct Table {
    index: Vec<u16>,
    blocks: Vec<[u16; 128]>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut flat = vec![0u16; 0x110000];
        for (k, (_, ranges)) in PROPERTIES.iter().enumerate() {
            for &(a, b) in *ranges {
                for f in &mut flat[a as usize..=b as usize] {
                    *f |= 1 << k;
                }
            }
        }
        let mut blocks = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let index = flat
            .chunks(128)
            .map(|chunk| {
                let block: [u16; 128] = chunk.try_into().expect("whole blocks");
                *seen.entry(block).or_insert_with(|| {
                    blocks.push(block);
                    (blocks.len() - 1) as u16
                })
            })
            .collect();
        Table { index, blocks }
    })
}

#[derive(Clone, Debug)]
enum Member {
    Range(u32, u32),
    Props(u16),
    NotProps(u16),
}

/// A set of characters: the union of its members, complemented when `negated`.
#[derive(Clone, Debug)]
struct Set {
    members: Vec<Member>,
    negated: bool,
}

impl Set {
    fn one(m: Member) -> Set {
        Set {
            members: vec![m],
            negated: false,
        }
    }

    #[inline]
    fn contains(&self, cp: u32, props: u16) -> bool {
        let hit = self.members.iter().any(|m| match *m {
            Member::Range(a, b) => (a..=b).contains(&cp),
            Member::Props(p) => props & p != 0,
            Member::NotProps(p) => props & p == 0,
        });
        hit != self.negated
    }
}

#[derive(Clone, Debug)]
enum Item {
    Set {
        set: Set,
        min: u32,
        max: u32,
        possessive: bool,
    },
    Contraction {
        optional: bool,
        possessive: bool,
    },
    Ahead {
        set: Set,
        negative: bool,
    },
}

/// A compiled split pattern.
#[derive(Clone)]
pub struct Compiled {
    alternatives: Vec<Vec<Item>>,
    table: &'static Table,
}

const CONTRACTIONS: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";

impl Compiled {
    /// Compiles `src`, or says which part is outside the grammar.
    pub fn new(src: &str) -> Result<Compiled, String> {
        let mut p = Parser {
            s: src.chars().collect(),
            i: 0,
        };
        let mut alternatives = vec![];
        loop {
            let alt = p.alternative()?;
            if alt.iter().map(min_len).sum::<u32>() == 0 {
                return Err("an alternative can match the empty string".into());
            }
            alternatives.push(alt);
            match p.next() {
                None => break,
                Some('|') => continue,
                Some(c) => return Err(format!("unexpected {c:?}")),
            }
        }
        Ok(Compiled {
            alternatives,
            table: table(),
        })
    }

    #[inline]
    fn props(&self, cp: u32) -> u16 {
        let block = self.table.index[(cp >> 7) as usize] as usize;
        self.table.blocks[block][cp as usize & 127]
    }

    #[inline]
    fn has(&self, set: &Set, b: &[u8], i: usize) -> Option<usize> {
        let (c, l) = decode(b, i);
        set.contains(c, self.props(c)).then_some(i + l)
    }

    /// The end of the match at `i`, if one starts there.
    pub fn match_at(&self, b: &[u8], i: usize) -> Option<usize> {
        self.alternatives
            .iter()
            .find_map(|alt| self.items(alt, b, i))
    }

    /// Matches `items` at `pos`, backtracking as Oniguruma does; the end of the match.
    fn items(&self, items: &[Item], b: &[u8], pos: usize) -> Option<usize> {
        let Some((first, rest)) = items.split_first() else {
            return Some(pos);
        };
        match first {
            Item::Ahead { set, negative } => {
                let hit = pos < b.len() && self.has(set, b, pos).is_some();
                (hit != *negative)
                    .then(|| self.items(rest, b, pos))
                    .flatten()
            }
            Item::Contraction {
                optional,
                possessive,
            } => {
                let taken = (b.get(pos) == Some(&b'\''))
                    .then(|| PreTokenizer::contraction_ci(b, pos + 1))
                    .flatten();
                if let Some(e) = taken {
                    if let Some(end) = self.items(rest, b, e) {
                        return Some(end);
                    }
                    if *possessive {
                        return None;
                    }
                }
                optional.then(|| self.items(rest, b, pos)).flatten()
            }
            Item::Set {
                set,
                min,
                max,
                possessive,
            } => self.repeat(set, (*min, *max), *possessive, rest, b, pos),
        }
    }

    /// A set repeated between `min` and `max` times at `pos`, then `rest`: greedy (longest
    /// first, giving back one character at a time) or possessive (longest only).
    fn repeat(
        &self,
        set: &Set,
        (min, max): (u32, u32),
        possessive: bool,
        rest: &[Item],
        b: &[u8],
        pos: usize,
    ) -> Option<usize> {
        let (mut e, mut count) = (pos, 0u32);
        while count < max && e < b.len() {
            match self.has(set, b, e) {
                Some(next) => e = next,
                None => break,
            }
            count += 1;
        }
        if count < min {
            return None;
        }
        if possessive {
            return self.items(rest, b, e);
        }
        loop {
            if let Some(end) = self.items(rest, b, e) {
                return Some(end);
            }
            if count == min {
                return None;
            }
            // Give back one character: step over its continuation bytes.
            e -= 1;
            while b[e] & 0xc0 == 0x80 {
                e -= 1;
            }
            count -= 1;
        }
    }
}

fn min_len(item: &Item) -> u32 {
    match item {
        Item::Set { min, .. } => *min,
        Item::Contraction { optional, .. } => u32::from(!optional) * 2,
        Item::Ahead { .. } => 0,
    }
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += usize::from(c.is_some());
        c
    }

    fn starts_with(&self, text: &str) -> bool {
        (self.i..)
            .zip(text.chars())
            .all(|(j, c)| self.s.get(j) == Some(&c))
    }

    /// Items up to `|` or the end.
    fn alternative(&mut self) -> Result<Vec<Item>, String> {
        let mut items = vec![];
        while let Some(c) = self.peek() {
            if c == '|' {
                break;
            }
            items.push(self.item()?);
        }
        Ok(items)
    }

    fn item(&mut self) -> Result<Item, String> {
        if self.starts_with(CONTRACTIONS) {
            self.i += CONTRACTIONS.chars().count();
            let (optional, possessive) = match self.quantifier()? {
                None => (false, false),
                Some((0, 1, possessive)) => (true, possessive),
                Some(_) => return Err("a quantifier other than ? on the contraction group".into()),
            };
            return Ok(Item::Contraction {
                optional,
                possessive,
            });
        }
        for (open, negative) in [("(?!", true), ("(?=", false)] {
            if self.starts_with(open) {
                self.i += 3;
                let set = self.set()?;
                if self.next() != Some(')') {
                    return Err("a look-ahead of more than one character".into());
                }
                return Ok(Item::Ahead { set, negative });
            }
        }
        let set = self.set()?;
        let (min, max, possessive) = self.quantifier()?.unwrap_or((1, 1, false));
        Ok(Item::Set {
            set,
            min,
            max,
            possessive,
        })
    }

    /// An optional quantifier: (min, max, possessive).
    fn quantifier(&mut self) -> Result<Option<(u32, u32, bool)>, String> {
        let (min, max) = match self.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, u32::MAX),
            Some('+') => (1, u32::MAX),
            Some('{') => return self.braces().map(Some),
            _ => return Ok(None),
        };
        self.i += 1;
        Ok(Some((min, max, self.possessive()?)))
    }

    /// `{n}`, `{n,}` or `{n,m}` (greedy).
    fn braces(&mut self) -> Result<(u32, u32, bool), String> {
        let close = self.s[self.i..]
            .iter()
            .position(|&c| c == '}')
            .ok_or("a { without }")?;
        let inner: String = self.s[self.i + 1..self.i + close].iter().collect();
        let num = |t: &str| {
            t.parse::<u32>()
                .map_err(|_| format!("the quantifier {{{inner}}}"))
        };
        let (min, max) = match inner.split_once(',') {
            None => (num(&inner)?, num(&inner)?),
            Some((a, "")) => (num(a)?, u32::MAX),
            Some((a, b)) => (num(a)?, num(b)?),
        };
        if min > max {
            return Err(format!("the quantifier {{{inner}}}"));
        }
        self.i += close + 1;
        // In Oniguruma's Ruby syntax `{n,m}+` is not possessive but a second quantifier, and
        // `{n,m}?` is lazy: both refused.
        if matches!(self.peek(), Some('+' | '?')) {
            return Err(format!("a quantifier after {{{inner}}}"));
        }
        Ok((min, max, false))
    }

    fn possessive(&mut self) -> Result<bool, String> {
        match self.peek() {
            Some('+') => {
                self.i += 1;
                Ok(true)
            }
            Some('?') => Err("a lazy quantifier".into()),
            _ => Ok(false),
        }
    }

    /// One character set outside brackets.
    fn set(&mut self) -> Result<Set, String> {
        match self.next() {
            None => Err("a pattern that ends where a character was expected".into()),
            Some('[') => self.class(),
            Some('\\') => Ok(Set::one(self.escape()?)),
            Some(c) if "()^$.*+?{}]|".contains(c) => Err(format!("{c:?} (outside the grammar)")),
            Some(c) => Ok(Set::one(Member::Range(c as u32, c as u32))),
        }
    }

    /// After `\`: a property, `\s`/`\S`, or a literal character (as a one-character range).
    fn escape(&mut self) -> Result<Member, String> {
        let c = self.next().ok_or("a pattern that ends with \\")?;
        let literal = |c: char| Ok(Member::Range(c as u32, c as u32));
        match c {
            's' => Ok(Member::Props(SPACE_BIT)),
            'S' => Ok(Member::NotProps(SPACE_BIT)),
            'r' => literal('\r'),
            'n' => literal('\n'),
            't' => literal('\t'),
            'p' | 'P' => {
                let bit = self.property()?;
                Ok(if c == 'p' {
                    Member::Props(bit)
                } else {
                    Member::NotProps(bit)
                })
            }
            'u' => {
                let hex: String = self
                    .s
                    .get(self.i..self.i + 4)
                    .unwrap_or(&[])
                    .iter()
                    .collect();
                let cp = u32::from_str_radix(&hex, 16).map_err(|_| "a \\u escape".to_string())?;
                self.i += 4;
                char::from_u32(cp).map_or(Err("a \\u escape".into()), literal)
            }
            c if c.is_ascii_punctuation() => literal(c),
            c => Err(format!("the escape \\{c}")),
        }
    }

    /// `{Name}` after `\p`: the property's bit.
    fn property(&mut self) -> Result<u16, String> {
        if self.next() != Some('{') {
            return Err("a \\p without braces".into());
        }
        let close = self.s[self.i..]
            .iter()
            .position(|&c| c == '}')
            .ok_or("a \\p{ without }")?;
        let name: String = self.s[self.i..self.i + close].iter().collect();
        self.i += close + 1;
        PROPERTIES
            .iter()
            .position(|(n, _)| *n == name && name != "Space")
            .map(|k| 1 << k)
            .ok_or_else(|| format!("the property \\p{{{name}}}"))
    }

    /// A bracket class, after `[`.
    fn class(&mut self) -> Result<Set, String> {
        let negated = self.peek() == Some('^');
        self.i += usize::from(negated);
        let mut members = vec![];
        loop {
            let member = match self.next() {
                None => return Err("a [ without ]".into()),
                Some(']') if !members.is_empty() => break,
                Some(']') => return Err("an empty class or a leading ]".into()),
                Some('[') => return Err("a nested class or POSIX bracket".into()),
                Some('&') if self.peek() == Some('&') => {
                    return Err("a class intersection &&".into())
                }
                Some('-') if !members.is_empty() && self.peek() != Some(']') => {
                    return Err("a - after a range or property in a class".into())
                }
                Some('\\') => self.escape()?,
                Some(c) => Member::Range(c as u32, c as u32),
            };
            members.push(self.range_from(member)?);
        }
        Ok(Set { members, negated })
    }

    /// `member` or, when `-` and a literal follow (not `]`), the range from it to that literal.
    fn range_from(&mut self, member: Member) -> Result<Member, String> {
        let Member::Range(lo, _) = member else {
            return Ok(member);
        };
        if self.peek() != Some('-') || matches!(self.s.get(self.i + 1), Some(']') | None) {
            return Ok(member);
        }
        self.i += 1;
        let hi = match self.next() {
            Some('\\') => self.escape()?,
            Some('[') => return Err("a nested class or POSIX bracket".into()),
            Some(c) => Member::Range(c as u32, c as u32),
            None => return Err("a [ without ]".into()),
        };
        match hi {
            Member::Range(hi, _) if hi >= lo => Ok(Member::Range(lo, hi)),
            _ => Err("a range whose end is not a character after its start".into()),
        }
    }
}
