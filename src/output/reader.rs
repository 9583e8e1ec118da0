//! Opens a finished `augment` output for reading (tests, `inspect`, `verify`), refusing one that is
//! incomplete or whose files do not match its manifest.

use super::dir::MANIFEST;
use super::manifest::Manifest;
use super::megatron::{decode_idx, DType};
use super::provenance::{decode_doc, decode_span, DocRecord, DOC_BYTES, SPAN_BYTES};
use super::{DOCS, LOSS_MASK, SPANS, TOKENS};
use crate::augment::Span;
use crate::mapped::{map_file, Bytes};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub struct OutputReader {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub token_dtype: DType,
    tokens: Bytes,
    mask: Bytes,
    spans: Bytes,
    docs: Bytes,
}

impl OutputReader {
    pub fn open(dir: &Path) -> Result<OutputReader> {
        let mpath = dir.join(MANIFEST);
        if !mpath.is_file() {
            bail!(
                "{} has no {MANIFEST}: it is not a utk output, or the augment run that wrote it did not finish",
                dir.display()
            );
        }
        let manifest: Manifest = serde_json::from_slice(
            &std::fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?,
        )
        .with_context(|| format!("{} is not a utk manifest", mpath.display()))?;
        for f in &manifest.files {
            let path = dir.join(&f.path);
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
        let (w, l) = (manifest.windows, manifest.seq_len as u64);
        let mut dtypes = Vec::new();
        for (name, dtype_expected) in [(TOKENS, None), (LOSS_MASK, Some(DType::Uint8))] {
            let ipath = dir.join(format!("{name}.idx"));
            let index = decode_idx(
                &std::fs::read(&ipath)
                    .with_context(|| format!("cannot read {}", ipath.display()))?,
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
            if dtype_expected.is_some_and(|d| d != index.dtype) {
                bail!(
                    "{}: dtype {:?}, expected {:?}",
                    ipath.display(),
                    index.dtype,
                    dtype_expected
                );
            }
            let bpath = dir.join(format!("{name}.bin"));
            let blen = std::fs::metadata(&bpath)
                .with_context(|| format!("{} is missing", bpath.display()))?
                .len();
            if blen != index.bin_len() {
                bail!(
                    "{} is {blen} bytes, its .idx needs {}",
                    bpath.display(),
                    index.bin_len()
                );
            }
            dtypes.push(index.dtype);
        }
        let token_dtype = dtypes[0];
        if serde_json::to_value(token_dtype)?.as_str() != Some(manifest.token_dtype.as_str()) {
            bail!(
                "tokens.idx has dtype {token_dtype:?}, the manifest says {}",
                manifest.token_dtype
            );
        }
        let spans = map_file(&dir.join(SPANS))?;
        let docs = map_file(&dir.join(DOCS))?;
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
            token_dtype,
            tokens: map_file(&dir.join(format!("{TOKENS}.bin")))?,
            mask: map_file(&dir.join(format!("{LOSS_MASK}.bin")))?,
            spans,
            docs,
            manifest,
        })
    }

    pub fn windows(&self) -> u64 {
        self.manifest.windows
    }

    /// The token ids of window `w`.
    pub fn window_tokens(&self, w: u64) -> Vec<u32> {
        let l = self.manifest.seq_len;
        let size = self.token_dtype.size();
        let bytes = &self.tokens[w as usize * l * size..(w as usize + 1) * l * size];
        match size {
            2 => bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        }
    }

    /// The loss mask of window `w`.
    pub fn window_mask(&self, w: u64) -> &[u8] {
        let l = self.manifest.seq_len;
        &self.mask[w as usize * l..(w as usize + 1) * l]
    }

    /// Every provenance span, in file order (window, then placement).
    pub fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.spans
            .chunks_exact(SPAN_BYTES)
            .map(|b| decode_span(b.try_into().expect("32 bytes")))
    }

    /// Every input document's record, in stream order.
    pub fn docs(&self) -> impl Iterator<Item = DocRecord> + '_ {
        self.docs
            .chunks_exact(DOC_BYTES)
            .map(|b| decode_doc(b.try_into().expect("24 bytes")))
    }
}
