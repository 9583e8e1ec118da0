//! The text key (`--text-key`) as a path of field names: `meta.content` is the field `content`
//! of the object (JSONL) or struct (parquet) `meta`. A dot that belongs to a name is written
//! `\.` and a backslash `\\`: `--text-key 'meta\.v2.text'` is the field `text` of the field
//! `meta.v2`. Any other use of a backslash, and an empty name (`a..b`, a leading or trailing dot),
//! is refused, so every key means exactly one path.

use crate::setting::{Setting, SettingError};

/// Splits `key` into field names (at least one), or says why it is not a key.
pub fn key_path(key: &str) -> Result<Vec<String>, SettingError> {
    key_path_of(key, Setting::TextKey)
}

/// [`key_path`] for a key given by `setting` (the text key, or another field's key).
pub fn key_path_of(key: &str, setting: Setting) -> Result<Vec<String>, SettingError> {
    let bad = |why: &str| {
        SettingError::about(
            setting,
            format!(
                "{key:?} {why} (dots separate nested field names; write a dot inside a name \
                 as \\. and a backslash as \\\\)"
            ),
        )
    };
    let mut names = vec![String::new()];
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => names.push(String::new()),
            '\\' => match chars.next() {
                Some(e @ ('.' | '\\')) => names.last_mut().expect("one name").push(e),
                _ => return Err(bad("has a backslash that escapes neither . nor \\")),
            },
            c => names.last_mut().expect("one name").push(c),
        }
    }
    if names.iter().any(String::is_empty) {
        return Err(bad("has an empty field name"));
    }
    Ok(names)
}

/// The path written back as a key (the inverse of [`key_path`]), for messages.
pub fn key_name(path: &[String]) -> String {
    path.iter()
        .map(|n| n.replace('\\', "\\\\").replace('.', "\\."))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_unescaped_dots() {
        assert_eq!(key_path("text").unwrap(), ["text"]);
        assert_eq!(key_path("meta.content").unwrap(), ["meta", "content"]);
        assert_eq!(key_path(r"meta\.v2.text").unwrap(), ["meta.v2", "text"]);
        assert_eq!(key_path(r"a\\.b").unwrap(), [r"a\", "b"]);
        for bad in ["", ".", "a.", ".a", "a..b", r"a\b", "a\\"] {
            assert!(key_path(bad).is_err(), "{bad:?}");
        }
        for key in ["text", "meta.content", r"meta\.v2.text", r"a\\.b\\\."] {
            assert_eq!(key_name(&key_path(key).unwrap()), key);
        }
    }
}
