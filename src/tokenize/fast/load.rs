//! Recognising a `tokenizer.json` the fast path handles exactly, and building it.
//!
//! The rule is "prove it or refuse": every field that can change the ids is checked against the
//! shapes implemented here, and anything else (an unknown field, normalizer, pattern, flag or
//! model) makes [`build`] return the reason, so the caller falls back to the `tokenizers` crate.
//! The vocabulary and the added tokens are read from the crate's loaded [`Tokenizer`] (so their
//! ids are the crate's, whatever its id-assignment rules), the rest from the file.

use super::bpe::Bpe;
use super::pretok::{Pattern, PreTokenizer};
use super::{AddedTokens, FastEncoder, Normalizer};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::FxHashMap;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use tokenizers::models::ModelWrapper;
use tokenizers::{Model, Tokenizer};
use unicode_normalization_alignments::UnicodeNormalization;

/// Why a tokenizer file is not handled by the fast path.
pub type Unsupported = String;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are read only to refuse files that have others
struct FileJson {
    version: Option<IgnoredAny>,
    truncation: Option<IgnoredAny>,
    padding: Option<IgnoredAny>,
    #[serde(default)]
    added_tokens: Vec<AddedJson>,
    normalizer: Option<Value>,
    pre_tokenizer: Option<Value>,
    post_processor: Option<Value>,
    decoder: Option<IgnoredAny>,
    model: ModelJson,
}

#[derive(Deserialize)]
struct AddedJson {
    id: u32,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ModelJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    dropout: Option<f64>,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
    end_of_word_suffix: Option<String>,
    fuse_unk: Option<bool>,
    byte_fallback: Option<bool>,
    ignore_merges: Option<bool>,
    vocab: IgnoredAny,
    merges: Option<Vec<MergeJson>>,
}

/// One merge: `["a", "b"]`, or the legacy `"a b"` (`#version` lines are skipped, as by the crate).
enum MergeJson {
    Pair(String, String),
    Line(String),
}

impl<'de> Deserialize<'de> for MergeJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MergeJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a merge: \"a b\" or [\"a\", \"b\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MergeJson, E> {
                Ok(MergeJson::Line(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MergeJson, A::Error> {
                use serde::de::Error;
                let a: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let b: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(MergeJson::Pair(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

/// What is read from the file alone, before (or while) the crate loads it: see [`parse`].
pub struct Parsed {
    normalizer: Normalizer,
    pattern: Pattern,
    post_adds: bool,
    kind: Option<String>,
    merges: Vec<(String, String)>,
    added: Vec<AddedJson>,
}

/// The GPT-2 byte-to-character table of the `ByteLevel` pre-tokenizer.
pub fn byte_level_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        table[b as usize] = if printable {
            char::from_u32(b).expect("Latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("Latin Extended")
        };
    }
    table
}

fn expect(cond: bool, why: impl FnOnce() -> String) -> Result<(), Unsupported> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("?")
}

/// Checks an object has exactly the listed keys with the listed values (`None`: any value).
fn exactly(v: &Value, what: &str, fields: &[(&str, Option<Value>)]) -> Result<(), Unsupported> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))?;
    for key in obj.keys() {
        expect(fields.iter().any(|(k, _)| k == key), || {
            format!("{what} has the unsupported field {key:?}")
        })?;
    }
    for (key, want) in fields {
        if let Some(want) = want {
            let got = obj.get(*key).unwrap_or(&Value::Null);
            expect(got == want, || {
                format!("{what} has {key} = {got}, the fast path supports only {want}")
            })?;
        }
    }
    Ok(())
}

/// `ByteLevel` as a pre-tokenizer: no prefix space; `use_regex` as given.
fn byte_level(v: &Value, use_regex: bool) -> Result<(), Unsupported> {
    exactly(
        v,
        "the ByteLevel pre-tokenizer",
        &[
            ("type", Some("ByteLevel".into())),
            ("add_prefix_space", Some(false.into())),
            ("trim_offsets", None),
            ("use_regex", Some(use_regex.into())),
        ],
    )
}

fn pre_tokenizer(v: Option<&Value>) -> Result<Pattern, Unsupported> {
    let v = v.ok_or("no pre-tokenizer")?;
    match type_of(v) {
        "ByteLevel" => {
            byte_level(v, true)?;
            Ok(Pattern::Gpt2)
        }
        "Sequence" => {
            exactly(
                v,
                "the pre-tokenizer Sequence",
                &[("type", None), ("pretokenizers", None)],
            )?;
            let seq = v["pretokenizers"]
                .as_array()
                .ok_or("pretokenizers is not a list")?;
            expect(seq.len() == 2, || {
                format!(
                    "a pre-tokenizer Sequence of {} steps (the fast path supports Split + ByteLevel)",
                    seq.len()
                )
            })?;
            let split = &seq[0];
            expect(type_of(split) == "Split", || {
                format!("pre-tokenizer step {} (not Split)", type_of(split))
            })?;
            exactly(
                split,
                "the Split pre-tokenizer",
                &[
                    ("type", None),
                    ("pattern", None),
                    ("behavior", Some("Isolated".into())),
                    ("invert", Some(false.into())),
                ],
            )?;
            let regex = split["pattern"]
                .get("Regex")
                .and_then(Value::as_str)
                .ok_or("the Split pattern is not a Regex")?;
            let pattern = Pattern::recognise(regex)
                .ok_or_else(|| format!("the Split regex {regex:?} has no fast matcher"))?;
            byte_level(&seq[1], false)?;
            Ok(pattern)
        }
        other => Err(format!("pre-tokenizer {other}")),
    }
}

fn normalizer(v: Option<&Value>) -> Result<Normalizer, Unsupported> {
    match v {
        None | Some(Value::Null) => Ok(Normalizer::None),
        Some(v) if type_of(v) == "NFC" => {
            exactly(v, "the NFC normalizer", &[("type", None)])?;
            Ok(Normalizer::Nfc)
        }
        Some(v) => Err(format!("normalizer {}", type_of(v))),
    }
}

/// Whether the post-processor adds tokens when `add_special_tokens` is on.
fn post_processor_adds(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null)) && v.map(type_of) != Some("ByteLevel")
}

/// Reads and checks the parts of `json` that do not need the crate: run it while the crate loads
/// the same file, then pass the result to [`build`].
pub fn parse(json: &str) -> Result<Parsed, Unsupported> {
    let file: FileJson = serde_json::from_str(json)
        .map_err(|e| format!("the file has a shape the fast path does not know ({e})"))?;
    let merges = match file.model.merges {
        None => return Err("no merges".into()),
        Some(list) => list
            .into_iter()
            .filter(|m| !matches!(m, MergeJson::Line(l) if l.starts_with("#version")))
            .map(|m| match m {
                MergeJson::Pair(a, b) => Ok((a, b)),
                MergeJson::Line(l) => match l.split(' ').collect::<Vec<_>>()[..] {
                    [a, b] => Ok((a.to_string(), b.to_string())),
                    _ => Err(format!("merge {l:?} is not two tokens")),
                },
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Parsed {
        normalizer: normalizer(file.normalizer.as_ref())?,
        pattern: pre_tokenizer(file.pre_tokenizer.as_ref())?,
        post_adds: post_processor_adds(file.post_processor.as_ref()),
        kind: file.model.kind,
        merges,
        added: file.added_tokens,
    })
}

/// Builds the fast encoder from what [`parse`] read and the crate's `tokenizer` loaded from the
/// same file, or says why not.
pub fn build(
    parsed: Result<Parsed, Unsupported>,
    tokenizer: &Tokenizer,
    encode_special_tokens: bool,
) -> Result<FastEncoder, Unsupported> {
    // What the crate loaded first: it names the model of files with other fields.
    let ModelWrapper::BPE(bpe) = tokenizer.get_model() else {
        let kind = match tokenizer.get_model() {
            ModelWrapper::WordPiece(_) => "WordPiece",
            ModelWrapper::WordLevel(_) => "WordLevel",
            ModelWrapper::Unigram(_) => "Unigram",
            ModelWrapper::BPE(_) => "BPE",
        };
        return Err(format!(
            "model {kind} (the fast path supports byte-level BPE)"
        ));
    };
    let Parsed {
        normalizer,
        pattern,
        post_adds,
        kind,
        merges,
        added,
    } = parsed?;
    expect(kind.as_deref() == Some("BPE"), || {
        format!("model {}", kind.as_deref().unwrap_or("without a type"))
    })?;
    expect(matches!(bpe.dropout, None | Some(0.0)), || {
        "BPE dropout (random ids)".into()
    })?;
    for (name, v) in [
        ("continuing_subword_prefix", &bpe.continuing_subword_prefix),
        ("end_of_word_suffix", &bpe.end_of_word_suffix),
    ] {
        expect(v.as_deref().unwrap_or("").is_empty(), || {
            format!("BPE {name} {v:?}")
        })?;
    }
    // Look-ups go to the crate's own vocabulary (no copy of it is made unless ignore_merges
    // needs every entry).
    let chars = byte_level_chars();
    let mut byte_ids = [0u32; 256];
    let mut buf = String::new();
    for (b, c) in chars.iter().enumerate() {
        buf.clear();
        buf.push(*c);
        byte_ids[b] = bpe
            .token_to_id(&buf)
            .ok_or_else(|| format!("byte {b:#04x} ({c:?}) is not in the vocabulary"))?;
    }
    let id = |t: &str| {
        bpe.token_to_id(t)
            .ok_or_else(|| format!("merge token {t:?} is not in the vocabulary"))
    };
    let merges = merges
        .iter()
        .map(|(a, b)| {
            buf.clear();
            buf.push_str(a);
            buf.push_str(b);
            Ok((id(a)?, id(b)?, id(&buf)?))
        })
        .collect::<Result<Vec<_>, Unsupported>>()?;
    let whole = bpe.ignore_merges.then(|| {
        let mut inverse = [0u8; 512];
        let mut known = [false; 512];
        for (b, c) in chars.iter().enumerate() {
            inverse[*c as usize] = b as u8;
            known[*c as usize] = true;
        }
        bpe.get_vocab()
            .iter()
            .filter_map(|(tok, &id)| {
                let bytes: Option<Vec<u8>> = tok
                    .chars()
                    .map(|c| (known.get(c as usize) == Some(&true)).then(|| inverse[c as usize]))
                    .collect();
                bytes.map(|b| (b.into_boxed_slice(), id))
            })
            .collect::<FxHashMap<_, _>>()
    });

    // Added tokens, with the crate's ids.
    let decoder = tokenizer.get_added_tokens_decoder();
    let mut seen = HashSet::new();
    for t in &added {
        expect(seen.insert(t.content.as_str()), || {
            format!("added token {:?} is listed twice", t.content)
        })?;
        expect(
            decoder.get(&t.id).map(|a| a.content.as_str()) == Some(t.content.as_str()),
            || format!("added token {:?} does not get its id {}", t.content, t.id),
        )?;
    }
    expect(decoder.len() == added.len(), || {
        "the crate loaded other added tokens than the file lists".into()
    })?;
    let mut raw = Vec::new();
    let mut normalized = Vec::new();
    let mut ids: Vec<&u32> = decoder.keys().collect();
    ids.sort();
    for id in ids {
        let t = &decoder[id];
        if t.content.is_empty() {
            continue;
        }
        let skip = t.special && encode_special_tokens;
        expect(skip || !(t.single_word || t.lstrip || t.rstrip), || {
            format!(
                "added token {:?} has single_word/lstrip/rstrip matching",
                t.content
            )
        })?;
        if t.normalized {
            let content = match normalizer {
                Normalizer::None => t.content.clone(),
                Normalizer::Nfc => t.content.nfc().map(|(c, _)| c).collect(),
            };
            normalized.push((content, *id, skip));
        } else {
            raw.push((t.content.clone(), *id, skip));
        }
    }

    let description = format!(
        "byte-level BPE, {} split pattern, {} normalizer, {} merges{}, {} added tokens",
        pattern.name(),
        match normalizer {
            Normalizer::None => "no",
            Normalizer::Nfc => "NFC",
        },
        merges.len(),
        if bpe.ignore_merges {
            " (ignore_merges)"
        } else {
            ""
        },
        decoder.len()
    );
    Ok(FastEncoder {
        pre: PreTokenizer::new(pattern),
        bpe: Bpe::new(byte_ids, merges, whole),
        normalizer,
        raw_added: added_tokens(raw)?,
        normalized_added: added_tokens(normalized)?,
        post_processor_adds_tokens: post_adds,
        description,
    })
}

fn added_tokens(list: Vec<(String, u32, bool)>) -> Result<Option<AddedTokens>, Unsupported> {
    if list.is_empty() {
        return Ok(None);
    }
    let automaton: AhoCorasick = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(list.iter().map(|(c, _, _)| c))
        .map_err(|e| format!("cannot index the added tokens: {e}"))?;
    Ok(Some(AddedTokens {
        automaton,
        ids: list.iter().map(|&(_, id, skip)| (id, skip)).collect(),
        any_kept: list.iter().any(|&(_, _, skip)| !skip),
    }))
}
