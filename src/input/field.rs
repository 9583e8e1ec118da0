//! A second field read from each JSONL line besides the text: the document's source for
//! `--upsample-long` (`--upsample-source-key`, see [`crate::upsample`]). The key is a path of
//! field names, written as the text key is ([`super::key`]).
//!
//! The value becomes the source's name: a string as it is, a number or boolean by its JSON text
//! as written in the line (`7`, `1.50`, `true`). A missing field or `null` (also a missing or
//! `null` object on the way) is no value: the caller falls back to the input file. An object or
//! array as the value, or a non-object on the way, is a bad line (the caller names file and line).

use super::jsonl::BadLine;
use super::key::key_name;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The value of the field at `path` in the JSON object `line` (valid UTF-8 JSON: the text
/// parse has accepted it), or why the line cannot give one.
pub fn field_value(line: &[u8], path: &[String]) -> Result<Option<String>, BadLine> {
    let malformed = |e: serde_json::Error| BadLine::new(format!("malformed JSON: {e}"));
    let mut json = std::str::from_utf8(line)
        .map_err(|e| BadLine::new(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    let mut owned;
    for (depth, name) in path.iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(json);
        let raw = Field { name }.deserialize(&mut de).map_err(malformed)?;
        let Some(raw) = raw.filter(|r| r.get() != "null") else {
            return Ok(None);
        };
        let key = key_name(&path[..=depth]);
        let text = raw.get();
        let last = depth + 1 == path.len();
        match text.as_bytes()[0] {
            b'{' if !last => {
                owned = text.to_string();
                json = &owned;
            }
            b'"' if last => return serde_json::from_str(text).map(Some).map_err(malformed),
            b'{' | b'[' if last => {
                let kind = if text.starts_with('{') {
                    "an object"
                } else {
                    "an array"
                };
                return Err(BadLine::new(format!(
                    "source field \"{key}\" is {kind}, not a string, number or boolean"
                )));
            }
            _ if last => return Ok(Some(text.to_string())),
            _ => {
                return Err(BadLine::new(format!(
                    "source field path: \"{key}\" is not an object"
                )))
            }
        }
    }
    unreachable!("a key path has at least one name")
}

/// Looks for one field of an object; its value as written, or `None` when it is absent.
struct Field<'k> {
    name: &'k str,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = Option<Box<RawValue>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = Option<Box<RawValue>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && k == self.name {
                found = Some(map.next_value::<Box<RawValue>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::field_value;
    use crate::input::key::key_path;

    fn get(line: &str, key: &str) -> Result<Option<String>, String> {
        field_value(line.as_bytes(), &key_path(key).unwrap()).map_err(|e| e.reason)
    }

    #[test]
    fn strings_numbers_and_booleans_name_a_source() {
        let line =
            r#"{"text":"x","src":"w\u00e9b","n":1.50,"b":true,"z":null,"m":{"s":"deep","k":{}}}"#;
        assert_eq!(get(line, "src").unwrap().as_deref(), Some("wéb"));
        assert_eq!(get(line, "n").unwrap().as_deref(), Some("1.50"));
        assert_eq!(get(line, "b").unwrap().as_deref(), Some("true"));
        assert_eq!(get(line, "m.s").unwrap().as_deref(), Some("deep"));
        for missing in ["z", "nope", "m.nope", "z.a", "nope.a"] {
            assert_eq!(get(line, missing).unwrap(), None, "{missing}");
        }
        assert!(get(line, "m").unwrap_err().contains("\"m\" is an object"));
        assert!(get(line, "m.k")
            .unwrap_err()
            .contains("\"m.k\" is an object"));
        assert!(get(r#"{"a":[1]}"#, "a").unwrap_err().contains("an array"));
        assert!(get(line, "src.a")
            .unwrap_err()
            .contains("\"src\" is not an object"));
    }
}
