//! JSONL sources read as bytes and cut into batches of whole lines, parsed elsewhere.
//!
//! The reader thread of `utk augment` only decompresses and cuts: it fills a batch buffer from
//! the source and cuts it after the last line end once it holds [`RAW_BATCH_BYTES`]; the lines are
//! split, counted and parsed in the worker pool ([`super::lines`]). A batch never spans two
//! sources. A line longer than [`LINE_KEEP`] is a batch of its own, so that its buffer can become
//! its text in place ([`super::long_line`]).
//!
//! Failures of the stream are sent in order, after the complete lines read before them, so the
//! stage that counts lines words them with the line number as the one-thread reader did.

use super::jsonl::LINE_KEEP;
use super::open::{open, Compression};
use super::Source;
#[cfg(doc)]
use super::BATCH_BYTES;
use std::io::BufRead;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Bytes asked of the source at a time.
const CHUNK: usize = 1 << 20;
/// Bytes of whole lines per batch: a few batches are in flight between the reader and the pool,
/// so smaller than the [`BATCH_BYTES`] of text handed to the tokenizer; big enough for 16 pieces
/// parsed side by side.
pub const RAW_BATCH_BYTES: usize = 2 << 20;

/// Where batches are cut: after `batch` bytes, and around a line over `long` bytes; the source
/// is read `chunk` bytes at a time. Tests make them small.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub batch: usize,
    pub long: usize,
    pub chunk: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch: RAW_BATCH_BYTES,
            long: LINE_KEEP,
            chunk: CHUNK,
        }
    }
}

/// Whole lines of one source.
pub struct RawBatch {
    /// The source's index in the run's input list.
    pub source: u32,
    /// Whole lines with their line ends; the last line may lack its end only when `last`.
    pub bytes: Vec<u8>,
    /// The source ends with this batch (sent, possibly empty, for every source).
    pub last: bool,
}

/// What the reader sends, in order.
pub enum RawItem {
    Batch(RawBatch),
    /// The source could not be read further. `after_lines`: the message needs the number of
    /// lines read before it (`{name}: {what} after line N`), known to whoever counts lines;
    /// otherwise the error is complete.
    Failed {
        source: u32,
        error: anyhow::Error,
        after_lines: Option<String>,
    },
}

/// Reads `sources` in order, sending batches of whole lines (buffers from `take`) to `send`
/// until the input ends, a source fails, or `send` says the next stage stopped (`false`).
pub fn read_raw(
    sources: &[Source],
    limits: Limits,
    raw_bytes: &Arc<AtomicU64>,
    take: &dyn Fn(usize) -> Vec<u8>,
    send: &mut dyn FnMut(RawItem) -> bool,
) {
    for (index, source) in sources.iter().enumerate() {
        let (reader, compression) = match open(source, raw_bytes.clone()) {
            Ok(r) => r,
            Err(error) => {
                send(RawItem::Failed {
                    source: index as u32,
                    error,
                    after_lines: None,
                });
                return;
            }
        };
        let mut cutter = Cutter {
            source: index as u32,
            limits,
            take,
            send,
        };
        if !cutter.read_source(reader, compression) {
            return;
        }
    }
}

/// Cuts one source's bytes into batches.
struct Cutter<'a, 'b> {
    source: u32,
    limits: Limits,
    take: &'a dyn Fn(usize) -> Vec<u8>,
    send: &'b mut dyn FnMut(RawItem) -> bool,
}

impl Cutter<'_, '_> {
    /// Reads the source to its end; `false` when the run stops (a failure, or `send` refused).
    fn read_source(
        &mut self,
        mut reader: Box<dyn BufRead + Send>,
        compression: Compression,
    ) -> bool {
        let Limits { batch, long, chunk } = self.limits;
        let mut buf = (self.take)(batch + 2 * chunk);
        // `buf[..done]` holds whole lines.
        let mut done = 0;
        loop {
            let start = buf.len();
            buf.resize(start + chunk, 0);
            let read = reader.read(&mut buf[start..]);
            buf.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return self.end(buf, done),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(buf, done, e, compression),
            }
            let Some(first) = memchr::memchr(b'\n', &buf[start..]).map(|i| start + i) else {
                continue;
            };
            let last = memchr::memrchr(b'\n', &buf[start..]).map_or(first, |i| start + i);
            if first + 1 - done > long {
                // A long line just ended: the lines before it, then it alone.
                if !self.send_front(&mut buf, done) {
                    return false;
                }
                if !self.send_front(&mut buf, first + 1 - done) {
                    return false;
                }
                done = last + 1 - (first + 1);
            } else if buf.len() >= batch {
                if !self.send_front(&mut buf, last + 1) {
                    return false;
                }
                done = 0;
            } else {
                done = last + 1;
            }
        }
    }

    /// Sends `buf[..n]` as a batch (nothing when `n` is 0) and keeps the rest in `buf`.
    fn send_front(&mut self, buf: &mut Vec<u8>, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let batch = if n == buf.len() {
            std::mem::replace(buf, (self.take)(self.limits.batch + 2 * self.limits.chunk))
        } else if n >= buf.len() - n {
            let mut rest = (self.take)(self.limits.batch + 2 * self.limits.chunk);
            rest.extend_from_slice(&buf[n..]);
            buf.truncate(n);
            std::mem::replace(buf, rest)
        } else {
            // The rest is the long part (a long line): move it to the front, copy the head out.
            let head = buf[..n].to_vec();
            buf.drain(..n);
            head
        };
        (self.send)(RawItem::Batch(RawBatch {
            source: self.source,
            bytes: batch,
            last: false,
        }))
    }

    /// The source's end: what is left (a last line without its end, perhaps long) and the mark.
    fn end(&mut self, mut buf: Vec<u8>, done: usize) -> bool {
        if buf.len() - done > self.limits.long && done > 0 && !self.send_front(&mut buf, done) {
            return false;
        }
        (self.send)(RawItem::Batch(RawBatch {
            source: self.source,
            bytes: buf,
            last: true,
        }))
    }

    /// A failed read: the whole lines read before it, then the failure.
    fn fail(
        &mut self,
        mut buf: Vec<u8>,
        done: usize,
        error: std::io::Error,
        compression: Compression,
    ) -> bool {
        if !self.send_front(&mut buf, done) {
            return false;
        }
        let what = match compression {
            Compression::None => "read failed".to_string(),
            c => format!("{} stream is corrupt or truncated", c.name()),
        };
        (self.send)(RawItem::Failed {
            source: self.source,
            error: error.into(),
            after_lines: Some(what),
        });
        false
    }
}
