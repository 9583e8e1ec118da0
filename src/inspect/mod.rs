//! The `utk inspect` run: one window's structure joined with its provenance ([`window_view`]),
//! rendered as text or JSON ([`render`]), and the whole output's summary with its knot-distance
//! distribution ([`summary`]).

pub mod render;
pub mod summary;

use crate::augment::Span;
use crate::config::Method;
use crate::output::doc_lens::DocLens;
use crate::output::reader::OutputReader;
use crate::tokenize::SpecialTokens;
use crate::untie::{parse_spans, parse_window, Roles};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;

/// One chunk of a window, with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct ChunkView {
    /// Token range of the whole chunk (markup and any backtrace list included).
    pub extent: Range<usize>,
    /// Token range of the original content.
    pub content: Range<usize>,
    pub label: Option<Range<usize>>,
    pub head: Option<u32>,
    pub tail: Option<u32>,
    pub eod: bool,
    pub backtrace: Option<Vec<Range<usize>>>,
    pub doc: u64,
    pub source: String,
    pub line: u64,
    pub doc_offset: u64,
    pub chunk: u16,
    pub chunks: u16,
}

/// A window ready to show.
#[derive(Clone, Debug, Serialize)]
pub struct WindowView {
    pub window: u64,
    pub windows: u64,
    pub tokens: Vec<u32>,
    pub mask: Vec<u8>,
    pub chunks: Vec<ChunkView>,
    pub pad_from: Option<usize>,
    /// The window's segment lengths from `doc_lens` (written with `--doc-boundaries`).
    pub segments: Option<Vec<i64>>,
}

/// Spans of window `w` (the sidecar is in window order).
fn window_spans(out: &OutputReader, w: u64) -> Vec<Span> {
    out.spans()
        .skip_while(|s| s.window < w)
        .take_while(|s| s.window == w)
        .collect()
}

pub fn window_view(out: &OutputReader, w: u64) -> Result<WindowView> {
    if w >= out.windows() {
        bail!(
            "window {w} does not exist: the output has {} windows (0..{})",
            out.windows(),
            out.windows().saturating_sub(1)
        );
    }
    let roles = Roles::new(SpecialTokens::from_map(&out.manifest.special_tokens)?);
    let tokens = out.window_tokens(w);
    let spans = window_spans(out, w);
    let parsed = match out.manifest.config.method {
        // No markup: the chunks are the sidecar's spans.
        Method::Cip => {
            let chunks: Vec<(u32, u32)> = spans.iter().map(|s| (s.start, s.len)).collect();
            parse_spans(&tokens, &chunks, &roles)
        }
        Method::Utk | Method::Plain => parse_window(&tokens, &roles),
    };
    let parsed = parsed.map_err(|f| {
        anyhow::anyhow!(
            "window {w} is damaged at token {}: {} (run utk verify)",
            f.offset,
            f.what
        )
    })?;
    if spans.len() != parsed.chunks.len() {
        bail!(
            "window {w}: {} chunks but {} provenance records (run utk verify)",
            parsed.chunks.len(),
            spans.len()
        );
    }
    let docs: Vec<_> = out.docs().collect();
    let sources = &out.manifest.input.sources;
    let chunks = parsed
        .chunks
        .into_iter()
        .zip(spans)
        .map(|(c, s)| {
            let rec = docs.get(s.doc as usize);
            ChunkView {
                extent: c.extent,
                content: c.content,
                label: c.label,
                head: c.head,
                tail: c.tail,
                eod: c.eod,
                backtrace: c.backtrace,
                doc: s.doc,
                source: rec
                    .and_then(|r| sources.get(r.source as usize))
                    .cloned()
                    .unwrap_or_else(|| "?".into()),
                line: rec.map_or(0, |r| r.line),
                doc_offset: s.doc_offset,
                chunk: s.chunk,
                chunks: s.chunks,
            }
        })
        .collect();
    Ok(WindowView {
        window: w,
        windows: out.windows(),
        mask: out.window_mask(w).to_vec(),
        tokens,
        chunks,
        pad_from: parsed.pad_from,
        segments: DocLens::open(&out.dir, &out.manifest)?.map(|d| d.window(w)),
    })
}

/// (window, doc) → (chunk, content start, content len) of each of its chunks.
type Pieces = BTreeMap<(u64, u64), Vec<(u16, u32, u32)>>;

/// How far back each head knot's tail knot lies, over the whole output.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KnotDistances {
    /// Distance in tokens from each `T_b` to its `H_b`, one per boundary (absolute value).
    pub distances: Vec<u64>,
}

impl KnotDistances {
    pub fn collect(out: &OutputReader) -> KnotDistances {
        // Per (window, doc): (chunk, content start, content len) of its chunks.
        let mut pieces: Pieces = BTreeMap::new();
        let mut distances = Vec::new();
        let mut window = u64::MAX;
        let mut flush = |pieces: &mut Pieces| {
            for chunks in pieces.values_mut() {
                chunks.sort_unstable();
                for pair in chunks.windows(2) {
                    let tail = (pair[0].1 + pair[0].2) as i64; // T_b follows chunk b's content
                    let head = pair[1].1 as i64 - 1; // H_b precedes chunk b+1's content
                    distances.push((head - tail).unsigned_abs());
                }
            }
            pieces.clear();
        };
        for s in out.spans() {
            if s.window != window {
                flush(&mut pieces);
                window = s.window;
            }
            if s.chunks >= 2 {
                pieces
                    .entry((s.window, s.doc))
                    .or_default()
                    .push((s.chunk, s.start, s.len));
            }
        }
        flush(&mut pieces);
        KnotDistances { distances }
    }

    /// Counts in `bins` equal-width bins over `0..seq_len`.
    pub fn histogram(&self, seq_len: usize, bins: usize) -> Vec<u64> {
        let mut h = vec![0u64; bins];
        for &d in &self.distances {
            let b = (d as usize * bins / seq_len.max(1)).min(bins - 1);
            h[b] += 1;
        }
        h
    }

    /// The `q`-quantile (0..=1), or 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.distances.is_empty() {
            return 0;
        }
        let mut v = self.distances.clone();
        v.sort_unstable();
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}
