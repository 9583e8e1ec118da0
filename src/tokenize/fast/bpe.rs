//! Byte-level BPE: merges by rank over the bytes of one pre-token, with a cache shared by the
//! threads and one per thread.
//!
//! The `tokenizers` crate merges, at every step, the adjacent pair with the lowest rank, the
//! leftmost one among equals (a min-heap on `(rank, position)` whose stale entries are skipped).
//! [`Bpe::merge_scan`] does the same: for words up to 32 symbols a linear scan over an array of
//! symbols and ranks that closes up after each merge (so later scans are shorter), for longer
//! ones, where the scan would be quadratic, a tournament tree over a linked list
//! ([`Bpe::merge_tree`]); both in scratch buffers kept per thread. Ranks (or priorities that
//! order pairs as ranks do, packed with the merged id in 8 bytes: [`Priorities`]) come from an
//! open-addressed pair table ([`PairTable`]), a word's first ranks from a table of byte pairs.
//! The caches map pre-token bytes to ids: most pre-tokens of a corpus repeat, so most pre-tokens
//! cost one probe of the model's [`SharedShort`] (pre-tokens under 16 bytes encoded in at most
//! three ids, merged once by whichever thread met them first), else of this thread's
//! [`ShortTable`] (the others under 16 bytes) or one hash lookup (longer ones).

use super::shared::SharedShort;
use crate::tokenize::token_map::TokenMap;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Pre-tokens longer than this are not cached (the crate uses the same bound).
const MAX_CACHED_LEN: usize = 256;
/// Entries per thread before the cache is emptied and refilled.
const CACHE_ENTRIES: usize = 1 << 19;
/// Words longer than this (in symbols) merge with the tournament tree: the scan costs a pass over
/// the word per merge, the tree a logarithm and more bookkeeping (the crossover measured on real
/// text).
const TREE_ABOVE: usize = 32;
/// Scratch buffers larger than this (entries) are freed after a merge, so one huge pre-token
/// does not keep megabytes per thread.
const SCRATCH_KEEP: usize = 1 << 16;

/// A byte-level BPE model: initial ids of the 256 bytes, and the merge table.
pub struct Bpe {
    byte_ids: [u32; 256],
    /// `(left, right)` → `(priority, merged id)`; a pair listed twice keeps its last rank, as in
    /// the crate (it collects the list into a hash map).
    merges: PairTable,
    /// The same for the pairs of two single bytes, indexed by `left_byte << 8 | right_byte`
    /// (`(u32::MAX, 0)` for no merge): the first ranks of a word, without hashing.
    byte_pairs: Box<[(u32, u32)]>,
    /// With `ignore_merges`, a pre-token that is itself in the vocabulary is one id.
    whole: Option<Whole>,
    /// Identifies this model in the per-thread caches.
    key: u64,
    /// The short pre-tokens any thread merged, for all threads.
    shared: SharedShort,
}

/// With `ignore_merges`: the vocabulary (the token table's own, shared) and the byte-level
/// character of each byte, to look a pre-token up whole by its byte-level spelling.
pub struct Whole {
    pub tokens: Arc<TokenMap>,
    pub chars: [char; 256],
}

#[inline(always)]
fn pair(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// Linear probing for an insert: the first slot from `i` on (wrapping around) where `stop`
/// holds. The tables are never full, so there is one. (The look-ups write their walks out: they
/// are on the hot path, where this shared one costs more instructions.)
fn probe<T: Copy>(slots: &[T], mut i: usize, stop: impl Fn(T) -> bool) -> usize {
    let mask = slots.len() - 1;
    while !stop(slots[i]) {
        i = (i + 1) & mask;
    }
    i
}

/// The key of a pair in a packed table (both ids below [`PACKED_IDS`]).
#[inline(always)]
fn packed(a: u32, b: u32) -> u64 {
    u64::from(a) << 18 | u64::from(b)
}

/// The merge table: `(left, right)` → `(priority, merged id)`, open addressing with linear
/// probing, so a lookup (two or three per merge) is one multiplication and mostly one cache
/// line. The priority orders pairs exactly as their ranks do: the rank itself, or, where the
/// merges allow ([`Priorities`]), a number that holds the merged id, which lets a whole entry fit
/// in 8 bytes. The table is the merges' working set, looked up at random for every word the
/// cache misses: half the bytes is half the cache misses.
enum PairTable {
    /// `left << 46 | right << 28 | priority` ([`Priorities::Packed`]), at most two thirds full;
    /// empty slots are `u64::MAX` (ids are below [`PACKED_IDS`]).
    Packed {
        slots: Box<[u64]>,
        shift: u32,
        place_bits: u32,
    },
    /// `(left << 32 | right, rank, merged)` in 16-byte slots, at most half full; empty slots
    /// have a key no pair has (ids are below `u32::MAX`).
    Wide {
        slots: Box<[(u64, u32, u32)]>,
        shift: u32,
    },
}

/// Ids of a packed table are below this (18 bits, less the all-ones that marks empty slots).
const PACKED_IDS: u32 = (1 << 18) - 1;
/// Bits of a packed priority besides the merged id's 18 (`64 - 2 * 18 - 18`).
const SPARE_BITS: u32 = 10;

/// How the pair table orders pairs: by rank, or packed, by `run << (18 + place_bits) | merged <<
/// place_bits | place`. A run is a stretch of the merge list along which merged ids never
/// decrease (so merges into one id are consecutive in it), `place` counts the earlier merges
/// into the same id in the run. Packed priorities order pairs exactly as ranks do: ranks in
/// different runs are ordered by run, in one run by merged id, then place. Byte-level
/// vocabularies made by BPE training or converted from tiktoken's ranks are one run (up to 80
/// merges make one Llama 3 token); Gemma's are two (tab and space runs first). Checked on the
/// merges at load; anything that does not fit the 10 spare bits keeps ranks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Priorities {
    Ranks,
    Packed { place_bits: u32 },
}

impl Priorities {
    fn of(merges: &[(u32, u32, u32)]) -> Priorities {
        if merges
            .iter()
            .any(|&(a, b, m)| a.max(b).max(m) >= PACKED_IDS)
        {
            return Priorities::Ranks;
        }
        let (mut runs, mut most) = (0, 0);
        for (run, place) in runs_and_places(merges.iter().copied()) {
            (runs, most) = (runs.max(run), most.max(place));
        }
        let bits = |n: u32| u32::BITS - n.leading_zeros();
        let (place_bits, run_bits) = (bits(most), bits(runs));
        if place_bits + run_bits <= SPARE_BITS {
            Priorities::Packed { place_bits }
        } else {
            Priorities::Ranks
        }
    }

    /// The priorities of `merges` (in rank order) for the pair table, with their merged ids.
    fn assign(
        self,
        merges: impl Iterator<Item = (u32, u32, u32)> + Clone,
    ) -> impl Iterator<Item = (u32, u32, u32, u32)> {
        let places = runs_and_places(merges.clone());
        merges
            .zip(places)
            .enumerate()
            .map(move |(rank, ((a, b, m), (run, place)))| match self {
                Priorities::Ranks => (a, b, rank as u32, m),
                Priorities::Packed { place_bits } => {
                    (a, b, run << (18 + place_bits) | m << place_bits | place, m)
                }
            })
    }
}

/// For each merge (in rank order), its run (counted from 0: a new one starts where the merged id
/// decreases) and its place (the earlier merges into the same id in a row), as
/// [`Priorities`] defines them.
fn runs_and_places(
    merges: impl Iterator<Item = (u32, u32, u32)>,
) -> impl Iterator<Item = (u32, u32)> {
    let (mut run, mut last, mut place) = (0u32, 0, 0u32);
    merges.map(move |(_, _, m)| {
        if m < last {
            run += 1;
        }
        place = if m == last { place + 1 } else { 0 };
        last = m;
        (run, place)
    })
}

impl PairTable {
    fn new(n: usize, kind: Priorities) -> Self {
        match kind {
            Priorities::Packed { place_bits } => {
                let bits = (n.max(8) * 3 / 2).next_power_of_two().trailing_zeros();
                PairTable::Packed {
                    slots: table(1 << bits, u64::MAX),
                    shift: 64 - bits,
                    place_bits,
                }
            }
            Priorities::Ranks => {
                let bits = (2 * n.max(8)).next_power_of_two().trailing_zeros();
                PairTable::Wide {
                    slots: table(1 << bits, (u64::MAX, 0, 0)),
                    shift: 64 - bits,
                }
            }
        }
    }

    #[inline(always)]
    fn index(key: u64, shift: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }

    /// A pair listed twice keeps its last priority, as in the crate (it collects the list into a
    /// hash map).
    fn insert(&mut self, a: u32, b: u32, priority: u32, merged: u32) {
        match self {
            PairTable::Packed {
                slots,
                shift,
                place_bits,
            } => {
                let key = packed(a, b);
                let i = probe(slots, Self::index(key, *shift), |s| {
                    s == u64::MAX || s >> 28 == key
                });
                debug_assert_eq!(priority >> *place_bits & PACKED_IDS, merged);
                slots[i] = key << 28 | u64::from(priority);
            }
            PairTable::Wide { slots, shift } => {
                let key = pair(a, b);
                let i = probe(slots, Self::index(key, *shift), |s| {
                    s.0 == u64::MAX || s.0 == key
                });
                slots[i] = (key, priority, merged);
            }
        }
    }

    /// `(priority, merged id)`, or `(u32::MAX, 0)` for a pair that does not merge.
    #[inline(always)]
    fn get(&self, a: u32, b: u32) -> (u32, u32) {
        match self {
            PairTable::Packed {
                slots,
                shift,
                place_bits,
            } => {
                if a.max(b) >= PACKED_IDS {
                    return (u32::MAX, 0);
                }
                let key = packed(a, b);
                // Written out rather than through `probe`, as in `ShortTable::get`.
                let mask = slots.len() - 1;
                let mut i = Self::index(key, *shift);
                loop {
                    let s = slots[i];
                    if s >> 28 == key {
                        let p = s as u32 & ((1 << 28) - 1);
                        return (p, p >> *place_bits & PACKED_IDS);
                    }
                    if s == u64::MAX {
                        return (u32::MAX, 0);
                    }
                    i = (i + 1) & mask;
                }
            }
            PairTable::Wide { slots, shift } => {
                let key = pair(a, b);
                let mask = slots.len() - 1;
                let mut i = Self::index(key, *shift);
                loop {
                    let (k, r, m) = slots[i];
                    if k == key {
                        return (r, m);
                    }
                    if k == u64::MAX {
                        return (u32::MAX, 0);
                    }
                    i = (i + 1) & mask;
                }
            }
        }
    }
}

impl PairTable {
    /// Appends the table to `out` for a cache entry: the kind (0 ranks, 1 packed), the packed
    /// place bits, the number of slots, then the slots, little-endian ([`Pairs::read`]).
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            PairTable::Packed {
                slots, place_bits, ..
            } => {
                for word in [1, *place_bits] {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                out.extend_from_slice(&(slots.len() as u64).to_le_bytes());
                for s in slots.iter() {
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
            PairTable::Wide { slots, .. } => {
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(&(slots.len() as u64).to_le_bytes());
                for &(key, rank, merged) in slots.iter() {
                    out.extend_from_slice(&key.to_le_bytes());
                    out.extend_from_slice(&rank.to_le_bytes());
                    out.extend_from_slice(&merged.to_le_bytes());
                }
            }
        }
    }
}

/// The pair table of a merge list, built apart from the rest of a [`Bpe`]: a cached load builds
/// it on another thread while it reads the vocabulary (`cache::decode`).
pub struct Pairs {
    table: PairTable,
    kind: Priorities,
    /// How many merges it was built from.
    len: usize,
}

impl Pairs {
    /// The table of `merges`, in rank order.
    pub fn build(merges: &[(u32, u32, u32)]) -> Pairs {
        Self::with_priorities(merges, Priorities::of(merges))
    }

    /// The table [`Bpe::write_pairs`] wrote for `len` merges, if `bytes` are exactly one whose merged
    /// ids are at most `max_id` (the merges' highest, so that even a damaged table gives only ids
    /// of the vocabulary): copied, which costs a few milliseconds where building it costs tens.
    pub fn read(bytes: &[u8], len: usize, max_id: u32) -> Option<Pairs> {
        let (head, slots) = bytes.split_at_checked(16)?;
        let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let n = usize::try_from(u64::from_le_bytes(head[8..].try_into().ok()?)).ok()?;
        if !n.is_power_of_two() || n < 8 {
            return None;
        }
        let shift = 64 - n.trailing_zeros();
        let (kind, table) = match (word(0), word(4)) {
            (0, 0) if slots.len() == n.checked_mul(16)? => {
                let v = filled(
                    n,
                    slots.chunks_exact(16).map(|c| {
                        let at = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().expect("4"));
                        let key = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                        (key, at(8), at(12))
                    }),
                );
                // Without an empty slot, a look-up of an absent pair would never end.
                let empty = |s: &(u64, u32, u32)| s.0 == u64::MAX;
                if !v.iter().any(empty) || !v.iter().all(|s| empty(s) || s.2 <= max_id) {
                    return None;
                }
                (Priorities::Ranks, PairTable::Wide { slots: v, shift })
            }
            (1, place_bits) if place_bits <= SPARE_BITS && slots.len() == n.checked_mul(8)? => {
                let v = filled(
                    n,
                    slots
                        .chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
                );
                let merged = |s: u64| (s as u32 & ((1 << 28) - 1)) >> place_bits & PACKED_IDS;
                let fits = |&s: &u64| s == u64::MAX || merged(s) <= max_id;
                if !v.contains(&u64::MAX) || !v.iter().all(fits) {
                    return None;
                }
                let table = PairTable::Packed {
                    slots: v,
                    shift,
                    place_bits,
                };
                (Priorities::Packed { place_bits }, table)
            }
            _ => return None,
        };
        Some(Pairs { table, kind, len })
    }

    /// The table of `merges` with ranks as the priorities, whatever the merges (the tests' wide
    /// table).
    #[cfg(test)]
    pub(super) fn ranked(merges: &[(u32, u32, u32)]) -> Pairs {
        Self::with_priorities(merges, Priorities::Ranks)
    }

    fn with_priorities(merges: &[(u32, u32, u32)], kind: Priorities) -> Pairs {
        let mut table = PairTable::new(merges.len(), kind);
        for (a, b, priority, m) in kind.assign(merges.iter().copied()) {
            table.insert(a, b, priority, m);
        }
        Pairs {
            table,
            kind,
            len: merges.len(),
        }
    }
}

/// The per-thread cache: pre-token bytes → ids. Keys of up to 15 bytes (most pre-tokens) are
/// packed with their length into a `u128`, keys of up to 31 bytes into two, so a lookup hashes and
/// compares integers; longer keys are boxed. A value is one id, or a range of `ids` when the
/// pre-token has several.
struct Cache {
    owner: u64,
    short: ShortTable,
    medium: FxHashMap<(u128, u128), Ids>,
    long: FxHashMap<Box<[u8]>, Ids>,
    ids: IdStore,
    /// The symbols of the word being merged, and the rest of the scratch space.
    syms: Vec<u32>,
    scratch: Scratch,
}

/// Scratch space for merging one word, kept per thread so a merge allocates nothing.
#[derive(Default)]
pub(super) struct Scratch {
    /// The symbols of a short word, for [`Bpe::merge_cells`].
    cells: Vec<Cell>,
    /// `ranks[i]`: the rank and merged id of the pair at `i`, for [`Bpe::merge_tree`].
    ranks: Vec<(u32, u32)>,
    /// A pre-token's byte-level spelling, to look it up whole (`ignore_merges`).
    text: String,
    /// The tournament tree of [`Bpe::merge_tree`], and its linked list.
    tree: Vec<u64>,
    next: Vec<u32>,
    prev: Vec<u32>,
}

/// A symbol of a word being merged and the pair it starts: its rank (`u32::MAX` for none, and for
/// the last symbol) and the id the pair merges into.
#[derive(Clone, Copy)]
struct Cell {
    sym: u32,
    rank: u32,
    merged: u32,
}

impl Scratch {
    /// Frees buffers a huge word made huge.
    fn shrink(&mut self) {
        if self.tree.capacity() > SCRATCH_KEEP {
            *self = Scratch::default();
        }
    }
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
            return;
        }
        let ids = &self.ids[v.first as usize..][..v.len as usize];
        if v.len <= 4 {
            // A few pushes cost less than a call to `memcpy`.
            for &id in ids {
                out.push(id);
            }
        } else {
            out.extend_from_slice(ids);
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

    /// Appends the ids of a [`ShortTable`] value: the inline ones without a branch on how many
    /// (all three written, the length then set), which the mix of one-, two- and three-token
    /// pre-tokens would mispredict.
    #[inline(always)]
    pub(super) fn emit_short(&self, v: Short, out: &mut Vec<u32>) {
        let len = v.len as usize;
        if len > Short::INLINE {
            return self.emit(
                Ids {
                    first: v.ids[0],
                    len: v.len,
                },
                out,
            );
        }
        out.reserve(Short::INLINE);
        let n = out.len();
        // SAFETY: `reserve` made room for `Short::INLINE` more ids past `n`; all of them are
        // written before the length grows by `len <= Short::INLINE`, so the vector's contents
        // are initialised, and the ids past its new length are spare capacity again.
        unsafe {
            let p = out.as_mut_ptr().add(n);
            for (k, &id) in v.ids.iter().enumerate() {
                p.add(k).write(id);
            }
            out.set_len(n + len);
        }
    }

    /// Keeps `ids` for a [`ShortTable`] value: inline when there are at most three.
    pub(super) fn store_short(&mut self, ids: &[u32]) -> Short {
        if ids.len() > Short::INLINE {
            let stored = self.store(ids);
            return Short {
                ids: [stored.first, 0, 0],
                len: stored.len,
            };
        }
        let mut inline = [0; Short::INLINE];
        inline[..ids.len()].copy_from_slice(ids);
        Short {
            ids: inline,
            len: ids.len() as u32,
        }
    }
}

/// The cache of pre-tokens of 2 to 15 bytes (most of them): keys are the bytes and the length
/// packed into a `u128` (never 0, the mark of an empty slot), open addressing with linear
/// probing over 32-byte slots, at most half full. A hit costs one multiplication and, mostly,
/// one cache line (a general hash map reads its control bytes first, then the slot), and the
/// ids are in the slot itself for all but the rare pre-tokens of more than three tokens.
pub(super) struct ShortTable {
    slots: Box<[Slot]>,
    /// 64 less log2 of the number of slots: the index is the top bits of the hash.
    shift: u32,
    len: usize,
}

/// A [`ShortTable`] slot: 32 bytes, aligned so that none straddles two cache lines (a large
/// allocation from the system allocator starts 16 bytes past a page boundary).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: u128,
    value: Short,
}

/// The ids of a short pre-token: up to three in `ids`, or, for more, the range of the
/// [`IdStore`] that starts at `ids[0]`.
#[derive(Clone, Copy)]
pub(super) struct Short {
    ids: [u32; 3],
    len: u32,
}

impl Short {
    /// Ids kept in the slot itself.
    pub(super) const INLINE: usize = 3;

    /// Up to three ids inline (`len` of them), as [`super::shared::SharedShort`] keeps them.
    #[inline(always)]
    pub(super) fn new(ids: [u32; 3], len: u32) -> Short {
        debug_assert!(len as usize <= Self::INLINE);
        Short { ids, len }
    }
}

impl ShortTable {
    const MIN_BITS: u32 = 12;
    const EMPTY: Slot = Slot {
        key: 0,
        value: Short {
            ids: [0; 3],
            len: 0,
        },
    };

    pub(super) fn new() -> Self {
        Self::with_bits(Self::MIN_BITS)
    }

    fn with_bits(bits: u32) -> Self {
        ShortTable {
            slots: table(1 << bits, Self::EMPTY),
            shift: 64 - bits,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn clear(&mut self) {
        *self = Self::new();
    }

    #[inline(always)]
    fn index(&self, key: u128) -> usize {
        let h = ((key as u64) ^ ((key >> 64) as u64).rotate_left(29))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// The value of `key`. (Key 0, an empty pre-token, finds an empty slot, whose value is no
    /// ids: the right encoding.)
    #[inline(always)]
    pub(super) fn get(&self, key: u128) -> Option<Short> {
        // The walk written out rather than through `probe`: this is the hot loop's probe, and the
        // shared walk costs 4 % more of its instructions (callgrind).
        let mask = self.slots.len() - 1;
        let mut i = self.index(key);
        loop {
            let Slot { key: k, value } = self.slots[i];
            if k == key {
                return Some(value);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn insert(&mut self, key: u128, value: Short) {
        debug_assert!(key != 0);
        if (self.len + 1) * 2 > self.slots.len() {
            let bigger = Self::with_bits(64 - self.shift + 1);
            for slot in std::mem::replace(self, bigger).slots {
                if slot.key != 0 {
                    self.insert(slot.key, slot.value);
                }
            }
        }
        let i = probe(&self.slots, self.index(key), |s| s.key == 0 || s.key == key);
        if self.slots[i].key == 0 {
            self.len += 1;
        }
        self.slots[i] = Slot { key, value };
    }
}

/// `n` copies of `fill`, in memory the kernel may back with huge pages (Linux's transparent
/// huge pages in their usual `madvise` mode): the pair table and the per-thread caches are tens
/// of MB touched at random, which otherwise costs a page fault every 4 KB.
fn table<T: Copy>(n: usize, fill: T) -> Box<[T]> {
    filled(n, std::iter::repeat_n(fill, n))
}

/// The `n` values of `values`, in memory placed as [`table`] places it.
fn filled<T>(n: usize, values: impl Iterator<Item = T>) -> Box<[T]> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    huge_pages(v.as_ptr(), n);
    v.extend(values);
    debug_assert_eq!(v.len(), n);
    v.into_boxed_slice()
}

/// Asks the kernel to back the whole 2 MB pages inside `n` values at `p` with huge pages.
fn huge_pages<T>(p: *const T, n: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let (start, end) = (p as usize, p as usize + n * size_of::<T>());
        let (start, end) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
        if end >= start + (2 << 20) {
            // SAFETY: the range lies inside an allocation of the caller's that nothing has read
            // or written yet; MADV_HUGEPAGE changes only how the kernel backs it, and a failure
            // (huge pages off) leaves it as it was.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, n);
}

/// The `len < 16` bytes at `text[at..]` as a little-endian integer, zero above them: one
/// unaligned load when the text extends 16 bytes past `at`, and a mask from a table (a shift of
/// a `u128` by a variable amount is a dozen instructions, twice for every pre-token).
#[inline(always)]
fn load(text: &[u8], at: usize, len: usize) -> u128 {
    /// `LOW[n]`: the low `n` bytes set.
    static LOW: [u128; 16] = {
        let mut low = [0; 16];
        let mut n = 1;
        while n < 16 {
            low[n] = (1u128 << (8 * n)) - 1;
            n += 1;
        }
        low
    };
    debug_assert!(len < 16);
    let v = match text.get(at..at + 16) {
        Some(s) => u128::from_le_bytes(s.try_into().expect("16 bytes")),
        None => {
            let mut buf = [0u8; 16];
            buf[..len].copy_from_slice(&text[at..at + len]);
            u128::from_le_bytes(buf)
        }
    };
    v & LOW[len & 15]
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
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        owner: u64::MAX,
        short: ShortTable::new(),
        medium: FxHashMap::default(),
        long: FxHashMap::default(),
        ids: IdStore::default(),
        syms: Vec::new(),
        scratch: Scratch::default(),
    });
}

/// A model with this thread's cache borrowed: encodes many pre-tokens for one lookup of the
/// thread-local.
pub struct Encoding<'a> {
    bpe: &'a Bpe,
    cache: &'a mut Cache,
}

impl Encoding<'_> {
    /// Appends the ids of the pre-token `text[start..end]` to `out`. Only the common cases (one
    /// byte, a short pre-token found in the cache) are inlined into the pre-tokenizer's loop.
    #[inline(always)]
    pub fn encode(&mut self, text: &[u8], start: usize, end: usize, out: &mut Vec<u32>) {
        let len = end - start;
        if len == 1 {
            out.push(self.bpe.byte_ids[text[start] as usize]);
        } else if len < 16 {
            let key = load(text, start, len) | ((len as u128) << 120);
            match self.bpe.shared.get(key) {
                Some(v) => self.cache.ids.emit_short(v, out),
                None => self.short_unshared(key, &text[start..end], out),
            }
        } else {
            self.encode_long(text, start, end, out);
        }
    }

    /// Asks for the cache line that [`Self::encode`] of the same pre-token will read first.
    #[inline(always)]
    pub fn prefetch(&self, text: &[u8], start: usize, end: usize) {
        let len = end - start;
        if len > 1 && len < 16 {
            self.bpe
                .shared
                .prefetch(load(text, start, len) | ((len as u128) << 120));
        }
    }

    /// A short pre-token not in the shared table: in this thread's own table (encodings of more
    /// than three ids, and everything once the shared table is full), or merged now and kept in
    /// the shared table if it takes it, else in this thread's.
    #[inline(never)]
    fn short_unshared(&mut self, key: u128, word: &[u8], out: &mut Vec<u32>) {
        if let Some(v) = self.cache.short.get(key) {
            return self.cache.ids.emit_short(v, out);
        }
        let shared = &self.bpe.shared;
        let unshared = self.compute(word, out, |store, ids| shared.keep(key, ids, store));
        if let Some(value) = unshared {
            self.cache.short.insert(key, value);
        }
    }

    /// [`Self::encode`] for pre-tokens of 16 bytes or more.
    #[inline(never)]
    fn encode_long(&mut self, text: &[u8], start: usize, end: usize, out: &mut Vec<u32>) {
        let (len, word) = (end - start, &text[start..end]);
        if len < 32 {
            let key = (
                load(text, start, 15) | (u128::from(text[start + 15]) << 120),
                load(text, start + 16, len - 16) | ((len as u128) << 120),
            );
            match self.cache.medium.get(&key) {
                Some(&v) => self.cache.emit(v, out),
                None => {
                    let v = self.compute(word, out, IdStore::store);
                    self.cache.medium.insert(key, v);
                }
            }
        } else if len <= MAX_CACHED_LEN {
            match self.cache.long.get(word) {
                Some(&v) => self.cache.emit(v, out),
                None => {
                    let v = self.compute(word, out, IdStore::store);
                    self.cache.long.insert(word.into(), v);
                }
            }
        } else {
            self.bpe.encode_uncached(word, out, self.cache);
        }
    }

    /// Merges `word`, appends its ids and returns what `keep` makes of them for the cache (after
    /// making room in it).
    #[inline(never)]
    fn compute<V>(
        &mut self,
        word: &[u8],
        out: &mut Vec<u32>,
        keep: impl FnOnce(&mut IdStore, &[u32]) -> V,
    ) -> V {
        let before = out.len();
        self.bpe.encode_uncached(word, out, self.cache);
        self.make_room();
        keep(&mut self.cache.ids, &out[before..])
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
        whole: Option<Whole>,
    ) -> Bpe {
        let merges: Vec<(u32, u32, u32)> = merges.into_iter().collect();
        Self::with_pairs(byte_ids, &merges, whole, None)
    }

    /// [`Self::new`] with the pair table `pairs` when it was built ahead from these `merges`
    /// ([`Pairs::build`]), else building it.
    pub fn with_pairs(
        byte_ids: [u32; 256],
        merges: &[(u32, u32, u32)],
        whole: Option<Whole>,
        pairs: Option<Pairs>,
    ) -> Bpe {
        let pairs = pairs.unwrap_or_else(|| Pairs::build(merges));
        debug_assert_eq!(pairs.len, merges.len());
        Self::assemble(byte_ids, merges, whole, pairs)
    }

    /// [`Self::new`] with ranks as the priorities, whatever the merges: the reference for the
    /// packed priorities in the tests.
    #[cfg(test)]
    pub(super) fn with_ranks(byte_ids: [u32; 256], merges: &[(u32, u32, u32)]) -> Bpe {
        let pairs = Pairs::ranked(merges);
        Self::assemble(byte_ids, merges, None, pairs)
    }

    /// The short pre-tokens any thread merged with this model, for all threads (the
    /// SentencePiece encoder keeps its short pieces there too).
    pub(super) fn shared(&self) -> &SharedShort {
        &self.shared
    }

    /// Appends the pair table to `out` as a cache entry keeps it.
    pub(super) fn write_pairs(&self, out: &mut Vec<u8>) {
        self.merges.write(out);
    }

    /// Whether the pair table holds packed priorities.
    #[cfg(test)]
    pub(super) fn packed(&self) -> bool {
        matches!(self.merges, PairTable::Packed { .. })
    }

    /// The model of `merges` (in rank order) whose pair table is `pairs`: adds the table of the
    /// pairs of two single bytes.
    fn assemble(
        byte_ids: [u32; 256],
        merges: &[(u32, u32, u32)],
        whole: Option<Whole>,
        pairs: Pairs,
    ) -> Bpe {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // The byte of a single-byte token, by id (256 for none).
        let top = merges.iter().map(|&(a, b, _)| a.max(b)).max().unwrap_or(0);
        let mut byte_of = vec![256u16; top as usize + 1];
        for (b, &id) in byte_ids.iter().enumerate() {
            if id <= top {
                byte_of[id as usize] = b as u16;
            }
        }
        let mut byte_pairs = vec![(u32::MAX, 0); 1 << 16].into_boxed_slice();
        for (a, b, priority, m) in pairs.kind.assign(merges.iter().copied()) {
            let (x, y) = (byte_of[a as usize] as usize, byte_of[b as usize] as usize);
            if x < 256 && y < 256 {
                byte_pairs[x << 8 | y] = (priority, m);
            }
        }
        Bpe {
            byte_ids,
            merges: pairs.table,
            byte_pairs,
            whole,
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            shared: SharedShort::new(),
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
        if let Some(whole) = &self.whole {
            let text = &mut cache.scratch.text;
            text.clear();
            text.extend(word.iter().map(|&b| whole.chars[b as usize]));
            if let Some(id) = whole.tokens.get(text.as_str()) {
                out.push(id);
                return;
            }
        }
        let (syms, scratch) = (&mut cache.syms, &mut cache.scratch);
        let first = |i: usize| self.byte_pairs[(word[i] as usize) << 8 | word[i + 1] as usize];
        fill_cells(
            &mut scratch.cells,
            word.iter().map(|&b| self.byte_ids[b as usize]),
            first,
        );
        self.merge_filled(syms, scratch);
        out.extend_from_slice(syms);
    }

    /// The ids of `word` merged by the cached encoder's merge, without the cache.
    #[cfg(test)]
    pub(super) fn encode_word(&self, word: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        self.with_cache(|e| self.encode_uncached(word, &mut out, e.cache));
        out
    }

    /// The ids of the 256 bytes.
    #[cfg(test)]
    pub(super) fn byte_ids(&self) -> [u32; 256] {
        self.byte_ids
    }

    #[inline(always)]
    fn rank(&self, a: u32, b: u32) -> (u32, u32) {
        self.merges.get(a, b)
    }

    /// Repeatedly merges the lowest-ranked, leftmost pair: a scan for words of up to
    /// [`TREE_ABOVE`] symbols ([`Self::merge_cells`]), the tree for longer ones.
    pub(super) fn merge_scan(&self, syms: &mut Vec<u32>, scratch: &mut Scratch) {
        let first = |i: usize| self.rank(syms[i], syms[i + 1]);
        fill_cells(&mut scratch.cells, syms.iter().copied(), first);
        self.merge_filled(syms, scratch);
    }

    /// Merges the word in `scratch.cells` into `syms`: the scan for up to [`TREE_ABOVE`]
    /// symbols, else the tree.
    fn merge_filled(&self, syms: &mut Vec<u32>, scratch: &mut Scratch) {
        let cells = &mut scratch.cells;
        syms.clear();
        if cells.len() <= TREE_ABOVE {
            self.merge_cells(cells);
            syms.extend(cells.iter().map(|c| c.sym));
            return;
        }
        syms.extend(cells.iter().map(|c| c.sym));
        scratch.ranks.clear();
        let pairs = &cells[..cells.len() - 1];
        scratch
            .ranks
            .extend(pairs.iter().map(|c| (c.rank, c.merged)));
        self.merge_tree(syms, scratch);
    }

    /// The merges of [`Self::merge_scan`] for a word of at most [`TREE_ABOVE`] symbols, each
    /// symbol in a [`Cell`] with the rank of the pair it starts. A merge removes the merged-away
    /// cell, so every later scan is one cell shorter, and the leftmost lowest rank is the lowest
    /// index. (Left in place and linked past, as before, the dead entries cost more in scanning
    /// than the moves.) The move and the next scan are one pass: the cells up to the merged one
    /// are scanned where they are, the ones after it scanned as they move down (a separate
    /// `Vec::remove` was a `memmove` call per merge).
    fn merge_cells(&self, cells: &mut Vec<Cell>) {
        debug_assert!(cells.len() <= TREE_ABOVE);
        let lowest = |cells: &[Cell]| {
            let (mut best, mut at) = (u32::MAX, 0);
            for (i, c) in cells.iter().enumerate() {
                if c.rank < best {
                    best = c.rank;
                    at = i;
                }
            }
            (best, at)
        };
        let (mut best, mut at) = lowest(cells);
        while best != u32::MAX {
            // The pair (at, at + 1) becomes one symbol at `at`, which forms new pairs with the
            // symbols before it and after the merged-away one.
            let n = cells.len();
            let sym = cells[at].merged;
            cells[at].sym = sym;
            let (rank, merged) = match cells.get(at + 2) {
                Some(next) => self.rank(sym, next.sym),
                None => (u32::MAX, 0),
            };
            (cells[at].rank, cells[at].merged) = (rank, merged);
            if at > 0 {
                let (rank, merged) = self.rank(cells[at - 1].sym, sym);
                (cells[at - 1].rank, cells[at - 1].merged) = (rank, merged);
            }
            let merged_at = at;
            (best, at) = lowest(&cells[..=merged_at]);
            for k in merged_at + 1..n - 1 {
                let c = cells[k + 1];
                cells[k] = c;
                if c.rank < best {
                    best = c.rank;
                    at = k;
                }
            }
            cells.truncate(n - 1);
        }
    }

    /// The merges of [`Self::merge_scan`] for words of any length, given the first ranks in
    /// `scratch.ranks`: a tournament tree over the pair positions holds `rank << 32 | position`
    /// at its leaves (`u64::MAX` for a pair that is gone) and the minimum of its children at each
    /// node, so the root is the lowest rank, the leftmost among equals (positions only grow along
    /// the word: a merged symbol keeps its left position). A merge changes at most three leaves,
    /// each a walk to the root; nothing is allocated and no entry goes stale. The tree is the
    /// implicit one of `2m` nodes for `m` leaves (leaf `i` at `m + i`, node `k`'s children at
    /// `2k` and `2k + 1`): any `m`, not a power of two, since keys have no ties.
    fn merge_tree(&self, syms: &mut Vec<u32>, scratch: &mut Scratch) {
        let n = syms.len();
        if n < 2 {
            return;
        }
        let Scratch {
            ranks,
            tree,
            next,
            prev,
            ..
        } = scratch;
        debug_assert_eq!(ranks.len() + 1, n);
        let m = n - 1;
        tree.clear();
        tree.resize(m, 0);
        tree.extend(ranks.iter().enumerate().map(|(i, &(r, _))| key(r, i)));
        for k in (1..m).rev() {
            tree[k] = tree[2 * k].min(tree[2 * k + 1]);
        }
        next.clear();
        next.extend(1..=n as u32);
        prev.clear();
        prev.extend((0..n as u32).map(|i| i.wrapping_sub(1)));
        loop {
            let top = tree[1];
            if top >> 32 == u64::from(u32::MAX) {
                break;
            }
            // The pair (at, j) becomes one symbol at `at`; j is linked out.
            let at = top as u32 as usize;
            let j = next[at] as usize;
            let k = next[j] as usize;
            syms[at] = ranks[at].1;
            next[at] = k as u32;
            // The leaves of j and of the pair before `at` first, stopping where nothing changes
            // (at the latest below the path of `at`, which holds the old minimum), then the
            // path of `at` all the way up.
            if at > 0 {
                let p = prev[at] as usize;
                let (r, merged) = self.rank(syms[p], syms[at]);
                ranks[p].1 = merged;
                settle(tree, m, p, key(r, p));
            }
            let mut fresh = u64::MAX;
            if k < n {
                prev[k] = at as u32;
                settle(tree, m, j, u64::MAX);
                let (r, merged) = self.rank(syms[at], syms[k]);
                ranks[at].1 = merged;
                fresh = key(r, at);
            }
            settle_top(tree, m, at, fresh);
        }
        let (mut w, mut i) = (0, 0);
        while i < n {
            syms[w] = syms[i];
            w += 1;
            i = next[i] as usize;
        }
        syms.truncate(w);
        scratch.shrink();
    }

    /// The merges as the `tokenizers` crate does them: a min-heap on `(rank, position)` whose
    /// stale entries are skipped, the reference for the tests.
    #[cfg(test)]
    pub(crate) fn merge_heap(&self, syms: &mut Vec<u32>) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let n = syms.len();
        if n < 2 {
            return;
        }
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

/// `cells` for the word of the symbols `syms`, the pair at `i` having the rank and merged id
/// `first(i)` (the last symbol starts no pair).
fn fill_cells(
    cells: &mut Vec<Cell>,
    syms: impl ExactSizeIterator<Item = u32>,
    first: impl Fn(usize) -> (u32, u32),
) {
    let n = syms.len();
    cells.clear();
    cells.extend(syms.enumerate().map(|(i, sym)| {
        let (rank, merged) = if i + 1 < n { first(i) } else { (u32::MAX, 0) };
        Cell { sym, rank, merged }
    }));
}

/// The tree key of the pair at `i` with rank `r`: ordered by rank, then position.
#[inline(always)]
fn key(r: u32, i: usize) -> u64 {
    u64::from(r) << 32 | i as u64
}

/// Sets leaf `i` of the tree of `m` leaves to `v` and recomputes its ancestors up to the first
/// that keeps its value (the ones above it then keep theirs too).
#[inline(always)]
fn settle(tree: &mut [u64], m: usize, i: usize, v: u64) {
    let mut k = m + i;
    tree[k] = v;
    while k > 1 {
        let low = tree[k].min(tree[k ^ 1]);
        k >>= 1;
        if tree[k] == low {
            break;
        }
        tree[k] = low;
    }
}

/// [`settle`] for the leaf of the minimum: every ancestor held its old key, so every one changes.
#[inline(always)]
fn settle_top(tree: &mut [u64], m: usize, i: usize, v: u64) {
    let mut k = m + i;
    tree[k] = v;
    while k > 1 {
        let low = tree[k].min(tree[k ^ 1]);
        k >>= 1;
        tree[k] = low;
    }
}
