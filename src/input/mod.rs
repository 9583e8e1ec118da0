//! Stage 1: read documents.
//!
//! [`Input::resolve`] is the one way in: it turns the paths a run was given into either text
//! sources or token shards (never both), checked before any work starts. [`sources`] expands
//! paths, globs, directories and `-` into an ordered list of [`Source`]s; [`open`] opens one with
//! transparent gzip/zstd decompression (detected from the content's magic bytes, not the file
//! name); [`jsonl`] streams documents out of JSONL text with errors that name the file and line;
//! [`parquet`] streams them out of parquet files (the text column only, row group by row group);
//! [`key`] reads the text key (`meta.content` is a nested field);
//! [`shards`] reads already-tokenized inputs (Megatron, datatrove, raw, `.npy`) as token ids.

pub mod field;
pub mod jsonl;
pub mod key;
pub mod lines;
mod long_line;
pub mod long_stream;
pub mod open;
pub mod parquet;
pub mod parts;
pub mod raw;
pub mod shards;
pub mod sources;

pub use jsonl::DocumentReader;
pub use sources::{expand_inputs, Source};

use crate::setting::{Setting, SettingError};
use anyhow::Result;
use shards::{Inputs, Shard, ShardStream, Tokenization};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Text read per batch before it is tokenized in parallel.
pub const BATCH_BYTES: usize = 8 << 20;
/// Token ids read from shards per batch.
pub const BATCH_TOKENS: usize = 4 << 20;

/// One document as read from the input, before tokenization.
#[derive(Debug, Clone)]
pub struct TextDoc {
    /// The document's text (the text field).
    pub text: String,
    /// Index of the source in the run's input list.
    pub source: u32,
    /// 1-based line number inside the (decompressed) source; for parquet, the 0-based row index.
    pub line: u64,
    /// A document read from a very long line as it is decoded: `text` is empty and the text
    /// arrives here (see [`long_stream`]). Only when the run asked for it
    /// ([`DocumentReader::stream_long_lines`]).
    pub long: Option<long_stream::LongText>,
    /// The value of the `--upsample-source-key` field (see [`field`]), when the run reads one
    /// and the line has it.
    pub field: Option<String>,
}

/// The layout of a run's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// Detect: Megatron pairs, datatrove pairs and `.npy` files by name and content, parquet by
    /// its `PAR1` magic; JSONL otherwise.
    Auto,
    Jsonl,
    /// Parquet files, one document per row (the text column named by the text key).
    Parquet,
    Megatron,
    Npy,
    Datatrove,
    /// Raw little-endian uint16 ids, documents separated by the EOD id.
    U16,
    /// Raw little-endian uint32 ids, documents separated by the EOD id.
    U32,
}

crate::impl_choice!(InputFormat {
    Auto => "auto",
    Jsonl => "jsonl",
    Parquet => "parquet",
    Megatron => "megatron",
    Npy => "npy",
    Datatrove => "datatrove",
    U16 => "u16",
    U32 => "u32",
});

/// How text documents are taken out of JSONL lines.
#[derive(Clone, Debug)]
pub struct TextOptions {
    /// The field holding the document text; dots separate nested names (see [`key`]).
    pub text_key: String,
    /// Skip malformed lines, counting them, instead of failing.
    pub skip_bad_lines: bool,
}

/// A run's inputs, resolved: JSONL text or token shards, never both.
#[derive(Clone, Debug)]
pub struct Input {
    pub files: InputFiles,
    /// How text is read (recorded in the manifest for shard runs too).
    pub text: TextOptions,
}

/// The files of a run's input.
#[derive(Clone, Debug)]
pub enum InputFiles {
    /// JSONL text.
    Text(Vec<Source>),
    /// Parquet files (never standard input: parquet is read from its footer).
    Parquet(Vec<Source>),
    Shards(Vec<Shard>),
}

impl Input {
    /// Classifies and expands the paths a run was given (see [`shards`] for how shards are
    /// recognised; everything else is text). Fails, naming the path, on anything that can be
    /// seen wrong without reading the documents.
    pub fn resolve(paths: &[String], format: InputFormat, text: TextOptions) -> Result<Input> {
        key::key_path(&text.text_key)?;
        let files = match shards::classify(paths, format)? {
            Inputs::Text => text_files(expand_inputs(paths)?, format, &text.text_key)?,
            Inputs::Shards(shards) => InputFiles::Shards(shards),
        };
        Ok(Input { files, text })
    }

    /// Checks each Megatron shard made by `utk tokenize` against the `PREFIX.json` beside it
    /// (see [`Shard::check_sidecar`]); text has nothing to check.
    pub fn check_sidecars(&self, run: &Tokenization) -> Result<()> {
        match &self.files {
            InputFiles::Text(_) | InputFiles::Parquet(_) => Ok(()),
            InputFiles::Shards(shards) => shards.iter().try_for_each(|s| s.check_sidecar(run)),
        }
    }

    pub fn is_shards(&self) -> bool {
        matches!(self.files, InputFiles::Shards(_))
    }

    /// The names the manifest, provenance and errors use, in input order.
    pub fn names(&self) -> Vec<String> {
        match &self.files {
            InputFiles::Text(sources) | InputFiles::Parquet(sources) => {
                sources.iter().map(Source::name).collect()
            }
            InputFiles::Shards(shards) => shards.iter().map(Shard::name).collect(),
        }
    }

    /// The total size in bytes when every size is known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match &self.files {
            InputFiles::Text(sources) | InputFiles::Parquet(sources) => {
                sources.iter().map(Source::size).sum()
            }
            InputFiles::Shards(shards) => shards.iter().map(Shard::size).sum(),
        }
    }

    /// `jsonl`, `parquet`, or the shard layouts in first-seen order joined by `,` (the
    /// manifest's `input.format`).
    pub fn format_name(&self) -> String {
        let shards = match &self.files {
            InputFiles::Text(_) => return "jsonl".into(),
            InputFiles::Parquet(_) => return "parquet".into(),
            InputFiles::Shards(shards) => shards,
        };
        let mut kinds: Vec<&str> = Vec::new();
        for s in shards {
            if !kinds.contains(&s.kind.name()) {
                kinds.push(s.kind.name());
            }
        }
        kinds.join(",")
    }
}

/// The documents of an [`Input`], read in batches: text lines (to be tokenized by the caller)
/// or token shards (already ids).
pub enum Reader<'a> {
    Text(DocumentReader),
    Shards(ShardStream<'a>),
}

impl<'a> Reader<'a> {
    /// Starts reading `input`; `raw_bytes` accumulates the bytes read from disk (compressed) for
    /// the progress bar; shards are read with the run's EOD id and highest known id.
    pub fn new(input: &'a Input, raw_bytes: Arc<AtomicU64>, eod: u32, max_id: u32) -> Self {
        match &input.files {
            InputFiles::Shards(shards) => Reader::Shards(ShardStream::new(shards, eod, max_id)),
            _ => Reader::Text(input.text_reader(raw_bytes).expect("text input")),
        }
    }
}

impl Input {
    /// The reader of a text input (JSONL or parquet); `None` for token shards.
    pub fn text_reader(&self, raw_bytes: Arc<AtomicU64>) -> Option<DocumentReader> {
        let (key, skip) = (&self.text.text_key, self.text.skip_bad_lines);
        match &self.files {
            InputFiles::Text(s) => Some(DocumentReader::new(s.clone(), key, skip, raw_bytes)),
            InputFiles::Parquet(s) => {
                Some(DocumentReader::parquet(s.clone(), key, skip, raw_bytes))
            }
            InputFiles::Shards(_) => None,
        }
    }

    /// Whether documents are parquet rows (their provenance `line` is the 0-based row index).
    pub fn is_parquet(&self) -> bool {
        matches!(self.files, InputFiles::Parquet(_))
    }
}

/// Text sources as JSONL or parquet: `--input-format parquet` requires the `PAR1` magic of every
/// file, auto detection takes parquet when every file has it (a mix is refused: each run reads
/// one layout), JSONL otherwise. Each parquet file's footer is read here: a truncated file or a
/// missing text column fails before any work starts.
fn text_files(sources: Vec<Source>, format: InputFormat, key: &str) -> Result<InputFiles> {
    if !matches!(format, InputFormat::Auto | InputFormat::Parquet) {
        return Ok(InputFiles::Text(sources));
    }
    let mut parquet = Vec::with_capacity(sources.len());
    for s in &sources {
        parquet.push(match s {
            Source::File(p) => parquet::is_parquet(p)?,
            // Byte ranges are cut from JSONL files only (parts), after this check.
            Source::Stdin | Source::Range(..) => false,
        });
    }
    if format == InputFormat::Parquet {
        if let Some(i) = parquet.iter().position(|&p| !p) {
            return Err(SettingError::new()
                .text(format!(
                    "{} is not a parquet file (it does not start with PAR1); drop ",
                    sources[i].name()
                ))
                .setting(Setting::InputFormat)
                .text(" parquet to read it as JSONL")
                .into());
        }
    }
    match (
        parquet.iter().position(|&p| p),
        parquet.iter().position(|&p| !p),
    ) {
        (None, _) => Ok(InputFiles::Text(sources)),
        (Some(_), None) => {
            for s in &sources {
                if let Source::File(p) = s {
                    parquet::check(p, key)?;
                }
            }
            Ok(InputFiles::Parquet(sources))
        }
        (Some(p), Some(j)) => anyhow::bail!(
            "inputs mix parquet ({}) and JSONL ({}); run them separately",
            sources[p].name(),
            sources[j].name()
        ),
    }
}
