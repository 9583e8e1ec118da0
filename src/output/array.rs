//! [`RawArrayWriter`]: a headerless array of one element type streamed to a file, which the OLMo
//! format is and the `.npy` format puts behind its header. Elements are encoded by
//! [`crate::codec::dtype::as_le_bytes`], which refuses values that do not fit.

use crate::codec::dtype::{as_le_bytes, Id};
use crate::codec::Dtype;
use anyhow::Result;
use std::io::Write;

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
}
