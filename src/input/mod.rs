//! Stage 1: read documents.
//!
//! [`sources`] turns the user's paths, globs, directories and `-` into an ordered list of
//! [`Source`]s; [`open`] opens one with transparent gzip/zstd decompression (detected from the
//! content's magic bytes, not the file name); [`jsonl`] streams documents out of JSONL text with
//! errors that name the file and line; [`shards`] reads already-tokenized inputs (Megatron,
//! datatrove, raw, `.npy`) as token ids.

pub mod jsonl;
pub mod open;
pub mod shards;
pub mod sources;

pub use jsonl::{BadLines, DocumentReader};
pub use sources::{expand_inputs, Source};

/// One document as read from the input, before tokenization.
#[derive(Debug, Clone)]
pub struct TextDoc {
    /// The document's text (the `--text-key` field).
    pub text: String,
    /// Index of the source in the run's input list.
    pub source: u32,
    /// 1-based line number inside the (decompressed) source.
    pub line: u64,
}
