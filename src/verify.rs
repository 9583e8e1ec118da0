//! `verify`: prove an output against its manifest, its own structure, its provenance sidecar and,
//! optionally, its input.
//!
//! Per window (in parallel): the layout parses, labels are unique, knots pair up, backtrace lists
//! name their piece's labels in chunk order, chunk order is as configured, pad is a trailing run of
//! the last window only, and the loss mask equals the documented policy token by token. Pieces are
//! untied from the tokens alone (labels, knots, backtrace lists) when backtracing is on, and
//! compared with the sidecar. Across windows (in order): every document's pieces continue exactly
//! where the previous one stopped, and end with EOD only at the document's end. With the input,
//! every document is re-read (text re-tokenized; token shards read as augment reads them) and
//! compared token by token with what the windows hold.

use crate::augment::Span;
use crate::config::{Method, Order, Tail};
use crate::input::shards::{OpenShard, Shard, ShardDocs};
use crate::input::{DocumentReader, Source};
use crate::output::reader::OutputReader;
use crate::tokenize::{Encoder, SpecialTokens};
use crate::untie::{expected_mask, parse_window, untie, Roles};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Windows checked in parallel per step.
const GROUP: usize = 16;
/// Text re-tokenized per step with `--input`.
const BATCH_BYTES: usize = 8 << 20;
/// Token ids read from shards per step with `--input`.
const BATCH_TOKENS: usize = 4 << 20;

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
    /// The first problems, in order found.
    pub problems: Vec<Problem>,
    pub problem_count: u64,
}

impl Report {
    fn add(&mut self, p: Problem, keep: usize) {
        self.problem_count += 1;
        if self.problems.len() < keep {
            self.problems.push(p);
        }
    }
}

/// The input to compare against, read as the manifest says augment read it.
pub struct InputCheck {
    /// The manifest's tokenizer, with its EOD (text is re-tokenized with it; shard ids are
    /// checked against its vocabulary).
    pub encoder: Encoder,
    pub docs: InputDocs,
}

/// Where the input's documents come from.
pub enum InputDocs {
    /// JSONL text, re-tokenized.
    Text {
        sources: Vec<Source>,
        text_key: String,
        skip_bad_lines: bool,
    },
    /// Token shards, read with augment's EOD rule and id check; provenance `line` is the
    /// document's index in its shard.
    Shards(Vec<Shard>),
}

impl InputCheck {
    /// Whether the input is token shards (read, not re-tokenized).
    pub fn is_shards(&self) -> bool {
        matches!(self.docs, InputDocs::Shards(_))
    }
}

/// A piece as the sidecar and structure agree it is.
struct PieceInfo {
    doc: u64,
    doc_offset: u64,
    len: u64,
    eod: bool,
    /// (window content start, len) of each chunk, in chunk order.
    spans: Vec<(u32, u32)>,
}

struct WindowResult {
    problems: Vec<Problem>,
    pieces: Vec<PieceInfo>,
}

fn problem(w: u64, offset: Option<usize>, what: impl Into<String>) -> Problem {
    Problem {
        window: Some(w),
        offset,
        what: what.into(),
    }
}

/// Checks one window against its structure, mask policy and sidecar spans.
fn check_window(
    out: &OutputReader,
    roles: &Roles,
    w: u64,
    spans: &[Span],
    untie_tokens: bool,
) -> WindowResult {
    let cfg = &out.manifest.config;
    let t = out.window_tokens(w);
    let mask = out.window_mask(w);
    let mut problems = Vec::new();
    let parsed = match parse_window(&t, roles) {
        Ok(p) => p,
        Err(f) => {
            problems.push(problem(w, Some(f.offset), f.what));
            return WindowResult {
                problems,
                pieces: Vec::new(),
            };
        }
    };
    if parsed.pad_from.is_some() && w + 1 != out.windows() {
        problems.push(problem(
            w,
            parsed.pad_from,
            "padding outside the last window",
        ));
    }
    let expect = expected_mask(&parsed, t.len());
    let wrong: Vec<usize> = (0..t.len()).filter(|&i| expect[i] != mask[i]).collect();
    if let Some(&i) = wrong.first() {
        problems.push(problem(
            w,
            Some(i),
            format!(
                "loss mask is {}, the policy says {} ({} wrong mask bytes in this window)",
                mask[i],
                expect[i],
                wrong.len()
            ),
        ));
    }
    if parsed.chunks.len() != spans.len() {
        problems.push(problem(
            w,
            None,
            format!(
                "{} chunks in the tokens, {} in the provenance sidecar",
                parsed.chunks.len(),
                spans.len()
            ),
        ));
        return WindowResult {
            problems,
            pieces: Vec::new(),
        };
    }
    for (c, s) in parsed.chunks.iter().zip(spans) {
        let range = s.start as usize..(s.start + s.len) as usize;
        let split = s.chunks >= 2;
        let knots_ok = !split
            || (c.head == (s.chunk > 1).then(|| s.chunk as u32 - 1)
                && c.tail == (s.chunk < s.chunks).then_some(s.chunk as u32));
        if c.content != range || c.label.is_some() != split || !knots_ok {
            problems.push(problem(
                w,
                Some(c.content.start),
                format!(
                    "chunk {:?} does not match its provenance span {s:?}",
                    c.content
                ),
            ));
            return WindowResult {
                problems,
                pieces: Vec::new(),
            };
        }
        if split && cfg.method == Method::Plain {
            problems.push(problem(
                w,
                Some(c.content.start),
                "a split chunk in plain packing",
            ));
        }
    }
    // Group chunks into pieces: from the tokens alone when possible, else by the sidecar.
    let groups: Vec<Vec<usize>> = if untie_tokens {
        match untie(&parsed, &t, cfg.order == Order::Preserve) {
            Ok(pieces) => pieces.into_iter().map(|p| p.chunks).collect(),
            Err(f) => {
                problems.push(problem(w, Some(f.offset), f.what));
                return WindowResult {
                    problems,
                    pieces: Vec::new(),
                };
            }
        }
    } else {
        let mut by_doc: Vec<(u64, Vec<usize>)> = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match by_doc.iter_mut().find(|(d, _)| *d == s.doc) {
                Some((_, v)) => v.push(i),
                None => by_doc.push((s.doc, vec![i])),
            }
        }
        by_doc
            .into_iter()
            .map(|(_, mut v)| {
                if cfg.order == Order::Shuffle {
                    v.sort_by_key(|&i| spans[i].chunk);
                }
                v
            })
            .collect()
    };
    let mut pieces = Vec::with_capacity(groups.len());
    for g in groups {
        let first = spans[g[0]];
        let mut at = first.doc_offset;
        for (k, &i) in g.iter().enumerate() {
            let s = spans[i];
            if s.doc != first.doc
                || s.chunk as usize != k + 1
                || s.chunks as usize != g.len()
                || s.doc_offset != at
            {
                problems.push(problem(
                    w,
                    Some(s.start as usize),
                    format!(
                        "piece of document {} does not re-assemble: chunk {k} is {s:?}",
                        first.doc
                    ),
                ));
                break;
            }
            at += s.len as u64;
        }
        let last = &parsed.chunks[*g.last().expect("non-empty")];
        pieces.push(PieceInfo {
            doc: first.doc,
            doc_offset: first.doc_offset,
            len: at - first.doc_offset,
            eod: last.eod,
            spans: g.iter().map(|&i| (spans[i].start, spans[i].len)).collect(),
        });
    }
    WindowResult { problems, pieces }
}

/// An input document: its origin (as the sidecar records it) and its ids, EOD last.
struct InputDoc {
    source: u32,
    line: u64,
    ids: Vec<u32>,
}

/// The input's documents in order, a batch at a time.
enum DocSource<'a> {
    Text {
        reader: DocumentReader,
        sources: &'a [Source],
    },
    Shards(ShardCursor<'a>),
}

/// The documents of several shards in order, each shard opened (mapped, its index read) only
/// when reached and released when done.
struct ShardCursor<'a> {
    shards: &'a [Shard],
    eod: u32,
    max_id: u32,
    /// The shard being read and its index in `shards`.
    current: Option<(u32, ShardDocs<'static>)>,
    next_shard: usize,
}

impl ShardCursor<'_> {
    /// The next document, or `None` after the last shard's last.
    fn next_doc(&mut self) -> Result<Option<InputDoc>> {
        loop {
            if let Some((source, docs)) = self.current.as_mut() {
                let mut ids = Vec::new();
                if let Some(line) = docs.next_doc(&mut ids)? {
                    return Ok(Some(InputDoc {
                        source: *source,
                        line,
                        ids,
                    }));
                }
                self.current = None;
            }
            let Some(shard) = self.shards.get(self.next_shard) else {
                return Ok(None);
            };
            let open = OpenShard::open(shard)?;
            self.current = Some((
                self.next_shard as u32,
                open.into_docs(self.eod, self.max_id),
            ));
            self.next_shard += 1;
        }
    }
}

impl DocSource<'_> {
    /// The next documents in order (empty at the end): text re-tokenized in parallel, shards
    /// read up to [`BATCH_TOKENS`] ids.
    fn next_batch(&mut self, enc: &Encoder) -> Result<Vec<InputDoc>> {
        match self {
            DocSource::Text { reader, sources } => {
                let batch = reader.next_batch(BATCH_BYTES)?;
                let ids: Vec<Result<Vec<u32>>> =
                    batch.par_iter().map(|d| enc.encode_doc(&d.text)).collect();
                batch
                    .iter()
                    .zip(ids)
                    .map(|(d, ids)| {
                        let ids = ids.with_context(|| {
                            format!("{}:{}", sources[d.source as usize].name(), d.line)
                        })?;
                        Ok(InputDoc {
                            source: d.source,
                            line: d.line,
                            ids,
                        })
                    })
                    .collect()
            }
            DocSource::Shards(cursor) => {
                let (mut batch, mut tokens) = (Vec::new(), 0);
                while tokens < BATCH_TOKENS {
                    let Some(doc) = cursor.next_doc()? else {
                        break;
                    };
                    tokens += doc.ids.len();
                    batch.push(doc);
                }
                Ok(batch)
            }
        }
    }
}

/// Input documents, loaded ahead in batches and released once checked.
struct Reference<'a> {
    check: &'a InputCheck,
    source: DocSource<'a>,
    docs: HashMap<u64, Vec<u32>>,
    loaded: u64,
    done: bool,
}

impl<'a> Reference<'a> {
    fn new(check: &'a InputCheck, eod: u32) -> Reference<'a> {
        let source = match &check.docs {
            InputDocs::Text {
                sources,
                text_key,
                skip_bad_lines,
            } => DocSource::Text {
                reader: DocumentReader::new(
                    sources.clone(),
                    text_key,
                    *skip_bad_lines,
                    Arc::new(AtomicU64::new(0)),
                ),
                sources,
            },
            InputDocs::Shards(shards) => DocSource::Shards(ShardCursor {
                shards,
                eod,
                max_id: check.encoder.max_known_id(),
                current: None,
                next_shard: 0,
            }),
        };
        Reference {
            check,
            source,
            docs: HashMap::new(),
            loaded: 0,
            done: false,
        }
    }

    /// "line 7" of a text source, "document 6" of a shard (the sidecar's `line` field).
    fn place(&self, line: u64) -> String {
        match self.check.docs {
            InputDocs::Text { .. } => format!("line {line}"),
            InputDocs::Shards(_) => format!("document {line}"),
        }
    }

    fn load_through(
        &mut self,
        doc: u64,
        out: &OutputReader,
        report: &mut Report,
        keep: usize,
    ) -> Result<()> {
        while self.loaded <= doc && !self.done {
            let batch = self.source.next_batch(&self.check.encoder)?;
            self.done = batch.is_empty();
            for d in batch {
                let ordinal = self.loaded;
                match out.doc(ordinal as usize) {
                    Some(r) if r.source == d.source && r.line == d.line && r.tokens == d.ids.len() as u64 => {}
                    Some(r) => report.add(
                        Problem { window: None, offset: None, what: format!("document {ordinal}: the input has {} tokens at source {} {}, the sidecar says {} tokens at source {} {}", d.ids.len(), d.source, self.place(d.line), r.tokens, r.source, self.place(r.line)) },
                        keep,
                    ),
                    None => report.add(Problem { window: None, offset: None, what: format!("the input has more documents than the output ({} recorded)", out.doc_count()) }, keep),
                }
                self.docs.insert(ordinal, d.ids);
                self.loaded += 1;
            }
        }
        Ok(())
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
    let untie_tokens = m.config.backtrace || m.config.method == Method::Plain;
    // The sidecar is read through the map, window by window: memory does not grow with it.
    let doc_count = out.doc_count();
    let mut report = Report {
        windows: out.windows(),
        untied_from_tokens: untie_tokens,
        ..Report::default()
    };
    // Spans are stored window by window: find each window's slice.
    let mut bounds = vec![0usize; out.windows() as usize + 1];
    let mut previous = 0;
    for (i, s) in out.spans().enumerate() {
        if s.window >= out.windows() || s.window < previous {
            report.add(Problem { window: Some(s.window), offset: None, what: format!("provenance record {i} is out of order or names a window that does not exist") }, keep);
            return Ok(report);
        }
        previous = s.window;
        bounds[s.window as usize + 1] = i + 1;
    }
    for w in 1..bounds.len() {
        bounds[w] = bounds[w].max(bounds[w - 1]);
    }
    let mut reference = input.map(|check| Reference::new(check, m.tokenizer.eod.id));
    // Where each started document continues, and which are complete.
    let mut next: HashMap<u64, u64> = HashMap::new();
    let mut complete = vec![false; doc_count];
    let windows: Vec<u64> = (0..out.windows()).collect();
    for group in windows.chunks(GROUP) {
        let results: Vec<WindowResult> = group
            .par_iter()
            .map(|&w| {
                check_window(
                    out,
                    &roles,
                    w,
                    &out.spans_in(bounds[w as usize]..bounds[w as usize + 1]),
                    untie_tokens,
                )
            })
            .collect();
        for (&w, r) in group.iter().zip(results) {
            for p in r.problems {
                report.add(p, keep);
            }
            let tokens = if reference.is_some() {
                out.window_tokens(w)
            } else {
                Vec::new()
            };
            for piece in r.pieces {
                report.pieces += 1;
                let Some(rec) = out.doc(piece.doc as usize) else {
                    report.add(
                        problem(
                            w,
                            None,
                            format!(
                                "piece of document {} which the sidecar does not list",
                                piece.doc
                            ),
                        ),
                        keep,
                    );
                    continue;
                };
                let expected = next.get(&piece.doc).copied().unwrap_or(0);
                if piece.doc_offset != expected {
                    report.add(problem(w, Some(piece.spans[0].0 as usize), format!("document {} continues at token {}, expected {expected} (tokens lost or repeated)", piece.doc, piece.doc_offset)), keep);
                }
                let end = piece.doc_offset + piece.len;
                if piece.eod != (end == rec.tokens) {
                    report.add(
                        problem(
                            w,
                            Some(piece.spans[0].0 as usize),
                            format!(
                                "document {}: piece ending at token {end} of {} {} EOD",
                                piece.doc,
                                rec.tokens,
                                if piece.eod { "ends with" } else { "lacks" }
                            ),
                        ),
                        keep,
                    );
                }
                if let Some(refs) = reference.as_mut() {
                    refs.load_through(piece.doc, out, &mut report, keep)?;
                    match refs.docs.get(&piece.doc) {
                        Some(doc) => {
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
                                    report.add(problem(w, Some(start as usize + k), format!("document {} token {}: found {:?}, the input gives {:?}", piece.doc, at + k, got.get(k), want.get(k))), keep);
                                    break;
                                }
                                at += len as usize;
                            }
                        }
                        None => report.add(
                            problem(
                                w,
                                None,
                                format!("document {} is not in the input", piece.doc),
                            ),
                            keep,
                        ),
                    }
                }
                if end >= rec.tokens {
                    next.remove(&piece.doc);
                    complete[piece.doc as usize] = true;
                    report.documents_complete += 1;
                    if let Some(refs) = reference.as_mut() {
                        if refs.docs.remove(&piece.doc).is_some() {
                            report.documents_compared += 1;
                        }
                    }
                } else {
                    next.insert(piece.doc, end);
                }
            }
        }
        bar.inc(group.len() as u64);
    }
    // Every document complete, except what `--tail drop` dropped at the very end.
    let missing: u64 = out
        .docs()
        .enumerate()
        .filter(|(d, _)| !complete[*d])
        .map(|(d, rec)| rec.tokens - next.get(&(d as u64)).copied().unwrap_or(0))
        .sum();
    let allowed = if m.config.tail == Tail::Drop {
        m.counts.dropped_tokens
    } else {
        0
    };
    if missing != allowed {
        report.add(
            Problem {
                window: None,
                offset: None,
                what: format!("{missing} document tokens are in no window (expected {allowed})"),
            },
            keep,
        );
    }
    if let Some(refs) = reference.as_mut() {
        refs.load_through(u64::MAX - 1, out, &mut report, keep)?;
        if refs.loaded != doc_count as u64 {
            report.add(
                Problem {
                    window: None,
                    offset: None,
                    what: format!(
                        "the input has {} documents, the output {}",
                        refs.loaded, doc_count
                    ),
                },
                keep,
            );
        }
    }
    Ok(report)
}
