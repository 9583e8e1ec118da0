//! Streams documents out of JSONL sources, one JSON object per line.
//!
//! Only the `--text-key` field is materialised; other fields are skipped without being built.
//! A bad line (invalid UTF-8, malformed JSON, missing or non-string text field) is an error that
//! names the file and line — or, with `--skip-bad-lines`, a counted and recorded skip. Failures of
//! the stream itself (unreadable file, truncated gzip/zstd) are always errors: skipping them would
//! silently lose the rest of a file.

use super::field::field_value;
use super::key::{key_name, key_path};
use super::long_line;
use super::long_stream;
use super::open::{open, Compression};
use super::parquet::ParquetDocs;
use super::{Source, TextDoc};
use crate::record::BadLines;
use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::io::BufRead;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The line buffer's capacity kept between lines; a longer line's buffer is released once parsed.
pub(super) const LINE_KEEP: usize = 16 << 20;

/// Reads documents from a list of sources, in order: JSONL lines, or parquet rows (made by
/// [`DocumentReader::parquet`], read by [`super::parquet`]).
pub struct DocumentReader {
    parquet: Option<Box<ParquetDocs>>,
    sources: Vec<Source>,
    next_source: usize,
    current: Option<Current>,
    /// The text key's field names, or why it is not a key (reported on the first read).
    path: std::result::Result<Vec<String>, SettingError>,
    skip_bad_lines: bool,
    raw_bytes: Arc<AtomicU64>,
    line: Vec<u8>,
    /// Blank (whitespace-only) lines skipped.
    pub blank_lines: u64,
    /// Bad lines skipped (only with `skip_bad_lines`).
    pub bad_lines: BadLines,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Lines read from each finished source, in source order.
    pub lines: Vec<u64>,
    /// Lines longer than this are streamed (see [`super::long_stream`]), when asked for.
    stream_above: Option<usize>,
    /// The streamed line being read.
    long: Option<Box<long_stream::Pending>>,
    /// The source field's path (see [`super::field`]), when the run reads one.
    field: Option<Vec<String>>,
}

struct Current {
    reader: Box<dyn BufRead + Send>,
    compression: Compression,
    index: u32,
    line: u64,
    docs: u64,
    skipped: u64,
}

impl DocumentReader {
    /// `raw_bytes` accumulates the bytes read from disk (compressed), for progress reporting.
    pub fn new(
        sources: Vec<Source>,
        key: &str,
        skip_bad_lines: bool,
        raw_bytes: Arc<AtomicU64>,
    ) -> Self {
        DocumentReader {
            parquet: None,
            sources,
            next_source: 0,
            current: None,
            path: key_path(key),
            skip_bad_lines,
            raw_bytes,
            line: Vec::with_capacity(1 << 16),
            blank_lines: 0,
            bad_lines: BadLines::default(),
            bytes: 0,
            lines: Vec::new(),
            stream_above: None,
            long: None,
            field: None,
        }
    }

    /// Streams the text of very long lines instead of reading them whole (see
    /// [`super::long_stream`]): such a document comes with an empty `text` and its
    /// [`TextDoc::long`] channel, and ends its batch; the next read sends its text down that
    /// channel. Lines are streamed above `above` bytes; the caller decides whether the run can
    /// (`AugmentJob::long_line_stream`: a top-level key, no `--skip-bad-lines`, …).
    pub fn stream_long_lines(&mut self, above: usize) {
        self.stream_above = Some(above);
    }

    /// Also reads the field at `path` of every line into [`TextDoc::field`] (see
    /// [`super::field`]).
    pub fn read_field(&mut self, path: Vec<String>) {
        self.field = Some(path);
    }

    /// The next document, or `None` after the last source.
    pub fn next_doc(&mut self) -> Result<Option<TextDoc>> {
        if !self.finish_long()? {
            return Ok(None); // the next stage stopped; its error is reported
        }
        loop {
            if self.current.is_none() {
                let Some(source) = self.sources.get(self.next_source) else {
                    return Ok(None);
                };
                let (reader, compression) = open(source, self.raw_bytes.clone())?;
                self.current = Some(Current {
                    reader,
                    compression,
                    index: self.next_source as u32,
                    line: 0,
                    docs: 0,
                    skipped: 0,
                });
                self.next_source += 1;
            }
            let cur = self.current.as_mut().expect("opened above");
            let name = self.sources[cur.index as usize].name();
            self.line.clear();
            let n = long_stream::read_line(cur.reader.as_mut(), &mut self.line, self.stream_above)
                .with_context(|| {
                    let what = match cur.compression {
                        Compression::None => "read failed".to_string(),
                        c => format!("{} stream is corrupt or truncated", c.name()),
                    };
                    format!("{name}: {what} after line {}", cur.line)
                })?;
            if n == 0 {
                self.end_source(&name)?;
                continue;
            }
            self.bytes += n as u64;
            cur.line += 1;
            if let Some(doc) = self.begin_long(self.stream_above)? {
                return Ok(Some(doc));
            }
            let cur = self.current.as_mut().expect("opened above");
            let mut text = self.line.as_slice();
            while let Some((b'\n' | b'\r', rest)) = text.split_last() {
                text = rest;
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                self.blank_lines += 1;
                continue;
            }
            let len = text.len();
            let path = self.path.as_ref().map_err(|e| e.clone())?;
            match Self::parse_doc(&mut self.line, len, path, self.field.as_deref()) {
                Ok((text, field)) => {
                    cur.docs += 1;
                    return Ok(Some(TextDoc {
                        text,
                        source: cur.index,
                        line: cur.line,
                        long: None,
                        field,
                    }));
                }
                Err(bad) if self.skip_bad_lines => {
                    cur.skipped += 1;
                    let line = cur.line;
                    self.bad_lines
                        .add(|| format!("{name}:{line}: {}", bad.reason));
                }
                Err(bad) => return Err(bad.error(&name, cur.line).into()),
            }
        }
    }
}

impl DocumentReader {
    /// The current source (`name`) has no more lines.
    fn end_source(&mut self, name: &str) -> Result<()> {
        let cur = self.current.take().expect("a source is being read");
        let (docs, skipped, index) = (cur.docs, cur.skipped, cur.index as usize);
        self.lines.push(cur.line);
        // A range of a file may hold only blank lines; the file as a whole is checked
        // when it is read whole.
        let range = matches!(self.sources[index], Source::Range(..));
        if docs == 0 && skipped == 0 && !range {
            bail!("{name}: no documents (nothing but blank lines, or empty after decompression)");
        }
        Ok(())
    }

    /// Reads the rest of the streamed line, if any, sending its text on (see
    /// [`Self::stream_long_lines`]); false if the receiving stage stopped.
    fn finish_long(&mut self) -> Result<bool> {
        let Some(pending) = self.long.take() else {
            return Ok(true);
        };
        let cur = self.current.as_mut().expect("a long line is being read");
        let path = self.path.as_ref().map_err(|e| e.clone())?;
        pending
            .finish(cur.reader.as_mut(), path, &mut self.bytes)
            .map_err(|e| {
                let name = self.sources[cur.index as usize].name();
                e.error(&name, cur.line, cur.compression)
            })
    }

    /// A line cut short at `above` bytes (no line end yet): a streamed document if those bytes
    /// end inside its text string (see [`super::long_stream`]); otherwise the rest of the line
    /// is read, as it would have been.
    fn begin_long(&mut self, above: Option<usize>) -> Result<Option<TextDoc>> {
        match above {
            Some(above) if self.line.len() >= above && self.line.last() != Some(&b'\n') => {}
            _ => return Ok(None),
        }
        let cur = self.current.as_mut().expect("a line is being read");
        let key = self.path.as_ref().map_err(|e| e.clone())?[0].as_str();
        match long_stream::Pending::begin(&self.line, key) {
            Ok(Some((pending, text))) => {
                self.long = Some(Box::new(pending));
                self.line = Vec::with_capacity(1 << 16);
                cur.docs += 1;
                Ok(Some(TextDoc {
                    text: String::new(),
                    source: cur.index,
                    line: cur.line,
                    long: Some(text),
                    field: None,
                }))
            }
            Ok(None) => {
                let name = self.sources[cur.index as usize].name();
                let n = cur.reader.read_until(b'\n', &mut self.line).map_err(|e| {
                    long_stream::Failure::Read(e).error(&name, cur.line, cur.compression)
                })?;
                self.bytes += n as u64;
                Ok(None)
            }
            Err(bad) => {
                let name = self.sources[cur.index as usize].name();
                Err(bad.error(&name, cur.line).into())
            }
        }
    }

    /// The field at `path` of the line in `buf` (its first `len` bytes, without the line end).
    pub(super) fn parse(
        buf: &mut Vec<u8>,
        len: usize,
        path: &[String],
    ) -> std::result::Result<String, BadLine> {
        let parsed = match path {
            // A long line's buffer becomes its text (see `long_line`), and is not kept.
            [key] if len > LINE_KEEP => {
                let mut line = std::mem::replace(buf, Vec::with_capacity(1 << 16));
                line.truncate(len);
                long_line::take_text(line, key).or_else(|line| parse_line(&line, path))
            }
            _ => parse_line(&buf[..len], path),
        };
        if buf.capacity() > LINE_KEEP {
            *buf = Vec::with_capacity(1 << 16);
        }
        parsed
    }

    /// The text at `path` and the value of the field at `field` (if asked for) of the line in
    /// `buf` (see [`Self::parse`]); a bad text is reported before a bad field.
    pub(super) fn parse_doc(
        buf: &mut Vec<u8>,
        len: usize,
        path: &[String],
        field: Option<&[String]>,
    ) -> std::result::Result<(String, Option<String>), BadLine> {
        let value = field.map(|f| field_value(&buf[..len], f));
        let text = Self::parse(buf, len, path)?;
        Ok((text, value.transpose()?.flatten()))
    }

    /// Parquet: decodes at most `threads` row groups side by side (a run's `-j`).
    pub fn limit_threads(&mut self, threads: usize) {
        if let Some(p) = self.parquet.as_mut() {
            p.limit_threads(threads);
        }
    }

    /// Reads the rows of parquet files instead of JSONL lines (bad rows are counted as bad lines).
    pub fn parquet(
        sources: Vec<Source>,
        key: &str,
        skip_bad_lines: bool,
        raw_bytes: Arc<AtomicU64>,
    ) -> Self {
        let docs = ParquetDocs::new(sources, key, skip_bad_lines, raw_bytes.clone());
        DocumentReader {
            parquet: Some(Box::new(docs)),
            ..DocumentReader::new(Vec::new(), key, skip_bad_lines, raw_bytes)
        }
    }

    /// The next documents up to about `max_bytes` of text; fewer (possibly none) at the end.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<TextDoc>> {
        if let Some(p) = &mut self.parquet {
            let batch = p.next_batch(max_bytes)?;
            self.bad_lines = p.bad_lines.clone();
            self.bytes = p.bytes;
            return Ok(batch);
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes {
            match self.next_doc()? {
                Some(doc) => {
                    bytes += doc.text.len() + 64;
                    let long = doc.long.is_some();
                    batch.push(doc);
                    if long {
                        break; // its text comes on the next read
                    }
                }
                None => break,
            }
        }
        Ok(batch)
    }
}

/// Why a line is not a document.
#[derive(Debug)]
pub struct BadLine {
    /// The reason, for a person.
    pub reason: String,
    /// The object has fields but not the text field: another text key may be the fix.
    pub other_fields: bool,
}

impl BadLine {
    pub(super) fn new(reason: String) -> Self {
        BadLine {
            reason,
            other_fields: false,
        }
    }

    /// The error that stops a run at line `line` of source `name`, naming the settings that fix it.
    pub(super) fn error(&self, name: &str, line: u64) -> SettingError {
        let mut e = SettingError::new().text(format!("{name}:{line}: {}", self.reason));
        if self.other_fields {
            e = e
                .text("; choose the text field with ")
                .setting(Setting::TextKey);
        }
        e.text(" (fix the line, or pass ")
            .setting(Setting::SkipBadLines)
            .text(" to skip and count such lines)")
    }
}

/// Extracts the text field from one JSONL line; `path` is the key's field names (see
/// [`super::key`]): every name but the last must be an object.
pub fn parse_line(line: &[u8], path: &[String]) -> std::result::Result<String, BadLine> {
    let bad = |reason: String| BadLine::new(reason);
    // simdutf8 checks a valid line several times faster than `std`, which then says where an
    // invalid one goes wrong.
    let s = match simdutf8::basic::from_utf8(line) {
        Ok(s) => s,
        Err(_) => std::str::from_utf8(line).map_err(|e| {
            bad(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to()
            ))
        })?,
    };
    let mut de = serde_json::Deserializer::from_str(s);
    let found = TextField { path }
        .deserialize(&mut de)
        .map_err(|e| bad(format!("malformed JSON: {e}")))?;
    de.end().map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let (depth, found) = found;
    // The field that was looked for, and the object it was looked for in.
    let key = key_name(&path[..=depth]);
    let inside = match depth {
        0 => String::new(),
        d => format!(" in \"{}\"", key_name(&path[..d])),
    };
    match found {
        Found::Text(t) => Ok(t),
        Found::WrongType(kind) if depth + 1 < path.len() => {
            Err(bad(format!("field \"{key}\" is {kind}, not an object")))
        }
        Found::WrongType(kind) => Err(bad(format!("field \"{key}\" is {kind}, not a string"))),
        Found::Missing(keys) if keys.is_empty() => Err(bad(format!(
            "no \"{}\" field{inside} (the object is empty)",
            path[depth]
        ))),
        Found::Missing(keys) => Err(BadLine {
            reason: format!(
                "no \"{}\" field{inside} (fields: {})",
                path[depth],
                keys.join(", ")
            ),
            other_fields: true,
        }),
    }
}

enum Found {
    Text(String),
    WrongType(&'static str),
    /// The first few keys that were present.
    Missing(Vec<String>),
}

/// Looks for `path` in an object; the result comes with the depth it is about (0: the
/// object's own field `path[0]`).
struct TextField<'k> {
    path: &'k [String],
}

impl<'de> DeserializeSeed<'de> for TextField<'_> {
    type Value = (usize, Found);
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// A field on the way to the text: an object to look into, or what it is instead.
struct Nested<'k> {
    rest: &'k [String],
}

impl<'de> DeserializeSeed<'de> for Nested<'_> {
    type Value = (usize, Found);
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
        match v {
            serde_json::Value::Object(_) => {
                let (depth, found) = TextField { path: self.rest }
                    .deserialize(v)
                    .map_err(serde::de::Error::custom)?;
                Ok((depth + 1, found))
            }
            other => Ok((0, Found::WrongType(kind(&other)))),
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<'de> Visitor<'de> for TextField<'_> {
    type Value = (usize, Found);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && k == self.path[0] {
                found = Some(if self.path.len() > 1 {
                    map.next_value_seed(Nested {
                        rest: &self.path[1..],
                    })?
                } else {
                    match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => (0, Found::Text(s)),
                        other => (0, Found::WrongType(kind(&other))),
                    }
                });
            } else {
                if keys.len() < 8 {
                    keys.push(k.into_owned());
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.unwrap_or((0, Found::Missing(keys))))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_line, DocumentReader, LINE_KEEP};
    use crate::input::key::key_path;

    fn parse(line: &[u8], key: &str) -> Result<String, super::BadLine> {
        parse_line(line, &key_path(key).unwrap())
    }

    #[test]
    fn a_long_line_gives_the_same_text_in_place() {
        let text = "a\\tb \\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n".repeat((LINE_KEEP / 20) + 1);
        let line = format!(r#"{{"id": 7, "text": "{text}", "more": [1, 2]}}"#);
        assert!(line.len() > LINE_KEEP);
        let want = parse(line.as_bytes(), "text").unwrap();
        assert!(want.contains("\t") && want.contains('é') && want.contains('😀'));
        let key = key_path("text").unwrap();
        let mut buf = line.clone().into_bytes();
        buf.extend_from_slice(b"\r\n");
        let got = DocumentReader::parse(&mut buf, line.len(), &key).unwrap();
        assert_eq!(got, want);
        assert!(
            buf.capacity() <= LINE_KEEP,
            "the long line's buffer is not kept"
        );
        let bad = format!(r#"{{"text": "{text}\ud800"}}"#);
        let mut buf = bad.clone().into_bytes();
        let err = DocumentReader::parse(&mut buf, bad.len(), &key).unwrap_err();
        assert_eq!(
            err.reason,
            parse(bad.as_bytes(), "text").unwrap_err().reason
        );
    }

    #[test]
    fn follows_nested_keys() {
        let line = br#"{"id":1,"meta":{"a.b":{"content":"deep"},"n":2},"content":"top"}"#;
        assert_eq!(parse(line, "content").unwrap(), "top");
        assert_eq!(parse(line, r"meta.a\.b.content").unwrap(), "deep");
        let err = |key: &str| parse(line, key).unwrap_err().reason;
        assert!(err("meta.n.x").contains(r#"field "meta.n" is a number, not an object"#));
        assert!(err("meta.m").contains(r#"no "m" field in "meta" (fields: a.b, n)"#));
        assert!(err(r"meta.a\.b").contains(r#"field "meta.a\.b" is an object, not a string"#));
        assert!(err(r"meta.a\.b.x").contains(r#"no "x" field in "meta.a\.b""#));
    }

    #[test]
    fn extracts_the_text_field_and_explains_failures() {
        assert_eq!(parse(br#"{"id":1,"text":"a\nb"}"#, "text").unwrap(), "a\nb");
        assert_eq!(
            parse(br#"{"body":"x","meta":{"text":1}}"#, "body").unwrap(),
            "x"
        );
        let err = |l: &[u8]| parse(l, "text").unwrap_err().reason;
        assert!(
            parse(br#"{"content":"x"}"#, "text")
                .unwrap_err()
                .other_fields
        );
        assert!(err(br#"{"content":"x"}"#).contains("fields: content"));
        assert!(err(br#"{"text":3}"#).contains("a number"));
        assert!(err(br#"{"text":null}"#).contains("null"));
        assert!(err(br#"{"text":"x""#).contains("malformed JSON"));
        assert!(err(br#"{"text":"x"} junk"#).contains("malformed JSON"));
        assert!(err(br#"["text"]"#).contains("malformed JSON"));
        assert!(err(b"{\"text\":\"\xff\"}").contains("invalid UTF-8 at byte 9"));
    }
}
