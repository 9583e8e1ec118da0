//! Expands the inputs given on the command line into an ordered list of sources.
//!
//! Order matters (packing is in stream order and the output must be reproducible), so directories
//! and globs expand in sorted path order. Problems that can be seen without reading — a path that
//! does not exist, a glob that matches nothing, an empty file — fail here, before any work starts.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where documents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
    /// Bytes `start..end` of a plain (uncompressed) file, starting at a line start: one part's
    /// share of a large file (see [`super::parts`]). Its lines count from `start`.
    Range(PathBuf, u64, u64),
}

impl Source {
    /// The name used in errors, the manifest and the provenance sidecar.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_string(),
            Source::File(p) => p.display().to_string(),
            Source::Range(p, start, end) => format!("{}[bytes {start}..{end}]", p.display()),
        }
    }

    /// The size in bytes, when known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match self {
            Source::Stdin => None,
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Source::Range(_, start, end) => Some(end - start),
        }
    }
}

/// Expands `-`, files, directories (recursively, sorted, hidden entries skipped) and glob patterns.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            if out.contains(&Source::Stdin) {
                bail!("`-` (standard input) is given twice");
            }
            out.push(Source::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.is_dir() {
            let before = out.len();
            walk_dir(path, &mut out)?;
            if out.len() == before {
                bail!("input directory {arg} contains no files");
            }
        } else if path.exists() {
            out.push(Source::File(path.to_path_buf()));
        } else if arg.contains(['*', '?', '[']) {
            let options = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..Default::default()
            };
            let mut matched: Vec<PathBuf> = glob::glob_with(arg, options)
                .with_context(|| format!("input pattern {arg} is not a valid glob"))?
                .filter_map(|entry| entry.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                bail!("input pattern {arg} matches no files");
            }
            matched.sort();
            out.extend(matched.into_iter().map(Source::File));
        } else {
            bail!("input {arg} does not exist");
        }
    }
    if out.is_empty() {
        bail!("no input given: name JSONL files, directories, globs, or - for standard input");
    }
    for source in &out {
        if let Source::File(p) = source {
            let meta = std::fs::metadata(p)
                .with_context(|| format!("cannot read input {}", p.display()))?;
            if meta.len() == 0 {
                bail!(
                    "input {} is empty (0 bytes): remove it from the inputs",
                    p.display()
                );
            }
            std::fs::File::open(p).with_context(|| format!("cannot open input {}", p.display()))?;
        }
    }
    Ok(out)
}

fn walk_dir(dir: &Path, out: &mut Vec<Source>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list input directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list input directory {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk_dir(&path, out)?;
        } else if path.is_file() {
            out.push(Source::File(path));
        }
    }
    Ok(())
}
