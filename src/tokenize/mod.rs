//! Stage 2: tokenize.
//!
//! [`Encoder`] wraps a Hugging Face `tokenizer.json` loaded with the `tokenizers` crate, with the
//! settings a data tool needs and a model's file may get wrong for it: padding and truncation off,
//! no post-processor specials (BOS/CLS) unless asked, and text that spells a special token encoded
//! as ordinary text (`encode_special_tokens`), so a scraped page cannot inject a document boundary.
//! Every document gets the end-of-document (EOD) token appended. [`special`] resolves the ids of
//! the tokens UtK inserts.
//!
//! Two backends compute the ids: the `tokenizers` crate itself, and [`fast`], an encoder that
//! gives exactly the crate's ids many times faster for byte-level BPE (Qwen2/3, Llama 3, GPT-2,
//! cl100k, o200k, DeepSeek's sequence of splits, Split patterns of a proven grammar; no, NFC or
//! NFKC normalizer) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma).
//! [`batch`] encodes a batch of documents in parallel for every run. The fast one is taken only when it recognises the file and the options;
//! [`Encoder::backend`] says which one runs, and the manifest records it. On the fast path the
//! crate's tokenizer is not loaded at all (the token table comes from [`vocab`]): that halves the
//! start-up of a run, which is most of the time of a run on token shards.

pub mod batch;
pub mod fast;
pub mod long;
pub mod special;
pub mod token_map;
pub mod vocab;

use crate::setting::{Setting, SettingError};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokenizers::Tokenizer;
use vocab::Vocab;

pub use fast::FastEncoder;

pub use special::SpecialTokens;

/// Special tokens tried, in order, when no EOD is given: the document separators that base-model
/// pretraining uses for the common tokenizer families (DeepSeek spells its own with full-width
/// bars). `tokenizer_config.json`'s `eos_token` comes only after all of them
/// ([`special::eod_from_config`]): chat models name the end of a turn there (Qwen: `<|im_end|>`).
pub const EOD_CANDIDATES: &[&str] = &[
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|end▁of▁sentence|>",
    "<｜end▁of▁sentence｜>",
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
    /// Which implementation computes the ids.
    pub backend: Backend,
    /// A directory for the fast encoder's tables ([`fast::cache`]); none: built from the file
    /// every time.
    pub cache: Option<PathBuf>,
}

/// The implementation that turns text into ids (`--tokenizer-backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The fast encoder when it supports the tokenizer file and options, else the crate.
    #[default]
    Auto,
    /// Always the Hugging Face `tokenizers` crate.
    Tokenizers,
    /// The fast encoder; an error if it does not support the tokenizer file or options.
    Fast,
}

crate::impl_choice!(Backend {
    Auto => "auto",
    Tokenizers => "tokenizers",
    Fast => "fast",
});

/// The EOD chosen for a run and why, for the summary and manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EodChoice {
    pub id: u32,
    pub token: Option<String>,
    pub rule: String,
}

/// A loaded tokenizer plus the choices made about it.
pub struct Encoder {
    backing: Backing,
    /// What the fast encoder recognised, or why it is not used.
    backend_detail: String,
    /// Of the file's bytes as loaded, hex-encoded.
    sha256: String,
    path: PathBuf,
    add_special_tokens: bool,
    parse_special: bool,
    max_known_id: u32,
    /// What the cache did, for the summary.
    cache_note: Option<String>,
    pub eod: EodChoice,
}

/// What computes the ids and answers questions about tokens.
enum Backing {
    /// The fast encoder with the token table read from the file; the crate is not loaded.
    Fast {
        fast: Box<FastEncoder>,
        vocab: Vocab,
    },
    /// The `tokenizers` crate for everything.
    Crate(Box<Tokenizer>),
}

impl Encoder {
    /// Loads `path` and resolves the EOD token. On the fast path only the file is read (the
    /// crate's tokenizer, half a second to load for a large vocabulary, is not needed).
    pub fn load(path: &Path, opts: &EncoderOptions) -> Result<Encoder> {
        if !path.is_file() {
            let what = format!(
                "{}: no such file (give the model's tokenizer.json)",
                path.display()
            );
            return Err(SettingError::about(Setting::Tokenizer, what).into());
        }
        // Mapped (a file given to a run must not change during it, as for inputs): tens of MB
        // read into fresh memory cost a page fault every 4 KB.
        let bytes = crate::mapped::map_file(path).map_err(|e| {
            let what = format!("{}: cannot read it ({})", path.display(), e.root_cause());
            SettingError::about(Setting::Tokenizer, what)
        })?;
        // Checked as UTF-8 only where its text is read, and once: a cache entry found for
        // exactly these bytes (same SHA-256) was made from them once they had passed the same
        // check, and the crate, when the fast encoder refuses the file, reads the checked text.
        let checked = std::cell::OnceCell::new();
        let text = || match checked.get() {
            Some(&text) => Ok(text),
            None => utf8_text(&bytes, path).map(|text| *checked.get_or_init(|| text)),
        };
        let (fast, sha256, cache_note) = fast_encoder(&bytes, &text, opts)?;
        let fast = fast.and_then(|(f, v)| {
            if opts.add_special_tokens && f.post_processor_adds_tokens() {
                Err("special tokens added by a post-processor that adds tokens".into())
            } else {
                Ok((f, v))
            }
        });
        let (backing, backend_detail, max_known_id) = backing(path, &text, opts, fast)?;
        let mut enc = Encoder {
            backing,
            backend_detail,
            sha256,
            path: path.to_path_buf(),
            add_special_tokens: opts.add_special_tokens,
            parse_special: opts.parse_special,
            max_known_id,
            cache_note,
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
                let what = format!(
                    "{id} is the ordinary token {:?}: text can produce it, so it cannot mark \
                     document ends; choose a token the tokenizer marks special, or an id above {}",
                    self.id_to_token(id).unwrap_or_default(),
                    self.max_known_id
                );
                return Err(SettingError::about(Setting::EodId, what).into());
            }
            return Ok(EodChoice {
                id,
                token: self.id_to_token(id),
                // Recorded as the command line spelled it: scripts read this value.
                rule: "--eod-id".into(),
            });
        }
        if let Some(tok) = &opts.eod_token {
            let id = self.token_to_id(tok).ok_or_else(|| {
                SettingError::about(
                    Setting::EodToken,
                    format!("{tok:?} is not a token of {path}"),
                )
            })?;
            if !self.is_special(id) {
                let what = format!("{tok:?} (id {id}) is not marked special in {path}: text can produce it, so it cannot mark document ends");
                return Err(SettingError::about(Setting::EodToken, what).into());
            }
            return Ok(EodChoice {
                id,
                token: Some(tok.clone()),
                rule: "--eod-token".into(),
            });
        }
        for cand in EOD_CANDIDATES {
            if let Some(id) = self.token_to_id(cand) {
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
        let why_not_config = match special::eod_from_config(self) {
            Ok(choice) => return Ok(choice),
            Err(why) => why,
        };
        Err(SettingError::new()
            .text(format!(
                "{path} has no end-of-document token (none of {} is a special token in it, and \
                 {why_not_config}): name one with ",
                EOD_CANDIDATES.join(" ")
            ))
            .setting(Setting::EodToken)
            .text(" TOKEN or ")
            .setting(Setting::EodId)
            .text(" ID")
            .into())
    }

    /// True when `id` is an added token marked special: tokenizing text never produces it.
    pub fn is_special(&self, id: u32) -> bool {
        match &self.backing {
            Backing::Fast { vocab, .. } => vocab.is_special(id),
            Backing::Crate(t) => t
                .get_added_tokens_decoder()
                .get(&id)
                .is_some_and(|t| t.special),
        }
    }

    /// The id of a token given by its text (an added token's, else the model's).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.backing {
            Backing::Fast { vocab, .. } => vocab.token_to_id(token),
            Backing::Crate(t) => t.token_to_id(token),
        }
    }

    /// The text of a token id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.backing {
            Backing::Fast { vocab, .. } => vocab.id_to_token(id),
            Backing::Crate(t) => t.id_to_token(id),
        }
    }

    /// The highest id the tokenizer knows, added tokens included.
    pub fn max_known_id(&self) -> u32 {
        self.max_known_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the post-processor's specials (BOS, …) are added to every document.
    pub fn add_special_tokens(&self) -> bool {
        self.add_special_tokens
    }

    /// Whether text spelling a special token produces that token.
    pub fn parse_special(&self) -> bool {
        self.parse_special
    }

    /// The sha256 of the tokenizer file as it was loaded (hex), recorded in manifests.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The implementation computing the ids: `"fast-bpe"` or `"tokenizers"`.
    pub fn backend(&self) -> &'static str {
        match self.backing {
            Backing::Fast { .. } => "fast-bpe",
            Backing::Crate(_) => "tokenizers",
        }
    }

    /// What the fast encoder recognised in the file, or why the crate is used.
    pub fn backend_detail(&self) -> &str {
        &self.backend_detail
    }

    /// Whether the fast encoder's tables came from the cache or were written to it, or why not
    /// (none when no cache was given or the crate runs).
    pub fn cache_note(&self) -> Option<&str> {
        self.cache_note.as_deref()
    }

    /// The ids of one document, EOD appended.
    pub fn encode_doc(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = match &self.backing {
            Backing::Fast { fast, .. } => fast.encode(text),
            Backing::Crate(t) => {
                let enc = t
                    .encode_fast(text, self.add_special_tokens)
                    .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
                let mut ids = Vec::with_capacity(enc.len() + 1);
                ids.extend_from_slice(enc.get_ids());
                ids
            }
        };
        // A post-processor template may end with the EOD itself (BERT's `[CLS] $A [SEP]` with
        // the EOD `[SEP]`): it then ends the document, and a second one would put an EOD inside
        // the document, which no reader of the output (nor `verify`) can tell from a boundary.
        if !(self.add_special_tokens && ids.last() == Some(&self.eod.id)) {
            ids.push(self.eod.id);
        }
        Ok(ids)
    }

    /// The ids of a short piece of ordinary text (a chunk label): no BOS, EOS or other specials.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        match &self.backing {
            Backing::Fast { fast, .. } => {
                let mut ids = Vec::new();
                fast.encode_into(text, &mut ids);
                Ok(ids)
            }
            Backing::Crate(t) => {
                let enc = t
                    .encode_fast(text, false)
                    .map_err(|e| anyhow!("tokenizer failed on {text:?}: {e}"))?;
                Ok(enc.get_ids().to_vec())
            }
        }
    }
}

/// What computes the ids: the fast encoder when it loaded (`fast`), else the crate (or an error
/// when the fast backend was required); with a description and the highest known id.
fn backing<'a>(
    path: &Path,
    json: &dyn Fn() -> Result<&'a str>,
    opts: &EncoderOptions,
    fast: std::result::Result<(FastEncoder, Vocab), String>,
) -> Result<(Backing, String, u32)> {
    Ok(match (fast, opts.backend) {
        (Ok((fast, vocab)), _) => {
            let detail = fast.description().to_string();
            let max = vocab.max_known_id();
            let backing = Backing::Fast {
                fast: Box::new(fast),
                vocab,
            };
            (backing, detail, max)
        }
        (Err(why), Backend::Fast) => {
            return Err(
                SettingError::about(Setting::Tokenizer, format!("{}: ", path.display()))
                    .setting(Setting::TokenizerBackend)
                    .text(format!(
                        " fast: the fast encoder does not support this tokenizer: {why} (use "
                    ))
                    .setting(Setting::TokenizerBackend)
                    .text(" auto or tokenizers)")
                    .into(),
            )
        }
        (Err(why), backend) => {
            let tokenizer = load_crate(path, json()?, opts.parse_special)?;
            let max = tokenizer
                .get_vocab(true)
                .values()
                .copied()
                .chain(tokenizer.get_added_tokens_decoder().keys().copied())
                .max()
                .ok_or_else(|| {
                    let what = format!("{}: the vocabulary is empty", path.display());
                    SettingError::about(Setting::Tokenizer, what)
                })?;
            let detail = if backend == Backend::Tokenizers {
                why
            } else {
                format!("fast encoder not used: {why}")
            };
            (Backing::Crate(Box::new(tokenizer)), detail, max)
        }
    })
}

/// The fast encoder for `json` (or why not), the file's SHA-256 and what the cache did. The
/// checksum of exactly the bytes loaded is computed on another thread meanwhile; a cache entry
/// is used only if it was made from a file with that checksum.
type FastLoad = (
    std::result::Result<(FastEncoder, Vocab), String>,
    String,
    Option<String>,
);

fn fast_encoder<'a>(
    bytes: &'a [u8],
    json: &dyn Fn() -> Result<&'a str>,
    opts: &EncoderOptions,
) -> Result<FastLoad> {
    let encode_special_tokens = !opts.parse_special;
    let cache = opts.cache.as_deref().map(fast::cache::Cache::new);
    std::thread::scope(|scope| {
        let sha256 = scope.spawn(|| sha256_hex(bytes));
        let sha256 = || {
            sha256
                .join()
                .map_err(|_| anyhow!("the sha256 thread panicked"))
        };
        if opts.backend == Backend::Tokenizers {
            let why = "the tokenizers backend was asked for".to_string();
            return Ok((Err(why), sha256()?, None));
        }
        let Some(cache) = cache else {
            let fast = FastEncoder::new(json()?, encode_special_tokens);
            return Ok((fast, sha256()?, None));
        };
        // Built from the entry while the checksum is computed; kept only if they match.
        let slot = cache.slot(bytes);
        let cached = slot.read().map(|entry| {
            let sha = entry.sha256.clone();
            (sha, FastEncoder::from_cache(entry, encode_special_tokens))
        });
        let sha256 = sha256()?;
        if let Some((_, Ok(fast))) = cached.filter(|(sha, _)| *sha == sha256) {
            let note = format!("tables read from the cache {}", slot.path.display());
            return Ok((Ok(fast), sha256, Some(note)));
        }
        let json = json()?;
        let built = FastEncoder::build(json, encode_special_tokens);
        let note = built
            .as_ref()
            .ok()
            .map(|b| match b.write_cache(&slot, json, &sha256) {
                Ok(0) => format!("tables written to the cache {}", slot.path.display()),
                Ok(n) => format!(
                    "tables written to the cache {} ({n} {} of older utk versions removed)",
                    slot.path.display(),
                    if n == 1 { "entry" } else { "entries" }
                ),
                Err(why) => format!("tables not cached: {why}"),
            });
        Ok((built.map(|b| (b.fast, b.vocab)), sha256, note))
    })
}

/// `bytes`, the file at `path`, as text, or an error that says where they are not UTF-8
/// (checked with SIMD: a large tokenizer.json is tens of MB of mostly non-ASCII text).
fn utf8_text<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let what = format!(
            "{}: not UTF-8 text (at byte {at}); give the model's tokenizer.json",
            path.display()
        );
        SettingError::about(Setting::Tokenizer, what).into()
    })
}

/// Loads `json` (the file at `path`) with the `tokenizers` crate, set up as utk uses it.
fn load_crate(path: &Path, json: &str, parse_special: bool) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_str(json).map_err(|e| {
        let what = format!(
            "{}: not a tokenizer.json this version can read: {e}",
            path.display()
        );
        SettingError::about(Setting::Tokenizer, what)
    })?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| {
        let what = format!("{}: cannot turn truncation off: {e}", path.display());
        SettingError::about(Setting::Tokenizer, what)
    })?;
    tokenizer.set_encode_special_tokens(!parse_special);
    Ok(tokenizer)
}

/// The sha256 of a file, hex-encoded (recorded in the manifest).
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}
