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
use super::long_stream::{Failure, LongText, Pending};
use super::open::{open, Compression};
use super::Source;
#[cfg(doc)]
use super::BATCH_BYTES;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

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
    /// A very long line whose text is streamed (see [`super::long_stream`]): its document comes
    /// with `text`, down which the reader then sends the text as it reads the rest of the line.
    Long {
        source: u32,
        text: LongText,
    },
    /// The streamed line ended and is valid; `bytes` of input it held.
    LongDone {
        source: u32,
        bytes: u64,
    },
    /// The streamed line failed (`compression`: the source's, for the message).
    LongFailed {
        source: u32,
        failure: Failure,
        compression: Compression,
    },
    /// The source could not be read further. `after_lines`: the message needs the number of
    /// lines read before it (`{name}: {what} after line N`), known to whoever counts lines;
    /// otherwise the error is complete.
    Failed {
        source: u32,
        error: anyhow::Error,
        after_lines: Option<String>,
    },
}

/// Lines longer than `above` bytes whose text is the top-level field `key` are streamed (see
/// [`RawItem::Long`]).
#[derive(Clone, Copy)]
pub struct Stream<'a> {
    pub above: usize,
    pub key: &'a [String],
}

/// Reads `sources` in order, sending batches of whole lines (buffers from `take`) to `send`
/// until the input ends, a source fails, or `send` says the next stage stopped (`false`).
pub fn read_raw(
    sources: &[Source],
    limits: Limits,
    stream: Option<Stream>,
    raw_bytes: &Arc<AtomicU64>,
    take: &dyn Fn(usize) -> Vec<u8>,
    send: &mut dyn FnMut(RawItem) -> bool,
) {
    let reading = Reading {
        limits,
        stream,
        raw_bytes,
        take,
    };
    for (index, source) in sources.iter().enumerate() {
        if !reading.source(index as u32, source, send) {
            return;
        }
    }
}

/// How sources are read: where batches are cut, which lines are streamed, the progress counter
/// and the buffers.
#[derive(Clone, Copy)]
struct Reading<'a> {
    limits: Limits,
    stream: Option<Stream<'a>>,
    raw_bytes: &'a Arc<AtomicU64>,
    take: &'a dyn Fn(usize) -> Vec<u8>,
}

impl Reading<'_> {
    /// Reads `source`, the `index`th of the run, to its end; `false` when the run stops (it
    /// failed, or `send` refused).
    fn source(&self, index: u32, source: &Source, send: &mut dyn FnMut(RawItem) -> bool) -> bool {
        let (reader, compression) = match open(source, self.raw_bytes.clone()) {
            Ok(r) => r,
            Err(error) => {
                send(RawItem::Failed {
                    source: index,
                    error,
                    after_lines: None,
                });
                return false;
            }
        };
        let mut cutter = Cutter {
            source: index,
            limits: self.limits,
            stream: self.stream,
            take: self.take,
            send,
        };
        cutter.read_source(reader, compression)
    }
}
/// Cuts one source's bytes into batches.
struct Cutter<'a, 'b> {
    source: u32,
    limits: Limits,
    stream: Option<Stream<'a>>,
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
        // `buf[..done]` holds whole lines; `tried`: the line after them was tried for streaming.
        let (mut done, mut tried) = (0, false);
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
            let first = memchr::memchr(b'\n', &buf[start..]).map(|i| start + i);
            match self.try_stream(&mut reader, &mut buf, done, first, compression, &mut tried) {
                Streamed::No => {}
                Streamed::Done(whole) => {
                    (done, tried) = (whole, false);
                    continue;
                }
                Streamed::Stop => return false,
            }
            let Some(first) = first else {
                continue;
            };
            tried = false;
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

    /// If streaming is on and the line at `done` (its end at `first`, if read yet) has no end in
    /// its first `above` bytes, and those end inside its text string: the lines before it sent,
    /// its document sent ([`RawItem::Long`]), and the rest of the line read and its text sent
    /// down that document's channel. `buf` then holds what followed the line; `Done` says how
    /// much of it is whole lines.
    fn try_stream(
        &mut self,
        reader: &mut Box<dyn BufRead + Send>,
        buf: &mut Vec<u8>,
        done: usize,
        first: Option<usize>,
        compression: Compression,
        tried: &mut bool,
    ) -> Streamed {
        let Some(stream) = self.stream else {
            return Streamed::No;
        };
        let line = first.map_or(buf.len(), |f| f) - done;
        if *tried || line < stream.above {
            return Streamed::No;
        }
        *tried = true;
        // A line broken already is left to the ordinary parser, which words the error.
        let head = done..done + stream.above;
        let Ok(Some((pending, text))) = Pending::begin(&buf[head], &stream.key[0]) else {
            return Streamed::No;
        };
        if !self.send_front(buf, done) {
            return Streamed::Stop;
        }
        let source = self.source;
        if !(self.send)(RawItem::Long { source, text }) {
            return Streamed::Stop;
        }
        // The rest of the line: what is in `buf` after the head, then the reader.
        let read = buf[stream.above..].to_vec();
        let mut rest = read.as_slice().chain(reader.as_mut());
        let mut bytes = stream.above as u64;
        let item = match pending.finish(&mut rest, stream.key, &mut bytes) {
            Ok(true) => RawItem::LongDone { source, bytes },
            Ok(false) => return Streamed::Stop,
            Err(failure) => RawItem::LongFailed {
                source,
                failure,
                compression,
            },
        };
        let (left, _) = rest.into_inner();
        buf.clear();
        buf.extend_from_slice(left);
        let failed = matches!(item, RawItem::LongFailed { .. });
        match (self.send)(item) && !failed {
            true => Streamed::Done(memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1)),
            false => Streamed::Stop,
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

/// What [`Cutter::try_stream`] did.
enum Streamed {
    /// Nothing: the line is read as usual.
    No,
    /// The line was streamed to its end; whole lines of what followed it end here in the
    /// buffer.
    Done(usize),
    /// The run stops.
    Stop,
}

/// How many sources [`read_raw_ahead`] reads side by side, and where each reading thread's CPU
/// seconds go when it ends.
pub struct Ahead<'a> {
    pub threads: usize,
    pub cpu: &'a (dyn Fn(f64) + Sync),
}

/// Batches of one source waiting to be handed on (see [`read_raw_ahead`]).
const QUEUE_PER_SOURCE: usize = 2;

/// [`read_raw`] with up to `threads` sources decompressed and cut side by side, ahead of the one
/// being handed on (one zstd or gzip stream cannot be decoded in parallel, but a run of many
/// files can): each thread takes the next source not started, its batches wait in that source's
/// own queue of [`QUEUE_PER_SOURCE`], and this thread sends them on in source order — so `send`
/// sees exactly the items [`read_raw`] would send, whatever the timing. Memory: at most `threads`
/// sources in flight, each with a few batches. Each reading thread's CPU seconds are given to
/// `cpu` when it ends.
pub fn read_raw_ahead(
    sources: &[Source],
    limits: Limits,
    stream: Option<Stream>,
    raw_bytes: &Arc<AtomicU64>,
    take: &(dyn Fn(usize) -> Vec<u8> + Sync),
    send: &mut dyn FnMut(RawItem) -> bool,
    ahead: Ahead,
) {
    let Ahead { threads, cpu } = ahead;
    let threads = threads.clamp(1, sources.len().max(1));
    let (txs, rxs): (Vec<_>, Vec<_>) = sources
        .iter()
        .map(|_| {
            let (tx, rx) = sync_channel::<RawItem>(QUEUE_PER_SOURCE);
            (Mutex::new(Some(tx)), rx)
        })
        .unzip();
    let shared = ReadAhead {
        sources,
        take,
        txs,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let start = crate::workers::thread_cpu_seconds();
                let reading = Reading {
                    limits,
                    stream,
                    raw_bytes,
                    take: shared.take,
                };
                shared.read(reading);
                cpu(crate::workers::thread_cpu_seconds() - start);
            });
        }
        forward_in_order(rxs, send);
        // The receivers are gone: a reader blocked on a full queue wakes with an error and stops,
        // and no reader starts another source.
        shared.stop.store(true, Ordering::Relaxed);
    });
}

/// What the reading threads of [`read_raw_ahead`] share: the sources, the next one not started,
/// each source's queue, and whether the run stopped.
struct ReadAhead<'a> {
    sources: &'a [Source],
    take: &'a (dyn Fn(usize) -> Vec<u8> + Sync),
    txs: Vec<Mutex<Option<SyncSender<RawItem>>>>,
    next: AtomicUsize,
    stop: AtomicBool,
}

impl ReadAhead<'_> {
    /// One reading thread: sources in turn, each into its own queue.
    fn read(&self, reading: Reading) {
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.sources.len() || self.stop.load(Ordering::Relaxed) {
                return;
            }
            // Taken, so the queue closes when this thread drops it (or dies): the forwarder then
            // stops instead of waiting.
            let Some(tx) = self.txs[index].lock().ok().and_then(|mut t| t.take()) else {
                return;
            };
            let mut send = |item| tx.send(item).is_ok();
            if !reading.source(index as u32, &self.sources[index], &mut send) {
                self.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Hands on every source's items in source order, until the input ends, a source fails, or
/// `send` refuses.
fn forward_in_order(rxs: Vec<Receiver<RawItem>>, send: &mut dyn FnMut(RawItem) -> bool) {
    for rx in rxs {
        loop {
            let Ok(item) = rx.recv() else {
                return; // its reader stopped (the run is stopping) or died
            };
            let (end, failed) = match &item {
                RawItem::Batch(b) => (b.last, false),
                RawItem::Long { .. } | RawItem::LongDone { .. } => (false, false),
                RawItem::Failed { .. } | RawItem::LongFailed { .. } => (true, true),
            };
            if !send(item) || failed {
                return;
            }
            if end {
                break;
            }
        }
    }
}
