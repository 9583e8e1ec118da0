//! `utk tokenize`: text → a Megatron indexed dataset (`PREFIX.bin`/`.idx` + `PREFIX.json`), so a
//! corpus is tokenized once and augmented many times (`utk augment PREFIX`).

use super::args::{threads, EncodeArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use utk::input::{Input, InputFormat};
use utk::pretokenize::{run as run_job, TokenizeJob};
use utk::tokenize::Encoder;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// JSONL inputs (plain, .gz or .zst): files, directories, glob patterns, or - for standard input;
    /// or parquet files (detected by content; the text column is --text-key).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Output prefix: writes PREFIX.bin, PREFIX.idx and PREFIX.json.
    #[arg(short, long, value_name = "PREFIX")]
    pub output: PathBuf,

    /// The model's Hugging Face tokenizer.json.
    #[arg(short, long, value_name = "FILE")]
    pub tokenizer: PathBuf,
    #[command(flatten)]
    pub encode: EncodeArgs,

    /// Worker threads for tokenizing (default: all cores). Does not change output.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,

    /// Overwrite existing PREFIX.bin/.idx/.json.
    #[arg(long)]
    pub force: bool,
}

impl TokenizeArgs {
    fn resolve(self) -> Result<TokenizeJob> {
        // Auto: parquet is detected by its magic; token shards are refused by the run.
        let input = Input::resolve(&self.inputs, InputFormat::Auto, self.encode.text())?;
        let options = self.encode.options();
        let encoder = Encoder::load(&self.tokenizer, &options)?;
        let threads = threads(self.threads)?;
        if self.output.as_os_str().is_empty() || self.output.is_dir() {
            bail!(
                "--output {} must be a prefix (PREFIX.bin and PREFIX.idx are written), not a directory",
                self.output.display()
            );
        }
        Ok(TokenizeJob {
            input,
            encoder,
            prefix: self.output,
            force: self.force,
            threads,
            command: std::env::args().collect(),
        })
    }
}

pub fn run(args: TokenizeArgs, quiet: bool) -> Result<()> {
    let job = args.resolve()?;
    let bar = utk::progress::bytes_bar(job.input.size(), quiet);
    let s = run_job(&job, &bar)
        .with_context(|| format!("tokenize into {} failed", job.path("bin").display()))?;
    bar.finish_and_clear();
    if !quiet {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        println!(
            "utk tokenize: {} documents, {} tokens ({}, EOD {}) in {}",
            s.documents,
            s.tokens,
            s.dtype.name(),
            s.eod.id,
            job.path("bin").display()
        );
        println!(
            "  skipped        {} blank lines, {} bad lines",
            s.blank_lines, s.bad_lines.count
        );
        for ex in &s.bad_lines.examples {
            println!("    skipped: {ex}");
        }
        println!(
            "  throughput     {:.2} s, {:.2} M tokens/s, {:.1} MB/s of text, {} threads",
            secs,
            s.tokens as f64 / secs / 1e6,
            s.input_bytes as f64 / secs / 1e6,
            job.threads
        );
    }
    Ok(())
}
