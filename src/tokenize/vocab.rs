//! The token table of a `tokenizer.json`, read from the file alone.
//!
//! The fast path needs the ids of the model's tokens and of the added tokens, which special
//! tokens are, and names for error messages. Loading the `tokenizers` crate's `Tokenizer` just for
//! that costs about half a second for a 150K vocabulary (most of a shard run's start-up), so
//! [`Vocab`] reads them from the file and applies the crate's rule for added-token ids
//! (`AddedVocabulary::add_tokens` in tokenizers 0.22): an added token whose text is already a
//! model token gets that token's id, any other gets the next id from the model's vocabulary size.
//! The fast path is taken only when every added token then gets exactly the id the file lists;
//! otherwise the caller loads the crate. `tests/it/fast_tokenizer.rs` compares the table with the
//! crate's on every fixture.

use super::token_map::TokenMap;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Why a file is left to the crate.
pub type Unsupported = String;

/// An added token as the file lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
    pub single_word: bool,
    pub lstrip: bool,
    pub rstrip: bool,
    pub normalized: bool,
}

/// Model vocabulary plus added tokens, with the crate's ids.
pub struct Vocab {
    /// Shared with an encoder that looks pre-tokens up whole (`ignore_merges`).
    model: Arc<TokenMap>,
    /// Sorted by id.
    added: Vec<AddedToken>,
    added_by_id: FxHashMap<u32, usize>,
    added_by_content: FxHashMap<String, u32>,
    max_known_id: u32,
}

impl Vocab {
    /// The table for a model vocabulary and the file's `added_tokens` (in file order), or why the
    /// crate would assign other ids than the file lists.
    pub fn new(model: TokenMap, added: Vec<AddedToken>) -> Result<Vocab, Unsupported> {
        // The crate numbers new added tokens from the model's vocabulary size (entries, not the
        // highest id), in file order, skipping texts the model or an earlier added token has.
        let mut next = model.len() as u32;
        let mut added_by_content: FxHashMap<String, u32> = FxHashMap::default();
        for t in &added {
            if t.content.is_empty() {
                return Err(format!("added token {} has empty text", t.id));
            }
            if added_by_content.contains_key(&t.content) {
                return Err(format!("added token {:?} is listed twice", t.content));
            }
            let id = match model.get(&t.content) {
                Some(id) => id,
                None => {
                    next += 1;
                    next - 1
                }
            };
            if id != t.id {
                return Err(format!(
                    "added token {:?} is listed with id {} but the tokenizers library gives it {id}",
                    t.content, t.id
                ));
            }
            added_by_content.insert(t.content.clone(), id);
        }
        let mut added = added;
        added.sort_by_key(|t| t.id);
        if let Some(w) = added.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(format!(
                "added tokens {:?} and {:?} share id {}",
                w[0].content, w[1].content, w[0].id
            ));
        }
        let added_by_id = added.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let max_known_id = model
            .ids()
            .chain(added.iter().map(|t| t.id))
            .max()
            .ok_or("the vocabulary is empty")?;
        // The fast path indexes tables by id; real vocabularies number their tokens densely.
        let tokens = model.len() + added.len();
        if max_known_id as usize > 4 * tokens + (1 << 20) {
            return Err(format!(
                "token ids go up to {max_known_id} for {tokens} tokens (too sparse for the fast \
                 path's tables)"
            ));
        }
        Ok(Vocab {
            model: Arc::new(model),
            added,
            added_by_id,
            added_by_content,
            max_known_id,
        })
    }

    /// The id of a token text: an added token's first, else the model's (as the crate looks up).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.added_by_content
            .get(token)
            .copied()
            .or_else(|| self.model.get(token))
    }

    /// The text of an id (for messages; a model token is found by a scan).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        if let Some(&i) = self.added_by_id.get(&id) {
            return Some(self.added[i].content.clone());
        }
        self.model
            .iter()
            .find(|&(_, v)| v == id)
            .map(|(k, _)| k.to_string())
    }

    /// True when `id` is an added token marked special.
    pub fn is_special(&self, id: u32) -> bool {
        self.added_by_id
            .get(&id)
            .is_some_and(|&i| self.added[i].special)
    }

    /// The highest id of the model or the added tokens.
    pub fn max_known_id(&self) -> u32 {
        self.max_known_id
    }

    /// The model's vocabulary.
    pub fn model(&self) -> &TokenMap {
        &self.model
    }

    /// The model's vocabulary, shared.
    pub fn shared_model(&self) -> Arc<TokenMap> {
        Arc::clone(&self.model)
    }

    /// The model's tokens indexed by id (`""` where no token has the id), or why not: two tokens
    /// share an id (then an id does not say which text it stands for).
    pub fn model_texts(&self) -> Result<Vec<&str>, Unsupported> {
        let mut text = vec![None; self.max_known_id as usize + 1];
        for (token, id) in self.model.iter() {
            if let Some(other) = text[id as usize].replace(token) {
                return Err(format!("tokens {other:?} and {token:?} share id {id}"));
            }
        }
        Ok(text.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The added tokens, by id.
    pub fn added(&self) -> &[AddedToken] {
        &self.added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: u32, content: &str, special: bool) -> AddedToken {
        AddedToken {
            id,
            content: content.into(),
            special,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: !special,
        }
    }

    fn model() -> TokenMap {
        [("a", 0), ("b", 1), ("ab", 5)].into_iter().collect()
    }

    #[test]
    fn added_ids_follow_the_crate_rule() {
        // Three model entries: new added tokens get 3, 4, …; one already in the model keeps its id.
        let v = Vocab::new(
            model(),
            vec![
                token(3, "<s>", true),
                token(5, "ab", false),
                token(4, "x", false),
            ],
        )
        .unwrap();
        assert_eq!(v.token_to_id("<s>"), Some(3));
        assert_eq!(v.token_to_id("ab"), Some(5));
        assert_eq!(v.id_to_token(4).as_deref(), Some("x"));
        assert_eq!(v.id_to_token(1).as_deref(), Some("b"));
        assert!(v.is_special(3) && !v.is_special(4) && !v.is_special(0));
        assert_eq!(v.max_known_id(), 5);
        assert_eq!(
            v.added().iter().map(|t| t.id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[test]
    fn other_ids_are_refused_with_the_reason() {
        let why = Vocab::new(model(), vec![token(100, "<s>", true)])
            .err()
            .unwrap();
        assert!(why.contains("gives it 3"), "{why}");
        let why = Vocab::new(model(), vec![token(3, "<s>", true), token(4, "<s>", true)])
            .err()
            .unwrap();
        assert!(why.contains("twice"), "{why}");
        assert!(Vocab::new(model(), vec![token(3, "", true)]).is_err());
        assert!(Vocab::new(TokenMap::default(), vec![]).is_err());
    }
}
