//! Reads a window's structure back from its token ids alone, and unties its pieces.
//!
//! [`parse_window`] splits a window into chunks (label, knots, content, backtrace list) and fails
//! on anything the layout does not allow. [`untie`] re-assembles the pieces of a window from the
//! labels, knots and backtrace lists — without the provenance sidecar — which is possible whenever
//! backtracing is on. [`expected_mask`] is the loss-mask policy as a function of the structure.
//! `verify` and `inspect` are built on these.
//!
//! A CIP window has no markup: its chunks cannot be found from the ids, only from the provenance
//! spans. [`parse_spans`] reads such a window's layout from its spans and checks that they tile
//! it (nothing inserted, nothing between chunks) and that no markup token occurs.

use crate::tokenize::special::Role;
use crate::tokenize::SpecialTokens;
use std::collections::HashMap;
use std::ops::Range;

/// Role lookup by id.
pub struct Roles {
    pub ids: SpecialTokens,
    map: HashMap<u32, Role>,
    lo: u32,
    hi: u32,
}

impl Roles {
    pub fn new(ids: SpecialTokens) -> Roles {
        let map: HashMap<u32, Role> = ids
            .roles()
            .into_iter()
            .filter(|(r, _)| *r != Role::Eod)
            .map(|(r, i)| (i, r))
            .collect();
        let lo = map.keys().copied().min().unwrap_or(u32::MAX);
        let hi = map.keys().copied().max().unwrap_or(0);
        Roles { ids, map, lo, hi }
    }

    /// The structural role of `id` (EOD is content, so it has none here).
    #[inline]
    pub fn role(&self, id: u32) -> Option<Role> {
        if id < self.lo || id > self.hi {
            None
        } else {
            self.map.get(&id).copied()
        }
    }
}

/// One chunk as found in a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The whole extent: label, knots, content and any backtrace list that follows.
    pub extent: Range<usize>,
    /// Label tokens (between `<CL>` and `</CL>`), for a chunk of a split piece.
    pub label: Option<Range<usize>>,
    /// `H_b` before the content.
    pub head: Option<u32>,
    /// Content tokens (ending with EOD when `eod`).
    pub content: Range<usize>,
    pub eod: bool,
    /// `T_b` after the content.
    pub tail: Option<u32>,
    /// The label ranges of the backtrace list that follows this chunk.
    pub backtrace: Option<Vec<Range<usize>>>,
}

/// A window's chunks in placement order, and where its trailing pad starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedWindow {
    pub chunks: Vec<Chunk>,
    pub pad_from: Option<usize>,
}

/// A structural problem at a token offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flaw {
    pub offset: usize,
    pub what: String,
}

fn flaw<T>(offset: usize, what: impl Into<String>) -> Result<T, Flaw> {
    Err(Flaw {
        offset,
        what: what.into(),
    })
}

/// Parses a window's layout from its ids.
pub fn parse_window(t: &[u32], roles: &Roles) -> Result<ParsedWindow, Flaw> {
    let p = Parser { t, roles };
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let chunk = match roles.role(t[i]) {
            Some(Role::Pad) => {
                p.pad(i)?;
                return Ok(ParsedWindow {
                    chunks,
                    pad_from: Some(i),
                });
            }
            Some(Role::Cl) => p.split_chunk(i)?,
            Some(_) => return flaw(i, format!("unexpected {}", p.name(i))),
            None => p.unsplit_chunk(i)?,
        };
        i = chunk.extent.end;
        chunks.push(chunk);
    }
    Ok(ParsedWindow {
        chunks,
        pad_from: None,
    })
}

/// Parses a window without markup (CIP) from its chunks' `(start, len)` in window order: one
/// unlabelled chunk per span; the spans must follow each other from token 0 with no gap, hold no
/// markup token, and leave only a trailing pad run (or nothing) after them.
pub fn parse_spans(t: &[u32], spans: &[(u32, u32)], roles: &Roles) -> Result<ParsedWindow, Flaw> {
    let p = Parser { t, roles };
    let mut chunks = Vec::with_capacity(spans.len());
    let mut at = 0usize;
    for &(start, len) in spans {
        let (start, end) = (start as usize, start as usize + len as usize);
        if start != at || len == 0 || end > t.len() {
            return flaw(at.min(t.len().saturating_sub(1)), format!("chunk at {start}..{end} does not follow the previous one at {at} (a CIP window is its chunks back to back)"));
        }
        if let Some(i) = (start..end).find(|&i| roles.role(t[i]).is_some()) {
            return flaw(
                i,
                format!("{} inside a chunk of a window without markup", p.name(i)),
            );
        }
        let eod = t[end - 1] == roles.ids.eod;
        if let Some(i) = (start..end - 1).find(|&i| t[i] == roles.ids.eod) {
            return flaw(i, "EOD inside a chunk, before its end");
        }
        chunks.push(Chunk {
            extent: start..end,
            label: None,
            head: None,
            content: start..end,
            eod,
            tail: None,
            backtrace: None,
        });
        at = end;
    }
    let pad_from = match at < t.len() {
        true if t[at] == roles.ids.pad => {
            p.pad(at)?;
            Some(at)
        }
        true => return flaw(at, format!("{} after the last chunk", p.name(at))),
        false => None,
    };
    Ok(ParsedWindow { chunks, pad_from })
}

/// The window being parsed, with the reading steps of its grammar.
struct Parser<'a> {
    t: &'a [u32],
    roles: &'a Roles,
}

impl Parser<'_> {
    fn name(&self, i: usize) -> String {
        match i < self.t.len() {
            true => self
                .roles
                .role(self.t[i])
                .map_or_else(|| format!("token {}", self.t[i]), |r| r.display()),
            false => "window end".into(),
        }
    }

    /// The role at `i`, if `i` is inside the window.
    fn role_at(&self, i: usize) -> Option<Role> {
        self.t.get(i).and_then(|&x| self.roles.role(x))
    }

    /// Ordinary tokens from `i`, up to and including an EOD, stopping before any role: their
    /// end and whether the EOD ends them.
    fn content(&self, mut i: usize) -> (usize, bool) {
        while i < self.t.len() {
            if self.t[i] == self.roles.ids.eod {
                return (i + 1, true);
            }
            if self.roles.role(self.t[i]).is_some() {
                break;
            }
            i += 1;
        }
        (i, false)
    }

    /// The end of the ordinary tokens (a label) from `i`: the next role or EOD.
    fn label_end(&self, mut i: usize) -> usize {
        let t = self.t;
        while i < t.len() && t[i] != self.roles.ids.eod && self.roles.role(t[i]).is_none() {
            i += 1;
        }
        i
    }

    /// Pad from `i` must run to the window's end.
    fn pad(&self, i: usize) -> Result<(), Flaw> {
        match (i..self.t.len()).find(|&j| self.t[j] != self.roles.ids.pad) {
            Some(j) => flaw(
                j,
                format!("{} after padding: pad must be a trailing run", self.name(j)),
            ),
            None => Ok(()),
        }
    }

    /// A chunk of a split piece at `start` (its `<CL>`): label, head knot, content, tail knot
    /// and the backtrace list that may follow.
    fn split_chunk(&self, start: usize) -> Result<Chunk, Flaw> {
        let label = self.label(start)?;
        let mut i = label.end + 1;
        let head = match self.role_at(i) {
            Some(Role::Head(b)) => {
                i += 1;
                Some(b)
            }
            _ => None,
        };
        let (end, eod) = self.content(i);
        if end == i {
            return flaw(i, format!("chunk without content (found {})", self.name(i)));
        }
        let content = i..end;
        i = end;
        let tail = match self.role_at(i) {
            Some(Role::Tail(b)) if !eod => {
                i += 1;
                Some(b)
            }
            _ => None,
        };
        let backtrace = match self.t.get(i) == Some(&self.roles.ids.bt) {
            true => Some(self.backtrace(&mut i)?),
            false => None,
        };
        Ok(Chunk {
            extent: start..i,
            label: Some(label),
            head,
            content,
            eod,
            tail,
            backtrace,
        })
    }

    /// The label after the `<CL>` at `cl`, which `</CL>` must close.
    fn label(&self, cl: usize) -> Result<Range<usize>, Flaw> {
        let n = self.t.len();
        let end = self.label_end(cl + 1);
        if end == cl + 1 {
            return flaw(cl + 1, "empty chunk label");
        }
        if end >= n || self.t[end] != self.roles.ids.cl_end {
            let what = format!("chunk label not closed by </CL> (found {})", self.name(end));
            return flaw(end.min(n - 1), what);
        }
        Ok(cl + 1..end)
    }

    /// The labels of the backtrace list whose `<S>` is at `*i`; `*i` ends after its `</S>`.
    fn backtrace(&self, i: &mut usize) -> Result<Vec<Range<usize>>, Flaw> {
        let ids = &self.roles.ids;
        let mut labels = Vec::new();
        *i += 1;
        loop {
            let e = self.label_end(*i);
            if e == *i {
                return flaw(*i, "empty label in backtrace list");
            }
            labels.push(*i..e);
            match self.t.get(e) {
                Some(&x) if x == ids.bt_sep => *i = e + 1,
                Some(&x) if x == ids.bt_end => {
                    *i = e + 1;
                    return Ok(labels);
                }
                _ => return flaw(e.min(self.t.len() - 1), "backtrace list not closed by </S>"),
            }
        }
    }

    /// An unsplit piece at `i`: content up to its EOD, or to the pad or the window's end.
    fn unsplit_chunk(&self, i: usize) -> Result<Chunk, Flaw> {
        let (end, eod) = self.content(i);
        if !eod && end < self.t.len() && self.t[end] != self.roles.ids.pad {
            return flaw(end, format!("{} inside an unsplit piece", self.name(end)));
        }
        Ok(Chunk {
            extent: i..end,
            label: None,
            head: None,
            content: i..end,
            eod,
            tail: None,
            backtrace: None,
        })
    }
}

/// The loss mask the documented policy gives this structure (1 = training target).
pub fn expected_mask(p: &ParsedWindow, len: usize) -> Vec<u8> {
    let mut m = vec![0u8; len];
    for c in &p.chunks {
        m[c.content.clone()].iter_mut().for_each(|x| *x = 1);
        if let Some(bt) = &c.backtrace {
            // `<S>` is not a target; labels, `<s>` and `</S>` are.
            let first = bt[0].start;
            m[first..c.extent.end].iter_mut().for_each(|x| *x = 1);
        }
    }
    m
}

/// A piece re-assembled from a window: its chunks (indices into [`ParsedWindow::chunks`]) in
/// chunk order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untied {
    pub chunks: Vec<usize>,
    /// The piece has no EOD: it is cut by the window end.
    pub cut: bool,
}

/// Re-assembles every piece of a window from labels, knots and backtrace lists (backtracing on).
pub fn untie(p: &ParsedWindow, t: &[u32], preserve_order: bool) -> Result<Vec<Untied>, Flaw> {
    let mut by_label: HashMap<&[u32], usize> = HashMap::new();
    for (i, c) in p.chunks.iter().enumerate() {
        if let Some(l) = &c.label {
            if by_label.insert(&t[l.clone()], i).is_some() {
                return flaw(l.start, "chunk label used twice in the window");
            }
        }
    }
    let last = p.chunks.len().saturating_sub(1);
    let ends_window =
        |i: usize| i == last && p.pad_from.is_none() && p.chunks[i].extent.end == t.len();
    let mut owner: Vec<Option<usize>> = vec![None; p.chunks.len()];
    let mut pieces = Vec::new();
    for (i, c) in p.chunks.iter().enumerate() {
        if c.label.is_none() {
            if !c.eod && !ends_window(i) {
                return flaw(
                    c.content.end,
                    "unsplit piece without EOD that does not end the window",
                );
            }
            owner[i] = Some(pieces.len());
            pieces.push(Untied {
                chunks: vec![i],
                cut: !c.eod,
            });
            continue;
        }
        let Some(list) = &c.backtrace else { continue };
        let n = list.len();
        let members = claim(p, t, list, &by_label, &mut owner, pieces.len())?;
        if members.iter().max() != Some(&i) {
            return flaw(
                c.extent.start,
                "the backtrace list does not follow the piece's last-placed chunk",
            );
        }
        if preserve_order && members.windows(2).any(|w| w[0] > w[1]) {
            return flaw(c.extent.start, "chunks of a piece out of order");
        }
        let cut = !p.chunks[members[n - 1]].eod;
        if cut && !ends_window(i) {
            return flaw(c.extent.end, "piece without EOD does not end the window");
        }
        pieces.push(Untied {
            chunks: members,
            cut,
        });
    }
    if let Some(i) = owner.iter().position(Option::is_none) {
        return flaw(
            p.chunks[i].extent.start,
            "chunk of a split piece that no backtrace list names",
        );
    }
    if pieces.iter().filter(|x| x.cut).count() > 1 {
        return flaw(0, "more than one piece without EOD");
    }
    pieces.sort_by_key(|x| x.chunks.iter().copied().min());
    Ok(pieces)
}

/// The chunks a backtrace list names, in its order, each claimed for piece `piece` and checked
/// for the knots its place in the list implies.
fn claim(
    p: &ParsedWindow,
    t: &[u32],
    list: &[Range<usize>],
    by_label: &HashMap<&[u32], usize>,
    owner: &mut [Option<usize>],
    piece: usize,
) -> Result<Vec<usize>, Flaw> {
    let n = list.len();
    if n < 2 {
        return flaw(list[0].start, "backtrace list with fewer than two labels");
    }
    let mut members = Vec::with_capacity(n);
    for (k, l) in list.iter().enumerate() {
        let Some(&j) = by_label.get(&t[l.clone()]) else {
            return flaw(
                l.start,
                "backtrace names a label no chunk in the window has",
            );
        };
        if owner[j].is_some() {
            return flaw(l.start, "chunk claimed by two backtrace lists");
        }
        owner[j] = Some(piece);
        let ch = &p.chunks[j];
        let b = k as u32 + 1;
        let head_ok = match k {
            0 => ch.head.is_none(),
            _ => ch.head == Some(b - 1),
        };
        let tail_ok = match k + 1 == n {
            true => ch.tail.is_none(),
            false => ch.tail == Some(b) && !ch.eod,
        };
        if !head_ok || !tail_ok {
            return flaw(ch.content.start, format!("chunk {b} of {n}: knots {:?}/{:?} do not match its place in the backtrace list", ch.head, ch.tail));
        }
        members.push(j);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles::new(SpecialTokens {
            eod: 0,
            pad: 100,
            cl: 101,
            cl_end: 102,
            bt: 103,
            bt_sep: 104,
            bt_end: 105,
            tails: vec![106, 108],
            heads: vec![107, 109],
        })
    }

    // A split piece (labels 50 and 51,52) around an unsplit one, then a cut unsplit piece.
    const W: &[u32] = &[
        101, 50, 102, 7, 8, 106, // chunk 1: <CL> 50 </CL> 7 8 T1
        9, 0, // unsplit: 9 EOD
        101, 51, 52, 102, 107, 10, 0, 103, 50, 104, 51, 52,
        105, // chunk 2: H1 10 EOD <S> 50 <s> 51 52 </S>
        11, 12, // cut unsplit piece
    ];

    #[test]
    fn parses_unties_and_masks_a_window() {
        let r = roles();
        let p = parse_window(W, &r).unwrap();
        assert_eq!(p.chunks.len(), 4);
        assert_eq!(
            (p.chunks[0].tail, p.chunks[2].head, p.chunks[2].eod),
            (Some(1), Some(1), true)
        );
        let pieces = untie(&p, W, true).unwrap();
        assert_eq!(
            pieces,
            vec![
                Untied {
                    chunks: vec![0, 2],
                    cut: false
                },
                Untied {
                    chunks: vec![1],
                    cut: false
                },
                Untied {
                    chunks: vec![3],
                    cut: true
                }
            ]
        );
        let m = expected_mask(&p, W.len());
        assert_eq!(
            m,
            vec![0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]
        );
    }

    #[test]
    fn rejects_damaged_structure() {
        let r = roles();
        let mut swapped = W.to_vec();
        swapped.swap(5, 12); // T1 <-> H1
        assert!(
            parse_window(&swapped, &r).is_err()
                || untie(&parse_window(&swapped, &r).unwrap(), &swapped, true).is_err()
        );
        let mut relabeled = W.to_vec();
        relabeled[16] = 53; // backtrace names an unknown label
        assert!(untie(&parse_window(&relabeled, &r).unwrap(), &relabeled, true).is_err());
        let mut pad_inside = W.to_vec();
        pad_inside[7] = 100;
        assert!(parse_window(&pad_inside, &r).is_err());
        let mut unclosed = W.to_vec();
        unclosed[2] = 7;
        assert!(parse_window(&unclosed, &r).is_err());
    }
}
