//! OLMo-core numpy token files: `tokens.olmo.bin` and `loss_mask.olmo.bin`.
//!
//! OLMo-core's fixed-sequence-length numpy dataset reads a token file as a headerless
//! little-endian array of unsigned ids (uint16 or uint32, given in its config) and makes instance
//! `i` of tokens `[i·L, (i+1)·L)`; with `label_mask_paths` it reads a parallel `np.bool_` array,
//! one byte per token, where `label_mask[j]` says whether token `j` is a target. That is utk's
//! loss mask exactly, so the files are the windows back to back, and OLMo-core instance `i` is
//! window `i` when its `sequence_length` is utk's `seq_len`.
//!
//! OLMo-core's own files carry a `.npy` suffix though they have no numpy header; utk names them
//! `.olmo.bin` so that they are never mistaken for the real `.npy` files it also writes.

use super::array::RawArrayWriter;
use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::{WindowSink, LOSS_MASK, TOKENS};
use crate::codec::Dtype;
use anyhow::Result;

pub const TOKENS_FILE: &str = "tokens.olmo.bin";
pub const MASK_FILE: &str = "loss_mask.olmo.bin";
/// What the manifest calls these files' format.
pub const FORMAT: &str = "olmo-numpy";

pub struct OlmoSink {
    tokens: RawArrayWriter<Staged>,
    mask: RawArrayWriter<Staged>,
}

impl OlmoSink {
    pub fn create(dir: &mut OutputDir, token_dtype: Dtype) -> Result<Self> {
        Ok(OlmoSink {
            tokens: RawArrayWriter::new(dir.create(TOKENS_FILE)?, token_dtype),
            mask: RawArrayWriter::new(dir.create(MASK_FILE)?, Dtype::Bool),
        })
    }
}

impl WindowSink for OlmoSink {
    fn write_window(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()> {
        self.tokens.append(tokens)?;
        self.mask.append(mask)
    }

    fn finish(self: Box<Self>, _dir: &mut OutputDir) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        for (path, role, writer) in [
            (TOKENS_FILE, TOKENS, self.tokens),
            (MASK_FILE, LOSS_MASK, self.mask),
        ] {
            let dtype = writer.dtype();
            let file = writer.finish()?;
            files.push(FileInfo::new(
                path,
                role,
                FORMAT,
                Some(dtype),
                file.get_ref().metadata()?.len(),
            ));
        }
        Ok(files)
    }
}
