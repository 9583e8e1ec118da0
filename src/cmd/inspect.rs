//! `utk inspect`: one window decoded with its structure visible, its map, or the output's summary.

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;
use utk::inspect::summary::summary;
use utk::inspect::{render, window_view};
use utk::output::reader::OutputReader;
use utk::tokenize::SpecialTokens;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// An output directory written by `utk augment`.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// The window to show.
    #[arg(long, short, default_value_t = 0, conflicts_with = "random")]
    pub window: u64,

    /// Show a random window (chosen with --seed).
    #[arg(long)]
    pub random: bool,

    /// Seed for --random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// tokenizer.json to decode with (default: the one in the manifest).
    #[arg(short, long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,

    /// Colour: non-targets and markup highlighted on a terminal (NO_COLOR is honoured).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Characters of content shown per chunk; the middle of longer chunks is elided.
    #[arg(long, default_value_t = 400)]
    pub max_chars: usize,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,

    /// Token ids instead of decoded text (with --json: the window's ids and mask arrays).
    #[arg(long)]
    pub raw: bool,

    /// The output's configuration, counts, chunk-count histogram and knot-distance distribution.
    #[arg(long)]
    pub summary: bool,

    /// With --summary: draw the knot-distance histogram to FILE.svg.
    #[arg(long, value_name = "FILE.svg", requires = "summary")]
    pub plot: Option<PathBuf>,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let out = OutputReader::open(&args.output)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if args.summary {
        if let Some(plot) = &args.plot {
            if plot.extension().and_then(|e| e.to_str()) != Some("svg") {
                bail!(
                    "--plot {}: only .svg is supported (convert with e.g. rsvg-convert for PNG)",
                    plot.display()
                );
            }
        }
        summary(&out, &args.output, args.plot.as_deref(), &mut w)?;
    } else {
        window(&out, &args, &mut w)?;
    }
    w.flush()?;
    Ok(())
}

/// One window, as text or JSON.
fn window(out: &OutputReader, args: &InspectArgs, w: &mut impl Write) -> Result<()> {
    let index = if args.random {
        if out.windows() == 0 {
            bail!("{} has no windows", args.output.display());
        }
        rand_chacha::ChaCha8Rng::seed_from_u64(args.seed).random_range(0..out.windows())
    } else {
        args.window
    };
    if index >= out.windows() {
        bail!(
            "--window {index}: the output has {} windows (0..{})",
            out.windows(),
            out.windows().saturating_sub(1)
        );
    }
    let view = window_view(out, index)?;
    let sp = SpecialTokens::from_map(&out.manifest.special_tokens)?;
    let tok = match args.raw {
        true => None,
        false => Some(load_tokenizer(out, args.tokenizer.as_deref())?),
    };
    if args.json {
        return render::json(out, &view, &sp, tok.as_ref(), w);
    }
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    render::text(&view, &sp, tok.as_ref(), color, args.max_chars, w)
}

/// The tokenizer to decode with: `--tokenizer`, else the manifest's.
fn load_tokenizer(out: &OutputReader, given: Option<&Path>) -> Result<Tokenizer> {
    let path = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&out.manifest.tokenizer.path));
    Tokenizer::from_file(&path).map_err(|e| {
        anyhow!(
            "cannot load the tokenizer {} ({e}); pass --tokenizer",
            path.display()
        )
    })
}
