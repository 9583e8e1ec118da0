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

mod read;
mod recorded;

pub use read::{OpenShard, ShardDocs, ShardStream};
pub use recorded::{BinSum, Recorded, RecordedFile};

use super::InputFormat;
use crate::choice::Choice;
use crate::setting::{Setting, SettingError};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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
    /// Documents `start..end` only (one part's share of an indexed shard, see
    /// [`super::parts`]); the whole shard when `None`. Provenance still numbers documents from
    /// the shard's first.
    pub docs: Option<(u64, u64)>,
}

impl Shard {
    /// The name in errors, the manifest and provenance: the data file's path.
    pub fn name(&self) -> String {
        match self.docs {
            None => self.path.display().to_string(),
            Some((a, b)) => format!("{}[documents {a}..{b}]", self.path.display()),
        }
    }

    /// Bytes of the data file (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        std::fs::metadata(&self.path).ok().map(|m| m.len())
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
    /// Absent in records of utk before 0.1's `PREFIX.json` had them (then not checked).
    add_special_tokens: Option<bool>,
    parse_special: Option<bool>,
    /// The sizes and checksums of the `.bin` and `.idx` (absent before utk recorded them).
    #[serde(default)]
    files: Vec<RecordedFile>,
}

/// How the run makes ids, which a `utk tokenize` record of a shard must match.
pub struct Tokenization<'a> {
    pub tokenizer: &'a Path,
    pub sha256: &'a str,
    pub eod: u32,
    pub add_special_tokens: bool,
    pub parse_special: bool,
}

#[derive(serde::Deserialize)]
struct SidecarEod {
    id: u32,
    token: Option<String>,
}

impl Shard {
    /// Checks a Megatron shard against the `PREFIX.json` that `utk tokenize` wrote beside it, if
    /// there is one: ids made with another tokenizer file, or documents ended with another EOD,
    /// would otherwise be augmented as if they were this run's; so would ids made with the
    /// tokenizer's special tokens added, or special-token text parsed, when this run does not (or
    /// the other way round). Other JSON files are ignored.
    pub fn check_sidecar(&self, run: &Tokenization) -> Result<()> {
        let (tokenizer, sha256, eod) = (run.tokenizer, run.sha256, run.eod);
        let Some((path, side)) = self.sidecar()? else {
            return Ok(());
        };
        Recorded::new(path.clone(), &self.path, &side.files).check_sizes(&self.path)?;
        let (json, bin) = (path.display(), self.path.display());
        if side.tokenizer_sha256 != sha256 {
            return Err(SettingError::new()
                .text(format!(
                    "{bin} was tokenized with another tokenizer.json (sha256 {}, {}, per {json}) \
                     than ",
                    side.tokenizer_sha256, side.tokenizer
                ))
                .setting(Setting::Tokenizer)
                .text(format!(
                    " {} (sha256 {sha256}): its ids would be read with another vocabulary. Use \
                     the tokenizer it was made with; if the two files define the same tokens, \
                     move {json} aside to skip this check",
                    tokenizer.display()
                ))
                .into());
        }
        if side.eod.id != eod {
            return Err(SettingError::new()
                .text(format!(
                    "{bin} was tokenized with EOD id {} ({}, per {json}) but this run uses \
                     {eod}: pass ",
                    side.eod.id,
                    side.eod.token.as_deref().unwrap_or("?"),
                ))
                .setting(Setting::EodId)
                .text(format!(" {}", side.eod.id))
                .into());
        }
        for (theirs, ours, setting) in [
            (
                side.add_special_tokens,
                run.add_special_tokens,
                Setting::AddSpecialTokens,
            ),
            (side.parse_special, run.parse_special, Setting::ParseSpecial),
        ] {
            if theirs.is_some_and(|t| t != ours) {
                let with = |on: bool| if on { "with" } else { "without" };
                return Err(SettingError::new()
                    .text(format!(
                        "{bin} was tokenized {} ",
                        with(theirs == Some(true))
                    ))
                    .setting(setting)
                    .text(format!(
                        " (per {json}) but this run is {} it: its ids would not be this run's; \
                         run with the same setting, or tokenize the text again",
                        with(ours)
                    ))
                    .into());
            }
        }
        Ok(())
    }
}

impl Shard {
    /// The `PREFIX.json` that `utk tokenize` wrote beside this Megatron shard, if there is one
    /// (other JSON files are not ours and are ignored).
    fn sidecar(&self) -> Result<Option<(PathBuf, Sidecar)>> {
        if self.kind != ShardKind::Megatron {
            return Ok(None);
        }
        let path = self.path.with_extension("json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let value = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v["format"] == TOKENIZED_FORMAT => v,
            _ => return Ok(None), // not a record of ours
        };
        let side: Sidecar = serde_json::from_value(value).with_context(|| {
            format!(
                "{}: a damaged `utk tokenize` record of {}",
                path.display(),
                self.path.display()
            )
        })?;
        Ok(Some((path, side)))
    }

    /// What `PREFIX.json` records of this shard's files, to check them as they are read.
    pub fn recorded(&self) -> Result<Option<Recorded>> {
        Ok(self
            .sidecar()?
            .map(|(json, side)| Recorded::new(json, &self.path, &side.files)))
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The classified inputs of a run: text or token shards, never both.
pub(super) enum Inputs {
    Text,
    Shards(Vec<Shard>),
}

/// Classifies the command-line inputs. `X.bin`+`X.idx` (or the prefix `X`) is Megatron, `X.ds` +
/// `X.ds.index` is datatrove, a file starting with the `.npy` magic is `.npy`, and raw arrays need
/// `--input-format u16|u32`. Text inputs are left to [`super::expand_inputs`].
pub(super) fn classify(args: &[String], format: InputFormat) -> Result<Inputs> {
    if format == InputFormat::Jsonl {
        return Ok(Inputs::Text);
    }
    if format == InputFormat::Parquet && !args.iter().any(|a| a == "-") {
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
                docs: None,
            });
            continue;
        }
        if arg == "-" {
            if format != InputFormat::Auto {
                return Err(SettingError::new()
                    .text("standard input (-) can only be JSONL text, not ")
                    .setting(Setting::InputFormat)
                    .text(format!(" {}", format.name()))
                    .into());
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
    let shard = |kind, path: PathBuf| {
        Ok(Some(Shard {
            kind,
            path,
            docs: None,
        }))
    };
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
            return Err(SettingError::new()
                .text(format!("{}: ", p.display()))
                .setting(Setting::InputFormat)
                .text(" megatron needs PREFIX.bin with PREFIX.idx beside it (or the PREFIX)")
                .into());
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
            return Err(SettingError::new()
                .text(format!("{}: ", p.display()))
                .setting(Setting::InputFormat)
                .text(" datatrove needs X.ds with X.ds.index beside it")
                .into());
        }
    }
    let mut head = [0u8; 6];
    let is_npy = {
        use std::io::Read;
        let mut f =
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        f.read_exact(&mut head).is_ok() && head == crate::codec::npy::MAGIC[..]
    };
    if is_npy && matches!(format, InputFormat::Auto | InputFormat::Npy) {
        return shard(ShardKind::Npy, p.to_path_buf());
    }
    if format == InputFormat::Npy {
        bail!("{}: not a .npy file (no \\x93NUMPY magic)", p.display());
    }
    Ok(None)
}
