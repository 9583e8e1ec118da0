//! The checks of one window, which need nothing but that window: its layout parses, labels are
//! unique, knots pair up, backtrace lists name their piece's labels in chunk order, chunk order
//! is as configured, pad is a trailing run of the last window only (of each part, in a merged
//! output), the loss mask equals the documented policy token by token, and its chunks match its
//! provenance spans. Its chunks are grouped into pieces from the tokens alone when backtracing is
//! on (else by the sidecar).

use super::Problem;
use crate::augment::Span;
use crate::config::{Method, Order};
use crate::output::doc_lens::{segments, DocLens};
use crate::output::reader::OutputReader;
use crate::untie::{expected_mask, parse_spans, parse_window, untie, ParsedWindow, Roles};

/// A piece as the sidecar and structure agree it is.
pub(super) struct PieceInfo {
    pub doc: u64,
    pub doc_offset: u64,
    pub len: u64,
    pub eod: bool,
    /// (window content start, len) of each chunk, in chunk order.
    pub spans: Vec<(u32, u32)>,
}

#[derive(Default)]
pub(super) struct WindowResult {
    pub problems: Vec<Problem>,
    pub pieces: Vec<PieceInfo>,
}

pub(super) fn problem(w: u64, offset: Option<usize>, what: impl Into<String>) -> Problem {
    Problem {
        window: Some(w),
        offset,
        what: what.into(),
    }
}

/// Checks window `w` against its structure, mask policy and sidecar `spans`.
pub(super) fn check_window(
    out: &OutputReader,
    roles: &Roles,
    w: u64,
    spans: &[Span],
    untie_tokens: bool,
) -> WindowResult {
    let t = out.window_tokens(w);
    let mut result = WindowResult::default();
    let method = out.manifest.config.method;
    let parsed = match method {
        // No markup: the chunks are the sidecar's, which must tile the window.
        Method::Cip => {
            let chunks: Vec<(u32, u32)> = spans.iter().map(|s| (s.start, s.len)).collect();
            parse_spans(&t, &chunks, roles)
        }
        Method::Utk | Method::Plain => parse_window(&t, roles),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(f) => {
            result.problems.push(problem(w, Some(f.offset), f.what));
            return result;
        }
    };
    if parsed.pad_from.is_some() && !out.ends_part(w) {
        let p = problem(w, parsed.pad_from, "padding outside the last window");
        result.problems.push(p);
    }
    result
        .problems
        .extend(check_mask(&parsed, out.window_mask(w), w));
    match check_spans(&parsed, spans, w, method) {
        Ok(p) => result.problems.extend(p),
        Err(p) => {
            result.problems.extend(p);
            return result;
        }
    }
    match group_pieces(
        &parsed,
        &t,
        spans,
        w,
        untie_tokens,
        out.manifest.config.order,
    ) {
        Ok(groups) => {
            for g in groups {
                result
                    .pieces
                    .push(piece(&parsed, spans, &g, w, &mut result.problems));
            }
        }
        Err(p) => result.problems.push(p),
    }
    result
}

/// The mask must be the policy's, byte for byte.
fn check_mask(parsed: &ParsedWindow, mask: &[u8], w: u64) -> Option<Problem> {
    let expect = expected_mask(parsed, mask.len());
    let wrong: Vec<usize> = (0..mask.len()).filter(|&i| expect[i] != mask[i]).collect();
    let &i = wrong.first()?;
    Some(problem(
        w,
        Some(i),
        format!(
            "loss mask is {}, the policy says {} ({} wrong mask bytes in this window)",
            mask[i],
            expect[i],
            wrong.len()
        ),
    ))
}

/// Each chunk of the tokens must be the sidecar's span, with the knots its place implies. The
/// problems found are the error when the window cannot be checked further.
fn check_spans(
    parsed: &ParsedWindow,
    spans: &[Span],
    w: u64,
    method: Method,
) -> Result<Vec<Problem>, Vec<Problem>> {
    if parsed.chunks.len() != spans.len() {
        let what = format!(
            "{} chunks in the tokens, {} in the provenance sidecar",
            parsed.chunks.len(),
            spans.len()
        );
        return Err(vec![problem(w, None, what)]);
    }
    let mut problems = Vec::new();
    for (c, s) in parsed.chunks.iter().zip(spans) {
        let range = s.start as usize..(s.start + s.len) as usize;
        let split = s.chunks >= 2;
        let marked = split && method == Method::Utk;
        let knots_ok = !marked
            || (c.head == (s.chunk > 1).then(|| s.chunk as u32 - 1)
                && c.tail == (s.chunk < s.chunks).then_some(s.chunk as u32));
        if c.content != range || c.label.is_some() != marked || !knots_ok {
            let what = format!(
                "chunk {:?} does not match its provenance span {s:?}",
                c.content
            );
            problems.push(problem(w, Some(c.content.start), what));
            return Err(problems);
        }
        if split && method == Method::Plain {
            problems.push(problem(
                w,
                Some(c.content.start),
                "a split chunk in plain packing",
            ));
        }
    }
    Ok(problems)
}

/// The window's chunks grouped into pieces (indexes into `spans`, in chunk order): from the
/// tokens alone when possible, else by the sidecar's document numbers.
fn group_pieces(
    parsed: &ParsedWindow,
    t: &[u32],
    spans: &[Span],
    w: u64,
    untie_tokens: bool,
    order: Order,
) -> Result<Vec<Vec<usize>>, Problem> {
    if untie_tokens {
        return match untie(parsed, t, order == Order::Preserve) {
            Ok(pieces) => Ok(pieces.into_iter().map(|p| p.chunks).collect()),
            Err(f) => Err(problem(w, Some(f.offset), f.what)),
        };
    }
    let mut by_doc: Vec<(u64, Vec<usize>)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match by_doc.iter_mut().find(|(d, _)| *d == s.doc) {
            Some((_, v)) => v.push(i),
            None => by_doc.push((s.doc, vec![i])),
        }
    }
    Ok(by_doc
        .into_iter()
        .map(|(_, mut v)| {
            if order == Order::Shuffle {
                v.sort_by_key(|&i| spans[i].chunk);
            }
            v
        })
        .collect())
}

/// One piece from its chunks' spans, which must continue each other inside one document.
fn piece(
    parsed: &ParsedWindow,
    spans: &[Span],
    group: &[usize],
    w: u64,
    problems: &mut Vec<Problem>,
) -> PieceInfo {
    let first = spans[group[0]];
    let mut at = first.doc_offset;
    for (k, &i) in group.iter().enumerate() {
        let s = spans[i];
        if s.doc != first.doc
            || s.chunk as usize != k + 1
            || s.chunks as usize != group.len()
            || s.doc_offset != at
        {
            let what = format!(
                "piece of document {} does not re-assemble: chunk {k} is {s:?}",
                first.doc
            );
            problems.push(problem(w, Some(s.start as usize), what));
            break;
        }
        at += s.len as u64;
    }
    let last = &parsed.chunks[*group.last().expect("non-empty")];
    PieceInfo {
        doc: first.doc,
        doc_offset: first.doc_offset,
        len: at - first.doc_offset,
        eod: last.eod,
        spans: group
            .iter()
            .map(|&i| (spans[i].start, spans[i].len))
            .collect(),
    }
}

/// The window's `doc_lens` sequence must be its chunks' lengths and its pad's, in order.
pub(super) fn check_doc_lens(
    d: &DocLens,
    w: u64,
    spans: &[Span],
    seq_len: usize,
) -> Option<Problem> {
    let want: Vec<i64> = segments(spans, seq_len)
        .into_iter()
        .map(i64::from)
        .collect();
    let got = d.window(w);
    if got == want {
        return None;
    }
    let k = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    let what = format!(
        "doc_lens segment {k} is {:?}, the window's chunks give {:?} ({} segments written, {} expected)",
        got.get(k),
        want.get(k),
        got.len(),
        want.len()
    );
    Some(problem(w, None, what))
}
