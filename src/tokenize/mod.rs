//! Stage 2: tokenize.
//!
//! [`Encoder`] wraps a Hugging Face `tokenizer.json` loaded with the `tokenizers` crate, with the
//! settings a data tool needs and a model's file may get wrong for it: padding and truncation off,
//! no post-processor specials (BOS/CLS) unless asked, and text that spells a special token encoded
//! as ordinary text (`encode_special_tokens`), so a scraped page cannot inject a document boundary.
//! Every document gets the end-of-document (EOD) token appended. [`special`] resolves the ids of
//! the tokens UtK inserts.

pub mod special;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

pub use special::SpecialTokens;

/// Special tokens tried, in order, when no EOD is given: the document separators that base-model
/// pretraining uses for the common tokenizer families. `tokenizer_config.json`'s `eos_token` is
/// deliberately not used: chat models name the end of a turn there (Qwen: `<|im_end|>`).
pub const EOD_CANDIDATES: &[&str] = &[
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|end▁of▁sentence|>",
    "</s>",
    "<eos>",
    "<|eos|>",
    "[SEP]",
];

/// How the tokenizer is used.
#[derive(Clone, Debug, Default)]
pub struct EncoderOptions {
    /// A token (by its text) to append after every document.
    pub eod_token: Option<String>,
    /// An id to append after every document.
    pub eod_id: Option<u32>,
    /// Let the tokenizer's post-processor add its specials (e.g. BOS) to every document.
    pub add_special_tokens: bool,
    /// Let text that spells a special token produce that token (unsafe for scraped data).
    pub parse_special: bool,
}

/// The EOD chosen for a run and why, for the summary and manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EodChoice {
    pub id: u32,
    pub token: Option<String>,
    pub rule: String,
}

/// A loaded tokenizer plus the choices made about it.
pub struct Encoder {
    tokenizer: Tokenizer,
    path: PathBuf,
    add_special_tokens: bool,
    max_known_id: u32,
    pub eod: EodChoice,
}

impl Encoder {
    /// Loads `path` and resolves the EOD token.
    pub fn load(path: &Path, opts: &EncoderOptions) -> Result<Encoder> {
        if !path.is_file() {
            bail!(
                "--tokenizer {}: no such file (give the model's tokenizer.json)",
                path.display()
            );
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
            anyhow!(
                "--tokenizer {}: not a tokenizer.json this version can read: {e}",
                path.display()
            )
        })?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| {
            anyhow!(
                "--tokenizer {}: cannot turn truncation off: {e}",
                path.display()
            )
        })?;
        tokenizer.set_encode_special_tokens(!opts.parse_special);
        let max_known_id = tokenizer
            .get_vocab(true)
            .values()
            .copied()
            .chain(tokenizer.get_added_tokens_decoder().keys().copied())
            .max()
            .with_context(|| format!("--tokenizer {}: the vocabulary is empty", path.display()))?;
        let mut enc = Encoder {
            tokenizer,
            path: path.to_path_buf(),
            add_special_tokens: opts.add_special_tokens,
            max_known_id,
            eod: EodChoice {
                id: 0,
                token: None,
                rule: String::new(),
            },
        };
        enc.eod = enc.resolve_eod(opts)?;
        Ok(enc)
    }

    fn resolve_eod(&self, opts: &EncoderOptions) -> Result<EodChoice> {
        let path = self.path.display();
        if let Some(id) = opts.eod_id {
            if id <= self.max_known_id && !self.is_special(id) {
                bail!(
                    "--eod-id {id} is the ordinary token {:?}: text can produce it, so it cannot mark \
                     document ends; choose a token the tokenizer marks special, or an id above {}",
                    self.tokenizer.id_to_token(id).unwrap_or_default(),
                    self.max_known_id
                );
            }
            return Ok(EodChoice {
                id,
                token: self.tokenizer.id_to_token(id),
                rule: "--eod-id".into(),
            });
        }
        if let Some(tok) = &opts.eod_token {
            let id = self
                .tokenizer
                .token_to_id(tok)
                .with_context(|| format!("--eod-token {tok:?} is not a token of {path}"))?;
            if !self.is_special(id) {
                bail!("--eod-token {tok:?} (id {id}) is not marked special in {path}: text can produce it, so it cannot mark document ends");
            }
            return Ok(EodChoice {
                id,
                token: Some(tok.clone()),
                rule: "--eod-token".into(),
            });
        }
        for cand in EOD_CANDIDATES {
            if let Some(id) = self.tokenizer.token_to_id(cand) {
                if self.is_special(id) {
                    return Ok(EodChoice {
                        id,
                        token: Some(cand.to_string()),
                        rule: format!(
                            "first special token of {} found in the tokenizer",
                            EOD_CANDIDATES.join(" ")
                        ),
                    });
                }
            }
        }
        bail!(
            "{path} has no end-of-document token (none of {} is a special token in it): \
             name one with --eod-token TOKEN or --eod-id ID",
            EOD_CANDIDATES.join(" ")
        )
    }

    /// True when `id` is an added token marked special: tokenizing text never produces it.
    pub fn is_special(&self, id: u32) -> bool {
        self.tokenizer
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    /// The highest id the tokenizer knows, added tokens included.
    pub fn max_known_id(&self) -> u32 {
        self.max_known_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The ids of one document, EOD appended.
    pub fn encode_doc(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode_fast(text, self.add_special_tokens)
            .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        ids.extend_from_slice(enc.get_ids());
        ids.push(self.eod.id);
        Ok(ids)
    }

    /// The ids of a short piece of ordinary text (a chunk label): no BOS, EOS or other specials.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }
}

/// The sha256 of a file, hex-encoded (recorded in the manifest).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}
