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

/// Maps `path` read-only, falling back to reading it (pipes, special files, mapping failures).
pub fn map_file(path: &Path) -> Result<Bytes> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read-only and private to this process. If another process truncates
        // or rewrites the file while it is mapped, reads may see the new bytes or fault (SIGBUS);
        // utk only maps finished files (inputs, or outputs whose manifest is written), and
        // documents that they must not be modified during a run.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Bytes::Owned(buf))
}
