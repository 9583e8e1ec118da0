//! Where a run's CPU time goes, stage by stage (the manifest's `cpu_seconds`): the sequential
//! stages (read, pack, write: one thread each) are measured on their threads, parse piece by
//! piece and augment window by window in the pool, and tokenize is the rest of the process's CPU
//! time (the pool's tokenizing and the main thread that hands it batches). JSONL's read stage is
//! two threads (decompress and cut into batches; count the parsed lines in order), added up: an
//! upper bound of the one-thread share.

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
        StageSeconds::new([read, parse, tokenize, pack, augment, write])
    }
}
