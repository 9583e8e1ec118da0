//! Byte-level BPE: merges by rank over the bytes of one pre-token, with a per-thread cache.
//!
//! The `tokenizers` crate merges, at every step, the adjacent pair with the lowest rank, the
//! leftmost one among equals (a min-heap on `(rank, position)` whose stale entries are skipped).
//! [`Bpe::merge`] does the same: a linear scan over a rank array for short words, where it is
//! fastest, and a heap over a linked list for long ones, where the scan would be quadratic. The
//! cache maps pre-token bytes to ids: most pre-tokens of a corpus repeat, so most pre-tokens cost
//! one hash lookup.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Pre-tokens longer than this are not cached (the crate uses the same bound).
const MAX_CACHED_LEN: usize = 256;
/// Entries per thread before the cache is emptied and refilled.
const CACHE_ENTRIES: usize = 1 << 19;
/// Words longer than this (in bytes) merge with the heap.
const HEAP_ABOVE: usize = 96;

/// A byte-level BPE model: initial ids of the 256 bytes, and the merge table.
pub struct Bpe {
    byte_ids: [u32; 256],
    /// `(left, right)` → `(rank, merged id)`; a pair listed twice keeps its last rank, as in the
    /// crate (it collects the list into a hash map).
    merges: FxHashMap<u64, (u32, u32)>,
    /// With `ignore_merges`, a pre-token that is itself in the vocabulary is one id.
    whole: Option<FxHashMap<Box<[u8]>, u32>>,
    /// Identifies this model in the per-thread caches.
    key: u64,
}

#[inline(always)]
fn pair(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// The per-thread cache: pre-token bytes → ids. Keys of up to 15 bytes (most pre-tokens) are
/// packed with their length into a `u128`, keys of up to 31 bytes into two, so a lookup hashes and
/// compares integers; longer keys are boxed. A value is one id, or a range of `ids` when the
/// pre-token has several.
struct Cache {
    owner: u64,
    short: FxHashMap<u128, Ids>,
    medium: FxHashMap<(u128, u128), Ids>,
    long: FxHashMap<Box<[u8]>, Ids>,
    ids: IdStore,
    /// Scratch space for merging.
    syms: Vec<u32>,
    ranks: Vec<(u32, u32)>,
}

/// A cached encoding: one id, or a range of an [`IdStore`].
#[derive(Clone, Copy)]
pub(super) struct Ids {
    /// The id, or the start of the range in the store.
    first: u32,
    len: u32,
}

/// The ids of the cached encodings longer than one id, back to back: the caches of both
/// encoders (byte-level pre-tokens here, SentencePiece pieces in `spm`) keep their values here.
#[derive(Default)]
pub(super) struct IdStore {
    ids: Vec<u32>,
}

impl IdStore {
    pub(super) fn clear(&mut self) {
        self.ids.clear();
    }

    /// Appends the ids `v` stands for.
    #[inline(always)]
    pub(super) fn emit(&self, v: Ids, out: &mut Vec<u32>) {
        if v.len == 1 {
            out.push(v.first);
        } else {
            out.extend_from_slice(&self.ids[v.first as usize..(v.first + v.len) as usize]);
        }
    }

    /// Keeps `ids` and returns what stands for them.
    pub(super) fn store(&mut self, ids: &[u32]) -> Ids {
        if ids.len() == 1 {
            return Ids {
                first: ids[0],
                len: 1,
            };
        }
        let first = self.ids.len() as u32;
        self.ids.extend_from_slice(ids);
        Ids {
            first,
            len: ids.len() as u32,
        }
    }
}

/// The `len < 16` bytes at `text[at..]` as a little-endian integer, zero above them: one
/// unaligned load when the text extends 16 bytes past `at`.
#[inline(always)]
fn load(text: &[u8], at: usize, len: usize) -> u128 {
    debug_assert!(len < 16);
    let v = match text.get(at..at + 16) {
        Some(s) => u128::from_le_bytes(s.try_into().expect("16 bytes")),
        None => {
            let mut buf = [0u8; 16];
            buf[..len].copy_from_slice(&text[at..at + len]);
            u128::from_le_bytes(buf)
        }
    };
    v & ((1u128 << (8 * len)) - 1)
}

impl Cache {
    fn clear(&mut self) {
        self.short.clear();
        self.medium.clear();
        self.long.clear();
        self.ids.clear();
    }

    #[inline(always)]
    fn emit(&self, v: Ids, out: &mut Vec<u32>) {
        self.ids.emit(v, out)
    }

    fn store(&mut self, ids: &[u32]) -> Ids {
        self.ids.store(ids)
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        owner: u64::MAX,
        short: FxHashMap::default(),
        medium: FxHashMap::default(),
        long: FxHashMap::default(),
        ids: IdStore::default(),
        syms: Vec::new(),
        ranks: Vec::new(),
    });
}

/// A model with this thread's cache borrowed: encodes many pre-tokens for one lookup of the
/// thread-local.
pub struct Encoding<'a> {
    bpe: &'a Bpe,
    cache: &'a mut Cache,
}

impl Encoding<'_> {
    /// Appends the ids of the pre-token `text[start..end]` to `out`.
    #[inline(always)]
    pub fn encode(&mut self, text: &[u8], start: usize, end: usize, out: &mut Vec<u32>) {
        let len = end - start;
        let word = &text[start..end];
        if len == 1 {
            out.push(self.bpe.byte_ids[word[0] as usize]);
        } else if len < 16 {
            let key = load(text, start, len) | ((len as u128) << 120);
            match self.cache.short.get(&key) {
                Some(&v) => self.cache.emit(v, out),
                None => {
                    let v = self.compute(word, out);
                    self.cache.short.insert(key, v);
                }
            }
        } else if len < 32 {
            let key = (
                load(text, start, 15) | (u128::from(text[start + 15]) << 120),
                load(text, start + 16, len - 16) | ((len as u128) << 120),
            );
            match self.cache.medium.get(&key) {
                Some(&v) => self.cache.emit(v, out),
                None => {
                    let v = self.compute(word, out);
                    self.cache.medium.insert(key, v);
                }
            }
        } else if len <= MAX_CACHED_LEN {
            match self.cache.long.get(word) {
                Some(&v) => self.cache.emit(v, out),
                None => {
                    let v = self.compute(word, out);
                    self.cache.long.insert(word.into(), v);
                }
            }
        } else {
            self.bpe.encode_uncached(word, out, self.cache);
        }
    }

    /// Merges `word`, appends its ids and returns them for the cache.
    #[inline(never)]
    fn compute(&mut self, word: &[u8], out: &mut Vec<u32>) -> Ids {
        let before = out.len();
        self.bpe.encode_uncached(word, out, self.cache);
        self.make_room();
        self.cache.store(&out[before..])
    }

    fn make_room(&mut self) {
        let c = &self.cache;
        if c.short.len() + c.medium.len() + c.long.len() >= CACHE_ENTRIES {
            self.cache.clear();
        }
    }
}

impl Bpe {
    /// `byte_ids[b]` is the id of the byte-level character of byte `b`; `merges` are
    /// `(left, right, merged)` ids in rank order; `whole` is the byte-decoded vocabulary when
    /// `ignore_merges` is set.
    pub fn new(
        byte_ids: [u32; 256],
        merges: impl IntoIterator<Item = (u32, u32, u32)>,
        whole: Option<FxHashMap<Box<[u8]>, u32>>,
    ) -> Bpe {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let merges = merges.into_iter();
        let mut map = FxHashMap::with_capacity_and_hasher(merges.size_hint().0, Default::default());
        for (rank, (a, b, m)) in merges.enumerate() {
            map.insert(pair(a, b), (rank as u32, m));
        }
        Bpe {
            byte_ids,
            merges: map,
            whole,
            key: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Runs `f` with this thread's cache for this model.
    #[inline]
    pub fn with_cache<R>(&self, f: impl FnOnce(&mut Encoding) -> R) -> R {
        CACHE.with(|cache| {
            let cache = &mut *cache.borrow_mut();
            if cache.owner != self.key {
                cache.clear();
                cache.owner = self.key;
            }
            f(&mut Encoding { bpe: self, cache })
        })
    }

    fn encode_uncached(&self, word: &[u8], out: &mut Vec<u32>, cache: &mut Cache) {
        let (syms, ranks) = (&mut cache.syms, &mut cache.ranks);
        if let Some(whole) = &self.whole {
            if let Some(&id) = whole.get(word) {
                out.push(id);
                return;
            }
        }
        syms.clear();
        syms.extend(word.iter().map(|&b| self.byte_ids[b as usize]));
        if word.len() > HEAP_ABOVE {
            self.merge_heap(syms);
        } else {
            self.merge_scan(syms, ranks);
        }
        out.extend_from_slice(syms);
    }

    #[inline(always)]
    fn rank(&self, a: u32, b: u32) -> (u32, u32) {
        self.merges
            .get(&pair(a, b))
            .copied()
            .unwrap_or((u32::MAX, 0))
    }

    /// Repeatedly merges the lowest-ranked, leftmost pair; `ranks[i]` holds the rank and merged
    /// id of `(syms[i], syms[i + 1])`.
    pub(crate) fn merge_scan(&self, syms: &mut Vec<u32>, ranks: &mut Vec<(u32, u32)>) {
        ranks.clear();
        ranks.extend(syms.windows(2).map(|w| self.rank(w[0], w[1])));
        loop {
            let mut best = u32::MAX;
            let mut at = 0;
            for (i, &(r, _)) in ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == u32::MAX {
                break;
            }
            syms[at] = ranks[at].1;
            syms.remove(at + 1);
            ranks.remove(at);
            if at + 1 < syms.len() {
                ranks[at] = self.rank(syms[at], syms[at + 1]);
            }
            if at > 0 {
                ranks[at - 1] = self.rank(syms[at - 1], syms[at]);
            }
        }
    }

    /// The same merges with a min-heap on `(rank, position)` over a linked list of symbols.
    pub(crate) fn merge_heap(&self, syms: &mut Vec<u32>) {
        let n = syms.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            let (r, _) = self.rank(syms[i], syms[i + 1]);
            if r != u32::MAX {
                heap.push(Reverse((r, i)));
            }
        }
        while let Some(Reverse((r, i))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j >= n {
                continue;
            }
            let (cur, merged) = self.rank(syms[i], syms[j]);
            if cur != r {
                continue; // stale: the pair at i changed since this entry was pushed
            }
            syms[i] = merged;
            alive[j] = false;
            next[i] = next[j];
            if next[j] < n {
                prev[next[j]] = i;
            }
            let p = prev[i];
            if p < n {
                let (r, _) = self.rank(syms[p], syms[i]);
                if r != u32::MAX {
                    heap.push(Reverse((r, p)));
                }
            }
            if next[i] < n {
                let (r, _) = self.rank(syms[i], syms[next[i]]);
                if r != u32::MAX {
                    heap.push(Reverse((r, i)));
                }
            }
        }
        let mut w = 0;
        for i in 0..n {
            if alive[i] {
                syms[w] = syms[i];
                w += 1;
            }
        }
        syms.truncate(w);
    }
}
