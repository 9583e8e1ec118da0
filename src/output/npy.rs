//! numpy `.npy` files (format version 1.0): `tokens.npy` and `loss_mask.npy`, each of shape
//! `(windows, seq_len)`, so `np.load(path, mmap_mode="r")[w]` is window `w`.
//!
//! The header is [`crate::codec::npy`]'s, whose length does not depend on the window count:
//! [`NpyWriter`] writes a placeholder header first and the real window count once it is known,
//! before the file is renamed into place.

use super::array::RawArrayWriter;
use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::{WindowSink, LOSS_MASK, TOKENS};
use crate::codec::dtype::{decode_at, Id};
use crate::codec::npy::{npy_header, NpyHeader};
use crate::codec::Dtype;
use anyhow::{bail, Result};
use std::io::{Seek, SeekFrom, Write};

pub const TOKENS_FILE: &str = "tokens.npy";
pub const MASK_FILE: &str = "loss_mask.npy";

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
    use crate::codec::npy::parse_npy_header;
    use std::io::Cursor;

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
}
