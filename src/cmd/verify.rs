//! `utk verify`: check an output directory, and with `--input` prove it against its input.

use super::args::{choice, threads, tokenizer_cache};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use utk::input::InputFormat;
use utk::output::reader::{read_manifest, OutputReader};
use utk::tokenize::{sha256_file, Backend};
use utk::verify::{check_files, verify, InputCheck, Problem, Report, Retokenize};
use utk::workers::worker_pool;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// An output directory written by `utk augment`.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Re-read these inputs (the ones given to augment, in the same order: JSONL text, which is
    /// re-tokenized, or token shards) and check every document is in the windows exactly once,
    /// unaltered. For one part of a run (--num-shards), give the whole run's inputs: the part's
    /// share is selected again.
    #[arg(long, num_args = 1.., value_name = "INPUT")]
    pub input: Vec<String>,

    /// Layout of --input, as for augment: auto (detect shards by name and content, JSONL
    /// otherwise), jsonl, megatron, npy, datatrove, u16, u32.
    #[arg(long, value_parser = choice::<InputFormat>(), default_value = "auto")]
    pub input_format: InputFormat,

    /// The tokenizer.json to re-tokenize with (default: the path in the manifest; its sha256 must
    /// match the manifest's).
    #[arg(short, long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,

    /// Which implementation re-tokenizes --input text: tokenizers (the reference Hugging Face
    /// crate: an independent check of the ids augment wrote, whatever backend augment used, at
    /// the crate's speed), fast (utk's own encoder, at augment's speed: checks that every document
    /// is in the windows once and unaltered, trusting the encoder's ids, which utk's differential
    /// tests check against the crate), or auto (fast when it supports the file, else the crate).
    #[arg(long, value_parser = choice::<Backend>(), default_value = "tokenizers", value_name = "BACKEND")]
    pub tokenizer_backend: Backend,

    /// Where the fast encoder keeps the tables it reads from a tokenizer.json, or `off`; as for
    /// augment (default: $UTK_TOKENIZER_CACHE, else $XDG_CACHE_HOME/utk/tokenizers, else
    /// ~/.cache/utk/tokenizers).
    #[arg(long, value_name = "DIR")]
    pub tokenizer_cache: Option<PathBuf>,

    /// Problems listed in full (the rest are counted).
    #[arg(long, default_value_t = 10)]
    pub max_problems: usize,

    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

pub fn run(args: VerifyArgs, quiet: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let pool = worker_pool(threads(args.threads)?)?;
    // The checksums first: a damaged file is named even when it can no longer be opened.
    let manifest = read_manifest(&args.output)?;
    let files = pool.install(|| check_files(&args.output, &manifest))?;
    let out = OutputReader::open(&args.output).inspect_err(|_| print_problems(&files.problems))?;
    let input = match args.input.is_empty() {
        true => None,
        false => Some(resolve_input(&out, &args)?),
    };
    let bar = utk::progress::count_bar(out.windows(), "windows", quiet);
    let report = pool.install(|| verify(&out, input.as_ref(), args.max_problems, &bar))?;
    let report = report.with_files(files, args.max_problems);
    bar.finish_and_clear();
    if report.problem_count > 0 {
        print_problems(&report.problems);
        let more = report.problem_count - report.problems.len() as u64;
        if more > 0 {
            eprintln!("utk verify: … and {more} more problems");
        }
        bail!(
            "{} FAILED verification: {} problems",
            args.output.display(),
            report.problem_count
        );
    }
    if !quiet {
        let stdout = std::io::stdout();
        print_report(&out, &report, input.as_ref(), start, &mut stdout.lock())?;
    }
    Ok(())
}

fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("utk verify: {p}");
    }
}

/// `--input` with the tokenizer it is read with: `--tokenizer`, else the manifest's, whose
/// sha256 must be the manifest's.
fn resolve_input(out: &OutputReader, args: &VerifyArgs) -> Result<InputCheck> {
    let m = &out.manifest;
    let path = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| PathBuf::from(&m.tokenizer.path));
    let sha = sha256_file(&path).with_context(|| {
        format!(
            "cannot read the tokenizer {} (pass --tokenizer)",
            path.display()
        )
    })?;
    if sha != m.tokenizer.sha256 {
        bail!("--tokenizer {}: sha256 {sha} differs from the manifest's {} (the output was made with another tokenizer)", path.display(), m.tokenizer.sha256);
    }
    let retokenize = Retokenize {
        backend: args.tokenizer_backend,
        cache: tokenizer_cache(args.tokenizer_cache.clone()),
    };
    InputCheck::resolve(out, &args.input, args.input_format, &path, retokenize).context("--input")
}

fn print_report(
    out: &OutputReader,
    report: &Report,
    input: Option<&InputCheck>,
    start: std::time::Instant,
    w: &mut impl Write,
) -> Result<()> {
    let cip = out.manifest.config.method == utk::config::Method::Cip;
    let how = if report.untied_from_tokens {
        "untied from the tokens and matched to the sidecar"
    } else if cip {
        "matched to the sidecar (CIP: chunks back to back, nothing inserted, each piece's in order)"
    } else {
        "matched to the sidecar (backtracing off: knots alone cannot group pieces)"
    };
    writeln!(w, "utk verify: {} OK", out.dir.display())?;
    let files = &report.files;
    if files.matched > 0 {
        writeln!(w, "  {} files match their CRC-32C checksums", files.matched)?;
    }
    if !files.unchecked.is_empty() {
        writeln!(
            w,
            "  not checked against a checksum (the manifest records none; written by an older \
             utk): {}",
            files.unchecked.join(", ")
        )?;
    }
    writeln!(w, "  {} windows of {} tokens: layout, labels, knots, backtrace lists, chunk order and loss mask as documented", report.windows, out.manifest.seq_len)?;
    writeln!(w, "  {} pieces {how}", report.pieces)?;
    writeln!(
        w,
        "  {} documents complete, each exactly once and in order",
        report.documents_complete
    )?;
    if report.doc_lens {
        writeln!(
            w,
            "  doc_lens: every window's segment lengths are its chunks' and its pad's"
        )?;
    }
    if let Some(input) = input {
        let compared = report.documents_compared;
        match input.input.is_shards() {
            true => writeln!(
                w,
                "  {compared} documents read from the shards and equal token for token"
            )?,
            false => writeln!(
                w,
                "  {compared} documents re-tokenized from the input and equal token for token \
                 (by {})",
                match input.encoder.backend() {
                    "tokenizers" => "the tokenizers crate, independently of utk's encoder",
                    _ => "utk's fast encoder, as augment encodes",
                }
            )?,
        }
    }
    writeln!(w, "  {:.2} s", start.elapsed().as_secs_f64())?;
    Ok(())
}
