//! Opens a finished `augment` output for reading (tests, `inspect`, `verify`), refusing one that is
//! incomplete or whose files do not match its manifest. Tokens and mask are read from the first
//! format the output holds (megatron, olmo, npy), or from a chosen one with
//! [`OutputReader::open_format`], so every format can be checked the same way.

use super::dir::MANIFEST;
use super::manifest::Manifest;
use super::provenance::{decode_doc, decode_span, DOC_BYTES, SPAN_BYTES};
use super::{Format, DOCS, SPANS};
use crate::augment::Span;
use crate::choice::Choice;
use crate::codec::dtype::decode_at;
use crate::codec::megatron::decode_idx;
use crate::codec::npy::parse_npy_header;
use crate::codec::Dtype;
use crate::mapped::{map_file, map_open, Bytes};
use crate::record::DocRecord;
use anyhow::{bail, Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct OutputReader {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The format tokens and mask are read from.
    pub format: Format,
    pub token_dtype: Dtype,
    tokens: Array,
    mask: Array,
    spans: Bytes,
    docs: Bytes,
}

/// A `windows × seq_len` array in a file, from `offset` on.
struct Array {
    bytes: Bytes,
    offset: usize,
    dtype: Dtype,
    /// Where the pages given back by [`OutputReader::release_windows_before`] end.
    released: AtomicUsize,
}

impl OutputReader {
    /// Opens `dir`, reading tokens and mask from the first format it holds.
    pub fn open(dir: &Path) -> Result<OutputReader> {
        let manifest = read_manifest(dir)?;
        let format = *manifest
            .formats
            .iter()
            .min()
            .with_context(|| format!("{}: the manifest lists no format", dir.display()))?;
        let reader = Self::with_manifest(dir, manifest, format)?;
        if reader.token_dtype.name() != reader.manifest.token_dtype {
            bail!(
                "{}: the {} tokens are {}, the manifest says {}",
                dir.display(),
                format.name(),
                reader.token_dtype.name(),
                reader.manifest.token_dtype
            );
        }
        Ok(reader)
    }

    /// Opens `dir`, reading tokens and mask from `format`'s files.
    pub fn open_format(dir: &Path, format: Format) -> Result<OutputReader> {
        let manifest = read_manifest(dir)?;
        if !manifest.formats.contains(&format) {
            bail!(
                "{} holds no {} output (it has: {})",
                dir.display(),
                format.name(),
                manifest
                    .formats
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Self::with_manifest(dir, manifest, format)
    }

    fn with_manifest(dir: &Path, manifest: Manifest, format: Format) -> Result<OutputReader> {
        for f in &manifest.files {
            let path = inside(dir, &f.path)?;
            let len = std::fs::metadata(&path)
                .with_context(|| {
                    format!("{} is listed in the manifest but missing", path.display())
                })?
                .len();
            if len != f.bytes {
                bail!(
                    "{} is {len} bytes, the manifest says {}",
                    path.display(),
                    f.bytes
                );
            }
        }
        let (tokens_file, mask_file) = format.data_files();
        let (tokens, mask) = if format == Format::Parquet {
            parquet_arrays(dir, &manifest)?
        } else {
            (
                open_array(dir, &manifest, format, tokens_file)?,
                open_array(dir, &manifest, format, mask_file)?,
            )
        };
        if !matches!(mask.dtype, Dtype::Uint8 | Dtype::Bool) {
            bail!(
                "{}: mask dtype {}, expected one byte per token",
                dir.join(mask_file).display(),
                mask.dtype.name()
            );
        }
        let spans = map_file(&inside(dir, SPANS)?)?;
        let docs = map_file(&inside(dir, DOCS)?)?;
        if spans.len() % SPAN_BYTES != 0 || docs.len() % DOC_BYTES != 0 {
            bail!("{}: provenance files are truncated", dir.display());
        }
        if docs.len() / DOC_BYTES != manifest.counts.documents as usize {
            bail!(
                "{}: {} document records, the manifest says {}",
                dir.display(),
                docs.len() / DOC_BYTES,
                manifest.counts.documents
            );
        }
        Ok(OutputReader {
            dir: dir.to_path_buf(),
            token_dtype: tokens.dtype,
            format,
            tokens,
            mask,
            spans,
            docs,
            manifest,
        })
    }

    pub fn windows(&self) -> u64 {
        self.manifest.windows
    }

    /// Window `w` is the last of the output or, in a merged output, of one of its parts (where
    /// each part's last window may be padded).
    pub fn ends_part(&self, w: u64) -> bool {
        if w + 1 == self.windows() {
            return true;
        }
        let mut end = 0u64;
        self.manifest.parts.iter().any(|p| {
            end += p.windows;
            end == w + 1
        })
    }

    /// The token ids of window `w`.
    pub fn window_tokens(&self, w: u64) -> Vec<u32> {
        let l = self.manifest.seq_len;
        let t = &self.tokens;
        let bytes = &t.bytes[t.offset..];
        (w as usize * l..(w as usize + 1) * l)
            .map(|i| decode_at(bytes, t.dtype, i))
            .collect()
    }

    /// Tells the kernel that the token and mask pages of the windows before `w` will not be read
    /// again (`verify` reads windows in order), so memory does not grow with the output's size.
    /// Reading them again is still correct, only slower (see [`Bytes::release`]).
    pub fn release_windows_before(&self, w: u64) {
        for a in [&self.tokens, &self.mask] {
            let end = a.offset + w as usize * self.manifest.seq_len * a.dtype.size();
            let start = a.released.load(Ordering::Relaxed);
            a.released
                .store(a.bytes.release(start, end), Ordering::Relaxed);
        }
    }

    /// The loss mask of window `w`.
    pub fn window_mask(&self, w: u64) -> &[u8] {
        let l = self.manifest.seq_len;
        let m = &self.mask;
        &m.bytes[m.offset + w as usize * l..m.offset + (w as usize + 1) * l]
    }

    /// Every provenance span, in file order (window, then placement).
    pub fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.spans
            .chunks_exact(SPAN_BYTES)
            .map(|b| decode_span(b.try_into().expect("32 bytes")))
    }

    /// Spans `range` (indices into the sidecar), decoded.
    pub fn spans_in(&self, range: std::ops::Range<usize>) -> Vec<Span> {
        self.spans[range.start * SPAN_BYTES..range.end * SPAN_BYTES]
            .chunks_exact(SPAN_BYTES)
            .map(|b| decode_span(b.try_into().expect("32 bytes")))
            .collect()
    }

    /// Number of input documents recorded.
    pub fn doc_count(&self) -> usize {
        self.docs.len() / DOC_BYTES
    }

    /// Document `i`'s record.
    pub fn doc(&self, i: usize) -> Option<DocRecord> {
        // Indexes come from the sidecar: a corrupt one must not wrap around to a real record.
        let start = i.checked_mul(DOC_BYTES)?;
        self.docs
            .get(start..start.checked_add(DOC_BYTES)?)
            .map(|b| decode_doc(b.try_into().expect("24 bytes")))
    }

    /// Every input document's record, in stream order.
    pub fn docs(&self) -> impl Iterator<Item = DocRecord> + '_ {
        self.docs
            .chunks_exact(DOC_BYTES)
            .map(|b| decode_doc(b.try_into().expect("24 bytes")))
    }
}

/// The manifest of the output in `dir`, parsed.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let mpath = inside(dir, MANIFEST)?;
    if !mpath.is_file() {
        bail!(
            "{} has no {MANIFEST}: it is not a utk output, or the augment run that wrote it did not finish",
            dir.display()
        );
    }
    let m: Manifest = serde_json::from_slice(
        &std::fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?,
    )
    .with_context(|| format!("{} is not a utk manifest", mpath.display()))?;
    if m.seq_len == 0 {
        bail!("{}: seq_len is 0; not a utk manifest", mpath.display());
    }
    Ok(m)
}

/// `dir/name` with symlinks resolved, if `name` (a path read from a file in `dir`, not given by
/// the user) names a file inside `dir`: an absolute path, a `..` or a symlink that leads out of
/// the directory is refused, so a downloaded output cannot make utk read other files. A missing
/// file is the caller's to report.
pub fn inside(dir: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || rel.as_os_str().is_empty() {
        bail!(
            "{}: the manifest names {name:?}, which is not a file inside the directory (an \
             absolute path or ..); refusing to read it",
            dir.display()
        );
    }
    let path = dir.join(rel);
    let Ok(real) = std::fs::canonicalize(&path) else {
        return Ok(path);
    };
    let real_dir =
        std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    if !real.starts_with(&real_dir) {
        bail!(
            "{}: {name} resolves to {}, outside the directory; refusing to read it",
            dir.display(),
            real.display()
        );
    }
    Ok(real)
}

/// Maps one token or mask file of `format` and checks it holds exactly `windows × seq_len`
/// elements of the dtype its own header (Megatron `.idx`, `.npy`) or the manifest (OLMo) gives.
fn open_array(dir: &Path, m: &Manifest, format: Format, name: &str) -> Result<Array> {
    let path = inside(dir, name)?;
    let (w, l) = (m.windows, m.seq_len as u64);
    let listed = m
        .files
        .iter()
        .find(|f| f.path == name)
        .with_context(|| format!("the manifest of {} does not list {name}", dir.display()))?;
    let bytes = map_file(&path)?;
    let (dtype, offset) = match format {
        Format::Megatron => {
            let idx = Path::new(name).with_extension("idx");
            let idx = inside(dir, &idx.to_string_lossy())?;
            (megatron_dtype(&idx, w, l)?, 0)
        }
        Format::Olmo => (
            listed.dtype.with_context(|| {
                format!("the manifest gives no dtype for the headerless {name}")
            })?,
            0,
        ),
        Format::Npy => npy_layout(&path, &bytes, w, l)?,
        Format::Parquet => bail!("internal error: parquet is read by parquet_arrays"),
    };
    if listed.dtype.is_some_and(|d| d != dtype) {
        bail!(
            "{} holds {}, the manifest says {}",
            path.display(),
            dtype.name(),
            listed.dtype.map_or("?", Dtype::name)
        );
    }
    let need = w
        .checked_mul(l)
        .and_then(|n| n.checked_mul(dtype.size() as u64))
        .and_then(|n| n.checked_add(offset as u64));
    if need != Some(bytes.len() as u64) {
        let need = need.map_or_else(|| "more than 2^64 bytes".into(), |n| n.to_string());
        bail!(
            "{} is {} bytes; {w} windows of {l} {} need {need}",
            path.display(),
            bytes.len(),
            dtype.name()
        );
    }
    Ok(Array {
        bytes,
        offset,
        dtype,
        released: AtomicUsize::new(0),
    })
}

/// The windows of `windows.parquet`, decoded (parquet pages cannot be mapped) into two unnamed
/// temporary files that are then mapped: the output is never all in memory, and the pages
/// already checked are given back as for the other formats.
fn parquet_arrays(dir: &Path, m: &Manifest) -> Result<(Array, Array)> {
    let path = inside(dir, super::parquet::FILE)?;
    let scratch = || {
        tempfile::tempfile().with_context(|| {
            format!(
                "cannot create a temporary file in {} to decode {} (set TMPDIR to a directory \
                 with room for about 5 bytes per token)",
                std::env::temp_dir().display(),
                path.display()
            )
        })
    };
    let (tokens, mask) = (scratch()?, scratch()?);
    let (mut tw, mut mw) = (BufWriter::new(&tokens), BufWriter::new(&mask));
    let dtype = super::parquet::read_windows_into(&path, m.seq_len, &mut tw, &mut mw)?;
    tw.flush()?;
    mw.flush()?;
    drop((tw, mw));
    let mask_len = mask.metadata()?.len();
    if mask_len != m.windows * m.seq_len as u64 {
        bail!(
            "{} holds {} windows, the manifest says {}",
            path.display(),
            mask_len / m.seq_len.max(1) as u64,
            m.windows
        );
    }
    let array = |file: &std::fs::File, dtype| -> Result<Array> {
        Ok(Array {
            bytes: map_open(file, &path)?,
            offset: 0,
            dtype,
            released: AtomicUsize::new(0),
        })
    };
    Ok((array(&tokens, dtype)?, array(&mask, Dtype::Uint8)?))
}

/// The dtype of a Megatron `.bin`, from its `.idx`, which must index `w` sequences of `l`.
fn megatron_dtype(ipath: &Path, w: u64, l: u64) -> Result<Dtype> {
    let index = decode_idx(
        &std::fs::read(ipath).with_context(|| format!("cannot read {}", ipath.display()))?,
    )
    .with_context(|| format!("{} is damaged", ipath.display()))?;
    if index.lengths.len() as u64 != w {
        bail!(
            "{} holds {} sequences, the manifest says {w} windows",
            ipath.display(),
            index.lengths.len()
        );
    }
    if let Some(i) = index.lengths.iter().position(|&x| x as u64 != l) {
        bail!(
            "{}: sequence {i} has {} tokens, not seq_len {l}",
            ipath.display(),
            index.lengths[i]
        );
    }
    written(index.dtype, ipath)
}

/// The dtype and data offset of a `.npy` output of shape `(w, l)`.
fn npy_layout(path: &Path, bytes: &[u8], w: u64, l: u64) -> Result<(Dtype, usize)> {
    let h = parse_npy_header(bytes).with_context(|| format!("{} is damaged", path.display()))?;
    if h.fortran_order {
        bail!(
            "{} is damaged: the array is in Fortran order",
            path.display()
        );
    }
    if h.shape != [w, l] {
        bail!(
            "{} has shape {:?}, the manifest says ({w}, {l})",
            path.display(),
            h.shape
        );
    }
    Ok((written(h.dtype, path)?, h.data_offset))
}

/// `dtype`, if utk writes it.
fn written(dtype: Dtype, path: &Path) -> Result<Dtype> {
    if !Dtype::WRITTEN.contains(&dtype) {
        bail!(
            "{}: dtype {} is not one utk writes",
            path.display(),
            dtype.name()
        );
    }
    Ok(dtype)
}
