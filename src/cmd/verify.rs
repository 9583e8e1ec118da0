//! `utk verify`: check an output directory, and with `--input` prove it against its input.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use utk::input::expand_inputs;
use utk::input::shards::{classify, InputFormat, Inputs};
use utk::output::reader::OutputReader;
use utk::tokenize::{sha256_file, Backend, Encoder, EncoderOptions};
use utk::verify::{verify, InputCheck, InputDocs};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// An output directory written by `utk augment`.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Re-read these inputs (the ones given to augment, in the same order: JSONL text, which is
    /// re-tokenized, or token shards) and check every document is in the windows exactly once,
    /// unaltered.
    #[arg(long, num_args = 1.., value_name = "INPUT")]
    pub input: Vec<String>,

    /// Layout of --input, as for augment: auto (detect shards by name and content, JSONL
    /// otherwise), jsonl, megatron, npy, datatrove, u16, u32.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,

    /// The tokenizer.json to re-tokenize with (default: the path in the manifest; its sha256 must
    /// match the manifest's).
    #[arg(short, long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,

    /// Problems listed in full (the rest are counted).
    #[arg(long, default_value_t = 10)]
    pub max_problems: usize,

    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

pub fn run(args: VerifyArgs, quiet: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let out = OutputReader::open(&args.output)?;
    let m = &out.manifest;
    let input = if args.input.is_empty() {
        None
    } else {
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
        let options = EncoderOptions {
            eod_token: None,
            eod_id: Some(m.tokenizer.eod.id),
            add_special_tokens: m.tokenizer.add_special_tokens,
            parse_special: m.tokenizer.parse_special,
            // The reference implementation, whatever backend augment used: an independent check.
            backend: Backend::Tokenizers,
        };
        let made_from_text = m.input.format == "jsonl";
        let docs = match classify(&args.input, args.input_format)? {
            Inputs::Text if made_from_text => InputDocs::Text {
                sources: expand_inputs(&args.input)?,
                text_key: m.input.text_key.clone(),
                skip_bad_lines: m.input.skip_bad_lines,
            },
            Inputs::Shards(shards) if !made_from_text => {
                for shard in &shards {
                    shard.check_sidecar(&path, &sha, m.tokenizer.eod.id)?;
                }
                InputDocs::Shards(shards)
            }
            Inputs::Text => bail!(
                "{} was made from token shards ({}) but --input is JSONL text: pass the shards \
                 it was made from{}",
                args.output.display(),
                m.input.format,
                if matches!(m.input.format.as_str(), "u16" | "u32") {
                    format!(" with --input-format {}", m.input.format)
                } else {
                    String::new()
                }
            ),
            Inputs::Shards(shards) => bail!(
                "{} was made from JSONL text but --input is token shards ({}): pass the text it \
                 was made from",
                args.output.display(),
                shards[0].name()
            ),
        };
        Some(InputCheck {
            encoder: Encoder::load(&path, &options)?,
            docs,
        })
    };
    let threads = super::shared::threads(args.threads)?;
    let pool = utk::pipeline::worker_pool(threads)?;
    let bar = utk::progress::count_bar(out.windows(), "windows", quiet);
    let report = pool.install(|| verify(&out, input.as_ref(), args.max_problems, &bar))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if report.problem_count > 0 {
        for p in &report.problems {
            eprintln!("utk verify: {p}");
        }
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
        let mut w = stdout.lock();
        let how = if report.untied_from_tokens {
            "untied from the tokens and matched to the sidecar"
        } else {
            "matched to the sidecar (backtracing off: knots alone cannot group pieces)"
        };
        writeln!(w, "utk verify: {} OK", args.output.display())?;
        writeln!(w, "  {} windows of {} tokens: layout, labels, knots, backtrace lists, chunk order and loss mask as documented", report.windows, m.seq_len)?;
        writeln!(w, "  {} pieces {how}", report.pieces)?;
        writeln!(
            w,
            "  {} documents complete, each exactly once and in order",
            report.documents_complete
        )?;
        if let Some(input) = &input {
            let how = if input.is_shards() {
                "read from the shards"
            } else {
                "re-tokenized from the input"
            };
            writeln!(
                w,
                "  {} documents {how} and equal token for token",
                report.documents_compared
            )?;
        }
        writeln!(w, "  {secs:.2} s")?;
    }
    Ok(())
}
