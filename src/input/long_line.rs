//! The text field of a long JSONL line, decoded in the line's own buffer.
//!
//! The ordinary path ([`super::jsonl::parse_line`]) builds the text as a new `String` while the
//! line is held, and serde_json first unescapes into a scratch buffer of its own: a line of `D`
//! bytes costs about `3·D` at once. For a line of hundreds of MB that is the peak of the whole
//! run. Here serde_json only validates the line and locates the text field's raw string (a
//! borrowed `RawValue`, no copy); the string is then unescaped in place, moved to the buffer's
//! start, and the buffer becomes the `String`: `D` bytes in all.
//!
//! The result is exactly the ordinary path's. Anything this path does not decode itself — a text
//! field that is not a string, a lone surrogate escape, any JSON error — gives the line back
//! untouched, and the ordinary path then decides (and words any error) as it always has.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

/// The text field of `line` (a JSON object on one line, no line end) as a `String` built in
/// `line`'s own buffer, or `Err(line)` unchanged when the ordinary path must decide.
pub fn take_text(line: Vec<u8>, key: &str) -> Result<String, Vec<u8>> {
    let Some(body) = locate(&line, key) else {
        return Err(line);
    };
    if !decodable(&line[body.clone()]) {
        return Err(line);
    }
    let mut line = line;
    let len = unescape_in_place(&mut line, body);
    line.truncate(len);
    // Unescaped segments of a valid UTF-8 line and encoded chars: valid UTF-8 by construction.
    String::from_utf8(line).map_err(|e| e.into_bytes())
}

/// The byte range of the text field's string body (inside the quotes), if the line is valid JSON,
/// an object, and its first `key` field is a string.
fn locate(line: &[u8], key: &str) -> Option<Range<usize>> {
    let s = std::str::from_utf8(line).ok()?;
    let mut de = serde_json::Deserializer::from_str(s);
    let raw = RawText { key }.deserialize(&mut de).ok()??;
    de.end().ok()?;
    let raw = raw.get().as_bytes();
    let start = raw.as_ptr() as usize - s.as_ptr() as usize;
    if raw.len() < 2 || raw[0] != b'"' || raw[raw.len() - 1] != b'"' {
        return None;
    }
    Some(start + 1..start + raw.len() - 1)
}

/// Whether every escape in a JSON string body is one this module decodes (all but lone
/// surrogates) and no raw control character is present (serde_json refuses those anyway).
fn decodable(body: &[u8]) -> bool {
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', &body[i..]) {
        let at = i + k;
        match escape(body, at) {
            Some((_, next)) => i = next,
            None => return false,
        }
    }
    !body.iter().any(|&b| b < 0x20)
}

/// The char of the escape at `body[at]` (a backslash) and where the text after it starts.
pub(super) fn escape(body: &[u8], at: usize) -> Option<(char, usize)> {
    let c = match *body.get(at + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode(body, at),
        _ => return None,
    };
    Some((c, at + 2))
}

/// A `\uXXXX` escape at `body[at]`, or a surrogate pair `\uD8XX\uDCXX`.
fn unicode(body: &[u8], at: usize) -> Option<(char, usize)> {
    let unit = |i: usize| -> Option<u32> {
        let hex = std::str::from_utf8(body.get(i..i + 4)?).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    };
    let first = unit(at + 2)?;
    match first {
        0xD800..=0xDBFF => {
            if body.get(at + 6..at + 8)? != b"\\u" {
                return None;
            }
            let second = unit(at + 8)?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return None;
            }
            let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            Some((char::from_u32(c)?, at + 12))
        }
        0xDC00..=0xDFFF => None,
        _ => Some((char::from_u32(first)?, at + 6)),
    }
}

/// Unescapes the (checked) string body at `body` of `buf` to the start of `buf`; returns its
/// length. Every escape is at least as long as what it stands for, so writing never overtakes
/// reading.
fn unescape_in_place(buf: &mut [u8], body: Range<usize>) -> usize {
    let (mut r, mut w) = (body.start, 0);
    while r < body.end {
        let seg_end = memchr::memchr(b'\\', &buf[r..body.end]).map_or(body.end, |k| r + k);
        buf.copy_within(r..seg_end, w);
        w += seg_end - r;
        if seg_end == body.end {
            break;
        }
        let (c, next) = escape(&buf[..body.end], seg_end).expect("checked by decodable");
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        buf[w..w + bytes.len()].copy_from_slice(bytes);
        w += bytes.len();
        r = next;
    }
    w
}

/// Finds the first `key` field's raw value, as the ordinary path's visitor finds its value.
struct RawText<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for RawText<'_> {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawText<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if found.is_none() && k == self.key {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::jsonl::parse_line;
    use proptest::prelude::*;

    /// Both paths on `line`: in place when it decodes, the ordinary path otherwise.
    fn check(line: &str) {
        let want = parse_line(line.as_bytes(), &["text".to_string()]).ok();
        match take_text(line.as_bytes().to_vec(), "text") {
            Ok(got) => assert_eq!(Some(got), want, "{line:?}"),
            Err(back) => assert_eq!(back, line.as_bytes(), "{line:?}: not given back whole"),
        }
    }

    #[test]
    fn decodes_what_the_ordinary_path_decodes() {
        for line in [
            r#"{"text": "plain"}"#,
            r#"{"id": 1, "text": "a\nb\t\"c\"\\ \/ \b\f\r", "x": [1, {"text": 2}]}"#,
            r#"{"text": "\u00e9\u4e2d\ud83d\ude00 é中😀", "text": "second"}"#,
            r#"{"text": ""}"#,
            r#"{"text": "\\"}"#,
            r#"{"text": "lone \ud800 surrogate"}"#,
            r#"{"text": "lone \udc00 low"}"#,
            r#"{"text": "bad \x escape"}"#,
            r#"{"text": 5}"#,
            r#"{"txt": "no key"}"#,
            r#"{"text": "unterminated}"#,
            r#"{"text": "ok"} trailing"#,
            r#"["text"]"#,
        ] {
            check(line);
        }
        assert!(take_text(br#"{"text": "\u00e9"}"#.to_vec(), "text").is_ok());
        assert!(take_text(br#"{"text": 5}"#.to_vec(), "text").is_err());
    }

    proptest! {
        /// Any string serde_json writes (with every kind of escape) comes back the same.
        #[test]
        fn round_trips_any_string(text in any::<String>(), before in "[a-z]{0,3}", ascii in "[\\x00-\\x7f]{0,40}") {
            let doc = serde_json::json!({ "id": before, "text": format!("{text}{ascii}") });
            check(&doc.to_string());
            prop_assert!(take_text(doc.to_string().into_bytes(), "text").is_ok());
            // A \u escape for every non-ASCII char, as ensure_ascii writers do.
            let escaped: String = doc.to_string().chars().map(|c| match c as u32 {
                0..=0x7f => c.to_string(),
                _ => c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect(),
            }).collect();
            check(&escaped);
        }
    }
}
