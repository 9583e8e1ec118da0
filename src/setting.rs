//! Errors that one setting of the run fixes, without the library knowing the command line.
//!
//! The library names the setting by a [`Setting`] value; the command layer, which alone knows
//! the flags, renders it (`--split-prob`) with [`SettingError::render`]. Anywhere else (a library
//! user's own program) the error prints the setting by its configuration name (`split_prob`).

use std::fmt;

/// A setting of a run that a user can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Output,
    Force,
    TextKey,
    SkipBadLines,
    InputFormat,
    Tokenizer,
    TokenizerBackend,
    EodToken,
    EodId,
    AddSpecialTokens,
    ParseSpecial,
    SpecialToken,
    SpecialBase,
    SplitProb,
    MinChunkTokens,
    ChunkTokens,
    LabelLen,
    Method,
    Order,
    DocBoundaries,
    UpsampleLong,
    UpsampleSourceKey,
}

impl Setting {
    /// The setting's name in the configuration and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Output => "output",
            Setting::Force => "force",
            Setting::TextKey => "text_key",
            Setting::SkipBadLines => "skip_bad_lines",
            Setting::InputFormat => "input_format",
            Setting::Tokenizer => "tokenizer",
            Setting::TokenizerBackend => "tokenizer_backend",
            Setting::EodToken => "eod_token",
            Setting::EodId => "eod_id",
            Setting::AddSpecialTokens => "add_special_tokens",
            Setting::ParseSpecial => "parse_special",
            Setting::SpecialToken => "special_token",
            Setting::SpecialBase => "special_base",
            Setting::SplitProb => "split_prob",
            Setting::MinChunkTokens => "min_chunk_tokens",
            Setting::ChunkTokens => "chunk_tokens",
            Setting::LabelLen => "label_len",
            Setting::Method => "method",
            Setting::Order => "order",
            Setting::DocBoundaries => "doc_boundaries",
            Setting::UpsampleLong => "upsample_long",
            Setting::UpsampleSourceKey => "upsample_source_key",
        }
    }
}

/// One piece of an error message: text, or a setting the command layer names its own way.
#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Setting(Setting),
}

/// An error whose message names the settings that fix it.
#[derive(Clone, Debug)]
pub struct SettingError {
    parts: Vec<Part>,
}

impl SettingError {
    /// `SETTING message`: the setting is what is wrong (`split_prob 1.5 must be between 0 and 1`).
    pub fn about(setting: Setting, message: impl Into<String>) -> Self {
        SettingError {
            parts: vec![
                Part::Setting(setting),
                Part::Text(format!(" {}", message.into())),
            ],
        }
    }

    /// An empty message, to build with [`SettingError::text`] and [`SettingError::setting`].
    pub fn new() -> Self {
        SettingError { parts: Vec::new() }
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    pub fn setting(mut self, setting: Setting) -> Self {
        self.parts.push(Part::Setting(setting));
        self
    }

    /// The message with each setting named by `name`.
    pub fn render(&self, name: impl Fn(Setting) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Setting(s) => name(*s),
            })
            .collect()
    }
}

impl Default for SettingError {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.render(|s| s.name().to_string()))
    }
}

impl std::error::Error for SettingError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_settings_by_the_callers_names() {
        let e = SettingError::new()
            .text("x.jsonl:3: bad (fix the line, or pass ")
            .setting(Setting::SkipBadLines)
            .text(" to skip it)");
        assert_eq!(
            e.to_string(),
            "x.jsonl:3: bad (fix the line, or pass skip_bad_lines to skip it)"
        );
        let flag = |s: Setting| format!("--{}", s.name().replace('_', "-"));
        assert_eq!(
            e.render(flag),
            "x.jsonl:3: bad (fix the line, or pass --skip-bad-lines to skip it)"
        );
        let e = SettingError::about(Setting::SplitProb, "1.5 must be between 0 and 1");
        assert_eq!(e.render(flag), "--split-prob 1.5 must be between 0 and 1");
    }
}
