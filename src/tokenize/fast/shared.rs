//! The cache of short pre-tokens (and SentencePiece pieces) that all threads encoding with one
//! model share.
//!
//! Each thread used to warm a cache of its own, so with two threads the common words of a corpus
//! were merged twice (340K merges on the benchmark corpus instead of 280K with one thread), and
//! with 32 threads 32 times. This table is filled by whichever thread merges a pre-token first
//! and read by all, without locks:
//!
//! - A slot is empty while its key's high word is 0 (a key's high word holds the pre-token's
//!   length, 1 to 15, so it is never 0). A thread that inserts claims an empty slot by swapping
//!   that word from 0 to the key's high word with [`BUSY`] set (a bit no key has), writes the
//!   rest of the key and the ids, then stores the high word without `BUSY` (release).
//! - A reader loads the high word (acquire): only if it equals the key's does it read the rest,
//!   which the release made visible. A slot being written reads as another key's.
//! - A slot is written once and never changes or empties again. Two threads that merge the same
//!   pre-token at once may both insert it, in two slots; both hold the same ids, and a look-up
//!   finds the first.
//!
//! - The table starts as zero pages mapped from the system, and a bitmap says which 4 KB of it
//!   an insert may have written: look-ups stop at a page no one wrote, and inserts claim a slot
//!   there without reading it, so no thread ever maps the system's zero page into the table
//!   (replacing it on the first write would cost every core a TLB-flush interrupt).
//!
//! The table has a fixed size and takes entries until it is half full (then the threads keep
//! the rest in their own caches); the first pre-tokens to be merged are mostly the frequent
//! ones. Only encodings of at most three ids are kept (inline in the slot, as in
//! [`super::bpe::ShortTable`]).

use super::bpe::{IdStore, Short};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The high word of a slot whose writer is still filling it.
const BUSY: u64 = 1 << 63;

/// Slots of a model's shared table: 2^19 of 32 bytes, 16 MB of address space, touched (and
/// backed by memory) only where entries land.
const BITS: u32 = 19;

/// Slots in 4 KB of the table: the unit of [`SharedShort::written`].
const SLOTS_PER_PAGE_BITS: u32 = 7;

/// A short pre-token cache shared by threads (see the module documentation).
pub(super) struct SharedShort {
    /// The slots: zero pages mapped from the system, so the table costs memory only where entries
    /// land (a zeroed allocation aligned for the slots would be cleared in full by `memset`, 16 MB
    /// for a run of a few hundred pre-tokens).
    map: memmap2::MmapMut,
    /// `2^bits` slots, and `64 - bits`: the hash's top `bits` bits index them.
    slot_count: usize,
    shift: u32,
    /// Entries inserted; no insert starts once this reaches half the slots.
    len: AtomicUsize,
    /// One bit per 4 KB of slots that an insert may have written ([`Self::written`]).
    written: Box<[AtomicU64]>,
    /// Pages marked in `written` so far, and whether that is all of them: then a look-up tests
    /// this flag alone (on any corpus of some size every page is written early on).
    marked: AtomicUsize,
    all_written: AtomicBool,
}

#[repr(C, align(32))]
struct Slot {
    hi: AtomicU64,
    lo: AtomicU64,
    ids: [AtomicU32; 3],
    len: AtomicU32,
}

impl SharedShort {
    pub(super) fn new() -> Self {
        Self::with_bits(BITS)
    }

    /// A table of `2^bits` slots; if the system gives no memory for it, one that takes nothing
    /// (every pre-token then goes to the threads' own caches).
    fn with_bits(bits: u32) -> Self {
        let map = memmap2::MmapOptions::new()
            .len(size_of::<Slot>() << bits)
            .map_anon();
        let written = |bits: u32| {
            let pages = (1usize << bits).div_ceil(1 << SLOTS_PER_PAGE_BITS);
            (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
        };
        // In 2 MB pages where the system allows: a look-up reads a slot at random in the 16 MB,
        // and in 4 KB pages nearly every one also missed the TLB (a page-table walk, which costs
        // more in a virtual machine). The table's pages are all touched on a corpus of any size
        // anyway (a slot is 32 bytes, so 4096 pages hold the first 4096 entries' worth).
        if let Ok(map) = &map {
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        match map {
            Ok(map) => SharedShort {
                map,
                slot_count: 1 << bits,
                shift: 64 - bits,
                len: AtomicUsize::new(0),
                written: written(bits),
                marked: AtomicUsize::new(0),
                all_written: AtomicBool::new(false),
            },
            Err(_) => SharedShort {
                map: memmap2::MmapOptions::new()
                    .len(2 * size_of::<Slot>())
                    .map_anon()
                    .expect("one page of memory"),
                slot_count: 2,
                shift: 63,
                len: AtomicUsize::new(usize::MAX),
                written: written(1),
                marked: AtomicUsize::new(0),
                all_written: AtomicBool::new(false),
            },
        }
    }

    #[inline(always)]
    fn slots(&self) -> &[Slot] {
        // SAFETY: the map is page-aligned (so aligned for `Slot`) and holds `2^bits` slots' bytes,
        // zero when mapped: all-zero bytes are a `Slot` (atomics of integers; an empty slot). It
        // lives as long as `self`, and is only ever accessed through these atomics.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<Slot>(), self.slot_count) }
    }

    /// Whether a slot's 4 KB of the table may have been written. A page no thread wrote is all
    /// empty slots, so a look-up stops there without reading it: reading an untouched page of
    /// the mapping maps the system's shared zero page, and the first insert into it then replaces
    /// that page and, as another thread may have read it, interrupts every core to flush it
    /// from their TLBs. With two threads that was 5.5 % of all samples of `augment -j 2` on the
    /// benchmark corpus (about 25 µs per page); pages first touched by an insert fault once,
    /// with no flush.
    #[inline(always)]
    fn written(&self, i: usize) -> bool {
        if self.all_written.load(Ordering::Relaxed) {
            return true;
        }
        let (word, bit) = self.page_bit(i);
        word.load(Ordering::Relaxed) & bit != 0
    }

    /// Marks a slot's page as written (before writing it).
    fn mark(&self, i: usize) {
        let (word, bit) = self.page_bit(i);
        if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            let pages = self.slot_count.div_ceil(1 << SLOTS_PER_PAGE_BITS);
            if self.marked.fetch_add(1, Ordering::Relaxed) + 1 == pages {
                self.all_written.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The word of [`Self::written`] that holds slot `i`'s page, and the page's bit in it.
    #[inline(always)]
    fn page_bit(&self, i: usize) -> (&AtomicU64, u64) {
        let page = i >> SLOTS_PER_PAGE_BITS;
        (&self.written[page / 64], 1 << (page % 64))
    }

    #[inline(always)]
    fn index(&self, key: u128) -> usize {
        let h = ((key as u64) ^ ((key >> 64) as u64).rotate_left(29))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// Asks for the cache line of `key`'s first slot, which [`Self::get`] reads first. A
    /// prefetch never faults: on a page no thread wrote (not mapped) it does nothing.
    #[inline(always)]
    pub(super) fn prefetch(&self, key: u128) {
        #[cfg(target_arch = "x86_64")]
        {
            let slot: *const Slot = &self.slots()[self.index(key)];
            // SAFETY: a prefetch reads nothing and cannot fault; the address is in the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    slot.cast::<i8>(),
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// The ids of `key` (a pre-token of 1 to 15 bytes packed with its length), if a thread
    /// inserted them.
    #[inline(always)]
    pub(super) fn get(&self, key: u128) -> Option<Short> {
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        let slots = self.slots();
        let mask = slots.len() - 1;
        let mut i = self.index(key);
        loop {
            if !self.written(i) {
                return None;
            }
            let s = &slots[i];
            let h = s.hi.load(Ordering::Acquire);
            if h == hi && s.lo.load(Ordering::Relaxed) == lo {
                let id = |k: usize| s.ids[k].load(Ordering::Relaxed);
                return Some(Short::new(
                    [id(0), id(1), id(2)],
                    s.len.load(Ordering::Relaxed),
                ));
            }
            if h == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Keeps the ids of a just-merged `key` here if the table takes them ([`Self::insert`]),
    /// else in `store`, returning the value for the caller's own table.
    pub(super) fn keep(&self, key: u128, ids: &[u32], store: &mut IdStore) -> Option<Short> {
        (!self.insert(key, ids)).then(|| store.store_short(ids))
    }

    /// Inserts `ids` for `key`; false when they are more than three or the table is full, for
    /// the caller to keep them elsewhere.
    pub(super) fn insert(&self, key: u128, ids: &[u32]) -> bool {
        debug_assert!((1..16).contains(&(key >> 120)));
        let slots = self.slots();
        if ids.len() > Short::INLINE || self.len.load(Ordering::Relaxed) >= slots.len() / 2 {
            return false;
        }
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        let mask = slots.len() - 1;
        let mut i = self.index(key);
        loop {
            let s = &slots[i];
            // A page not yet written is all empty slots: claimed without reading it first (a read
            // would map the zero page, see `written`).
            let unwritten = !self.written(i);
            if unwritten {
                self.mark(i);
            }
            let h = match unwritten {
                true => 0,
                false => s.hi.load(Ordering::Acquire),
            };
            match h {
                0 => {
                    let claim =
                        s.hi.compare_exchange(0, hi | BUSY, Ordering::Acquire, Ordering::Relaxed);
                    if claim.is_err() {
                        continue; // taken meanwhile: look at it again
                    }
                    s.lo.store(lo, Ordering::Relaxed);
                    for (k, slot) in s.ids.iter().enumerate() {
                        slot.store(ids.get(k).copied().unwrap_or(0), Ordering::Relaxed);
                    }
                    s.len.store(ids.len() as u32, Ordering::Relaxed);
                    s.hi.store(hi, Ordering::Release);
                    self.len.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                h if h == hi && s.lo.load(Ordering::Relaxed) == lo => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(word: &[u8]) -> u128 {
        let mut k = (word.len() as u128) << 120;
        for (i, &b) in word.iter().enumerate() {
            k |= u128::from(b) << (8 * i);
        }
        k
    }

    fn ids(v: Short) -> Vec<u32> {
        let mut out = Vec::new();
        super::super::bpe::IdStore::default().emit_short(v, &mut out);
        out
    }

    /// Threads inserting overlapping keys at once: every key found reads back its own ids, from
    /// every thread, and the table stops taking entries at half its slots.
    #[test]
    fn threads_share_entries_and_the_table_stops_half_full() {
        let table = SharedShort::with_bits(12);
        let words: Vec<Vec<u8>> = (0..3000u32).map(|n| format!("w{n}").into_bytes()).collect();
        let value = |w: &[u8]| -> Vec<u32> {
            let n = w.iter().map(|&b| u32::from(b)).sum::<u32>();
            (0..1 + n as usize % 3).map(|k| n + k as u32).collect()
        };
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (table, words) = (&table, &words);
                scope.spawn(move || {
                    for w in words.iter().cycle().skip(t * 700).take(words.len()) {
                        table.insert(key(w), &value(w));
                        if let Some(v) = table.get(key(w)) {
                            assert_eq!(ids(v), value(w), "{w:?}");
                        }
                    }
                });
            }
        });
        let len = table.len.load(Ordering::Relaxed);
        assert!((2048..=2048 + 4).contains(&len), "{len}");
        // 2048 entries at random in 32 pages of 128 slots: every page was written, and counted.
        assert!(table.all_written.load(Ordering::Relaxed));
        assert_eq!(table.marked.load(Ordering::Relaxed), 32);
        let found = words.iter().filter(|w| table.get(key(w)).is_some()).count();
        assert!(found > 1500 && found <= len, "{found} of {len}");
        for w in &words {
            if let Some(v) = table.get(key(w)) {
                assert_eq!(ids(v), value(w), "{w:?}");
            }
        }
        assert!(
            !table.insert(key(b"new"), &[1]),
            "a full table takes no entry"
        );
        assert!(table.get(key(b"zz")).is_none());
        // More than three ids never go in (a fresh table): `keep` stores them for the caller.
        let fresh = SharedShort::with_bits(12);
        assert!(!fresh.all_written.load(Ordering::Relaxed));
        assert!(!fresh.insert(key(b"four"), &[1, 2, 3, 4]));
        let mut store = super::super::bpe::IdStore::default();
        let kept = fresh.keep(key(b"four"), &[1, 2, 3, 4], &mut store);
        let mut out = Vec::new();
        store.emit_short(kept.expect("kept by the caller"), &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(fresh.keep(key(b"two"), &[5, 6], &mut store).is_none());
        assert_eq!(fresh.get(key(b"two")).map(ids), Some(vec![5, 6]));
        assert!(fresh.get(key(b"four")).is_none());
    }
}
