//! Flags and resolution steps that more than one subcommand shares.

use anyhow::{bail, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use std::path::PathBuf;
use utk::choice::Choice;
use utk::input::TextOptions;
use utk::setting::{Setting, SettingError};
use utk::tokenize::{Backend, EncoderOptions};

/// The parser of a flag whose values are a library [`Choice`]: `--help` lists the names.
pub fn choice<T: Choice + Clone>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(|c| PossibleValue::new(c.name())))
        .map(|name| T::from_name(&name).expect("clap accepts only the listed names"))
}

/// How text is read and turned into ids: shared by `augment` and `tokenize`.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// JSON field holding the document text.
    #[arg(long, default_value = "text")]
    pub text_key: String,

    /// Skip malformed lines, counting them (first examples kept in the manifest) instead of failing.
    #[arg(long)]
    pub skip_bad_lines: bool,

    /// End-of-document token appended to every document (default: the first special token of
    /// <|endoftext|> <|end_of_text|> <|end▁of▁sentence|> <｜end▁of▁sentence｜> </s> <eos> <|eos|>
    /// [SEP], else the special `eos_token` of tokenizer_config.json beside the tokenizer).
    #[arg(long, value_name = "TOKEN", conflicts_with = "eod_id")]
    pub eod_token: Option<String>,

    /// End-of-document token id.
    #[arg(long, value_name = "ID")]
    pub eod_id: Option<u32>,

    /// Let the tokenizer's post-processor add its special tokens (e.g. BOS) to every document.
    #[arg(long)]
    pub add_special_tokens: bool,

    /// Let text that spells a special token (e.g. <|endoftext|>) become that token. Unsafe for
    /// scraped data: by default such text is ordinary text.
    #[arg(long)]
    pub parse_special: bool,

    /// Which implementation computes token ids: auto (the fast encoder when it supports the
    /// tokenizer file, else the tokenizers crate), tokenizers, or fast (an error if unsupported).
    /// All give the same ids; the summary and manifest say which ran.
    #[arg(long, value_parser = choice::<Backend>(), default_value = "auto", value_name = "BACKEND")]
    pub tokenizer_backend: Backend,

    /// Where the fast encoder keeps the tables it reads from a tokenizer.json (found again by the
    /// file's content), or `off`. Default: $UTK_TOKENIZER_CACHE, else
    /// $XDG_CACHE_HOME/utk/tokenizers, else ~/.cache/utk/tokenizers.
    #[arg(long, value_name = "DIR")]
    pub tokenizer_cache: Option<PathBuf>,
}

impl EncodeArgs {
    /// How text documents are read.
    pub fn text(&self) -> TextOptions {
        TextOptions {
            text_key: self.text_key.clone(),
            skip_bad_lines: self.skip_bad_lines,
        }
    }

    pub fn options(&self) -> EncoderOptions {
        EncoderOptions {
            eod_token: self.eod_token.clone(),
            eod_id: self.eod_id,
            add_special_tokens: self.add_special_tokens,
            parse_special: self.parse_special,
            backend: self.tokenizer_backend,
            cache: tokenizer_cache(self.tokenizer_cache.clone()),
        }
    }
}

/// The tokenizer cache directory: `--tokenizer-cache`, else `$UTK_TOKENIZER_CACHE`, else the
/// user's cache directory; `off` (or an empty value) for none.
pub fn tokenizer_cache(given: Option<PathBuf>) -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).map(PathBuf::from);
    let dir = given.or_else(|| env("UTK_TOKENIZER_CACHE")).or_else(|| {
        let base = env("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|home| home.join(".cache")))?;
        Some(base.join("utk").join("tokenizers"))
    })?;
    (!dir.as_os_str().is_empty() && dir.as_os_str() != "off").then_some(dir)
}

/// `--threads`: at least 1; all cores when not given.
pub fn threads(given: Option<usize>) -> Result<usize> {
    match given {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The flag that sets `setting`.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Output => "--output",
        Setting::Force => "--force",
        Setting::TextKey => "--text-key",
        Setting::SkipBadLines => "--skip-bad-lines",
        Setting::InputFormat => "--input-format",
        Setting::Tokenizer => "--tokenizer",
        Setting::TokenizerBackend => "--tokenizer-backend",
        Setting::EodToken => "--eod-token",
        Setting::EodId => "--eod-id",
        Setting::AddSpecialTokens => "--add-special-tokens",
        Setting::ParseSpecial => "--parse-special",
        Setting::SpecialToken => "--special-token",
        Setting::SpecialBase => "--special-base",
        Setting::SplitProb => "--split-prob",
        Setting::MinChunkTokens => "--min-chunk-tokens",
        Setting::ChunkTokens => "--chunk-tokens",
        Setting::LabelLen => "--label-len",
        Setting::Method => "--method",
        Setting::Order => "--order",
        Setting::DocBoundaries => "--doc-boundaries",
        Setting::UpsampleLong => "--upsample-long",
        Setting::UpsampleSourceKey => "--upsample-source-key",
    }
}

/// An error chain as one line (`outer: inner: …`), each setting the library names rendered as
/// the flag that sets it.
pub fn render_error(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| match e.downcast_ref::<SettingError>() {
            Some(s) => s.render(|x| flag(x).to_string()),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}
