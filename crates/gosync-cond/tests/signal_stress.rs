//! Stress of `signal` against waiters whose timeouts land at the moment of the signal.
//!
//! 64 threads share one `Mutex` + `Cond` on a 2-core machine: a few producers add items one at
//! a time and signal, half of the time with the lock held (the signal then moves its waiter onto
//! the held mutex) and half of the time after unlocking (it wakes the waiter); the consumers take
//! items, waiting with `wait`, with `wait_for` of 0 to 200 µs (so that timeouts keep landing on
//! the signals), or with `wait_ctx` on a context that times out as soon. Checked exactly: every
//! item is taken once; a wait reports a signal no more often than signals were sent; an untimed
//! consumer never sleeps through its signal (the test would hang, and `within` fails it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync_cond::Cond;
use gosync_context::Context;
use gosync_mutex::Mutex;
use gosync_testkit::{join_within, within};

/// Threads in all, producers included.
const THREADS: usize = 64;
/// Producer threads.
const PRODUCERS: usize = 4;
/// Items each producer adds.
const ITEMS_PER_PRODUCER: u64 = 10_000;

#[derive(Default)]
struct Stock {
    /// Items added and not yet taken.
    items: u64,
    /// Set once the producers are done: consumers stop when no item is left.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    stock: Mutex<Stock>,
    cond: Cond,
    /// Signals sent by the producers.
    signals: AtomicU64,
    /// Waits that reported a signal (not a timeout) while the stock was still open.
    signalled: AtomicU64,
    /// Items taken.
    taken: AtomicU64,
}

fn produce(id: u64, shared: &Shared) {
    for n in 0..ITEMS_PER_PRODUCER {
        let mut stock = shared.stock.lock();
        stock.items += 1;
        shared.signals.fetch_add(1, Ordering::Relaxed);
        // Under the lock or after it, in a pattern that differs between producers.
        if (n + id) % 3 != 0 {
            shared.cond.signal();
            drop(stock);
        } else {
            drop(stock);
            shared.cond.signal();
        }
    }
}

fn consume(id: u64, shared: &Shared) {
    let mut waits = 0_u64;
    let mut stock = shared.stock.lock();
    loop {
        while stock.items == 0 && !stock.closed {
            // 0 to 200 us, spread over the threads and the waits of each.
            waits += 1;
            let timeout = Duration::from_micros((id * 37 + waits * 101) % 201);
            let signalled = match id % 3 {
                0 => {
                    shared.cond.wait(&mut stock);
                    true
                }
                1 => !shared.cond.wait_for(&mut stock, timeout).timed_out(),
                _ => {
                    let (ctx, _cancel) = Context::background().with_timeout(timeout);
                    shared.cond.wait_ctx(&mut stock, &ctx).is_ok()
                }
            };
            // Only the closing broadcast wakes a waiter once the stock is closed.
            if signalled && !stock.closed {
                shared.signalled.fetch_add(1, Ordering::Relaxed);
            }
        }
        if stock.items == 0 {
            return;
        }
        stock.items -= 1;
        shared.taken.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "driven by microsecond timeouts, which under miri's slow clock-checking loop run for many minutes; loom models the signal/timeout races"
)]
fn signals_racing_timeouts_lose_nothing() {
    within(|| {
        let shared = Arc::new(Shared::default());
        let consumers: Vec<_> = (0..(THREADS - PRODUCERS) as u64)
            .map(|id| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || consume(id, &shared))
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS as u64)
            .map(|id| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || produce(id, &shared))
            })
            .collect();
        for producer in producers {
            join_within(producer);
        }
        shared.stock.lock().closed = true;
        shared.cond.broadcast();
        for consumer in consumers {
            join_within(consumer);
        }
        let total = PRODUCERS as u64 * ITEMS_PER_PRODUCER;
        assert_eq!(shared.taken.load(Ordering::Relaxed), total, "items taken");
        assert_eq!(shared.stock.lock().items, 0, "items left");
        assert_eq!(
            shared.signals.load(Ordering::Relaxed),
            total,
            "signals sent"
        );
        let signalled = shared.signalled.load(Ordering::Relaxed);
        assert!(
            signalled <= total,
            "{signalled} waits reported a signal, but only {total} were sent"
        );
        assert!(
            shared.stock.try_lock().is_some(),
            "the mutex is free at the end"
        );
        eprintln!("{total} items, {signalled} waits woken by a signal");
    });
}
