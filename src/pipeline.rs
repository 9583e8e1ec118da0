//! The `augment` run: stages wired together with bounded queues, order kept, output deterministic.
//!
//! ```text
//! reader thread ──batches──▶ main: tokenize (rayon) → pack (sequential) → augment (rayon) ──▶ writer thread
//! ```
//! Batches are bounded in bytes and the queues in batches, so memory does not grow with the corpus.
//! Packing is the only sequential decision-making stage; it draws from per-window generators, so
//! the thread count changes how fast the output is produced, never what it is.

use crate::augment::{arrange, Window, WindowShaper};
use crate::config::{AugmentConfig, Tail};
use crate::input::{DocumentReader, Source, TextDoc};
use crate::output::dir::OutputDir;
use crate::output::manifest::{
    Counts, InputInfo, Manifest, MaskInfo, TokenizerInfo, FORMAT, FORMAT_VERSION, MASK_SEMANTICS,
};
use crate::output::megatron::DType;
use crate::output::provenance::DocRecord;
use crate::output::{file_names, WindowWriter};
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
const BATCH_BYTES: usize = 8 << 20;
/// Batches in flight between stages.
const QUEUE: usize = 2;

/// A fully resolved `augment` run: inputs checked, tokenizer loaded, ids assigned.
pub struct AugmentJob {
    pub config: AugmentConfig,
    pub sources: Vec<Source>,
    pub text_key: String,
    pub skip_bad_lines: bool,
    pub encoder: Encoder,
    pub tokenizer_sha256: String,
    pub parse_special: bool,
    pub add_special_tokens: bool,
    pub specials: SpecialTokens,
    pub output: PathBuf,
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

    pub fn token_dtype(&self) -> DType {
        DType::for_vocab(self.vocab_size())
    }
}

/// What a run did, for the summary.
#[derive(Clone, Debug)]
pub struct Summary {
    pub counts: Counts,
    pub windows: u64,
    pub elapsed: Duration,
    pub token_dtype: DType,
}

enum ToWriter {
    Docs(Vec<DocRecord>),
    Windows(Vec<Window>),
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
    let writer = WindowWriter::new(dir, cfg.seq_len, job.token_dtype())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .thread_name(|i| format!("utk-worker-{i}"))
        .build()
        .context("cannot start worker threads")?;
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let mut reader = DocumentReader::new(
        job.sources.clone(),
        &job.text_key,
        job.skip_bad_lines,
        raw_bytes.clone(),
    );

    std::thread::scope(|scope| -> Result<Summary> {
        let (batch_tx, batch_rx) = sync_channel::<Vec<TextDoc>>(QUEUE);
        let (write_tx, write_rx) = sync_channel::<ToWriter>(QUEUE);
        let read_thread = scope.spawn(move || -> Result<DocumentReader> {
            read_batches(&mut reader, &batch_tx)?;
            Ok(reader)
        });
        let write_thread = scope.spawn(move || write_all(writer, write_rx));

        let mut counts = Counts::default();
        let stages = process(
            job,
            &pool,
            batch_rx,
            &write_tx,
            &mut counts,
            bar,
            &raw_bytes,
        );
        drop(write_tx);
        // Report the earliest failure: a reader error explains a short stream, a writer error a
        // closed queue.
        let reader = read_thread
            .join()
            .map_err(|_| anyhow!("reader thread panicked"))?;
        let written = write_thread
            .join()
            .map_err(|_| anyhow!("writer thread panicked"))?;
        let reader = reader?;
        let (windows, writer) = match (stages, written) {
            (Ok(()), Ok(w)) => (w.windows, w),
            (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
        };
        counts.blank_lines = reader.blank_lines;
        counts.bad_lines = reader.bad_lines.clone();
        counts.input_bytes = reader.bytes;
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
        Ok(Summary {
            counts,
            windows,
            elapsed: start.elapsed(),
            token_dtype: job.token_dtype(),
        })
    })
}

fn read_batches(reader: &mut DocumentReader, tx: &SyncSender<Vec<TextDoc>>) -> Result<()> {
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < BATCH_BYTES {
            match reader.next_doc()? {
                Some(doc) => {
                    bytes += doc.text.len() + 64;
                    batch.push(doc);
                }
                None => break,
            }
        }
        let last = bytes < BATCH_BYTES;
        if !batch.is_empty() && tx.send(batch).is_err() {
            return Ok(()); // the main stage stopped; its error is reported
        }
        if last {
            return Ok(());
        }
    }
}

/// A writer that is dropped without `finish` removes its temporary files.
struct Written {
    windows: u64,
    writer: WindowWriter,
}

impl Written {
    fn finish(
        self,
        manifest: impl FnOnce(Vec<crate::output::manifest::FileInfo>) -> Result<Vec<u8>>,
    ) -> Result<()> {
        self.writer.finish(manifest)
    }
}

fn write_all(mut writer: WindowWriter, rx: Receiver<ToWriter>) -> Result<Written> {
    for msg in rx {
        match msg {
            ToWriter::Docs(docs) => {
                for d in &docs {
                    writer.write_doc(d)?;
                }
            }
            ToWriter::Windows(windows) => {
                for w in &windows {
                    writer.write_window(w)?;
                }
            }
        }
    }
    Ok(Written {
        windows: writer.windows,
        writer,
    })
}

fn process(
    job: &AugmentJob,
    pool: &rayon::ThreadPool,
    batches: Receiver<Vec<TextDoc>>,
    to_writer: &SyncSender<ToWriter>,
    counts: &mut Counts,
    bar: &ProgressBar,
    raw_bytes: &AtomicU64,
) -> Result<()> {
    let cfg = &job.config;
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
        let encoded: Vec<Result<Vec<u32>>> = pool.install(|| {
            batch
                .par_iter()
                .map(|d| job.encoder.encode_doc(&d.text))
                .collect()
        });
        let mut plans = Vec::new();
        let mut docs = Vec::with_capacity(batch.len());
        for (doc, tokens) in batch.iter().zip(encoded) {
            let tokens = tokens.with_context(|| {
                format!("{}:{}", job.sources[doc.source as usize].name(), doc.line)
            })?;
            docs.push(DocRecord {
                source: doc.source,
                line: doc.line,
                tokens: tokens.len() as u64,
            });
            counts.input_tokens += tokens.len() as u64;
            packer.push(
                &TokenizedDoc {
                    ordinal: counts.documents,
                    tokens,
                },
                &mut plans,
            )?;
            counts.documents += 1;
        }
        send(ToWriter::Docs(docs))?;
        tally(&plans, counts);
        let windows = augment(&plans)?;
        send(ToWriter::Windows(windows))?;
        bar.set_position(raw_bytes.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{} docs, {} windows",
            counts.documents,
            packer.windows_started()
        ));
    }
    if let Some(last) = packer.finish() {
        match cfg.tail {
            Tail::Pad => {
                tally(std::slice::from_ref(&last), counts);
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
    bar.set_position(raw_bytes.load(Ordering::Relaxed));
    Ok(())
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
            sources: job.sources.iter().map(Source::name).collect(),
            text_key: job.text_key.clone(),
            skip_bad_lines: job.skip_bad_lines,
        },
        tokenizer: TokenizerInfo {
            path: job.encoder.path().display().to_string(),
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
        token_dtype: serde_json::to_value(job.token_dtype())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
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
