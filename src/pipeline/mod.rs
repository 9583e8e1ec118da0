//! The `augment` run: stages wired together with bounded queues, order kept, output deterministic.
//!
//! ```text
//! reader thread ──batches──▶ main: tokenize (rayon) → pack (sequential) → augment (rayon) ──▶ writer thread
//! ```
//! Batches are bounded in bytes and the queues in batches, so memory does not grow with the corpus.
//! `utk tokenize` (text → a Megatron dataset, no augmentation) is in [`tokenize`].
//! Packing is the only sequential decision-making stage; it draws from per-window generators, so
//! the thread count changes how fast the output is produced, never what it is.

mod recycle;
pub mod tokenize;

use crate::augment::{arrange_into, Window, WindowShaper};
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
use crate::pack::{Packer, WindowPlan};
use crate::tokenize::{Encoder, SpecialTokens};
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use recycle::Recycle;
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

/// Buffers the stages hand back for reuse (see [`recycle`]).
struct Buffers {
    batches: Recycle<u32>,
    tokens: Recycle<u32>,
    masks: Recycle<u8>,
}

impl Buffers {
    fn new(seq_len: usize) -> Self {
        // About as many windows as the queues hold.
        let windows = ((QUEUE + 1) * BATCH_TOKENS / seq_len.max(1)).clamp(4, 256);
        Buffers {
            batches: Recycle::new(QUEUE + 1),
            tokens: Recycle::new(windows),
            masks: Recycle::new(windows),
        }
    }
}

enum ToWriter {
    Docs(Vec<DocRecord>),
    Windows(Vec<Window>),
}

/// A batch of documents as ids, in stream order: document `i`'s ids are the `docs[i].tokens`
/// ids following those of document `i - 1` in `ids` (one buffer, not one allocation per document).
struct Tokenized {
    ids: Vec<u32>,
    docs: Vec<DocRecord>,
}

impl Tokenized {
    /// Each document's origin and ids.
    fn iter(&self) -> impl Iterator<Item = (&DocRecord, &[u32])> {
        let mut at = 0;
        self.docs.iter().map(move |d| {
            let ids = &self.ids[at..at + d.tokens as usize];
            at += d.tokens as usize;
            (d, ids)
        })
    }
}

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
    let buffers = Buffers::new(cfg.seq_len);
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
        let buffers = &buffers;
        let read_thread = scope.spawn(move || -> Result<DocumentReader> {
            match shard_tx {
                Some(tx) => read_shards(job, &tx, buffers, &shard_bytes, &shard_bar)?,
                None => read_batches(&mut reader, &text_tx)?,
            }
            Ok(reader)
        });
        let pool = &pool;
        let pack_thread =
            scope.spawn(move || pack_and_augment(job, pool, buffers, tok_rx, write_tx));
        let write_thread = scope.spawn(move || write_all(writer, buffers, write_rx));
        let tokenized = tokenize_batches(job, pool, buffers, text_rx, tok_tx, bar, &raw_bytes);

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
    buffers: &Buffers,
    raw_bytes: &AtomicU64,
    bar: &ProgressBar,
) -> Result<()> {
    let eod = job.encoder.eod.id;
    let max_id = job.encoder.max_known_id();
    let new_batch = || Tokenized {
        ids: buffers.batches.take(BATCH_TOKENS),
        docs: Vec::new(),
    };
    let mut batch = new_batch();
    let mut documents = 0u64;
    for (index, shard) in job.shards.iter().enumerate() {
        let open = OpenShard::open(shard)?;
        let mut docs = open.docs(eod, max_id);
        let mut before = batch.ids.len();
        while let Some(doc) = docs.next_doc(&mut batch.ids)? {
            let tokens = batch.ids.len() - before;
            raw_bytes.fetch_add((tokens * open.elem_size()) as u64, Ordering::Relaxed);
            batch.docs.push(DocRecord {
                source: index as u32,
                line: doc,
                tokens: tokens as u64,
            });
            if batch.ids.len() >= BATCH_TOKENS {
                documents += batch.docs.len() as u64;
                let full = std::mem::replace(&mut batch, new_batch());
                if tx.send(full).is_err() {
                    return Ok(()); // the pack stage stopped; its error is reported
                }
                // What has been copied out is not read again: keep the resident set bounded.
                open.release_before(docs.position());
                bar.set_position(raw_bytes.load(Ordering::Relaxed));
                bar.set_message(format!("{documents} docs"));
            }
            before = batch.ids.len();
        }
    }
    if !batch.docs.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

/// Stage 2: tokenize each batch in parallel, keeping document order.
fn tokenize_batches(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    buffers: &Buffers,
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
        let total = encoded.iter().flatten().map(Vec::len).sum();
        let mut tokenized = Tokenized {
            ids: buffers.batches.take(total),
            docs: Vec::with_capacity(batch.len()),
        };
        for (doc, ids) in batch.iter().zip(encoded) {
            let ids = ids.with_context(|| {
                format!("{}:{}", job.sources[doc.source as usize].name(), doc.line)
            })?;
            tokenized.docs.push(DocRecord {
                source: doc.source,
                line: doc.line,
                tokens: ids.len() as u64,
            });
            tokenized.ids.extend_from_slice(&ids);
        }
        documents += tokenized.docs.len() as u64;
        tokens += tokenized.ids.len() as u64;
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
    buffers: &Buffers,
    batches: Receiver<Tokenized>,
    to_writer: SyncSender<ToWriter>,
) -> Result<Counts> {
    let cfg = &job.config;
    let mut counts = Counts::default();
    let mut by_chunks: Vec<u64> = Vec::new();
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
                .map(|p| {
                    let tokens = buffers.tokens.take(p.used);
                    let mask = buffers.masks.take(p.used);
                    arrange_into(p, cfg, &job.specials, tokens, mask)
                })
                .collect()
        })
    };
    for batch in batches {
        let mut plans = Vec::new();
        for (_, ids) in batch.iter() {
            packer.push_ids(counts.documents, ids, &mut plans)?;
            counts.documents += 1;
        }
        counts.input_tokens += batch.ids.len() as u64;
        buffers.batches.give(batch.ids);
        send(ToWriter::Docs(batch.docs))?;
        tally(&plans, &mut counts, &mut by_chunks);
        send(ToWriter::Windows(augment(&plans)?))?;
        for plan in plans {
            packer.recycle(plan);
        }
    }
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
    counts.pieces_by_chunks = by_chunks
        .iter()
        .enumerate()
        .filter(|&(_, &k)| k > 0)
        .map(|(n, &k)| (n.to_string(), k))
        .collect();
    Ok(counts)
}

/// Stage 5: write in order. Returns the writer for `finish` once everything upstream succeeded.
fn write_all(
    mut writer: WindowWriter,
    buffers: &Buffers,
    rx: Receiver<ToWriter>,
) -> Result<WindowWriter> {
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
