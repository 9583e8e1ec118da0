//! `--upsample-long TOKENS:FACTOR`: per-source length upsampling (the paper's "Upsampling" arm,
//! after Fu et al. 2024), a transformation of the document stream between tokenize and pack.
//!
//! A document of at least TOKENS tokens (EOD included) is *long*: it appears FACTOR times in the
//! stream. The mixture is kept per source (a source is an input file, or a token shard; with
//! `--upsample-source-key FIELD`, the value of a JSONL field, see [`Sources`]): each
//! source's output tokens equal its input tokens, to less than one short document (the last drop
//! decision may overshoot or fall short by one), because the
//! `(FACTOR - 1) × long tokens` its copies add are taken out of its short documents, dropped at
//! random. So every source's share of the stream is its share of the input. A source whose short
//! documents are too few to pay for its copies loses all of them and grows; the manifest says so
//! (`mixture_kept: false`).
//!
//! Two passes, memory bounded: the first reads the whole stream once, writing every document to a
//! spill file in the output directory (removed at the end) and counting each source's long and
//! short tokens; the second reads the spill back in order, drops short documents by sequential
//! selection (document `d` of source `s` is dropped with probability `E / R`, `E` the tokens still
//! to drop and `R` the short tokens not yet decided, from one generator seeded by the run's seed),
//! and inserts copies. Copy `k` (1 ≤ k < FACTOR) of a long document starting at input token `x`
//! (of `N`) goes before the first document starting at or after `(x + ⌊k·N/FACTOR⌋) mod N`, so
//! the copies of a document are `N/FACTOR` input tokens apart, spread evenly through the run.
//! Memory: the per-source counts and 24 bytes per copy (the spill is read back, not mapped);
//! disk: the stream's tokens (4 bytes each, 24 more per document).
//!
//! Field sources get their ids in stream order (the order documents reach this stage, which
//! does not depend on the thread count): the first document naming a source gives it the next
//! id. Each name is held once (in the report); the spill holds a u32 per document.

use crate::input::key::key_path_of;
use crate::input::{Input, InputFiles};
use crate::output::dir::Scratch;
use crate::record::{DocBatch, DocRecord};
use crate::rng::{window_rng, Purpose};
use crate::setting::{Setting, SettingError};
use anyhow::{Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

/// What counts as long and how often it is repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upsample {
    /// Documents of at least this many tokens (EOD included) are repeated.
    pub min_tokens: u64,
    /// How many times a long document appears in the stream (the original included).
    pub factor: u32,
}

impl std::str::FromStr for Upsample {
    type Err = anyhow::Error;

    /// `32768:5` or `32k:5`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |what: &str| {
            anyhow::anyhow!("`{s}`: {what} (expected TOKENS:FACTOR, e.g. 32768:5 or 32k:5)")
        };
        let (t, f) = s.split_once(':').ok_or_else(|| bad("no `:`"))?;
        let min_tokens = crate::config::parse_seq_len(t).map_err(|_| bad("bad TOKENS"))? as u64;
        let factor: u32 = f.trim().parse().map_err(|_| bad("bad FACTOR"))?;
        if !(2..=1000).contains(&factor) {
            return Err(bad("FACTOR must be between 2 and 1000"));
        }
        Ok(Upsample { min_tokens, factor })
    }
}

/// One source's accounting, in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub source: String,
    pub input_documents: u64,
    pub input_tokens: u64,
    pub long_documents: u64,
    pub long_tokens: u64,
    /// Copies added: `(factor - 1) × long_documents` documents of `(factor - 1) × long_tokens`.
    pub repeated_documents: u64,
    pub repeated_tokens: u64,
    /// Short documents dropped to pay for the copies.
    pub dropped_documents: u64,
    pub dropped_tokens: u64,
    pub output_tokens: u64,
    /// The short documents paid for every copy, and output tokens differ from input tokens by
    /// less than one short document (fewer than `min_tokens`).
    pub mixture_kept: bool,
    /// With a source field: this source is the input file `source` standing for its documents
    /// that lack the field (not a field value that happens to equal the file's name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_field: bool,
}

/// What upsampling did, in the manifest (`upsample`). Which documents were repeated and dropped
/// is in `provenance.docs`: a long document's record appears `factor` times, a dropped one's not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsampleReport {
    pub min_tokens: u64,
    pub factor: u32,
    /// What a source is: `input-file` (each input file or token shard), or `field:FIELD` (the
    /// value of the JSONL field FIELD; documents without it: their input file).
    pub source: String,
    /// In input order (`input-file`) or in the order each source first appeared in the stream
    /// (`field:FIELD`).
    pub sources: Vec<SourceReport>,
    /// With `field:FIELD`: the documents that had no such field (or `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents_without_field: Option<u64>,
}

/// Sources a summary lists (`utk augment`'s, `utk inspect --summary`); a field can name
/// thousands, all in the manifest.
const SHOWN_SOURCES: usize = 20;

/// The prefix of [`UpsampleReport::source`] for field sources.
pub const FIELD_SOURCE: &str = "field:";
/// [`UpsampleReport::source`] when each input file is a source.
const INPUT_FILE_SOURCE: &str = "input-file";

impl UpsampleReport {
    /// The report a run of `up` will write, before its counts are known: what was asked (the
    /// threshold, the factor, what a source is), no per-source counts. Compared with an existing
    /// part's report when a part is rerun ([`crate::part::OUTCOME_PATHS`] leaves the counts out).
    pub fn planned(up: Upsample, source_key: Option<&str>) -> UpsampleReport {
        UpsampleReport {
            min_tokens: up.min_tokens,
            factor: up.factor,
            source: match source_key {
                Some(key) => format!("{FIELD_SOURCE}{key}"),
                None => INPUT_FILE_SOURCE.to_string(),
            },
            ..UpsampleReport::default()
        }
    }

    /// The sources a summary lists (the first [`SHOWN_SOURCES`]), and for the rest, if any, how
    /// many there are and how many of them did not keep their share.
    pub fn shown(&self) -> (&[SourceReport], Option<(usize, usize)>) {
        let (shown, rest) = self.sources.split_at(self.sources.len().min(SHOWN_SOURCES));
        let grew = || rest.iter().filter(|s| !s.mixture_kept).count();
        (shown, (!rest.is_empty()).then(|| (rest.len(), grew())))
    }

    /// The source field's key, when sources are a field's values.
    pub fn source_key(&self) -> Option<&str> {
        self.source.strip_prefix(FIELD_SOURCE)
    }
}

/// What a document's source is.
#[derive(Clone, Copy, Debug)]
pub enum Sources<'a> {
    /// Its input file (or token shard), named as in the input list.
    Files(&'a [String]),
    /// The value of the JSONL field `key` ([`DocBatch::fields`]); a document without it has its
    /// input file (named in `files`) as source.
    Field { key: &'a str, files: &'a [String] },
}

/// The source field's path for a run (`None` without `key`), or why the run cannot have one:
/// only with upsampling, and only from JSONL (parquet rows and token shards carry no such field
/// here).
pub fn source_key_path(
    up: Option<Upsample>,
    key: Option<&str>,
    input: &Input,
) -> Result<Option<Vec<String>>> {
    let Some(key) = key else {
        return Ok(None);
    };
    let this = Setting::UpsampleSourceKey;
    if up.is_none() {
        let e = SettingError::new()
            .setting(this)
            .text(" names the source of each document for ")
            .setting(Setting::UpsampleLong)
            .text(", which is not set: add it, or drop the source key");
        return Err(e.into());
    }
    let path = key_path_of(key, this)?;
    let why = match &input.files {
        InputFiles::Text(_) => return Ok(Some(path)),
        InputFiles::Parquet(_) => "reads a JSONL field, and the input is parquet",
        InputFiles::Shards(_) => "reads a JSONL field, and token shards have no fields",
    };
    let e = SettingError::about(
        this,
        format!("{why}: drop it (each input file is then a source; split the corpus into one file per source)"),
    );
    Err(e.into())
}

/// Source ids, given in stream order, and the names behind them (the report's `sources`).
struct Ids<'a> {
    sources: Sources<'a>,
    by_name: HashMap<String, u32>,
    by_file: Vec<Option<u32>>,
    without_field: u64,
}

impl Ids<'_> {
    /// The source id of `d`, whose field value is `field`; a new source is added to `reports`.
    fn of(&mut self, d: &DocRecord, field: Option<&str>, reports: &mut Vec<SourceReport>) -> u32 {
        let files = match self.sources {
            Sources::Files(_) => return d.source,
            Sources::Field { files, .. } => files,
        };
        let next = reports.len() as u32;
        let new = |source: String, without_field| SourceReport {
            source,
            without_field,
            ..SourceReport::default()
        };
        if let Some(name) = field {
            if let Some(&id) = self.by_name.get(name) {
                return id;
            }
            self.by_name.insert(name.to_string(), next);
            reports.push(new(name.to_string(), false));
            return next;
        }
        self.without_field += 1;
        let slot = &mut self.by_file[d.source as usize];
        *slot.get_or_insert_with(|| {
            reports.push(new(files[d.source as usize].clone(), true));
            next
        })
    }
}

/// A long document: where it is in the spill and where it starts in the input.
struct Long {
    spill_at: usize,
    input_at: u64,
}

/// Bytes of a document's header in the spill: source u32, line u64, tokens u64, upsampling
/// source id u32.
const HEADER: usize = 24;

/// The queues around the upsampling stage and their batch buffers.
pub struct Queues<'a> {
    pub rx: Receiver<DocBatch>,
    pub tx: SyncSender<DocBatch>,
    /// Tokens per batch sent.
    pub batch_tokens: usize,
    /// A buffer for a new batch (recycled by the caller), and where spent ones go.
    pub take: &'a (dyn Fn(usize) -> Vec<u32> + Sync),
    pub give: &'a (dyn Fn(Vec<u32>) + Sync),
}

/// Runs both passes: documents from `q.rx`, the upsampled stream to `q.tx`. `sources` says
/// what a source is; `seed` is the run's.
pub fn run(
    up: Upsample,
    seed: u64,
    sources: Sources,
    spill: Scratch,
    q: Queues,
) -> Result<UpsampleReport> {
    let (key, names, files) = match sources {
        Sources::Files(names) => (None, names, 0),
        Sources::Field { key, files } => (Some(key), &[][..], files.len()),
    };
    let mut report = UpsampleReport {
        sources: names
            .iter()
            .map(|n| SourceReport {
                source: n.clone(),
                ..SourceReport::default()
            })
            .collect(),
        ..UpsampleReport::planned(up, key)
    };
    let mut ids = Ids {
        sources,
        by_name: HashMap::new(),
        by_file: vec![None; files],
        without_field: 0,
    };
    let (longs, total) = spill_all(up, &spill, &q, &mut ids, &mut report.sources)?;
    if let Sources::Field { key, .. } = sources {
        check_some_have_field(key, &ids)?;
        report.documents_without_field = Some(ids.without_field);
    }
    let mut pass = Second {
        up,
        rng: window_rng(seed, 0, Purpose::Upsample),
        to_drop: report.sources.iter().map(|s| excess(up, s)).collect(),
        undecided: report
            .sources
            .iter()
            .map(|s| s.input_tokens - s.long_tokens)
            .collect(),
        batch: DocBatch::default(),
        q: &q,
        buf: Vec::new(),
    };
    pass.emit_all(&spill.path, &longs, total, &mut report.sources)?;
    for s in &mut report.sources {
        s.repeated_documents = (up.factor as u64 - 1) * s.long_documents;
        s.repeated_tokens = (up.factor as u64 - 1) * s.long_tokens;
        s.output_tokens = s.input_tokens + s.repeated_tokens - s.dropped_tokens;
        let short = s.input_tokens - s.long_tokens;
        s.mixture_kept =
            excess(up, s) <= short && s.output_tokens.abs_diff(s.input_tokens) < up.min_tokens;
    }
    Ok(report)
}

/// A field no document has is a mistake (a typo in its name, most likely), not a request for
/// per-file sources: the run stops before any window is written.
fn check_some_have_field(key: &str, ids: &Ids) -> Result<()> {
    if !ids.by_name.is_empty() || ids.without_field == 0 {
        return Ok(());
    }
    let e = SettingError::about(
        Setting::UpsampleSourceKey,
        format!(
            "{key:?}: none of the {} documents has this field (or it is null everywhere); \
             check its name (dots separate nested names)",
            ids.without_field
        ),
    );
    Err(e.into())
}

/// Tokens a source's short documents must give up for its copies.
fn excess(up: Upsample, s: &SourceReport) -> u64 {
    (up.factor as u64 - 1) * s.long_tokens
}

/// Pass 1: every document to the spill, every source counted. Returns the long documents and
/// the input's token count.
fn spill_all(
    up: Upsample,
    spill: &Scratch,
    q: &Queues,
    ids: &mut Ids,
    sources: &mut Vec<SourceReport>,
) -> Result<(Vec<Long>, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, &spill.file);
    let (mut at, mut input_at) = (0usize, 0u64);
    let mut longs = Vec::new();
    let mut buf = Vec::new();
    for batch in q.rx.iter() {
        for (i, (d, tokens)) in batch.iter().enumerate() {
            let id = ids.of(d, batch.field(i), sources);
            let s = &mut sources[id as usize];
            s.input_documents += 1;
            s.input_tokens += d.tokens;
            if d.tokens >= up.min_tokens {
                s.long_documents += 1;
                s.long_tokens += d.tokens;
                longs.push(Long {
                    spill_at: at,
                    input_at,
                });
            }
            buf.clear();
            buf.extend_from_slice(&d.source.to_le_bytes());
            buf.extend_from_slice(&d.line.to_le_bytes());
            buf.extend_from_slice(&d.tokens.to_le_bytes());
            buf.extend_from_slice(&id.to_le_bytes());
            tokens
                .iter()
                .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
            out.write_all(&buf)
                .with_context(|| format!("cannot write {}", spill.path.display()))?;
            at += buf.len();
            input_at += d.tokens;
        }
        (q.give)(batch.ids);
    }
    out.flush()
        .with_context(|| format!("cannot write {}", spill.path.display()))?;
    Ok((longs, input_at))
}

/// Pass 2's state: the spill read in order (and at the copies' offsets), the drop decisions
/// still open per source, the batch being filled. The spill is read, not mapped, so memory holds
/// one document at a time whatever the corpus.
struct Second<'a> {
    up: Upsample,
    rng: rand_chacha::ChaCha8Rng,
    to_drop: Vec<u64>,
    undecided: Vec<u64>,
    batch: DocBatch,
    q: &'a Queues<'a>,
    buf: Vec<u8>,
}

/// Reads the next document of the spill into `buf` (its ids' bytes), with its source id;
/// `None` at the end.
fn read_doc(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Option<(DocRecord, u32)>> {
    let mut h = [0u8; HEADER];
    match r.read_exact(&mut h) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other.context("cannot read the upsampling spill")?,
    }
    let rec = DocRecord {
        source: u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")),
        line: u64::from_le_bytes(h[4..12].try_into().expect("8 bytes")),
        tokens: u64::from_le_bytes(h[12..20].try_into().expect("8 bytes")),
    };
    let id = u32::from_le_bytes(h[20..24].try_into().expect("4 bytes"));
    buf.resize(4 * rec.tokens as usize, 0);
    r.read_exact(buf)
        .context("cannot read the upsampling spill")?;
    Ok(Some((rec, id)))
}

impl Second<'_> {
    /// Appends the document in `self.buf` to the batch, sending the batch when full.
    fn push(&mut self, rec: DocRecord) -> Result<()> {
        let ids = self
            .buf
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        if self.batch.ids.capacity() == 0 {
            self.batch.ids = (self.q.take)(self.q.batch_tokens);
        }
        self.batch.ids.extend(ids);
        self.batch.docs.push(rec);
        if self.batch.ids.len() >= self.q.batch_tokens {
            self.send()?;
        }
        Ok(())
    }

    /// Appends the copy of the long document at `at` in the spill.
    fn push_copy(&mut self, copies: &mut File, at: u64) -> Result<()> {
        copies.seek(SeekFrom::Start(at))?;
        let (rec, _) =
            read_doc(copies, &mut self.buf)?.context("the upsampling spill is truncated")?;
        self.push(rec)
    }

    fn send(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return Ok(());
        }
        // A closed queue means the pack stage stopped; its error is reported.
        let _ = self.q.tx.send(batch);
        Ok(())
    }

    /// Whether a short document of `tokens` tokens from `source` is dropped.
    fn drop_short(&mut self, source: usize, tokens: u64) -> bool {
        let (e, r) = (self.to_drop[source], self.undecided[source]);
        self.undecided[source] = r - tokens;
        if e == 0 {
            return false;
        }
        let drop = e >= r || self.rng.random::<f64>() < e as f64 / r as f64;
        if drop {
            self.to_drop[source] = e.saturating_sub(tokens);
        }
        drop
    }

    /// Walks the spill in input order: drops, keeps, and inserts the copies where they fall.
    fn emit_all(
        &mut self,
        path: &Path,
        longs: &[Long],
        total: u64,
        sources: &mut [SourceReport],
    ) -> Result<()> {
        let open = || File::open(path).with_context(|| format!("cannot open {}", path.display()));
        let (mut seq, mut copies) = (BufReader::with_capacity(1 << 20, open()?), open()?);
        let schedule = schedule(self.up, longs, total);
        let mut next_copy = 0;
        let mut input_at = 0u64;
        loop {
            while next_copy < schedule.len() && schedule[next_copy].0 <= input_at {
                self.push_copy(&mut copies, schedule[next_copy].1 as u64)?;
                next_copy += 1;
            }
            let Some((rec, id)) = read_doc(&mut seq, &mut self.buf)? else {
                break;
            };
            let s = id as usize;
            if rec.tokens >= self.up.min_tokens || !self.drop_short(s, rec.tokens) {
                self.push(rec)?;
            } else {
                sources[s].dropped_documents += 1;
                sources[s].dropped_tokens += rec.tokens;
            }
            input_at += rec.tokens;
        }
        for &(_, c) in &schedule[next_copy..] {
            self.push_copy(&mut copies, c as u64)?;
        }
        self.send()
    }
}

/// Every copy as (input position it goes before, spill offset of its document), in stream
/// order.
fn schedule(up: Upsample, longs: &[Long], total: u64) -> Vec<(u64, usize)> {
    let mut copies = Vec::with_capacity(longs.len() * (up.factor as usize - 1));
    for k in 1..up.factor as u64 {
        let shift = (k as u128 * total as u128 / up.factor as u128) as u64;
        for l in longs {
            let y = (l.input_at as u128 + shift as u128) % total.max(1) as u128;
            copies.push((y as u64, k, l.spill_at));
        }
    }
    copies.sort_unstable();
    copies.into_iter().map(|(y, _, at)| (y, at)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let u: Upsample = "32768:5".parse().unwrap();
        assert_eq!((u.min_tokens, u.factor), (32768, 5));
        assert_eq!("32k:5".parse::<Upsample>().unwrap(), u);
        for bad in ["", "32768", "32768:1", "x:5", "32768:x", "0:5"] {
            assert!(bad.parse::<Upsample>().is_err(), "{bad}");
        }
    }

    #[test]
    fn copies_are_spread_a_fraction_of_the_input_apart() {
        let up = Upsample {
            min_tokens: 10,
            factor: 4,
        };
        let longs = [
            Long {
                spill_at: 0,
                input_at: 0,
            },
            Long {
                spill_at: 100,
                input_at: 700,
            },
        ];
        // A (at 0): 250, 500, 750; B (at 700): 950, 200, 450.
        let s = schedule(up, &longs, 1000);
        assert_eq!(
            s,
            vec![
                (200, 100),
                (250, 0),
                (450, 100),
                (500, 0),
                (750, 0),
                (950, 100)
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::mpsc::{channel, sync_channel};

    /// A document: input file, source field value (`None`: none), tokens.
    type Doc = (u32, Option<u8>, u64);

    /// `run` over `docs` (batches of three); the report and the output's records. A document's
    /// ids are its index, so `line` (also its index) finds it again.
    fn upsample(
        up: Upsample,
        docs: &[Doc],
        field: bool,
    ) -> Result<(UpsampleReport, Vec<DocRecord>)> {
        let (in_tx, rx) = channel();
        for (b, chunk) in docs.chunks(3).enumerate() {
            let mut batch = DocBatch::default();
            for (i, &(file, value, tokens)) in chunk.iter().enumerate() {
                let line = (3 * b + i) as u64;
                batch
                    .ids
                    .extend(std::iter::repeat_n(line as u32, tokens as usize));
                batch.docs.push(DocRecord {
                    source: file,
                    line,
                    tokens,
                });
                batch.fields.push(value.map(|v| format!("s{v}")));
            }
            in_tx.send(batch).unwrap();
        }
        drop(in_tx);
        let (tx, out_rx) = sync_channel(1 << 16);
        let spill = tempfile::NamedTempFile::new().unwrap();
        let scratch = Scratch {
            file: spill.reopen().unwrap(),
            path: spill.path().to_path_buf(),
        };
        let files = ["f0".to_string(), "f1".to_string()];
        let sources = match field {
            true => Sources::Field {
                key: "src",
                files: &files,
            },
            false => Sources::Files(&files),
        };
        let q = Queues {
            rx,
            tx,
            batch_tokens: 64,
            take: &Vec::with_capacity,
            give: &drop,
        };
        let report = run(up, 7, sources, scratch, q)?;
        let out = out_rx.try_iter().flat_map(|b| b.docs).collect();
        Ok((report, out))
    }

    /// A document's source as the report names it.
    fn source_name(d: &Doc, field: bool) -> (String, bool) {
        match (field, d.1) {
            (true, Some(v)) => (format!("s{v}"), false),
            _ => (format!("f{}", d.0), field),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Per source: tokens in and out as reported, sources in order of first appearance,
        /// long documents FACTOR times, only short ones dropped, and the share kept whenever
        /// the short documents can pay for the copies.
        #[test]
        fn each_source_keeps_its_share(
            docs in prop::collection::vec(
                (0u32..2, prop::option::weighted(0.8, 0u8..4), 1u64..60), 1..80),
            min_tokens in 10u64..50,
            factor in 2u32..5,
            field in any::<bool>(),
        ) {
            let up = Upsample { min_tokens, factor };
            let none = docs.iter().all(|d| d.1.is_none());
            let (report, out) = match upsample(up, &docs, field) {
                Err(e) => {
                    // No document has the field: refused, not taken as per-file sources.
                    prop_assert!(field && none, "{e:#}");
                    prop_assert!(e.to_string().contains("none of the"), "{e:#}");
                    return Ok(());
                }
                Ok(r) => r,
            };
            prop_assert!(!(field && none));
            let mut want: Vec<((String, bool), u64, u64, u64)> = Vec::new();
            for d in &docs {
                let name = source_name(d, field);
                let at = match want.iter().position(|w| w.0 == name) {
                    Some(at) => at,
                    None => { want.push((name, 0, 0, 0)); want.len() - 1 }
                };
                want[at].1 += d.2;
                want[at].2 += d.2 * if d.2 >= min_tokens { 0 } else { 1 };
            }
            let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
            for r in &out {
                let d = &docs[r.line as usize];
                prop_assert_eq!(r.tokens, d.2);
                *seen.entry(r.line).or_default() += 1;
                let at = want.iter().position(|w| w.0 == source_name(d, field)).unwrap();
                want[at].3 += d.2;
            }
            for (k, d) in docs.iter().enumerate() {
                let n = seen.get(&(k as u64)).copied().unwrap_or(0);
                if d.2 >= min_tokens {
                    prop_assert_eq!(n, factor);
                } else {
                    prop_assert!(n <= 1);
                }
            }
            if !field {
                // Input files in input order, whether they have documents or not.
                want.sort_by(|a, b| a.0.cmp(&b.0));
                for f in ["f0", "f1"] {
                    if !want.iter().any(|w| w.0.0 == f) {
                        let at = want.partition_point(|w| w.0.0.as_str() < f);
                        want.insert(at, ((f.to_string(), false), 0, 0, 0));
                    }
                }
            }
            let names: Vec<(String, bool)> =
                report.sources.iter().map(|s| (s.source.clone(), s.without_field)).collect();
            prop_assert_eq!(names, want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());
            for (s, (_, input, short, output)) in report.sources.iter().zip(&want) {
                prop_assert_eq!((s.input_tokens, s.output_tokens), (*input, *output));
                let excess = (factor as u64 - 1) * (input - short);
                if excess <= *short {
                    prop_assert!(s.mixture_kept, "{:?}", s);
                    prop_assert!(output.abs_diff(*input) < min_tokens);
                }
            }
            let without = docs.iter().filter(|d| d.1.is_none()).count() as u64;
            prop_assert_eq!(report.documents_without_field, field.then_some(without));
        }
    }
}
