//! How each kind of file of an output is joined across parts, streaming: no index or sidecar is
//! held whole, so memory does not grow with the parts. [`Join::of`] is the one table from a
//! manifest file entry to its joiner: a new kind of file gets a row there and, if bytes cannot
//! simply follow each other, a function here.

use super::PartView;
use crate::codec::megatron::MAGIC;
use crate::codec::npy::{npy_header, parse_npy_header};
use crate::codec::Dtype;
use crate::output::dir::Staged;
use crate::output::manifest::FileInfo;
use crate::output::parquet::{self, ParquetWindows};
use crate::output::provenance::{decode_doc, decode_span, encode_doc, encode_span};
use crate::output::provenance::{DOC_BYTES, SPAN_BYTES};
use crate::output::reader::inside;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// How one kind of file is joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Headerless arrays and Megatron `.bin` data: the parts' bytes one after another.
    Concat,
    /// A Megatron `.idx`: counts summed, lengths copied, pointers and document indices shifted.
    MegatronIdx,
    /// A `.npy` array: one header for all rows, then each part's data.
    Npy,
    /// `provenance.spans`: documents and windows renumbered.
    Spans,
    /// `provenance.docs`: sources renumbered into the whole run's inputs, lines of a file read
    /// in ranges made lines of the whole file.
    Docs,
    /// `windows.parquet`: every part's rows re-encoded into one file, a record batch at a time
    /// (parquet files cannot follow each other byte for byte).
    Parquet { dtype: Dtype, seq_len: usize },
}

impl Join {
    /// The joiner of a file the manifest lists (by its `format`, or `role` for provenance), in
    /// an output of `seq_len`-token windows.
    pub fn of(file: &FileInfo, seq_len: usize) -> Result<Join> {
        Ok(match (file.format.as_str(), file.role.as_str()) {
            (parquet::FILE_FORMAT, _) => Join::Parquet {
                dtype: file
                    .dtype
                    .with_context(|| format!("{}: the manifest gives no dtype", file.path))?,
                seq_len,
            },
            ("megatron-bin" | "olmo-numpy", _) => Join::Concat,
            ("megatron-idx", _) => Join::MegatronIdx,
            ("npy", _) => Join::Npy,
            (_, "provenance-spans") => Join::Spans,
            (_, "provenance-docs") => Join::Docs,
            (format, role) => bail!(
                "{}: utk merge does not know how to join a {format} file ({role})",
                file.path
            ),
        })
    }

    /// Writes `name` of every part, joined, to `out`.
    pub fn write(self, parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
        match self {
            Join::Concat => concat(parts, name, out),
            Join::MegatronIdx => megatron_idx(parts, name, out),
            Join::Npy => npy(parts, name, out),
            Join::Spans => spans(parts, name, out),
            Join::Docs => docs(parts, name, out),
            Join::Parquet { dtype, seq_len } => {
                let mut w = ParquetWindows::new(&mut *out, seq_len, dtype)?;
                for p in parts {
                    w.append_file(&inside(&p.dir, name)?)?;
                }
                w.finish()?;
                Ok(())
            }
        }
    }
}

fn open(dir: &Path, name: &str) -> Result<File> {
    let path = inside(dir, name)?;
    File::open(&path).with_context(|| format!("cannot open {}", path.display()))
}

/// Appends the rest of `src` by the kernel's copy.
fn append(out: &mut Staged, src: &mut File) -> Result<()> {
    out.flush()?;
    out.get_mut().append_rest_of(src)?;
    Ok(())
}

fn concat(parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
    for p in parts {
        append(out, &mut open(&p.dir, name)?)?;
    }
    Ok(())
}

fn npy(parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
    let mut dtype = None;
    let mut rows = 0u64;
    let mut cols = None;
    for p in parts {
        let h = npy_head(&p.dir, name)?;
        if dtype.is_some_and(|d| d != h.0) || cols.is_some_and(|c| c != h.1[1]) {
            bail!(
                "{}: another dtype or row length than part 0's",
                p.dir.join(name).display()
            );
        }
        (dtype, cols) = (Some(h.0), Some(h.1[1]));
        rows += h.1[0];
    }
    let (Some(dtype), Some(cols)) = (dtype, cols) else {
        bail!("no parts to merge");
    };
    out.write_all(&npy_header(dtype, &[rows, cols]))?;
    for p in parts {
        let offset = npy_head(&p.dir, name)?.2;
        let mut f = open(&p.dir, name)?;
        f.seek(SeekFrom::Start(offset as u64))?;
        append(out, &mut f)?;
    }
    Ok(())
}

/// The dtype, `[rows, cols]` and data offset of a 2-D `.npy` file, from its header alone.
fn npy_head(dir: &Path, name: &str) -> Result<(Dtype, [u64; 2], usize)> {
    let mut head = Vec::with_capacity(4096);
    open(dir, name)?.take(1 << 16).read_to_end(&mut head)?;
    let h = parse_npy_header(&head).with_context(|| dir.join(name).display().to_string())?;
    let [rows, cols] = h.shape[..] else {
        bail!("{}: not a 2-D array", dir.join(name).display());
    };
    Ok((h.dtype, [rows, cols], h.data_offset))
}

/// The header of a Megatron `.idx`: dtype code, sequences, document indices.
fn idx_head(r: &mut impl Read, path: &Path) -> Result<(u8, u64, u64)> {
    let mut h = [0u8; 34];
    r.read_exact(&mut h)
        .with_context(|| format!("{} is truncated", path.display()))?;
    if &h[..9] != MAGIC || h[9..17] != 1u64.to_le_bytes() {
        bail!("{} is not a Megatron .idx (version 1)", path.display());
    }
    let at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
    Ok((h[17], at(18), at(26)))
}

fn megatron_idx(parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
    let mut heads = Vec::with_capacity(parts.len());
    for p in parts {
        let path = inside(&p.dir, name)?;
        heads.push(idx_head(&mut open(&p.dir, name)?, &path)?);
    }
    let code = heads.first().map_or(0, |h| h.0);
    if let Some(i) = heads.iter().position(|h| h.0 != code) {
        bail!(
            "{}: another dtype than part 0's",
            parts[i].dir.join(name).display()
        );
    }
    let sequences: u64 = heads.iter().map(|h| h.1).sum();
    let documents: u64 = 1 + heads.iter().map(|h| h.2.saturating_sub(1)).sum::<u64>();
    out.write_all(MAGIC)?;
    out.write_all(&1u64.to_le_bytes())?;
    out.write_all(&[code])?;
    out.write_all(&sequences.to_le_bytes())?;
    out.write_all(&documents.to_le_bytes())?;
    // Lengths, then pointers (shifted by the data before), then document indices (shifted by
    // the sequences before; each part's leading 0 but the first dropped).
    for (p, h) in parts.iter().zip(&heads) {
        let mut r = section(p, name, 34, 4 * h.1)?;
        std::io::copy(&mut r, out)?;
    }
    let bin = Path::new(name).with_extension("bin");
    let bin = bin.to_string_lossy();
    let mut shift = 0u64;
    for (p, h) in parts.iter().zip(&heads) {
        let r = section(p, name, 34 + 4 * h.1, 8 * h.1)?;
        shifted(r, shift, 0, out)?;
        shift += p.file_bytes(&bin)?;
    }
    out.write_all(&0u64.to_le_bytes())?;
    let mut shift = 0u64;
    for (p, h) in parts.iter().zip(&heads) {
        let r = section(p, name, 34 + 12 * h.1, 8 * h.2)?;
        shifted(r, shift, 1, out)?;
        shift += h.1;
    }
    Ok(())
}

/// `len` bytes of a part's file from `offset`, buffered.
fn section(
    p: &PartView,
    name: &str,
    offset: u64,
    len: u64,
) -> Result<BufReader<std::io::Take<File>>> {
    let mut f = open(&p.dir, name)?;
    f.seek(SeekFrom::Start(offset))?;
    Ok(BufReader::with_capacity(1 << 20, f.take(len)))
}

/// Copies little-endian u64s, adding `shift`, skipping the first `skip`.
fn shifted(mut r: impl Read, shift: u64, skip: usize, out: &mut Staged) -> Result<()> {
    let mut b = [0u8; 8];
    let mut i = 0;
    while read_record(&mut r, &mut b)? {
        if i >= skip {
            out.write_all(&(u64::from_le_bytes(b) + shift).to_le_bytes())?;
        }
        i += 1;
    }
    Ok(())
}

/// Fills `buf` from `r`; false at a clean end, an error in the middle of a record.
fn read_record(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 if n == 0 => return Ok(false),
            0 => bail!("a record is truncated"),
            k => n += k,
        }
    }
    Ok(true)
}

fn spans(parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
    let (mut docs, mut windows) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(SPAN_BYTES);
    for p in parts {
        let mut r = BufReader::with_capacity(1 << 20, open(&p.dir, name)?);
        let mut rec = [0u8; SPAN_BYTES];
        while read_record(&mut r, &mut rec)? {
            let mut s = decode_span(&rec);
            s.doc += docs;
            s.window += windows;
            buf.clear();
            encode_span(&s, &mut buf)?;
            out.write_all(&buf)?;
        }
        docs += p.documents;
        windows += p.windows;
    }
    Ok(())
}

fn docs(parts: &[PartView], name: &str, out: &mut Staged) -> Result<()> {
    let mut buf = Vec::with_capacity(DOC_BYTES);
    for p in parts {
        let mut r = BufReader::with_capacity(1 << 20, open(&p.dir, name)?);
        let mut rec = [0u8; DOC_BYTES];
        while read_record(&mut r, &mut rec)? {
            let mut d = decode_doc(&rec);
            let Some(&(input, lines)) = p.sources.get(d.source as usize) else {
                bail!(
                    "{}: a document of source {}, which the manifest does not list",
                    p.dir.join(name).display(),
                    d.source
                );
            };
            d.source = input;
            d.line += lines;
            buf.clear();
            encode_doc(&d, &mut buf);
            out.write_all(&buf)?;
        }
    }
    Ok(())
}
