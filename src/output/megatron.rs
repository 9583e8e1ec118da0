//! Megatron-LM / megatron-core indexed datasets (`PREFIX.bin` + `PREFIX.idx`).
//!
//! `.bin` holds the sequences back to back; `.idx` (see [`crate::codec::megatron`]) indexes them.
//! `utk` stores one window per sequence and one sequence per document, so `GPTDataset` samples
//! line up with windows. [`MegatronWriter`] streams a `.bin` and writes the `.idx`;
//! [`MegatronSink`] is the pair `tokens.bin/.idx` and `loss_mask.bin/.idx` (uint8).

use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::{WindowSink, LOSS_MASK, TOKENS};
use crate::codec::dtype::{as_le_bytes, Id};
use crate::codec::megatron::encode_idx;
use crate::codec::Dtype;
use anyhow::Result;
use std::io::Write;

pub const TOKENS_BIN: &str = "tokens.bin";
pub const TOKENS_IDX: &str = "tokens.idx";
pub const MASK_BIN: &str = "loss_mask.bin";
pub const MASK_IDX: &str = "loss_mask.idx";

/// Streams sequences into a `.bin` and writes the matching `.idx` (one document per sequence).
pub struct MegatronWriter<W: Write> {
    bin: W,
    dtype: Dtype,
    lengths: Vec<u32>,
    buf: Vec<u8>,
}

impl<W: Write> MegatronWriter<W> {
    pub fn new(bin: W, dtype: Dtype) -> Self {
        MegatronWriter {
            bin,
            dtype,
            lengths: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Appends one sequence of ids (tokens or mask values).
    pub fn write_seq<T: Id>(&mut self, ids: &[T]) -> Result<()> {
        self.bin
            .write_all(as_le_bytes(ids, self.dtype, &mut self.buf)?)?;
        self.lengths.push(ids.len() as u32);
        Ok(())
    }

    /// Flushes the `.bin` and returns it with the `.idx` bytes.
    pub fn finish(mut self) -> Result<(W, Vec<u8>)> {
        self.bin.flush()?;
        let docs: Vec<u64> = (0..=self.lengths.len() as u64).collect();
        let idx = encode_idx(self.dtype, &self.lengths, &docs);
        Ok((self.bin, idx))
    }
}

/// The token and mask datasets, one sequence (and one document) per window.
pub struct MegatronSink {
    tokens: MegatronWriter<Staged>,
    mask: MegatronWriter<Staged>,
}

impl MegatronSink {
    pub fn create(dir: &mut OutputDir, token_dtype: Dtype) -> Result<Self> {
        Ok(MegatronSink {
            tokens: MegatronWriter::new(dir.create(TOKENS_BIN)?, token_dtype),
            mask: MegatronWriter::new(dir.create(MASK_BIN)?, Dtype::Uint8),
        })
    }
}

impl WindowSink for MegatronSink {
    fn write_window(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()> {
        self.tokens.write_seq(tokens)?;
        self.mask.write_seq(mask)
    }

    fn finish(self: Box<Self>, dir: &mut OutputDir) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for (bin_path, idx_path, role, writer) in [
            (TOKENS_BIN, TOKENS_IDX, TOKENS, self.tokens),
            (MASK_BIN, MASK_IDX, LOSS_MASK, self.mask),
        ] {
            let dtype = Some(writer.dtype);
            let (bin, idx) = writer.finish()?;
            let bin_bytes = bin.get_ref().metadata()?.len();
            drop(bin);
            let mut idx_file = dir.create(idx_path)?;
            idx_file.write_all(&idx)?;
            idx_file.flush()?;
            files.push(FileInfo::new(
                bin_path,
                role,
                "megatron-bin",
                dtype,
                bin_bytes,
            ));
            files.push(FileInfo::new(
                idx_path,
                role,
                "megatron-idx",
                dtype,
                idx.len() as u64,
            ));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::megatron::decode_idx;

    #[test]
    fn writer_round_trips_and_refuses_overflow() {
        let mut w = MegatronWriter::new(Vec::new(), Dtype::Uint16);
        w.write_seq(&[1u32, 65535, 7]).unwrap();
        w.write_seq(&[2u32]).unwrap();
        assert!(w.write_seq(&[65536u32]).is_err());
        let (bin, idx) = w.finish().unwrap();
        assert_eq!(bin, vec![1, 0, 255, 255, 7, 0, 2, 0]);
        let index = decode_idx(&idx).unwrap();
        assert_eq!(
            (index.lengths, index.doc_indices),
            (vec![3, 1], vec![0, 1, 2])
        );
    }
}
