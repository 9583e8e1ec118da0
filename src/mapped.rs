//! The one place files are memory-mapped.

use anyhow::{Context, Result};
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

/// A file's bytes: memory-mapped when possible, read into memory otherwise.
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Bytes {
    /// Tells the kernel the bytes in `start..end` will not be read again, so a long run over a
    /// large mapped file does not keep every page it has read in its resident set (the pages stay
    /// in the page cache). Whole pages only; reading them again would still be correct, only
    /// slower. Returns where the released range ends (the next call's `start`).
    pub fn release(&self, start: usize, end: usize) -> usize {
        #[cfg(unix)]
        if let Bytes::Mapped(map) = self {
            const PAGE: usize = 4096;
            let start = start.div_ceil(PAGE) * PAGE;
            let end = end.min(map.len()) / PAGE * PAGE;
            if end > start {
                // SAFETY: the map is read-only and private and this process never writes to it, so
                // MADV_DONTNEED only unmaps the pages: a later read maps them again from the file,
                // with the same bytes (the file must not change during a run, as `map_file` says).
                // No reference into the range is used afterwards by the callers.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
                return end;
            }
        }
        start
    }
}

/// Maps `path` read-only, falling back to reading it (pipes, special files, mapping failures).
pub fn map_file(path: &Path) -> Result<Bytes> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    map_open(&file, path)
}

/// [`map_file`] of a file already open (`path` names it in errors).
pub fn map_open(file: &File, path: &Path) -> Result<Bytes> {
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read-only and private to this process. If another process truncates
        // or rewrites the file while it is mapped, reads may see the new bytes or fault (SIGBUS);
        // utk only maps finished files (inputs, or outputs whose manifest is written), and
        // documents that they must not be modified during a run.
        if let Ok(map) = unsafe { memmap2::Mmap::map(file) } {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential); // a hint: read ahead, drop behind
            return Ok(Bytes::Mapped(map));
        }
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Bytes::Owned(buf))
}
