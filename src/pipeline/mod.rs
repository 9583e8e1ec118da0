//! The `augment` run: stages wired together with bounded queues, order kept, output deterministic.
//!
//! ```text
//! reader thread ──batches──▶ main: tokenize (rayon) → pack (sequential) → augment (rayon) ──▶ writer thread
//! ```
//! Batches are bounded in bytes and the queues in batches, so memory does not grow with the corpus.
//! `utk tokenize` (text → a Megatron dataset, no augmentation) is in [`tokenize`].
//! Packing is the only sequential decision-making stage; it draws from per-window generators, so
//! the thread count changes how fast the output is produced, never what it is.

pub mod tokenize;

use crate::augment::{arrange, Window, WindowShaper};
use crate::config::{AugmentConfig, Tail};
use crate::input::shards::{OpenShard, Shard};
use crate::input::{DocumentReader, Source, TextDoc};
use crate::output::array::Dtype;
use crate::output::dir::OutputDir;
use crate::output::manifest::{
    Counts, InputInfo, Manifest, MaskInfo, TokenizerInfo, FORMAT, FORMAT_VERSION, MASK_SEMANTICS,
};
use crate::output::provenance::DocRecord;
use crate::output::{file_names, normalize_formats, Format, WindowWriter};
use crate::pack::{Packer, TokenizedDoc, WindowPlan};
use crate::tokenize::{Encoder, SpecialTokens};
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Text read per batch before it is tokenized in parallel.
pub(crate) const BATCH_BYTES: usize = 8 << 20;
/// Batches in flight between stages.
pub(crate) const QUEUE: usize = 2;
/// Token ids read from shards per batch.
const BATCH_TOKENS: usize = 4 << 20;

/// A fully resolved `augment` run: inputs checked, tokenizer loaded, ids assigned.
pub struct AugmentJob {
    pub config: AugmentConfig,
    pub sources: Vec<Source>,
    /// Token shards read instead of text (then `sources` names their data files).
    pub shards: Vec<Shard>,
    pub text_key: String,
    pub skip_bad_lines: bool,
    pub encoder: Encoder,
    pub tokenizer_sha256: String,
    pub parse_special: bool,
    pub add_special_tokens: bool,
    pub specials: SpecialTokens,
    pub output: PathBuf,
    /// The output formats, each once, in canonical order.
    pub formats: Vec<Format>,
    pub force: bool,
    pub threads: usize,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
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
}

/// What a run did, for the summary.
#[derive(Clone, Debug)]
pub struct Summary {
    pub counts: Counts,
    pub windows: u64,
    pub elapsed: Duration,
    pub token_dtypes: Vec<(Format, Dtype)>,
}

enum ToWriter {
    Docs(Vec<DocRecord>),
    Windows(Vec<Window>),
}

/// A batch after tokenization: each document's origin and ids, in stream order.
type Tokenized = Vec<(DocRecord, Vec<u32>)>;

/// Runs the job; on success the output directory is complete and its manifest written.
pub fn run(job: &AugmentJob, bar: &ProgressBar) -> Result<Summary> {
    let start = Instant::now();
    let cfg = &job.config;
    let names = file_names();
    let dir = OutputDir::prepare(
        &job.output,
        job.force,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let writer = WindowWriter::new(dir, cfg.seq_len, &job.formats, job.vocab_size())?;
    let pool = worker_pool(job.threads)?;
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let shard_mode = !job.shards.is_empty();
    let mut reader = DocumentReader::new(
        if shard_mode {
            Vec::new()
        } else {
            job.sources.clone()
        },
        &job.text_key,
        job.skip_bad_lines,
        raw_bytes.clone(),
    );

    // Four stages overlap: while batch k is packed and augmented, batch k+1 is tokenized and
    // batch k+2 read; the writer drains behind them. Each queue holds at most QUEUE batches.
    std::thread::scope(|scope| -> Result<Summary> {
        let (text_tx, text_rx) = sync_channel::<Vec<TextDoc>>(QUEUE);
        let (tok_tx, tok_rx) = sync_channel::<Tokenized>(QUEUE);
        let (write_tx, write_rx) = sync_channel::<ToWriter>(QUEUE);
        // Shards skip tokenization: their reader feeds the pack stage directly, and the
        // tokenize stage sees a closed queue at once.
        let shard_tx = shard_mode.then(|| tok_tx.clone());
        let (shard_bytes, shard_bar) = (raw_bytes.clone(), bar.clone());
        let read_thread = scope.spawn(move || -> Result<DocumentReader> {
            match shard_tx {
                Some(tx) => read_shards(job, &tx, &shard_bytes, &shard_bar)?,
                None => read_batches(&mut reader, &text_tx)?,
            }
            Ok(reader)
        });
        let pool = &pool;
        let pack_thread = scope.spawn(move || pack_and_augment(job, pool, tok_rx, write_tx));
        let write_thread = scope.spawn(move || write_all(writer, write_rx));
        let tokenized = tokenize_batches(job, pool, text_rx, tok_tx, bar, &raw_bytes);

        let reader = joined(read_thread.join(), "reader");
        let counts = joined(pack_thread.join(), "pack");
        let writer = joined(write_thread.join(), "writer");
        // The earliest stage's failure explains the later ones (they only see a closed queue).
        let (reader, mut counts, writer) = match (reader, tokenized, counts, writer) {
            (Ok(r), Ok(()), Ok(c), Ok(w)) => (r, c, w),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return Err(e),
        };
        let windows = writer.windows;
        counts.blank_lines = reader.blank_lines;
        counts.bad_lines = reader.bad_lines.clone();
        counts.input_bytes = if shard_mode {
            raw_bytes.load(Ordering::Relaxed)
        } else {
            reader.bytes
        };
        counts.output_tokens = windows * cfg.seq_len as u64;
        let balance = counts.input_tokens - counts.dropped_tokens
            + counts.inserted_tokens
            + counts.pad_tokens;
        if balance != counts.output_tokens {
            return Err(anyhow!(
                "internal error: {} input - {} dropped + {} inserted + {} pad != {} output tokens",
                counts.input_tokens,
                counts.dropped_tokens,
                counts.inserted_tokens,
                counts.pad_tokens,
                counts.output_tokens
            ));
        }
        let manifest = build_manifest(job, &counts, windows);
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
        })
    })
}

/// The rayon pool every parallel stage runs in.
pub fn worker_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("utk-worker-{i}"))
        .build()
        .context("cannot start worker threads")
}

/// A stage thread's result; a panic becomes an error.
pub(crate) fn joined<T>(r: std::thread::Result<Result<T>>, what: &str) -> Result<T> {
    r.map_err(|_| anyhow!("the {what} thread panicked"))?
}

pub(crate) fn read_batches(
    reader: &mut DocumentReader,
    tx: &SyncSender<Vec<TextDoc>>,
) -> Result<()> {
    loop {
        let batch = reader.next_batch(BATCH_BYTES)?;
        if batch.is_empty() || tx.send(batch).is_err() {
            return Ok(()); // the end, or a later stage stopped (its error is reported)
        }
    }
}

/// Stage 1 for token shards: documents as ids, in shard order, batched for the pack stage.
/// Provenance `line` is the document's 0-based index inside its shard.
fn read_shards(
    job: &AugmentJob,
    tx: &SyncSender<Tokenized>,
    raw_bytes: &AtomicU64,
    bar: &ProgressBar,
) -> Result<()> {
    let eod = job.encoder.eod.id;
    let max_id = job.encoder.max_known_id();
    let mut batch: Tokenized = Vec::new();
    let mut batch_tokens = 0;
    let mut documents = 0u64;
    let mut ids = Vec::new();
    for (index, shard) in job.shards.iter().enumerate() {
        let open = OpenShard::open(shard)?;
        let mut docs = open.docs(eod, max_id);
        while let Some(doc) = docs.next_doc(&mut ids)? {
            raw_bytes.fetch_add((ids.len() * open.elem_size()) as u64, Ordering::Relaxed);
            batch_tokens += ids.len();
            batch.push((
                DocRecord {
                    source: index as u32,
                    line: doc,
                    tokens: ids.len() as u64,
                },
                std::mem::take(&mut ids),
            ));
            if batch_tokens >= BATCH_TOKENS {
                documents += batch.len() as u64;
                if tx.send(std::mem::take(&mut batch)).is_err() {
                    return Ok(()); // the pack stage stopped; its error is reported
                }
                batch_tokens = 0;
                bar.set_position(raw_bytes.load(Ordering::Relaxed));
                bar.set_message(format!("{documents} docs"));
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

/// Stage 2: tokenize each batch in parallel, keeping document order.
fn tokenize_batches(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    batches: Receiver<Vec<TextDoc>>,
    out: SyncSender<Tokenized>,
    bar: &ProgressBar,
    raw_bytes: &AtomicU64,
) -> Result<()> {
    let (mut documents, mut tokens) = (0u64, 0u64);
    let start = Instant::now();
    for batch in batches {
        let encoded: Vec<Result<Vec<u32>>> = pool.install(|| {
            batch
                .par_iter()
                .map(|d| job.encoder.encode_doc(&d.text))
                .collect()
        });
        let mut tokenized = Vec::with_capacity(batch.len());
        for (doc, tokens) in batch.iter().zip(encoded) {
            let tokens = tokens.with_context(|| {
                format!("{}:{}", job.sources[doc.source as usize].name(), doc.line)
            })?;
            tokenized.push((
                DocRecord {
                    source: doc.source,
                    line: doc.line,
                    tokens: tokens.len() as u64,
                },
                tokens,
            ));
        }
        documents += tokenized.len() as u64;
        tokens += tokenized.iter().map(|(r, _)| r.tokens).sum::<u64>();
        if out.send(tokenized).is_err() {
            return Ok(()); // the pack stage stopped; its error is reported
        }
        bar.set_position(raw_bytes.load(Ordering::Relaxed));
        let rate = tokens as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e6;
        bar.set_message(format!(
            "{documents} docs, {tokens} tokens ({rate:.2} M tokens/s)"
        ));
    }
    Ok(())
}

/// Stage 3 and 4: pack in stream order, augment the completed windows in parallel.
fn pack_and_augment(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    batches: Receiver<Tokenized>,
    to_writer: SyncSender<ToWriter>,
) -> Result<Counts> {
    let cfg = &job.config;
    let mut counts = Counts::default();
    let shaper = WindowShaper::new(cfg, &job.encoder)?;
    let mut packer = Packer::new(cfg.seq_len, shaper);
    let send = |msg| {
        to_writer
            .send(msg)
            .map_err(|_| anyhow!("the writer stopped"))
    };
    let augment = |plans: &[WindowPlan]| -> Result<Vec<Window>> {
        pool.install(|| {
            plans
                .par_iter()
                .map(|p| arrange(p, cfg, &job.specials))
                .collect()
        })
    };
    for batch in batches {
        let mut plans = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        for (record, tokens) in batch {
            counts.input_tokens += tokens.len() as u64;
            packer.push(
                &TokenizedDoc {
                    ordinal: counts.documents,
                    tokens,
                },
                &mut plans,
            )?;
            counts.documents += 1;
            records.push(record);
        }
        send(ToWriter::Docs(records))?;
        tally(&plans, &mut counts);
        send(ToWriter::Windows(augment(&plans)?))?;
    }
    if let Some(last) = packer.finish() {
        match cfg.tail {
            Tail::Pad => {
                tally(std::slice::from_ref(&last), &mut counts);
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
    Ok(counts)
}

/// Stage 5: write in order. Returns the writer for `finish` once everything upstream succeeded.
fn write_all(mut writer: WindowWriter, rx: Receiver<ToWriter>) -> Result<WindowWriter> {
    for msg in rx {
        match msg {
            ToWriter::Docs(docs) => docs.iter().try_for_each(|d| writer.write_doc(d))?,
            ToWriter::Windows(windows) => {
                windows.iter().try_for_each(|w| writer.write_window(w))?
            }
        }
    }
    Ok(writer)
}

/// Adds the pieces and markup of written windows to the counts.
fn tally(plans: &[WindowPlan], counts: &mut Counts) {
    for plan in plans {
        counts.pieces += plan.pieces.len() as u64;
        for p in &plan.pieces {
            counts.inserted_tokens += p.shape.overhead as u64;
            *counts
                .pieces_by_chunks
                .entry(p.shape.chunks.to_string())
                .or_insert(0) += 1;
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
            format: input_format(&job.shards),
            sources: job.sources.iter().map(Source::name).collect(),
            text_key: job.text_key.clone(),
            skip_bad_lines: job.skip_bad_lines,
        },
        tokenizer: TokenizerInfo {
            path: std::fs::canonicalize(job.encoder.path())
                .unwrap_or_else(|_| job.encoder.path().to_path_buf())
                .display()
                .to_string(),
            sha256: job.tokenizer_sha256.clone(),
            max_known_id: job.encoder.max_known_id(),
            eod: job.encoder.eod.clone(),
            add_special_tokens: job.add_special_tokens,
            parse_special: job.parse_special,
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
    }
}

/// `jsonl`, or the shard layouts in first-seen order joined by `,`.
pub fn input_format(shards: &[Shard]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for s in shards {
        if !kinds.contains(&s.kind.name()) {
            kinds.push(s.kind.name());
        }
    }
    if kinds.is_empty() {
        "jsonl".into()
    } else {
        kinds.join(",")
    }
}
