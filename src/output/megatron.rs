//! Megatron-LM / megatron-core indexed datasets (`PREFIX.bin` + `PREFIX.idx`).
//!
//! `.bin` holds the sequences back to back, little-endian, no header. `.idx` is:
//! magic `MMIDIDX\0\0`, u64 version 1, u8 dtype code, u64 sequence count S, u64 document-index
//! count D, i32[S] sequence lengths, i64[S] byte pointers into `.bin`, i64[D] document indices
//! (0, then the running sequence count at each document end; the last equals S). `utk` stores one
//! window per sequence and one sequence per document, so `GPTDataset` samples line up with windows.
//! [`encode_idx`]/[`decode_idx`] are pure; [`MegatronWriter`] streams a `.bin` and writes the `.idx`;
//! [`MegatronSink`] is the pair `tokens.bin/.idx` and `loss_mask.bin/.idx` (uint8).

use super::array::{as_le_bytes, Dtype, Id};
use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::{WindowSink, LOSS_MASK, TOKENS};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;

pub const TOKENS_BIN: &str = "tokens.bin";
pub const TOKENS_IDX: &str = "tokens.idx";
pub const MASK_BIN: &str = "loss_mask.bin";
pub const MASK_IDX: &str = "loss_mask.idx";

pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
pub const VERSION: u64 = 1;

/// Element types of the format, with Megatron's codes (there is no uint32 code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Uint8,
    Int8,
    Int16,
    Int32,
    Int64,
    Float64,
    Float32,
    Uint16,
}

impl DType {
    pub fn code(self) -> u8 {
        match self {
            DType::Uint8 => 1,
            DType::Int8 => 2,
            DType::Int16 => 3,
            DType::Int32 => 4,
            DType::Int64 => 5,
            DType::Float64 => 6,
            DType::Float32 => 7,
            DType::Uint16 => 8,
        }
    }

    pub fn from_code(code: u8) -> Option<DType> {
        [
            DType::Uint8,
            DType::Int8,
            DType::Int16,
            DType::Int32,
            DType::Int64,
            DType::Float64,
            DType::Float32,
            DType::Uint16,
        ]
        .into_iter()
        .find(|d| d.code() == code)
    }

    pub fn size(self) -> usize {
        match self {
            DType::Uint8 | DType::Int8 => 1,
            DType::Int16 | DType::Uint16 => 2,
            DType::Int32 | DType::Float32 => 4,
            DType::Int64 | DType::Float64 => 8,
        }
    }

    /// The element type utk writes for this code, if it writes it at all.
    pub fn elem(self) -> Option<Dtype> {
        match self {
            DType::Uint8 => Some(Dtype::Uint8),
            DType::Uint16 => Some(Dtype::Uint16),
            DType::Int32 => Some(Dtype::Int32),
            _ => None,
        }
    }

    /// Megatron's rule for token files: uint16 below 65,500 ids, else int32.
    pub fn for_vocab(vocab_size: u64) -> DType {
        if vocab_size < 65_500 {
            DType::Uint16
        } else {
            DType::Int32
        }
    }
}

/// The decoded contents of an `.idx` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub dtype: DType,
    pub lengths: Vec<u32>,
    pub pointers: Vec<u64>,
    pub doc_indices: Vec<u64>,
}

/// Encodes an `.idx` for sequences of `lengths` elements; pointers are computed.
pub fn encode_idx(dtype: DType, lengths: &[u32], doc_indices: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(34 + 12 * lengths.len() + 8 * doc_indices.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(dtype.code());
    out.extend_from_slice(&(lengths.len() as u64).to_le_bytes());
    out.extend_from_slice(&(doc_indices.len() as u64).to_le_bytes());
    for &len in lengths {
        out.extend_from_slice(&(len as i32).to_le_bytes());
    }
    let mut pointer = 0i64;
    for &len in lengths {
        out.extend_from_slice(&pointer.to_le_bytes());
        pointer += len as i64 * dtype.size() as i64;
    }
    for &d in doc_indices {
        out.extend_from_slice(&(d as i64).to_le_bytes());
    }
    out
}

/// Decodes an `.idx`, checking its magic, version, dtype, size and internal consistency.
pub fn decode_idx(bytes: &[u8]) -> Result<Index> {
    if bytes.len() < 34 || &bytes[..9] != MAGIC {
        bail!("not a Megatron .idx file (bad magic)");
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let version = u64_at(9);
    if version != VERSION {
        bail!("unsupported .idx version {version} (expected 1)");
    }
    let dtype =
        DType::from_code(bytes[17]).with_context(|| format!("unknown dtype code {}", bytes[17]))?;
    let (s, d) = (u64_at(18) as usize, u64_at(26) as usize);
    let expected = s
        .checked_mul(12)
        .and_then(|x| x.checked_add(d.checked_mul(8)?))
        .and_then(|x| x.checked_add(34))
        .context(".idx counts overflow")?;
    if bytes.len() != expected {
        bail!(
            ".idx is {} bytes; its counts (S={s}, D={d}) need {expected}",
            bytes.len()
        );
    }
    let mut o = 34;
    let mut lengths = Vec::with_capacity(s);
    for _ in 0..s {
        let len = i32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        if len < 0 {
            bail!("negative sequence length {len} at byte {o}");
        }
        lengths.push(len as u32);
        o += 4;
    }
    let mut pointers = Vec::with_capacity(s);
    for _ in 0..s {
        pointers.push(u64_at(o));
        o += 8;
    }
    let mut doc_indices = Vec::with_capacity(d);
    for _ in 0..d {
        doc_indices.push(u64_at(o));
        o += 8;
    }
    if doc_indices.last().copied().unwrap_or(0) != s as u64 {
        bail!("the last document index is not the sequence count {s}");
    }
    let mut expect = 0u64;
    for (i, (&p, &l)) in pointers.iter().zip(&lengths).enumerate() {
        if p != expect {
            bail!("sequence {i} points to byte {p}, expected {expect}");
        }
        expect += l as u64 * dtype.size() as u64;
    }
    Ok(Index {
        dtype,
        lengths,
        pointers,
        doc_indices,
    })
}

impl Index {
    /// Bytes the matching `.bin` must have.
    pub fn bin_len(&self) -> u64 {
        self.lengths.iter().map(|&l| l as u64).sum::<u64>() * self.dtype.size() as u64
    }
}

/// Streams sequences into a `.bin` and writes the matching `.idx` (one document per sequence).
pub struct MegatronWriter<W: Write> {
    bin: W,
    dtype: DType,
    lengths: Vec<u32>,
    buf: Vec<u8>,
}

impl<W: Write> MegatronWriter<W> {
    pub fn new(bin: W, dtype: DType) -> Self {
        MegatronWriter {
            bin,
            dtype,
            lengths: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Appends one sequence of ids (tokens or mask values).
    pub fn write_seq<T: Id>(&mut self, ids: &[T]) -> Result<()> {
        let Some(elem) = self.dtype.elem() else {
            bail!("utk does not write {:?} sequences", self.dtype);
        };
        self.bin.write_all(as_le_bytes(ids, elem, &mut self.buf)?)?;
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
    pub fn create(dir: &mut OutputDir, token_dtype: DType) -> Result<Self> {
        Ok(MegatronSink {
            tokens: MegatronWriter::new(dir.create(TOKENS_BIN)?, token_dtype),
            mask: MegatronWriter::new(dir.create(MASK_BIN)?, DType::Uint8),
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
            let dtype = writer.dtype.elem();
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

    #[test]
    fn matches_the_documented_example() {
        // Two int32 documents of 4 and 3 tokens: lengths [4,3], pointers [0,16], docs [0,1,2].
        let idx = encode_idx(DType::Int32, &[4, 3], &[0, 1, 2]);
        assert_eq!(idx.len(), 82);
        assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
        assert_eq!(idx[17], 4);
        assert_eq!(&idx[34..38], &4i32.to_le_bytes());
        assert_eq!(&idx[42..50], &0i64.to_le_bytes());
        assert_eq!(&idx[50..58], &16i64.to_le_bytes());
        assert_eq!(&idx[74..82], &2i64.to_le_bytes());
        let back = decode_idx(&idx).unwrap();
        assert_eq!(back.pointers, vec![0, 16]);
        assert_eq!(back.bin_len(), 28);
    }

    #[test]
    fn writer_round_trips_and_refuses_overflow() {
        let mut w = MegatronWriter::new(Vec::new(), DType::Uint16);
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

    #[test]
    fn decode_rejects_damage() {
        let idx = encode_idx(DType::Uint16, &[5], &[0, 1]);
        assert!(decode_idx(&idx[..idx.len() - 1]).is_err());
        let mut bad = idx.clone();
        bad[0] = b'X';
        assert!(decode_idx(&bad).is_err());
        let mut bad = idx.clone();
        bad[17] = 99;
        assert!(decode_idx(&bad).is_err());
        assert!(decode_idx(&idx).is_ok());
    }
}
