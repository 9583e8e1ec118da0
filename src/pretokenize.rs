//! The `utk tokenize` run: text documents → a Megatron indexed dataset, tokenized once
//! ("pre-tokenized": `utk augment PREFIX` reads it back without a tokenizer pass).
//!
//! ```text
//! reader thread ──batches──▶ main: tokenize (rayon, order kept) → write PREFIX.bin in order
//! (JSONL: the reader cuts whole lines, the pool parses them, as for `utk augment`)
//! ```
//! One sequence (and one document) per input document, EOD appended, so `utk augment PREFIX`
//! later gives the same windows as augmenting the text. Token dtype follows Megatron's rule
//! (uint16 below 65,500 ids, else int32). `PREFIX.bin` and `PREFIX.idx` are written under
//! temporary names and renamed when complete; the `PREFIX.json` sidecar comes last.

use crate::codec::Dtype;
use crate::input::lines::LineTally;
use crate::input::shards::TOKENIZED_FORMAT;
use crate::input::{DocumentReader, Input, InputFiles, Source, TextDoc};
use crate::output::dir::OutputDir;
use crate::output::manifest::FileInfo;
use crate::output::megatron::MegatronWriter;
use crate::pipeline::read_jsonl;
use crate::record::BadLines;
use crate::tokenize::batch::encode_batch;
use crate::tokenize::{Encoder, EodChoice};
use crate::workers::{in_order, joined, read_text_batches, worker_pool, IN_FLIGHT, QUEUE};
use anyhow::{anyhow, bail, Result};
use indicatif::ProgressBar;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A resolved `tokenize` run.
pub struct TokenizeJob {
    /// JSONL text (token shards are already tokenized).
    pub input: Input,
    pub encoder: Encoder,
    /// Output prefix: writes `PREFIX.bin`, `PREFIX.idx`, `PREFIX.json`.
    pub prefix: PathBuf,
    pub force: bool,
    pub threads: usize,
    pub command: Vec<String>,
    /// The part of a larger run this is (its input already selected), if any.
    pub part: Option<crate::part::PartRecord>,
}

impl TokenizeJob {
    /// The token dtype, by Megatron's rule over every id the tokenizer (and the EOD) can produce.
    pub fn dtype(&self) -> Dtype {
        let top = self.encoder.max_known_id().max(self.encoder.eod.id) as u64;
        Dtype::megatron_for_vocab(top + 1)
    }

    /// `PREFIX.ext` as a path.
    pub fn path(&self, ext: &str) -> PathBuf {
        let mut s = self.prefix.as_os_str().to_owned();
        s.push(format!(".{ext}"));
        PathBuf::from(s)
    }
}

/// What the run did; also the body of `PREFIX.json`.
#[derive(Clone, Debug, Serialize)]
pub struct TokenizeSummary {
    pub format: String,
    pub tool_version: String,
    pub command: Vec<String>,
    pub sources: Vec<String>,
    pub text_key: String,
    pub tokenizer: String,
    pub tokenizer_sha256: String,
    /// `--tokenizer-backend`'s outcome: `fast-bpe` or `tokenizers` (the ids are the same).
    pub backend: String,
    pub add_special_tokens: bool,
    pub parse_special: bool,
    pub eod: EodChoice,
    pub dtype: Dtype,
    pub documents: u64,
    /// Tokens written, EOD included.
    pub tokens: u64,
    pub input_bytes: u64,
    pub blank_lines: u64,
    pub bad_lines: BadLines,
    /// The `.bin` and `.idx` with their sizes and CRC-32C, checked when the shard is read.
    pub files: Vec<FileInfo>,
    /// The part of a larger run this is (`--num-shards`/`--shard-index`, or a Slurm array task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<crate::part::PartRecord>,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Runs the job; on success `PREFIX.bin`, `PREFIX.idx` and `PREFIX.json` exist and agree.
pub fn run(job: &TokenizeJob, bar: &ProgressBar) -> Result<TokenizeSummary> {
    let start = Instant::now();
    let root = match job.prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file = |ext: &str| -> String {
        job.path(ext)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (bin_name, idx_name, json_name) = (file("bin"), file("idx"), file("json"));
    let mut dir = OutputDir::prepare_files(&root, job.force, &[&json_name, &bin_name, &idx_name])?;
    let mut writer = MegatronWriter::new(dir.create(&bin_name)?, job.dtype());
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let (documents, tokens, reader) = run_stages(job, &mut writer, bar, &raw_bytes)?;
    let (bin, idx) = writer.finish()?;
    drop(bin);
    let mut idx_file = dir.create(&idx_name)?;
    idx_file.write_all(&idx)?;
    idx_file.flush()?;
    drop(idx_file);
    let dtype = job.dtype();
    let mut files = vec![
        FileInfo::new(
            &bin_name,
            "tokens",
            "megatron-bin",
            Some(dtype),
            tokens * dtype.size() as u64,
        ),
        FileInfo::new(
            &idx_name,
            "tokens",
            "megatron-idx",
            Some(dtype),
            idx.len() as u64,
        ),
    ];
    dir.record_checksums(&mut files)?;
    let mut summary = planned_summary(job);
    summary.files = files;
    summary.documents = documents;
    summary.tokens = tokens;
    summary.input_bytes = reader.bytes;
    summary.blank_lines = reader.blank_lines;
    summary.bad_lines = reader.bad_lines;
    summary.elapsed = start.elapsed();
    if let Some(p) = summary.part.as_mut() {
        p.set_lines(&reader.lines);
    }
    dir.commit_as(&json_name, &serde_json::to_vec_pretty(&summary)?)?;
    bar.set_position(raw_bytes.load(Ordering::Relaxed));
    Ok(summary)
}

/// The record a run of `job` writes, before its counts are known (to compare with an existing
/// output's: resume).
pub fn planned_summary(job: &TokenizeJob) -> TokenizeSummary {
    TokenizeSummary {
        format: TOKENIZED_FORMAT.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        command: job.command.clone(),
        sources: job.input.names(),
        text_key: job.input.text.text_key.clone(),
        tokenizer: canonical(job.encoder.path()),
        tokenizer_sha256: job.encoder.sha256().to_string(),
        backend: job.encoder.backend().into(),
        add_special_tokens: job.encoder.add_special_tokens(),
        parse_special: job.encoder.parse_special(),
        eod: job.encoder.eod.clone(),
        dtype: job.dtype(),
        documents: 0,
        tokens: 0,
        input_bytes: 0,
        blank_lines: 0,
        bad_lines: BadLines::default(),
        files: Vec::new(),
        part: job.part.clone(),
        elapsed: Duration::ZERO,
    }
}

/// What the read stage counted.
struct ReadCounts {
    bytes: u64,
    blank_lines: u64,
    bad_lines: BadLines,
    /// Lines read from each text source.
    lines: Vec<u64>,
}

impl From<DocumentReader> for ReadCounts {
    fn from(r: DocumentReader) -> Self {
        ReadCounts {
            bytes: r.bytes,
            blank_lines: r.blank_lines,
            bad_lines: r.bad_lines,
            lines: r.lines,
        }
    }
}

impl From<LineTally> for ReadCounts {
    fn from(t: LineTally) -> Self {
        ReadCounts {
            bytes: t.bytes,
            blank_lines: t.blank_lines,
            bad_lines: t.bad_lines,
            lines: t.lines,
        }
    }
}

/// How the text is read: JSONL sources, or parquet by its reader.
enum TextRead<'a> {
    Jsonl(&'a [Source]),
    Reader(Box<DocumentReader>),
}

/// A reader thread and, on this thread, tokenize (in the pool) → write in order. JSONL is read
/// as `utk augment` reads it (a reader cuts whole lines, the pool parses them: see
/// [`crate::pipeline::read_jsonl`]); parquet by its [`DocumentReader`]. Returns the documents
/// and tokens written and what the reader counted.
fn run_stages<W: Write>(
    job: &TokenizeJob,
    writer: &mut MegatronWriter<W>,
    bar: &ProgressBar,
    raw_bytes: &Arc<AtomicU64>,
) -> Result<(u64, u64, ReadCounts)> {
    let pool = worker_pool(job.threads)?;
    let text = &job.input.text;
    let read = match &job.input.files {
        InputFiles::Text(sources) => TextRead::Jsonl(sources),
        _ => match job.input.text_reader(raw_bytes.clone()) {
            Some(mut reader) => {
                reader.limit_threads(job.threads);
                TextRead::Reader(Box::new(reader))
            }
            None => bail!(
                "token shards are already tokenized: give `utk tokenize` JSONL or parquet text"
            ),
        },
    };
    std::thread::scope(|scope| -> Result<_> {
        let (tx, rx) = sync_channel::<Vec<TextDoc>>(QUEUE);
        let pool = &pool;
        let read_thread = scope.spawn(move || -> Result<ReadCounts> {
            match read {
                TextRead::Jsonl(sources) => {
                    let skip = text.skip_bad_lines;
                    read_jsonl(sources, &text.text_key, skip, raw_bytes, pool, tx).map(Into::into)
                }
                TextRead::Reader(mut reader) => {
                    read_text_batches(&mut reader, &tx)?;
                    Ok((*reader).into())
                }
            }
        });
        let written = write_batches(job, pool, rx, writer, bar, raw_bytes);
        // The reader's failure explains the writer's (it only sees a closed queue).
        let counts = joined(read_thread.join(), "reader")?;
        let (documents, tokens) = written?;
        Ok((documents, tokens, counts))
    })
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Tokenizes each batch in parallel and writes its documents in order. Consumes the queue so the
/// reader is released (its sends fail) if this stage stops early.
fn write_batches<W: Write>(
    job: &TokenizeJob,
    pool: &rayon::ThreadPool,
    batches: Receiver<Vec<TextDoc>>,
    writer: &mut MegatronWriter<W>,
    bar: &ProgressBar,
    raw_bytes: &AtomicU64,
) -> Result<(u64, u64)> {
    let names = job.input.names();
    let (mut documents, mut tokens) = (0u64, 0u64);
    let encode =
        |batch: Vec<TextDoc>| encode_batch(&job.encoder, &batch, &names, Vec::with_capacity);
    in_order(
        pool,
        IN_FLIGHT,
        batches,
        |_| false,
        encode,
        |encoded| {
            let encoded = encoded?;
            for (doc, ids) in encoded.iter() {
                if ids.len() > i32::MAX as usize {
                    return Err(anyhow!(
                        "{}:{}: {} tokens do not fit a Megatron sequence (at most 2^31-1)",
                        names[doc.source as usize],
                        doc.line,
                        ids.len()
                    ));
                }
                writer.write_seq(ids)?;
            }
            tokens += encoded.ids.len() as u64;
            documents += encoded.docs.len() as u64;
            bar.set_position(raw_bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{documents} docs"));
            Ok(true)
        },
    )?;
    Ok((documents, tokens))
}
