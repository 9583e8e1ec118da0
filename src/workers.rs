//! The threading every run shares: the rayon pool its parallel stages run in, the bound on the
//! queues between stage threads, and the way a stage thread's panic becomes an error. Each run
//! decides its own threads and queues (see `docs/architecture.md`); the stages themselves are
//! plain functions that take the pool they run in.

use crate::input::{DocumentReader, TextDoc, BATCH_BYTES};
use anyhow::{anyhow, Context, Result};
use std::sync::mpsc::SyncSender;

/// Batches in flight between two stages.
pub const QUEUE: usize = 2;

/// The rayon pool every parallel stage of a run runs in.
pub fn worker_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("utk-worker-{i}"))
        .build()
        .context("cannot start worker threads")
}

/// A stage thread's result; a panic becomes an error.
pub fn joined<T>(r: std::thread::Result<Result<T>>, what: &str) -> Result<T> {
    r.map_err(|_| anyhow!("the {what} thread panicked"))?
}

/// The reader stage of a text run: batches of about [`BATCH_BYTES`] of text, in order, until the
/// input ends or the next stage stops (its error is the one reported).
pub fn read_text_batches(reader: &mut DocumentReader, tx: &SyncSender<Vec<TextDoc>>) -> Result<()> {
    loop {
        let batch = reader.next_batch(BATCH_BYTES)?;
        if batch.is_empty() || tx.send(batch).is_err() {
            return Ok(());
        }
    }
}

/// CPU seconds the calling thread has used (0 where the platform cannot say).
pub fn thread_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds the whole process has used, every thread together.
pub fn process_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, which points to a
    // local that lives for the call.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    match r {
        0 => ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9,
        _ => 0.0,
    }
}
