//! Where a run's CPU time goes, stage by stage (the manifest's `cpu_seconds`): the sequential
//! stages (read, pack, write: one thread each) are measured on their threads, parse piece by
//! piece and augment window by window in the pool, and tokenize is the rest of the process's CPU
//! time (the pool's tokenizing and the main thread that hands it batches). JSONL's read stage is
//! up to [`super::text`]'s `READ_AHEAD` threads that decompress and cut sources side by side
//! (one source each at a time), one that hands their batches on in order and one that counts the
//! parsed lines in order: `read` is their CPU time in all, and its one-thread share (for
//! `scales_to_cores`) the last two added to the busiest reading thread's: an upper bound.

use crate::output::manifest::StageSeconds;
use crate::workers::{process_cpu_seconds, thread_cpu_seconds};
use std::sync::atomic::{AtomicU64, Ordering};

/// Accumulated stage times, in nanoseconds, shared by the stage threads.
#[derive(Default)]
pub struct StageClock {
    read: AtomicU64,
    parse: AtomicU64,
    pack: AtomicU64,
    augment: AtomicU64,
    write: AtomicU64,
    /// The threads that decompress and cut JSONL sources side by side: their CPU time in all,
    /// and the busiest one's (the read stage's sequential part).
    read_ahead_total: AtomicU64,
    read_ahead_max: AtomicU64,
}

pub enum Stage {
    Read,
    Parse,
    Pack,
    Augment,
    Write,
}

impl StageClock {
    /// Adds `seconds` to `stage`.
    pub fn add(&self, stage: Stage, seconds: f64) {
        let counter = match stage {
            Stage::Read => &self.read,
            Stage::Parse => &self.parse,
            Stage::Pack => &self.pack,
            Stage::Augment => &self.augment,
            Stage::Write => &self.write,
        };
        counter.fetch_add((seconds.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }

    /// Adds one read-ahead thread's CPU `seconds` to the read stage.
    pub fn add_read_ahead(&self, seconds: f64) {
        let nanos = (seconds.max(0.0) * 1e9) as u64;
        self.read_ahead_total.fetch_add(nanos, Ordering::Relaxed);
        self.read_ahead_max.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Runs `f`, adding the calling thread's CPU time in it to `stage`.
    pub fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = thread_cpu_seconds();
        let out = f();
        self.add(stage, thread_cpu_seconds() - start);
        out
    }

    /// The stages' seconds, given the process's CPU seconds when the run started.
    pub fn seconds(&self, process_start: f64) -> StageSeconds {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 * 1e-9;
        let (read, parse, pack, augment, write) = (
            get(&self.read),
            get(&self.parse),
            get(&self.pack),
            get(&self.augment),
            get(&self.write),
        );
        let total = process_cpu_seconds() - process_start;
        // The pack thread's time includes waiting for the pool to augment: none of it is CPU.
        let tokenize = (total - read - parse - pack - augment - write).max(0.0);
        let (ahead_total, ahead_max) = (get(&self.read_ahead_total), get(&self.read_ahead_max));
        StageSeconds::new(
            [read + ahead_total, parse, tokenize, pack, augment, write],
            read + ahead_max,
        )
    }
}
