//! Parquet output: `windows.parquet`, one row per window, with the columns `input_ids`
//! (`list<int32>`, or `list<uint32>` when an id can exceed 2^31 - 1) and `loss_mask`
//! (`list<uint8>`), zstd-compressed, in row groups of about [`ROW_GROUP_BYTES`] of tokens and mask.
//! `datasets.load_dataset("parquet", data_files=…)`, pyarrow and pandas read it as it is.
//!
//! [`ParquetWindows`] is the writer over any destination; [`ParquetWindows::append_file`] copies
//! the rows of a finished file (another run's `windows.parquet`) into it, for merging outputs.
//! [`read_windows`] reads a file back as flat arrays (for `verify` and `inspect`).

use super::dir::{OutputDir, Staged};
use super::manifest::FileInfo;
use super::WindowSink;
use crate::codec::Dtype;
use anyhow::{bail, Context, Result};
use arrow_array::builder::{ListBuilder, PrimitiveBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt8Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub const FILE: &str = "windows.parquet";
/// The manifest's `format` of the file, and its `role` (it holds tokens and mask).
pub const FILE_FORMAT: &str = "parquet";
pub const ROLE: &str = "tokens+loss_mask";
pub const IDS: &str = "input_ids";
pub const MASK: &str = "loss_mask";
/// Uncompressed bytes of tokens and mask per row group (at least one window per group).
pub const ROW_GROUP_BYTES: usize = 128 << 20;
/// Windows per record batch handed to the parquet writer.
const BATCH_WINDOWS: usize = 64;

/// The parquet type of token ids below `vocab_size`: int32 while every id fits, else uint32.
pub fn token_dtype(vocab_size: u64) -> Dtype {
    if vocab_size <= 1 << 31 {
        Dtype::Int32
    } else {
        Dtype::Uint32
    }
}

/// The Arrow schema of a windows file with ids of `dtype` (int32 or uint32).
pub fn schema(dtype: Dtype) -> SchemaRef {
    let ids = match dtype {
        Dtype::Uint32 => DataType::UInt32,
        _ => DataType::Int32,
    };
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, false)));
    Arc::new(Schema::new(vec![
        Field::new(IDS, list(ids), false),
        Field::new(MASK, list(DataType::UInt8), false),
    ]))
}

/// Token ids gathered for the next record batch, in the file's id type.
enum IdColumn {
    Int32(ListBuilder<PrimitiveBuilder<Int32Type>>),
    Uint32(ListBuilder<PrimitiveBuilder<UInt32Type>>),
}

/// Streams windows into a parquet file of [`schema`]`(dtype)`.
pub struct ParquetWindows<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    seq_len: usize,
    ids: IdColumn,
    mask: ListBuilder<PrimitiveBuilder<UInt8Type>>,
    pending: usize,
    pub rows: u64,
}

impl<W: Write + Send> ParquetWindows<W> {
    /// A writer of windows of `seq_len` tokens with ids of `dtype` (int32 or uint32).
    pub fn new(out: W, seq_len: usize, dtype: Dtype) -> Result<Self> {
        let schema = schema(dtype);
        let group = (ROW_GROUP_BYTES / (seq_len.max(1) * 5)).max(1);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .set_max_row_group_size(group)
            .build();
        let field = |t: DataType| Arc::new(Field::new("item", t, false));
        let ids = match dtype {
            Dtype::Int32 => IdColumn::Int32(ListBuilder::new(PrimitiveBuilder::new())),
            Dtype::Uint32 => IdColumn::Uint32(ListBuilder::new(PrimitiveBuilder::new())),
            d => bail!("internal error: parquet ids of dtype {}", d.name()),
        };
        let ids = match ids {
            IdColumn::Int32(b) => IdColumn::Int32(b.with_field(field(DataType::Int32))),
            IdColumn::Uint32(b) => IdColumn::Uint32(b.with_field(field(DataType::UInt32))),
        };
        Ok(ParquetWindows {
            writer: ArrowWriter::try_new(out, schema.clone(), Some(props))?,
            schema,
            seq_len,
            ids,
            mask: ListBuilder::new(PrimitiveBuilder::new()).with_field(field(DataType::UInt8)),
            pending: 0,
            rows: 0,
        })
    }

    /// Appends one window: `seq_len` ids and as many mask values.
    pub fn append(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()> {
        if tokens.len() != self.seq_len || mask.len() != self.seq_len {
            bail!(
                "internal error: a window of {} tokens in a parquet file of windows of {}",
                tokens.len(),
                self.seq_len
            );
        }
        match &mut self.ids {
            IdColumn::Int32(b) => {
                if tokens.iter().any(|&t| t > i32::MAX as u32) {
                    bail!("internal error: an id above 2^31 - 1 in an int32 parquet column");
                }
                b.values().append_slice(bytemuck::cast_slice(tokens));
                b.append(true);
            }
            IdColumn::Uint32(b) => {
                b.values().append_slice(tokens);
                b.append(true);
            }
        }
        self.mask.values().append_slice(mask);
        self.mask.append(true);
        self.pending += 1;
        self.rows += 1;
        if self.pending == BATCH_WINDOWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let ids: ArrayRef = match &mut self.ids {
            IdColumn::Int32(b) => Arc::new(b.finish()),
            IdColumn::Uint32(b) => Arc::new(b.finish()),
        };
        let mask: ArrayRef = Arc::new(self.mask.finish());
        let batch = RecordBatch::try_new(self.schema.clone(), vec![ids, mask])?;
        self.writer.write(&batch)?;
        self.pending = 0;
        Ok(())
    }

    /// Appends every row of the finished windows file `path` (same `seq_len` and id type), for
    /// merging outputs; returns the rows appended. The rows are decoded and encoded again, a
    /// record batch at a time, so memory holds a batch, not the file.
    pub fn append_file(&mut self, path: &Path) -> Result<u64> {
        self.flush_batch()?;
        let mut rows = 0u64;
        for_each_batch(path, |batch| {
            if batch.schema() != self.schema {
                bail!(
                    "{}: columns {} are not those of this output ({})",
                    path.display(),
                    batch.schema(),
                    self.schema
                );
            }
            check_lengths(&batch, self.seq_len, path)?;
            self.writer.write(&batch)?;
            rows += batch.num_rows() as u64;
            Ok(())
        })?;
        self.rows += rows;
        Ok(rows)
    }

    /// Writes the last row group and the footer; returns the destination.
    pub fn finish(mut self) -> Result<W> {
        self.flush_batch()?;
        Ok(self.writer.into_inner()?)
    }
}

/// Calls `f` with each record batch of the parquet file `path`, in order.
fn for_each_batch(path: &Path, mut f: impl FnMut(RecordBatch) -> Result<()>) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH_WINDOWS).build())
        .with_context(|| format!("{} is not a readable parquet file", path.display()))?;
    for batch in reader {
        f(batch.with_context(|| format!("{} is damaged", path.display()))?)?;
    }
    Ok(())
}

/// Checks that every row of both columns holds `seq_len` values.
fn check_lengths(batch: &RecordBatch, seq_len: usize, path: &Path) -> Result<()> {
    for column in batch.columns() {
        let list = column
            .as_list_opt::<i32>()
            .with_context(|| format!("{}: a column is not a list", path.display()))?;
        if list.null_count() > 0
            || list
                .offsets()
                .windows(2)
                .any(|w| w[1] - w[0] != seq_len as i32)
        {
            bail!(
                "{}: a row is not a window of {seq_len} tokens",
                path.display()
            );
        }
    }
    Ok(())
}

/// The windows of `path` as flat little-endian arrays: token ids (of the file's id type,
/// returned) and mask bytes, `seq_len` per window.
pub fn read_windows(path: &Path, seq_len: usize) -> Result<(Dtype, Vec<u8>, Vec<u8>)> {
    let (mut tokens, mut mask) = (Vec::new(), Vec::new());
    let dtype = read_windows_into(path, seq_len, &mut tokens, &mut mask)?;
    Ok((dtype, tokens, mask))
}

/// [`read_windows`] written to `tokens` and `mask` a record batch at a time, so the file's
/// windows are never all in memory.
pub fn read_windows_into(
    path: &Path,
    seq_len: usize,
    tokens: &mut impl Write,
    mask: &mut impl Write,
) -> Result<Dtype> {
    let mut dtype = Dtype::Int32;
    let mut buf = Vec::new();
    for_each_batch(path, |batch| {
        check_lengths(&batch, seq_len, path)?;
        let (ids, m) = (batch.column_by_name(IDS), batch.column_by_name(MASK));
        let (Some(ids), Some(m)) = (ids, m) else {
            bail!("{}: no {IDS} and {MASK} columns", path.display());
        };
        let values = ids.as_list::<i32>().values();
        buf.clear();
        match values.data_type() {
            DataType::Int32 => {
                for v in values.as_primitive::<Int32Type>().values() {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            DataType::UInt32 => {
                dtype = Dtype::Uint32;
                for v in values.as_primitive::<UInt32Type>().values() {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            t => bail!("{}: {IDS} holds {t}", path.display()),
        }
        tokens.write_all(&buf)?;
        let m = m.as_list::<i32>().values();
        let m = m
            .as_primitive_opt::<UInt8Type>()
            .with_context(|| format!("{}: {MASK} is not uint8", path.display()))?;
        mask.write_all(m.values())?;
        Ok(())
    })?;
    Ok(dtype)
}

/// `windows.parquet` in an output directory.
pub struct ParquetSink {
    inner: ParquetWindows<Staged>,
    dtype: Dtype,
}

impl ParquetSink {
    pub fn create(dir: &mut OutputDir, seq_len: usize, dtype: Dtype) -> Result<Self> {
        Ok(ParquetSink {
            inner: ParquetWindows::new(dir.create(FILE)?, seq_len, dtype)?,
            dtype,
        })
    }
}

impl WindowSink for ParquetSink {
    fn write_window(&mut self, tokens: &[u32], mask: &[u8]) -> Result<()> {
        self.inner.append(tokens, mask)
    }

    fn finish(self: Box<Self>, _dir: &mut OutputDir) -> Result<Vec<FileInfo>> {
        Ok(vec![finish_staged(self.inner, self.dtype)?])
    }
}

/// Completes `windows.parquet` staged in an output directory (ids of `dtype`) and describes it
/// for the manifest: the end of [`ParquetSink`], and of a merge that created the writer with
/// `ParquetWindows::new(dir.create(FILE)?, seq_len, dtype)` and appended parts with
/// [`ParquetWindows::append_file`].
pub fn finish_staged(writer: ParquetWindows<Staged>, dtype: Dtype) -> Result<FileInfo> {
    let mut file = writer.finish()?;
    file.flush()?;
    let bytes = file.get_ref().metadata()?.len();
    Ok(FileInfo::new(FILE, ROLE, FILE_FORMAT, Some(dtype), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_trip_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        for dtype in [Dtype::Int32, Dtype::Uint32] {
            let big = if dtype == Dtype::Uint32 { u32::MAX } else { 7 };
            let mut w = ParquetWindows::new(std::fs::File::create(&a).unwrap(), 3, dtype).unwrap();
            for i in 0..100u32 {
                w.append(&[i, big, 0], &[1, 0, (i % 2) as u8]).unwrap();
            }
            assert!(w.append(&[1], &[1]).is_err());
            w.finish().unwrap();
            let mut w = ParquetWindows::new(std::fs::File::create(&b).unwrap(), 3, dtype).unwrap();
            w.append(&[9, 9, 9], &[0, 0, 0]).unwrap();
            assert_eq!(w.append_file(&a).unwrap(), 100);
            assert_eq!(w.rows, 101);
            w.finish().unwrap();
            let (d, tokens, mask) = read_windows(&b, 3).unwrap();
            assert_eq!(d, dtype);
            assert_eq!(tokens.len(), 101 * 3 * 4);
            assert_eq!(&mask[..6], &[0, 0, 0, 1, 0, 0]);
            let id = |i: usize| u32::from_le_bytes(tokens[i * 4..i * 4 + 4].try_into().unwrap());
            assert_eq!((id(3), id(4), id(300)), (0, big, 99));
            assert!(read_windows(&b, 4).is_err());
            let mut w = ParquetWindows::new(std::fs::File::create(&a).unwrap(), 4, dtype).unwrap();
            assert!(w.append_file(&b).is_err());
        }
    }
}
