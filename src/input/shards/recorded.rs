//! The sizes and CRC-32C checksums that `utk tokenize` records in `PREFIX.json` of the two files
//! it writes, checked when the shard is read: sizes before the run starts (a truncated or
//! replaced file is refused at once), the `.idx` checksum when the shard is opened (summed as it
//! is read there), and the
//! `.bin` checksum over the bytes as they are read ([`BinSum`]), compared when the shard has been
//! read to its end. A shard read in part (one part's document range) has only its sizes checked.
//! Records without `files` (utk before checksums) are not checked.

use crate::codec::crc_hex;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// One file as `PREFIX.json` lists it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct RecordedFile {
    /// The file name, beside `PREFIX.json`.
    pub path: String,
    pub bytes: u64,
    /// CRC-32C as 8 hex digits.
    pub crc32c: Option<String>,
}

/// What `PREFIX.json` (at `json`) records of the shard's `.bin` and `.idx`.
pub struct Recorded {
    pub json: PathBuf,
    pub bin: Option<RecordedFile>,
    pub idx: Option<RecordedFile>,
}

impl Recorded {
    /// Picks the record of `bin` and of its `.idx` out of `files`.
    pub fn new(json: PathBuf, bin: &Path, files: &[RecordedFile]) -> Self {
        let find = |p: &Path| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            files
                .iter()
                .find(|f| Some(&f.path) == name.as_ref())
                .cloned()
        };
        Recorded {
            bin: find(bin),
            idx: find(&bin.with_extension("idx")),
            json,
        }
    }

    /// Both files must have the sizes recorded.
    pub fn check_sizes(&self, bin: &Path) -> Result<()> {
        for (path, rec) in [
            (bin.to_path_buf(), &self.bin),
            (bin.with_extension("idx"), &self.idx),
        ] {
            let Some(rec) = rec else { continue };
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if size != rec.bytes {
                bail!(
                    "{} is {size} bytes but {} records {} bytes (written by utk tokenize): the file \
                     was truncated or replaced since; run utk tokenize again, or move {} aside to \
                     read it unchecked",
                    path.display(),
                    self.json.display(),
                    rec.bytes,
                    self.json.display()
                );
            }
        }
        Ok(())
    }

    /// The `.idx` (whose CRC-32C, summed when it was read, is `crc`) must have the recorded
    /// checksum.
    pub fn check_idx(&self, bin: &Path, crc: u32) -> Result<()> {
        let Some(expected) = self.idx.as_ref().and_then(|r| r.crc32c.as_deref()) else {
            return Ok(());
        };
        compare(
            &bin.with_extension("idx"),
            &self.json,
            &crc_hex(crc),
            expected,
        )
    }

    /// The running checksum of the `.bin`, if one is recorded.
    pub fn bin_sum(&self) -> Option<BinSum> {
        let expected = self.bin.as_ref()?.crc32c.clone()?;
        Some(BinSum {
            expected,
            json: self.json.clone(),
            crc: 0,
            upto: 0,
        })
    }
}

fn compare(path: &Path, json: &Path, actual: &str, expected: &str) -> Result<()> {
    if actual != expected {
        bail!(
            "{}: CRC-32C {actual}, but {} records {expected} (written by utk tokenize): the \
             file's bytes changed after it was written (a partial copy, a disk error, another \
             program writing it); run utk tokenize again, or move {} aside to read it unchecked",
            path.display(),
            json.display(),
            json.display()
        );
    }
    Ok(())
}

/// The CRC-32C of a `.bin` computed over its bytes in file order as they are read.
pub struct BinSum {
    expected: String,
    json: PathBuf,
    crc: u32,
    /// Bytes summed so far (the first `upto` bytes of the file).
    upto: usize,
}

impl BinSum {
    /// Sums `data[upto..end]` (nothing when `end` is not past what was summed).
    pub fn advance(&mut self, data: &[u8], end: usize) {
        let end = end.min(data.len());
        if end > self.upto {
            self.crc = crc32c::crc32c_append(self.crc, &data[self.upto..end]);
            self.upto = end;
        }
    }

    /// Sums the rest of `data` and compares with the record.
    pub fn finish(mut self, data: &[u8], path: &Path) -> Result<()> {
        self.advance(data, data.len());
        compare(path, &self.json, &crc_hex(self.crc), &self.expected)
    }
}
