//! Streams documents out of parquet files: one document per row, its text the column named by
//! the text key (a nested key follows struct fields, see [`super::key`]).
//!
//! Only that column is read (the projection skips every other column's pages), by row groups:
//! memory holds the row groups being decoded, not the file. Up to four row groups (never more
//! than the run's `-j`) are decoded side by side (while their text column totals at most 256 MiB;
//! larger ones one at a time), each by its own thread with its own file handle, and their
//! documents are handed on in file order, so the documents (and the output) are those of a
//! sequential read.
//!
//! The column may be a string (`string`, `large_string`, `string_view`) or binary column
//! (read as UTF-8). A row whose text is null, or binary text that is not UTF-8, is a bad row:
//! an error naming the file and the 0-based row index, or with `--skip-bad-lines` a counted
//! skip. A file that cannot be read as parquet (truncated, corrupt) or lacks the column is an
//! error before any of its rows are read.

use super::key::key_name;
use super::{Source, TextDoc};
use crate::record::BadLines;
use crate::setting::{Setting, SettingError};
use anyhow::{anyhow, bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Fields};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The first (and last) four bytes of a parquet file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Rows per decoded record batch (bounds the memory of one batch of very long documents).
const ROWS_PER_BATCH: usize = 1024;

/// Row groups are decoded side by side only while their text column holds at most this many
/// bytes (uncompressed) together: a file of very large row groups is decoded one at a time.
const PARALLEL_BYTES: u64 = 256 << 20;
/// Row groups decoded side by side at most.
const MAX_PARALLEL: usize = 4;

/// Whether the file at `path` starts with the parquet magic.
pub fn is_parquet(path: &Path) -> Result<bool> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(f.read_exact(&mut head).is_ok() && &head == MAGIC)
}

/// Checks, before any work starts, that `path` is a readable parquet file with the text column
/// `key` (`TextOptions::text_key`, already checked to be a key).
pub fn check(path: &Path, key: &str) -> Result<()> {
    let key = super::key::key_path(key)?;
    TextColumn::open(path, 0, &key).map(|_| ())
}

/// One parquet file, opened for its text column.
struct TextColumn {
    /// Index of the source in the run's input list.
    index: u32,
    name: String,
    path: PathBuf,
    meta: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// The first row of each row group, then the row count.
    first_rows: Vec<u64>,
    /// The uncompressed bytes of the text column in each row group.
    group_bytes: Vec<u64>,
    size: u64,
}

/// What one row group held: its documents, and its bad rows (row, reason) in row order.
struct Decoded {
    docs: Vec<TextDoc>,
    bad: Vec<(u64, String)>,
    bytes: u64,
}

impl TextColumn {
    /// Reads the footer of `path` and finds the text column `key`, with errors that name the
    /// file and say what to do.
    fn open(path: &Path, index: u32, key: &[String]) -> Result<TextColumn> {
        let name = path.display().to_string();
        let file = File::open(path).with_context(|| format!("cannot open input {name}"))?;
        let size = file.metadata()?.len();
        // The file's own parquet schema decides the types (the Arrow schema some writers embed
        // may ask for dictionary arrays, which would gain nothing here).
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| {
            anyhow!(
                "{name}: not a readable parquet file ({e}); it is truncated or corrupt (a \
                 complete parquet file ends with its footer and PAR1): download or write it again"
            )
        })?;
        check_column(&name, meta.schema().fields(), key)?;
        let schema = meta.parquet_schema();
        let leaves: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| schema.column(i).path().parts() == key)
            .collect();
        if leaves.len() != 1 {
            bail!(
                "{name}: the text column \"{}\" is not one leaf column of the file",
                key_name(key)
            );
        }
        let leaf = leaves[0];
        let mask = ProjectionMask::leaves(schema, leaves);
        let mut first_rows = vec![0u64];
        let mut group_bytes = Vec::new();
        for g in meta.metadata().row_groups() {
            let last = *first_rows.last().expect("starts with 0");
            first_rows.push(last + g.num_rows().max(0) as u64);
            group_bytes.push(g.column(leaf).uncompressed_size().max(0) as u64);
        }
        Ok(TextColumn {
            index,
            name,
            path: path.to_path_buf(),
            meta,
            mask,
            first_rows,
            group_bytes,
            size,
        })
    }

    fn row_groups(&self) -> usize {
        self.first_rows.len() - 1
    }

    fn rows(&self) -> u64 {
        *self.first_rows.last().expect("starts with 0")
    }

    /// The end of the row groups from `next` on decoded together: at most `parallel`, and more
    /// than one only while their text fits [`PARALLEL_BYTES`].
    fn next_groups(&self, next: usize, parallel: usize) -> usize {
        let mut end = next + 1;
        let mut bytes = self.group_bytes[next];
        while end < self.row_groups() && end - next < parallel {
            bytes += self.group_bytes[end];
            if bytes > PARALLEL_BYTES {
                break;
            }
            end += 1;
        }
        end
    }

    /// Decodes row group `g` through a file handle of its own (handles share no position).
    fn decode(&self, g: usize, key: &[String]) -> Result<Decoded> {
        let (first, end) = (self.first_rows[g], self.first_rows[g + 1]);
        let corrupt = |e: &dyn std::fmt::Display| {
            anyhow!(
                "{}: rows {first} to {} (row group {g}) cannot be read: {e}; the file is \
                 truncated or corrupt",
                self.name,
                end.saturating_sub(1)
            )
        };
        let file =
            File::open(&self.path).with_context(|| format!("cannot open input {}", self.name))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_projection(self.mask.clone())
            .with_row_groups(vec![g])
            .with_batch_size(ROWS_PER_BATCH)
            .build()
            .map_err(|e| corrupt(&e))?;
        let mut out = Decoded {
            docs: Vec::with_capacity((end - first) as usize),
            bad: Vec::new(),
            bytes: 0,
        };
        let mut row = first;
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            let texts = Texts::find(batch.column(0), &key[1..])
                .ok_or_else(|| corrupt(&"the text column changed type"))?;
            for i in 0..batch.num_rows() {
                match texts.get(i) {
                    Ok(text) => {
                        out.bytes += text.len() as u64;
                        out.docs.push(TextDoc {
                            text: text.to_string(),
                            source: self.index,
                            line: row,
                            long: None,
                            field: None,
                        });
                    }
                    Err(reason) => out.bad.push((row, reason)),
                }
                row += 1;
            }
        }
        if row != end {
            return Err(corrupt(&format!(
                "{} rows instead of {}",
                row - first,
                end - first
            )));
        }
        Ok(out)
    }
}

/// Checks that `key` names a string or binary column among `fields` (struct fields for the
/// names before the last), saying what the file has instead.
fn check_column(name: &str, fields: &Fields, key: &[String]) -> Result<()> {
    let mut fields = fields.clone();
    for (depth, part) in key.iter().enumerate() {
        let shown = key_name(&key[..=depth]);
        let Some((_, field)) = fields.find(part) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
            let inside = match depth {
                0 => "columns".to_string(),
                _ => format!("fields of \"{}\"", key_name(&key[..depth])),
            };
            return Err(SettingError::new()
                .text(format!(
                    "{name}: no column \"{shown}\" ({inside}: {}); choose the text column with ",
                    names.join(", ")
                ))
                .setting(Setting::TextKey)
                .into());
        };
        let last = depth + 1 == key.len();
        match field.data_type() {
            DataType::Struct(children) if !last => fields = children.clone(),
            t if last && is_text_type(t) => return Ok(()),
            t => {
                let want = if last {
                    "a string or binary column"
                } else {
                    "a struct"
                };
                return Err(SettingError::new()
                    .text(format!(
                        "{name}: column \"{shown}\" is {t}, not {want}; choose the text column \
                         with "
                    ))
                    .setting(Setting::TextKey)
                    .into());
            }
        }
    }
    Ok(())
}

fn is_text_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// The text column of one record batch, and the struct arrays above it (a row is null when
/// any of them is).
struct Texts<'a> {
    leaf: &'a dyn Array,
    parents: Vec<&'a dyn Array>,
}

impl<'a> Texts<'a> {
    /// Follows `rest` (the key's names after the root column) through struct arrays.
    fn find(root: &'a ArrayRef, rest: &[String]) -> Option<Texts<'a>> {
        let mut parents = Vec::new();
        let mut at: &'a dyn Array = root.as_ref();
        for part in rest {
            let s = at.as_struct_opt()?;
            parents.push(at);
            at = s.column_by_name(part)?.as_ref();
        }
        is_text_type(at.data_type()).then_some(Texts { leaf: at, parents })
    }

    /// Row `i`'s text, or why it has none.
    fn get(&self, i: usize) -> std::result::Result<&'a str, String> {
        if self.leaf.is_null(i) || self.parents.iter().any(|p| p.is_null(i)) {
            return Err("the text is null".into());
        }
        let a = self.leaf;
        let bytes: &[u8] = match a.data_type() {
            DataType::Utf8 => return Ok(a.as_string::<i32>().value(i)),
            DataType::LargeUtf8 => return Ok(a.as_string::<i64>().value(i)),
            DataType::Utf8View => return Ok(a.as_string_view().value(i)),
            DataType::Binary => a.as_binary::<i32>().value(i),
            DataType::LargeBinary => a.as_binary::<i64>().value(i),
            _ => a.as_binary_view().value(i),
        };
        std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "the binary text is not UTF-8 (invalid at byte {})",
                e.valid_up_to()
            )
        })
    }
}

/// Reads documents from a list of parquet files, in order.
pub struct ParquetDocs {
    sources: Vec<Source>,
    next_source: usize,
    current: Option<(TextColumn, usize)>,
    pending: VecDeque<TextDoc>,
    /// The text key's names (checked when the input was resolved).
    key: std::result::Result<Vec<String>, SettingError>,
    skip_bad_lines: bool,
    raw_bytes: Arc<AtomicU64>,
    /// Row groups decoded side by side.
    parallel: usize,
    /// Documents (and skipped rows) of the current file so far.
    seen: u64,
    /// Bad rows skipped (only with `skip_bad_lines`).
    pub bad_lines: BadLines,
    /// Text bytes read.
    pub bytes: u64,
}

impl ParquetDocs {
    /// `raw_bytes` accumulates the file bytes read so far (in proportion to the rows), for the
    /// progress bar.
    pub fn new(
        sources: Vec<Source>,
        key: &str,
        skip_bad_lines: bool,
        raw_bytes: Arc<AtomicU64>,
    ) -> Self {
        let parallel =
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_PARALLEL));
        ParquetDocs {
            sources,
            next_source: 0,
            current: None,
            pending: VecDeque::new(),
            key: super::key::key_path(key),
            skip_bad_lines,
            raw_bytes,
            parallel,
            seen: 0,
            bad_lines: BadLines::default(),
            bytes: 0,
        }
    }

    /// Decodes at most `threads` row groups side by side (a run's `-j`; never more than four).
    pub fn limit_threads(&mut self, threads: usize) {
        self.parallel = self.parallel.min(threads.max(1));
    }

    /// The next documents up to about `max_bytes` of text; fewer (possibly none) at the end.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<TextDoc>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes {
            if self.pending.is_empty() && !self.refill()? {
                break;
            }
            while let Some(doc) = self.pending.pop_front() {
                bytes += doc.text.len() + 64;
                batch.push(doc);
                if bytes >= max_bytes {
                    break;
                }
            }
        }
        Ok(batch)
    }

    /// Decodes the next row groups into `pending`; false after the last file.
    fn refill(&mut self) -> Result<bool> {
        let key = self.key.as_ref().map_err(|e| e.clone())?.clone();
        while self.pending.is_empty() {
            let Some((column, next)) = self.current.as_mut() else {
                let Some(source) = self.sources.get(self.next_source) else {
                    return Ok(false);
                };
                let Source::File(path) = source else {
                    bail!("parquet cannot be read from standard input: give the file's path");
                };
                let column = TextColumn::open(path, self.next_source as u32, &key)?;
                self.current = Some((column, 0));
                self.next_source += 1;
                self.seen = 0;
                continue;
            };
            if *next == column.row_groups() {
                if self.seen == 0 {
                    bail!("{}: no documents (the file has no rows)", column.name);
                }
                self.current = None;
                continue;
            }
            let end = column.next_groups(*next, self.parallel);
            let decoded = decode_groups(column, *next..end, &key)?;
            let before = column.size * column.first_rows[*next] / column.rows().max(1);
            let after = column.size * column.first_rows[end] / column.rows().max(1);
            self.raw_bytes.fetch_add(after - before, Ordering::Relaxed);
            *next = end;
            let name = column.name.clone();
            for d in decoded {
                self.take(d, &name)?;
            }
        }
        Ok(true)
    }

    /// Moves one row group's documents to `pending`; its bad rows are skipped and counted, or
    /// the first one is the error.
    fn take(&mut self, d: Decoded, name: &str) -> Result<()> {
        if let Some((row, reason)) = d.bad.first() {
            if !self.skip_bad_lines {
                return Err(SettingError::new()
                    .text(format!(
                        "{name}: row {row}: {reason} (fix the row, or pass "
                    ))
                    .setting(Setting::SkipBadLines)
                    .text(" to skip and count such rows)")
                    .into());
            }
        }
        for (row, reason) in d.bad {
            self.bad_lines
                .add(|| format!("{name}: row {row}: {reason}"));
            self.seen += 1;
        }
        self.seen += d.docs.len() as u64;
        self.bytes += d.bytes;
        self.pending.extend(d.docs);
        Ok(())
    }
}

/// Decodes row groups `groups` of `column`, side by side when there are several, in order.
fn decode_groups(
    column: &TextColumn,
    groups: std::ops::Range<usize>,
    key: &[String],
) -> Result<Vec<Decoded>> {
    if groups.len() == 1 {
        return Ok(vec![column.decode(groups.start, key)?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .map(|g| scope.spawn(move || column.decode(g, key)))
            .collect();
        handles
            .into_iter()
            .map(|h| crate::workers::joined(h.join(), "parquet decoder"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::{ParquetDocs, MAX_PARALLEL};
    use std::sync::Arc;

    #[test]
    fn row_groups_decoded_together_follow_the_runs_threads() {
        let docs = || ParquetDocs::new(Vec::new(), "text", false, Arc::default());
        let most = docs().parallel;
        assert!((1..=MAX_PARALLEL).contains(&most));
        for (threads, want) in [(0, 1), (1, 1), (2, 2.min(most)), (64, most)] {
            let mut d = docs();
            d.limit_threads(threads);
            assert_eq!(d.parallel, want, "-j {threads}");
        }
    }
}
