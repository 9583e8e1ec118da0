//! `utk inspect`: one window decoded with its structure visible, its map, or the output's summary.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;
use utk::inspect::{window_view, ChunkView, KnotDistances, WindowView};
use utk::output::reader::OutputReader;
use utk::tokenize::special::Role;
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
        summary(&out, &args, &mut w)?;
    } else {
        let index = if args.random {
            if out.windows() == 0 {
                bail!("{} has no windows", args.output.display());
            }
            rand_chacha::ChaCha8Rng::seed_from_u64(args.seed).random_range(0..out.windows())
        } else {
            args.window
        };
        let view = window_view(&out, index)?;
        let sp = SpecialTokens::from_map(&out.manifest.special_tokens)?;
        if args.json {
            json(&out, &view, &sp, &args, &mut w)?;
        } else {
            let tok = if args.raw {
                None
            } else {
                Some(load_tokenizer(&out, args.tokenizer.as_deref())?)
            };
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && std::io::stdout().is_terminal()
                }
            };
            text(
                &out,
                &view,
                &sp,
                tok.as_ref(),
                color,
                args.max_chars,
                &mut w,
            )?;
        }
    }
    w.flush()?;
    Ok(())
}

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

fn decode(tok: &Tokenizer, ids: &[u32]) -> Result<String> {
    tok.decode(ids, false)
        .map_err(|e| anyhow!("cannot decode: {e}"))
}

/// Renders text segments: markup and non-target spans are set apart.
struct Painter {
    color: bool,
}

impl Painter {
    /// A role token, e.g. ⟨CL⟩; `target` says whether it is trained on.
    fn role(&self, r: Role, target: bool) -> String {
        let name = r.display().replace('<', "⟨").replace('>', "⟩");
        match (self.color, target) {
            (true, true) => format!("\x1b[1;36m{name}\x1b[0m"),
            (true, false) => format!("\x1b[2;33m{name}\x1b[0m"),
            (false, true) => name,
            (false, false) => format!("⟦{name}⟧"),
        }
    }

    /// Text that is not a training target (labels inside ⟨CL⟩…⟨/CL⟩).
    fn non_target(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[2;33m{s}\x1b[0m")
        } else {
            format!("⟦{s}⟧")
        }
    }

    fn note(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// The content of a chunk, with the middle elided beyond `max_chars`.
fn content_text(
    tok: Option<&Tokenizer>,
    ids: &[u32],
    sp: &SpecialTokens,
    max_chars: usize,
) -> Result<String> {
    let body = if ids.last() == Some(&sp.eod) {
        &ids[..ids.len() - 1]
    } else {
        ids
    };
    let Some(tok) = tok else {
        return Ok(elide_ids(body, max_chars));
    };
    let full = decode(tok, body)?;
    let chars = full.chars().count();
    if chars <= max_chars || body.len() < 4 {
        return Ok(full);
    }
    let per_token = chars as f64 / body.len() as f64;
    let keep = ((max_chars as f64 / 2.0 / per_token).floor() as usize).max(1);
    let head = decode(tok, &body[..keep])?;
    let tail = decode(tok, &body[body.len() - keep..])?;
    Ok(format!(
        "{head}[… {} tokens hidden …]{tail}",
        body.len() - 2 * keep
    ))
}

fn elide_ids(ids: &[u32], max_chars: usize) -> String {
    let all: Vec<String> = ids.iter().map(u32::to_string).collect();
    let keep = (max_chars / 12).max(2);
    if all.len() <= 2 * keep {
        return all.join(" ");
    }
    format!(
        "{} [… {} tokens hidden …] {}",
        all[..keep].join(" "),
        all.len() - 2 * keep,
        all[all.len() - keep..].join(" ")
    )
}

fn label_text(tok: Option<&Tokenizer>, ids: &[u32]) -> Result<String> {
    match tok {
        Some(t) => decode(t, ids),
        None => Ok(ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")),
    }
}

fn text(
    out: &OutputReader,
    v: &WindowView,
    sp: &SpecialTokens,
    tok: Option<&Tokenizer>,
    color: bool,
    max_chars: usize,
    w: &mut impl Write,
) -> Result<()> {
    let p = Painter { color };
    let t = &v.tokens;
    let targets = v.mask.iter().filter(|&&m| m == 1).count();
    writeln!(
        w,
        "window {} of {} · {} tokens · {} targets, {} not ({} markers)",
        v.window,
        v.windows,
        t.len(),
        targets,
        t.len() - targets,
        if color { "dim yellow" } else { "⟦…⟧" }
    )?;
    writeln!(w)?;
    for (i, c) in v.chunks.iter().enumerate() {
        let mut what = if c.chunks >= 2 {
            format!("chunk {}/{}", c.chunk, c.chunks)
        } else {
            "whole piece".into()
        };
        if !c.eod && c.chunk == c.chunks {
            what += " · cut by the window end (continues in the next window)";
        }
        writeln!(
            w,
            "{}",
            p.note(&format!(
                "── [{i}] tokens {}..{} · doc {} ({}:{}) · {what}",
                c.extent.start, c.extent.end, c.doc, c.source, c.line
            ))
        )?;
        let mut line = String::new();
        if let Some(l) = &c.label {
            line += &p.role(Role::Cl, false);
            line += &p.non_target(&label_text(tok, &t[l.clone()])?);
            line += &p.role(Role::ClEnd, false);
        }
        if let Some(b) = c.head {
            line += &p.role(Role::Head(b), false);
        }
        line += &content_text(tok, &t[c.content.clone()], sp, max_chars)?;
        if c.eod {
            line += &p.role(Role::Eod, true);
        }
        if let Some(b) = c.tail {
            line += &p.role(Role::Tail(b), false);
        }
        if let Some(list) = &c.backtrace {
            line += &p.role(Role::Bt, false);
            for (k, l) in list.iter().enumerate() {
                if k > 0 {
                    line += &p.role(Role::BtSep, true);
                }
                line += &label_text(tok, &t[l.clone()])?;
            }
            line += &p.role(Role::BtEnd, true);
        }
        writeln!(w, "{line}")?;
    }
    if let Some(pad) = v.pad_from {
        writeln!(
            w,
            "{}",
            p.note(&format!(
                "── tokens {pad}..{}: {} × {}",
                t.len(),
                t.len() - pad,
                p.role(Role::Pad, false)
            ))
        )?;
    }
    writeln!(w)?;
    map(out, v, tok, w)
}

/// The window's map: chunks in window order, then each split piece's order and backtrace list.
fn map(
    _out: &OutputReader,
    v: &WindowView,
    tok: Option<&Tokenizer>,
    w: &mut impl Write,
) -> Result<()> {
    writeln!(w, "map of window {}:", v.window)?;
    writeln!(
        w,
        "{:>4}  {:>15}  {:>8}  {:>10}  {:>6}  source",
        "#", "content tokens", "doc", "doc offset", "chunk"
    )?;
    for (i, c) in v.chunks.iter().enumerate() {
        writeln!(
            w,
            "{i:>4}  {:>15}  {:>8}  {:>10}  {:>6}  {}:{}",
            format!("{}..{}", c.content.start, c.content.end),
            c.doc,
            c.doc_offset,
            format!("{}/{}", c.chunk, c.chunks),
            c.source,
            c.line
        )?;
    }
    let mut docs: Vec<u64> = v
        .chunks
        .iter()
        .filter(|c| c.chunks >= 2)
        .map(|c| c.doc)
        .collect();
    docs.dedup();
    docs.sort_unstable();
    docs.dedup();
    for d in docs {
        let members: Vec<(usize, &ChunkView)> = v
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.doc == d)
            .collect();
        let order: Vec<String> = members
            .iter()
            .map(|(i, c)| format!("{}@[{i}]", c.chunk))
            .collect();
        let list = members.iter().find_map(|(_, c)| c.backtrace.as_ref());
        let bt = match list {
            Some(l) => l
                .iter()
                .map(|r| label_text(tok, &v.tokens[r.clone()]))
                .collect::<Result<Vec<_>>>()?
                .join(" · "),
            None => "(no backtrace list)".into(),
        };
        writeln!(w, "  doc {d}: chunks {} · backtrace {bt}", order.join(" "))?;
    }
    Ok(())
}

fn json(
    out: &OutputReader,
    v: &WindowView,
    sp: &SpecialTokens,
    args: &InspectArgs,
    w: &mut impl Write,
) -> Result<()> {
    let tok = if args.raw {
        None
    } else {
        Some(load_tokenizer(out, args.tokenizer.as_deref())?)
    };
    let mut chunks = Vec::new();
    for c in &v.chunks {
        let mut j = serde_json::to_value(c)?;
        if let Some(t) = &tok {
            j["text"] = content_text(Some(t), &v.tokens[c.content.clone()], sp, usize::MAX)?.into();
            if let Some(l) = &c.label {
                j["label_text"] = decode(t, &v.tokens[l.clone()])?.into();
            }
        }
        chunks.push(j);
    }
    let mut doc = serde_json::json!({
        "window": v.window,
        "windows": v.windows,
        "seq_len": v.tokens.len(),
        "pad_from": v.pad_from,
        "special_tokens": out.manifest.special_tokens,
        "chunks": chunks,
    });
    if args.raw {
        doc["tokens"] = serde_json::to_value(&v.tokens)?;
        doc["mask"] = serde_json::to_value(&v.mask)?;
    }
    let mut bytes = serde_json::to_vec(&doc)?;
    bytes.push(b'\n');
    w.write_all(&bytes)?;
    Ok(())
}

fn summary(out: &OutputReader, args: &InspectArgs, w: &mut impl Write) -> Result<()> {
    let m = &out.manifest;
    let c = &m.counts;
    let cfg = &m.config;
    writeln!(
        w,
        "{} · utk {} · {} windows of {} tokens ({})",
        args.output.display(),
        m.tool_version,
        m.windows,
        m.seq_len,
        m.token_dtype
    )?;
    writeln!(
        w,
        "config: method {:?}, split-prob {}, chunks {:?}:{:?}, chunking {:?}, min-chunk {}, order {:?}, backtrace {}, label-len {}, tail {:?}, seed {}",
        cfg.method, cfg.split_prob, cfg.chunks.counts, cfg.chunks.weights, cfg.chunking, cfg.min_chunk_tokens, cfg.order, cfg.backtrace, cfg.label_len, cfg.tail, cfg.seed
    )?;
    writeln!(
        w,
        "tokenizer: {} (EOD {} {:?})",
        m.tokenizer.path,
        m.tokenizer.eod.id,
        m.tokenizer.eod.token.as_deref().unwrap_or("?")
    )?;
    writeln!(w, "documents {} · tokens in {} · out {} · inserted {} ({:.2}% overhead) · pad {} · dropped {}", c.documents, c.input_tokens, c.output_tokens, c.inserted_tokens, c.overhead_percent(), c.pad_tokens, c.dropped_tokens)?;
    writeln!(w, "\npieces by chunk count ({} pieces):", c.pieces)?;
    let top = c
        .pieces_by_chunks
        .values()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    for (n, k) in &c.pieces_by_chunks {
        writeln!(w, "  {n:>3} {k:>10} {}", bar(*k, top, 40))?;
    }
    let kd = KnotDistances::collect(out);
    let bins = 16;
    let hist = kd.histogram(m.seq_len, bins);
    let far = kd
        .distances
        .iter()
        .filter(|&&d| d as usize >= m.seq_len / 2)
        .count();
    writeln!(w, "\nknot distances (tokens from T_b back to its H_b): {} knots, median {}, p90 {}, max {}; {} ({:.1}%) at least seq_len/2", kd.distances.len(), kd.quantile(0.5), kd.quantile(0.9), kd.quantile(1.0), far, 100.0 * far as f64 / kd.distances.len().max(1) as f64)?;
    let top = hist.iter().copied().max().unwrap_or(1).max(1);
    for (b, &k) in hist.iter().enumerate() {
        let (lo, hi) = (b * m.seq_len / bins, (b + 1) * m.seq_len / bins);
        writeln!(
            w,
            "  {:>15} {k:>9} {}",
            format!("{lo}–{hi}"),
            bar(k, top, 40)
        )?;
    }
    if let Some(path) = &args.plot {
        if path.extension().and_then(|e| e.to_str()) != Some("svg") {
            bail!(
                "--plot {}: only .svg is supported (convert with e.g. rsvg-convert for PNG)",
                path.display()
            );
        }
        std::fs::write(
            path,
            svg_histogram(
                &hist,
                m.seq_len,
                "distance from tail knot to head knot (tokens)",
                "knots",
            ),
        )
        .with_context(|| format!("cannot write --plot {}", path.display()))?;
        writeln!(w, "\nplot written to {}", path.display())?;
    }
    Ok(())
}

fn bar(k: u64, top: u64, width: u64) -> String {
    "█".repeat((k * width).div_ceil(top) as usize)
}

/// A bar chart of `hist` over `0..span`, as a standalone SVG document.
fn svg_histogram(hist: &[u64], span: usize, xlabel: &str, ylabel: &str) -> String {
    let (wd, ht, left, bottom, top_pad) = (720.0, 360.0, 70.0, 50.0, 20.0);
    let plot_w = wd - left - 20.0;
    let plot_h = ht - bottom - top_pad;
    let top = hist.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = plot_w / hist.len() as f64;
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{wd}\" height=\"{ht}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (i, &k) in hist.iter().enumerate() {
        let h = plot_h * k as f64 / top;
        s += &format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#3b7dd8\"><title>{}–{}: {k}</title></rect>\n", left + i as f64 * bw + 1.0, top_pad + plot_h - h, bw - 2.0, i * span / hist.len(), (i + 1) * span / hist.len());
    }
    s += &format!("<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top_pad}\" x2=\"{left}\" y2=\"{y}\" stroke=\"black\"/>\n", y = top_pad + plot_h, x2 = left + plot_w);
    for i in 0..=4 {
        let x = left + plot_w * i as f64 / 4.0;
        s += &format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            top_pad + plot_h + 16.0,
            span * i / 4
        );
        let y = top_pad + plot_h * (1.0 - i as f64 / 4.0);
        s += &format!(
            "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\">{}</text>\n",
            left - 6.0,
            (top * i as f64 / 4.0).round()
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{xlabel}</text>\n",
        left + plot_w / 2.0,
        ht - 10.0
    );
    s += &format!("<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{ylabel}</text>\n</svg>\n", top_pad + plot_h / 2.0, top_pad + plot_h / 2.0);
    s
}
