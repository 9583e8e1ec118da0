//! The checks of an output made with `--upsample-long` (see [`crate::upsample`]).
//!
//! From the sidecar alone: short documents (fewer than TOKENS tokens) appear at most once and in
//! input order, each long one exactly FACTOR times, and each source's tokens are what the
//! manifest's `upsample` section says. With the input: every document of the stream is compared
//! with the input document its record names, by length and SHA-256 of its ids; the input
//! documents missing from the stream are short, and they add up to the manifest's dropped counts.
//! Memory holds the long documents' digests and the documents open across windows, not the input.
//!
//! Sources from a field (`field:FIELD`): the sidecar names input files, not sources, so without
//! the input only the total is checked (the records' tokens are the sum of every source's); with
//! the input, the field is read again from every input document, and each source's input,
//! dropped and written tokens are re-derived and compared with the manifest.

use super::reference::Reference;
use super::{InputCheck, Problem, Report};
use crate::input::key::key_path_of;
use crate::output::reader::OutputReader;
use crate::record::DocRecord;
use crate::setting::Setting;
use crate::upsample::UpsampleReport;
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

type Key = (u32, u64);
type Digested = [u8; 32];

fn key(d: &DocRecord) -> Key {
    (d.source, d.line)
}

fn digest(ids: &[u32]) -> Digested {
    let mut h = Sha256::new();
    ids.iter().for_each(|x| h.update(x.to_le_bytes()));
    h.finalize().into()
}

/// The sidecar's records against the manifest's `upsample` section.
pub(super) fn check_records(
    out: &OutputReader,
    up: &UpsampleReport,
    report: &mut Report,
    keep: usize,
) {
    let mut last_short: Option<Key> = None;
    let mut longs: HashMap<Key, u32> = HashMap::new();
    let mut tokens = vec![0u64; up.sources.len()];
    for (i, d) in out.docs().enumerate() {
        if let Some(t) = tokens.get_mut(d.source as usize) {
            *t += d.tokens;
        }
        if d.tokens >= up.min_tokens {
            *longs.entry(key(&d)).or_default() += 1;
        } else {
            if last_short.is_some_and(|k| k >= key(&d)) {
                let what = format!("document {i}: a short document repeated or out of input order (source {}, line {})", d.source, d.line);
                report.add(Problem::general(what), keep);
            }
            last_short = Some(key(&d));
        }
    }
    for ((s, l), n) in longs {
        if n != up.factor {
            let what = format!(
                "the long document at source {s} line {l} appears {n} times, not {}",
                up.factor
            );
            report.add(Problem::general(what), keep);
        }
    }
    if up.source_key().is_some() {
        // Records name files; the sources' split is checked against the input.
        let (got, want): (u64, u64) = (
            out.docs().map(|d| d.tokens).sum(),
            up.sources.iter().map(|s| s.output_tokens).sum(),
        );
        if got != want {
            let what = format!(
                "the output has {got} document tokens, the manifest's sources add up to {want}"
            );
            report.add(Problem::general(what), keep);
        }
        return;
    }
    for (s, (&got, src)) in tokens.iter().zip(&up.sources).enumerate() {
        if got != src.output_tokens {
            let what = format!(
                "source {s} has {got} tokens in the output, the manifest says {}",
                src.output_tokens
            );
            report.add(Problem::general(what), keep);
        }
    }
}

/// An input document: its record, ids and source field's value.
type InputDoc = (DocRecord, Vec<u32>, Option<String>);

/// Which of the manifest's sources an input document belongs to.
struct Sources {
    /// By (name, standing for documents without the field), with field sources; `None`: a
    /// document's source is its input file.
    by_name: Option<HashMap<(String, bool), usize>>,
    /// Field values (or files) the manifest does not list.
    unknown: BTreeSet<String>,
}

impl Sources {
    fn new(up: &UpsampleReport) -> Self {
        let by_name = up.source_key().map(|_| {
            let names = up.sources.iter().enumerate();
            names
                .map(|(i, s)| ((s.source.clone(), s.without_field), i))
                .collect()
        });
        Sources {
            by_name,
            unknown: BTreeSet::new(),
        }
    }

    /// The index in the manifest's sources of `d`, whose field value is `field` (`names`: the
    /// input files).
    fn of(&mut self, d: &DocRecord, field: Option<&str>, names: &[String]) -> Option<usize> {
        let Some(by_name) = &self.by_name else {
            return Some(d.source as usize);
        };
        let file = || names.get(d.source as usize).cloned().unwrap_or_default();
        let key = match field {
            Some(f) => (f.to_string(), false),
            None => (file(), true),
        };
        let found = by_name.get(&key).copied();
        if found.is_none() {
            self.unknown.insert(key.0);
        }
        found
    }
}

/// Tokens per source, re-derived from the input.
#[derive(Clone, Default)]
struct Totals {
    input: u64,
    dropped: u64,
    written: u64,
}

/// Stream documents being re-assembled from the windows, and what has been matched.
struct Matcher<'a> {
    reference: Reference<'a>,
    pending: std::vec::IntoIter<InputDoc>,
    /// Each long input document's digest, tokens and source.
    long_in: HashMap<Key, (Digested, u64, Option<usize>)>,
    long_out: HashMap<Key, Vec<Digested>>,
    sources: Sources,
    names: Vec<String>,
    totals: Vec<Totals>,
    min_tokens: u64,
}

impl Matcher<'_> {
    /// The input's next document, if any.
    fn next_input(&mut self) -> Result<Option<InputDoc>> {
        loop {
            if let Some(d) = self.pending.next() {
                return Ok(Some(d));
            }
            let batch = self.reference.next_batch()?;
            if batch.is_empty() {
                return Ok(None);
            }
            let docs: Vec<_> = batch
                .iter()
                .enumerate()
                .map(|(i, (d, ids))| (*d, ids.to_vec(), batch.field(i).map(str::to_string)))
                .collect();
            self.pending = docs.into_iter();
        }
    }

    /// The totals of source `s` (`None`, or one the manifest does not list: none).
    fn totals(&mut self, s: Option<usize>) -> Option<&mut Totals> {
        self.totals.get_mut(s?)
    }

    /// Advances the input past `until` (or to its end), keeping long digests and counting drops;
    /// returns the input document at `until` (its ids and source) if it is there.
    fn advance(&mut self, until: Option<Key>) -> Result<Option<(Vec<u32>, Option<usize>)>> {
        while let Some((d, ids, field)) = self.next_input()? {
            let s = self.sources.of(&d, field.as_deref(), &self.names);
            if let Some(t) = self.totals(s) {
                t.input += d.tokens;
            }
            if d.tokens >= self.min_tokens {
                self.long_in.insert(key(&d), (digest(&ids), d.tokens, s));
                continue;
            }
            if Some(key(&d)) == until {
                return Ok(Some((ids, s)));
            }
            if let Some(t) = self.totals(s) {
                t.dropped += d.tokens;
            }
            if until.is_some_and(|u| key(&d) > u) {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// With the input: every stream document equals the input document its record names.
pub(super) fn check_input(
    out: &OutputReader,
    input: &InputCheck,
    up: &UpsampleReport,
    report: &mut Report,
    keep: usize,
) -> Result<()> {
    let mut m = Matcher {
        reference: Reference::new(input),
        pending: Vec::new().into_iter(),
        long_in: HashMap::new(),
        long_out: HashMap::new(),
        sources: Sources::new(up),
        names: input.input.names(),
        totals: vec![Totals::default(); up.sources.len()],
        min_tokens: up.min_tokens,
    };
    if let Some(k) = up.source_key() {
        m.reference
            .read_field(key_path_of(k, Setting::UpsampleSourceKey)?);
    }
    let mut open: HashMap<u64, (Sha256, u64)> = HashMap::new();
    let mut spans = out.spans().peekable();
    while let Some(first) = spans.peek().copied() {
        // One window's spans, each document's chunks in chunk order.
        let mut mine = Vec::new();
        while let Some(s) = spans.next_if(|s| s.window == first.window) {
            mine.push(s);
        }
        mine.sort_by_key(|s| (s.doc, s.chunk));
        let tokens = out.window_tokens(first.window);
        for s in mine {
            let Some(rec) = out.doc(s.doc as usize) else {
                continue;
            };
            let (h, n) = open.entry(s.doc).or_insert_with(|| (Sha256::new(), 0));
            tokens[s.start as usize..(s.start + s.len) as usize]
                .iter()
                .for_each(|x| h.update(x.to_le_bytes()));
            *n += s.len as u64;
            if *n >= rec.tokens {
                let (h, _) = open.remove(&s.doc).expect("open");
                finished(&mut m, s.doc, &rec, h.finalize().into(), report, keep)?;
            }
        }
    }
    m.advance(None)?;
    compare_longs(&mut m, up, report, keep);
    compare_totals(&m, up, report, keep);
    Ok(())
}

/// Each source's tokens re-derived from the input against the manifest's: the dropped ones, and
/// with field sources also the input and written ones (the sidecar could not tell those).
fn compare_totals(m: &Matcher, up: &UpsampleReport, report: &mut Report, keep: usize) {
    let field = up.source_key().is_some();
    for (s, (got, src)) in m.totals.iter().zip(&up.sources).enumerate() {
        let name = match field {
            true => format!("source {s} ({:?})", src.source),
            false => format!("source {s}"),
        };
        if got.dropped != src.dropped_tokens {
            let what = format!(
                "{name}: {} input tokens are in no window, the manifest says {} were dropped",
                got.dropped, src.dropped_tokens
            );
            report.add(Problem::general(what), keep);
        }
        if field && (got.input, got.written) != (src.input_tokens, src.output_tokens) {
            let what = format!("{name}: the input has {} tokens of it and the output {}, the manifest says {} and {}", got.input, got.written, src.input_tokens, src.output_tokens);
            report.add(Problem::general(what), keep);
        }
    }
    if !m.sources.unknown.is_empty() {
        let names: Vec<&String> = m.sources.unknown.iter().take(5).collect();
        let what = format!("input documents of sources the manifest does not list: {names:?}");
        report.add(Problem::general(what), keep);
    }
}

/// A stream document re-assembled: long ones are kept for the end, short ones matched now.
fn finished(
    m: &mut Matcher,
    doc: u64,
    rec: &DocRecord,
    got: Digested,
    report: &mut Report,
    keep: usize,
) -> Result<()> {
    if rec.tokens >= m.min_tokens {
        m.long_out.entry(key(rec)).or_default().push(got);
        return Ok(());
    }
    let what = match m.advance(Some(key(rec)))? {
        Some((ids, s)) if digest(&ids) == got => {
            report.documents_compared += 1;
            if let Some(t) = m.totals(s) {
                t.written += rec.tokens;
            }
            return Ok(());
        }
        Some(_) => "its tokens differ from the input's",
        None => "the input has no short document there (or not in this order)",
    };
    let what = format!(
        "document {doc} (source {}, line {}): {what}",
        rec.source, rec.line
    );
    report.add(Problem::general(what), keep);
    Ok(())
}

/// Each long input document appears `factor` times, every copy equal to it.
fn compare_longs(m: &mut Matcher, up: &UpsampleReport, report: &mut Report, keep: usize) {
    for (k, (want, tokens, s)) in &m.long_in {
        let copies = m.long_out.get(k).map_or(&[][..], Vec::as_slice);
        let equal = copies.iter().filter(|d| *d == want).count();
        if let Some(t) = s.and_then(|s| m.totals.get_mut(s)) {
            t.written += tokens * equal as u64;
        }
        if equal != up.factor as usize || copies.len() != equal {
            let what = format!("the long document at source {} line {}: {equal} of {} copies equal the input, expected {}", k.0, k.1, copies.len(), up.factor);
            report.add(Problem::general(what), keep);
        } else {
            report.documents_compared += equal as u64;
        }
    }
    for k in m.long_out.keys().filter(|k| !m.long_in.contains_key(k)) {
        let what = format!(
            "a long document at source {} line {} is not in the input",
            k.0, k.1
        );
        report.add(Problem::general(what), keep);
    }
}
