//! Element types of token and mask arrays, named as numpy names them, with their Megatron codes
//! and `.npy` descriptors; the one encoder that turns ids into little-endian bytes of such a type
//! (refusing values that do not fit, so a too narrow token file is an error, never a silent
//! overflow); and the decoders that read ids back (refusing values that are not ids).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The element type of an array on disk. utk writes [`Dtype::WRITTEN`]; it reads token shards of
/// any of them (a value that is not a non-negative integer below 2^32 is an error there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    Int8,
    /// numpy's `np.bool_`: one byte, 0 or 1.
    Bool,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    Float32,
    Float64,
}

impl Dtype {
    pub const ALL: [Dtype; 11] = [
        Dtype::Uint8,
        Dtype::Int8,
        Dtype::Bool,
        Dtype::Int16,
        Dtype::Uint16,
        Dtype::Int32,
        Dtype::Uint32,
        Dtype::Int64,
        Dtype::Uint64,
        Dtype::Float32,
        Dtype::Float64,
    ];

    /// The types utk writes (token ids and loss masks).
    pub const WRITTEN: [Dtype; 5] = [
        Dtype::Uint8,
        Dtype::Bool,
        Dtype::Uint16,
        Dtype::Int32,
        Dtype::Uint32,
    ];

    /// numpy's name for the type (`np.dtype(name)` accepts it).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Uint8 => "uint8",
            Dtype::Int8 => "int8",
            Dtype::Bool => "bool",
            Dtype::Int16 => "int16",
            Dtype::Uint16 => "uint16",
            Dtype::Int32 => "int32",
            Dtype::Uint32 => "uint32",
            Dtype::Int64 => "int64",
            Dtype::Uint64 => "uint64",
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Uint8 | Dtype::Int8 | Dtype::Bool => 1,
            Dtype::Int16 | Dtype::Uint16 => 2,
            Dtype::Int32 | Dtype::Uint32 | Dtype::Float32 => 4,
            Dtype::Int64 | Dtype::Uint64 | Dtype::Float64 => 8,
        }
    }

    /// The largest id an element can hold (for the types utk writes; 0 for the others).
    pub fn max(self) -> u64 {
        match self {
            Dtype::Uint8 => u8::MAX as u64,
            Dtype::Bool => 1,
            Dtype::Uint16 => u16::MAX as u64,
            Dtype::Int32 => i32::MAX as u64,
            Dtype::Uint32 => u32::MAX as u64,
            _ => 0,
        }
    }

    /// The `descr` of a `.npy` header: byte order and type code (`<u2`, `|b1`, …).
    pub fn npy_descr(self) -> &'static str {
        match self {
            Dtype::Uint8 => "|u1",
            Dtype::Int8 => "|i1",
            Dtype::Bool => "|b1",
            Dtype::Int16 => "<i2",
            Dtype::Uint16 => "<u2",
            Dtype::Int32 => "<i4",
            Dtype::Uint32 => "<u4",
            Dtype::Int64 => "<i8",
            Dtype::Uint64 => "<u8",
            Dtype::Float32 => "<f4",
            Dtype::Float64 => "<f8",
        }
    }

    /// The type of a little-endian (or byte-sized, any byte order) `.npy` descriptor.
    pub fn from_npy_descr(descr: &str) -> Option<Dtype> {
        let canonical = match descr {
            "<u1" | "u1" => "|u1",
            "<i1" | "i1" => "|i1",
            "<b1" | "b1" => "|b1",
            d => d,
        };
        Dtype::ALL.into_iter().find(|d| d.npy_descr() == canonical)
    }

    /// Megatron's dtype code (there is none for uint32, uint64 and bool).
    pub fn megatron_code(self) -> Option<u8> {
        Some(match self {
            Dtype::Uint8 => 1,
            Dtype::Int8 => 2,
            Dtype::Int16 => 3,
            Dtype::Int32 => 4,
            Dtype::Int64 => 5,
            Dtype::Float64 => 6,
            Dtype::Float32 => 7,
            Dtype::Uint16 => 8,
            Dtype::Uint32 | Dtype::Uint64 | Dtype::Bool => return None,
        })
    }

    pub fn from_megatron_code(code: u8) -> Option<Dtype> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.megatron_code() == Some(code))
    }

    /// Megatron's rule for token files: uint16 below 65,500 ids, else int32 (it has no uint32).
    pub fn megatron_for_vocab(vocab_size: u64) -> Dtype {
        if vocab_size < 65_500 {
            Dtype::Uint16
        } else {
            Dtype::Int32
        }
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
    if !Dtype::WRITTEN.contains(&dtype) {
        bail!("internal error: utk does not write {} arrays", dtype.name());
    }
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

/// Reads element `i` of a little-endian array of a type utk writes as a `u32` (every one fits).
pub fn decode_at(bytes: &[u8], dtype: Dtype, i: usize) -> u32 {
    let s = dtype.size();
    let b = &bytes[i * s..(i + 1) * s];
    match s {
        1 => b[0] as u32,
        2 => u16::from_le_bytes([b[0], b[1]]) as u32,
        _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
    }
}

/// Decodes elements `[start, end)` of `data` into ids, appending to `out`. A value that is not a
/// non-negative integer below 2^32 is an error carrying its element index.
pub fn decode_ids(
    data: &[u8],
    dtype: Dtype,
    start: usize,
    end: usize,
    out: &mut Vec<u32>,
) -> Result<(), usize> {
    let bytes = &data[start * dtype.size()..end * dtype.size()];
    out.reserve(end - start);
    match dtype {
        Dtype::Uint8 | Dtype::Bool => out.extend(bytes.iter().map(|&b| b as u32)),
        Dtype::Uint16 => {
            let at = out.len();
            out.resize(at + (end - start), 0);
            out[at..]
                .iter_mut()
                .zip(bytes.chunks_exact(2))
                .for_each(|(d, c)| *d = u16::from_le_bytes([c[0], c[1]]) as u32);
        }
        Dtype::Uint32 | Dtype::Int32 => decode_32(bytes, dtype, start, out)?,
        Dtype::Int8 => convert(bytes, start, out, |c: [u8; 1]| {
            u32::try_from(c[0] as i8).ok()
        })?,
        Dtype::Int16 => convert(bytes, start, out, |c| {
            u32::try_from(i16::from_le_bytes(c)).ok()
        })?,
        Dtype::Int64 => convert(bytes, start, out, |c| {
            u32::try_from(i64::from_le_bytes(c)).ok()
        })?,
        Dtype::Uint64 => convert(bytes, start, out, |c| {
            u32::try_from(u64::from_le_bytes(c)).ok()
        })?,
        Dtype::Float32 => convert(bytes, start, out, |c| whole(f32::from_le_bytes(c) as f64))?,
        Dtype::Float64 => convert(bytes, start, out, |c| whole(f64::from_le_bytes(c)))?,
    }
    Ok(())
}

/// 32-bit ids (Megatron writes int32 for vocabularies above 65,500): one copy, then for int32
/// one vectorised pass for negative values (the sign bit).
fn decode_32(bytes: &[u8], dtype: Dtype, start: usize, out: &mut Vec<u32>) -> Result<(), usize> {
    let at = out.len();
    match bytemuck::try_cast_slice::<u8, u32>(bytes) {
        Ok(ids) if cfg!(target_endian = "little") => out.extend_from_slice(ids),
        _ => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
    }
    let new = &out[at..];
    if dtype == Dtype::Int32 && new.iter().fold(0, |a, &v| a | v) >> 31 != 0 {
        let k = new.iter().position(|&v| v >> 31 != 0).unwrap_or(0);
        return Err(start + k);
    }
    Ok(())
}

/// Element by element through `id`, which refuses what is not an id.
fn convert<const N: usize>(
    bytes: &[u8],
    start: usize,
    out: &mut Vec<u32>,
    id: impl Fn([u8; N]) -> Option<u32>,
) -> Result<(), usize> {
    for (i, c) in bytes.chunks_exact(N).enumerate() {
        match id(c.try_into().expect("N bytes")) {
            Some(v) => out.push(v),
            None => return Err(start + i),
        }
    }
    Ok(())
}

/// A float that is a whole number in the id range.
fn whole(v: f64) -> Option<u32> {
    (v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v)).then_some(v as u32)
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
        assert!(encode_ids(&[1u32], Dtype::Int64, &mut out).is_err());
        assert_eq!(decode_at(&out, Dtype::Uint16, 1), 65535);
        assert_eq!(decode_at(&out[4..], Dtype::Uint32, 0), 70000);
    }

    #[test]
    fn vocab_rules_and_codes_round_trip() {
        assert_eq!(Dtype::unsigned_for_vocab(65_536), Dtype::Uint16);
        assert_eq!(Dtype::unsigned_for_vocab(65_537), Dtype::Uint32);
        assert_eq!(Dtype::megatron_for_vocab(65_499), Dtype::Uint16);
        assert_eq!(Dtype::megatron_for_vocab(65_500), Dtype::Int32);
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_npy_descr(d.npy_descr()), Some(d));
            if let Some(code) = d.megatron_code() {
                assert_eq!(Dtype::from_megatron_code(code), Some(d));
            }
        }
        assert_eq!(Dtype::from_npy_descr("u1"), Some(Dtype::Uint8));
        assert_eq!(Dtype::from_npy_descr(">i4"), None);
    }

    #[test]
    fn decode_checks_values() {
        let mut out = Vec::new();
        let data: Vec<u8> = [5i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode_ids(&data, Dtype::Int32, 0, 2, &mut out), Err(1));
        let data: Vec<u8> = [5.0f32, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode_ids(&data, Dtype::Float32, 0, 2, &mut out), Err(1));
        out.clear();
        assert_eq!(decode_ids(&data, Dtype::Float32, 0, 1, &mut out), Ok(()));
        assert_eq!(out, vec![5]);
        let data: Vec<u8> = [7i64, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        out.clear();
        assert_eq!(decode_ids(&data, Dtype::Int64, 0, 2, &mut out), Err(1));
        assert_eq!(out, vec![7]);
    }
}
