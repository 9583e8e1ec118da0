//! Element types of the arrays utk writes, named as numpy names them; the one encoder that turns
//! ids into little-endian bytes of such a type (refusing values that do not fit, so a too narrow
//! token file is an error, never a silent overflow); and [`RawArrayWriter`], a headerless array
//! streamed to a file, which the OLMo format is and the `.npy` format puts behind its header.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// The element type of a token or mask array on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    /// numpy's `np.bool_`: one byte, 0 or 1.
    Bool,
    Uint16,
    Int32,
    Uint32,
}

impl Dtype {
    /// numpy's name for the type (`np.dtype(name)` accepts it).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Uint8 => "uint8",
            Dtype::Bool => "bool",
            Dtype::Uint16 => "uint16",
            Dtype::Int32 => "int32",
            Dtype::Uint32 => "uint32",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Uint8 | Dtype::Bool => 1,
            Dtype::Uint16 => 2,
            Dtype::Int32 | Dtype::Uint32 => 4,
        }
    }

    /// The largest value an element can hold.
    pub fn max(self) -> u64 {
        match self {
            Dtype::Uint8 => u8::MAX as u64,
            Dtype::Bool => 1,
            Dtype::Uint16 => u16::MAX as u64,
            Dtype::Int32 => i32::MAX as u64,
            Dtype::Uint32 => u32::MAX as u64,
        }
    }

    /// The `descr` of a `.npy` header: byte order and type code (`<u2`, `|b1`, …).
    pub fn npy_descr(self) -> &'static str {
        match self {
            Dtype::Uint8 => "|u1",
            Dtype::Bool => "|b1",
            Dtype::Uint16 => "<u2",
            Dtype::Int32 => "<i4",
            Dtype::Uint32 => "<u4",
        }
    }

    pub fn from_npy_descr(descr: &str) -> Option<Dtype> {
        [
            Dtype::Uint8,
            Dtype::Bool,
            Dtype::Uint16,
            Dtype::Int32,
            Dtype::Uint32,
        ]
        .into_iter()
        .find(|d| d.npy_descr() == descr)
    }

    /// The narrowest unsigned type for ids below `vocab_size`: uint16 below 65,536, else uint32
    /// (the rule of OLMo-core and of most numpy token files).
    pub fn unsigned_for_vocab(vocab_size: u64) -> Dtype {
        if vocab_size <= 1 << 16 {
            Dtype::Uint16
        } else {
            Dtype::Uint32
        }
    }
}

/// An id type utk writes: `u32` token ids or `u8` mask values.
pub trait Id: Copy + Into<u64> + bytemuck::Pod {
    /// The largest of `ids` (0 if empty), in one pass the compiler vectorises.
    fn max_of(ids: &[Self]) -> u64;
}

impl Id for u32 {
    fn max_of(ids: &[u32]) -> u64 {
        ids.iter().fold(0, |a, &b| a.max(b)) as u64
    }
}

impl Id for u8 {
    fn max_of(ids: &[u8]) -> u64 {
        ids.iter().fold(0, |a, &b| a.max(b)) as u64
    }
}

/// Refuses `ids` if one does not fit `dtype` (this runs on every output token).
fn check_fits<T: Id>(ids: &[T], dtype: Dtype) -> Result<()> {
    let max = dtype.max();
    if T::max_of(ids) > max {
        let v = ids.iter().map(|&id| id.into()).find(|&v| v > max);
        bail!(
            "value {} does not fit the {} output",
            v.unwrap_or_default(),
            dtype.name()
        );
    }
    Ok(())
}

/// `ids` as little-endian elements of `dtype`: the ids' own bytes when they already have that
/// layout (a `u32` id in a 32-bit file, a mask byte in a byte file, on a little-endian machine),
/// else converted into `buf`.
pub fn as_le_bytes<'a, T: Id>(
    ids: &'a [T],
    dtype: Dtype,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    check_fits(ids, dtype)?;
    if cfg!(target_endian = "little") && std::mem::size_of::<T>() == dtype.size() {
        return Ok(bytemuck::cast_slice(ids));
    }
    buf.clear();
    buf.resize(ids.len() * dtype.size(), 0);
    match dtype.size() {
        1 => buf
            .iter_mut()
            .zip(ids)
            .for_each(|(d, &id)| *d = id.into() as u8),
        2 => buf
            .chunks_exact_mut(2)
            .zip(ids)
            .for_each(|(d, &id)| d.copy_from_slice(&(id.into() as u16).to_le_bytes())),
        _ => buf
            .chunks_exact_mut(4)
            .zip(ids)
            .for_each(|(d, &id)| d.copy_from_slice(&(id.into() as u32).to_le_bytes())),
    }
    Ok(buf)
}

/// Reads element `i` of a little-endian array of `dtype` as a `u32` (every utk dtype fits).
pub fn decode_at(bytes: &[u8], dtype: Dtype, i: usize) -> u32 {
    let s = dtype.size();
    let b = &bytes[i * s..(i + 1) * s];
    match s {
        1 => b[0] as u32,
        2 => u16::from_le_bytes([b[0], b[1]]) as u32,
        _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
    }
}

/// Streams elements of one dtype into `out`, counting them.
pub struct RawArrayWriter<W: Write> {
    out: W,
    dtype: Dtype,
    elements: u64,
    buf: Vec<u8>,
}

impl<W: Write> RawArrayWriter<W> {
    pub fn new(out: W, dtype: Dtype) -> Self {
        RawArrayWriter {
            out,
            dtype,
            elements: 0,
            buf: Vec::new(),
        }
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Appends `ids`, refusing any that does not fit the dtype.
    pub fn append<T: Id>(&mut self, ids: &[T]) -> Result<()> {
        self.out
            .write_all(as_le_bytes(ids, self.dtype, &mut self.buf)?)?;
        self.elements += ids.len() as u64;
        Ok(())
    }

    /// Flushes and returns the destination.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `ids` to `out` as `as_le_bytes` gives them.
    fn encode_ids<T: Id>(ids: &[T], dtype: Dtype, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(as_le_bytes(ids, dtype, &mut Vec::new())?);
        Ok(())
    }

    #[test]
    fn encodes_little_endian_and_refuses_overflow() {
        let mut out = Vec::new();
        encode_ids(&[1u32, 65535], Dtype::Uint16, &mut out).unwrap();
        encode_ids(&[70000u32], Dtype::Uint32, &mut out).unwrap();
        encode_ids(&[0u8, 1], Dtype::Bool, &mut out).unwrap();
        assert_eq!(out, [1, 0, 255, 255, 0x70, 0x11, 0x01, 0x00, 0, 1]);
        assert!(encode_ids(&[65536u32], Dtype::Uint16, &mut out).is_err());
        assert!(encode_ids(&[2u8], Dtype::Bool, &mut out).is_err());
        assert!(encode_ids(&[1u32 << 31], Dtype::Int32, &mut out).is_err());
        assert_eq!(decode_at(&out, Dtype::Uint16, 1), 65535);
        assert_eq!(decode_at(&out[4..], Dtype::Uint32, 0), 70000);
    }

    #[test]
    fn raw_writer_counts_and_stops_at_overflow() {
        let mut w = RawArrayWriter::new(Vec::new(), Dtype::Uint32);
        w.append(&[1u32, 2]).unwrap();
        assert!(w.append(&[u32::MAX, 3]).is_ok());
        assert_eq!(w.elements(), 4);
        assert_eq!(w.finish().unwrap().len(), 16);
        let mut w = RawArrayWriter::new(Vec::new(), Dtype::Bool);
        assert!(w.append(&[0u8, 1, 2]).is_err());
        assert_eq!(w.elements(), 0);
    }

    #[test]
    fn vocab_rule_and_descr_round_trip() {
        assert_eq!(Dtype::unsigned_for_vocab(65_536), Dtype::Uint16);
        assert_eq!(Dtype::unsigned_for_vocab(65_537), Dtype::Uint32);
        for d in [
            Dtype::Uint8,
            Dtype::Bool,
            Dtype::Uint16,
            Dtype::Int32,
            Dtype::Uint32,
        ] {
            assert_eq!(Dtype::from_npy_descr(d.npy_descr()), Some(d));
        }
    }
}
