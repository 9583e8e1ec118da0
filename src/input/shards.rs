//! Already-tokenized inputs ("token shards"): documents as token ids, without a tokenizer pass.
//!
//! Four layouts are read, each memory-mapped through [`crate::mapped::map_file`] (the one place
//! files are mapped; it falls back to reading for pipes and special files):
//!
//! - **Megatron indexed datasets** (`PREFIX.bin` + `PREFIX.idx`, any dtype of the format): one
//!   document per *indexed document* (`document_indices[i]..document_indices[i+1]` sequences);
//! - **datatrove** (`X.ds` + `X.ds.index`, u64 cumulative document ends without a leading 0;
//!   the token width, 2 or 4 bytes, follows from the `.ds` size and the last end);
//! - **raw** little-endian `uint16` / `uint32` arrays (`--input-format u16|u32`);
//! - **`.npy`** 1-D integer arrays.
//!
//! The EOD rule: an indexed document (Megatron, datatrove) whose last token is not the run's EOD
//! id gets EOD appended, so documents written by `utk tokenize` (which end with EOD) are not
//! doubled. Raw and `.npy` arrays have no index: the EOD id separates documents, each document
//! ends just after an EOD, and a trailing run without EOD is a last document that gets EOD
//! appended. Every id must be a token the tokenizer knows (at most its highest id) or the EOD;
//! anything else is an error naming the shard and the token offset in it.

use crate::mapped::{map_file, Bytes};
use crate::output::megatron::{decode_idx, DType};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `--input-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Detect: Megatron pairs, datatrove pairs and `.npy` files by name and content; JSONL otherwise.
    Auto,
    Jsonl,
    Megatron,
    Npy,
    Datatrove,
    /// Raw little-endian uint16 ids, documents separated by the EOD id.
    U16,
    /// Raw little-endian uint32 ids, documents separated by the EOD id.
    U32,
}

/// The layout of one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardKind {
    Megatron,
    Datatrove,
    Npy,
    U16,
    U32,
}

impl ShardKind {
    pub fn name(self) -> &'static str {
        match self {
            ShardKind::Megatron => "megatron",
            ShardKind::Datatrove => "datatrove",
            ShardKind::Npy => "npy",
            ShardKind::U16 => "u16",
            ShardKind::U32 => "u32",
        }
    }
}

/// One token shard: its kind and its data file (`.bin`, `.ds`, `.npy` or the raw file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub kind: ShardKind,
    pub path: PathBuf,
}

impl Shard {
    /// The name in errors, the manifest and provenance: the data file's path.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Bytes of the data file (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        std::fs::metadata(&self.path).ok().map(|m| m.len())
    }

    /// The sidecar index file, for the kinds that have one.
    fn index_path(&self) -> Option<PathBuf> {
        match self.kind {
            ShardKind::Megatron => Some(self.path.with_extension("idx")),
            ShardKind::Datatrove => Some(with_suffix(&self.path, ".index")),
            _ => None,
        }
    }
}

/// The `format` of the `PREFIX.json` that `utk tokenize` writes beside its Megatron dataset.
pub const TOKENIZED_FORMAT: &str = "utk-tokenized-v1";

/// What a run reading a shard checks in its `PREFIX.json`.
#[derive(serde::Deserialize)]
struct Sidecar {
    tokenizer: String,
    tokenizer_sha256: String,
    eod: SidecarEod,
}

#[derive(serde::Deserialize)]
struct SidecarEod {
    id: u32,
    token: Option<String>,
}

impl Shard {
    /// Checks a Megatron shard against the `PREFIX.json` that `utk tokenize` wrote beside it, if
    /// there is one: ids made with another tokenizer file, or documents ended with another EOD,
    /// would otherwise be augmented as if they were this run's. Other JSON files are ignored.
    pub fn check_sidecar(&self, tokenizer: &Path, sha256: &str, eod: u32) -> Result<()> {
        if self.kind != ShardKind::Megatron {
            return Ok(());
        }
        let path = self.path.with_extension("json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(());
        };
        let value = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v["format"] == TOKENIZED_FORMAT => v,
            _ => return Ok(()), // not a record of ours
        };
        let (json, bin) = (path.display(), self.path.display());
        let side: Sidecar = serde_json::from_value(value)
            .with_context(|| format!("{json}: a damaged `utk tokenize` record of {bin}"))?;
        if side.tokenizer_sha256 != sha256 {
            bail!(
                "{bin} was tokenized with another tokenizer.json (sha256 {}, {}, per {json}) than \
                 --tokenizer {} (sha256 {sha256}): its ids would be read with another vocabulary. \
                 Use the tokenizer it was made with; if the two files define the same tokens, move \
                 {json} aside to skip this check",
                side.tokenizer_sha256,
                side.tokenizer,
                tokenizer.display()
            );
        }
        if side.eod.id != eod {
            bail!(
                "{bin} was tokenized with EOD id {} ({}, per {json}) but this run uses {eod}: \
                 pass --eod-id {}",
                side.eod.id,
                side.eod.token.as_deref().unwrap_or("?"),
                side.eod.id
            );
        }
        Ok(())
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The classified inputs of a run: text or token shards, never both.
pub enum Inputs {
    Text,
    Shards(Vec<Shard>),
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Classifies the command-line inputs. `X.bin`+`X.idx` (or the prefix `X`) is Megatron, `X.ds` +
/// `X.ds.index` is datatrove, a file starting with the `.npy` magic is `.npy`, and raw arrays need
/// `--input-format u16|u32`. Text inputs are left to [`super::expand_inputs`].
pub fn classify(args: &[String], format: InputFormat) -> Result<Inputs> {
    if format == InputFormat::Jsonl {
        return Ok(Inputs::Text);
    }
    let mut shards: Vec<Shard> = Vec::new();
    let mut text: Vec<String> = Vec::new();
    for arg in args {
        // One argument's files name a pair once (`X.bin` and `X.idx` from one directory); the
        // same shard given twice is read twice, like a text file given twice.
        let first = shards.len();
        let mut push = |s: Shard| {
            if !shards[first..].contains(&s) {
                shards.push(s);
            }
        };
        let path = Path::new(arg);
        // A Megatron prefix names no file itself.
        if !path.exists()
            && with_suffix(path, ".bin").is_file()
            && with_suffix(path, ".idx").is_file()
            && matches!(format, InputFormat::Auto | InputFormat::Megatron)
        {
            push(Shard {
                kind: ShardKind::Megatron,
                path: with_suffix(path, ".bin"),
            });
            continue;
        }
        if arg == "-" {
            if format != InputFormat::Auto {
                bail!("standard input (-) can only be JSONL text, not --input-format {format:?}");
            }
            text.push(arg.clone());
            continue;
        }
        for source in super::expand_inputs(std::slice::from_ref(arg))? {
            let super::Source::File(p) = source else {
                continue;
            };
            match detect(&p, format)? {
                Some(shard) => push(shard),
                None => text.push(p.display().to_string()),
            }
        }
    }
    match (shards.is_empty(), text.is_empty()) {
        (true, _) => Ok(Inputs::Text),
        (false, true) => Ok(Inputs::Shards(shards)),
        (false, false) => bail!(
            "inputs mix token shards ({}) and text ({}); run them separately, or convert the text \
             with `utk tokenize` first",
            shards[0].name(),
            text[0]
        ),
    }
}

/// The shard a file belongs to, or `None` for text (auto detection only).
fn detect(p: &Path, format: InputFormat) -> Result<Option<Shard>> {
    let name = p.to_string_lossy();
    let shard = |kind, path: PathBuf| Ok(Some(Shard { kind, path }));
    let megatron_pair = |bin: PathBuf| bin.is_file() && bin.with_extension("idx").is_file();
    let strip = |suffix: &str| PathBuf::from(&name[..name.len() - suffix.len()]);
    match format {
        InputFormat::U16 => return shard(ShardKind::U16, p.to_path_buf()),
        InputFormat::U32 => return shard(ShardKind::U32, p.to_path_buf()),
        _ => {}
    }
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(format, InputFormat::Auto | InputFormat::Megatron) {
        if (ext == "bin" || ext == "idx") && megatron_pair(p.with_extension("bin")) {
            return shard(ShardKind::Megatron, p.with_extension("bin"));
        }
        if format == InputFormat::Megatron {
            bail!(
                "{}: --input-format megatron needs PREFIX.bin with PREFIX.idx beside it (or the PREFIX)",
                p.display()
            );
        }
    }
    if matches!(format, InputFormat::Auto | InputFormat::Datatrove) {
        for suffix in [".ds.index", ".ds.loss"] {
            if name.ends_with(suffix) && with_suffix(&strip(suffix), ".ds").is_file() {
                let ds = with_suffix(&strip(suffix), ".ds");
                if with_suffix(&ds, ".index").is_file() {
                    return shard(ShardKind::Datatrove, ds);
                }
            }
        }
        if name.ends_with(".ds") && with_suffix(p, ".index").is_file() {
            return shard(ShardKind::Datatrove, p.to_path_buf());
        }
        if format == InputFormat::Datatrove {
            bail!(
                "{}: --input-format datatrove needs X.ds with X.ds.index beside it",
                p.display()
            );
        }
    }
    let mut head = [0u8; 6];
    let is_npy = {
        use std::io::Read;
        let mut f =
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        f.read_exact(&mut head).is_ok() && head == NPY_MAGIC
    };
    if is_npy && matches!(format, InputFormat::Auto | InputFormat::Npy) {
        return shard(ShardKind::Npy, p.to_path_buf());
    }
    if format == InputFormat::Npy {
        bail!("{}: not a .npy file (no \\x93NUMPY magic)", p.display());
    }
    Ok(None)
}

/// Element types a shard can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::U8 | Elem::I8 => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::I32 | Elem::U32 | Elem::F32 => 4,
            Elem::I64 | Elem::U64 | Elem::F64 => 8,
        }
    }

    fn from_megatron(d: DType) -> Elem {
        match d {
            DType::Uint8 => Elem::U8,
            DType::Int8 => Elem::I8,
            DType::Int16 => Elem::I16,
            DType::Int32 => Elem::I32,
            DType::Int64 => Elem::I64,
            DType::Float64 => Elem::F64,
            DType::Float32 => Elem::F32,
            DType::Uint16 => Elem::U16,
        }
    }
}

/// Decodes elements `[start, end)` of `data` into ids, appending to `out`. A value that is not a
/// non-negative integer below 2^32 is an error with its element index.
fn decode(
    data: &[u8],
    elem: Elem,
    start: usize,
    end: usize,
    out: &mut Vec<u32>,
) -> Result<(), usize> {
    let s = elem.size();
    let bytes = &data[start * s..end * s];
    out.reserve(end - start);
    macro_rules! ints {
        ($t:ty) => {{
            for (i, c) in bytes.chunks_exact(s).enumerate() {
                let v = <$t>::from_le_bytes(c.try_into().expect("element"));
                match u32::try_from(v) {
                    Ok(id) => out.push(id),
                    Err(_) => return Err(start + i),
                }
            }
        }};
    }
    macro_rules! floats {
        ($t:ty) => {{
            for (i, c) in bytes.chunks_exact(s).enumerate() {
                let v = <$t>::from_le_bytes(c.try_into().expect("element"));
                if v.fract() != 0.0 || !(0.0..=u32::MAX as $t).contains(&v) {
                    return Err(start + i);
                }
                out.push(v as u32);
            }
        }};
    }
    match elem {
        Elem::U8 => out.extend(bytes.iter().map(|&b| b as u32)),
        Elem::U16 => {
            let at = out.len();
            out.resize(at + (end - start), 0);
            out[at..]
                .iter_mut()
                .zip(bytes.chunks_exact(2))
                .for_each(|(d, c)| *d = u16::from_le_bytes([c[0], c[1]]) as u32);
        }
        // 32-bit ids (Megatron writes int32 for vocabularies above 65,500): one copy, then for
        // int32 one vectorised pass for negative values (the sign bit).
        Elem::U32 | Elem::I32 => {
            let at = out.len();
            match bytemuck::try_cast_slice::<u8, u32>(bytes) {
                Ok(ids) if cfg!(target_endian = "little") => out.extend_from_slice(ids),
                _ => {
                    out.resize(at + (end - start), 0);
                    out[at..]
                        .iter_mut()
                        .zip(bytes.chunks_exact(4))
                        .for_each(|(d, c)| *d = u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                }
            }
            let new = &out[at..];
            if elem == Elem::I32 && new.iter().fold(0, |a, &v| a | v) >> 31 != 0 {
                let k = new.iter().position(|&v| v >> 31 != 0).unwrap_or(0);
                return Err(start + k);
            }
        }
        Elem::I8 => ints!(i8),
        Elem::I16 => ints!(i16),
        Elem::I64 => ints!(i64),
        Elem::U64 => ints!(u64),
        Elem::F32 => floats!(f32),
        Elem::F64 => floats!(f64),
    }
    Ok(())
}

/// How a shard's elements split into documents.
enum Layout {
    /// Element ranges, one per indexed document.
    Indexed(Vec<(usize, usize)>),
    /// Split after each EOD id.
    Separated,
}

/// An opened, validated shard.
pub struct OpenShard {
    name: String,
    data: Bytes,
    /// Byte offset of the first element (the `.npy` header length; 0 otherwise).
    offset: usize,
    elem: Elem,
    len: usize,
    layout: Layout,
    /// Bytes of `data` released from the resident set so far.
    released: AtomicUsize,
}

impl OpenShard {
    /// Maps the shard and checks its index against its data.
    pub fn open(shard: &Shard) -> Result<OpenShard> {
        let name = shard.name();
        let data = map_file(&shard.path)?;
        let (offset, elem, layout) = match shard.kind {
            ShardKind::U16 | ShardKind::U32 => {
                let elem = if shard.kind == ShardKind::U16 {
                    Elem::U16
                } else {
                    Elem::U32
                };
                if data.len() % elem.size() != 0 {
                    bail!(
                        "{name}: {} bytes is not a whole number of {} ids ({} bytes each); \
                         is --input-format {} right?",
                        data.len(),
                        shard.kind.name(),
                        elem.size(),
                        shard.kind.name()
                    );
                }
                (0, elem, Layout::Separated)
            }
            ShardKind::Npy => {
                let (offset, elem, n) = parse_npy_header(&data).with_context(|| name.clone())?;
                let need = offset as u64 + n as u64 * elem.size() as u64;
                if data.len() as u64 != need {
                    bail!(
                        "{name}: the .npy header declares {n} elements ({need} bytes with the header), \
                         but the file is {} bytes (truncated?)",
                        data.len()
                    );
                }
                (offset, elem, Layout::Separated)
            }
            ShardKind::Megatron => {
                let idx_path = shard.index_path().expect("megatron has an index");
                let idx_name = idx_path.display().to_string();
                let idx = map_file(&idx_path)?;
                let index = decode_idx(&idx).with_context(|| idx_name.clone())?;
                let elem = Elem::from_megatron(index.dtype);
                if data.len() as u64 != index.bin_len() {
                    bail!(
                        "{name} is {} bytes but {idx_name} describes {} bytes of {:?} tokens: \
                         the .bin is truncated or the .idx belongs to another .bin",
                        data.len(),
                        index.bin_len(),
                        index.dtype
                    );
                }
                let mut starts = Vec::with_capacity(index.lengths.len() + 1);
                let mut at = 0usize;
                for &l in &index.lengths {
                    starts.push(at);
                    at += l as usize;
                }
                starts.push(at);
                let d = &index.doc_indices;
                if d.first().copied().unwrap_or(1) != 0 {
                    bail!("{idx_name}: the document indices do not start with 0");
                }
                let mut docs = Vec::with_capacity(d.len().saturating_sub(1));
                for (i, w) in d.windows(2).enumerate() {
                    if w[1] < w[0] || w[1] as usize >= starts.len() {
                        bail!(
                            "{idx_name}: document index {} ({}) decreases or exceeds the {} sequences",
                            i + 1,
                            w[1],
                            starts.len() - 1
                        );
                    }
                    docs.push((starts[w[0] as usize], starts[w[1] as usize]));
                }
                (0, elem, Layout::Indexed(docs))
            }
            ShardKind::Datatrove => {
                let idx_path = shard.index_path().expect("datatrove has an index");
                let idx_name = idx_path.display().to_string();
                let idx = map_file(&idx_path)?;
                if idx.len() % 8 != 0 {
                    bail!(
                        "{idx_name}: {} bytes is not a whole number of u64 ends",
                        idx.len()
                    );
                }
                let ends: Vec<u64> = idx
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                let total = ends.last().copied().unwrap_or(0);
                let elem = match (total, data.len() as u64) {
                    (0, 0) => Elem::U16,
                    (t, b) if b == 2 * t => Elem::U16,
                    (t, b) if b == 4 * t => Elem::U32,
                    (t, b) => bail!(
                        "{name} is {b} bytes but {idx_name} ends at token {t}: neither uint16 nor \
                         uint32 fits (truncated .ds, or an index of another file?)"
                    ),
                };
                let mut docs = Vec::with_capacity(ends.len());
                let mut prev = 0u64;
                for (i, &e) in ends.iter().enumerate() {
                    if e < prev {
                        bail!("{idx_name}: document end {i} ({e}) is before the previous ({prev})");
                    }
                    docs.push((prev as usize, e as usize));
                    prev = e;
                }
                (0, elem, Layout::Indexed(docs))
            }
        };
        let len = (data.len() - offset) / elem.size();
        Ok(OpenShard {
            name,
            data,
            offset,
            elem,
            len,
            layout,
            released: AtomicUsize::new(0),
        })
    }

    /// Bytes per element.
    pub fn elem_size(&self) -> usize {
        self.elem.size()
    }

    /// Releases the mapped bytes before element `element` not released yet (see
    /// [`Bytes::release`]).
    pub fn release_before(&self, element: usize) {
        let start = self.released.load(Ordering::Relaxed);
        let end = self.offset + element * self.elem.size();
        self.released
            .store(self.data.release(start, end), Ordering::Relaxed);
    }

    /// Iterates over the shard's documents (EOD rule applied, ids checked).
    pub fn docs(&self, eod: u32, max_id: u32) -> ShardDocs<'_> {
        ShardDocs::new(Held::Borrowed(self), eod, max_id)
    }

    /// [`OpenShard::docs`] owning the shard, for a cursor that outlives the caller's borrow.
    pub fn into_docs(self, eod: u32, max_id: u32) -> ShardDocs<'static> {
        ShardDocs::new(Held::Owned(Box::new(self)), eod, max_id)
    }

    fn decode(&self, start: usize, end: usize, out: &mut Vec<u32>) -> Result<()> {
        decode(&self.data[self.offset..], self.elem, start, end, out).map_err(|i| {
            anyhow::anyhow!(
                "{}: token {i} is not a valid id for {:?} data (negative, fractional or too large)",
                self.name,
                self.elem
            )
        })
    }
}

/// A shard borrowed ([`OpenShard::docs`]) or owned ([`OpenShard::into_docs`]).
enum Held<'a> {
    Borrowed(&'a OpenShard),
    Owned(Box<OpenShard>),
}

impl std::ops::Deref for Held<'_> {
    type Target = OpenShard;
    fn deref(&self) -> &OpenShard {
        match self {
            Held::Borrowed(s) => s,
            Held::Owned(s) => s,
        }
    }
}

/// The documents of one shard: `(document index in the shard, ids ending with EOD)`.
pub struct ShardDocs<'a> {
    shard: Held<'a>,
    eod: u32,
    max_id: u32,
    /// Next document index.
    next: u64,
    /// Next element (separated layouts).
    pos: usize,
}

/// Elements decoded at a time while looking for the next separator.
const SCAN: usize = 1 << 16;

impl ShardDocs<'_> {
    fn new(shard: Held<'_>, eod: u32, max_id: u32) -> ShardDocs<'_> {
        ShardDocs {
            shard,
            eod,
            max_id,
            next: 0,
            pos: 0,
        }
    }

    /// The element after the last one read so far (every element before it has been read, when
    /// the index lists documents in file order, as Megatron and datatrove write them).
    pub fn position(&self) -> usize {
        match &self.shard.layout {
            Layout::Indexed(docs) => match self.next {
                0 => 0,
                n => docs.get(n as usize - 1).map_or(0, |d| d.1),
            },
            Layout::Separated => self.pos,
        }
    }

    /// Appends the next document's ids (EOD last) to `out` and returns its index in the shard, or
    /// `None` after the last document.
    pub fn next_doc(&mut self, out: &mut Vec<u32>) -> Result<Option<u64>> {
        let s = &*self.shard;
        let before = out.len();
        let start;
        match &s.layout {
            Layout::Indexed(docs) => {
                let Some(&(a, b)) = docs.get(self.next as usize) else {
                    return Ok(None);
                };
                start = a;
                s.decode(a, b, out)?;
                if out.len() == before || out.last() != Some(&self.eod) {
                    out.push(self.eod);
                }
            }
            Layout::Separated => {
                if self.pos >= s.len {
                    return Ok(None);
                }
                start = self.pos;
                loop {
                    let end = (self.pos + SCAN).min(s.len);
                    let scanned = out.len();
                    s.decode(self.pos, end, out)?;
                    if let Some(k) = out[scanned..].iter().position(|&t| t == self.eod) {
                        out.truncate(scanned + k + 1);
                        self.pos += k + 1;
                        break;
                    }
                    self.pos = end;
                    if end == s.len {
                        out.push(self.eod);
                        break;
                    }
                }
            }
        }
        let doc = &out[before..];
        if doc.iter().copied().max().unwrap_or(0) > self.max_id {
            if let Some(k) = doc.iter().position(|&t| t > self.max_id && t != self.eod) {
                bail!(
                    "{}: token {} (document {}) has id {}, outside the tokenizer's vocabulary \
                     (highest id {}); is this shard from another tokenizer?",
                    s.name,
                    start + k,
                    self.next,
                    doc[k],
                    self.max_id
                );
            }
        }
        let index = self.next;
        self.next += 1;
        Ok(Some(index))
    }
}

/// Parses a `.npy` header: returns the data offset, element type and element count. Accepts
/// format versions 1–3, 1-D little-endian (or byte-sized) integer arrays only.
fn parse_npy_header(b: &[u8]) -> Result<(usize, Elem, usize)> {
    if b.len() < 10 || !b.starts_with(NPY_MAGIC) {
        bail!("not a .npy file (bad magic)");
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (
            u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => bail!("unsupported .npy format version {v}"),
    };
    let header = b
        .get(start..start + hlen)
        .context("the .npy header is truncated")?;
    let header = std::str::from_utf8(header).context("the .npy header is not text")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}':"))
            .with_context(|| format!("the .npy header has no '{key}'"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("the .npy header's 'descr' is not a simple dtype string")?;
    let elem = match descr {
        "|u1" | "<u1" | "u1" => Elem::U8,
        "|i1" | "<i1" | "i1" => Elem::I8,
        "<u2" => Elem::U16,
        "<i2" => Elem::I16,
        "<u4" => Elem::U32,
        "<i4" => Elem::I32,
        "<u8" => Elem::U64,
        "<i8" => Elem::I64,
        d => bail!(
            "dtype {d:?} is not a little-endian integer type; token ids must be stored as \
             integers (e.g. np.uint16, np.uint32, np.int32, np.int64)"
        ),
    };
    let shape = field("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .context("the .npy header's 'shape' is not a tuple")?;
    let dims: Vec<&str> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if dims.len() != 1 {
        bail!(
            "shape ({shape}) has {} dimensions; token shards must be 1-D arrays (flatten them)",
            dims.len()
        );
    }
    let n: usize = dims[0]
        .trim_end_matches('L')
        .parse()
        .with_context(|| format!("bad .npy shape ({shape})"))?;
    Ok((start + hlen, elem, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers() {
        let h = |dict: &str| {
            let mut v = NPY_MAGIC.to_vec();
            v.extend([1, 0]);
            v.extend((dict.len() as u16).to_le_bytes());
            v.extend(dict.as_bytes());
            v
        };
        let dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (7,), }\n";
        let (o, e, n) = parse_npy_header(&h(dict)).unwrap();
        assert_eq!((o, e, n), (10 + dict.len(), Elem::U16, 7));
        let err = |d: &str| parse_npy_header(&h(d)).unwrap_err().to_string();
        assert!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }").contains("integer")
        );
        assert!(err("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }").contains("1-D"));
        assert!(
            err("{'descr': '>i4', 'fortran_order': False, 'shape': (3,), }").contains("integer")
        );
    }

    #[test]
    fn decode_checks_values() {
        let mut out = Vec::new();
        let data: Vec<u8> = [5i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode(&data, Elem::I32, 0, 2, &mut out), Err(1));
        let data: Vec<u8> = [5.0f32, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode(&data, Elem::F32, 0, 2, &mut out), Err(1));
        out.clear();
        assert_eq!(decode(&data, Elem::F32, 0, 1, &mut out), Ok(()));
        assert_eq!(out, vec![5]);
    }
}
