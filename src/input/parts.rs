//! One part of a run's input (`--num-shards N --shard-index I`): a deterministic split balanced
//! by bytes.
//!
//! The inputs, in their order, are laid end to end; part `I` gets the bytes from `T·I/N` to
//! `T·(I+1)/N` (`T` the total), with each cut moved to a place where the input can be cut:
//!
//! - inside a large **plain JSONL** file (larger than an eighth of a part's share): to the next
//!   line start, so every line is read by exactly one part;
//! - inside a large **indexed token shard** (Megatron, datatrove): to the next document start;
//! - anywhere else — a small file, a **gzip or zstd** file (a compressed stream cannot be entered
//!   in the middle), a raw or `.npy` shard (its documents are found only by reading) — to the
//!   nearer file boundary, so such files go whole to one part.
//!
//! The cuts depend only on the inputs' sizes and contents, `N` and `I`; with more parts than
//! inputs some parts may be empty (a complete output of no documents). Standard input cannot be
//! split.

use super::open::Compression;
use super::shards::{OpenShard, Shard, ShardKind};
use super::{Input, InputFiles, Source};
use crate::part::{Part, PartSource};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// One input laid end to end with the others.
struct Item {
    size: u64,
    /// Where the input can be cut inside, if anywhere.
    cut: Cut,
}

enum Cut {
    /// Whole files only.
    Whole,
    /// At line starts of a plain file.
    Lines,
    /// At these document starts (bytes) of an indexed shard.
    Docs(Vec<u64>),
}

impl Input {
    /// The part `part` of this input, and what it holds of each input (for the manifest).
    pub fn select_part(&self, part: &Part) -> Result<(Input, Vec<PartSource>)> {
        if part.count == 1 {
            let whole = self
                .names()
                .into_iter()
                .enumerate()
                .map(|(i, path)| PartSource {
                    input: i as u32,
                    path,
                    range: None,
                    lines: None,
                });
            return Ok((self.clone(), whole.collect()));
        }
        let items = self.items(part.count > 1)?;
        let cuts = cuts(self, &items, part.count)?;
        let (a, b) = (cuts[part.index as usize], cuts[part.index as usize + 1]);
        let names = self.names();
        let mut chosen = Vec::new();
        let mut start = 0u64;
        for (i, item) in items.iter().enumerate() {
            let end = start + item.size;
            let (lo, hi) = (a.max(start), b.min(end));
            if lo < hi || (item.size == 0 && a <= start && start < b) {
                let range = (lo > start || hi < end).then(|| [lo - start, hi - start]);
                chosen.push((i, range));
            }
            start = end;
        }
        let record = chosen
            .iter()
            .map(|&(i, range)| PartSource {
                input: i as u32,
                path: names[i].clone(),
                range: range.map(|r| doc_range(&items[i], r)),
                lines: None,
            })
            .collect();
        let files = match &self.files {
            InputFiles::Text(sources) => InputFiles::Text(
                chosen
                    .iter()
                    .map(|&(i, r)| text_piece(&sources[i], r))
                    .collect(),
            ),
            InputFiles::Shards(shards) => InputFiles::Shards(
                chosen
                    .iter()
                    .map(|&(i, r)| shard_piece(&shards[i], &items[i], r))
                    .collect(),
            ),
            // Parquet files go whole (their items cannot be cut).
            InputFiles::Parquet(sources) => {
                InputFiles::Parquet(chosen.iter().map(|&(i, _)| sources[i].clone()).collect())
            }
        };
        let input = Input {
            files,
            text: self.text.clone(),
        };
        Ok((input, record))
    }

    /// The inputs as items; `split` false (one part) needs no look inside them.
    fn items(&self, split: bool) -> Result<Vec<Item>> {
        match &self.files {
            InputFiles::Text(sources) => sources.iter().map(|s| text_item(s, split)).collect(),
            InputFiles::Shards(shards) => shards.iter().map(|s| shard_item(s, split)).collect(),
            InputFiles::Parquet(sources) => sources.iter().map(parquet_item).collect(),
        }
    }
}

/// A parquet file is split between parts by whole files only (row groups could be cut, but a
/// part of whole files keeps provenance rows and the reader simple).
fn parquet_item(source: &Source) -> Result<Item> {
    let Source::File(path) = source else {
        bail!("parquet is read from files only, not {}", source.name());
    };
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read input {}", path.display()))?
        .len();
    Ok(Item {
        size,
        cut: Cut::Whole,
    })
}

fn text_item(source: &Source, split: bool) -> Result<Item> {
    let Source::File(path) = source else {
        if split {
            bail!("standard input (-) cannot be split into parts: save it to a file first");
        }
        return Ok(Item {
            size: 0,
            cut: Cut::Whole,
        });
    };
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read input {}", path.display()))?
        .len();
    let mut head = [0u8; 4];
    let n = match split {
        true => read_head(path, &mut head)?,
        false => 0,
    };
    let cut = match Compression::detect(&head[..n]) {
        Compression::None if split => Cut::Lines,
        _ => Cut::Whole,
    };
    Ok(Item { size, cut })
}

fn read_head(path: &Path, head: &mut [u8]) -> Result<usize> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot open input {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn shard_item(shard: &Shard, split: bool) -> Result<Item> {
    let size = shard.size().unwrap_or(0);
    let indexed = matches!(shard.kind, ShardKind::Megatron | ShardKind::Datatrove);
    let cut = match (split && indexed)
        .then(|| OpenShard::open(shard))
        .transpose()?
    {
        Some(open) => open.doc_starts().map_or(Cut::Whole, Cut::Docs),
        None => Cut::Whole,
    };
    Ok(Item { size, cut })
}

/// The `count + 1` cut positions (in bytes of the inputs laid end to end).
fn cuts(input: &Input, items: &[Item], count: u32) -> Result<Vec<u64>> {
    let total: u64 = items.iter().map(|i| i.size).sum();
    let share = total / count as u64;
    let mut cuts = vec![0u64];
    for k in 1..count as u64 {
        let target = (total as u128 * k as u128 / count as u128) as u64;
        let cut = place_cut(input, items, target, share)?;
        cuts.push(cut.max(*cuts.last().expect("one cut")));
    }
    cuts.push(total);
    Ok(cuts)
}

/// Where the cut aimed at `target` goes (see the module documentation).
fn place_cut(input: &Input, items: &[Item], target: u64, share: u64) -> Result<u64> {
    let mut start = 0u64;
    for (i, item) in items.iter().enumerate() {
        let end = start + item.size;
        if target >= end {
            start = end;
            continue;
        }
        let inside = target - start;
        let large = item.size > share / 8;
        let offset = match &item.cut {
            Cut::Lines if large => line_start_from(&text_path(input, i), inside, item.size)?,
            Cut::Docs(starts) if large => {
                let k = starts.partition_point(|&s| s < inside);
                starts.get(k).copied().unwrap_or(item.size)
            }
            _ if inside <= item.size - inside => 0,
            _ => item.size,
        };
        return Ok(start + offset);
    }
    Ok(start)
}

fn text_path(input: &Input, i: usize) -> std::path::PathBuf {
    match &input.files {
        InputFiles::Text(sources) | InputFiles::Parquet(sources) => match &sources[i] {
            Source::File(p) | Source::Range(p, ..) => p.clone(),
            Source::Stdin => "-".into(),
        },
        InputFiles::Shards(shards) => shards[i].path.clone(),
    }
}

/// The first line start at or after byte `at` of the file (its size when there is none).
fn line_start_from(path: &Path, at: u64, size: u64) -> Result<u64> {
    if at == 0 {
        return Ok(0);
    }
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot open input {}", path.display()))?;
    f.seek(SeekFrom::Start(at - 1))?;
    let mut reader = BufReader::with_capacity(1 << 16, f);
    let mut pos = at - 1;
    loop {
        let buf = reader
            .fill_buf()
            .with_context(|| format!("cannot read input {}", path.display()))?;
        if buf.is_empty() {
            return Ok(size);
        }
        if let Some(k) = buf.iter().position(|&b| b == b'\n') {
            return Ok((pos + k as u64 + 1).min(size));
        }
        let n = buf.len();
        pos += n as u64;
        reader.consume(n);
    }
}

/// A byte range of an input as the manifest records it: bytes of text, documents of a shard.
fn doc_range(item: &Item, [a, b]: [u64; 2]) -> [u64; 2] {
    match &item.cut {
        // Empty documents at the very end belong to the part that reads to the end.
        Cut::Docs(starts) if b == item.size => [
            starts.partition_point(|&s| s < a) as u64,
            starts.len() as u64,
        ],
        Cut::Docs(starts) => [
            starts.partition_point(|&s| s < a) as u64,
            starts.partition_point(|&s| s < b) as u64,
        ],
        _ => [a, b],
    }
}

fn text_piece(source: &Source, range: Option<[u64; 2]>) -> Source {
    match (source, range) {
        (Source::File(p), Some([a, b])) => Source::Range(p.clone(), a, b),
        (s, _) => s.clone(),
    }
}

fn shard_piece(shard: &Shard, item: &Item, range: Option<[u64; 2]>) -> Shard {
    let mut s = shard.clone();
    if let Some(r) = range {
        let [a, b] = doc_range(item, r);
        s.docs = Some((a, b));
    }
    s
}
