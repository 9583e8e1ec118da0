//! `--doc-boundaries`: each window's segment lengths, for an intra-document attention mask
//! ("AttnMask" in the paper) or variable-length attention (`cu_seqlens`).
//!
//! `doc_lens.bin` / `doc_lens.idx` is a Megatron indexed dataset of int32 with one sequence per
//! window: the lengths of the window's segments in window order. A segment is one document's part
//! of the window (plain packing) or one chunk (CIP); the trailing pad of the last window is its
//! own last segment. The lengths of a window sum to `seq_len`. UtK has no such output: its chunks
//! must attend to each other across the pieces between them.

use super::dir::{OutputDir, Staged};
use super::manifest::{FileInfo, Manifest};
use super::megatron::MegatronWriter;
use super::reader::inside;
use crate::augment::Span;
use crate::codec::megatron::{decode_idx, Index};
use crate::codec::Dtype;
use crate::config::Method;
use crate::mapped::{map_file, Bytes};
use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

pub const BIN: &str = "doc_lens.bin";
pub const IDX: &str = "doc_lens.idx";
/// The manifest role of both files.
pub const ROLE: &str = "doc_lens";

/// Segment boundaries exist for methods without markup only.
pub fn check_method(method: Method) -> Result<()> {
    match method {
        Method::Plain | Method::Cip => Ok(()),
        Method::Utk => Err(SettingError::new()
            .setting(Setting::DocBoundaries)
            .text(" cannot be used with ")
            .setting(Setting::Method)
            .text(
                " utk: an attention mask per document would hide UtK's chunks from each other, \
                 and finding them across other documents is what UtK trains (use plain or cip)",
            )
            .into()),
    }
}

/// The segment lengths of a window of `seq_len` tokens whose chunks are `spans` (in window
/// order, back to back from token 0): one per span, then the trailing pad if any.
pub fn segments(spans: &[Span], seq_len: usize) -> Vec<u32> {
    let mut lens: Vec<u32> = spans.iter().map(|s| s.len).collect();
    let used: usize = spans.iter().map(|s| s.len as usize).sum();
    if used < seq_len {
        lens.push((seq_len - used) as u32);
    }
    lens
}

/// Writes one sequence of segment lengths per window.
pub struct DocLensSink {
    writer: MegatronWriter<Staged>,
}

impl DocLensSink {
    pub fn create(dir: &mut OutputDir) -> Result<Self> {
        Ok(DocLensSink {
            writer: MegatronWriter::new(dir.create(BIN)?, Dtype::Int32),
        })
    }

    pub fn write(&mut self, spans: &[Span], seq_len: usize) -> Result<()> {
        self.writer.write_seq(&segments(spans, seq_len))
    }

    pub fn finish(self, dir: &mut OutputDir) -> Result<Vec<FileInfo>> {
        let (bin, idx) = self.writer.finish()?;
        let bin_bytes = bin.get_ref().metadata()?.len();
        drop(bin);
        let mut idx_file = dir.create(IDX)?;
        idx_file.write_all(&idx)?;
        idx_file.flush()?;
        let int32 = Some(Dtype::Int32);
        Ok(vec![
            FileInfo::new(BIN, ROLE, "megatron-bin", int32, bin_bytes),
            FileInfo::new(IDX, ROLE, "megatron-idx", int32, idx.len() as u64),
        ])
    }
}

/// The `doc_lens` dataset of a finished output, read back.
pub struct DocLens {
    index: Index,
    bin: Bytes,
}

impl DocLens {
    /// The output's `doc_lens` files, if its manifest lists them.
    pub fn open(dir: &Path, m: &Manifest) -> Result<Option<DocLens>> {
        if !m.files.iter().any(|f| f.role == ROLE) {
            return Ok(None);
        }
        let idx_path = inside(dir, IDX)?;
        let idx = std::fs::read(&idx_path)
            .with_context(|| format!("cannot read {}", idx_path.display()))?;
        let index = decode_idx(&idx).with_context(|| format!("{}", idx_path.display()))?;
        let bin = map_file(&inside(dir, BIN)?)?;
        if index.dtype != Dtype::Int32 || index.bin_len() != bin.len() as u64 {
            bail!(
                "{}: not an int32 dataset matching {BIN} ({} bytes)",
                idx_path.display(),
                bin.len()
            );
        }
        if index.lengths.len() as u64 != m.windows {
            bail!(
                "{}: {} sequences for {} windows",
                idx_path.display(),
                index.lengths.len(),
                m.windows
            );
        }
        Ok(Some(DocLens { index, bin }))
    }

    /// Window `w`'s segment lengths (negative values read as they are, for `verify` to report).
    pub fn window(&self, w: u64) -> Vec<i64> {
        let at = self.index.pointers[w as usize] as usize;
        let n = self.index.lengths[w as usize] as usize;
        self.bin[at..at + 4 * n]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
            .collect()
    }
}
