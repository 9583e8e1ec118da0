//! `verify`'s first check: every file the manifest lists has the CRC-32C it records (see
//! `output/checksum.rs`), so damage anywhere — a flipped token id that still looks like a
//! token — is found without the input, and the file is named.

use super::Problem;
use crate::output::checksum::{file_crc32c, hex};
use crate::output::manifest::Manifest;
use crate::output::reader::inside;
use anyhow::Result;
use rayon::prelude::*;
use std::path::Path;

/// What the checksums said.
#[derive(Debug, Default)]
pub struct FileSums {
    /// Files whose checksum matched.
    pub matched: usize,
    /// Files the manifest lists without a checksum (written by a utk that recorded none).
    pub unchecked: Vec<String>,
    /// Files that differ from their checksum, or cannot be read.
    pub problems: Vec<Problem>,
}

/// Checks every file of `m` in `dir` against its checksum, in the caller's rayon pool.
pub fn check_files(dir: &Path, m: &Manifest) -> Result<FileSums> {
    let results: Vec<Result<Option<Option<Problem>>>> = m
        .files
        .par_iter()
        .map(|f| {
            let Some(want) = &f.crc32c else {
                return Ok(None);
            };
            let path = inside(dir, &f.path)?;
            let what = match file_crc32c(&path) {
                Ok(crc) if hex(crc) == *want => return Ok(Some(None)),
                Ok(crc) => format!(
                    "{}: CRC-32C {}, the manifest records {want}: the file changed after utk \
                     wrote it",
                    path.display(),
                    hex(crc)
                ),
                Err(e) => format!("cannot read {}: {e}", path.display()),
            };
            Ok(Some(Some(Problem::general(what))))
        })
        .collect();
    let mut sums = FileSums::default();
    for (f, r) in m.files.iter().zip(results) {
        match r? {
            None => sums.unchecked.push(f.path.clone()),
            Some(None) => sums.matched += 1,
            Some(Some(p)) => sums.problems.push(p),
        }
    }
    Ok(sums)
}
