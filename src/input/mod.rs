//! Stage 1: read documents.
//!
//! [`Input::resolve`] is the one way in: it turns the paths a run was given into either text
//! sources or token shards (never both), checked before any work starts. [`sources`] expands
//! paths, globs, directories and `-` into an ordered list of [`Source`]s; [`open`] opens one with
//! transparent gzip/zstd decompression (detected from the content's magic bytes, not the file
//! name); [`jsonl`] streams documents out of JSONL text with errors that name the file and line;
//! [`shards`] reads already-tokenized inputs (Megatron, datatrove, raw, `.npy`) as token ids.

pub mod jsonl;
mod long_line;
pub mod open;
pub mod parts;
pub mod shards;
pub mod sources;

pub use jsonl::DocumentReader;
pub use sources::{expand_inputs, Source};

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
    /// 1-based line number inside the (decompressed) source.
    pub line: u64,
}

/// The layout of a run's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// Detect: Megatron pairs, datatrove pairs and `.npy` files by name and content; JSONL otherwise.
    Auto,
    Jsonl,
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
    Megatron => "megatron",
    Npy => "npy",
    Datatrove => "datatrove",
    U16 => "u16",
    U32 => "u32",
});

/// How text documents are taken out of JSONL lines.
#[derive(Clone, Debug)]
pub struct TextOptions {
    /// The JSON field holding the document text.
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
    Text(Vec<Source>),
    Shards(Vec<Shard>),
}

impl Input {
    /// Classifies and expands the paths a run was given (see [`shards`] for how shards are
    /// recognised; everything else is text). Fails, naming the path, on anything that can be
    /// seen wrong without reading the documents.
    pub fn resolve(paths: &[String], format: InputFormat, text: TextOptions) -> Result<Input> {
        let files = match shards::classify(paths, format)? {
            Inputs::Text => InputFiles::Text(expand_inputs(paths)?),
            Inputs::Shards(shards) => InputFiles::Shards(shards),
        };
        Ok(Input { files, text })
    }

    /// Checks each Megatron shard made by `utk tokenize` against the `PREFIX.json` beside it
    /// (see [`Shard::check_sidecar`]); text has nothing to check.
    pub fn check_sidecars(&self, run: &Tokenization) -> Result<()> {
        match &self.files {
            InputFiles::Text(_) => Ok(()),
            InputFiles::Shards(shards) => shards.iter().try_for_each(|s| s.check_sidecar(run)),
        }
    }

    pub fn is_shards(&self) -> bool {
        matches!(self.files, InputFiles::Shards(_))
    }

    /// The names the manifest, provenance and errors use, in input order.
    pub fn names(&self) -> Vec<String> {
        match &self.files {
            InputFiles::Text(sources) => sources.iter().map(Source::name).collect(),
            InputFiles::Shards(shards) => shards.iter().map(Shard::name).collect(),
        }
    }

    /// The total size in bytes when every size is known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match &self.files {
            InputFiles::Text(sources) => sources.iter().map(Source::size).sum(),
            InputFiles::Shards(shards) => shards.iter().map(Shard::size).sum(),
        }
    }

    /// `jsonl`, or the shard layouts in first-seen order joined by `,` (the manifest's
    /// `input.format`).
    pub fn format_name(&self) -> String {
        let InputFiles::Shards(shards) = &self.files else {
            return "jsonl".into();
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
            InputFiles::Text(sources) => Reader::Text(DocumentReader::new(
                sources.clone(),
                &input.text.text_key,
                input.text.skip_bad_lines,
                raw_bytes,
            )),
            InputFiles::Shards(shards) => Reader::Shards(ShardStream::new(shards, eod, max_id)),
        }
    }
}
