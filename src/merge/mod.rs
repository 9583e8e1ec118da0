//! The `merge` run: the parts of a run (`OUT/part-IIIII-of-NNNNN/`, see [`crate::part`]) joined,
//! in part order, into one output with every file the parts have ([`join`]: one joiner per kind
//! of file), provenance renumbered into the whole run's documents, windows and inputs, and a
//! manifest that lists the parts and sums their counts.
//!
//! Every part is checked before anything is written: all present, complete (their manifests
//! written, their files the listed sizes) and made with the same configuration; otherwise the
//! merge is refused and writes nothing. Files are joined streaming (bulk data by the kernel's
//! copy), so memory stays flat however many parts there are.

pub mod join;

use crate::output::dir::{OutputDir, MANIFEST};
use crate::output::manifest::{Counts, FileInfo, Manifest, MergedPart};
use crate::output::reader::{inside, OutputReader};
use crate::part::{dir_name, first_difference, identity, parse_dir_name};
use anyhow::{bail, Context, Result};
use join::Join;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A resolved `merge` run.
pub struct MergeJob {
    /// The directory holding the parts.
    pub parts: PathBuf,
    pub output: PathBuf,
    pub force: bool,
    pub command: Vec<String>,
}

/// What a merge did.
#[derive(Debug)]
pub struct MergeSummary {
    pub parts: usize,
    pub windows: u64,
    pub documents: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// What the joiners need of one part: where it is, its sizes, and for each of its sources the
/// input index in the whole run and the lines before it in the same file.
pub struct PartView {
    pub dir: PathBuf,
    pub windows: u64,
    pub documents: u64,
    pub sources: Vec<(u32, u64)>,
    files: Vec<FileInfo>,
}

impl PartView {
    /// The size of the part's file `name`, as its manifest lists it.
    pub fn file_bytes(&self, name: &str) -> Result<u64> {
        self.files
            .iter()
            .find(|f| f.path == name)
            .map(|f| f.bytes)
            .with_context(|| format!("{}: the manifest does not list {name}", self.dir.display()))
    }
}

/// The part directories of `out`, in part order: all `N` of one split, none missing.
pub fn part_dirs(out: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(out)
        .with_context(|| format!("cannot list the parts directory {}", out.display()))?;
    let mut found: Vec<(u32, u32)> = Vec::new();
    for e in entries {
        let name = e?.file_name();
        if let Some(p) = parse_dir_name(&name.to_string_lossy()) {
            found.push(p);
        }
    }
    found.sort();
    let Some(&(_, count)) = found.first() else {
        bail!(
            "{} holds no part-IIIII-of-NNNNN directories: give the -o of the runs with \
             --num-shards",
            out.display()
        );
    };
    if let Some(&(i, n)) = found.iter().find(|p| p.1 != count) {
        bail!(
            "{} holds parts of two splits ({} and {}): remove the parts of the split you do not \
             want",
            out.display(),
            dir_name(0, count),
            dir_name(i, n)
        );
    }
    if let Some(missing) = (0..count).find(|&i| found.binary_search(&(i, count)).is_err()) {
        let absent = (0..count)
            .filter(|&i| found.binary_search(&(i, count)).is_err())
            .count();
        bail!(
            "part {missing} of {count} ({}) is missing ({absent} of {count} parts missing): run it \
             (--num-shards {count} --shard-index {missing}, or resubmit the array) and merge again",
            out.join(dir_name(missing, count)).display()
        );
    }
    Ok((0..count).map(|i| out.join(dir_name(i, count))).collect())
}

/// What must be equal in every part's manifest for them to be joined.
fn merge_identity(m: &Manifest) -> Result<Value> {
    let mut v = identity(&serde_json::to_value(m)?);
    if let Some(part) = v.get_mut("part").and_then(Value::as_object_mut) {
        for key in ["index", "stream_seed", "sources"] {
            part.remove(key);
        }
    }
    if let Some(input) = v.get_mut("input").and_then(Value::as_object_mut) {
        input.remove("sources");
    }
    Ok(v)
}

/// Every part checked, in order: the first part's manifest (the template of the merged one),
/// the parts' views, the whole run's input names and the summed counts.
struct Checked {
    template: Manifest,
    views: Vec<PartView>,
    names: Vec<Option<String>>,
    counts: Counts,
}

fn check_parts(dirs: &[PathBuf]) -> Result<Checked> {
    let count = dirs.len() as u32;
    let mut checked: Option<(Checked, Value)> = None;
    let mut lines_before: HashMap<u32, u64> = HashMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let m = OutputReader::open(dir)
            .with_context(|| {
                format!("part {i} of {count} is incomplete or damaged: rerun it and merge again")
            })?
            .manifest;
        let Some(part) = m.part.clone() else {
            bail!(
                "{}: not a part (its manifest has no part record)",
                dir.display()
            );
        };
        if (part.index, part.count) != (i as u32, count) {
            bail!(
                "{}: its manifest says part {} of {}",
                dir.display(),
                part.index,
                part.count
            );
        }
        if m.upsample.is_some() {
            bail!(
                "{}: made with --upsample-long, whose repeats and drops are reported per part; \
                 utk merge does not join upsampled parts: give them to the trainer as they are \
                 (utk merge --data-path)",
                dir.display()
            );
        }
        let id = merge_identity(&m)?;
        let text = m.input.format == "jsonl";
        let mut sources = Vec::with_capacity(part.sources.len());
        for s in &part.sources {
            let before = lines_before.entry(s.input).or_insert(0);
            sources.push((s.input, if text { *before } else { 0 }));
            if text && s.range.is_some() {
                *before += s.lines.with_context(|| {
                    format!(
                        "{}: the part does not say how many lines it read",
                        dir.display()
                    )
                })?;
            }
        }
        let view = PartView {
            dir: dir.clone(),
            windows: m.windows,
            documents: m.counts.documents,
            sources,
            files: m.files.clone(),
        };
        match checked.as_mut() {
            None => {
                let names = vec![None; part.inputs as usize];
                let c = Checked {
                    template: m.clone(),
                    views: Vec::new(),
                    names,
                    counts: Counts::default(),
                };
                checked = Some((c, id.clone()));
            }
            Some((_, first)) => {
                if let Some(d) = first_difference(first, &id) {
                    bail!(
                        "{} was made with another configuration than part 0 ({d}, part 0 vs \
                         this part): redo it with part 0's settings",
                        dir.display()
                    );
                }
            }
        }
        let (c, _) = checked.as_mut().expect("set above");
        add_part(c, &m, view)?;
    }
    Ok(checked.context("no parts")?.0)
}

/// Adds a checked part's names, counts and view.
fn add_part(c: &mut Checked, m: &Manifest, view: PartView) -> Result<()> {
    let part = m.part.as_ref().expect("checked");
    for s in &part.sources {
        let slot = c
            .names
            .get_mut(s.input as usize)
            .with_context(|| format!("{}: input {} out of range", view.dir.display(), s.input))?;
        *slot = Some(s.path.clone());
    }
    add_counts(&mut c.counts, &m.counts);
    c.views.push(view);
    Ok(())
}

fn add_counts(total: &mut Counts, c: &Counts) {
    total.documents += c.documents;
    total.input_tokens += c.input_tokens;
    total.output_tokens += c.output_tokens;
    total.inserted_tokens += c.inserted_tokens;
    total.pad_tokens += c.pad_tokens;
    total.dropped_tokens += c.dropped_tokens;
    total.pieces += c.pieces;
    for (k, v) in &c.pieces_by_chunks {
        *total.pieces_by_chunks.entry(k.clone()).or_insert(0) += v;
    }
    total.blank_lines += c.blank_lines;
    total.bad_lines.extend(&c.bad_lines);
    total.input_bytes += c.input_bytes;
}

/// Runs the merge; on success `job.output` is one complete output and its manifest written.
pub fn run(job: &MergeJob) -> Result<MergeSummary> {
    let start = Instant::now();
    let dirs = part_dirs(&job.parts)?;
    if dirs
        .first()
        .is_some_and(|d| !d.join(MANIFEST).exists() && d.join("tokens.json").exists())
    {
        bail!(
            "{} holds `utk tokenize` parts: read them as they are (`utk augment {}/part-*/tokens`, \
             or `utk merge --data-path {}` for Megatron)",
            job.parts.display(),
            job.parts.display(),
            job.parts.display()
        );
    }
    let c = check_parts(&dirs)?;
    let names = crate::output::file_names();
    let mut dir = OutputDir::prepare(
        &job.output,
        job.force,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut files = Vec::with_capacity(c.template.files.len());
    let mut bytes = 0;
    for f in &c.template.files {
        let join = Join::of(f, c.template.seq_len)?;
        let mut out = dir.create(&f.path)?;
        join.write(&c.views, &f.path, &mut out)
            .with_context(|| format!("cannot join {}", f.path))?;
        out.flush()?;
        let len = out.get_ref().metadata()?.len();
        bytes += len;
        files.push(FileInfo {
            bytes: len,
            ..f.clone()
        });
    }
    dir.record_checksums(&mut files)?;
    let manifest = merged_manifest(job, &c, files)?;
    dir.commit(&serde_json::to_vec_pretty(&manifest)?)?;
    Ok(MergeSummary {
        parts: dirs.len(),
        windows: manifest.windows,
        documents: manifest.counts.documents,
        bytes,
        elapsed: start.elapsed(),
    })
}

fn merged_manifest(job: &MergeJob, c: &Checked, files: Vec<FileInfo>) -> Result<Manifest> {
    let mut m = c.template.clone();
    m.command = job.command.clone();
    m.input.sources = c
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            n.clone()
                .with_context(|| format!("input {i} is in no part"))
        })
        .collect::<Result<_>>()?;
    m.windows = c.views.iter().map(|v| v.windows).sum();
    m.counts = c.counts.clone();
    m.files = files;
    m.cpu_seconds = None;
    m.part = None;
    m.parts = c
        .views
        .iter()
        .map(|v| MergedPart {
            path: v.dir.display().to_string(),
            windows: v.windows,
            documents: v.documents,
            output_tokens: v.windows * m.seq_len as u64,
        })
        .collect();
    Ok(m)
}

/// Megatron's `--data-path` for the parts of `out` without copying them: `(tokens, prefix)` per
/// part, in order (the Megatron dataset `tokens.bin/.idx` of `utk augment` or `utk tokenize`).
pub fn data_path(out: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dirs = part_dirs(out)?;
    let mut list = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        let tokens = part_tokens(dir)
            .with_context(|| format!("part {i} of {}: rerun it, then ask again", dirs.len()))?;
        list.push((tokens, dir.join("tokens")));
    }
    Ok(list)
}

/// The tokens of a complete part's Megatron dataset.
fn part_tokens(dir: &Path) -> Result<u64> {
    let record = inside(dir, "tokens.json")?;
    if !inside(dir, MANIFEST)?.exists() && record.is_file() {
        let v: Value = serde_json::from_slice(&std::fs::read(&record)?)
            .with_context(|| format!("{} is damaged", record.display()))?;
        return v["tokens"]
            .as_u64()
            .with_context(|| format!("{} gives no token count", record.display()));
    }
    let m = OutputReader::open(dir)?.manifest;
    if !m.formats.contains(&crate::output::Format::Megatron) {
        bail!(
            "{} holds no Megatron dataset (made without --format megatron)",
            dir.display()
        );
    }
    Ok(m.counts.output_tokens)
}
