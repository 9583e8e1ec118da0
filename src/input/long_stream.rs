//! A very long JSONL line read in bounded blocks: its text field is decoded as it is read and
//! handed on in pieces, so neither the line nor its text is ever held whole.
//!
//! When a line has no end within its first [`long_line_bytes`] bytes and those bytes end inside
//! the string value of the object's first text-key field ([`text_start`]), the reader hands on a
//! document whose text arrives on a channel ([`LongText`]) and then decodes the rest of the
//! string block by block ([`StringDecoder`]: escapes and UTF-8 sequences that straddle blocks are
//! carried over). The JSON around the string is checked once the line ends: the line with the
//! string's body left out (its "skeleton", the line's start and end) goes through the ordinary
//! parser, so a broken line is still an error naming file and line. The text is exactly what the
//! ordinary path would give.

use super::jsonl::{parse_line, BadLine};
use super::open::Compression;
use std::io::{self, BufRead};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Lines longer than this are streamed when the run allows it (`UTK_LONG_LINE_BYTES` overrides,
/// for tests).
pub fn long_line_bytes() -> usize {
    std::env::var("UTK_LONG_LINE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n >= 16)
        .unwrap_or(16 << 20)
}

/// Decoded text is handed on in pieces of about this many bytes (less when
/// [`long_line_bytes`] is less, for tests).
pub fn piece_bytes() -> usize {
    (4 << 20).min(long_line_bytes())
}

/// What the reader sends about a streamed document's text.
#[derive(Debug)]
pub enum LongPiece {
    Text(String),
    /// The line ended and is valid: the text is complete.
    End,
}

/// The receiving end of a streamed document's text. A channel that closes without
/// [`LongPiece::End`] means the reader failed (its error is the one reported).
#[derive(Clone, Debug)]
pub struct LongText(pub Arc<Mutex<Receiver<LongPiece>>>);

impl LongText {
    /// The next piece; `None` if the reader stopped.
    pub fn next(&self) -> Option<LongPiece> {
        self.0.lock().ok()?.recv().ok()
    }
}

/// Reads a line (through its `\n`, if any) into `line`, or only its first `above` bytes.
/// Returns the bytes read.
pub fn read_line(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    above: Option<usize>,
) -> io::Result<usize> {
    let Some(above) = above else {
        return reader.read_until(b'\n', line);
    };
    let mut n = 0;
    while line.len() < above {
        let block = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if block.is_empty() {
            break;
        }
        let look = &block[..block.len().min(above - line.len())];
        let (used, ends) = match memchr::memchr(b'\n', look) {
            Some(k) => (k + 1, true),
            None => (look.len(), false),
        };
        line.extend_from_slice(&look[..used]);
        reader.consume(used);
        n += used;
        if ends {
            break;
        }
    }
    Ok(n)
}

/// Why a streamed line failed.
pub enum Failure {
    Read(io::Error),
    Bad(BadLine),
}

impl Failure {
    /// The run's error, naming `name:line`.
    pub fn error(self, name: &str, line: u64, compression: Compression) -> anyhow::Error {
        match self {
            Failure::Bad(bad) => bad.error(name, line).into(),
            Failure::Read(e) => {
                let what = match compression {
                    Compression::None => "read failed".to_string(),
                    c => format!("{} stream is corrupt or truncated", c.name()),
                };
                anyhow::Error::new(e).context(format!("{name}:{line}: {what}"))
            }
        }
    }
}

/// A streamed line between its first bytes and its end.
pub struct Pending {
    tx: SyncSender<LongPiece>,
    decoder: StringDecoder,
    /// The line up to the text string's body.
    skeleton: Vec<u8>,
    /// Where the string body starts in the line.
    body: usize,
    piece: usize,
}

impl Pending {
    /// A streamed document if `prefix` (the first bytes of a line) ends inside the text string
    /// of the first `key` field; `None` if it does not; a bad line if the string is already
    /// broken.
    pub fn begin(prefix: &[u8], key: &str) -> Result<Option<(Pending, LongText)>, BadLine> {
        let Some(body) = text_start(prefix, key) else {
            return Ok(None);
        };
        if let Err(e) = std::str::from_utf8(&prefix[..body]) {
            let at = e.valid_up_to();
            return Err(BadLine::new(format!(
                "invalid UTF-8 at byte {at} of the line"
            )));
        }
        let mut decoder = StringDecoder::new(body);
        match decoder.feed(&prefix[body..]) {
            Ok(None) => {}
            Ok(Some(_)) => return Ok(None), // not reached: the prefix ends inside the string
            Err(reason) => return Err(BadLine::new(reason)),
        }
        let (tx, rx) = sync_channel(2);
        let pending = Pending {
            tx,
            decoder,
            skeleton: prefix[..body].to_vec(),
            body,
            piece: piece_bytes(),
        };
        Ok(Some((pending, LongText(Arc::new(Mutex::new(rx))))))
    }

    /// Reads the rest of the line from `reader`, sending the text on; then checks the JSON
    /// around it (`path`: the text key). `bytes` counts what is read. `Ok(false)` if the
    /// receiving stage stopped.
    pub fn finish(
        mut self,
        reader: &mut dyn BufRead,
        path: &[String],
        bytes: &mut u64,
    ) -> Result<bool, Failure> {
        let bad = |reason: &str| Failure::Bad(BadLine::new(reason.to_string()));
        loop {
            let block = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Read(e)),
            };
            if block.is_empty() {
                return Err(bad("malformed JSON: the input ends inside the text string"));
            }
            let (used, ends) = match self.decoder.feed(block) {
                Ok(Some(n)) => (n, true),
                Ok(None) => (block.len(), false),
                Err(reason) => return Err(Failure::Bad(BadLine::new(reason))),
            };
            reader.consume(used);
            *bytes += used as u64;
            if (ends || self.decoder.text.len() >= self.piece) && !self.send_text() {
                return Ok(false);
            }
            if ends {
                break;
            }
        }
        let mut tail = Vec::new();
        *bytes += reader.read_until(b'\n', &mut tail).map_err(Failure::Read)? as u64;
        while let Some(b'\n' | b'\r') = tail.last() {
            tail.pop();
        }
        self.skeleton.push(b'"');
        self.skeleton.extend_from_slice(&tail);
        match parse_line(&self.skeleton, path) {
            Ok(text) if text.is_empty() => {}
            Ok(_) => {
                return Err(bad(
                    "internal error: the streamed string is not the text field",
                ))
            }
            Err(b) => return Err(Failure::Bad(self.in_line(b))),
        }
        Ok(self.tx.send(LongPiece::End).is_ok())
    }

    /// A skeleton's error with its column moved to where it is in the line (serde_json counts
    /// columns in bytes): after the string, by the string body's length.
    fn in_line(&self, mut bad: BadLine) -> BadLine {
        let body = self.body;
        // The decoder is past the closing quote.
        let shift = self.decoder.at - 1 - body as u64;
        if let Some((head, col)) = bad.reason.rsplit_once(" column ") {
            if let Ok(col) = col.parse::<u64>() {
                if col > body as u64 {
                    bad.reason = format!("{head} column {}", col + shift);
                }
            }
        }
        bad
    }

    fn send_text(&mut self) -> bool {
        let text = std::mem::take(&mut self.decoder.text);
        self.tx.send(LongPiece::Text(text)).is_ok()
    }
}

/// The offset of the string body (after its opening quote) if `prefix`, the start of a line,
/// ends inside the string value of the first top-level `key` field of an object. Only string
/// boundaries and nesting are followed here; whether the line is valid JSON is checked with its
/// skeleton once it has been read.
pub fn text_start(prefix: &[u8], key: &str) -> Option<usize> {
    let (mut depth, mut i) = (0usize, 0usize);
    // At depth 1: the next string is a key; the last key was `key` (and the first such).
    let (mut key_next, mut value_of_key, mut seen) = (false, false, false);
    while i < prefix.len() {
        match prefix[i] {
            b'{' | b'[' => {
                depth += 1;
                key_next = depth == 1 && prefix[i] == b'{';
            }
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 1 => (key_next, value_of_key) = (true, false),
            b'"' => {
                let Some(end) = string_end(prefix, i + 1) else {
                    return (depth == 1 && value_of_key && !key_next).then_some(i + 1);
                };
                if depth == 1 && key_next {
                    let name: String = serde_json::from_slice(&prefix[i..=end]).ok()?;
                    value_of_key = name == key && !seen;
                    seen |= name == key;
                    key_next = false;
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string whose body starts at `from`, if in `b`.
fn string_end(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let k = from + memchr::memchr2(b'"', b'\\', &b[from..])?;
        if b[k] == b'"' {
            return Some(k);
        }
        from = k + 2;
        if from > b.len() {
            return None;
        }
    }
}

/// Unescapes a JSON string body given in blocks.
pub struct StringDecoder {
    /// Bytes not decoded yet: an escape or UTF-8 sequence cut by the block's end, then the block.
    raw: Vec<u8>,
    /// Offset in the line of `raw[0]`, for errors.
    at: u64,
    /// Decoded text not handed on yet.
    pub text: String,
}

impl StringDecoder {
    /// A decoder for the body starting at byte `at` of the line.
    pub fn new(at: usize) -> Self {
        StringDecoder {
            raw: Vec::new(),
            at: at as u64,
            text: String::new(),
        }
    }

    /// Decodes `block`, the next bytes of the line. Returns how many of them belong to the
    /// string, closing quote included, once it ends (`None`: all of them, and it goes on); or
    /// why the string is not valid.
    pub fn feed(&mut self, block: &[u8]) -> Result<Option<usize>, String> {
        let carried = self.raw.len();
        self.raw.extend_from_slice(block);
        let (done, end) = self.decode()?;
        self.raw.drain(..done);
        self.at += done as u64;
        match end {
            None => Ok(None),
            Some(quote) => {
                // What follows the string is read again by the caller.
                self.raw.clear();
                (quote + 1)
                    .checked_sub(carried)
                    .map(Some)
                    .ok_or_else(|| "internal error: the string ended in carried bytes".into())
            }
        }
    }

    /// Decodes `raw` as far as it can: returns how far, and the closing quote's index if found.
    fn decode(&mut self) -> Result<(usize, Option<usize>), String> {
        let raw = &self.raw;
        let mut r = 0;
        loop {
            let stop = memchr::memchr2(b'"', b'\\', &raw[r..]).map(|k| r + k);
            let seg_end = stop.unwrap_or(raw.len());
            let seg = &raw[r..seg_end];
            if let Some(k) = seg.iter().position(|&b| b < 0x20) {
                return Err(self.error("control character (\\u0000-\\u001F)", r + k));
            }
            let valid = match std::str::from_utf8(seg) {
                Ok(s) => s,
                // A sequence cut by the block's end waits for the next block.
                Err(e) if e.error_len().is_none() && stop.is_none() => {
                    std::str::from_utf8(&seg[..e.valid_up_to()]).expect("checked")
                }
                Err(e) => return Err(self.utf8_error(r + e.valid_up_to())),
            };
            self.text.push_str(valid);
            let Some(s) = stop else {
                return Ok((r + valid.len(), None));
            };
            if raw[s] == b'"' {
                return Ok((s + 1, Some(s)));
            }
            match super::long_line::escape(raw, s) {
                Some((c, next)) => {
                    self.text.push(c);
                    r = next;
                }
                // Possibly cut by the block's end (a surrogate pair is 12 bytes).
                None if raw.len() - s < 12 => return Ok((s, None)),
                None => return Err(self.error("invalid escape or lone surrogate", s)),
            }
        }
    }

    fn error(&self, what: &str, at: usize) -> String {
        format!("{what} at byte {} of the line", self.at + at as u64)
    }

    fn utf8_error(&self, at: usize) -> String {
        format!("invalid UTF-8 at byte {} of the line", self.at + at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::jsonl::parse_line;
    use proptest::prelude::*;

    /// The text the decoder gives for `line` fed in blocks of `block` bytes, with the skeleton
    /// check the reader does; `Err` if it refuses.
    fn streamed(line: &[u8], prefix: usize, block: usize) -> Option<Result<String, ()>> {
        let body = text_start(&line[..prefix.min(line.len())], "text")?;
        let mut d = StringDecoder::new(body);
        let mut at = body;
        let end = loop {
            if at == line.len() {
                return Some(Err(()));
            }
            let next = (at + block).min(line.len());
            match d.feed(&line[at..next]) {
                Ok(Some(n)) => break at + n,
                Ok(None) => at = next,
                Err(_) => return Some(Err(())),
            }
        };
        let mut skeleton = line[..body].to_vec();
        skeleton.extend_from_slice(&line[end - 1..]);
        match parse_line(&skeleton, &["text".to_string()]) {
            Ok(s) if s.is_empty() => Some(Ok(d.text)),
            _ => Some(Err(())),
        }
    }

    fn check(line: &str) {
        let want = parse_line(line.as_bytes(), &["text".to_string()]).map_err(|_| ());
        for prefix in [10, 12, 13, 20] {
            for block in [1, 2, 3, 5, 7, 64] {
                if let Some(got) = streamed(line.as_bytes(), prefix, block) {
                    assert_eq!(got, want, "{line:?} prefix {prefix} block {block}");
                }
            }
        }
    }

    #[test]
    fn finds_the_first_text_field_only() {
        assert_eq!(text_start(br#"{"text": "abc"#, "text"), Some(10));
        assert_eq!(text_start(br#"{"id": "x", "text":"abc"#, "text"), Some(20));
        assert_eq!(text_start(br#"{"id": "abc"#, "text"), None);
        assert_eq!(text_start(br#"{"text": "a", "text": "abc"#, "text"), None);
        assert_eq!(text_start(br#"{"m": {"text": "abc"#, "text"), None);
        assert_eq!(text_start(br#"{"t\u0065xt": "abc"#, "text"), Some(15));
        assert_eq!(text_start(br#"{"text": ["abc"#, "text"), None);
        assert_eq!(text_start(br#"["text", "abc"#, "text"), None);
        assert_eq!(text_start(br#"{"text": "a\"bc"#, "text"), Some(10));
    }

    #[test]
    fn decodes_as_the_ordinary_path() {
        for line in [
            r#"{"text": "plain text that is long enough"}"#,
            r#"{"id": 1, "text": "a\nb\t\"c\"\\ \/ \b\f\r", "x": [1, {"text": 2}]}"#,
            r#"{"text": "\u00e9\u4e2d\ud83d\ude00 é中😀 and more é中😀", "text": "second"}"#,
            r#"{"text": "lone \ud800 surrogate and more"}"#,
            r#"{"text": "lone \udc00 low surrogate"}"#,
            r#"{"text": "bad \x escape here and more"}"#,
            r#"{"text": "unterminated string here}"#,
            r#"{"text": "good string, bad after"} trailing"#,
            r#"{"text": "good string, bad after", }"#,
            r#"{"text": "good string, bad after", "n": tru}"#,
            "{\"text\": \"raw\tcontrol char in text\"}",
        ] {
            check(line);
        }
    }

    proptest! {
        /// Any string, escaped or not, fed in blocks of any size, decodes as the ordinary path
        /// decodes the whole line.
        #[test]
        fn blocks_of_any_size(text in any::<String>(), ascii in "[\\x00-\\x7f]{0,40}", block in 1usize..40) {
            let doc = serde_json::json!({ "text": format!("{text}{ascii}"), "id": 7 }).to_string();
            let escaped: String = doc.chars().map(|c| match c as u32 {
                0..=0x7f => c.to_string(),
                _ => c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect(),
            }).collect();
            for line in [doc, escaped] {
                let want = parse_line(line.as_bytes(), &["text".to_string()]).map_err(|_| ());
                // The first block ends right after the opening quote (so the string is entered
                // even when it is empty), then the rest comes in blocks of `block` bytes.
                let prefix = line.find(r#""text":""#).unwrap() + 8;
                prop_assert_eq!(streamed(line.as_bytes(), prefix, block), Some(want));
            }
        }
    }
}
