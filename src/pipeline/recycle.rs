//! Buffers handed back by a later stage for reuse.
//!
//! At memory speed (token shards in, windows out) a fresh large allocation costs more than the
//! copy into it: the kernel maps and zeroes every page on first touch. Batches and windows are
//! the same size every time, so the stages that finish with one give it back here and the stages
//! that start one take it from here. At most `keep` buffers wait, so memory stays bounded.

use std::sync::Mutex;

pub struct Recycle<T> {
    free: Mutex<Vec<Vec<T>>>,
    keep: usize,
    /// Buffers with room for more elements are dropped, not kept (one that a long document
    /// grew would otherwise hold its memory for the rest of the run).
    max_capacity: usize,
}

impl<T> Recycle<T> {
    pub fn new(keep: usize, max_capacity: usize) -> Self {
        Recycle {
            free: Mutex::new(Vec::new()),
            keep,
            max_capacity,
        }
    }

    /// An empty buffer, reused if one is waiting, else new with room for `capacity` elements.
    pub fn take(&self, capacity: usize) -> Vec<T> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        match reused {
            Some(mut v) => {
                v.clear();
                v.reserve(capacity);
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Gives a buffer back (dropped if `keep` are already waiting).
    pub fn give(&self, v: Vec<T>) {
        if v.capacity() == 0 || v.capacity() > self.max_capacity {
            return;
        }
        if let Ok(mut f) = self.free.lock() {
            if f.len() < self.keep {
                f.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_up_to_keep_buffers() {
        let r = Recycle::<u32>::new(1, 100);
        let mut a = r.take(10);
        a.extend([1, 2, 3]);
        let ptr = a.as_ptr();
        r.give(a);
        r.give(vec![7; 4]); // over `keep`: dropped
        let b = r.take(5);
        assert!(b.is_empty() && b.capacity() >= 10);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(r.take(5).capacity(), 5);
        r.give(Vec::with_capacity(101)); // over `max_capacity`: dropped
        assert_eq!(r.take(5).capacity(), 5);
    }
}
