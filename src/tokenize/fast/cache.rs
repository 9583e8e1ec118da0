//! The tokenizer cache: what the fast encoder reads from a large `tokenizer.json` — its
//! vocabulary, its merges as ids and their pair table — kept in a binary file, so the next run on the same file
//! skips the JSON parse and the merge look-ups (70–230 ms for a 150K–260K vocabulary, most of
//! a short run's start-up, and paid again by every task of a Slurm array).
//!
//! An entry is found by the file's length and a CRC-32C of samples of its content (its head,
//! its tail and 64 pieces spread between: [`fingerprint`]), and used only if the SHA-256
//! recorded in it is the file's (the caller computes that one anyway, for the manifest, on
//! another thread) and its own checksum holds. Two files that share a name only take turns in
//! one slot. (A CRC of the whole file cost 4–12 ms of the start-up, on the same core as the
//! rest of it.) Everything else in the file (normalizer,
//! pre-tokenizer, added tokens, model flags) is stored as the file's own JSON with the vocabulary
//! and merges cut out, and read and checked exactly as a file is, so the cache changes nothing
//! but where the two big tables come from. An entry is written only after the encoder was built
//! from the file, to a temporary file renamed into place: readers never see half an entry, and
//! runs writing the same entry at once do no harm. Any problem reading one is a miss; writing
//! one is best effort (the run goes on; the summary says why). An entry is used only if it is a
//! regular file of this user that no one else can write (entries are created `0600`).
//!
//! Layout, little-endian: the header (magic, format, kind, source length, source SHA-256, then
//! the lengths of the sections), the rest of the file as JSON, the vocabulary (ids, end offsets,
//! texts), the merges (three ids each), the merges' pair table as the encoder holds it
//! (`Bpe::write_pairs`), and a CRC-32C of everything before it.

use super::bpe::Pairs;
use super::load::Merge;
use crate::tokenize::token_map::TokenMap;
use crate::tokenize::vocab::Vocab;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"utk-tok\0";
/// Bumped whenever what an entry holds or how it is read changes.
const FORMAT: u32 = 2;
const HEADER: usize = 8 + 4 + 4 + 8 + 32 + 5 * 8;

/// Which builder made the encoder: the entry is given back to the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ByteLevel = 1,
    SentencePiece = 2,
}

/// A cache entry, read.
pub struct Entry {
    pub kind: Kind,
    /// The SHA-256 of the file it was made from, hex.
    pub sha256: String,
    /// The file without its vocabulary and merges.
    pub rest: String,
    pub vocab: TokenMap,
    pub merges: Vec<Merge>,
    /// The pair table of `merges`, built while the vocabulary was read.
    pub pairs: Pairs,
}

/// A cache directory.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: &Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    /// The place of the entry for the file `json` (its name is the file's CRC-32C and length).
    pub fn slot(&self, json: &[u8]) -> Slot {
        let crc = fingerprint(json);
        let name = format!("{crc:08x}-{}.v{FORMAT}.utk-tokenizer", json.len());
        Slot {
            dir: self.dir.clone(),
            path: self.dir.join(name),
            source_len: json.len() as u64,
        }
    }
}

/// The CRC-32C of the first and last 256 KiB of `bytes` and of 64 pieces of 4 KiB evenly spread
/// between (of all of `bytes` below 1 MiB): names an entry, which the SHA-256 then checks.
fn fingerprint(bytes: &[u8]) -> u32 {
    const END: usize = 256 << 10;
    const PIECE: usize = 4 << 10;
    const PIECES: usize = 64;
    let n = bytes.len();
    if n < 1 << 20 {
        return crc32c::crc32c(bytes);
    }
    let mut crc = crc32c::crc32c(&bytes[..END]);
    let step = (n - 2 * END - PIECE) / (PIECES - 1);
    for k in 0..PIECES {
        let at = END + k * step;
        crc = crc32c::crc32c_append(crc, &bytes[at..at + PIECE]);
    }
    crc32c::crc32c_append(crc, &bytes[n - END..])
}

/// Where one file's entry is (or would be).
pub struct Slot {
    dir: PathBuf,
    pub path: PathBuf,
    source_len: u64,
}

impl Slot {
    /// The entry, if there is a sound one; the caller still compares its `sha256` with the
    /// file's.
    pub fn read(&self) -> Option<Entry> {
        let file = std::fs::File::open(&self.path).ok()?;
        if !trusted(&file.metadata().ok()?) {
            return None;
        }
        // Mapped: an entry is replaced by renaming a new file over it, never rewritten in place.
        let bytes = crate::mapped::map_open(&file, &self.path).ok()?;
        decode(&bytes, self.source_len)
    }

    /// Writes the entry for the file `json` (SHA-256 `sha256`, hex) built with `tables`, then
    /// removes this user's entries of older formats from the directory (no utk reads them any
    /// more: a new format is a new entry for every file); the number removed, or why the entry
    /// was not written.
    pub fn write(&self, json: &str, sha256: &str, tables: &Tables) -> Result<usize, String> {
        let bytes = entry(json, sha256, tables)?;
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(failed)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(failed)?;
        tmp.write_all(&bytes).map_err(failed)?;
        tmp.persist(&self.path).map_err(|e| failed(e.error))?;
        Ok(remove_older_formats(&self.dir))
    }
}

/// Removes the entries of formats before [`FORMAT`] in `dir` that are this user's (as
/// [`trusted`] requires of an entry: another user's files are left alone); best effort, the
/// number removed.
fn remove_older_formats(dir: &Path) -> usize {
    let Ok(list) = std::fs::read_dir(dir) else {
        return 0;
    };
    let older = |name: &str| {
        let format = name.strip_suffix(".utk-tokenizer")?.rsplit_once(".v")?.1;
        format.parse::<u32>().ok().filter(|&f| f < FORMAT)
    };
    list.flatten()
        .filter(|e| e.file_name().to_str().and_then(older).is_some())
        .filter(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| trusted(&m)))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Whether an entry may be used: a regular file that only its owner, this user, can write.
/// Another user's entry in a shared cache directory could hold any tables.
#[cfg(unix)]
fn trusted(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    meta.is_file() && meta.uid() == me && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn trusted(meta: &std::fs::Metadata) -> bool {
    meta.is_file()
}

/// What an entry keeps of an encoder built from a file.
pub struct Tables<'a> {
    /// Which builder made it.
    pub kind: Kind,
    pub vocab: &'a Vocab,
    pub merges: &'a [Merge],
    /// The merges' pair table as the encoder holds it (`Bpe::write_pairs`), so that a load
    /// copies it instead of building it again.
    pub pairs: &'a [u8],
}

/// The bytes of the entry for the file `json` (SHA-256 `sha256`, hex), or why there is none.
pub(crate) fn entry(json: &str, sha256: &str, tables: &Tables) -> Result<Vec<u8>, String> {
    // An id must stand for one text: a cached merge gets its strings back from its ids.
    tables.vocab.model_texts()?;
    let rest = rest_of(json)?;
    encode(json.len() as u64, sha256, &rest, tables)
}

/// The file's `model.vocab` and `model.merges`, only to find where they are.
#[derive(Deserialize)]
struct Spans<'a> {
    #[serde(borrow)]
    model: ModelSpans<'a>,
}

#[derive(Deserialize)]
struct ModelSpans<'a> {
    #[serde(borrow)]
    vocab: &'a RawValue,
    #[serde(borrow, default)]
    merges: Option<&'a RawValue>,
}

/// `json` with `model.vocab` replaced by `{}` and `model.merges` by `[]`.
fn rest_of(json: &str) -> Result<String, String> {
    let spans: Spans =
        serde_json::from_str(json).map_err(|e| format!("cannot find the tables ({e})"))?;
    let at = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - json.as_ptr() as usize;
        (start, start + raw.get().len())
    };
    let mut cuts = vec![(at(spans.model.vocab), "{}")];
    cuts.extend(spans.model.merges.map(|m| (at(m), "[]")));
    cuts.sort();
    let mut rest = String::with_capacity(4096);
    let mut from = 0;
    for ((start, end), empty) in cuts {
        rest.push_str(&json[from..start]);
        rest.push_str(empty);
        from = end;
    }
    rest.push_str(&json[from..]);
    Ok(rest)
}

fn encode(source_len: u64, sha256: &str, rest: &str, tables: &Tables) -> Result<Vec<u8>, String> {
    let &Tables {
        kind,
        vocab,
        merges,
        pairs,
    } = tables;
    let sha = hex32(sha256).ok_or("not a SHA-256")?;
    let model = vocab.model();
    let text_len = model.text_len();
    let too_big = || "the vocabulary is too large for the cache".to_string();
    let size = HEADER + rest.len() + 8 * model.len() + text_len + 12 * merges.len() + pairs.len();
    let mut out = Vec::with_capacity(size + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out.extend_from_slice(&source_len.to_le_bytes());
    out.extend_from_slice(&sha);
    for n in [rest.len(), model.len(), text_len, merges.len(), pairs.len()] {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    out.extend_from_slice(rest.as_bytes());
    let mut end = 0u32;
    let mut ends = Vec::with_capacity(4 * model.len());
    for (token, id) in model.iter() {
        out.extend_from_slice(&id.to_le_bytes());
        end = u32::try_from(token.len())
            .ok()
            .and_then(|n| end.checked_add(n))
            .ok_or_else(too_big)?;
        ends.extend_from_slice(&end.to_le_bytes());
    }
    out.extend_from_slice(&ends);
    for (token, _) in model.iter() {
        out.extend_from_slice(token.as_bytes());
    }
    for &(a, b, m) in merges {
        for id in [a, b, m] {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out.extend_from_slice(pairs);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads consecutive sections of an entry.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }

    fn u32s(&mut self, n: usize) -> Option<impl Iterator<Item = u32> + 'a> {
        let bytes = self.take(n.checked_mul(4)?)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        )
    }
}

/// An entry from its bytes, if they are one, sound, for a source of `source_len` bytes.
pub(crate) fn decode(bytes: &[u8], source_len: u64) -> Option<Entry> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return None;
    }
    let mut r = Reader { bytes: body };
    if r.take(8)? != MAGIC || r.u32()? != FORMAT {
        return None;
    }
    let kind = match r.u32()? {
        1 => Kind::ByteLevel,
        2 => Kind::SentencePiece,
        _ => return None,
    };
    if r.u64()? != source_len {
        return None;
    }
    let sha256 = r.take(32)?.iter().map(|b| format!("{b:02x}")).collect();
    let (rest_len, n_vocab, text_len) = (r.len()?, r.len()?, r.len()?);
    let (n_merges, pairs_len) = (r.len()?, r.len()?);
    let rest = simdutf8::basic::from_utf8(r.take(rest_len)?)
        .ok()?
        .to_string();
    let ids = r.u32s(n_vocab)?;
    let ends = r.u32s(n_vocab)?;
    let text = simdutf8::basic::from_utf8(r.take(text_len)?).ok()?;
    let mut merge_ids = r.u32s(n_merges.checked_mul(3)?)?;
    let merges = (0..n_merges)
        .map(|_| Some((merge_ids.next()?, merge_ids.next()?, merge_ids.next()?)))
        .collect::<Option<Vec<_>>>()?;
    let max_id = merges.iter().map(|m| m.2).max().unwrap_or(0);
    let pairs = Pairs::read(r.take(pairs_len)?, n_merges, max_id)?;
    if !r.bytes.is_empty() {
        return None;
    }
    Some(Entry {
        kind,
        sha256,
        rest,
        vocab: vocab_map(ids, ends, text, n_vocab)?,
        merges,
        pairs,
    })
}

/// The vocabulary of an entry: `n` tokens, token `k` being `text[ends[k - 1]..ends[k]]` with id
/// `ids[k]`; none unless the ends cover `text` and no token is listed twice.
fn vocab_map(
    ids: impl Iterator<Item = u32>,
    ends: impl Iterator<Item = u32>,
    text: &str,
    n: usize,
) -> Option<TokenMap> {
    let mut vocab = TokenMap::with_capacity(n, text.len());
    let mut start = 0;
    for (id, end) in ids.zip(ends) {
        let token = text.get(start..end as usize)?;
        vocab.insert(token, id);
        start = end as usize;
    }
    (start == text.len() && vocab.len() == n).then_some(vocab)
}

/// The 32 bytes of a hex SHA-256.
fn hex32(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        let model = [("a", 0), ("b", 1), ("ab", 2), ("é", 3)]
            .into_iter()
            .collect();
        Vocab::new(model, vec![]).unwrap()
    }

    const JSON: &str = r#"{"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "é": 3}, "merges": [["a", "b"]]}, "decoder": null}"#;

    /// The tables of [`JSON`] (its pair table as a model of its merge builds it) for `f`.
    fn tables<R>(vocab: &Vocab, merges: &[Merge], f: impl FnOnce(&Tables) -> R) -> R {
        let mut pairs = Vec::new();
        super::super::bpe::Bpe::new([0; 256], merges.iter().copied(), None).write_pairs(&mut pairs);
        f(&Tables {
            kind: Kind::ByteLevel,
            vocab,
            merges,
            pairs: &pairs,
        })
    }

    fn entry_bytes() -> Vec<u8> {
        let sha = "ab".repeat(32);
        let rest = rest_of(JSON).unwrap();
        tables(&vocab(), &[(0, 1, 2)], |t| encode(7, &sha, &rest, t)).unwrap()
    }

    #[test]
    fn the_rest_is_the_file_without_its_tables() {
        assert_eq!(
            rest_of(JSON).unwrap(),
            r#"{"added_tokens": [], "model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": null}"#
        );
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let e = decode(&entry_bytes(), 7).unwrap();
        assert_eq!(e.kind, Kind::ByteLevel);
        assert_eq!(e.sha256, "ab".repeat(32));
        assert_eq!(&e.vocab, vocab().model());
        assert_eq!(e.merges, [(0, 1, 2)]);
        assert_eq!(e.rest, rest_of(JSON).unwrap());
    }

    #[test]
    fn a_damaged_or_foreign_entry_is_a_miss() {
        let bytes = entry_bytes();
        assert!(decode(&bytes, 8).is_none(), "another source length");
        for cut in [0, 1, 4, HEADER, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], 7).is_none(), "cut at {cut}");
        }
        for at in [0, 9, 20, HEADER + 3, bytes.len() - 10, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(decode(&flipped, 7).is_none(), "byte {at} flipped");
        }
    }

    #[test]
    fn tokens_sharing_an_id_are_not_cached() {
        let model = [("a", 0), ("b", 0)].into_iter().collect();
        let vocab = Vocab::new(model, vec![]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let slot = Cache::new(dir.path()).slot(JSON.as_bytes());
        let why = tables(&vocab, &[], |t| slot.write(JSON, &"0".repeat(64), t)).unwrap_err();
        assert!(why.contains("share id 0"), "{why}");
    }
}
