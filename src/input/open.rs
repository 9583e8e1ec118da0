//! Opens a source as a buffered byte stream, decompressing gzip or zstd when the content starts
//! with their magic bytes (whatever the file is called).

use super::Source;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BUF: usize = 1 << 20;

/// Compression detected at the start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Counts the raw (compressed) bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `source` for reading decompressed bytes; `counter` accumulates raw bytes read.
pub fn open(
    source: &Source,
    counter: Arc<AtomicU64>,
) -> Result<(Box<dyn BufRead + Send>, Compression)> {
    let raw: Box<dyn Read + Send> = match source {
        Source::Stdin => Box::new(io::stdin()),
        Source::File(p) => {
            Box::new(File::open(p).with_context(|| format!("cannot open input {}", p.display()))?)
        }
        Source::Range(p, start, end) => Box::new(open_range(p, *start, *end)?),
    };
    let mut buffered = BufReader::with_capacity(
        BUF,
        Counting {
            inner: raw,
            counter,
        },
    );
    let head = buffered
        .fill_buf()
        .with_context(|| format!("cannot read input {}", source.name()))?;
    // A range is a piece of a plain file (compressed files are never cut).
    let compression = match source {
        Source::Range(..) => Compression::None,
        _ => Compression::detect(head),
    };
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::with_buffer(buffered)
                .with_context(|| format!("cannot start zstd decoding of {}", source.name()))?,
        )),
    };
    Ok((reader, compression))
}

/// Bytes `start..end` of the file at `path`.
fn open_range(path: &std::path::Path, start: u64, end: u64) -> Result<io::Take<File>> {
    use std::io::{Seek, SeekFrom};
    let mut file =
        File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
    file.seek(SeekFrom::Start(start))
        .with_context(|| format!("cannot seek to byte {start} of {}", path.display()))?;
    Ok(file.take(end.saturating_sub(start)))
}
