//! SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma 1–3): the crate's ids,
//! computed piece by piece behind a cache.
//!
//! Such a file has no real pre-tokenizer: the `tokenizers` crate replaces `' '` with `'▁'` in
//! each piece between added tokens — by a `Replace` normalizer (Gemma; Llama 2 and Mistral add a
//! `Prepend '▁'`; newer Gemma files add a `Split` on `' '`, which then finds none) or by a
//! non-splitting `Metaspace` pre-tokenizer (files converted with `legacy: false`, which puts a
//! `'▁'` before a piece that does not start with one: always, or only at the start of the text)
//! — and merges the whole piece, a whole document, as ONE word: its characters (a character
//! missing from the vocabulary becomes its UTF-8 bytes' `<0xXX>` tokens), then the
//! lowest-ranked, leftmost pair again and again. That is exact but cannot be cached, so it is
//! slow. (A splitting `Metaspace` makes each `'▁'` start a new word: a cut before every `'▁'`.)
//!
//! The cut rule that makes it fast, and why it is exact: every symbol during merging is a token
//! whose text equals the span of text it covers (characters are their own tokens, a merge joins
//! the texts of two such symbols; byte tokens never merge, which [`build`] checks). So a symbol
//! covering both characters `a` and `b` on either side of a position must be the result of a
//! merge whose text contains `ab`. If no merge result contains the adjacent pair `ab`, no symbol
//! ever crosses the position, no pair across it is ever merged, and the merges on either side
//! happen exactly as they would if the sides were encoded alone (the order of merges within a
//! side is unchanged: it is by rank, then position, and positions keep their order). [`Spm`]
//! therefore cuts the text at every such position into pieces of a few characters (the set of
//! pairs inside merge results is read from the merges; for Gemma, `'▁'` is preceded inside a
//! merge result only by another `'▁'`) and looks each piece up in a per-thread cache; a piece
//! not cached is merged with the same rank order as the crate. The pieces are cut from the text
//! as written: a `' '` stands for the `'▁'` it is replaced with, and the prepended `'▁'` is a
//! `' '` put before the first piece, so the text is not copied. Long documents are cut the same
//! way into parts encoded in parallel.

use super::bpe::{Bpe, IdStore, Ids, Pairs, Scratch, ShortTable};
use super::load::{
    self, checked_ids, exactly, expect, merge_list, type_of, FileJson, Made, Merge, Merges,
    MergesFile, ModelJson,
};
use super::pretok::{Pattern, PreTokenizer};
use super::{AddedTokens, FastEncoder, Normalizer, Part};
use crate::tokenize::token_map::TokenMap;
use crate::tokenize::vocab::{AddedToken, Unsupported, Vocab};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `'▁'`, which replaces `' '`.
const SPACE: char = '\u{2581}';
/// The slot of `'▁'` (and of `' '`, which stands for it) in the ASCII tables.
const SPACE_SLOT: usize = b' ' as usize;
/// No id.
const NONE: u32 = u32::MAX;
/// Pieces longer than this (bytes) are not cached.
const MAX_CACHED_LEN: usize = 256;
/// Entries per thread before the cache is emptied and refilled.
const CACHE_ENTRIES: usize = 1 << 19;

/// True when the file may be a byte-fallback BPE (a quick look for `"byte_fallback": true`);
/// [`build`] decides.
pub fn may_be(json: &str) -> bool {
    let key = "\"byte_fallback\"";
    memchr::memmem::find_iter(json.as_bytes(), key).any(|at| {
        let rest = json[at + key.len()..].trim_start();
        rest.strip_prefix(':')
            .is_some_and(|r| r.trim_start().starts_with("true"))
    })
}

/// The fast encoder for a SentencePiece-style BPE file; `None` if the model has no byte fallback
/// (then it is not this kind of file); `Some(Err)` with the reason if it is but is not supported.
pub fn build(json: &str, encode_special_tokens: bool) -> Option<Result<Made, Unsupported>> {
    let (file, merges) = std::thread::scope(|scope| {
        let merges = scope.spawn(|| serde_json::from_str::<MergesFile>(json));
        let file = serde_json::from_str::<FileJson>(json);
        (file, merges.join())
    });
    let file = match file {
        Ok(f) if f.model.byte_fallback == Some(true) => f,
        Ok(_) => return None,
        Err(e) => {
            return Some(Err(format!(
                "a byte-fallback BPE file of a shape the fast path does not know ({e})"
            )))
        }
    };
    let merges = match merges {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Some(Err(format!("the merges have an unknown shape ({e})"))),
        Err(_) => return Some(Err("the merges parser panicked".into())),
    };
    Some(merge_list(merges).and_then(|m| build_from(file, Merges::Text(m), encode_special_tokens)))
}

/// How spaces become `'▁'` and when a `'▁'` is put before a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spaces {
    /// The `Replace ' '→'▁'` normalizer, and `Prepend '▁'` before every piece between raw added
    /// tokens if `prepend`.
    Normalizer { prepend: bool },
    /// No normalizer; the `Metaspace` pre-tokenizer replaces `' '` in each piece between added
    /// tokens and puts a `'▁'` before one that does not start with it: every piece (`Always`),
    /// only one at the start of the text (`First`) or none; with `split`, each `'▁'` starts a
    /// new word.
    Metaspace { prefix: Prefix, split: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    Always,
    First,
    Never,
}

/// The normalizer and pre-tokenizer: `Replace ' '→'▁'` (alone or with `Prepend '▁'`) and no
/// pre-tokenizer (or a `Split` on `' '`, which finds none after the normalizer); or no normalizer
/// and `Metaspace`.
fn spaces(normalizer: Option<&Value>, pre: Option<&Value>) -> Result<Spaces, Unsupported> {
    let (normalizer, pre) = (
        normalizer.filter(|v| !v.is_null()),
        pre.filter(|v| !v.is_null()),
    );
    let Some(normalizer) = normalizer else {
        let pre = pre.ok_or("neither a normalizer nor a pre-tokenizer turns ' ' into '▁'")?;
        return metaspace(pre);
    };
    let prepend = replace_normalizer(normalizer)?;
    if let Some(pre) = pre {
        exactly(
            pre,
            &format!("pre-tokenizer {} with byte fallback", type_of(pre)),
            &[
                ("type", Some("Split".into())),
                ("pattern", Some(serde_json::json!({ "String": " " }))),
                ("behavior", None),
                ("invert", Some(false.into())),
            ],
        )?;
    }
    Ok(Spaces::Normalizer { prepend })
}

/// The `Metaspace` pre-tokenizer (replacement `'▁'`), read as the crate reads it.
fn metaspace(v: &Value) -> Result<Spaces, Unsupported> {
    exactly(
        v,
        &format!("pre-tokenizer {} with byte fallback", type_of(v)),
        &[
            ("type", Some("Metaspace".into())),
            ("replacement", Some(SPACE.to_string().into())),
            ("add_prefix_space", None),
            ("prepend_scheme", None),
            ("split", None),
            ("str_rep", None),
        ],
    )?;
    let prefix = match v.get("prepend_scheme").map(|p| p.as_str()) {
        None | Some(Some("always")) => Prefix::Always,
        Some(Some("first")) => Prefix::First,
        Some(Some("never")) => Prefix::Never,
        Some(other) => return Err(format!("Metaspace prepend_scheme {other:?}")),
    };
    let split = match v.get("split") {
        None | Some(Value::Null) => true,
        Some(split) => split.as_bool().ok_or("Metaspace split is not a boolean")?,
    };
    match v.get("add_prefix_space") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) if prefix == Prefix::Never => {}
        Some(other) => {
            return Err(format!(
                "Metaspace add_prefix_space {other} with prepend_scheme {prefix:?}"
            ))
        }
    }
    Ok(Spaces::Metaspace { prefix, split })
}

/// The `Replace ' '→'▁'` normalizer, alone or in a `Sequence` with `Prepend '▁'` (either order:
/// the prepended `'▁'` is not a space, so the order does not matter). True if it prepends.
fn replace_normalizer(v: &Value) -> Result<bool, Unsupported> {
    let replace = |v: &Value| {
        exactly(
            v,
            "the Replace normalizer",
            &[
                ("type", None),
                ("pattern", Some(serde_json::json!({ "String": " " }))),
                ("content", Some(SPACE.to_string().into())),
            ],
        )
    };
    match type_of(v) {
        "Replace" => replace(v).map(|_| false),
        "Sequence" => {
            exactly(
                v,
                "the normalizer Sequence",
                &[("type", None), ("normalizers", None)],
            )?;
            let steps = v["normalizers"]
                .as_array()
                .ok_or("normalizers is not a list")?;
            let kinds: Vec<&str> = steps.iter().map(type_of).collect();
            let prepend = match kinds[..] {
                ["Replace"] => false,
                ["Prepend", "Replace"] | ["Replace", "Prepend"] => true,
                _ => {
                    return Err(format!(
                        "a normalizer Sequence of {kinds:?} (the fast path supports Replace and \
                         Prepend + Replace)"
                    ))
                }
            };
            for step in steps {
                match type_of(step) {
                    "Replace" => replace(step)?,
                    _ => exactly(
                        step,
                        "the Prepend normalizer",
                        &[("type", None), ("prepend", Some(SPACE.to_string().into()))],
                    )?,
                }
            }
            Ok(prepend)
        }
        other => Err(format!("normalizer {other} (with byte fallback)")),
    }
}

/// The model's fields that can change ids, checked.
fn check_model(m: &ModelJson) -> Result<(), Unsupported> {
    let kind = m.kind.as_deref().unwrap_or("without a type");
    expect(kind == "BPE", || format!("model {kind} with byte fallback"))?;
    expect(matches!(m.dropout, None | Some(0.0)), || {
        "BPE dropout (random ids)".into()
    })?;
    for (name, v) in [
        ("continuing_subword_prefix", &m.continuing_subword_prefix),
        ("end_of_word_suffix", &m.end_of_word_suffix),
    ] {
        expect(v.as_deref().unwrap_or("").is_empty(), || {
            format!("BPE {name} {v:?}")
        })?;
    }
    Ok(())
}

/// The ids of the `<0xXX>` tokens, checked to cover every character the vocabulary lacks (so the
/// unknown token, which the crate fuses across characters, never occurs).
fn byte_tokens(model: &TokenMap) -> Result<[u32; 256], Unsupported> {
    let mut ids = [NONE; 256];
    for (b, id) in ids.iter_mut().enumerate() {
        if let Some(i) = model.get(&format!("<0x{b:02X}>")) {
            *id = i;
        }
    }
    let mut buf = [0u8; 4];
    for (b, &id) in ids.iter().enumerate() {
        let needed = match b {
            0x20 => !model.contains(SPACE.encode_utf8(&mut buf)),
            0..=0x7f => !model.contains((b as u8 as char).encode_utf8(&mut buf)),
            0x80..=0xbf | 0xc2..=0xf4 => true,
            _ => false, // never in UTF-8
        };
        expect(!needed || id != NONE, || {
            format!("byte {b:#04x} has no <0x{b:02X}> token: some characters would become unknown")
        })?;
    }
    Ok(ids)
}

/// The merges as ids in rank order, and every adjacent pair of (normalized) characters inside a
/// merged text, as `(a << 32) | b`.
struct MergeTable {
    ids: Vec<Merge>,
    pairs: FxHashSet<u64>,
    /// The rank map of `ids`, when a cached load built it while reading the vocabulary.
    built: Option<Pairs>,
}

/// The merge table; refused if a merge involves a byte token (the cut rule needs byte tokens
/// never to merge). Three look-ups per merge, 580K merges for Gemma: two threads take half each,
/// then half each of the pairs ([`merge_pairs`]). Merges read from the cache as ids get their
/// strings back from the vocabulary (the cache is written only when every id has one token).
fn merge_table(
    merges: Merges,
    vocab: &Vocab,
    byte_ids: &[u32; 256],
) -> Result<MergeTable, Unsupported> {
    match merges {
        Merges::Text(list) => {
            let ids = in_halves(&list, |part| merge_part(part, vocab.model()))?;
            merge_table_of(ids, &list, byte_ids)
        }
        Merges::Ids(ids, built) => {
            let ids = checked_ids(ids, vocab.max_known_id())?;
            let text = vocab.model_texts()?;
            let token = |id: u32| Cow::Borrowed(text[id as usize]);
            let list: Vec<_> = ids.iter().map(|&(a, b, _)| (token(a), token(b))).collect();
            let table = merge_table_of(ids, &list, byte_ids)?;
            Ok(MergeTable {
                built: Some(built),
                ..table
            })
        }
    }
}

/// [`merge_table`] given the merges both as ids and as strings.
fn merge_table_of(
    ids: Vec<Merge>,
    list: &[(Cow<str>, Cow<str>)],
    byte_ids: &[u32; 256],
) -> Result<MergeTable, Unsupported> {
    // Which tokens some merge makes (their inner pairs are that merge's), and which are bytes.
    let top = ids
        .iter()
        .map(|&(a, b, m)| a.max(b).max(m))
        .max()
        .unwrap_or(0);
    let mut is_byte = vec![false; top as usize + 1];
    for &id in byte_ids.iter().filter(|&&id| id <= top) {
        is_byte[id as usize] = true;
    }
    let byte_merge = ids
        .iter()
        .position(|&(a, b, _)| is_byte[a as usize] || is_byte[b as usize]);
    if let Some((a, b)) = byte_merge.map(|i| &list[i]) {
        return Err(format!(
            "the merge {a:?} + {b:?} involves a byte-fallback token"
        ));
    }
    let mut made = vec![false; top as usize + 1];
    for &(_, _, m) in &ids {
        made[m as usize] = true;
    }
    let half = list.len() / 2;
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| merge_pairs(&list[half..], &ids[half..], &made));
        let first = merge_pairs(&list[..half], &ids[..half], &made);
        (first, second.join())
    });
    let mut pairs = first;
    pairs.extend(second.map_err(|_| "the merge pairs panicked")?);
    Ok(MergeTable {
        ids,
        pairs,
        built: None,
    })
}

/// `f` of the first and of the second half of `list` on two threads, joined in order.
fn in_halves<T: Sync, R: Send>(
    list: &[T],
    f: impl Fn(&[T]) -> Result<Vec<R>, Unsupported> + Sync,
) -> Result<Vec<R>, Unsupported> {
    let (first, second) = list.split_at(list.len() / 2);
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| f(second));
        let first = f(first);
        let second = second
            .join()
            .unwrap_or_else(|_| Err("the merge look-up panicked".into()));
        (first, second)
    });
    let mut all = first?;
    all.extend(second?);
    Ok(all)
}

/// Each merge's ids.
fn merge_part(list: &[(Cow<str>, Cow<str>)], model: &TokenMap) -> Result<Vec<Merge>, Unsupported> {
    let id = |t: &str| {
        model
            .get(t)
            .ok_or_else(|| format!("merge token {t:?} is not in the vocabulary"))
    };
    let mut ids = Vec::with_capacity(list.len());
    let mut merged = String::new();
    for (a, b) in list {
        merged.clear();
        merged.push_str(a);
        merged.push_str(b);
        ids.push((id(a)?, id(b)?, id(&merged)?));
    }
    Ok(ids)
}

/// The adjacent pairs of (normalized) characters inside the merged texts of `list` (whose ids
/// are `ids`), given which tokens some merge makes (`made`, by id), by induction on the length:
/// the pairs inside `a + b` are those inside `a`, those inside `b`, and the pair where they
/// meet. A one-character operand has none; one that a merge makes has its pairs put in by that
/// merge (shorter than this one's text, so by induction complete); only for other operands
/// (none in a trained file) are they listed here. So each merge
/// adds one pair, not one per character of its text (millions for Gemma).
fn merge_pairs(list: &[(Cow<str>, Cow<str>)], ids: &[Merge], made: &[bool]) -> FxHashSet<u64> {
    let mut pairs = FxHashSet::default();
    let inner = |t: &str, pairs: &mut FxHashSet<u64>| {
        let mut chars = t.chars().map(|c| norm(c as u32));
        let mut x = chars.next().unwrap_or(0);
        for y in chars {
            pairs.insert(((x as u64) << 32) | y as u64);
            x = y;
        }
    };
    for ((a, b), &(ia, ib, _)) in list.iter().zip(ids) {
        let (Some(last), Some(first)) = (a.chars().next_back(), b.chars().next()) else {
            // An empty operand: the merged text is the other one, which this merge may be the
            // only one to make, so the induction does not apply; list its pairs.
            inner(a, &mut pairs);
            inner(b, &mut pairs);
            continue;
        };
        pairs.insert(((norm(last as u32) as u64) << 32) | norm(first as u32) as u64);
        if !made[ia as usize] {
            inner(a, &mut pairs);
        }
        if !made[ib as usize] {
            inner(b, &mut pairs);
        }
    }
    pairs
}

/// Builds the encoder and the token table from the file's fields and merges; also returns the
/// merges as ids, for the cache.
pub(super) fn build_from(
    file: FileJson,
    merges: Merges,
    encode_special_tokens: bool,
) -> Result<Made, Unsupported> {
    let spaces = spaces(file.normalizer.as_ref(), file.pre_tokenizer.as_ref())?;
    check_model(&file.model)?;
    let ignore_merges = file.model.ignore_merges.unwrap_or(false);
    // ignore_merges looks up each word whole: with a splitting Metaspace that is every '▁'-word,
    // which the pieces here do not follow.
    expect(
        !(ignore_merges && matches!(spaces, Spaces::Metaspace { split: true, .. })),
        || "ignore_merges with a splitting Metaspace".into(),
    )?;
    let added = file.added_tokens.into_iter().map(AddedToken::from);
    let vocab = Vocab::new(file.model.vocab, added.collect())?;
    expect(vocab.max_known_id() < NONE, || format!("token id {NONE}"))?;
    let byte_ids = byte_tokens(vocab.model())?;
    let merges = merge_table(merges, &vocab, &byte_ids)?;
    let n_merges = merges.ids.len();
    let (spm, merges) = Spm::new(
        &vocab.shared_model(),
        byte_ids,
        merges,
        spaces,
        ignore_merges,
    );
    let (raw, normalized) = added_lists(&vocab, &spm, encode_special_tokens)?;
    let description = format!(
        "SentencePiece-style BPE with byte fallback, {}, {n_merges} merges{}, {} added tokens",
        match spaces {
            Spaces::Normalizer { prepend: true } =>
                "Prepend '▁' + Replace ' '→'▁' normalizer".into(),
            Spaces::Normalizer { prepend: false } => "Replace ' '→'▁' normalizer".into(),
            Spaces::Metaspace { prefix, split } =>
                format!("Metaspace pre-tokenizer (prepend {prefix:?}, split {split})"),
        },
        if ignore_merges {
            " (ignore_merges)"
        } else {
            ""
        },
        vocab.added().len()
    );
    let fast = FastEncoder {
        // Unused: `spm` encodes every piece.
        pre: PreTokenizer::new(Pattern::Gpt2),
        bpe: Bpe::new([0; 256], [], None),
        normalizer: Normalizer::None,
        raw_added: load::added_tokens(raw)?,
        normalized_added: load::added_tokens(normalized)?,
        post_processor_adds_tokens: !matches!(file.post_processor, None | Some(Value::Null)),
        description,
        spm: Some(Box::new(spm)),
    };
    Ok((fast, vocab, merges))
}

/// The added tokens matched in the text as written, and those matched in the normalized text
/// (their content normalized as the crate does it, the prepended `'▁'` included).
type AddedList = Vec<(String, u32, bool)>;

fn added_lists(
    vocab: &Vocab,
    spm: &Spm,
    encode_special_tokens: bool,
) -> Result<(AddedList, AddedList), Unsupported> {
    let (mut raw, mut normalized) = (Vec::new(), Vec::new());
    for t in vocab.added() {
        let skip = t.special && encode_special_tokens;
        expect(skip || !(t.single_word || t.lstrip || t.rstrip), || {
            format!(
                "added token {:?} has single_word/lstrip/rstrip matching",
                t.content
            )
        })?;
        if t.normalized {
            normalized.push((spm.normalize(&t.content), t.id, skip));
        } else {
            raw.push((t.content.clone(), t.id, skip));
        }
    }
    Ok((raw, normalized))
}

/// A SentencePiece-style BPE model and its cut rule.
pub struct Spm {
    /// The merge table (its byte table is unused: symbols start as characters here).
    bpe: Bpe,
    /// The id of each ASCII character; `' '` holds `'▁'`'s; [`NONE`] if not in the vocabulary.
    ascii_ids: [u32; 128],
    /// The id of every other single-character token.
    char_ids: FxHashMap<u32, u32>,
    /// The `<0xXX>` tokens.
    byte_ids: [u32; 256],
    /// Bit `b` of `ascii_pairs[a]`: the ASCII pair `ab` (`' '` standing for `'▁'`) occurs inside
    /// a merge result.
    ascii_pairs: [u128; 128],
    /// Every adjacent pair of characters inside a merge result, as `(a << 32) | b`.
    pairs: FxHashSet<u64>,
    spaces: Spaces,
    /// With `ignore_merges`: the vocabulary, and its longest token in bytes.
    whole: Option<(Arc<TokenMap>, usize)>,
    /// Identifies this model in the per-thread caches.
    key: u64,
}

/// The character the normalizer makes of `c`.
#[inline(always)]
fn norm(c: u32) -> u32 {
    if c == b' ' as u32 {
        SPACE as u32
    } else {
        c
    }
}

/// The ASCII-table slot of a (normalized or written) character.
#[inline(always)]
fn slot(c: u32) -> Option<usize> {
    if c < 128 {
        Some(c as usize)
    } else if c == SPACE as u32 {
        Some(SPACE_SLOT)
    } else {
        None
    }
}

/// The character at `t[i]` (a character boundary of valid UTF-8) and where the next one starts.
#[inline(always)]
fn decode(t: &[u8], i: usize) -> (u32, usize) {
    let b = t[i] as u32;
    match b {
        0..=0x7f => (b, i + 1),
        0xc0..=0xdf => (((b & 0x1f) << 6) | (t[i + 1] as u32 & 0x3f), i + 2),
        0xe0..=0xef => (
            ((b & 0x0f) << 12) | ((t[i + 1] as u32 & 0x3f) << 6) | (t[i + 2] as u32 & 0x3f),
            i + 3,
        ),
        _ => (
            ((b & 0x07) << 18)
                | ((t[i + 1] as u32 & 0x3f) << 12)
                | ((t[i + 2] as u32 & 0x3f) << 6)
                | (t[i + 3] as u32 & 0x3f),
            i + 4,
        ),
    }
}

impl Spm {
    /// Appends the merge table's pairs to `out` as a cache entry keeps them.
    pub(super) fn write_pairs(&self, out: &mut Vec<u8>) {
        self.bpe.write_pairs(out);
    }

    fn new(
        model: &Arc<TokenMap>,
        byte_ids: [u32; 256],
        merges: MergeTable,
        spaces: Spaces,
        ignore_merges: bool,
    ) -> (Spm, Vec<Merge>) {
        static NEXT: AtomicU64 = AtomicU64::new(1 << 40);
        let MergeTable {
            ids,
            mut pairs,
            built,
        } = merges;
        // The rank map (580K merges for Gemma) is hashed on another thread meanwhile, unless a
        // cached load already did.
        let spm = std::thread::scope(|scope| {
            let bpe = scope.spawn(|| Bpe::with_pairs([0; 256], &ids, None, built));
            let spm = Spm::with(model, byte_ids, &mut pairs, spaces, ignore_merges);
            let bpe = bpe.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            Spm {
                bpe,
                pairs,
                key: NEXT.fetch_add(1, Ordering::Relaxed),
                ..spm
            }
        });
        (spm, ids)
    }

    /// Everything but the rank map, which [`Self::new`] puts in `bpe`.
    fn with(
        model: &Arc<TokenMap>,
        byte_ids: [u32; 256],
        pairs: &mut FxHashSet<u64>,
        spaces: Spaces,
        ignore_merges: bool,
    ) -> Spm {
        let mut ascii_ids = [NONE; 128];
        let mut char_ids = FxHashMap::default();
        for (tok, id) in model.iter() {
            let mut chars = tok.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                match c as u32 {
                    0x20 => {} // never in normalized text
                    c if c < 128 => ascii_ids[c as usize] = id,
                    c if c == SPACE as u32 => ascii_ids[SPACE_SLOT] = id,
                    c => {
                        char_ids.insert(c, id);
                    }
                }
            }
        }
        if let Spaces::Metaspace { split: true, .. } = spaces {
            // Every '▁' starts a word: no cut before one is ever crossed.
            pairs.retain(|&p| p as u32 != SPACE as u32);
        }
        let mut ascii_pairs = [0u128; 128];
        for &pair in pairs.iter() {
            let (a, b) = ((pair >> 32) as u32, pair as u32);
            if let (Some(sa), Some(sb)) = (slot(a), slot(b)) {
                ascii_pairs[sa] |= 1 << sb;
            }
        }
        let whole = ignore_merges.then(|| {
            let longest = model.longest();
            (Arc::clone(model), longest)
        });
        Spm {
            bpe: Bpe::new([0; 256], [], None),
            ascii_ids,
            char_ids,
            byte_ids,
            ascii_pairs,
            pairs: FxHashSet::default(),
            spaces,
            whole,
            key: 0,
        }
    }

    /// The normalized text of `s` (the crate's normalizer; for added-token contents and the
    /// text around normalized added tokens). Without a normalizer (Metaspace) it is `s`.
    fn normalize(&self, s: &str) -> String {
        let prepend = match self.spaces {
            Spaces::Normalizer { prepend } => prepend,
            Spaces::Metaspace { .. } => return s.to_string(),
        };
        let mut out = String::with_capacity(s.len() + s.len() / 4 + 3);
        if prepend && !s.is_empty() {
            out.push(SPACE);
        }
        for c in s.chars() {
            out.push(if c == ' ' { SPACE } else { c });
        }
        out
    }

    /// True when the characters `a` then `b` (normalized) occur together inside a merge result:
    /// then no cut between them.
    #[inline(always)]
    fn inside(&self, a: u32, b: u32) -> bool {
        match (slot(a), slot(b)) {
            (Some(sa), Some(sb)) => self.ascii_pairs[sa] >> sb & 1 != 0,
            _ => self.pairs.contains(&(((a as u64) << 32) | b as u64)),
        }
    }

    /// The first position after the character at `from` where the text may be cut, or its end.
    #[inline]
    fn next_cut(&self, t: &[u8], from: usize) -> usize {
        let (first, mut i) = decode(t, from);
        let mut prev = norm(first);
        while i < t.len() {
            let b = t[i];
            if b < 0x80 {
                let s = b as usize;
                let inside = match slot(prev) {
                    Some(p) => self.ascii_pairs[p] >> s & 1 != 0,
                    None => self
                        .pairs
                        .contains(&(((prev as u64) << 32) | norm(s as u32) as u64)),
                };
                if !inside {
                    return i;
                }
                prev = norm(s as u32);
                i += 1;
            } else {
                let (c, next) = decode(t, i);
                if !self.inside(prev, c) {
                    return i;
                }
                prev = c;
                i = next;
            }
        }
        t.len()
    }

    /// With `ignore_merges`, the id of the normalized piece if it is one token.
    fn whole_id(&self, piece: &str, prepend: bool) -> Option<u32> {
        let (vocab, longest) = self.whole.as_ref()?;
        if piece.is_empty() || piece.len() > *longest {
            return None;
        }
        let normalized = if prepend {
            let mut s = String::with_capacity(piece.len() + 3);
            s.push(SPACE);
            s.extend(piece.chars().map(|c| if c == ' ' { SPACE } else { c }));
            Cow::Owned(s)
        } else if piece.contains(' ') {
            Cow::Owned(piece.replace(' ', "\u{2581}"))
        } else {
            Cow::Borrowed(piece)
        };
        vocab.get(normalized.as_ref())
    }

    /// Appends the ids of `text` (no special tokens added): split out the raw added tokens,
    /// normalize, split out the normalized ones, encode each word.
    pub(super) fn encode_into(
        &self,
        raw_added: Option<&AddedTokens>,
        normalized_added: Option<&AddedTokens>,
        text: &str,
        out: &mut Vec<u32>,
    ) {
        AddedTokens::split(raw_added, text, |part| match part {
            Part::Text(piece) => {
                let at_start = piece.as_ptr() == text.as_ptr();
                self.encode_piece(piece, at_start, normalized_added, out)
            }
            Part::Id(id) => out.push(id),
        });
    }

    /// Whether a `'▁'` is put before `piece`, a piece between added tokens as written
    /// (`at_start`: it starts the text).
    fn prefix(&self, piece: &str, at_start: bool) -> bool {
        match self.spaces {
            Spaces::Normalizer { prepend } => prepend,
            Spaces::Metaspace { prefix, .. } => {
                let allowed = match prefix {
                    Prefix::Always => true,
                    Prefix::First => at_start,
                    Prefix::Never => false,
                };
                allowed && !piece.starts_with([' ', SPACE])
            }
        }
    }

    /// Appends the ids of a piece between raw added tokens (before normalization).
    fn encode_piece(
        &self,
        piece: &str,
        at_start: bool,
        normalized_added: Option<&AddedTokens>,
        out: &mut Vec<u32>,
    ) {
        if piece.is_empty() {
            return;
        }
        if normalized_added.is_none() {
            return self.encode_whole(piece, self.prefix(piece, at_start), out);
        }
        let normalized = self.normalize(piece);
        let metaspace = matches!(self.spaces, Spaces::Metaspace { .. });
        AddedTokens::split(normalized_added, &normalized, |part| match part {
            // After a normalizer, the prepended '▁' is already in the text; a Metaspace
            // pre-tokenizer (no normalizer: `normalized` is `piece`) prefixes each word.
            Part::Text(word) if metaspace => {
                let at_start = at_start && word.as_ptr() == normalized.as_ptr();
                self.encode_whole(word, self.prefix(word, at_start), out)
            }
            Part::Text(word) => self.encode_whole(word, false, out),
            Part::Id(id) => out.push(id),
        });
    }

    /// Appends the ids of one word of the crate's model: `text` as written (`' '` standing for
    /// `'▁'`), after a `'▁'` if `prepend`.
    fn encode_whole(&self, text: &str, prepend: bool, out: &mut Vec<u32>) {
        if let Some(id) = self.whole_id(text, prepend) {
            out.push(id);
            return;
        }
        self.encode_cut(text, prepend, out);
    }

    /// Appends the ids of `text` (after a `'▁'` if `prepend`) cut into cached pieces. Correct
    /// only where the cut rule holds at both ends (a whole word, or a part cut by [`Self::parts`];
    /// `ignore_merges` checked by the caller).
    fn encode_cut(&self, text: &str, prepend: bool, out: &mut Vec<u32>) {
        let t = text.as_bytes();
        if t.is_empty() {
            return;
        }
        self.with_cache(|cache| {
            let mut start = 0;
            if prepend {
                let (first, _) = decode(t, 0);
                if self.inside(SPACE as u32, norm(first)) {
                    let end = self.next_cut(t, 0);
                    let mut piece = Vec::with_capacity(end + 1);
                    piece.push(b' ');
                    piece.extend_from_slice(&t[..end]);
                    self.encode_cached(cache, &piece, out);
                    start = end;
                } else {
                    self.encode_cached(cache, b" ", out);
                }
            }
            while start < t.len() {
                let end = self.next_cut(t, start);
                self.encode_cached(cache, &t[start..end], out);
                start = end;
            }
        });
    }

    /// The ids of `text` in parts of about `part_bytes`, cut where the cut rule holds, encoded
    /// in parallel (without normalized added tokens, which could span a cut).
    pub(super) fn encode_in_parts(
        &self,
        raw_added: Option<&AddedTokens>,
        text: &str,
        part_bytes: usize,
    ) -> Vec<u32> {
        // (text, prepend) or an id.
        let mut parts: Vec<(Part, bool)> = Vec::new();
        AddedTokens::split(raw_added, text, |part| match part {
            Part::Text("") => {}
            Part::Text(piece) => {
                let prefix = self.prefix(piece, piece.as_ptr() == text.as_ptr());
                if let Some(id) = self.whole_id(piece, prefix) {
                    parts.push((Part::Id(id), false));
                    return;
                }
                let mut start = 0;
                for end in self.parts(piece, part_bytes) {
                    parts.push((Part::Text(&piece[start..end]), start == 0 && prefix));
                    start = end;
                }
            }
            id => parts.push((id, false)),
        });
        super::encode_parts(&parts, |(p, prepend), out| match p {
            Part::Id(id) => out.push(*id),
            Part::Text(t) => self.encode_cut(t, *prepend, out),
        })
    }

    /// Ends of parts of `text` of at least `part_bytes` (but the last), at cut positions.
    fn parts(&self, text: &str, part_bytes: usize) -> Vec<usize> {
        let t = text.as_bytes();
        let mut ends = Vec::new();
        let mut start = 0;
        while start < t.len() {
            let mut at = (start + part_bytes.max(1)).min(t.len());
            while !text.is_char_boundary(at) {
                at += 1;
            }
            // The first cut at or after `at`: look from the character before it.
            let mut before = at - 1;
            while !text.is_char_boundary(before) {
                before -= 1;
            }
            let end = if before < start {
                self.next_cut(t, start)
            } else {
                self.next_cut(t, before)
            };
            ends.push(end);
            start = end;
        }
        ends
    }

    /// Runs `f` with this thread's cache for this model.
    #[inline]
    fn with_cache<R>(&self, f: impl FnOnce(&mut Cache) -> R) -> R {
        CACHE.with(|cache| {
            let cache = &mut *cache.borrow_mut();
            if cache.owner != self.key {
                cache.clear();
                cache.owner = self.key;
            }
            f(cache)
        })
    }

    /// Appends the ids of one piece (cut on both sides), from the cache if it is there.
    #[inline]
    fn encode_cached(&self, cache: &mut Cache, piece: &[u8], out: &mut Vec<u32>) {
        let len = piece.len();
        if len == 1 && self.ascii_ids[piece[0] as usize] != NONE {
            out.push(self.ascii_ids[piece[0] as usize]);
        } else if len < 16 {
            let mut buf = [0u8; 16];
            buf[..len].copy_from_slice(piece);
            let key = u128::from_le_bytes(buf) | ((len as u128) << 120);
            match self.bpe.shared().get(key) {
                Some(v) => cache.ids.emit_short(v, out),
                None => self.short_unshared(cache, key, piece, out),
            }
        } else if len <= MAX_CACHED_LEN {
            match cache.long.get(piece) {
                Some(&v) => cache.ids.emit(v, out),
                None => {
                    let v = self.compute(cache, piece, out, IdStore::store);
                    cache.long.insert(piece.into(), v);
                }
            }
        } else {
            self.merge(cache, piece, out);
        }
    }

    /// A short piece not in the model's shared table: in this thread's own (pieces of more than
    /// three ids, and everything once the shared table is full), or merged now and kept in the
    /// shared table if it takes it, else in this thread's (as the byte-level encoder does).
    #[inline(never)]
    fn short_unshared(&self, cache: &mut Cache, key: u128, piece: &[u8], out: &mut Vec<u32>) {
        if let Some(v) = cache.short.get(key) {
            return cache.ids.emit_short(v, out);
        }
        let shared = self.bpe.shared();
        let unshared = self.compute(cache, piece, out, |store, ids| shared.keep(key, ids, store));
        if let Some(value) = unshared {
            cache.short.insert(key, value);
        }
    }

    /// Merges `piece`, appends its ids and returns what `keep` makes of them for the cache
    /// (after making room in it).
    #[inline(never)]
    fn compute<V>(
        &self,
        cache: &mut Cache,
        piece: &[u8],
        out: &mut Vec<u32>,
        keep: impl FnOnce(&mut IdStore, &[u32]) -> V,
    ) -> V {
        let before = out.len();
        self.merge(cache, piece, out);
        cache.make_room();
        keep(&mut cache.ids, &out[before..])
    }

    /// The crate's `merge_word`: characters (or their bytes' tokens), then merges by rank.
    fn merge(&self, cache: &mut Cache, piece: &[u8], out: &mut Vec<u32>) {
        let syms = &mut cache.syms;
        syms.clear();
        let mut i = 0;
        let mut buf = [0u8; 4];
        while i < piece.len() {
            let (c, next) = decode(piece, i);
            let id = match slot(c) {
                Some(s) => self.ascii_ids[s],
                None => self.char_ids.get(&c).copied().unwrap_or(NONE),
            };
            if id != NONE {
                syms.push(id);
            } else {
                let c = char::from_u32(norm(c)).unwrap_or(char::REPLACEMENT_CHARACTER);
                syms.extend(
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| self.byte_ids[b as usize]),
                );
            }
            i = next;
        }
        self.bpe.merge_scan(syms, &mut cache.scratch);
        out.extend_from_slice(syms);
    }
}

/// The per-thread cache: piece bytes → ids. Keys under 16 bytes are packed with their length
/// into a `u128` (the byte-level encoder's [`ShortTable`], up to three ids in the slot); longer
/// ones are boxed, their value one id or a range of `ids`.
struct Cache {
    owner: u64,
    short: ShortTable,
    long: FxHashMap<Box<[u8]>, Ids>,
    ids: IdStore,
    /// Scratch space for merging.
    syms: Vec<u32>,
    scratch: Scratch,
}

impl Cache {
    fn clear(&mut self) {
        self.short.clear();
        self.long.clear();
        self.ids.clear();
    }

    /// Empties the cache when it is full, before an entry is added.
    fn make_room(&mut self) {
        if self.short.len() + self.long.len() >= CACHE_ENTRIES {
            self.clear();
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        owner: u64::MAX,
        short: ShortTable::new(),
        long: FxHashMap::default(),
        ids: IdStore::default(),
        syms: Vec::new(),
        scratch: Scratch::default(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every adjacent pair inside every merged text: what [`merge_pairs`] must equal.
    fn all_pairs(list: &[(Cow<str>, Cow<str>)]) -> FxHashSet<u64> {
        let mut pairs = FxHashSet::default();
        for (a, b) in list {
            let merged = format!("{a}{b}");
            let mut chars = merged.chars().map(|c| norm(c as u32));
            let mut x = chars.next().unwrap_or(0);
            for y in chars {
                pairs.insert(((x as u64) << 32) | y as u64);
                x = y;
            }
        }
        pairs
    }

    proptest! {
        /// Merges over a few characters (`' '` among them, which stands for `'▁'`), some of them
        /// of operands no merge makes, or empty: the pairs found by induction are all the pairs.
        #[test]
        fn merge_pairs_are_all_pairs(
            raw in proptest::collection::vec(("[ab ▁é]{0,4}", "[ab ▁é]{0,4}"), 0..40),
            built in proptest::collection::vec((0usize..40, 0usize..40), 0..40),
        ) {
            // Merges of earlier merge results, as a trained file has, after arbitrary ones.
            let mut list: Vec<(Cow<str>, Cow<str>)> =
                raw.into_iter().map(|(a, b)| (a.into(), b.into())).collect();
            for (i, j) in built {
                if let (Some(x), Some(y)) = (list.get(i), list.get(j)) {
                    let (x, y) = (format!("{}{}", x.0, x.1), format!("{}{}", y.0, y.1));
                    list.push((x.into(), y.into()));
                }
            }
            let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
            let mut id = |t: &str| {
                let n = vocab.len() as u32;
                *vocab.entry(t.to_string()).or_insert(n)
            };
            let ids: Vec<Merge> = list
                .iter()
                .map(|(a, b)| (id(a), id(b), id(&format!("{a}{b}"))))
                .collect();
            let mut made = vec![false; vocab.len()];
            for &(_, _, m) in &ids {
                made[m as usize] = true;
            }
            prop_assert_eq!(merge_pairs(&list, &ids, &made), all_pairs(&list));
        }
    }
}
