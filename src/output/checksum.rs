//! The checksum the manifest records of every file it lists: CRC-32C (Castagnoli, the CRC of
//! iSCSI, ext4 and SSE 4.2's `crc32` instruction) of the whole file as it is on disk, written as
//! 8 lowercase hex digits (`format(crc32c.crc32c(data), "08x")` in Python's `crc32c` package).
//!
//! It is computed while the file is written, never in a second pass: [`RunningSum`] sees every
//! byte [`super::dir::StagedFile`] writes. A writer may go back and rewrite the start of its file
//! (the `.npy` header gets its row count when the run ends): the first [`HEAD`] bytes are
//! therefore kept in memory and hashed only when the sum is asked for, the bytes after them are
//! hashed as they go by, and CRC-32C's combine operation joins the two — so the sum is that of
//! the final file, header included, without re-reading anything. A rewrite beyond the first
//! [`HEAD`] bytes is refused (an internal error): no writer does one.
//!
//! [`file_crc32c`] is the reader's side (`utk verify`), reading in bounded blocks so a large file
//! costs no memory.

use std::io::Read;
use std::path::Path;

/// Bytes at the start of every file that may be rewritten after later bytes are written.
pub const HEAD: usize = 4096;

/// The checksum of a file being written, whatever order its bytes come in (appends, and
/// rewrites within the first [`HEAD`] bytes).
#[derive(Debug, Default)]
pub struct RunningSum {
    /// The file's first bytes, up to [`HEAD`], as they are now.
    head: Vec<u8>,
    /// CRC-32C of the bytes after `head`.
    tail: u32,
    /// The file's length.
    len: u64,
}

impl RunningSum {
    /// Records `bytes` written at offset `pos`.
    pub fn write_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), String> {
        let end = pos + bytes.len() as u64;
        if pos == self.len {
            let room = (HEAD - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..room]);
            self.tail = crc32c::crc32c_append(self.tail, &bytes[room..]);
            self.len = end;
            return Ok(());
        }
        if end <= self.head.len() as u64 {
            self.head[pos as usize..end as usize].copy_from_slice(bytes);
            return Ok(());
        }
        Err(format!(
            "internal error: bytes {pos}..{end} of a {}-byte file rewritten; only the first {HEAD} \
             bytes may be",
            self.len
        ))
    }

    /// The file's length so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The CRC-32C of the file as it is now.
    pub fn value(&self) -> u32 {
        let tail_len = (self.len - self.head.len() as u64) as usize;
        crc32c::crc32c_combine(crc32c::crc32c(&self.head), self.tail, tail_len)
    }
}

/// A checksum as the manifest writes it.
pub use crate::codec::crc_hex as hex;

/// The CRC-32C of the file at `path`, read in 1 MiB blocks (not mapped: the pages read do not
/// count against the process's memory).
pub fn file_crc32c(path: &Path) -> std::io::Result<u32> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(crc),
            Ok(n) => crc = crc32c::crc32c_append(crc, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_value() {
        // The check value of CRC-32C (RFC 3720, and every CRC catalogue).
        let mut s = RunningSum::default();
        s.write_at(0, b"123456789").unwrap();
        assert_eq!(hex(s.value()), "e3069283");
    }

    #[test]
    fn rewrite_outside_the_head_is_refused() {
        let mut s = RunningSum::default();
        s.write_at(0, &vec![1u8; HEAD + 10]).unwrap();
        assert!(s.write_at(HEAD as u64 - 1, &[0, 0]).is_err());
        assert!(s.write_at(HEAD as u64 + 20, &[0]).is_err());
        assert!(s.write_at(HEAD as u64 - 2, &[0, 0]).is_ok());
    }

    proptest! {
        /// Appends in any pieces, then a rewrite of the start: the sum is that of the final bytes.
        #[test]
        fn equals_the_crc_of_the_final_file(
            data in proptest::collection::vec(any::<u8>(), 0..3 * HEAD),
            cuts in proptest::collection::vec(0usize..3 * HEAD, 0..6),
            rewrite in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort();
            let mut s = RunningSum::default();
            for w in cuts.windows(2) {
                s.write_at(w[0] as u64, &data[w[0]..w[1]]).unwrap();
            }
            let mut file = data.clone();
            if rewrite.len() <= file.len() {
                s.write_at(0, &rewrite).unwrap();
                file[..rewrite.len()].copy_from_slice(&rewrite);
            }
            prop_assert_eq!(s.len(), file.len() as u64);
            prop_assert_eq!(s.value(), crc32c::crc32c(&file));
        }
    }
}
