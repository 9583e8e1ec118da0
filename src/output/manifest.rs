//! `manifest.json`: what was run, on what, with which ids, and what came out. Written last.

use super::Format;
use crate::codec::Dtype;
use crate::config::AugmentConfig;
use crate::record::BadLines;
use crate::tokenize::EodChoice;
use crate::upsample::UpsampleReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: &str = "utk-output";
pub const FORMAT_VERSION: u32 = 1;

/// What the loss mask means, stated in every manifest.
pub const MASK_SEMANTICS: &str = "token-is-target: loss_mask[i] = 1 means token i of the window is a training \
target (the model is trained to predict it from tokens < i); 0 means it is not (chunk labels with <CL> </CL>, \
knots, <S>, pad). OLMo-core's label_mask means the same. Megatron masks by input position: its loss_mask[i] \
= loss_mask[i+1] (see examples/megatron_utk_dataset.py).";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub command: Vec<String>,
    pub config: AugmentConfig,
    pub input: InputInfo,
    pub tokenizer: TokenizerInfo,
    /// Role key (`eod`, `pad`, `cl`, `cl_end`, `bt`, `bt_sep`, `bt_end`, `tail1`, `head1`, …) → id.
    pub special_tokens: BTreeMap<String, u32>,
    /// One past the highest id that can appear in the output.
    pub vocab_size: u64,
    /// The dtype of the token ids in the first format written (megatron, olmo, npy in that order);
    /// each file's own dtype is in `files`.
    pub token_dtype: String,
    /// The formats written (`megatron`, `olmo`, `npy`). Absent in manifests of utk before formats
    /// were selectable, which wrote Megatron only.
    #[serde(default = "megatron_only")]
    pub formats: Vec<Format>,
    pub seq_len: usize,
    pub windows: u64,
    pub loss_mask: MaskInfo,
    pub files: Vec<FileInfo>,
    pub counts: Counts,
    /// CPU seconds by stage (absent in manifests of utk before 0.2, and in merged outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<StageSeconds>,
    /// The part of a run this output is (`--num-shards`/`--shard-index`, or a Slurm array task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<crate::part::PartRecord>,
    /// The parts a merged output joins (`utk merge`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<MergedPart>,
    /// `--upsample-long`: what was repeated and dropped, per source. Absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsample: Option<UpsampleReport>,
}

/// CPU seconds a run spent in each stage, and the cores one process can use by that account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageSeconds {
    pub read: f64,
    /// JSONL lines parsed in the worker pool (0 for other inputs, and before this was counted
    /// apart: the reader did it).
    #[serde(default)]
    pub parse: f64,
    pub tokenize: f64,
    pub pack: f64,
    pub augment: f64,
    pub write: f64,
    pub total: f64,
    /// `total` over the busiest sequential stage (read's one-thread share, pack, write): beyond
    /// about this many cores one process is no faster; run several parts per node instead.
    pub scales_to_cores: f64,
}

impl StageSeconds {
    /// `[read, parse, tokenize, pack, augment, write]`; `read_one_thread`: the part of `read`
    /// that one thread does (the rest runs on threads side by side).
    pub fn new(stages: [f64; 6], read_one_thread: f64) -> StageSeconds {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let [read, parse, tokenize, pack, augment, write] = stages;
        let total = stages.iter().sum::<f64>();
        let sequential = read_one_thread.min(read).max(pack).max(write).max(1e-9);
        StageSeconds {
            read: round(read),
            parse: round(parse),
            tokenize: round(tokenize),
            pack: round(pack),
            augment: round(augment),
            write: round(write),
            total: round(total),
            scales_to_cores: (total / sequential * 10.0).round() / 10.0,
        }
    }
}

/// One part of a merged output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedPart {
    /// The part's directory, as given to `utk merge`.
    pub path: String,
    pub windows: u64,
    pub documents: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputInfo {
    /// `jsonl`, `parquet`, or the token-shard layout(s): `megatron`, `datatrove`, `npy`, `u16`, `u32`.
    #[serde(default = "jsonl")]
    pub format: String,
    pub sources: Vec<String>,
    pub text_key: String,
    pub skip_bad_lines: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenizerInfo {
    pub path: String,
    pub sha256: String,
    pub max_known_id: u32,
    pub eod: EodChoice,
    pub add_special_tokens: bool,
    pub parse_special: bool,
    /// The implementation that computed the ids: `fast-bpe` or `tokenizers` (same ids).
    #[serde(default)]
    pub backend: String,
    /// What the fast encoder recognised, or why it was not used.
    #[serde(default)]
    pub backend_detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaskInfo {
    pub semantics: String,
    pub dtype: String,
}

/// One file of the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Relative to the output directory.
    pub path: String,
    /// `tokens`, `loss_mask`, `provenance-spans` or `provenance-docs`.
    pub role: String,
    /// `megatron-bin`, `megatron-idx`, `olmo-numpy`, `npy` or `utk-provenance-v1`.
    pub format: String,
    /// The element type of the array (for a Megatron `.idx`, of its `.bin`); none for records.
    #[serde(default)]
    pub dtype: Option<Dtype>,
    pub bytes: u64,
    /// CRC-32C of the whole file, 8 hex digits (see `output/checksum.rs`). Absent in manifests
    /// of utk before checksums were recorded: `verify` then says the files are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
}

impl FileInfo {
    pub fn new(path: &str, role: &str, format: &str, dtype: Option<Dtype>, bytes: u64) -> Self {
        FileInfo {
            path: path.into(),
            role: role.into(),
            format: format.into(),
            dtype,
            bytes,
            crc32c: None,
        }
    }
}

fn megatron_only() -> Vec<Format> {
    vec![Format::Megatron]
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub documents: u64,
    /// Tokens of the input documents, EOD included.
    pub input_tokens: u64,
    /// Tokens written (windows × seq_len).
    pub output_tokens: u64,
    /// Markup tokens added by the augmentation.
    pub inserted_tokens: u64,
    pub pad_tokens: u64,
    /// Tokens of the final incomplete window dropped by `--tail drop`.
    pub dropped_tokens: u64,
    pub pieces: u64,
    /// Chunk count → pieces (`"1"` = not split).
    pub pieces_by_chunks: BTreeMap<String, u64>,
    pub blank_lines: u64,
    pub bad_lines: BadLines,
    pub input_bytes: u64,
}

impl Counts {
    /// Inserted tokens as a percentage of input tokens.
    pub fn overhead_percent(&self) -> f64 {
        if self.input_tokens == 0 {
            0.0
        } else {
            100.0 * self.inserted_tokens as f64 / self.input_tokens as f64
        }
    }
}

fn jsonl() -> String {
    "jsonl".into()
}
