//! The threading every run shares: the rayon pool its parallel stages run in, the bound on the
//! queues between stage threads, and the way a stage thread's panic becomes an error. Each run
//! decides its own threads and queues (see `docs/architecture.md`); the stages themselves are
//! plain functions that take the pool they run in.

use crate::input::{DocumentReader, TextDoc, BATCH_BYTES};
use anyhow::{anyhow, Context, Result};
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Batches in flight between two stages.
pub const QUEUE: usize = 2;

/// Batches a stage works on in the pool at once (see [`in_order`]).
pub const IN_FLIGHT: usize = 2;

/// Runs `work` on each of `items` in `pool`, up to `depth` at once, and hands the results to
/// `then` on the calling thread in the order of the items; stops early when `then` says so
/// (`Ok(false)`) or fails. An item for which `last` holds has its result handed on before the
/// next item is asked for (the next one may not come before: a streamed document's text).
///
/// With one item at a time the pool idles at the end of each: its last documents (a book takes
/// tens of milliseconds) run on one thread while the others wait. With the next item already in
/// the pool they go on with that one.
pub fn in_order<T: Send, R: Send>(
    pool: &rayon::ThreadPool,
    depth: usize,
    items: impl IntoIterator<Item = T>,
    last: impl Fn(&T) -> bool,
    work: impl Fn(T) -> R + Sync,
    mut then: impl FnMut(R) -> Result<bool>,
) -> Result<()> {
    pool.in_place_scope(|scope| {
        let work = &work;
        let mut pending = VecDeque::<Receiver<R>>::new();
        // `None` is the end of the items: everything still pending is handed on.
        for item in items.into_iter().map(Some).chain([None]) {
            let wait = match item {
                Some(item) => {
                    let wait = last(&item);
                    let (tx, rx) = sync_channel(1);
                    scope.spawn(move |_| {
                        let _ = tx.send(work(item));
                    });
                    pending.push_back(rx);
                    wait
                }
                None => true,
            };
            while pending.len() >= depth.max(1) || (wait && !pending.is_empty()) {
                let rx = pending.pop_front().expect("an item is pending");
                // A task that panicked sends nothing; the scope re-raises its panic on the way out.
                let result = rx.recv().map_err(|_| anyhow!("a worker thread panicked"))?;
                if !then(result)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Items take different times (later ones faster), and results still come in order.
    #[test]
    fn results_come_in_the_order_of_the_items() {
        let pool = worker_pool(3).unwrap();
        let mut seen = Vec::new();
        let work = |i: u64| {
            std::thread::sleep(Duration::from_millis(20 - i));
            i * 10
        };
        in_order(
            &pool,
            3,
            0..20u64,
            |_| false,
            work,
            |r| {
                seen.push(r);
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(seen, (0..20).map(|i| i * 10).collect::<Vec<_>>());
    }

    /// `then` stopping or failing ends the run without asking for more items.
    #[test]
    fn stops_when_told_or_on_an_error() {
        let pool = worker_pool(2).unwrap();
        let asked = AtomicUsize::new(0);
        let items = (0..100).inspect(|_| {
            asked.fetch_add(1, Ordering::SeqCst);
        });
        let mut seen = 0;
        let r = in_order(
            &pool,
            2,
            items,
            |_| false,
            |i| i,
            |_| {
                seen += 1;
                Ok(seen < 5)
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, 5);
        assert!(asked.load(Ordering::SeqCst) <= 6);
        let r = in_order(
            &pool,
            2,
            0..10,
            |_| false,
            |i| i,
            |i| match i {
                3 => Err(anyhow!("bad item {i}")),
                _ => Ok(true),
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "bad item 3");
    }

    /// After an item marked last, its result is handed on before the next item is asked for;
    /// otherwise up to `depth` items are in the pool at once.
    #[test]
    fn a_last_item_is_handed_on_before_the_next_is_asked_for() {
        let pool = worker_pool(2).unwrap();
        let (handed, asked) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let items = (0..10usize).inspect(|&i| {
            asked.store(i, Ordering::SeqCst);
            if i == 5 {
                // Item 4 is marked last: it was handed on before item 5 was asked for.
                assert_eq!(handed.load(Ordering::SeqCst), 5);
            }
        });
        in_order(
            &pool,
            3,
            items,
            |&i| i == 4,
            |i| i,
            |i| {
                // With depth 3, item i is handed on once item i + 2 is in the pool; items 3 and 4
                // as soon as 4 (the last before a pause) is, and 8 and 9 at the end.
                let expected = match i {
                    3 | 4 => 4,
                    8 | 9 => 9,
                    _ => i + 2,
                };
                assert_eq!(
                    asked.load(Ordering::SeqCst),
                    expected,
                    "handing on item {i}"
                );
                handed.store(i + 1, Ordering::SeqCst);
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(handed.load(Ordering::SeqCst), 10);
    }
}
