//! Rendering one window for `utk inspect`: decoded text with markup and non-target spans set
//! apart (by colour on a terminal, else by ⟦…⟧ markers), the window's map, or one JSON document.

use super::{ChunkView, WindowView};
use crate::output::reader::OutputReader;
use crate::tokenize::special::Role;
use crate::tokenize::SpecialTokens;
use anyhow::{anyhow, Result};
use std::io::Write;
use tokenizers::Tokenizer;

/// Decodes ids with the model's tokenizer (specials shown).
pub fn decode(tok: &Tokenizer, ids: &[u32]) -> Result<String> {
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

/// The window as text: a header, each chunk with its provenance and painted tokens, the pad,
/// then the map.
pub fn text(
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
        let line = chunk_line(&p, c, t, sp, tok, max_chars)?;
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
    if let Some(seg) = &v.segments {
        let lens: Vec<String> = seg.iter().map(i64::to_string).collect();
        let note = format!("segments (doc_lens, {}): {}", seg.len(), lens.join(" "));
        writeln!(w, "{}", p.note(&note))?;
    }
    writeln!(w)?;
    map(v, tok, w)
}

/// One chunk's tokens: label, knots, content, EOD and backtrace list, markup painted.
fn chunk_line(
    p: &Painter,
    c: &ChunkView,
    t: &[u32],
    sp: &SpecialTokens,
    tok: Option<&Tokenizer>,
    max_chars: usize,
) -> Result<String> {
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
    Ok(line)
}

/// The window's map: chunks in window order, then each split piece's order and backtrace list.
fn map(v: &WindowView, tok: Option<&Tokenizer>, w: &mut impl Write) -> Result<()> {
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

/// The window as one JSON document: chunks with their provenance (and decoded text with a
/// tokenizer; without one, the window's ids and mask arrays).
pub fn json(
    out: &OutputReader,
    v: &WindowView,
    sp: &SpecialTokens,
    tok: Option<&Tokenizer>,
    w: &mut impl Write,
) -> Result<()> {
    let mut chunks = Vec::new();
    for c in &v.chunks {
        let mut j = serde_json::to_value(c)?;
        if let Some(t) = tok {
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
        "segments": v.segments,
        "special_tokens": out.manifest.special_tokens,
        "chunks": chunks,
    });
    if tok.is_none() {
        doc["tokens"] = serde_json::to_value(&v.tokens)?;
        doc["mask"] = serde_json::to_value(&v.mask)?;
    }
    let mut bytes = serde_json::to_vec(&doc)?;
    bytes.push(b'\n');
    w.write_all(&bytes)?;
    Ok(())
}
