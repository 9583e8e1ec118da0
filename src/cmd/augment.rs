//! `utk augment`: arguments → a validated [`AugmentJob`] → run → summary.

use super::args::{choice, threads, EncodeArgs};
use super::parts::{part_dir, should_run, PartArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use utk::choice::Choice;
use utk::codec::Dtype;
use utk::config::{parse_seq_len, AugmentConfig, ChunkDist, Chunking, Method, Order, Tail};
use utk::input::shards::Tokenization;
use utk::input::{Input, InputFormat};
use utk::output::dir::MANIFEST;
use utk::output::stream::is_broken_pipe;
use utk::output::{normalize_formats, Format};
use utk::part::{Part, PartRecord};
use utk::pipeline::{planned_manifest, run as run_job, AugmentJob, Summary};
use utk::tokenize::{Encoder, SpecialTokens};
use utk::upsample::Upsample;

#[derive(Args, Debug)]
pub struct AugmentArgs {
    /// JSONL inputs (plain, .gz or .zst, detected by content): files, directories (read
    /// recursively in sorted order), glob patterns, or - for standard input. Or token shards:
    /// Megatron PREFIX (or PREFIX.bin with PREFIX.idx), datatrove X.ds, .npy, raw u16/u32.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Input layout: auto (detect shards by name and content, JSONL otherwise), jsonl, megatron,
    /// npy, datatrove, u16, u32 (raw little-endian ids, documents separated by the EOD id).
    #[arg(long, value_parser = choice::<InputFormat>(), default_value = "auto")]
    pub input_format: InputFormat,

    /// Output directory (created; refused if not empty unless --force), or - to write the windows
    /// to standard output as JSON lines {"input_ids": [...], "loss_mask": [...]} (no files, no
    /// provenance or manifest; --format does not apply; the summary goes to standard error).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    /// The model's Hugging Face tokenizer.json.
    #[arg(short, long, value_name = "FILE")]
    pub tokenizer: PathBuf,

    /// Window length in tokens: 131072, 128k, 192k, …
    #[arg(short = 'L', long, default_value = "128k", value_parser = parse_seq_len)]
    pub seq_len: usize,

    /// Seed of every random decision; the same seed gives the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// utk, the plain-packing baseline (concatenate and cut, no markup), or cip (plain packing's
    /// windows with each piece split into chunks and the chunks interleaved, in order per piece).
    #[arg(long, value_parser = choice::<Method>(), default_value = "utk")]
    pub method: Method,

    /// Probability that a piece is split into chunks (default 0.8, the paper's better setting;
    /// 1 with --method cip).
    #[arg(long, value_name = "P")]
    pub split_prob: Option<f64>,

    /// Distribution of the chunk count of a split piece, COUNT:WEIGHT,… (default 2:0.5,3:0.5;
    /// 2 with --method cip).
    #[arg(long, value_name = "DIST")]
    pub chunks: Option<ChunkDist>,

    /// Where split points go: uniform (random, respecting --min-chunk-tokens), equal, or fixed
    /// (chunks of --chunk-tokens, the paper's "1K chunks").
    #[arg(long, value_parser = choice::<Chunking>(), default_value = "uniform")]
    pub chunking: Chunking,

    /// Chunk length for --chunking fixed.
    #[arg(long, default_value_t = 1024)]
    pub chunk_tokens: usize,

    /// No chunk is shorter than this; a piece too short for the drawn count gets fewer chunks.
    #[arg(long, default_value_t = 32)]
    pub min_chunk_tokens: usize,

    /// Characters of a chunk label ([A-Za-z0-9]).
    #[arg(long, default_value_t = 6)]
    pub label_len: usize,

    /// preserve: a piece's chunks keep their order after the shuffle; shuffle: full shuffle.
    #[arg(long, value_parser = choice::<Order>(), default_value = "preserve")]
    pub order: Order,

    /// Do not append the backtracing list (<S> l1 <s> l2 … </S>) after a split piece.
    #[arg(long)]
    pub no_backtrace: bool,

    /// The last, incomplete window: pad it (pad token, mask 0) or drop it.
    #[arg(long, value_parser = choice::<Tail>(), default_value = "pad")]
    pub tail: Tail,

    /// Map a role to an existing special token or id: ROLE=TOKEN or ROLE=ID (roles: pad, cl,
    /// cl_end, bt, bt_sep, bt_end, tail1…, head1…). Repeatable.
    #[arg(long = "special-token", value_name = "ROLE=TOKEN")]
    pub special_tokens: Vec<String>,

    /// First id for utk's new special tokens (default: one past the highest id the tokenizer knows).
    #[arg(long, value_name = "ID")]
    pub special_base: Option<u32>,
    #[command(flatten)]
    pub encode: EncodeArgs,

    /// Worker threads for tokenizing and augmenting (default: all cores). Does not change output.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,

    /// Output formats, comma-separated or repeated: megatron (tokens.bin/.idx, loss_mask.bin/.idx),
    /// olmo (tokens.olmo.bin, loss_mask.olmo.bin for OLMo-core), npy (tokens.npy, loss_mask.npy),
    /// parquet (windows.parquet: input_ids and loss_mask lists, for Hugging Face datasets).
    #[arg(
        long = "format",
        value_parser = choice::<Format>(),
        value_delimiter = ',',
        default_value = "megatron",
        value_name = "FORMAT"
    )]
    pub formats: Vec<Format>,

    /// Also write doc_lens.bin/.idx: each window's segment lengths (a document's part, or a CIP
    /// chunk; the trailing pad last), for intra-document attention masks. Plain and cip only.
    #[arg(long)]
    pub doc_boundaries: bool,

    /// Repeat documents of at least TOKENS tokens FACTOR times (copies spread through the run),
    /// dropping short documents of the same input file (or --upsample-source-key source) at
    /// random so that each source's share of the tokens is kept (the paper's Upsampling arm:
    /// 32768:5). Needs disk for one copy of the tokenized input in the output directory.
    #[arg(long, value_name = "TOKENS:FACTOR")]
    pub upsample_long: Option<Upsample>,

    /// With --upsample-long: a document's source is the value of this JSONL field (dots
    /// separate nested names, as in --text-key), not its input file; documents without it keep
    /// their input file as source. JSONL input only.
    #[arg(long, value_name = "FIELD")]
    pub upsample_source_key: Option<String>,

    /// Overwrite an existing output directory.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub parts: PartArgs,
}

impl AugmentArgs {
    fn config(&self) -> Result<AugmentConfig> {
        let cip = self.method == Method::Cip;
        let cfg = AugmentConfig {
            method: self.method,
            seq_len: self.seq_len,
            seed: self.seed,
            split_prob: self.split_prob.unwrap_or(if cip { 1.0 } else { 0.8 }),
            chunks: match &self.chunks {
                Some(c) => c.clone(),
                None if cip => "2".parse()?,
                None => AugmentConfig::default().chunks,
            },
            chunking: self.chunking,
            chunk_tokens: self.chunk_tokens,
            min_chunk_tokens: self.min_chunk_tokens,
            label_len: self.label_len,
            order: self.order,
            backtrace: !self.no_backtrace,
            tail: self.tail,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Everything that can fail before work starts fails here.
    fn resolve(self) -> Result<(AugmentJob, Option<Part>)> {
        let config = self.config()?;
        if self.doc_boundaries {
            utk::output::doc_lens::check_method(config.method)?;
        }
        let input = Input::resolve(&self.inputs, self.input_format, self.encode.text())?;
        let source_key = self.upsample_source_key.as_deref();
        utk::upsample::source_key_path(self.upsample_long, source_key, &input)?;
        let part = self.parts.part()?;
        let (input, part, output) = match part {
            None => (input, None, self.output.clone()),
            Some(_) if self.output.as_os_str() == "-" => bail!(
                "-o - streams windows only: a part (a part-IIIII-of-NNNNN directory) needs an \
                 output directory; give -o DIR (or unset the Slurm array variables)"
            ),
            Some(p) => {
                let (selected, sources) = input.select_part(&p)?;
                let record = PartRecord::new(&p, config.seed, input.names().len() as u32, sources);
                (selected, Some((p, record)), part_dir(&self.output, &p))
            }
        };
        let encoder = Encoder::load(&self.tokenizer, &self.encode.options())?;
        input.check_sidecars(&Tokenization {
            tokenizer: &self.tokenizer,
            sha256: encoder.sha256(),
            eod: encoder.eod.id,
            add_special_tokens: encoder.add_special_tokens(),
            parse_special: encoder.parse_special(),
        })?;
        if self.encode.parse_special && !self.special_tokens.is_empty() {
            bail!("--parse-special with --special-token would let text forge utk's markup; use one or the other");
        }
        let specials = SpecialTokens::resolve(
            &encoder,
            config.max_chunks(),
            &self.special_tokens,
            self.special_base,
        )?;
        let threads = threads(self.threads)?;
        let (part, record) = part.unzip();
        Ok((
            AugmentJob {
                config,
                input,
                encoder,
                specials,
                output,
                formats: normalize_formats(&self.formats),
                force: self.force,
                doc_boundaries: self.doc_boundaries,
                upsample: self.upsample_long,
                upsample_source_key: self.upsample_source_key,
                threads,
                command: std::env::args().collect(),
                part: record,
            },
            part,
        ))
    }
}

pub fn run(args: AugmentArgs, quiet: bool) -> Result<()> {
    let (mut job, part) = args.resolve()?;
    if let Some(p) = &part {
        let planned = serde_json::to_value(planned_manifest(&job))?;
        if !should_run(&job.output, MANIFEST, &planned, p, &mut job.force, quiet)? {
            return Ok(());
        }
    }
    let bar = utk::progress::bytes_bar(job.input.size(), quiet);
    let summary = match run_job(&job, &bar) {
        // The reader of `-o -` closed the pipe: its own status tells whether it failed.
        Err(e) if job.streams() && is_broken_pipe(&e) => {
            bar.finish_and_clear();
            return Ok(());
        }
        r => r.with_context(|| format!("augment into {} failed", job.output.display()))?,
    };
    bar.finish_and_clear();
    if !quiet && job.streams() {
        print_summary(&job, &summary, &mut std::io::stderr().lock())?;
    } else if !quiet {
        let stdout = std::io::stdout();
        print_summary(&job, &summary, &mut stdout.lock())?;
        if let Some(p) = &part {
            println!("  part           {}", p.describe());
        }
    }
    // The process is about to exit: freeing the tokenizer's tables string by string would take
    // longer (about 15 ms for Qwen3) than a whole small run's augmentation.
    std::mem::forget(job);
    Ok(())
}

fn print_summary(job: &AugmentJob, s: &Summary, w: &mut impl Write) -> std::io::Result<()> {
    let c = &s.counts;
    let eod = &job.encoder.eod;
    let chunks: Vec<String> = c
        .pieces_by_chunks
        .iter()
        .map(|(n, k)| format!("{n}: {k}"))
        .collect();
    let to = match job.streams() {
        true => "to standard output as JSON lines".to_string(),
        false => format!("in {}", shown_output(&job.output)),
    };
    writeln!(
        w,
        "utk augment: {} windows of {} tokens {to}",
        s.windows, job.config.seq_len,
    )?;
    writeln!(
        w,
        "  documents      {} ({} blank lines skipped, {} bad lines skipped)",
        c.documents, c.blank_lines, c.bad_lines.count
    )?;
    for ex in &c.bad_lines.examples {
        writeln!(w, "    skipped: {ex}")?;
    }
    writeln!(
        w,
        "  tokens in      {} (EOD {} = {:?}, by {})",
        c.input_tokens,
        eod.id,
        eod.token.as_deref().unwrap_or("?"),
        eod.rule
    )?;
    writeln!(
        w,
        "  tokenizer      {} ({})",
        job.encoder.backend(),
        job.encoder.backend_detail()
    )?;
    if let Some(note) = job.encoder.cache_note() {
        writeln!(w, "                 {note}")?;
    }
    writeln!(
        w,
        "  tokens out     {} ({} inserted = {:.2}% overhead, {} pad, {} dropped)",
        c.output_tokens,
        c.inserted_tokens,
        c.overhead_percent(),
        c.pad_tokens,
        c.dropped_tokens
    )?;
    writeln!(
        w,
        "  pieces         {} by chunk count {{{}}}",
        c.pieces,
        chunks.join(", ")
    )?;
    if !job.streams() {
        writeln!(
            w,
            "  token dtype    {} (vocabulary incl. utk's ids: {})",
            dtypes(&s.token_dtypes),
            job.vocab_size()
        )?;
    }
    writeln!(w, "  special ids    {}", special_map(&job.specials))?;
    if let Some(up) = &s.upsample {
        print_upsample(up, w)?;
    }
    print_timing(job, s, w)
}

/// The run's speed and where its CPU time went.
fn print_timing(job: &AugmentJob, s: &Summary, w: &mut impl Write) -> std::io::Result<()> {
    let c = &s.counts;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        w,
        "  throughput     {:.2} s, {:.2} M tokens/s in, {:.1} MB/s of text, {} threads",
        secs,
        c.input_tokens as f64 / secs / 1e6,
        c.input_bytes as f64 / secs / 1e6,
        job.threads
    )?;
    let cpu = &s.cpu;
    writeln!(
        w,
        "  cpu seconds    read {:.2}, parse {:.2}, tokenize {:.2}, pack {:.2}, augment {:.2}, \
         write {:.2} (one process scales to about {:.0} cores; beyond that run several parts per \
         node)",
        cpu.read, cpu.parse, cpu.tokenize, cpu.pack, cpu.augment, cpu.write, cpu.scales_to_cores
    )?;
    Ok(())
}

/// The output directory, and where it points when it is a symlink (the run wrote there).
fn shown_output(dir: &std::path::Path) -> String {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(dir) {
            Ok(real) => format!("{} (a symlink to {})", dir.display(), real.display()),
            Err(_) => dir.display().to_string(),
        },
        _ => dir.display().to_string(),
    }
}

/// `uint16 for megatron, olmo, npy`, or `int32 for megatron, uint32 for olmo, npy`.
fn dtypes(per_format: &[(Format, Dtype)]) -> String {
    let mut groups: Vec<(Dtype, Vec<&str>)> = Vec::new();
    for &(f, d) in per_format {
        match groups.iter_mut().find(|(g, _)| *g == d) {
            Some((_, names)) => names.push(f.name()),
            None => groups.push((d, vec![f.name()])),
        }
    }
    groups
        .iter()
        .map(|(d, names)| format!("{} for {}", d.name(), names.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<CL>=151669 </CL>=151670 … <T1>=… <H1>=…`, eliding the middle of long knot lists.
fn special_map(sp: &SpecialTokens) -> String {
    let roles = sp.roles();
    let shown: Vec<String> = roles
        .iter()
        .map(|(r, id)| format!("{}={id}", r.display()))
        .collect();
    if shown.len() <= 13 {
        return shown.join(" ");
    }
    format!(
        "{} … {} ({} roles, all in the manifest)",
        shown[..11].join(" "),
        shown[shown.len() - 2..].join(" "),
        shown.len()
    )
}

/// Per source: what `--upsample-long` repeated and dropped, and whether its share was kept (the
/// first few, [`utk::upsample::UpsampleReport::shown`]; all are in the manifest).
fn print_upsample(up: &utk::upsample::UpsampleReport, w: &mut impl Write) -> std::io::Result<()> {
    let per = match (up.source_key(), up.documents_without_field) {
        (Some(key), Some(n)) => format!(
            "per source (field {key:?}; {n} documents without it count under their input file)"
        ),
        _ => "per input file".to_string(),
    };
    writeln!(
        w,
        "  upsampling     documents of >= {} tokens x{}, {per}:",
        up.min_tokens, up.factor
    )?;
    let (shown, rest) = up.shown();
    for s in shown {
        let kept = match s.mixture_kept {
            true => "share kept",
            false => "WARNING: too few short documents to pay for the copies: its share grew",
        };
        let name = match (up.source_key(), s.without_field) {
            (None, _) => s.source.clone(),
            (Some(_), false) => format!("{:?}", s.source),
            (Some(_), true) => format!("{} (without the field)", s.source),
        };
        writeln!(
            w,
            "    {name}: {} long docs +{} tokens repeated, {} short docs -{} tokens dropped, {} -> {} tokens ({kept})",
            s.long_documents, s.repeated_tokens, s.dropped_documents, s.dropped_tokens, s.input_tokens, s.output_tokens
        )?;
    }
    if let Some((more, grew)) = rest {
        writeln!(
            w,
            "    … {more} more sources ({grew} of them with their share grown; all in the manifest)"
        )?;
    }
    Ok(())
}
