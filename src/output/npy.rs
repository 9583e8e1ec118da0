//! numpy `.npy` files (format version 1.0): `tokens.npy` and `loss_mask.npy`, each of shape
//! `(windows, seq_len)`, so `np.load(path, mmap_mode="r")[w]` is window `w`.
//!
//! A `.npy` file is the magic `\x93NUMPY`, the version bytes `1 0`, a little-endian u16 header
//! length, then a Python dict literal `{'descr': '<u2', 'fortran_order': False, 'shape': (W, L), }`
//! padded with spaces and ended by `\n` so that the data starts at a multiple of 64 bytes, then the
//! array in C order. [`npy_header`] writes exactly the bytes `np.save` writes (checked against
//! numpy 2.4), including the spare spaces numpy leaves so that the first dimension can grow in
//! place: the header's length does not depend on the window count. [`NpyWriter`] uses that to
//! write a placeholder header first and the real window count once it is known, before the file
//! is renamed into place.

use super::array::{decode_at, Dtype, Id, RawArrayWriter};
use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::{WindowSink, LOSS_MASK, TOKENS};
use anyhow::{bail, Context, Result};
use std::io::{Seek, SeekFrom, Write};

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// numpy leaves room for a first dimension of this many digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_DIGITS: usize = 21;

pub const TOKENS_FILE: &str = "tokens.npy";
pub const MASK_FILE: &str = "loss_mask.npy";

/// The header of a C-order `.npy` file of `dtype` and `shape`, byte for byte as numpy writes it.
pub fn npy_header(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    let dims = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        dtype.npy_descr()
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_DIGITS.saturating_sub(digits)));
    }
    // Spaces, then the newline, up to the next multiple of 64 (a whole 64 if already aligned).
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = ALIGN - unpadded % ALIGN;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(unpadded + pad);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Where the data starts.
    pub data_offset: usize,
}

/// Parses the header at the start of `bytes` (versions 1.0, 2.0 and 3.0; C order; the dtypes utk
/// writes).
pub fn parse_npy_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("not a .npy file (bad magic)");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => bail!("unsupported .npy version {v}.{}", bytes[7]),
    };
    let end = start + len;
    if bytes.len() < end {
        bail!(".npy header is truncated");
    }
    let text = std::str::from_utf8(&bytes[start..end]).context(".npy header is not text")?;
    let value_of = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}':"))
            .with_context(|| format!(".npy header lacks '{key}'"))?;
        Ok(text[at + key.len() + 3..].trim_start())
    };
    let descr = value_of("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context(".npy header: descr is not a string")?;
    let dtype = Dtype::from_npy_descr(descr)
        .with_context(|| format!(".npy dtype {descr:?} is not one utk writes"))?;
    if !value_of("fortran_order")?.starts_with("False") {
        bail!(".npy array is in Fortran order");
    }
    let shape = value_of("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .context(".npy header: shape is not a tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .context(".npy header: shape is not a tuple of integers")?;
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: end,
    })
}

/// Streams rows of `row_len` elements into a `.npy` file whose first dimension (the row count) is
/// written by [`NpyWriter::finish`].
pub struct NpyWriter<W: Write + Seek> {
    data: RawArrayWriter<W>,
    row_len: u64,
    header_len: usize,
}

impl<W: Write + Seek> NpyWriter<W> {
    pub fn new(mut out: W, dtype: Dtype, row_len: u64) -> Result<Self> {
        let placeholder = npy_header(dtype, &[0, row_len]);
        out.write_all(&placeholder)?;
        Ok(NpyWriter {
            data: RawArrayWriter::new(out, dtype),
            row_len,
            header_len: placeholder.len(),
        })
    }

    pub fn append_row<T: Id>(&mut self, row: &[T]) -> Result<()> {
        if row.len() as u64 != self.row_len {
            bail!(
                "internal error: a row of {} elements in a .npy of rows of {}",
                row.len(),
                self.row_len
            );
        }
        self.data.append(row)
    }

    /// Rewrites the header with the final row count and returns the destination.
    pub fn finish(self) -> Result<W> {
        let dtype = self.data.dtype();
        let rows = self.data.elements() / self.row_len.max(1);
        let mut out = self.data.finish()?;
        let header = npy_header(dtype, &[rows, self.row_len]);
        if header.len() != self.header_len {
            bail!("internal error: the .npy header changed length");
        }
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&header)?;
        out.flush()?;
        Ok(out)
    }
}

/// `tokens.npy` and `loss_mask.npy` (uint8 mask).
pub struct NpySink {
    tokens: NpyWriter<Staged>,
    mask: NpyWriter<Staged>,
}

impl NpySink {
    pub fn create(dir: &mut OutputDir, seq_len: usize, token_dtype: Dtype) -> Result<Self> {
        Ok(NpySink {
            tokens: NpyWriter::new(dir.create(TOKENS_FILE)?, token_dtype, seq_len as u64)?,
            mask: NpyWriter::new(dir.create(MASK_FILE)?, Dtype::Uint8, seq_len as u64)?,
        })
    }
}

impl WindowSink for NpySink {
    fn write_window(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()> {
        self.tokens.append_row(tokens)?;
        self.mask.append_row(mask)
    }

    fn finish(self: Box<Self>, _dir: &mut OutputDir) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for (path, role, writer) in [
            (TOKENS_FILE, TOKENS, self.tokens),
            (MASK_FILE, LOSS_MASK, self.mask),
        ] {
            let dtype = writer.data.dtype();
            let file = writer.finish()?;
            files.push(FileInfo::new(
                path,
                role,
                "npy",
                Some(dtype),
                file.get_ref().metadata()?.len(),
            ));
        }
        Ok(files)
    }
}

/// Element `i` (row-major) of the array in `bytes` described by `header`.
pub fn element(bytes: &[u8], header: &NpyHeader, i: usize) -> u32 {
    decode_at(&bytes[header.data_offset..], header.dtype, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Bytes numpy 2.4 wrote with `np.save` (and `write_array_header_1_0` for the huge shape).
    fn numpy_wrote(dict: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        v.extend_from_slice(dict.as_bytes());
        v.extend(std::iter::repeat_n(b' ', 128 - 1 - v.len()));
        v.push(b'\n');
        v
    }

    #[test]
    fn headers_equal_the_bytes_numpy_writes() {
        for (dtype, shape, dict) in [
            (
                Dtype::Uint16,
                &[3u64, 4][..],
                "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }",
            ),
            (
                Dtype::Uint32,
                &[29, 8192],
                "{'descr': '<u4', 'fortran_order': False, 'shape': (29, 8192), }",
            ),
            (
                Dtype::Uint8,
                &[0, 5],
                "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 5), }",
            ),
            (
                Dtype::Bool,
                &[7],
                "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }",
            ),
            (
                Dtype::Uint16,
                &[123456789012, 2],
                "{'descr': '<u2', 'fortran_order': False, 'shape': (123456789012, 2), }",
            ),
        ] {
            let h = npy_header(dtype, shape);
            assert_eq!(h, numpy_wrote(dict), "{dict}");
            assert_eq!(h.len() % 64, 0);
            let back = parse_npy_header(&h).unwrap();
            assert_eq!((back.dtype, &back.shape[..]), (dtype, shape));
            assert_eq!(back.data_offset, 128);
        }
    }

    #[test]
    fn header_length_does_not_depend_on_the_row_count() {
        for l in [1u64, 64, 131_072, 1 << 20] {
            let base = npy_header(Dtype::Uint16, &[0, l]).len();
            for w in [1u64, 9, 10, 99_999, u32::MAX as u64, 10u64.pow(15)] {
                assert_eq!(npy_header(Dtype::Uint16, &[w, l]).len(), base);
            }
        }
    }

    #[test]
    fn writer_fills_in_the_row_count() {
        let mut w = NpyWriter::new(Cursor::new(Vec::new()), Dtype::Uint16, 3).unwrap();
        w.append_row(&[1u32, 2, 3]).unwrap();
        w.append_row(&[4u32, 5, 65535]).unwrap();
        assert!(w.append_row(&[1u32]).is_err());
        let bytes = w.finish().unwrap().into_inner();
        let h = parse_npy_header(&bytes).unwrap();
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(bytes.len(), h.data_offset + 12);
        assert_eq!(element(&bytes, &h, 5), 65535);
    }

    #[test]
    fn parse_rejects_damage() {
        let h = npy_header(Dtype::Uint16, &[2, 3]);
        assert!(parse_npy_header(&h[..20]).is_err());
        let mut bad = h.clone();
        bad[0] = b'X';
        assert!(parse_npy_header(&bad).is_err());
        // Same length replacements inside the dict: Fortran order, then a float dtype.
        let swap = |from: &[u8], to: &[u8]| {
            let at = h.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = h.clone();
            b[at..at + to.len()].copy_from_slice(to);
            b
        };
        assert!(parse_npy_header(&swap(b"False", b"True ")).is_err());
        assert!(parse_npy_header(&swap(b"<u2", b"<f4")).is_err());
        assert!(parse_npy_header(&h).is_ok());
    }
}
