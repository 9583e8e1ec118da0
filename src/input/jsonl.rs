//! Streams documents out of JSONL sources, one JSON object per line.
//!
//! Only the `--text-key` field is materialised; other fields are skipped without being built.
//! A bad line (invalid UTF-8, malformed JSON, missing or non-string text field) is an error that
//! names the file and line — or, with `--skip-bad-lines`, a counted and recorded skip. Failures of
//! the stream itself (unreadable file, truncated gzip/zstd) are always errors: skipping them would
//! silently lose the rest of a file.

use super::long_line;
use super::open::{open, Compression};
use super::{Source, TextDoc};
use crate::record::BadLines;
use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::io::BufRead;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// How many skipped lines are quoted in the manifest and summary.
const MAX_EXAMPLES: usize = 10;

/// The line buffer's capacity kept between lines; a longer line's buffer is released once parsed.
const LINE_KEEP: usize = 16 << 20;

/// Reads documents from a list of sources, in order.
pub struct DocumentReader {
    sources: Vec<Source>,
    next_source: usize,
    current: Option<Current>,
    key: String,
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
            sources,
            next_source: 0,
            current: None,
            key: key.to_string(),
            skip_bad_lines,
            raw_bytes,
            line: Vec::with_capacity(1 << 16),
            blank_lines: 0,
            bad_lines: BadLines::default(),
            bytes: 0,
            lines: Vec::new(),
        }
    }

    /// The next document, or `None` after the last source.
    pub fn next_doc(&mut self) -> Result<Option<TextDoc>> {
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
            let n = cur
                .reader
                .read_until(b'\n', &mut self.line)
                .with_context(|| {
                    let what = match cur.compression {
                        Compression::None => "read failed".to_string(),
                        c => format!("{} stream is corrupt or truncated", c.name()),
                    };
                    format!("{name}: {what} after line {}", cur.line)
                })?;
            if n == 0 {
                let (docs, skipped, index) = (cur.docs, cur.skipped, cur.index as usize);
                self.lines.push(cur.line);
                self.current = None;
                // A range of a file may hold only blank lines; the file as a whole is checked
                // when it is read whole.
                let range = matches!(self.sources[index], Source::Range(..));
                if docs == 0 && skipped == 0 && !range {
                    bail!("{name}: no documents (nothing but blank lines, or empty after decompression)");
                }
                continue;
            }
            self.bytes += n as u64;
            cur.line += 1;
            let mut text = self.line.as_slice();
            while let Some((b'\n' | b'\r', rest)) = text.split_last() {
                text = rest;
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                self.blank_lines += 1;
                continue;
            }
            let len = text.len();
            match Self::parse(&mut self.line, len, &self.key) {
                Ok(text) => {
                    cur.docs += 1;
                    return Ok(Some(TextDoc {
                        text,
                        source: cur.index,
                        line: cur.line,
                    }));
                }
                Err(bad) if self.skip_bad_lines => {
                    cur.skipped += 1;
                    self.bad_lines.count += 1;
                    if self.bad_lines.examples.len() < MAX_EXAMPLES {
                        let example = format!("{name}:{}: {}", cur.line, bad.reason);
                        self.bad_lines.examples.push(example);
                    }
                }
                Err(bad) => return Err(bad.error(&name, cur.line).into()),
            }
        }
    }
}

impl DocumentReader {
    /// The `key` field of the line in `buf` (its first `len` bytes, without the line end).
    fn parse(buf: &mut Vec<u8>, len: usize, key: &str) -> std::result::Result<String, BadLine> {
        let parsed = if len > LINE_KEEP {
            // A long line's buffer becomes its text (see `long_line`), and is not kept.
            let mut line = std::mem::replace(buf, Vec::with_capacity(1 << 16));
            line.truncate(len);
            long_line::take_text(line, key).or_else(|line| parse_line(&line, key))
        } else {
            parse_line(&buf[..len], key)
        };
        if buf.capacity() > LINE_KEEP {
            *buf = Vec::with_capacity(1 << 16);
        }
        parsed
    }

    /// The next documents up to about `max_bytes` of text; fewer (possibly none) at the end.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<TextDoc>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes {
            match self.next_doc()? {
                Some(doc) => {
                    bytes += doc.text.len() + 64;
                    batch.push(doc);
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
    fn new(reason: String) -> Self {
        BadLine {
            reason,
            other_fields: false,
        }
    }

    /// The error that stops a run at line `line` of source `name`, naming the settings that fix it.
    fn error(&self, name: &str, line: u64) -> SettingError {
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

/// Extracts the text field from one JSONL line.
pub fn parse_line(line: &[u8], key: &str) -> std::result::Result<String, BadLine> {
    let bad = |reason: String| BadLine::new(reason);
    let s = std::str::from_utf8(line).map_err(|e| {
        bad(format!(
            "invalid UTF-8 at byte {} of the line",
            e.valid_up_to()
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(s);
    let found = TextField { key }
        .deserialize(&mut de)
        .map_err(|e| bad(format!("malformed JSON: {e}")))?;
    de.end().map_err(|e| bad(format!("malformed JSON: {e}")))?;
    match found {
        Found::Text(t) => Ok(t),
        Found::WrongType(kind) => Err(bad(format!("field \"{key}\" is {kind}, not a string"))),
        Found::Missing(keys) if keys.is_empty() => {
            Err(bad(format!("no \"{key}\" field (the object is empty)")))
        }
        Found::Missing(keys) => Err(BadLine {
            reason: format!("no \"{key}\" field (fields: {})", keys.join(", ")),
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

struct TextField<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for TextField<'_> {
    type Value = Found;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Found, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TextField<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Found, A::Error> {
        let mut found = None;
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && k == self.key {
                let v: serde_json::Value = map.next_value()?;
                found = Some(match v {
                    serde_json::Value::String(s) => Found::Text(s),
                    serde_json::Value::Null => Found::WrongType("null"),
                    serde_json::Value::Bool(_) => Found::WrongType("a boolean"),
                    serde_json::Value::Number(_) => Found::WrongType("a number"),
                    serde_json::Value::Array(_) => Found::WrongType("an array"),
                    serde_json::Value::Object(_) => Found::WrongType("an object"),
                });
            } else {
                if keys.len() < 8 {
                    keys.push(k.into_owned());
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.unwrap_or(Found::Missing(keys)))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_line, DocumentReader, LINE_KEEP};

    #[test]
    fn a_long_line_gives_the_same_text_in_place() {
        let text = "a\\tb \\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n".repeat((LINE_KEEP / 20) + 1);
        let line = format!(r#"{{"id": 7, "text": "{text}", "more": [1, 2]}}"#);
        assert!(line.len() > LINE_KEEP);
        let want = parse_line(line.as_bytes(), "text").unwrap();
        assert!(want.contains("\t") && want.contains('é') && want.contains('😀'));
        let mut buf = line.clone().into_bytes();
        buf.extend_from_slice(b"\r\n");
        let got = DocumentReader::parse(&mut buf, line.len(), "text").unwrap();
        assert_eq!(got, want);
        assert!(
            buf.capacity() <= LINE_KEEP,
            "the long line's buffer is not kept"
        );
        let bad = format!(r#"{{"text": "{text}\ud800"}}"#);
        let mut buf = bad.clone().into_bytes();
        let err = DocumentReader::parse(&mut buf, bad.len(), "text").unwrap_err();
        assert_eq!(
            err.reason,
            parse_line(bad.as_bytes(), "text").unwrap_err().reason
        );
    }

    #[test]
    fn extracts_the_text_field_and_explains_failures() {
        assert_eq!(
            parse_line(br#"{"id":1,"text":"a\nb"}"#, "text").unwrap(),
            "a\nb"
        );
        assert_eq!(
            parse_line(br#"{"body":"x","meta":{"text":1}}"#, "body").unwrap(),
            "x"
        );
        let err = |l: &[u8]| parse_line(l, "text").unwrap_err().reason;
        assert!(
            parse_line(br#"{"content":"x"}"#, "text")
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
