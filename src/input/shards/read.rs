//! Reading token shards: [`OpenShard`] maps one shard and checks its index against its data,
//! [`ShardDocs`] walks its documents (the EOD rule applied, every id checked), and
//! [`ShardStream`] reads the documents of a run's shards in order, in batches, each shard opened
//! when reached and its pages released once copied out, so memory does not grow with the shards.

use super::{with_suffix, BinSum, Shard, ShardKind};
use crate::codec::dtype::decode_ids;
use crate::codec::megatron::decode_idx;
use crate::codec::npy::parse_npy_header;
use crate::codec::Dtype;
use crate::mapped::{map_file, Bytes};
use crate::record::{DocBatch, DocRecord};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a shard's elements split into documents.
enum Layout {
    /// Element ranges, one per indexed document.
    Indexed(Vec<(usize, usize)>),
    /// Split after each EOD id.
    Separated,
}

/// An opened, validated shard.
pub struct OpenShard {
    name: String,
    data: Bytes,
    /// Byte offset of the first element (the `.npy` header length; 0 otherwise).
    offset: usize,
    dtype: Dtype,
    len: usize,
    layout: Layout,
    /// Bytes of `data` released from the resident set so far.
    released: AtomicUsize,
    /// CRC-32C of the Megatron `.idx` read.
    index_crc: Option<u32>,
}

/// Where a shard's elements start, their type and how they split into documents.
type Parsed = (usize, Dtype, Layout);

impl OpenShard {
    /// Maps the shard and checks its index against its data.
    pub fn open(shard: &Shard) -> Result<OpenShard> {
        let name = shard.name();
        let data = map_file(&shard.path)?;
        let mut index_crc = None;
        let (offset, dtype, layout) = match shard.kind {
            ShardKind::U16 => raw(&name, &data, Dtype::Uint16, "u16")?,
            ShardKind::U32 => raw(&name, &data, Dtype::Uint32, "u32")?,
            ShardKind::Npy => npy(&name, &data)?,
            ShardKind::Megatron => {
                let idx_path = shard.path.with_extension("idx");
                let idx = map_file(&idx_path)?;
                // Summed while it is in memory, for the check against `PREFIX.json`.
                index_crc = Some(crc32c::crc32c(&idx));
                megatron(&name, &data, &idx, &idx_path)?
            }
            ShardKind::Datatrove => datatrove(&name, &data, &with_suffix(&shard.path, ".index"))?,
        };
        let len = (data.len() - offset) / dtype.size();
        Ok(OpenShard {
            name,
            data,
            offset,
            dtype,
            len,
            layout,
            released: AtomicUsize::new(0),
            index_crc,
        })
    }

    /// Bytes per element.
    pub fn elem_size(&self) -> usize {
        self.dtype.size()
    }

    /// Releases the mapped bytes before element `element` not released yet (see
    /// [`Bytes::release`]).
    pub fn release_before(&self, element: usize) {
        let start = self.released.load(Ordering::Relaxed);
        let end = self.offset + element * self.dtype.size();
        self.released
            .store(self.data.release(start, end), Ordering::Relaxed);
    }

    /// Iterates over the shard's documents (EOD rule applied, ids checked), owning the shard.
    pub fn into_docs(self, eod: u32, max_id: u32) -> ShardDocs {
        ShardDocs {
            shard: self,
            eod,
            max_id,
            next: 0,
            end: u64::MAX,
            pos: 0,
        }
    }

    /// Where each indexed document starts, in bytes of the data, when the documents follow each
    /// other in file order (Megatron and datatrove as written); `None` for separated layouts
    /// (raw, `.npy`), whose documents are found only by reading.
    pub fn doc_starts(&self) -> Option<Vec<u64>> {
        let Layout::Indexed(docs) = &self.layout else {
            return None;
        };
        let size = self.dtype.size() as u64;
        let starts: Vec<u64> = docs
            .iter()
            .map(|&(a, _)| self.offset as u64 + a as u64 * size)
            .collect();
        let ordered = docs.windows(2).all(|w| w[0].1 <= w[1].0);
        ordered.then_some(starts)
    }

    fn decode(&self, start: usize, end: usize, out: &mut Vec<u32>) -> Result<()> {
        decode_ids(&self.data[self.offset..], self.dtype, start, end, out).map_err(|i| {
            anyhow::anyhow!(
                "{}: token {i} is not a valid id for {} data (negative, fractional or too large)",
                self.name,
                self.dtype.name()
            )
        })
    }
}

/// A raw little-endian array: documents separated by the EOD id.
fn raw(name: &str, data: &[u8], dtype: Dtype, kind: &str) -> Result<Parsed> {
    if !data.len().is_multiple_of(dtype.size()) {
        bail!(
            "{name}: {} bytes is not a whole number of {kind} ids ({} bytes each); is the input \
             format {kind} right?",
            data.len(),
            dtype.size()
        );
    }
    Ok((0, dtype, Layout::Separated))
}

/// A 1-D integer `.npy` array: documents separated by the EOD id.
fn npy(name: &str, data: &[u8]) -> Result<Parsed> {
    let h = parse_npy_header(data).with_context(|| name.to_string())?;
    if matches!(h.dtype, Dtype::Bool | Dtype::Float32 | Dtype::Float64) {
        bail!(
            "{name}: dtype {:?} is not a little-endian integer type; token ids must be stored as \
             integers (e.g. np.uint16, np.uint32, np.int32, np.int64)",
            h.dtype.npy_descr()
        );
    }
    let [n] = h.shape[..] else {
        bail!(
            "{name}: shape {:?} has {} dimensions; token shards must be 1-D arrays (flatten them)",
            h.shape,
            h.shape.len()
        );
    };
    let need = n
        .checked_mul(h.dtype.size() as u64)
        .and_then(|b| b.checked_add(h.data_offset as u64));
    if need != Some(data.len() as u64) {
        let need = need.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string());
        bail!(
            "{name}: the .npy header declares {n} elements ({need} bytes with the header), but \
             the file is {} bytes (truncated?)",
            data.len()
        );
    }
    Ok((h.data_offset, h.dtype, Layout::Separated))
}

/// A Megatron `.bin` and its `.idx`: one document per indexed document.
fn megatron(name: &str, data: &[u8], idx: &[u8], idx_path: &Path) -> Result<Parsed> {
    let idx_name = idx_path.display().to_string();
    let index = decode_idx(idx).with_context(|| idx_name.clone())?;
    if data.len() as u64 != index.bin_len() {
        bail!(
            "{name} is {} bytes but {idx_name} describes {} bytes of {} tokens: the .bin is \
             truncated or the .idx belongs to another .bin",
            data.len(),
            index.bin_len(),
            index.dtype.name()
        );
    }
    let mut starts = Vec::with_capacity(index.lengths.len() + 1);
    let mut at = 0usize;
    for &l in &index.lengths {
        starts.push(at);
        at += l as usize;
    }
    starts.push(at);
    let d = &index.doc_indices;
    if d.first().copied().unwrap_or(1) != 0 {
        bail!("{idx_name}: the document indices do not start with 0");
    }
    let mut docs = Vec::with_capacity(d.len().saturating_sub(1));
    for (i, w) in d.windows(2).enumerate() {
        if w[1] < w[0] || w[1] as usize >= starts.len() {
            bail!(
                "{idx_name}: document index {} ({}) decreases or exceeds the {} sequences",
                i + 1,
                w[1],
                starts.len() - 1
            );
        }
        docs.push((starts[w[0] as usize], starts[w[1] as usize]));
    }
    Ok((0, index.dtype, Layout::Indexed(docs)))
}

/// A datatrove `.ds` and its `.ds.index` of u64 cumulative document ends; the token width
/// follows from the `.ds` size and the last end.
fn datatrove(name: &str, data: &[u8], idx_path: &Path) -> Result<Parsed> {
    let idx_name = idx_path.display().to_string();
    let idx = map_file(idx_path)?;
    if idx.len() % 8 != 0 {
        bail!(
            "{idx_name}: {} bytes is not a whole number of u64 ends",
            idx.len()
        );
    }
    let ends: Vec<u64> = idx
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let total = ends.last().copied().unwrap_or(0);
    let dtype = match (total, data.len() as u64) {
        (0, 0) => Dtype::Uint16,
        (t, b) if t.checked_mul(2) == Some(b) => Dtype::Uint16,
        (t, b) if t.checked_mul(4) == Some(b) => Dtype::Uint32,
        (t, b) => bail!(
            "{name} is {b} bytes but {idx_name} ends at token {t}: neither uint16 nor uint32 fits \
             (truncated .ds, or an index of another file?)"
        ),
    };
    let mut docs = Vec::with_capacity(ends.len());
    let mut prev = 0u64;
    for (i, &e) in ends.iter().enumerate() {
        if e < prev {
            bail!("{idx_name}: document end {i} ({e}) is before the previous ({prev})");
        }
        docs.push((prev as usize, e as usize));
        prev = e;
    }
    Ok((0, dtype, Layout::Indexed(docs)))
}

/// The documents of one shard: `(document index in the shard, ids ending with EOD)`.
pub struct ShardDocs {
    shard: OpenShard,
    eod: u32,
    max_id: u32,
    /// Next document index.
    next: u64,
    /// One past the last document to read (indexed layouts).
    end: u64,
    /// Next element (separated layouts).
    pos: usize,
}

/// Elements decoded at a time while looking for the next separator.
const SCAN: usize = 1 << 16;

impl ShardDocs {
    /// The element after the last one read so far (every element before it has been read, when
    /// the index lists documents in file order, as Megatron and datatrove write them).
    pub fn position(&self) -> usize {
        match &self.shard.layout {
            Layout::Indexed(docs) => match self.next {
                0 => 0,
                n => docs.get(n as usize - 1).map_or(0, |d| d.1),
            },
            Layout::Separated => self.pos,
        }
    }

    /// Appends the next document's ids (EOD last) to `out` and returns its index in the shard, or
    /// `None` after the last document.
    pub fn next_doc(&mut self, out: &mut Vec<u32>) -> Result<Option<u64>> {
        let before = out.len();
        let start = match &self.shard.layout {
            Layout::Indexed(docs) => {
                let doc = docs
                    .get(self.next as usize)
                    .filter(|_| self.next < self.end);
                let Some(&(a, b)) = doc else {
                    return Ok(None);
                };
                self.shard.decode(a, b, out)?;
                if out.len() == before || out.last() != Some(&self.eod) {
                    out.push(self.eod);
                }
                a
            }
            Layout::Separated => match self.next_separated(out)? {
                Some(start) => start,
                None => return Ok(None),
            },
        };
        self.check_ids(&out[before..], start)?;
        let index = self.next;
        self.next += 1;
        Ok(Some(index))
    }

    /// Reads up to and including the next EOD (or to the end, appending EOD); returns where the
    /// document started.
    fn next_separated(&mut self, out: &mut Vec<u32>) -> Result<Option<usize>> {
        let s = &self.shard;
        if self.pos >= s.len {
            return Ok(None);
        }
        let start = self.pos;
        loop {
            let end = (self.pos + SCAN).min(s.len);
            let scanned = out.len();
            s.decode(self.pos, end, out)?;
            if let Some(k) = out[scanned..].iter().position(|&t| t == self.eod) {
                out.truncate(scanned + k + 1);
                self.pos += k + 1;
                return Ok(Some(start));
            }
            self.pos = end;
            if end == s.len {
                out.push(self.eod);
                return Ok(Some(start));
            }
        }
    }

    /// Every id must be one the tokenizer knows, or the EOD.
    fn check_ids(&self, doc: &[u32], start: usize) -> Result<()> {
        if doc.iter().copied().max().unwrap_or(0) <= self.max_id {
            return Ok(());
        }
        if let Some(k) = doc.iter().position(|&t| t > self.max_id && t != self.eod) {
            bail!(
                "{}: token {} (document {}) has id {}, outside the tokenizer's vocabulary \
                 (highest id {}); is this shard from another tokenizer?",
                self.shard.name,
                start + k,
                self.next,
                doc[k],
                self.max_id
            );
        }
        Ok(())
    }
}

/// The documents of a run's shards in order, a batch at a time. Each shard is opened (mapped,
/// its index read) only when reached and dropped when done; the pages already copied out are
/// released after each batch, so the resident set does not grow with the shard.
pub struct ShardStream<'a> {
    shards: &'a [Shard],
    eod: u32,
    max_id: u32,
    /// The shard being read, its index in `shards`, and the checksum of its bytes read so far
    /// when `utk tokenize` recorded one.
    current: Option<(u32, ShardDocs, Option<BinSum>)>,
    next_shard: usize,
    /// Bytes of the shards' elements read so far (EOD appended by the rule counted too).
    pub bytes: u64,
}

impl<'a> ShardStream<'a> {
    /// Reads `shards` with the run's EOD id; ids above `max_id` (other than EOD) are errors.
    pub fn new(shards: &'a [Shard], eod: u32, max_id: u32) -> Self {
        ShardStream {
            shards,
            eod,
            max_id,
            current: None,
            next_shard: 0,
            bytes: 0,
        }
    }

    /// Appends documents to `batch` until it holds at least `max_tokens` ids or the shards end.
    /// Returns false when nothing was left to read.
    pub fn next_batch(&mut self, batch: &mut DocBatch, max_tokens: usize) -> Result<bool> {
        let mut any = false;
        while batch.ids.len() < max_tokens && self.next_doc(batch)? {
            any = true;
        }
        if let Some((_, docs, sum)) = &mut self.current {
            let shard = &docs.shard;
            if let Some(sum) = sum {
                sum.advance(
                    &shard.data,
                    shard.offset + docs.position() * shard.elem_size(),
                );
            }
            // What has been copied out is not read again: keep the resident set bounded.
            shard.release_before(docs.position());
        }
        Ok(any)
    }

    /// Appends the next document; false after the last shard's last.
    fn next_doc(&mut self, batch: &mut DocBatch) -> Result<bool> {
        loop {
            if let Some((source, docs, _)) = self.current.as_mut() {
                let before = batch.ids.len();
                if let Some(line) = docs.next_doc(&mut batch.ids)? {
                    let tokens = batch.ids.len() - before;
                    self.bytes += (tokens * docs.shard.elem_size()) as u64;
                    batch.docs.push(DocRecord {
                        source: *source,
                        line,
                        tokens: tokens as u64,
                    });
                    return Ok(true);
                }
                if let Some((_, docs, Some(sum))) = self.current.take() {
                    sum.finish(&docs.shard.data, Path::new(&docs.shard.name))?;
                }
            }
            let Some(shard) = self.shards.get(self.next_shard) else {
                return Ok(false);
            };
            let open = OpenShard::open(shard)?;
            let sum = recorded_sum(shard, &open)?;
            let mut docs = open.into_docs(self.eod, self.max_id);
            if let Some((a, b)) = shard.docs {
                (docs.next, docs.end) = (a, b);
            }
            self.current = Some((self.next_shard as u32, docs, sum));
            self.next_shard += 1;
        }
    }
}

/// For a shard read whole whose `PREFIX.json` records checksums: its `.idx` checked now, and
/// the running checksum of its `.bin`.
fn recorded_sum(shard: &Shard, open: &OpenShard) -> Result<Option<BinSum>> {
    if shard.docs.is_some() {
        return Ok(None);
    }
    let Some(recorded) = shard.recorded()? else {
        return Ok(None);
    };
    if let Some(crc) = open.index_crc {
        recorded.check_idx(&shard.path, crc)?;
    }
    Ok(recorded.bin_sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::npy::npy_header;

    #[test]
    fn npy_shards_must_be_1d_integers() {
        let check = |dtype: Dtype, shape: &[u64]| {
            let mut data = npy_header(dtype, shape);
            data.resize(
                data.len() + shape.iter().product::<u64>() as usize * dtype.size(),
                0,
            );
            npy("x.npy", &data).map(|(o, d, _)| (o, d))
        };
        assert_eq!(check(Dtype::Uint16, &[7]).unwrap(), (128, Dtype::Uint16));
        let err = |r: Result<(usize, Dtype)>| r.unwrap_err().to_string();
        assert!(err(check(Dtype::Float32, &[7])).contains("integer"));
        assert!(err(check(Dtype::Int32, &[2, 3])).contains("1-D"));
    }
}
