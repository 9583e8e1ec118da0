//! The Megatron-LM / megatron-core `.idx` file, the index of an indexed dataset's `.bin`.
//!
//! `.bin` holds the sequences back to back, little-endian, no header. `.idx` is:
//! magic `MMIDIDX\0\0`, u64 version 1, u8 dtype code, u64 sequence count S, u64 document-index
//! count D, `i32[S]` sequence lengths, `i64[S]` byte pointers into `.bin`, `i64[D]` document indices
//! (0, then the running sequence count at each document end; the last equals S).
//! [`encode_idx`] and [`decode_idx`] are pure: `output` writes indexes with the first, `input`
//! reads token shards with the second.

use super::Dtype;
use anyhow::{bail, Context, Result};

pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
pub const VERSION: u64 = 1;

/// The decoded contents of an `.idx` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub dtype: Dtype,
    pub lengths: Vec<u32>,
    pub pointers: Vec<u64>,
    pub doc_indices: Vec<u64>,
}

/// Encodes an `.idx` for sequences of `lengths` elements; pointers are computed.
pub fn encode_idx(dtype: Dtype, lengths: &[u32], doc_indices: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(34 + 12 * lengths.len() + 8 * doc_indices.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(dtype.megatron_code().expect("a Megatron dtype"));
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
    let dtype = Dtype::from_megatron_code(bytes[17])
        .with_context(|| format!("unknown dtype code {}", bytes[17]))?;
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
        // At most 2^31 × 8 bytes per sequence: u64 holds far more than any file.
        expect = expect.saturating_add(l as u64 * dtype.size() as u64);
    }
    Ok(Index {
        dtype,
        lengths,
        pointers,
        doc_indices,
    })
}

impl Index {
    /// Bytes the matching `.bin` must have (saturating: a crafted index cannot wrap around to
    /// match a small file).
    pub fn bin_len(&self) -> u64 {
        let elements = self
            .lengths
            .iter()
            .fold(0u64, |a, &l| a.saturating_add(l as u64));
        elements.saturating_mul(self.dtype.size() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_example() {
        // Two int32 documents of 4 and 3 tokens: lengths [4,3], pointers [0,16], docs [0,1,2].
        let idx = encode_idx(Dtype::Int32, &[4, 3], &[0, 1, 2]);
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
    fn decode_rejects_damage() {
        let idx = encode_idx(Dtype::Uint16, &[5], &[0, 1]);
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
