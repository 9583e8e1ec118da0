//! A model vocabulary, token text → id, kept as one string of all the texts and an index into it.
//!
//! A vocabulary of 150K–260K tokens held as a hash map of `String` keys costs one allocation
//! per token, and its start-up is mostly those allocations and their page faults: about two
//! thirds of reading a cached tokenizer (`fast::cache`) went into building it. Here the texts
//! are appended to one string and a hash table holds each token's span of it and its id, so
//! building the map is a copy and one insert per token, and a look-up reads the table's control
//! bytes, one 12-byte slot and the text (as a map of `String` keys reads its slot and the
//! string). A text inserted again takes the new id, as a map that is assigned twice does (and as
//! `serde_json` reads a JSON object with a key listed twice). Entries are listed in the table's
//! order, which depends only on what was inserted.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::hash::BuildHasher;

/// Token texts and their ids.
#[derive(Clone, Default)]
pub struct TokenMap {
    /// The texts of all entries, one after the other.
    text: String,
    /// Each entry: its text's span of `text`, and its id.
    index: HashTable<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    start: u32,
    end: u32,
    id: u32,
}

fn hash(token: &str) -> u64 {
    FxBuildHasher.hash_one(token)
}

impl TokenMap {
    /// An empty map with room for `n` entries of `text_len` bytes of text in all.
    pub fn with_capacity(n: usize, text_len: usize) -> TokenMap {
        TokenMap {
            text: String::with_capacity(text_len),
            index: HashTable::with_capacity(n),
        }
    }

    /// Sets the id of `token`; returns its previous id if it had one. Panics past 4 GiB of text
    /// (no vocabulary comes near it).
    pub fn insert(&mut self, token: &str, id: u32) -> Option<u32> {
        let start = self.text.len();
        self.text.push_str(token);
        let old = self.index_span(start, self.text.len(), id);
        if old.is_some() {
            self.text.truncate(start);
        }
        old
    }

    /// Indexes `self.text[start..end]` with `id`; if that text already has an entry, sets its id
    /// instead and returns the previous one.
    fn index_span(&mut self, start: usize, end: usize, id: u32) -> Option<u32> {
        let TokenMap { text, index } = self;
        let token = &text[start..end];
        let h = hash(token);
        let span = |e: &Entry| &text[e.start as usize..e.end as usize];
        if let Some(e) = index.find_mut(h, |e| span(e) == token) {
            return Some(std::mem::replace(&mut e.id, id));
        }
        let too_long = "vocabulary text under 4 GiB";
        let entry = Entry {
            start: u32::try_from(start).expect(too_long),
            end: u32::try_from(end).expect(too_long),
            id,
        };
        index.insert_unique(h, entry, |e| hash(span(e)));
        None
    }

    /// The id of `token`.
    #[inline]
    pub fn get(&self, token: &str) -> Option<u32> {
        let same = |e: &Entry| {
            self.text.as_bytes().get(e.start as usize..e.end as usize) == Some(token.as_bytes())
        };
        self.index.find(hash(token), same).map(|e| e.id)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.get(token).is_some()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The entries, in the table's order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u32)> + '_ {
        self.index
            .iter()
            .map(|e| (&self.text[e.start as usize..e.end as usize], e.id))
    }

    /// The ids, in the order of [`Self::iter`].
    pub fn ids(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.index.iter().map(|e| e.id)
    }

    /// The length in bytes of the longest text.
    pub fn longest(&self) -> usize {
        self.index
            .iter()
            .map(|e| (e.end - e.start) as usize)
            .max()
            .unwrap_or(0)
    }

    /// The bytes of all texts together.
    pub fn text_len(&self) -> usize {
        self.index.iter().map(|e| (e.end - e.start) as usize).sum()
    }
}

impl<'a> FromIterator<(&'a str, u32)> for TokenMap {
    fn from_iter<I: IntoIterator<Item = (&'a str, u32)>>(iter: I) -> TokenMap {
        let mut map = TokenMap::default();
        for (token, id) in iter {
            map.insert(token, id);
        }
        map
    }
}

/// Two maps are equal when they hold the same texts with the same ids, in any order.
impl PartialEq for TokenMap {
    fn eq(&self, other: &TokenMap) -> bool {
        self.len() == other.len() && self.iter().all(|(t, id)| other.get(t) == Some(id))
    }
}

impl fmt::Debug for TokenMap {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON object of token → id, read without an allocation per token: each key is appended to
/// the map's text as it is read, and the table is built once the object's size is known (growing
/// it 150K entries at a time would rehash it a dozen times). A key listed again leaves its text
/// unused in the string.
impl<'de> Deserialize<'de> for TokenMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = TokenMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of token to id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<TokenMap, A::Error> {
                let mut text = String::new();
                let mut entries = Vec::new();
                while access.next_key_seed(Key(&mut text))?.is_some() {
                    entries.push((text.len(), access.next_value::<u32>()?));
                }
                let mut map = TokenMap {
                    text,
                    index: HashTable::with_capacity(entries.len()),
                };
                let mut start = 0;
                for (end, id) in entries {
                    map.index_span(start, end, id);
                    start = end;
                }
                Ok(map)
            }
        }
        d.deserialize_map(Map)
    }
}

/// Appends one key to a string.
struct Key<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a token text")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn json_with_a_key_listed_twice_keeps_the_last_id_as_serde_does() {
        let json = r#"{"a": 0, "b\u00e9": 1, "a": 7, "": 3}"#;
        let map: TokenMap = serde_json::from_str(json).unwrap();
        let std: HashMap<String, u32> = serde_json::from_str(json).unwrap();
        assert_eq!(map.len(), std.len());
        for (t, id) in &std {
            assert_eq!(map.get(t), Some(*id), "{t:?}");
        }
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort();
        assert_eq!(entries, [("", 3), ("a", 7), ("bé", 1)]);
        assert_eq!(
            map.text_len(),
            4,
            "the texts of the entries, not the key read twice"
        );
        assert_eq!(map.get("c"), None);
        assert!(serde_json::from_str::<TokenMap>(r#"{"a": -1}"#).is_err());
    }

    proptest! {
        /// The map answers as a `HashMap` given the same inserts does.
        #[test]
        fn answers_as_a_hash_map(
            inserts in prop::collection::vec(("[ab\u{e9}\u{4e2d}]{0,4}", 0u32..50), 0..60),
            probes in prop::collection::vec("[ab\u{e9}\u{4e2d}]{0,4}", 0..20),
        ) {
            let mut map = TokenMap::default();
            let mut std = HashMap::new();
            for (t, id) in &inserts {
                prop_assert_eq!(map.insert(t, *id), std.insert(t.clone(), *id));
            }
            prop_assert_eq!(map.len(), std.len());
            for (t, id) in map.iter() {
                prop_assert_eq!(std.get(t), Some(&id));
            }
            for t in inserts.iter().map(|(t, _)| t).chain(&probes) {
                prop_assert_eq!(map.get(t), std.get(t).copied());
            }
        }
    }
}
