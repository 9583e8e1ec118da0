//! Stage 5: write windows in formats trainers read, without a conversion step.
//!
//! Each [`Format`] is one module, a [`WindowSink`] that receives every window's tokens and loss
//! mask in order and leaves a token file and a mask file:
//!
//! - [`megatron`]: Megatron indexed datasets `tokens.bin/.idx`, `loss_mask.bin/.idx` (uint8), one
//!   sequence per window;
//! - [`olmo`]: OLMo-core's headerless numpy arrays `tokens.olmo.bin` and `loss_mask.olmo.bin`
//!   (`np.bool_`), read with `label_mask_paths`;
//! - [`npy`]: real `.npy` files `tokens.npy` and `loss_mask.npy` of shape `(windows, seq_len)`;
//! - [`parquet`]: `windows.parquet`, one row per window (`input_ids`, `loss_mask` lists), for
//!   Hugging Face `datasets`.
//!
//! Beside them: [`provenance`] (where every span came from), [`manifest`] (configuration, ids,
//! every file with its role, format, dtype and size; written last), [`dir`] (temporary names,
//! rename on success, `--force`), [`array`] (element types and the shared little-endian encoder)
//! and [`reader`] (opens a finished output through any of the formats it holds).
//!
//! [`WindowWriter`] is the one object the pipeline writes an output directory through; a stream
//! (`-o -`) is written by [`stream::JsonLines`] instead, behind the same [`WindowOutput`].

pub mod array;
pub mod checksum;
pub mod dir;
pub mod doc_lens;
pub mod manifest;
pub mod megatron;
pub mod npy;
pub mod olmo;
pub mod parquet;
pub mod provenance;
pub mod reader;
pub mod stream;

use crate::augment::Window;
use crate::choice::Choice;
use crate::codec::Dtype;
use crate::record::DocRecord;
use anyhow::{bail, Result};
use dir::{OutputDir, Staged};
use manifest::FileInfo;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// The manifest role of token files.
pub const TOKENS: &str = "tokens";
/// The manifest role of loss-mask files.
pub const LOSS_MASK: &str = "loss_mask";
pub const SPANS: &str = "provenance.spans";
pub const DOCS: &str = "provenance.docs";

/// An on-disk layout of the token and mask files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Megatron-LM / megatron-core indexed datasets: tokens.bin/.idx, loss_mask.bin/.idx.
    Megatron,
    /// OLMo-core numpy arrays: tokens.olmo.bin, loss_mask.olmo.bin (label_mask_paths).
    Olmo,
    /// numpy .npy files of shape (windows, seq_len): tokens.npy, loss_mask.npy.
    Npy,
    /// windows.parquet: one row per window, columns input_ids and loss_mask.
    Parquet,
}

crate::impl_choice!(Format {
    Megatron => "megatron",
    Olmo => "olmo",
    Npy => "npy",
    Parquet => "parquet",
});

impl Format {
    /// The dtype of token ids in this format for ids below `vocab_size`: Megatron's own rule
    /// (uint16 below 65,500, else int32: it has no uint32), otherwise the narrowest unsigned type.
    pub fn token_dtype(self, vocab_size: u64) -> Dtype {
        match self {
            Format::Megatron => Dtype::megatron_for_vocab(vocab_size),
            Format::Olmo | Format::Npy => Dtype::unsigned_for_vocab(vocab_size),
            Format::Parquet => parquet::token_dtype(vocab_size),
        }
    }

    /// The token file and the mask file (Megatron's `.bin` data files; each has an `.idx`;
    /// parquet's one file holds both).
    pub fn data_files(self) -> (&'static str, &'static str) {
        match self {
            Format::Megatron => (megatron::TOKENS_BIN, megatron::MASK_BIN),
            Format::Olmo => (olmo::TOKENS_FILE, olmo::MASK_FILE),
            Format::Npy => (npy::TOKENS_FILE, npy::MASK_FILE),
            Format::Parquet => (parquet::FILE, parquet::FILE),
        }
    }

    /// Every file this format writes.
    pub fn file_names(self) -> Vec<&'static str> {
        match self {
            Format::Megatron => vec![
                megatron::TOKENS_BIN,
                megatron::TOKENS_IDX,
                megatron::MASK_BIN,
                megatron::MASK_IDX,
            ],
            Format::Parquet => vec![parquet::FILE],
            f => {
                let (t, m) = f.data_files();
                vec![t, m]
            }
        }
    }

    /// Opens this format's files in `dir`.
    fn sink(
        self,
        dir: &mut OutputDir,
        seq_len: usize,
        vocab_size: u64,
    ) -> Result<Box<dyn WindowSink>> {
        Ok(match self {
            Format::Megatron => Box::new(megatron::MegatronSink::create(
                dir,
                self.token_dtype(vocab_size),
            )?),
            Format::Olmo => Box::new(olmo::OlmoSink::create(dir, self.token_dtype(vocab_size))?),
            Format::Npy => Box::new(npy::NpySink::create(
                dir,
                seq_len,
                self.token_dtype(vocab_size),
            )?),
            Format::Parquet => Box::new(parquet::ParquetSink::create(
                dir,
                seq_len,
                self.token_dtype(vocab_size),
            )?),
        })
    }
}

/// The formats in canonical order, each once (`--format npy,megatron,npy` → megatron, npy).
pub fn normalize_formats(formats: &[Format]) -> Vec<Format> {
    let mut f = formats.to_vec();
    f.sort();
    f.dedup();
    f
}

/// One format's token and mask files, receiving windows in order.
pub trait WindowSink: Send {
    /// Appends one window: `seq_len` token ids and as many mask values (0 or 1).
    fn write_window(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()>;
    /// Completes the files (staged in `dir`, not yet renamed) and describes them for the manifest.
    fn finish(self: Box<Self>, dir: &mut OutputDir) -> Result<Vec<FileInfo>>;
}

/// Where the pipeline's writer stage sends windows and document records, in order: an output
/// directory ([`WindowWriter`]) or a stream ([`stream::JsonLines`]).
pub trait WindowOutput: Send {
    fn write_window(&mut self, w: &Window) -> Result<()>;
    fn write_doc(&mut self, d: &DocRecord) -> Result<()>;
    /// Windows written so far.
    fn windows(&self) -> u64;
}

impl WindowOutput for WindowWriter {
    fn write_window(&mut self, w: &Window) -> Result<()> {
        WindowWriter::write_window(self, w)
    }
    fn write_doc(&mut self, d: &DocRecord) -> Result<()> {
        WindowWriter::write_doc(self, d)
    }
    fn windows(&self) -> u64 {
        self.windows
    }
}

/// Every file name `augment` can write besides the manifest, whatever the formats: `--force`
/// removes them all, so no file of an earlier run in another format is left beside a new manifest.
pub fn file_names() -> Vec<String> {
    Format::ALL
        .iter()
        .flat_map(|f| f.file_names())
        .chain([SPANS, DOCS, doc_lens::BIN, doc_lens::IDX])
        .map(String::from)
        .collect()
}

/// Writes windows and document records into an [`OutputDir`], in every selected format.
pub struct WindowWriter {
    dir: OutputDir,
    seq_len: usize,
    sinks: Vec<Box<dyn WindowSink>>,
    spans: Staged,
    docs: Staged,
    buf: Vec<u8>,
    pub windows: u64,
    /// `--doc-boundaries`: each window's segment lengths.
    doc_lens: Option<doc_lens::DocLensSink>,
}

impl WindowWriter {
    /// `formats` must not be empty; ids must be below `vocab_size`.
    pub fn new(
        mut dir: OutputDir,
        seq_len: usize,
        formats: &[Format],
        vocab_size: u64,
    ) -> Result<Self> {
        if formats.is_empty() {
            bail!("no output format selected");
        }
        let sinks = normalize_formats(formats)
            .into_iter()
            .map(|f| f.sink(&mut dir, seq_len, vocab_size))
            .collect::<Result<Vec<_>>>()?;
        let spans = dir.create(SPANS)?;
        let docs = dir.create(DOCS)?;
        Ok(WindowWriter {
            dir,
            seq_len,
            sinks,
            spans,
            docs,
            buf: Vec::new(),
            windows: 0,
            doc_lens: None,
        })
    }

    /// Also writes `doc_lens.bin/.idx` (segment lengths per window, see [`doc_lens`]).
    pub fn with_doc_lens(mut self) -> Result<Self> {
        self.doc_lens = Some(doc_lens::DocLensSink::create(&mut self.dir)?);
        Ok(self)
    }

    /// Writes one window (exactly `seq_len` tokens), in window order.
    pub fn write_window(&mut self, w: &Window) -> Result<()> {
        if w.tokens.len() != self.seq_len || w.mask.len() != self.seq_len || w.index != self.windows
        {
            bail!(
                "internal error: window {} ({} tokens) written as window {} of {} tokens",
                w.index,
                w.tokens.len(),
                self.windows,
                self.seq_len
            );
        }
        for sink in &mut self.sinks {
            sink.write_window(&w.tokens, &w.mask)?;
        }
        self.buf.clear();
        for s in &w.spans {
            provenance::encode_span(s, &mut self.buf)?;
        }
        self.spans.write_all(&self.buf)?;
        if let Some(d) = &mut self.doc_lens {
            d.write(&w.spans, self.seq_len)?;
        }
        self.windows += 1;
        Ok(())
    }

    /// Records one input document's origin, in stream order.
    pub fn write_doc(&mut self, d: &DocRecord) -> Result<()> {
        self.buf.clear();
        provenance::encode_doc(d, &mut self.buf);
        self.docs.write_all(&self.buf)?;
        Ok(())
    }

    /// Finishes every file and commits the directory with `manifest` (a function of the file list).
    pub fn finish(mut self, manifest: impl FnOnce(Vec<FileInfo>) -> Result<Vec<u8>>) -> Result<()> {
        let mut files = Vec::new();
        for sink in self.sinks {
            files.extend(sink.finish(&mut self.dir)?);
        }
        if let Some(d) = self.doc_lens {
            files.extend(d.finish(&mut self.dir)?);
        }
        for (path, mut w, role) in [
            (SPANS, self.spans, "provenance-spans"),
            (DOCS, self.docs, "provenance-docs"),
        ] {
            w.flush()?;
            let bytes = w.get_ref().metadata()?.len();
            files.push(FileInfo::new(path, role, "utk-provenance-v1", None, bytes));
        }
        self.dir.record_checksums(&mut files)?;
        let manifest = manifest(files)?;
        self.dir.commit(&manifest)
    }
}
