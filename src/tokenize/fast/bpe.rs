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

struct Cache {
    owner: u64,
    map: FxHashMap<Box<[u8]>, (u32, u32)>,
    ids: Vec<u32>,
    /// Scratch space for merging.
    syms: Vec<u32>,
    ranks: Vec<u32>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        owner: u64::MAX,
        map: FxHashMap::default(),
        ids: Vec::new(),
        syms: Vec::new(),
        ranks: Vec::new(),
    });
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
        let mut map = FxHashMap::default();
        for (rank, (a, b, m)) in merges.into_iter().enumerate() {
            map.insert(pair(a, b), (rank as u32, m));
        }
        Bpe {
            byte_ids,
            merges: map,
            whole,
            key: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Appends the ids of one pre-token to `out`.
    #[inline]
    pub fn encode(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.len() == 1 {
            out.push(self.byte_ids[word[0] as usize]);
            return;
        }
        CACHE.with(|cache| {
            let cache = &mut *cache.borrow_mut();
            if cache.owner != self.key {
                cache.map.clear();
                cache.ids.clear();
                cache.owner = self.key;
            }
            if word.len() <= MAX_CACHED_LEN {
                if let Some(&(start, len)) = cache.map.get(word) {
                    out.extend_from_slice(&cache.ids[start as usize..(start + len) as usize]);
                    return;
                }
            }
            let before = out.len();
            self.encode_uncached(word, out, &mut cache.syms, &mut cache.ranks);
            if word.len() <= MAX_CACHED_LEN {
                if cache.map.len() >= CACHE_ENTRIES {
                    cache.map.clear();
                    cache.ids.clear();
                }
                let start = cache.ids.len() as u32;
                cache.ids.extend_from_slice(&out[before..]);
                cache
                    .map
                    .insert(word.into(), (start, (out.len() - before) as u32));
            }
        })
    }

    fn encode_uncached(
        &self,
        word: &[u8],
        out: &mut Vec<u32>,
        syms: &mut Vec<u32>,
        ranks: &mut Vec<u32>,
    ) {
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

    /// Repeatedly merges the lowest-ranked, leftmost pair; `ranks[i]` is the rank of
    /// `(syms[i], syms[i + 1])`.
    pub(crate) fn merge_scan(&self, syms: &mut Vec<u32>, ranks: &mut Vec<u32>) {
        ranks.clear();
        ranks.extend(syms.windows(2).map(|w| self.rank(w[0], w[1]).0));
        loop {
            let mut best = u32::MAX;
            let mut at = 0;
            for (i, &r) in ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == u32::MAX {
                break;
            }
            syms[at] = self.rank(syms[at], syms[at + 1]).1;
            syms.remove(at + 1);
            ranks.remove(at);
            if at + 1 < syms.len() {
                ranks[at] = self.rank(syms[at], syms[at + 1]).0;
            }
            if at > 0 {
                ranks[at - 1] = self.rank(syms[at - 1], syms[at]).0;
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
