//! `utk tokenize`: text → a Megatron indexed dataset (`PREFIX.bin`/`.idx` + `PREFIX.json`), so a
//! corpus is tokenized once and augmented many times (`utk augment PREFIX`).

use super::args::{threads, EncodeArgs};
use super::parts::{part_dir, should_run, PartArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use utk::input::{Input, InputFormat};
use utk::part::{Part, PartRecord};
use utk::pretokenize::{planned_summary, run as run_job, TokenizeJob};
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
    /// With parts, --output names a directory: part I writes OUT/part-IIIII-of-NNNNN/tokens.bin,
    /// .idx and .json.
    #[command(flatten)]
    pub parts: PartArgs,
}

/// The prefix of a part's dataset inside its directory.
const PART_PREFIX: &str = "tokens";

impl TokenizeArgs {
    fn resolve(self) -> Result<(TokenizeJob, Option<Part>)> {
        // Auto: parquet is detected by its magic; token shards are refused by the run.
        let input = Input::resolve(&self.inputs, InputFormat::Auto, self.encode.text())?;
        let part = self.parts.part()?;
        let (input, record, prefix) = match &part {
            None => (input, None, self.output.clone()),
            Some(p) => {
                let (selected, sources) = input.select_part(p)?;
                let record = PartRecord::new(p, 0, input.names().len() as u32, sources);
                let prefix = part_dir(&self.output, p).join(PART_PREFIX);
                (selected, Some(record), prefix)
            }
        };
        let options = self.encode.options();
        let encoder = Encoder::load(&self.tokenizer, &options)?;
        let threads = threads(self.threads)?;
        if part.is_none() && (self.output.as_os_str().is_empty() || self.output.is_dir()) {
            bail!(
                "--output {} must be a prefix (PREFIX.bin and PREFIX.idx are written), not a directory",
                self.output.display()
            );
        }
        let job = TokenizeJob {
            input,
            encoder,
            prefix,
            force: self.force,
            threads,
            command: std::env::args().collect(),
            part: record,
        };
        Ok((job, part))
    }
}

pub fn run(args: TokenizeArgs, quiet: bool) -> Result<()> {
    let (mut job, part) = args.resolve()?;
    if let Some(p) = &part {
        let dir = job
            .prefix
            .parent()
            .expect("a part's prefix is in its directory");
        let planned = serde_json::to_value(planned_summary(&job))?;
        let record = format!("{PART_PREFIX}.json");
        if !should_run(dir, &record, &planned, p, &mut job.force, quiet)? {
            return Ok(());
        }
    }
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
        if let Some(note) = job.encoder.cache_note() {
            println!("  tokenizer      {note}");
        }
        println!(
            "  throughput     {:.2} s, {:.2} M tokens/s, {:.1} MB/s of text, {} threads",
            secs,
            s.tokens as f64 / secs / 1e6,
            s.input_bytes as f64 / secs / 1e6,
            job.threads
        );
        if let Some(p) = &part {
            println!("  part           {}", p.describe());
        }
    }
    // As in `augment`: the process is about to exit, and freeing the tokenizer's tables string
    // by string costs more than a small run's writing.
    std::mem::forget(job);
    Ok(())
}
