//! The bounded queues the pool shares between threads: `crossbeam-queue`'s lock-free
//! `ArrayQueue`, or, under loom, a stand-in of the same shape that loom can see.
//!
//! Why a stand-in: `crossbeam-queue` has no loom cfg of its own, so under `--cfg gosync_loom` it
//! would run on real atomics that loom neither sees nor schedules around. Its `pop` backs off in
//! a loop while another thread finishes a push into the same slot; under loom that thread would
//! never be scheduled while the loop runs, and the model would hang. The models check the pool's
//! own protocol (slots, `clear`, `trim`) against a queue with the same contract (bounded,
//! linearizable push and pop, a push happens-before the pop that takes its value), which a
//! loom `Mutex<VecDeque>` has. `ArrayQueue` itself is checked by crossbeam's own tests and miri
//! runs every pool test over it.

#[cfg(gosync_loom)]
use std::collections::VecDeque;

#[cfg(gosync_loom)]
use gosync_park::sync::BookkeepingLock;

/// A bounded multi-producer multi-consumer queue. A capacity of zero is allowed: it keeps
/// nothing.
pub(crate) struct BoundedQueue<T> {
    #[cfg(not(gosync_loom))]
    inner: Option<crossbeam_queue::ArrayQueue<T>>,
    #[cfg(gosync_loom)]
    inner: BookkeepingLock<VecDeque<T>>,
    #[cfg(gosync_loom)]
    capacity: usize,
}

impl<T> BoundedQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            #[cfg(not(gosync_loom))]
            inner: (capacity > 0).then(|| crossbeam_queue::ArrayQueue::new(capacity)),
            #[cfg(gosync_loom)]
            inner: BookkeepingLock::new(VecDeque::with_capacity(capacity)),
            #[cfg(gosync_loom)]
            capacity,
        }
    }

    /// How many values the queue can hold.
    pub(crate) fn capacity(&self) -> usize {
        #[cfg(not(gosync_loom))]
        return self.inner.as_ref().map_or(0, |queue| queue.capacity());
        #[cfg(gosync_loom)]
        return self.capacity;
    }

    /// Appends `value`, or hands it back when the queue is full.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        #[cfg(not(gosync_loom))]
        return match &self.inner {
            Some(queue) => queue.push(value),
            None => Err(value),
        };
        #[cfg(gosync_loom)]
        return {
            let mut queue = self.inner.lock();
            if queue.len() < self.capacity {
                queue.push_back(value);
                Ok(())
            } else {
                Err(value)
            }
        };
    }

    /// Removes the oldest value.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        #[cfg(not(gosync_loom))]
        return self.inner.as_ref()?.pop();
        #[cfg(gosync_loom)]
        return self.inner.lock().pop_front();
    }

    /// Hands the values in the queue to `f`: at most its capacity, so that threads pushing
    /// meanwhile cannot keep the caller here.
    pub(crate) fn drain(&self, mut f: impl FnMut(T)) {
        for _ in 0..self.capacity() {
            match self.pop() {
                Some(value) => f(value),
                None => break,
            }
        }
    }
}

impl<T> Drop for BoundedQueue<T> {
    /// Drops the values left, going on past one whose drop panics, as a `Vec` does (a second
    /// panic aborts): `ArrayQueue`'s own drop stops at the panic and leaks the values behind it.
    fn drop(&mut self) {
        drop_all(self);
    }
}

fn drop_all<T>(queue: &BoundedQueue<T>) {
    while let Some(value) = queue.pop() {
        // If `value`'s drop panics, the guard drops the rest as the panic leaves.
        let rest = DropTheRest(queue);
        drop(value);
        std::mem::forget(rest);
    }
}

struct DropTheRest<'a, T>(&'a BoundedQueue<T>);

impl<T> Drop for DropTheRest<'_, T> {
    fn drop(&mut self) {
        drop_all(self.0);
    }
}
