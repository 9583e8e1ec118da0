//! Stage 5: write windows in formats trainers read.
//!
//! - [`megatron`]: tokens and loss mask as Megatron indexed datasets (`tokens.bin/.idx`,
//!   `loss_mask.bin/.idx`), one sequence per window;
//! - [`provenance`]: the sidecar saying where every span came from;
//! - [`manifest`]: configuration, ids, files and counts, written last;
//! - [`dir`]: temporary names, rename on success, `--force`.
//!
//! [`WindowWriter`] is the one object the pipeline writes through.

pub mod dir;
pub mod manifest;
pub mod megatron;
pub mod provenance;
pub mod reader;

use crate::augment::Window;
use anyhow::{bail, Result};
use dir::OutputDir;
use manifest::FileInfo;
use megatron::{DType, MegatronWriter};
use provenance::DocRecord;
use std::fs::File;
use std::io::{BufWriter, Write};

pub const TOKENS: &str = "tokens";
pub const LOSS_MASK: &str = "loss_mask";
pub const SPANS: &str = "provenance.spans";
pub const DOCS: &str = "provenance.docs";

/// Every file name `augment` writes (besides the manifest).
pub fn file_names() -> Vec<String> {
    vec![
        format!("{TOKENS}.bin"),
        format!("{TOKENS}.idx"),
        format!("{LOSS_MASK}.bin"),
        format!("{LOSS_MASK}.idx"),
        SPANS.to_string(),
        DOCS.to_string(),
    ]
}

/// Writes windows and document records into an [`OutputDir`].
pub struct WindowWriter {
    dir: OutputDir,
    seq_len: usize,
    token_dtype: DType,
    tokens: MegatronWriter<BufWriter<File>>,
    mask: MegatronWriter<BufWriter<File>>,
    spans: BufWriter<File>,
    docs: BufWriter<File>,
    buf: Vec<u8>,
    pub windows: u64,
}

impl WindowWriter {
    pub fn new(mut dir: OutputDir, seq_len: usize, token_dtype: DType) -> Result<Self> {
        let tokens = MegatronWriter::new(dir.create(&format!("{TOKENS}.bin"))?, token_dtype);
        let mask = MegatronWriter::new(dir.create(&format!("{LOSS_MASK}.bin"))?, DType::Uint8);
        let spans = dir.create(SPANS)?;
        let docs = dir.create(DOCS)?;
        Ok(WindowWriter {
            dir,
            seq_len,
            token_dtype,
            tokens,
            mask,
            spans,
            docs,
            buf: Vec::new(),
            windows: 0,
        })
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
        self.tokens.write_seq(&w.tokens)?;
        self.mask.write_seq(&w.mask)?;
        self.buf.clear();
        for s in &w.spans {
            provenance::encode_span(s, &mut self.buf)?;
        }
        self.spans.write_all(&self.buf)?;
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
        for (name, writer, dtype) in [
            (TOKENS, self.tokens, self.token_dtype),
            (LOSS_MASK, self.mask, DType::Uint8),
        ] {
            let (bin, idx) = writer.finish()?;
            let bin_bytes = bin.get_ref().metadata()?.len();
            drop(bin);
            let mut idx_file = self.dir.create(&format!("{name}.idx"))?;
            idx_file.write_all(&idx)?;
            idx_file.flush()?;
            let role = if name == TOKENS {
                "tokens"
            } else {
                "loss_mask"
            };
            files.push(FileInfo {
                path: format!("{name}.bin"),
                role: role.into(),
                format: format!(
                    "megatron-bin ({})",
                    serde_json::to_value(dtype)?.as_str().unwrap_or("?")
                ),
                bytes: bin_bytes,
            });
            files.push(FileInfo {
                path: format!("{name}.idx"),
                role: role.into(),
                format: "megatron-idx".into(),
                bytes: idx.len() as u64,
            });
        }
        for (path, mut w, role) in [
            (SPANS, self.spans, "provenance-spans"),
            (DOCS, self.docs, "provenance-docs"),
        ] {
            w.flush()?;
            let bytes = w.get_ref().metadata()?.len();
            files.push(FileInfo {
                path: path.into(),
                role: role.into(),
                format: "utk-provenance-v1".into(),
                bytes,
            });
        }
        let manifest = manifest(files)?;
        self.dir.commit(&manifest)
    }
}
