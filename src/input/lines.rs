//! The lines of a [`RawBatch`] parsed in pieces (in parallel, by the caller's pool), then counted
//! in order by a [`LineTally`]: line numbers, blank lines, bad lines and the per-source checks
//! come out exactly as the one-thread [`super::DocumentReader`] gives them.

use super::field::field_value;
use super::jsonl::{parse_line, BadLine, DocumentReader, LINE_KEEP};
use super::long_stream::{Failure, LongText};
use super::open::Compression;
use super::raw::RawBatch;
use super::{Source, TextDoc};
use crate::record::BadLines;
use anyhow::{bail, Result};
use std::ops::Range;

/// Bytes of a batch parsed as one piece (cut at the next line end).
pub const PIECE_BYTES: usize = 128 << 10;

/// A line's text and its source field's value.
type Parsed = (String, Option<String>);

/// What parsing one piece of a batch found.
#[derive(Default)]
pub struct Piece {
    /// Lines in the piece (blank ones included).
    lines: u64,
    blank: u64,
    /// Each non-blank line: its 0-based index in the piece, and its text and source field's
    /// value (see [`super::field`]) or why it has none.
    docs: Vec<(u64, Result<Parsed, BadLine>)>,
}

/// The pieces of `bytes` (whole lines), each about `size` bytes and ending at a line end.
pub fn pieces(bytes: &[u8], size: usize) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(bytes.len() / size.max(1) + 1);
    let mut start = 0;
    while start < bytes.len() {
        let target = start + size.max(1);
        let end = match bytes.get(target..) {
            Some(rest) => memchr::memchr(b'\n', rest).map_or(bytes.len(), |i| target + i + 1),
            None => bytes.len(),
        };
        out.push(start..end);
        start = end;
    }
    out
}

/// Parses the lines of `bytes`; `path` is the text key's field names, `field` the source
/// field's, when the run reads one.
pub fn parse_piece(bytes: &[u8], path: &[String], field: Option<&[String]>) -> Piece {
    let mut piece = Piece::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let index = piece.lines;
        piece.lines += 1;
        let text = trim_end(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            piece.blank += 1;
            continue;
        }
        let parsed = parse_line(text, path).and_then(|t| {
            let value = field.map(|f| field_value(text, f)).transpose()?;
            Ok((t, value.flatten()))
        });
        piece.docs.push((index, parsed));
    }
    piece
}

/// A batch that is one long line: its buffer becomes its text in place (see
/// [`super::long_line`]); `Err` gives the batch back when it is not such a batch.
pub fn parse_long_line(
    batch: RawBatch,
    path: &[String],
    field: Option<&[String]>,
) -> Result<(RawBatch, Piece), RawBatch> {
    let bytes = &batch.bytes;
    if bytes.len() <= LINE_KEEP {
        return Err(batch);
    }
    let one_line = memchr::memchr(b'\n', bytes).is_none_or(|i| i + 1 == bytes.len());
    let len = trim_end(bytes).len();
    if !one_line || len <= LINE_KEEP {
        return Err(batch);
    }
    let mut piece = Piece {
        lines: 1,
        ..Piece::default()
    };
    let RawBatch {
        source,
        mut bytes,
        last,
    } = batch;
    if bytes[..len].iter().all(u8::is_ascii_whitespace) {
        piece.blank = 1;
    } else {
        piece
            .docs
            .push((0, DocumentReader::parse_doc(&mut bytes, len, path, field)));
    }
    let rest = RawBatch {
        source,
        bytes,
        last,
    };
    Ok((rest, piece))
}

/// A line without its line end (every trailing `\n` and `\r`, as the reader strips them).
fn trim_end(mut line: &[u8]) -> &[u8] {
    while let Some((b'\n' | b'\r', rest)) = line.split_last() {
        line = rest;
    }
    line
}

/// What a run's text input held, counted in document order.
pub struct LineTally {
    names: Vec<String>,
    ranges: Vec<bool>,
    skip_bad_lines: bool,
    /// The current source's lines, documents and skipped lines so far.
    line: u64,
    docs: u64,
    skipped: u64,
    /// Blank (whitespace-only) lines skipped.
    pub blank_lines: u64,
    /// Bad lines skipped (only with `skip_bad_lines`).
    pub bad_lines: BadLines,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Lines read from each finished source, in source order.
    pub lines: Vec<u64>,
}

impl LineTally {
    pub fn new(sources: &[Source], skip_bad_lines: bool) -> Self {
        LineTally {
            names: sources.iter().map(Source::name).collect(),
            ranges: sources
                .iter()
                .map(|s| matches!(s, Source::Range(..)))
                .collect(),
            skip_bad_lines,
            line: 0,
            docs: 0,
            skipped: 0,
            blank_lines: 0,
            bad_lines: BadLines::default(),
            bytes: 0,
            lines: Vec::new(),
        }
    }

    /// Counts one batch's pieces (in order) of `source`, handing each document to `out`; the
    /// first bad line is the run's error unless bad lines are skipped.
    pub fn add(
        &mut self,
        source: u32,
        bytes: u64,
        pieces: Vec<Piece>,
        last: bool,
        out: &mut dyn FnMut(TextDoc),
    ) -> Result<()> {
        let name = &self.names[source as usize];
        self.bytes += bytes;
        for piece in pieces {
            self.blank_lines += piece.blank;
            for (index, parsed) in piece.docs {
                let line = self.line + index + 1;
                match parsed {
                    Ok((text, field)) => {
                        self.docs += 1;
                        out(TextDoc {
                            text,
                            source,
                            line,
                            long: None,
                            field,
                        });
                    }
                    Err(bad) if self.skip_bad_lines => {
                        self.skipped += 1;
                        self.bad_lines
                            .add(|| format!("{name}:{line}: {}", bad.reason));
                    }
                    Err(bad) => return Err(bad.error(name, line).into()),
                }
            }
            self.line += piece.lines;
        }
        if last {
            self.end_source(source)?;
        }
        Ok(())
    }

    /// A streamed line (see [`super::raw::RawItem::Long`]): its document, whose text comes
    /// down `text`.
    pub fn add_long(&mut self, source: u32, text: LongText) -> TextDoc {
        self.line += 1;
        self.docs += 1;
        TextDoc {
            text: String::new(),
            source,
            line: self.line,
            long: Some(text),
            field: None,
        }
    }

    /// The error of a streamed line that failed (the last line counted).
    pub fn long_failed(
        &self,
        source: u32,
        failure: Failure,
        compression: Compression,
    ) -> anyhow::Error {
        failure.error(&self.names[source as usize], self.line, compression)
    }

    /// A source read to its end: its line count kept, and one read whole must hold a document.
    fn end_source(&mut self, source: u32) -> Result<()> {
        let name = &self.names[source as usize];
        self.lines.push(self.line);
        let empty = self.docs == 0 && self.skipped == 0 && !self.ranges[source as usize];
        (self.line, self.docs, self.skipped) = (0, 0, 0);
        if empty {
            bail!("{name}: no documents (nothing but blank lines, or empty after decompression)");
        }
        Ok(())
    }

    /// The error of a source that could not be read further (see [`super::raw::RawItem`]).
    pub fn failed(
        &self,
        source: u32,
        error: anyhow::Error,
        after_lines: Option<String>,
    ) -> anyhow::Error {
        match after_lines {
            Some(what) => {
                let name = &self.names[source as usize];
                error.context(format!("{name}: {what} after line {}", self.line))
            }
            None => error,
        }
    }
}

/// The key's field names, or the error a run reports for it.
pub fn key_path(key: &str) -> Result<Vec<String>> {
    Ok(super::key::key_path(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::raw::{read_raw, Limits, RawItem};
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// Documents as `(text, source, line)`, the counts, and the error, if any.
    type Outcome = (Docs, u64, (u64, Vec<String>), u64, Vec<u64>, Option<String>);
    type Docs = Vec<(String, u32, u64)>;

    fn docs(list: Vec<TextDoc>) -> Docs {
        list.into_iter()
            .map(|d| (d.text, d.source, d.line))
            .collect()
    }

    /// The one-thread reader.
    fn one_thread(sources: &[Source], skip: bool) -> Outcome {
        let mut r = DocumentReader::new(sources.to_vec(), "text", skip, Arc::default());
        let mut out = Vec::new();
        let error = loop {
            match r.next_doc() {
                Ok(Some(d)) => out.push(d),
                Ok(None) => break None,
                Err(e) => break Some(format!("{e:#}")),
            }
        };
        let bad = (r.bad_lines.count, r.bad_lines.examples);
        (docs(out), r.blank_lines, bad, r.bytes, r.lines, error)
    }

    /// Raw batches cut with `limits`, parsed in pieces of `piece` bytes, counted in order.
    fn in_pieces(sources: &[Source], skip: bool, limits: Limits, piece: usize) -> Outcome {
        let mut items = Vec::new();
        let take = |n| Vec::with_capacity(n);
        read_raw(
            sources,
            limits,
            None,
            &Arc::new(AtomicU64::new(0)),
            &take,
            &mut |i| {
                items.push(i);
                true
            },
        );
        let path = key_path("text").unwrap();
        let mut tally = LineTally::new(sources, skip);
        let mut out = Vec::new();
        let mut error = None;
        for item in items {
            let b = match item {
                RawItem::Batch(b) => b,
                RawItem::Failed {
                    source,
                    error: e,
                    after_lines,
                } => {
                    error = Some(format!("{:#}", tally.failed(source, e, after_lines)));
                    break;
                }
                _ => unreachable!("nothing is streamed here"),
            };
            let (source, size, last) = (b.source, b.bytes.len() as u64, b.last);
            let parsed = match parse_long_line(b, &path, None) {
                Ok((_, p)) => vec![p],
                Err(b) => pieces(&b.bytes, piece)
                    .into_iter()
                    .map(|r| parse_piece(&b.bytes[r], &path, None))
                    .collect(),
            };
            if let Err(e) = tally.add(source, size, parsed, last, &mut |d| out.push(d)) {
                error = Some(format!("{e:#}"));
                break;
            }
        }
        let t = tally;
        let bad = (t.bad_lines.count, t.bad_lines.examples);
        (docs(out), t.blank_lines, bad, t.bytes, t.lines, error)
    }

    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => "[a-z é\\\\n\"]{0,40}".prop_map(|t| {
                serde_json::to_vec(&serde_json::json!({"id": 1, "text": t})).unwrap()
            }),
            1 => Just(b"".to_vec()),
            1 => Just(b"  \t".to_vec()),
            1 => Just(b"\r".to_vec()),
            1 => Just(br#"{"body":"x"}"#.to_vec()),
            1 => Just(b"not json".to_vec()),
            1 => Just(b"{\"text\":\"\xff\"}".to_vec()),
        ]
    }

    /// A source's bytes: lines with `\n` or `\r\n`, the last one perhaps without; zstd
    /// compressed (and perhaps cut short) or not.
    fn source() -> impl Strategy<Value = Vec<u8>> {
        let lines = proptest::collection::vec((line(), any::<bool>()), 0..30);
        (lines, any::<bool>(), 0u8..4, any::<u16>()).prop_map(|(lines, end, zstd, cut)| {
            let mut bytes = Vec::new();
            for (i, (l, crlf)) in lines.iter().enumerate() {
                bytes.extend_from_slice(l);
                if end || i + 1 < lines.len() {
                    bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
            }
            if zstd == 0 {
                return bytes;
            }
            let mut z = zstd::encode_all(&bytes[..], 1).unwrap();
            if zstd == 1 && z.len() > 8 {
                z.truncate(8 + cut as usize % (z.len() - 8));
            }
            z
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever the batch and piece sizes, the documents, line numbers, counts and errors
        /// are those of the one-thread reader.
        #[test]
        fn equals_the_one_thread_reader(
            contents in proptest::collection::vec(source(), 1..4),
            skip in any::<bool>(),
            (batch, long, chunk, piece) in (1usize..300, 1usize..120, 1usize..70, 1usize..200),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let sources: Vec<Source> = contents.iter().enumerate().map(|(i, c)| {
                let p = dir.path().join(format!("s{i}.jsonl"));
                std::fs::write(&p, c).unwrap();
                Source::File(p)
            }).collect();
            let limits = Limits { batch, long, chunk };
            // A run that fails reports its error, not its counts.
            let bytes_if_ok = |mut o: Outcome| {
                if o.5.is_some() {
                    (o.1, o.3) = (0, 0);
                }
                o
            };
            prop_assert_eq!(
                bytes_if_ok(in_pieces(&sources, skip, limits, piece)),
                bytes_if_ok(one_thread(&sources, skip))
            );
        }
    }

    #[test]
    fn a_long_line_is_a_batch_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let long = format!("{{\"text\":\"{}\"}}", "x".repeat(50));
        std::fs::write(
            &p,
            format!("{{\"text\":\"a\"}}\n{long}\n{{\"text\":\"b\"}}\n{long}"),
        )
        .unwrap();
        let limits = Limits {
            batch: 1000,
            long: 40,
            chunk: 7,
        };
        let mut batches = Vec::new();
        read_raw(
            &[Source::File(p)],
            limits,
            None,
            &Arc::default(),
            &Vec::with_capacity,
            &mut |i| {
                if let RawItem::Batch(b) = i {
                    batches.push((String::from_utf8(b.bytes).unwrap(), b.last));
                }
                true
            },
        );
        let want = [
            ("{\"text\":\"a\"}\n".to_string(), false),
            (format!("{long}\n"), false),
            ("{\"text\":\"b\"}\n".to_string(), false),
            (long, true),
        ];
        assert_eq!(batches, want);
    }
}
