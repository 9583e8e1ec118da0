//! The `augment` run: stages wired together with bounded queues, order kept, output deterministic.
//!
//! ```text
//! reader thread ──batches──▶ main: tokenize (rayon) → pack (sequential) → augment (rayon) ──▶ writer thread
//! ```
//! Batches are bounded in bytes and the queues in batches, so memory does not grow with the corpus.
//! Packing is the only sequential decision-making stage; it draws from per-window generators, so
//! the thread count changes how fast the output is produced, never what it is.

mod cpu;
mod long;
mod packing;
mod recycle;
mod text;

pub use text::read_jsonl;

use crate::augment::{arrange_into, Window, WindowShaper};
use crate::codec::Dtype;
use crate::config::{AugmentConfig, Tail};
use crate::input::{Input, Reader, TextDoc, BATCH_BYTES, BATCH_TOKENS};
use crate::output::dir::{OutputDir, Scratch};
use crate::output::manifest::{
    Counts, InputInfo, Manifest, MaskInfo, StageSeconds, TokenizerInfo, FORMAT, FORMAT_VERSION,
    MASK_SEMANTICS,
};
use crate::output::stream::{is_broken_pipe, JsonLines, STDOUT};
use crate::output::{file_names, normalize_formats, Format, WindowOutput, WindowWriter};
use crate::pack::{Packer, WindowPlan};
use crate::part::PartRecord;
use crate::record::{DocBatch, DocRecord};
use crate::tokenize::batch::encode_batch;
use crate::tokenize::{Encoder, SpecialTokens};
use crate::upsample::{self, Upsample, UpsampleReport};
use crate::workers::{in_order, joined, read_text_batches, worker_pool, IN_FLIGHT, QUEUE};
use anyhow::{anyhow, Result};
use cpu::{Stage, StageClock};
use indicatif::ProgressBar;
use packing::Packing;
use rayon::prelude::*;
use recycle::Recycle;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fully resolved `augment` run: inputs checked, tokenizer loaded, ids assigned.
pub struct AugmentJob {
    pub config: AugmentConfig,
    pub input: Input,
    pub encoder: Encoder,
    pub specials: SpecialTokens,
    pub output: PathBuf,
    /// The output formats, each once, in canonical order.
    pub formats: Vec<Format>,
    pub force: bool,
    /// Write `doc_lens.bin/.idx` (plain and cip only).
    pub doc_boundaries: bool,
    /// `--upsample-long`: repeat long documents, keeping each source's share (see [`upsample`]).
    pub upsample: Option<Upsample>,
    /// `--upsample-source-key`: the JSONL field naming a document's source (see [`upsample`]).
    pub upsample_source_key: Option<String>,
    pub threads: usize,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    /// The part of a larger run this is (its input already selected), if any.
    pub part: Option<PartRecord>,
}

impl AugmentJob {
    /// One past the highest id that can appear in the output.
    pub fn vocab_size(&self) -> u64 {
        self.encoder.max_known_id().max(self.specials.max_id()) as u64 + 1
    }

    /// The token dtype of each output format.
    pub fn token_dtypes(&self) -> Vec<(Format, Dtype)> {
        normalize_formats(&self.formats)
            .into_iter()
            .map(|f| (f, f.token_dtype(self.vocab_size())))
            .collect()
    }

    /// The configuration the windows are drawn with: a part's own random streams.
    pub fn stream_config(&self) -> AugmentConfig {
        let mut config = self.config.clone();
        if let Some(p) = &self.part {
            config.seed = p.stream_seed;
        }
        config
    }
}

/// What a run did, for the summary.
#[derive(Clone, Debug)]
pub struct Summary {
    pub counts: Counts,
    pub windows: u64,
    pub elapsed: Duration,
    pub token_dtypes: Vec<(Format, Dtype)>,
    pub cpu: StageSeconds,
    /// What `--upsample-long` repeated and dropped.
    pub upsample: Option<UpsampleReport>,
}

/// Buffers the stages hand back for reuse (see [`recycle`]).
struct Buffers {
    batches: Recycle<u32>,
    tokens: Recycle<u32>,
    masks: Recycle<u8>,
    /// JSONL batches of whole lines (see [`text`]).
    raw: Recycle<u8>,
}

impl Buffers {
    fn new(seq_len: usize) -> Self {
        // About as many windows as the queues hold.
        let windows = ((QUEUE + 1) * BATCH_TOKENS / seq_len.max(1)).clamp(4, 256);
        Buffers {
            batches: Recycle::new(QUEUE + 1, 4 * BATCH_TOKENS),
            tokens: Recycle::new(windows, 2 * seq_len.max(1)),
            masks: Recycle::new(windows, 2 * seq_len.max(1)),
            raw: Recycle::new(QUEUE, 4 * BATCH_BYTES),
        }
    }
}

enum ToWriter {
    Docs(Vec<DocRecord>),
    Windows(Vec<Window>),
}

/// What the stage threads hand back once the input is exhausted.
struct Finished<W> {
    counts: Counts,
    writer: W,
    /// Lines read from each text source.
    lines: Vec<u64>,
    upsample: Option<UpsampleReport>,
}

impl AugmentJob {
    /// Whether the windows go to standard output (`-o -`) rather than a directory.
    pub fn streams(&self) -> bool {
        self.output.as_os_str() == STDOUT
    }

    /// The path of the `--upsample-source-key` field, if any, or why the run cannot read it
    /// (see [`upsample::source_key_path`]).
    pub fn source_field(&self) -> Result<Option<Vec<String>>> {
        let key = self.upsample_source_key.as_deref();
        upsample::source_key_path(self.upsample, key, &self.input)
    }

    /// The length (bytes) above which a JSONL line's text is streamed to the tokenizer in pieces
    /// (see [`crate::input::long_stream`]), or `None` when this run cannot: upsampling needs
    /// whole documents, the encoder must take text in pieces, a line found bad at its end
    /// cannot be taken back (so not with `--skip-bad-lines`), and the text key must be a
    /// top-level field.
    pub fn long_line_stream(&self) -> Option<usize> {
        let text = &self.input.text;
        let top_level = crate::input::key::key_path(&text.text_key).is_ok_and(|p| p.len() == 1);
        let can = self.upsample.is_none()
            && self.encoder.long_doc().is_some()
            && !text.skip_bad_lines
            && top_level;
        can.then(crate::input::long_stream::long_line_bytes)
    }
}

/// Runs the job; on success the output directory is complete and its manifest written.
pub fn run(job: &AugmentJob, bar: &ProgressBar) -> Result<Summary> {
    if job.streams() {
        return run_stream(job, bar);
    }
    let start = Instant::now();
    let cpu_start = crate::workers::process_cpu_seconds();
    let clock = StageClock::default();
    if job.doc_boundaries {
        crate::output::doc_lens::check_method(job.config.method)?;
    }
    job.source_field()?;
    let names = file_names();
    let dir = OutputDir::prepare(
        &job.output,
        job.force,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let spill = match job.upsample {
        Some(_) => Some(dir.scratch("upsample.spill")?),
        None => None,
    };
    let mut writer = WindowWriter::new(dir, job.config.seq_len, &job.formats, job.vocab_size())?;
    if job.doc_boundaries {
        writer = writer.with_doc_lens()?;
    }
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let Finished {
        counts,
        writer,
        lines,
        upsample,
    } = run_stages(job, writer, bar, &raw_bytes, &clock, spill)?;
    let windows = writer.windows;
    check_balance(&counts)?;
    let cpu = clock.seconds(cpu_start);
    let mut manifest = build_manifest(job, &counts, windows);
    manifest.cpu_seconds = Some(cpu.clone());
    manifest.upsample = upsample.clone();
    if let Some(p) = manifest.part.as_mut() {
        p.set_lines(&lines);
    }
    writer.finish(|files| {
        let mut m = manifest;
        m.files = files;
        Ok(serde_json::to_vec_pretty(&m)?)
    })?;
    bar.set_position(raw_bytes.load(Ordering::Relaxed));
    Ok(Summary {
        counts,
        windows,
        elapsed: start.elapsed(),
        token_dtypes: job.token_dtypes(),
        cpu,
        upsample,
    })
}

/// The manifest a run of `job` writes, before its counts are known (to compare with an
/// existing output's: resume).
pub fn planned_manifest(job: &AugmentJob) -> Manifest {
    let mut manifest = build_manifest(job, &Counts::default(), 0);
    manifest.upsample = job
        .upsample
        .map(|up| UpsampleReport::planned(up, job.upsample_source_key.as_deref()));
    manifest
}

/// `-o -`: the windows as JSON lines on standard output (see [`crate::output::stream`]); no
/// directory, provenance or manifest. A closed pipe is an error [`is_broken_pipe`] recognises.
fn run_stream(job: &AugmentJob, bar: &ProgressBar) -> Result<Summary> {
    let start = Instant::now();
    check_streamable(job)?;
    let cpu_start = crate::workers::process_cpu_seconds();
    let clock = StageClock::default();
    let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
    let writer = JsonLines::new(out, job.config.seq_len);
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let Finished { counts, writer, .. } = run_stages(job, writer, bar, &raw_bytes, &clock, None)?;
    let windows = writer.windows();
    check_balance(&counts)?;
    writer.finish()?;
    Ok(Summary {
        counts,
        windows,
        elapsed: start.elapsed(),
        token_dtypes: Vec::new(),
        cpu: clock.seconds(cpu_start),
        upsample: None,
    })
}

/// What needs an output directory cannot stream.
fn check_streamable(job: &AugmentJob) -> Result<()> {
    let needs = [
        (job.upsample.is_some(), "--upsample-long (its spill file)"),
        (job.doc_boundaries, "--doc-boundaries (doc_lens.bin/.idx)"),
        (
            job.part.is_some(),
            "parts (part-IIIII-of-NNNNN directories)",
        ),
    ];
    match needs.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(anyhow!(
            "-o - streams windows only: {what} needs an output directory; give -o DIR"
        )),
        None => Ok(()),
    }
}

/// The stages, overlapping: while batch k is packed and augmented, batch k+1 is tokenized and
/// batch k+2 read; the writer drains behind them. Each queue holds at most [`QUEUE`] batches.
/// Token shards skip tokenization: their reader feeds the pack stage directly, and the tokenize
/// stage sees a closed queue at once.
fn run_stages<W: WindowOutput>(
    job: &AugmentJob,
    writer: W,
    bar: &ProgressBar,
    raw_bytes: &Arc<AtomicU64>,
    clock: &StageClock,
    spill: Option<Scratch>,
) -> Result<Finished<W>> {
    let pool = worker_pool(job.threads)?;
    let buffers = Buffers::new(job.config.seq_len);
    let mut reader = open_reader(job, raw_bytes);
    std::thread::scope(|scope| -> Result<Finished<W>> {
        let (text_tx, text_rx) = sync_channel::<Vec<TextDoc>>(QUEUE);
        let (tok_tx, tok_rx) = sync_channel::<DocBatch>(QUEUE);
        let (write_tx, write_rx) = sync_channel::<ToWriter>(QUEUE);
        let (buffers, pool) = (&buffers, &pool);
        let shard_tx = tok_tx.clone();
        let read_thread = scope.spawn(move || -> Result<Read> {
            if let Some(jsonl) = text::jsonl(job, raw_bytes, pool, clock, &buffers.raw)? {
                return Ok(Read::Jsonl(jsonl.run(text_tx)?));
            }
            clock.time(Stage::Read, || {
                read(&mut reader, text_tx, shard_tx, buffers, bar)
            })?;
            Ok(Read::Reader(reader))
        });
        // With upsampling, a stage between tokenize and pack re-orders the stream.
        let (pack_rx, upsample_thread) = match (job.upsample, spill) {
            (Some(up), Some(spill)) => {
                let (tx, rx) = sync_channel::<DocBatch>(QUEUE);
                let t = scope.spawn(move || upsample_stage(job, up, spill, buffers, tok_rx, tx));
                (rx, Some(t))
            }
            _ => (tok_rx, None),
        };
        let pack_thread = scope.spawn(move || {
            clock.time(Stage::Pack, || {
                pack_and_augment(job, pool, buffers, pack_rx, write_tx, clock)
            })
        });
        let write_thread =
            scope.spawn(move || clock.time(Stage::Write, || write_all(writer, buffers, write_rx)));
        let tokenized = tokenize_batches(job, pool, buffers, text_rx, tok_tx, bar, raw_bytes);
        let reader = joined(read_thread.join(), "reader");
        let upsampled = upsample_thread.map(|t| joined(t.join(), "upsample"));
        let counts = joined(pack_thread.join(), "pack");
        let writer = joined(write_thread.join(), "writer");
        // A closed pipe explains everything: the stages upstream stopped because of it.
        let writer = match writer {
            Err(e) if is_broken_pipe(&e) => return Err(e),
            w => w,
        };
        // The earliest stage's failure explains the later ones (they only see a closed queue).
        let (reader, mut counts, writer) = match (reader, tokenized, counts, writer) {
            (Ok(r), Ok(()), Ok(c), Ok(w)) => (r, c, w),
            (Err(e), ..) | (_, Err(e), ..) => return Err(e),
            (_, _, Err(e), _) | (.., Err(e)) => {
                return Err(upsampled.and_then(Result::err).unwrap_or(e))
            }
        };
        let upsample = upsampled.transpose()?;
        let lines = reader_counts(&reader, &mut counts);
        counts.output_tokens = writer.windows() * job.config.seq_len as u64;
        Ok(Finished {
            counts,
            writer,
            lines,
            upsample,
        })
    })
}

/// The `--upsample-long` stage: the tokenized stream in, the upsampled stream out.
fn upsample_stage(
    job: &AugmentJob,
    up: Upsample,
    spill: Scratch,
    buffers: &Buffers,
    rx: Receiver<DocBatch>,
    tx: SyncSender<DocBatch>,
) -> Result<UpsampleReport> {
    let q = upsample::Queues {
        rx,
        tx,
        batch_tokens: BATCH_TOKENS,
        take: &|n| buffers.batches.take(n),
        give: &|v| buffers.batches.give(v),
    };
    let names = job.input.names();
    let sources = match &job.upsample_source_key {
        Some(key) => upsample::Sources::Field { key, files: &names },
        None => upsample::Sources::Files(&names),
    };
    upsample::run(up, job.config.seed, sources, spill, q)
}

/// The reader of `job`'s input (JSONL is read by [`text`] instead when it can be).
fn open_reader<'a>(job: &'a AugmentJob, raw_bytes: &Arc<AtomicU64>) -> Reader<'a> {
    let eod = job.encoder.eod.id;
    let mut reader = Reader::new(
        &job.input,
        raw_bytes.clone(),
        eod,
        job.encoder.max_known_id(),
    );
    if let Reader::Text(r) = &mut reader {
        r.limit_threads(job.threads);
        // Very long lines are streamed (see `long.rs`) when the run can take them in pieces.
        if let Some(above) = job.long_line_stream() {
            r.stream_long_lines(above);
        }
    }
    reader
}

/// What the read stage hands back: its reader, or JSONL's counts (see [`text`]).
enum Read<'a> {
    Reader(Reader<'a>),
    Jsonl(crate::input::lines::LineTally),
}

/// What the reader counted (into `counts`), and the lines read from each text source.
fn reader_counts(reader: &Read, counts: &mut Counts) -> Vec<u64> {
    let reader = match reader {
        Read::Reader(r) => r,
        Read::Jsonl(t) => {
            counts.blank_lines = t.blank_lines;
            counts.bad_lines = t.bad_lines.clone();
            counts.input_bytes = t.bytes;
            return t.lines.clone();
        }
    };
    match reader {
        Reader::Text(r) => {
            counts.blank_lines = r.blank_lines;
            counts.bad_lines = r.bad_lines.clone();
            counts.input_bytes = r.bytes;
            r.lines.clone()
        }
        Reader::Shards(s) => {
            counts.input_bytes = s.bytes;
            Vec::new()
        }
    }
}

/// Every token accounted for: what came in, less what was dropped, plus what was inserted and
/// padded, is what was written.
fn check_balance(c: &Counts) -> Result<()> {
    let balance = c.input_tokens - c.dropped_tokens + c.inserted_tokens + c.pad_tokens;
    if balance != c.output_tokens {
        return Err(anyhow!(
            "internal error: {} input - {} dropped + {} inserted + {} pad != {} output tokens",
            c.input_tokens,
            c.dropped_tokens,
            c.inserted_tokens,
            c.pad_tokens,
            c.output_tokens
        ));
    }
    Ok(())
}

/// Stage 1: text batches to the tokenize stage, or shard batches (already ids) straight to the
/// pack stage. Provenance `line` of a shard document is its 0-based index inside its shard.
fn read(
    reader: &mut Reader,
    text_tx: SyncSender<Vec<TextDoc>>,
    shard_tx: SyncSender<DocBatch>,
    buffers: &Buffers,
    bar: &ProgressBar,
) -> Result<()> {
    let stream = match reader {
        Reader::Text(r) => return read_text_batches(r, &text_tx),
        Reader::Shards(s) => s,
    };
    drop(text_tx);
    let mut documents = 0u64;
    loop {
        let mut batch = DocBatch {
            ids: buffers.batches.take(BATCH_TOKENS),
            ..DocBatch::default()
        };
        if !stream.next_batch(&mut batch, BATCH_TOKENS)? {
            return Ok(());
        }
        documents += batch.docs.len() as u64;
        if shard_tx.send(batch).is_err() {
            return Ok(()); // the pack stage stopped; its error is reported
        }
        bar.set_position(stream.bytes);
        bar.set_message(format!("{documents} docs"));
    }
}

/// Stage 2: tokenize each batch in parallel, keeping document order.
fn tokenize_batches(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    buffers: &Buffers,
    batches: Receiver<Vec<TextDoc>>,
    out: SyncSender<DocBatch>,
    bar: &ProgressBar,
    raw_bytes: &AtomicU64,
) -> Result<()> {
    let names = job.input.names();
    let (mut documents, mut tokens) = (0u64, 0u64);
    let start = Instant::now();
    // A streamed document ends its batch (see `long.rs`); its text comes after the batch, and
    // the next batch after its text.
    let streamed = |batch: &Vec<TextDoc>| batch.last().is_some_and(|d| d.long.is_some());
    let encode = |mut batch: Vec<TextDoc>| {
        let long = if streamed(&batch) { batch.pop() } else { None };
        let encoded = encode_batch(&job.encoder, &batch, &names, |n| buffers.batches.take(n));
        drop(batch); // the text, before waiting for room in the queue
        encoded.map(|encoded| (encoded, long))
    };
    in_order(pool, IN_FLIGHT, batches, streamed, encode, |encoded| {
        let (encoded, long) = encoded?;
        if let Some(doc) = &long {
            let text = doc.long.as_ref().expect("checked above");
            documents += encoded.docs.len() as u64 + 1;
            tokens += encoded.ids.len() as u64;
            if !encoded.is_empty() && out.send(encoded).is_err() {
                return Ok(false); // the pack stage stopped; its error is reported
            }
            return match long::tokenize(&job.encoder, pool, doc, text, &out)? {
                Some(n) => {
                    tokens += n;
                    Ok(true)
                }
                None => Ok(false), // a stage stopped; its error is reported
            };
        }
        documents += encoded.docs.len() as u64;
        tokens += encoded.ids.len() as u64;
        if out.send(encoded).is_err() {
            return Ok(false); // the pack stage stopped; its error is reported
        }
        bar.set_position(raw_bytes.load(Ordering::Relaxed));
        let rate = tokens as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e6;
        bar.set_message(format!(
            "{documents} docs, {tokens} tokens ({rate:.2} M tokens/s)"
        ));
        Ok(true)
    })
}

/// The most tokens of windows augmented and sent to the writer at once.
const GROUP_TOKENS: usize = 2 * BATCH_TOKENS;

/// Stage 3 and 4: pack in stream order, augment the completed windows in parallel.
fn pack_and_augment(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    buffers: &Buffers,
    batches: Receiver<DocBatch>,
    to_writer: SyncSender<ToWriter>,
    clock: &StageClock,
) -> Result<Counts> {
    let cfg = &job.stream_config();
    let shaper = WindowShaper::new(cfg, &job.encoder)?;
    let send = |msg| {
        to_writer
            .send(msg)
            .map_err(|_| anyhow!("the writer stopped"))
    };
    let augment = |plans: &[WindowPlan]| -> Result<Vec<Window>> {
        pool.install(|| {
            plans
                .par_iter()
                .map(|p| {
                    clock.time(Stage::Augment, || {
                        let tokens = buffers.tokens.take(p.used);
                        let mask = buffers.masks.take(p.used);
                        arrange_into(p, cfg, &job.specials, tokens, mask)
                    })
                })
                .collect()
        })
    };
    let hand_on = |plans: &[WindowPlan]| send(ToWriter::Windows(augment(plans)?));
    let group = (GROUP_TOKENS / cfg.seq_len.max(1)).max(1);
    let mut packing = Packing::new(Packer::new(cfg.seq_len, shaper), group);
    for batch in batches {
        let (ids, docs) = packing.batch(batch, &hand_on)?;
        if let Some(ids) = ids {
            buffers.batches.give(ids);
        }
        send(ToWriter::Docs(docs))?;
    }
    let Packing {
        packer,
        mut counts,
        mut by_chunks,
        ..
    } = packing;
    if let Some(last) = packer.finish() {
        match cfg.tail {
            Tail::Pad => {
                tally(std::slice::from_ref(&last), &mut counts, &mut by_chunks);
                let mut w = augment(std::slice::from_ref(&last))?
                    .pop()
                    .expect("one window");
                counts.pad_tokens = (cfg.seq_len - w.tokens.len()) as u64;
                w.pad_to(cfg.seq_len, job.specials.pad);
                send(ToWriter::Windows(vec![w]))?;
            }
            Tail::Drop => counts.dropped_tokens = last.tokens.len() as u64,
        }
    }
    counts.pieces_by_chunks = chunk_histogram(&by_chunks);
    Ok(counts)
}

/// Pieces by chunk count, as the manifest lists them (counts that occurred only).
fn chunk_histogram(by_chunks: &[u64]) -> std::collections::BTreeMap<String, u64> {
    by_chunks
        .iter()
        .enumerate()
        .filter(|&(_, &k)| k > 0)
        .map(|(n, &k)| (n.to_string(), k))
        .collect()
}

/// Stage 5: write in order. Returns the writer for `finish` once everything upstream succeeded.
fn write_all<W: WindowOutput>(
    mut writer: W,
    buffers: &Buffers,
    rx: Receiver<ToWriter>,
) -> Result<W> {
    for msg in rx {
        match msg {
            ToWriter::Docs(docs) => docs.iter().try_for_each(|d| writer.write_doc(d))?,
            ToWriter::Windows(windows) => {
                for w in windows {
                    writer.write_window(&w)?;
                    buffers.tokens.give(w.tokens);
                    buffers.masks.give(w.mask);
                }
            }
        }
    }
    Ok(writer)
}

/// Adds the pieces and markup of written windows to the counts; `by_chunks[n]` counts the
/// pieces of `n` chunks (turned into the manifest's map once, at the end).
fn tally(plans: &[WindowPlan], counts: &mut Counts, by_chunks: &mut Vec<u64>) {
    for plan in plans {
        counts.pieces += plan.pieces.len() as u64;
        for p in &plan.pieces {
            counts.inserted_tokens += p.shape.overhead as u64;
            let n = p.shape.chunks as usize;
            if by_chunks.len() <= n {
                by_chunks.resize(n + 1, 0);
            }
            by_chunks[n] += 1;
        }
    }
}

fn build_manifest(job: &AugmentJob, counts: &Counts, windows: u64) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tool: "utk".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        command: job.command.clone(),
        config: job.config.clone(),
        input: InputInfo {
            format: job.input.format_name(),
            sources: job.input.names(),
            text_key: job.input.text.text_key.clone(),
            skip_bad_lines: job.input.text.skip_bad_lines,
        },
        tokenizer: TokenizerInfo {
            path: std::fs::canonicalize(job.encoder.path())
                .unwrap_or_else(|_| job.encoder.path().to_path_buf())
                .display()
                .to_string(),
            sha256: job.encoder.sha256().to_string(),
            max_known_id: job.encoder.max_known_id(),
            eod: job.encoder.eod.clone(),
            add_special_tokens: job.encoder.add_special_tokens(),
            parse_special: job.encoder.parse_special(),
            backend: job.encoder.backend().into(),
            backend_detail: job.encoder.backend_detail().into(),
        },
        special_tokens: job.specials.to_map(),
        vocab_size: job.vocab_size(),
        token_dtype: job
            .token_dtypes()
            .first()
            .map(|(_, d)| d.name().to_string())
            .unwrap_or_default(),
        formats: normalize_formats(&job.formats),
        seq_len: job.config.seq_len,
        windows,
        loss_mask: MaskInfo {
            semantics: MASK_SEMANTICS.into(),
            dtype: "uint8".into(),
        },
        files: Vec::new(),
        counts: counts.clone(),
        cpu_seconds: None,
        part: job.part.clone(),
        parts: Vec::new(),
        upsample: None,
    }
}
