//! Runs the library pipeline in memory (no files): pack with the UtK shaper, then arrange.

use std::sync::OnceLock;
use utk::augment::{arrange, Window, WindowShaper};
use utk::config::AugmentConfig;
use utk::pack::{Packer, WindowPlan};
use utk::tokenize::{Encoder, EncoderOptions, SpecialTokens};

pub fn encoder() -> &'static Encoder {
    static ENC: OnceLock<Encoder> = OnceLock::new();
    ENC.get_or_init(|| {
        Encoder::load(&super::qwen(), &EncoderOptions::default()).expect("fixture tokenizer")
    })
}

/// Documents (document `i` has ordinal `i`) of the given lengths (EOD last) with ordinary ids drawn from `seed`.
pub fn random_docs(lengths: &[usize], seed: u64) -> Vec<Vec<u32>> {
    let eod = encoder().eod.id;
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    lengths
        .iter()
        .map(|&len| {
            let mut tokens: Vec<u32> = (0..len.max(1) - 1)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 33) % 6000) as u32
                })
                .collect();
            tokens.push(eod);
            tokens
        })
        .collect()
}

pub struct LibRun {
    pub plans: Vec<WindowPlan>,
    pub windows: Vec<Window>,
    pub specials: SpecialTokens,
    /// Whether the last window is the padded, incomplete one.
    pub padded_tail: bool,
}

pub fn run(cfg: &AugmentConfig, docs: &[Vec<u32>]) -> LibRun {
    let enc = encoder();
    let specials = SpecialTokens::resolve(enc, cfg.max_chunks(), &[], None).expect("specials");
    let shaper = WindowShaper::new(cfg, enc).expect("shaper");
    let mut packer = Packer::new(cfg.seq_len, shaper);
    let mut plans = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        packer.push_ids(i as u64, d, &mut plans).expect("push");
    }
    let tail = packer.finish();
    let padded_tail = tail.is_some();
    plans.extend(tail);
    let windows = plans
        .iter()
        .map(|p| {
            let mut w = arrange(p, cfg, &specials).expect("arrange");
            w.pad_to(cfg.seq_len, specials.pad);
            w
        })
        .collect();
    LibRun {
        plans,
        windows,
        specials,
        padded_tail,
    }
}
