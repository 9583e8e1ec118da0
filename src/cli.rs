//! The command line: clap types only. Doc comments are the help text.

use crate::cmd::augment::AugmentArgs;
use crate::cmd::inspect::InspectArgs;
use crate::cmd::merge::MergeArgs;
use crate::cmd::tokenize::TokenizeArgs;
use crate::cmd::verify::VerifyArgs;
use clap::{Parser, Subcommand};

/// Prepare long-context pretraining data with the Untie-the-Knots (UtK) augmentation.
#[derive(Parser, Debug)]
#[command(name = "utk", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Hide the progress bar and the summary.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tokenize, pack and augment documents into training windows of exactly --seq-len tokens.
    Augment(Box<AugmentArgs>),
    /// Show one window decoded with its structure visible, or the output's summary.
    Inspect(InspectArgs),
    /// Check an output: files, structure, loss mask, provenance, and (with --input) every token.
    Verify(VerifyArgs),
    /// Tokenize documents once into a Megatron indexed dataset (PREFIX.bin/.idx), one sequence
    /// per document, EOD appended; `utk augment PREFIX` reads it back.
    Tokenize(Box<TokenizeArgs>),
    /// Join the parts of a run (OUT/part-IIIII-of-NNNNN/, from --num-shards) into one output, or
    /// print Megatron's --data-path list naming them.
    Merge(MergeArgs),
}
