//! Recognising a `tokenizer.json` the fast path handles exactly, and building it.
//!
//! The rule is "prove it or refuse": every field that can change the ids is checked against the
//! shapes implemented here, and anything else (an unknown field, normalizer, pattern, flag or
//! model) makes [`build`] return the reason, so the caller falls back to the `tokenizers` crate.
//! Everything is read from the file: the token table through [`Vocab`], which applies (and checks
//! the file against) the crate's id rules, so a run on the fast path never loads the crate.

use super::bpe::{Bpe, Pairs, Whole};
use super::compiled::Compiled;
use super::pretok::{Pattern, PreTokenizer};
use super::{AddedTokens, FastEncoder, Normalizer};
use crate::tokenize::token_map::TokenMap;
use crate::tokenize::vocab::{AddedToken, Vocab};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

pub use crate::tokenize::vocab::Unsupported;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are read only to refuse files that have others
pub(super) struct FileJson {
    pub(super) version: Option<IgnoredAny>,
    pub(super) truncation: Option<IgnoredAny>,
    pub(super) padding: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) added_tokens: Vec<AddedJson>,
    pub(super) normalizer: Option<Value>,
    pub(super) pre_tokenizer: Option<Value>,
    pub(super) post_processor: Option<Value>,
    pub(super) decoder: Option<IgnoredAny>,
    pub(super) model: ModelJson,
}

/// An added token; every field is required (the crate's defaults are not guessed).
#[derive(Deserialize)]
pub(super) struct AddedJson {
    pub(super) id: u32,
    pub(super) content: String,
    pub(super) single_word: bool,
    pub(super) lstrip: bool,
    pub(super) rstrip: bool,
    pub(super) normalized: bool,
    pub(super) special: bool,
}

impl From<AddedJson> for AddedToken {
    fn from(a: AddedJson) -> AddedToken {
        AddedToken {
            id: a.id,
            content: a.content,
            special: a.special,
            single_word: a.single_word,
            lstrip: a.lstrip,
            rstrip: a.rstrip,
            normalized: a.normalized,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct ModelJson {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) dropout: Option<f64>,
    pub(super) unk_token: Option<String>,
    pub(super) continuing_subword_prefix: Option<String>,
    pub(super) end_of_word_suffix: Option<String>,
    pub(super) fuse_unk: Option<bool>,
    pub(super) byte_fallback: Option<bool>,
    pub(super) ignore_merges: Option<bool>,
    pub(super) vocab: TokenMap,
    /// Read by a second pass, [`MergesFile`], on another thread.
    pub(super) merges: Option<IgnoredAny>,
}

/// The second pass over the file: only the merges, their strings borrowed from the file.
#[derive(Deserialize)]
pub(super) struct MergesFile<'a> {
    #[serde(borrow)]
    pub(super) model: MergesModel<'a>,
}

#[derive(Deserialize)]
pub(super) struct MergesModel<'a> {
    #[serde(borrow)]
    pub(super) merges: Option<Vec<MergeJson<'a>>>,
}

/// Just the model's type, read when the full shape is refused, to say which model it is.
#[derive(Deserialize)]
struct KindJson {
    model: KindOnly,
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// One merge: `["a", "b"]`, or the legacy `"a b"` (`#version` lines are skipped, as by the crate).
/// Strings without escapes are borrowed from the file.
pub(super) enum MergeJson<'a> {
    Pair(Cow<'a, str>, Cow<'a, str>),
    Line(Cow<'a, str>),
}

/// A string borrowed from the file when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MergeJson<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MergeJson<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a merge: \"a b\" or [\"a\", \"b\"]")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<MergeJson<'de>, E> {
                Ok(MergeJson::Line(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MergeJson<'de>, E> {
                Ok(MergeJson::Line(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MergeJson<'de>, A::Error> {
                use serde::de::Error;
                let a: Text = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let b: Text = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(MergeJson::Pair(a.0, b.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A merge as ids: `(left, right, merged)`.
pub(super) type Merge = (u32, u32, u32);

/// The merges as the file spells them, in rank order.
pub(super) type MergeTexts<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// What a builder makes: the encoder, the token table and the merges as ids (for the cache).
pub(super) type Made = (FastEncoder, Vocab, Vec<Merge>);

/// The merges as read: the file's strings (which may borrow from it), or their ids, read from
/// the cache ([`super::cache`]), which stores what a build from the file found, with the pair
/// table built from them as they were read.
pub(super) enum Merges<'a> {
    Text(MergeTexts<'a>),
    Ids(Vec<Merge>, Pairs),
}

/// What [`parse`] read from the file, for [`build`].
pub struct Parsed<'a> {
    normalizer: Normalizer,
    pre: PreTokenizer,
    post_adds: bool,
    model: ModelJson,
    merges: Merges<'a>,
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

pub(super) fn expect(cond: bool, why: impl FnOnce() -> String) -> Result<(), Unsupported> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

pub(super) fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("?")
}

/// Checks an object has exactly the listed keys with the listed values (`None`: any value).
pub(super) fn exactly(
    v: &Value,
    what: &str,
    fields: &[(&str, Option<Value>)],
) -> Result<(), Unsupported> {
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

/// `ByteLevel` as a pre-tokenizer: no prefix space; whether it splits with GPT-2's pattern.
fn byte_level(v: &Value) -> Result<bool, Unsupported> {
    exactly(
        v,
        "the ByteLevel pre-tokenizer",
        &[
            ("type", Some("ByteLevel".into())),
            ("add_prefix_space", Some(false.into())),
            ("trim_offsets", None),
            ("use_regex", None),
        ],
    )?;
    v["use_regex"]
        .as_bool()
        .ok_or_else(|| "the ByteLevel use_regex is not true or false".into())
}

/// The pre-tokenizer: `ByteLevel` alone (GPT-2's pattern), or a `Sequence` of `Split` and
/// `Digits` steps followed by `ByteLevel` (with its regex: one more step, GPT-2's pattern).
fn pre_tokenizer(v: Option<&Value>) -> Result<PreTokenizer, Unsupported> {
    let v = v.ok_or("no pre-tokenizer")?;
    match type_of(v) {
        "ByteLevel" => {
            expect(byte_level(v)?, || {
                "a ByteLevel pre-tokenizer without its regex and no Split".into()
            })?;
            Ok(PreTokenizer::new(Pattern::Gpt2))
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
            let (last, splits) = seq.split_last().ok_or("an empty pre-tokenizer Sequence")?;
            let mut compiled = vec![];
            let mut steps = splits
                .iter()
                .map(|v| step(v, &mut compiled))
                .collect::<Result<Vec<_>, _>>()?;
            if byte_level(last)? {
                steps.push(Pattern::Gpt2);
            }
            expect(!steps.is_empty(), || {
                "a pre-tokenizer that does not split (ByteLevel without its regex alone)".into()
            })?;
            Ok(PreTokenizer::with_compiled(steps, compiled))
        }
        other => Err(format!("pre-tokenizer {other}")),
    }
}

/// A step of a pre-tokenizer `Sequence` before its `ByteLevel`: `Split` or `Digits`. A `Split`
/// pattern without a hand-written matcher is compiled into `compiled`.
fn step(v: &Value, compiled: &mut Vec<Compiled>) -> Result<Pattern, Unsupported> {
    match type_of(v) {
        "Split" => split_step(v, compiled),
        "Digits" => {
            exactly(
                v,
                "the Digits pre-tokenizer",
                &[("type", None), ("individual_digits", None)],
            )?;
            match v["individual_digits"].as_bool() {
                Some(true) => Ok(Pattern::DigitsEach),
                Some(false) => Ok(Pattern::DigitsRuns),
                None => Err("the Digits individual_digits is not true or false".into()),
            }
        }
        other => Err(format!(
            "pre-tokenizer step {other} (the fast path supports Split and Digits)"
        )),
    }
}

/// One `Split` step: a pattern with a fast matcher, and a behavior that gives its pieces.
fn split_step(split: &Value, compiled: &mut Vec<Compiled>) -> Result<Pattern, Unsupported> {
    exactly(
        split,
        "the Split pre-tokenizer",
        &[
            ("type", None),
            ("pattern", None),
            ("behavior", None),
            ("invert", None),
        ],
    )?;
    let regex = split["pattern"]
        .get("Regex")
        .and_then(Value::as_str)
        .ok_or("the Split pattern is not a Regex")?;
    let pattern = match Pattern::recognise(regex) {
        Some(pattern) => pattern,
        None => {
            let matcher = Compiled::new(regex).map_err(|why| {
                format!("the Split regex {regex:?} has no fast matcher: {why} is not supported")
            })?;
            let k = u16::try_from(compiled.len()).map_err(|_| "too many Split steps")?;
            compiled.push(matcher);
            Pattern::Compiled(k)
        }
    };
    let behavior = split["behavior"].as_str().unwrap_or("?");
    let invert = split["invert"]
        .as_bool()
        .ok_or("the Split invert is not true or false")?;
    expect(gives_the_pieces(pattern, behavior, invert), || {
        format!(
            "the Split behavior {behavior:?} with invert {invert} on the {} pattern (the fast \
             path supports the behaviors that keep each match and each gap as one piece)",
            pattern.name()
        )
    })?;
    Ok(pattern)
}

/// Whether a `Split` with `behavior` and `invert` keeps each match of `pattern`, and each gap
/// between matches, as one piece (what the matchers produce).
///
/// The crate lists the matches and gaps of the text in order, flagged "match" (with `invert`,
/// the flags are negated), then: `Isolated` keeps every item as a piece whatever its flag;
/// `Removed` drops the flagged ones; `MergedWithPrevious` (`MergedWithNext`) appends a flagged
/// item to the piece before (after) it only when that item is unflagged; `Contiguous` merges
/// runs of equal flags. So `Isolated` is always right. For a tiling pattern (no gaps: every item
/// is a match, see [`Pattern::tiles`]), all flags are equal: without `invert` all are set, so
/// `MergedWith*` never merges (no unflagged neighbour) and `Removed` drops everything; with
/// `invert` none is set, so `Removed` drops nothing and `MergedWith*` merges nothing. Contiguous
/// makes one piece of the whole text in both cases. So for tiling patterns `Isolated`,
/// `MergedWithPrevious`, `MergedWithNext` (either `invert`) and `Removed` with `invert` are the
/// same split; for patterns with gaps, only `Isolated`.
fn gives_the_pieces(pattern: Pattern, behavior: &str, invert: bool) -> bool {
    match behavior {
        "Isolated" => true,
        "MergedWithPrevious" | "MergedWithNext" => pattern.tiles(),
        "Removed" => invert && pattern.tiles(),
        _ => false,
    }
}

fn normalizer(v: Option<&Value>) -> Result<Normalizer, Unsupported> {
    match v {
        None | Some(Value::Null) => Ok(Normalizer::None),
        Some(v) if type_of(v) == "NFC" => {
            exactly(v, "the NFC normalizer", &[("type", None)])?;
            Ok(Normalizer::Nfc)
        }
        Some(v) if type_of(v) == "NFKC" => {
            exactly(v, "the NFKC normalizer", &[("type", None)])?;
            Ok(Normalizer::Nfkc)
        }
        Some(v) => Err(format!("normalizer {}", type_of(v))),
    }
}

/// Whether the post-processor adds tokens when `add_special_tokens` is on.
fn post_processor_adds(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null)) && v.map(type_of) != Some("ByteLevel")
}

/// Reads `json` and checks its shape; [`build`] makes the encoder from the result. The merges are
/// read by a second pass on another thread while this one reads the rest (the vocabulary).
pub fn parse(json: &str) -> Result<Parsed<'_>, Unsupported> {
    let (file, merges) = std::thread::scope(|scope| {
        let merges = scope.spawn(|| serde_json::from_str::<MergesFile>(json));
        let file = serde_json::from_str::<FileJson>(json);
        let merges = merges
            .join()
            .unwrap_or_else(|_| Err(serde::de::Error::custom("the merges parser panicked")));
        (file, merges)
    });
    let file =
        file.map_err(
            |e| match serde_json::from_str::<KindJson>(json).map(|k| k.model.kind) {
                Ok(Some(kind)) if kind != "BPE" => {
                    format!("model {kind} (the fast path supports byte-level BPE)")
                }
                _ => format!("the file has a shape the fast path does not know ({e})"),
            },
        )?;
    let merges =
        merges.map_err(|e| format!("the merges have a shape the fast path does not know ({e})"))?;
    parsed(file, Merges::Text(merge_list(merges)?))
}

/// What [`parse`] reads, from a cache entry: the file without its vocabulary and merges (`rest`),
/// which is read and checked as the whole file is, then the vocabulary and the merges' ids.
pub(super) fn parse_cached(
    rest: &str,
    vocab: TokenMap,
    merges: Vec<Merge>,
    pairs: Pairs,
) -> Result<Parsed<'static>, Unsupported> {
    parsed(file_cached(rest, vocab)?, Merges::Ids(merges, pairs))
}

/// The file read from a cache entry: `rest` with the vocabulary put back.
pub(super) fn file_cached(rest: &str, vocab: TokenMap) -> Result<FileJson, Unsupported> {
    let mut file = serde_json::from_str::<FileJson>(rest)
        .map_err(|e| format!("the cached file has a shape the fast path does not know ({e})"))?;
    file.model.vocab = vocab;
    Ok(file)
}

fn parsed(file: FileJson, merges: Merges) -> Result<Parsed, Unsupported> {
    Ok(Parsed {
        normalizer: normalizer(file.normalizer.as_ref())?,
        pre: pre_tokenizer(file.pre_tokenizer.as_ref())?,
        post_adds: post_processor_adds(file.post_processor.as_ref()),
        model: file.model,
        merges,
        added: file.added_tokens,
    })
}

/// The file's merges as pairs of strings, in rank order (`#version` lines are skipped, as by the
/// crate).
pub(super) fn merge_list(merges: MergesFile<'_>) -> Result<MergeTexts<'_>, Unsupported> {
    merges
        .model
        .merges
        .ok_or("no merges")?
        .into_iter()
        .filter(|m| !matches!(m, MergeJson::Line(l) if l.starts_with("#version")))
        .map(|m| match m {
            MergeJson::Pair(a, b) => Ok((a, b)),
            MergeJson::Line(l) => split_line(l),
        })
        .collect()
}

/// A legacy merge line `"a b"` as its two tokens.
pub(super) fn split_line(line: Cow<'_, str>) -> Result<(Cow<'_, str>, Cow<'_, str>), Unsupported> {
    let two = |l: &str| match l.split(' ').collect::<Vec<_>>()[..] {
        [a, b] => Ok((a.len(), b.len())),
        _ => Err(format!("merge {l:?} is not two tokens")),
    };
    match line {
        Cow::Borrowed(l) => {
            let (a, _) = two(l)?;
            Ok((Cow::Borrowed(&l[..a]), Cow::Borrowed(&l[a + 1..])))
        }
        Cow::Owned(l) => {
            let (a, _) = two(&l)?;
            Ok((
                Cow::Owned(l[..a].to_string()),
                Cow::Owned(l[a + 1..].to_string()),
            ))
        }
    }
}

/// Builds the fast encoder and the token table from what [`parse`] read, or says why not; also
/// returns the merges as ids, for the cache.
pub fn build(parsed: Parsed<'_>, encode_special_tokens: bool) -> Result<Made, Unsupported> {
    let Parsed {
        normalizer,
        pre,
        post_adds,
        model,
        merges,
        added,
    } = parsed;
    check_model(&model)?;
    let ignore_merges = model.ignore_merges.unwrap_or(false);
    let vocab = Vocab::new(
        model.vocab,
        added.into_iter().map(AddedToken::from).collect(),
    )?;
    let chars = byte_level_chars();
    let byte_ids = byte_ids(&vocab, &chars)?;
    let (merges, pairs) = match merges {
        Merges::Text(list) => (merge_ids(&vocab, &list)?, None),
        Merges::Ids(ids, pairs) => (checked_ids(ids, vocab.max_known_id())?, Some(pairs)),
    };
    // With ignore_merges, a pre-token is looked up whole by its byte-level spelling.
    let whole = ignore_merges.then(|| Whole {
        tokens: vocab.shared_model(),
        chars,
    });
    let (raw, normalized) = added_lists(&vocab, normalizer, encode_special_tokens)?;
    let description = format!(
        "byte-level BPE, {} split pattern, {} normalizer, {} merges{}, {} added tokens",
        pre.steps()
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(" + "),
        normalizer.name(),
        merges.len(),
        if ignore_merges {
            " (ignore_merges)"
        } else {
            ""
        },
        vocab.added().len()
    );
    let fast = FastEncoder {
        pre,
        bpe: Bpe::with_pairs(byte_ids, &merges, whole, pairs),
        normalizer,
        raw_added: added_matcher(raw)?,
        normalized_added: added_matcher(normalized)?,
        post_processor_adds_tokens: post_adds,
        description,
        spm: None,
    };
    Ok((fast, vocab, merges))
}

/// Merge ids read from the cache, checked to be token ids (the entry's checksum already vouches
/// for its bytes).
pub(super) fn checked_ids(ids: Vec<Merge>, max_id: u32) -> Result<Vec<Merge>, Unsupported> {
    match ids.iter().find(|&&(a, b, m)| a.max(b).max(m) > max_id) {
        Some(m) => Err(format!("the cached merge {m:?} names an unknown id")),
        None => Ok(ids),
    }
}

/// A BPE model without dropout, subword prefix or word suffix.
fn check_model(model: &ModelJson) -> Result<(), Unsupported> {
    let kind = model.kind.as_deref();
    expect(kind == Some("BPE"), || {
        format!(
            "model {} (the fast path supports byte-level BPE)",
            kind.unwrap_or("without a type")
        )
    })?;
    expect(matches!(model.dropout, None | Some(0.0)), || {
        "BPE dropout (random ids)".into()
    })?;
    for (name, v) in [
        (
            "continuing_subword_prefix",
            &model.continuing_subword_prefix,
        ),
        ("end_of_word_suffix", &model.end_of_word_suffix),
    ] {
        expect(v.as_deref().unwrap_or("").is_empty(), || {
            format!("BPE {name} {v:?}")
        })?;
    }
    Ok(())
}

/// The id of each byte's byte-level character.
fn byte_ids(vocab: &Vocab, chars: &[char; 256]) -> Result<[u32; 256], Unsupported> {
    let mut byte_ids = [0u32; 256];
    let mut buf = String::new();
    for (b, c) in chars.iter().enumerate() {
        buf.clear();
        buf.push(*c);
        byte_ids[b] = vocab
            .model()
            .get(&buf)
            .ok_or_else(|| format!("byte {b:#04x} ({c:?}) is not in the vocabulary"))?;
    }
    Ok(byte_ids)
}

/// Each merge as (left, right, merged) ids, in rank order.
fn merge_ids(
    vocab: &Vocab,
    merges: &[(Cow<str>, Cow<str>)],
) -> Result<Vec<(u32, u32, u32)>, Unsupported> {
    let id = |t: &str| {
        vocab
            .model()
            .get(t)
            .ok_or_else(|| format!("merge token {t:?} is not in the vocabulary"))
    };
    // Three look-ups per merge, 150K merges: two threads take half each.
    let lookup = |part: &[(Cow<str>, Cow<str>)]| {
        let mut buf = String::new();
        part.iter()
            .map(|(a, b)| {
                buf.clear();
                buf.push_str(a);
                buf.push_str(b);
                Ok((id(a)?, id(b)?, id(&buf)?))
            })
            .collect::<Result<Vec<_>, Unsupported>>()
    };
    let (first, second) = merges.split_at(merges.len() / 2);
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| lookup(second));
        let first = lookup(first);
        let second = second
            .join()
            .unwrap_or_else(|_| Err("the merge look-up panicked".into()));
        (first, second)
    });
    let mut merges = first?;
    merges.extend(second?);
    Ok(merges)
}

/// An added token to match: its content (normalized when the token is), id, and whether a match
/// stays text.
type AddedList = Vec<(String, u32, bool)>;

/// The added tokens matched on the raw text, and those matched on the normalized text.
fn added_lists(
    vocab: &Vocab,
    normalizer: Normalizer,
    encode_special_tokens: bool,
) -> Result<(AddedList, AddedList), Unsupported> {
    let mut raw = Vec::new();
    let mut normalized = Vec::new();
    for t in vocab.added() {
        let skip = t.special && encode_special_tokens;
        expect(skip || !(t.single_word || t.lstrip || t.rstrip), || {
            format!(
                "added token {:?} has single_word/lstrip/rstrip matching",
                t.content
            )
        })?;
        if t.normalized {
            let content = normalizer.apply(&t.content).into_owned();
            normalized.push((content, t.id, skip));
        } else {
            raw.push((t.content.clone(), t.id, skip));
        }
    }
    Ok((raw, normalized))
}

/// The byte-level path's matcher of the added tokens in `list`: none when no match would be kept
/// (every token is a special one left as text), which splits nothing, and lets long texts be cut
/// even when those tokens are `normalized` (DeepSeek's are).
fn added_matcher(list: Vec<(String, u32, bool)>) -> Result<Option<AddedTokens>, Unsupported> {
    if list.iter().all(|&(_, _, skip)| skip) {
        return Ok(None);
    }
    added_tokens(list)
}

pub(super) fn added_tokens(
    list: Vec<(String, u32, bool)>,
) -> Result<Option<AddedTokens>, Unsupported> {
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
