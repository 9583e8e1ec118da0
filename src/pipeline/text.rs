//! `utk augment`'s reading of JSONL: a reader thread decompresses and cuts the input into batches
//! of whole lines ([`crate::input::raw`]); this stage parses each batch's lines in the worker
//! pool, piece by piece ([`crate::input::lines`]), counts them in order and hands the documents
//! on in batches of [`BATCH_BYTES`] of text, as the one-thread reader did.

use super::cpu::{Stage, StageClock};
use super::recycle::Recycle;
use crate::input::lines::{self, parse_long_line, parse_piece, pieces, LineTally, Piece};
use crate::input::raw::{read_raw_ahead, Ahead, Limits, RawBatch, RawItem, Stream};
use crate::input::{InputFiles, Source, TextDoc, BATCH_BYTES};
use crate::workers::{joined, QUEUE};
use anyhow::Result;
use rayon::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Sources decompressed and cut side by side at most (never more than the run's threads).
const READ_AHEAD: usize = 4;

/// How the raw reader cuts. Streaming looks at the line being read whenever a block has been
/// read, so blocks are at most a quarter of the streaming threshold: a line over it is seen
/// before its end (with the default 16 MiB threshold the block stays 1 MiB; tests lower both).
fn limits(stream: Option<usize>) -> Limits {
    let mut limits = Limits::default();
    if let Some(above) = stream {
        limits.chunk = limits.chunk.min((above / 4).max(1));
    }
    limits
}

/// What the text stage needs besides its queues.
pub(super) struct JsonlRead<'a> {
    pub sources: &'a [Source],
    pub key: &'a str,
    pub skip_bad_lines: bool,
    pub raw_bytes: &'a Arc<AtomicU64>,
    pub pool: &'a rayon::ThreadPool,
    pub clock: &'a StageClock,
    /// Batch buffers, handed back once a batch is parsed.
    pub buffers: &'a Recycle<u8>,
    /// Lines over this many bytes are streamed (see [`crate::input::long_stream`]), when the
    /// run can take a document's text in pieces.
    pub stream: Option<usize>,
    /// The `--upsample-source-key` field's path, read from every line when set.
    pub field: Option<Vec<String>>,
}

/// The JSONL read stage of `job`, or `None` when its input is not JSONL (parquet and token
/// shards are read by [`crate::input::Reader`]); an error when the source field cannot be read.
pub(super) fn jsonl<'a>(
    job: &'a super::AugmentJob,
    raw_bytes: &'a Arc<AtomicU64>,
    pool: &'a rayon::ThreadPool,
    clock: &'a StageClock,
    buffers: &'a Recycle<u8>,
) -> Result<Option<JsonlRead<'a>>> {
    let InputFiles::Text(sources) = &job.input.files else {
        return Ok(None);
    };
    Ok(Some(JsonlRead {
        sources,
        key: &job.input.text.text_key,
        skip_bad_lines: job.input.text.skip_bad_lines,
        raw_bytes,
        pool,
        clock,
        buffers,
        stream: job.long_line_stream(),
        field: job.source_field()?,
    }))
}

/// Reads the JSONL `sources` for a run other than `utk augment` (`utk tokenize`): the same
/// reading and parsing in `pool` (so the same documents and the same counts and messages for
/// blank and bad lines), with its own buffers and no streaming of long lines or source field.
/// Sends the documents to `tx` in order; returns the counts.
pub fn read_jsonl(
    sources: &[Source],
    key: &str,
    skip_bad_lines: bool,
    raw_bytes: &Arc<AtomicU64>,
    pool: &rayon::ThreadPool,
    tx: SyncSender<Vec<TextDoc>>,
) -> Result<LineTally> {
    JsonlRead {
        sources,
        key,
        skip_bad_lines,
        raw_bytes,
        pool,
        clock: &StageClock::default(),
        buffers: &Recycle::new(QUEUE, 4 * BATCH_BYTES),
        stream: None,
        field: None,
    }
    .run(tx)
}

impl JsonlRead<'_> {
    /// Reads every source, sending documents to `tx` in order; returns the counts. Stops without
    /// an error when the next stage stops (its error is the one reported).
    pub fn run(&self, tx: SyncSender<Vec<TextDoc>>) -> Result<LineTally> {
        let path = lines::key_path(self.key)?;
        let mut tally = LineTally::new(self.sources, self.skip_bad_lines);
        std::thread::scope(|scope| {
            let (raw_tx, raw_rx) = sync_channel::<RawItem>(QUEUE);
            let key = &path;
            let reader = scope.spawn(move || {
                self.clock.time(Stage::Read, || {
                    let take = |n| self.buffers.take(n);
                    let mut send = |item| raw_tx.send(item).is_ok();
                    let threads = self.pool.current_num_threads().clamp(1, READ_AHEAD);
                    read_raw_ahead(
                        self.sources,
                        limits(self.stream),
                        self.stream.map(|above| Stream { above, key }),
                        self.raw_bytes,
                        &take,
                        &mut send,
                        Ahead {
                            threads,
                            cpu: &|seconds| self.clock.add_read_ahead(seconds),
                        },
                    )
                });
                Ok(())
            });
            let ordered = self
                .clock
                .time(Stage::Read, || self.order(raw_rx, &path, &mut tally, tx));
            joined(reader.join(), "reader")?;
            ordered
        })?;
        Ok(tally)
    }

    /// Parses the batches as they come and hands the documents on in order.
    fn order(
        &self,
        rx: Receiver<RawItem>,
        path: &[String],
        tally: &mut LineTally,
        tx: SyncSender<Vec<TextDoc>>,
    ) -> Result<()> {
        let (mut docs, mut bytes, mut stopped) = (Vec::new(), 0, false);
        for item in rx {
            let batch = match item {
                RawItem::Batch(b) => b,
                RawItem::Failed {
                    source,
                    error,
                    after_lines,
                } => return Err(tally.failed(source, error, after_lines)),
                RawItem::Long { source, text } => {
                    // It ends its batch: the tokenizer reads its text as it comes.
                    docs.push(tally.add_long(source, text));
                    if tx.send(std::mem::take(&mut docs)).is_err() {
                        return Ok(());
                    }
                    bytes = 0;
                    continue;
                }
                RawItem::LongDone { bytes: b, .. } => {
                    tally.bytes += b;
                    continue;
                }
                RawItem::LongFailed {
                    source,
                    failure,
                    compression,
                } => return Err(tally.long_failed(source, failure, compression)),
            };
            let (source, size, last) = (batch.source, batch.bytes.len() as u64, batch.last);
            let parsed = self.parse(batch, path);
            tally.add(source, size, parsed, last, &mut |doc| {
                bytes += doc.text.len() + 64;
                docs.push(doc);
                if bytes >= BATCH_BYTES && !stopped {
                    stopped = tx.send(std::mem::take(&mut docs)).is_err();
                    bytes = 0;
                }
            })?;
            if stopped {
                return Ok(());
            }
        }
        if !docs.is_empty() {
            let _ = tx.send(docs);
        }
        Ok(())
    }

    /// One batch's lines parsed in the pool, piece by piece, in order.
    fn parse(&self, batch: RawBatch, path: &[String]) -> Vec<Piece> {
        // A long line is one document: parsed here, in its own buffer.
        let field = self.field.as_deref();
        let batch = match parse_long_line(batch, path, field) {
            Ok((rest, piece)) => {
                self.buffers.give(rest.bytes);
                return vec![piece];
            }
            Err(batch) => batch,
        };
        let (bytes, clock) = (&batch.bytes, self.clock);
        let parsed = self.pool.install(|| {
            pieces(bytes, lines::PIECE_BYTES)
                .into_par_iter()
                .map(|r| clock.time(Stage::Parse, || parse_piece(&bytes[r], path, field)))
                .collect()
        });
        self.buffers.give(batch.bytes);
        parsed
    }
}
