//! The summary of a whole output for `utk inspect --summary`: configuration, counts, the
//! chunk-count histogram and the knot-distance distribution, as text and as an SVG plot.

use super::KnotDistances;
use crate::choice::Choice;
use crate::output::reader::OutputReader;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// The output's configuration, counts, chunk-count histogram and knot-distance distribution;
/// with `plot`, the histogram drawn to that `.svg` file too.
pub fn summary(
    out: &OutputReader,
    dir: &Path,
    plot: Option<&Path>,
    w: &mut impl Write,
) -> Result<()> {
    let m = &out.manifest;
    let c = &m.counts;
    let cfg = &m.config;
    writeln!(
        w,
        "{} · utk {} · {} windows of {} tokens ({})",
        dir.display(),
        m.tool_version,
        m.windows,
        m.seq_len,
        m.token_dtype
    )?;
    writeln!(
        w,
        "config: method {}, split-prob {}, chunks {:?}:{:?}, chunking {}, min-chunk {}, order {}, backtrace {}, label-len {}, tail {}, seed {}",
        cfg.method.name(), cfg.split_prob, cfg.chunks.counts, cfg.chunks.weights, cfg.chunking.name(), cfg.min_chunk_tokens, cfg.order.name(), cfg.backtrace, cfg.label_len, cfg.tail.name(), cfg.seed
    )?;
    writeln!(
        w,
        "tokenizer: {} (EOD {} {:?})",
        m.tokenizer.path,
        m.tokenizer.eod.id,
        m.tokenizer.eod.token.as_deref().unwrap_or("?")
    )?;
    writeln!(w, "documents {} · tokens in {} · out {} · inserted {} ({:.2}% overhead) · pad {} · dropped {}", c.documents, c.input_tokens, c.output_tokens, c.inserted_tokens, c.overhead_percent(), c.pad_tokens, c.dropped_tokens)?;
    if let Some(up) = &m.upsample {
        let (shown, rest) = up.shown();
        for s in shown {
            writeln!(w, "upsampled (>= {} tokens x{}): {}: {} long docs +{} tokens, {} short docs -{} dropped, {} -> {} tokens, share {}", up.min_tokens, up.factor, s.source, s.long_documents, s.repeated_tokens, s.dropped_documents, s.dropped_tokens, s.input_tokens, s.output_tokens, if s.mixture_kept { "kept" } else { "NOT kept" })?;
        }
        if let Some((more, grew)) = rest {
            writeln!(w, "upsampled: … {more} more sources ({grew} of them with their share NOT kept; all in manifest.json)")?;
        }
    }
    if let Some(f) = m
        .files
        .iter()
        .find(|f| f.role == crate::output::doc_lens::ROLE)
    {
        writeln!(
            w,
            "segment boundaries: {} (one int32 sequence of segment lengths per window)",
            f.path.trim_end_matches(".bin").trim_end_matches(".idx")
        )?;
    }
    chunk_histogram(out, w)?;
    if cfg.method == crate::config::Method::Cip {
        writeln!(w, "\n(CIP has no knots: the distances below are from the end of chunk b to the start of chunk b+1 of the same piece, less 1)")?;
    }
    knots(out, plot, w)
}

/// Pieces by chunk count, as bars.
fn chunk_histogram(out: &OutputReader, w: &mut impl Write) -> Result<()> {
    let c = &out.manifest.counts;
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
    Ok(())
}

/// The knot-distance distribution as bars, and with `plot` as an SVG histogram.
fn knots(out: &OutputReader, plot: Option<&Path>, w: &mut impl Write) -> Result<()> {
    let m = &out.manifest;
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
    if let Some(path) = plot {
        if path.extension().and_then(|e| e.to_str()) != Some("svg") {
            bail!(
                "{}: only .svg plots are supported (convert with e.g. rsvg-convert for PNG)",
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
        .with_context(|| format!("cannot write the plot {}", path.display()))?;
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
