//! `verify`: prove an output against its manifest, its own structure, its provenance sidecar and,
//! optionally, its input.
//!
//! Per window, in parallel ([`window`]): the layout, labels, knots, backtrace lists, chunk order,
//! padding and loss mask, and the chunks against their provenance spans. Across windows, in order
//! (here): every document's pieces continue exactly where the previous one stopped, and end with
//! EOD only at the document's end. With the input ([`reference`]), every document is re-read and
//! compared token by token with what the windows hold. With `doc_lens` files, each window's
//! segment lengths are those of its chunks and pad.

mod checksums;
mod reference;
mod upsampled;
mod window;

pub use checksums::{check_files, FileSums};
pub use reference::{InputCheck, Retokenize};

use crate::config::{Method, Tail};
use crate::output::doc_lens::DocLens;
use crate::output::reader::OutputReader;
use crate::tokenize::SpecialTokens;
use crate::untie::Roles;
use anyhow::Result;
use indicatif::ProgressBar;
use rayon::prelude::*;
use reference::Reference;
use std::collections::HashMap;
use window::{check_doc_lens, check_window, problem, PieceInfo, WindowResult};

/// Windows checked in parallel per step.
const GROUP: usize = 16;

/// One thing found wrong.
#[derive(Clone, Debug)]
pub struct Problem {
    pub window: Option<u64>,
    pub offset: Option<usize>,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match (self.window, self.offset) {
            (Some(w), Some(o)) => write!(f, "window {w}, token {o}: {}", self.what),
            (Some(w), None) => write!(f, "window {w}: {}", self.what),
            _ => write!(f, "{}", self.what),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub windows: u64,
    pub pieces: u64,
    pub untied_from_tokens: bool,
    pub documents_complete: u64,
    pub documents_compared: u64,
    /// The output has `doc_lens` files, checked window by window.
    pub doc_lens: bool,
    /// The first problems, in order found.
    pub problems: Vec<Problem>,
    pub problem_count: u64,
    /// The checksums of the files ([`check_files`]), checked before anything else.
    pub files: FileSums,
}

impl Problem {
    /// A problem of the whole output, not of one window.
    pub fn general(what: impl Into<String>) -> Problem {
        Problem {
            window: None,
            offset: None,
            what: what.into(),
        }
    }
}

impl Report {
    /// Puts the checksum results first: their problems come before those found after them.
    pub fn with_files(mut self, files: FileSums, keep: usize) -> Report {
        let mut all = Report::default();
        for p in files
            .problems
            .iter()
            .cloned()
            .chain(self.problems.drain(..))
        {
            all.add(p, keep);
        }
        self.problem_count += files.problems.len() as u64;
        self.problems = all.problems;
        self.files = files;
        self
    }

    fn add(&mut self, p: Problem, keep: usize) {
        self.problem_count += 1;
        if self.problems.len() < keep {
            self.problems.push(p);
        }
    }
}

/// Runs every check; problems are reported, not returned as errors (errors are for I/O).
pub fn verify(
    out: &OutputReader,
    input: Option<&InputCheck>,
    keep: usize,
    bar: &ProgressBar,
) -> Result<Report> {
    let m = &out.manifest;
    let roles = Roles::new(SpecialTokens::from_map(&m.special_tokens)?);
    // CIP has no markup: its pieces are grouped by the sidecar.
    let untie_tokens = match m.config.method {
        Method::Utk => m.config.backtrace,
        Method::Plain => true,
        Method::Cip => false,
    };
    let mut report = Report {
        windows: out.windows(),
        untied_from_tokens: untie_tokens,
        ..Report::default()
    };
    let Some(bounds) = span_bounds(out, &mut report, keep) else {
        return Ok(report);
    };
    let mut docs = Documents {
        out,
        // Upsampled outputs are compared with the input by `upsampled`, not in stream order.
        reference: input.filter(|_| m.upsample.is_none()).map(Reference::new),
        next: HashMap::new(),
        complete: vec![false; out.doc_count()],
        keep,
    };
    let doc_lens = DocLens::open(&out.dir, m)?;
    report.doc_lens = doc_lens.is_some();
    let windows: Vec<u64> = (0..out.windows()).collect();
    for group in windows.chunks(GROUP) {
        let results: Vec<WindowResult> = group
            .par_iter()
            .map(|&w| {
                let spans = out.spans_in(bounds[w as usize]..bounds[w as usize + 1]);
                let mut r = check_window(out, &roles, w, &spans, untie_tokens);
                if let Some(d) = &doc_lens {
                    r.problems.extend(check_doc_lens(d, w, &spans, m.seq_len));
                }
                r
            })
            .collect();
        for (&w, r) in group.iter().zip(results) {
            for p in r.problems {
                report.add(p, keep);
            }
            docs.check_window_pieces(w, r.pieces, &mut report)?;
        }
        if let Some(&last) = group.last() {
            out.release_windows_before(last + 1);
        }
        bar.inc(group.len() as u64);
    }
    docs.check_all_complete(&mut report);
    docs.check_input_ends(&mut report)?;
    if let Some(up) = &m.upsample {
        upsampled::check_records(out, up, &mut report, keep);
        if let Some(input) = input {
            upsampled::check_input(out, input, up, &mut report, keep)?;
        }
    }
    Ok(report)
}

/// Where each window's spans start in the sidecar (spans are stored window by window), or
/// `None` after reporting that they are out of order.
fn span_bounds(out: &OutputReader, report: &mut Report, keep: usize) -> Option<Vec<usize>> {
    let mut bounds = vec![0usize; out.windows() as usize + 1];
    let mut previous = 0;
    for (i, s) in out.spans().enumerate() {
        if s.window >= out.windows() || s.window < previous {
            let what = format!(
                "provenance record {i} is out of order or names a window that does not exist"
            );
            report.add(
                Problem {
                    window: Some(s.window),
                    offset: None,
                    what,
                },
                keep,
            );
            return None;
        }
        previous = s.window;
        bounds[s.window as usize + 1] = i + 1;
    }
    for w in 1..bounds.len() {
        bounds[w] = bounds[w].max(bounds[w - 1]);
    }
    Some(bounds)
}

/// The checks across windows: where each started document continues, which are complete, and
/// (with the input) what each document's tokens must be.
struct Documents<'a> {
    out: &'a OutputReader,
    reference: Option<Reference<'a>>,
    next: HashMap<u64, u64>,
    complete: Vec<bool>,
    keep: usize,
}

impl Documents<'_> {
    fn check_window_pieces(
        &mut self,
        w: u64,
        pieces: Vec<PieceInfo>,
        report: &mut Report,
    ) -> Result<()> {
        let tokens = match self.reference {
            Some(_) => self.out.window_tokens(w),
            None => Vec::new(),
        };
        for piece in pieces {
            report.pieces += 1;
            self.check_piece(w, &piece, &tokens, report)?;
        }
        Ok(())
    }

    /// The piece continues its document where the last one stopped, ends with EOD exactly at the
    /// document's end, and (with the input) holds the input's tokens.
    fn check_piece(
        &mut self,
        w: u64,
        piece: &PieceInfo,
        tokens: &[u32],
        report: &mut Report,
    ) -> Result<()> {
        let keep = self.keep;
        let at = Some(piece.spans[0].0 as usize);
        let Some(rec) = self.out.doc(piece.doc as usize) else {
            let what = format!(
                "piece of document {} which the sidecar does not list",
                piece.doc
            );
            report.add(problem(w, None, what), keep);
            return Ok(());
        };
        let expected = self.next.get(&piece.doc).copied().unwrap_or(0);
        if piece.doc_offset != expected {
            let what = format!(
                "document {} continues at token {}, expected {expected} (tokens lost or repeated)",
                piece.doc, piece.doc_offset
            );
            report.add(problem(w, at, what), keep);
        }
        let end = piece.doc_offset + piece.len;
        if piece.eod != (end == rec.tokens) {
            let what = format!(
                "document {}: piece ending at token {end} of {} {} EOD",
                piece.doc,
                rec.tokens,
                if piece.eod { "ends with" } else { "lacks" }
            );
            report.add(problem(w, at, what), keep);
        }
        self.compare(w, piece, tokens, report)?;
        if end >= rec.tokens {
            self.finish_doc(piece.doc, report);
        } else {
            self.next.insert(piece.doc, end);
        }
        Ok(())
    }

    /// With the input: the piece's chunks hold the input document's tokens at its offset.
    fn compare(
        &mut self,
        w: u64,
        piece: &PieceInfo,
        tokens: &[u32],
        report: &mut Report,
    ) -> Result<()> {
        let Some(refs) = self.reference.as_mut() else {
            return Ok(());
        };
        refs.load_through(piece.doc, self.out, report, self.keep)?;
        let Some(doc) = refs.docs.get(&piece.doc) else {
            let what = format!("document {} is not in the input", piece.doc);
            report.add(problem(w, None, what), self.keep);
            return Ok(());
        };
        let mut at = piece.doc_offset as usize;
        for &(start, len) in &piece.spans {
            let got = &tokens[start as usize..(start + len) as usize];
            let want = doc.get(at..at + len as usize).unwrap_or(&[]);
            if got != want {
                let k = got
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                let what = format!(
                    "document {} token {}: found {:?}, the input gives {:?}",
                    piece.doc,
                    at + k,
                    got.get(k),
                    want.get(k)
                );
                report.add(problem(w, Some(start as usize + k), what), self.keep);
                break;
            }
            at += len as usize;
        }
        Ok(())
    }

    /// The document's last piece was seen: it is complete, and its input copy is released.
    fn finish_doc(&mut self, doc: u64, report: &mut Report) {
        self.next.remove(&doc);
        self.complete[doc as usize] = true;
        report.documents_complete += 1;
        if let Some(refs) = self.reference.as_mut() {
            if refs.docs.remove(&doc).is_some() {
                report.documents_compared += 1;
            }
        }
    }

    /// Every document complete, except what `--tail drop` dropped at the very end.
    fn check_all_complete(&self, report: &mut Report) {
        let m = &self.out.manifest;
        let missing: u64 = self
            .out
            .docs()
            .enumerate()
            .filter(|(d, _)| !self.complete[*d])
            .map(|(d, rec)| rec.tokens - self.next.get(&(d as u64)).copied().unwrap_or(0))
            .sum();
        let allowed = if m.config.tail == Tail::Drop {
            m.counts.dropped_tokens
        } else {
            0
        };
        if missing != allowed {
            let what = format!("{missing} document tokens are in no window (expected {allowed})");
            report.add(Problem::general(what), self.keep);
        }
    }

    /// With the input: it has no documents beyond the output's.
    fn check_input_ends(&mut self, report: &mut Report) -> Result<()> {
        let Some(refs) = self.reference.as_mut() else {
            return Ok(());
        };
        refs.load_through(u64::MAX - 1, self.out, report, self.keep)?;
        let count = self.out.doc_count() as u64;
        if refs.loaded != count {
            let what = format!(
                "the input has {} documents, the output {}",
                refs.loaded, count
            );
            report.add(Problem::general(what), self.keep);
        }
        Ok(())
    }
}
