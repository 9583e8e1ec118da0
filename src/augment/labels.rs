//! Chunk labels: random strings tokenized as ordinary text, unique within a window as token
//! sequences (a lower-casing tokenizer maps `aB3x` and `ab3x` to the same ids).

use crate::setting::{Setting, SettingError};
use crate::tokenize::Encoder;
use anyhow::Result;
use rand::Rng;
use std::collections::HashSet;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const MAX_ATTEMPTS: usize = 1000;

/// Draws labels for one window at a time.
pub struct LabelMaker<'a> {
    encoder: &'a Encoder,
    len: usize,
    used: HashSet<Vec<u32>>,
    text: String,
}

impl<'a> LabelMaker<'a> {
    pub fn new(encoder: &'a Encoder, len: usize) -> Self {
        LabelMaker {
            encoder,
            len,
            used: HashSet::new(),
            text: String::with_capacity(len),
        }
    }

    /// Forgets the labels of the previous window.
    pub fn reset(&mut self) {
        self.used.clear();
    }

    /// A label not used yet in this window.
    pub fn draw(&mut self, rng: &mut impl Rng) -> Result<Vec<u32>> {
        for _ in 0..MAX_ATTEMPTS {
            self.text.clear();
            for _ in 0..self.len {
                self.text
                    .push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
            }
            let ids = self.encoder.encode_plain(&self.text)?;
            if !ids.is_empty() && self.used.insert(ids.clone()) {
                return Ok(ids);
            }
        }
        Err(SettingError::new()
            .text(format!(
                "could not draw a chunk label unused in its window after {MAX_ATTEMPTS} \
                 attempts: raise "
            ))
            .setting(Setting::LabelLen)
            .text(format!(" (now {})", self.len))
            .into())
    }

    /// Returns a label drawn but not used, so it may be drawn again.
    pub fn release(&mut self, ids: &[u32]) {
        self.used.remove(ids);
    }
}
