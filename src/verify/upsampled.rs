//! The checks of an output made with `--upsample-long` (see [`crate::upsample`]).
//!
//! From the sidecar alone: short documents (fewer than TOKENS tokens) appear at most once and in
//! input order, each long one exactly FACTOR times, and each source's tokens are what the
//! manifest's `upsample` section says. With the input: every document of the stream is compared
//! with the input document its record names, by length and SHA-256 of its ids; the input
//! documents missing from the stream are short, and they add up to the manifest's dropped counts.
//! Memory holds the long documents' digests and the documents open across windows, not the input.

use super::reference::Reference;
use super::{InputCheck, Problem, Report};
use crate::output::reader::OutputReader;
use crate::record::DocRecord;
use crate::upsample::UpsampleReport;
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

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

/// Stream documents being re-assembled from the windows, and what has been matched.
struct Matcher<'a> {
    reference: Reference<'a>,
    pending: std::vec::IntoIter<(DocRecord, Vec<u32>)>,
    long_in: HashMap<Key, Digested>,
    long_out: HashMap<Key, Vec<Digested>>,
    dropped: Vec<u64>,
    min_tokens: u64,
}

impl Matcher<'_> {
    /// The input's next document, if any.
    fn next_input(&mut self) -> Result<Option<(DocRecord, Vec<u32>)>> {
        loop {
            if let Some(d) = self.pending.next() {
                return Ok(Some(d));
            }
            let batch = self.reference.next_batch()?;
            if batch.is_empty() {
                return Ok(None);
            }
            let docs: Vec<_> = batch.iter().map(|(d, ids)| (*d, ids.to_vec())).collect();
            self.pending = docs.into_iter();
        }
    }

    /// Advances the input past `until` (or to its end), keeping long digests and counting drops;
    /// returns the input document at `until` if it is there.
    fn advance(&mut self, until: Option<Key>) -> Result<Option<(DocRecord, Vec<u32>)>> {
        while let Some((d, ids)) = self.next_input()? {
            if d.tokens >= self.min_tokens {
                self.long_in.insert(key(&d), digest(&ids));
                continue;
            }
            if Some(key(&d)) == until {
                return Ok(Some((d, ids)));
            }
            if let Some(n) = self.dropped.get_mut(d.source as usize) {
                *n += d.tokens;
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
        dropped: vec![0; up.sources.len()],
        min_tokens: up.min_tokens,
    };
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
    compare_longs(&m, up, report, keep);
    for (s, (&got, src)) in m.dropped.iter().zip(&up.sources).enumerate() {
        if got != src.dropped_tokens {
            let what = format!("source {s}: {got} input tokens are in no window, the manifest says {} were dropped", src.dropped_tokens);
            report.add(Problem::general(what), keep);
        }
    }
    Ok(())
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
        Some((_, ids)) if digest(&ids) == got => {
            report.documents_compared += 1;
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
fn compare_longs(m: &Matcher, up: &UpsampleReport, report: &mut Report, keep: usize) {
    for (k, want) in &m.long_in {
        let copies = m.long_out.get(k).map_or(&[][..], Vec::as_slice);
        let equal = copies.iter().filter(|d| *d == want).count();
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
