//! Stress: bounded and context acquires giving up (timeouts, cancellations racing
//! releases); every permit must come back and the holders never exceed the capacity.

// Thousands of threads and timed waits: too slow for miri, which runs the smaller tests of
// every bounded wait.
#![cfg(not(any(gosync_loom, miri)))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::Context;
use gosync_semaphore::Semaphore;
use gosync_testkit::within;

#[test]
fn giving_up_never_leaks_a_permit() {
    within(|| {
        for round in 0..40u64 {
            let sem = Arc::new(Semaphore::new(5));
            let held = Arc::new(AtomicU64::new(0));
            let threads: Vec<_> = (0..6u64)
                .map(|i| {
                    let (sem, held) = (sem.clone(), held.clone());
                    thread::spawn(move || {
                        for j in 0..200u64 {
                            let n = 1 + (i + j + round) % 4;
                            let permit = match (i + j) % 4 {
                                0 => {
                                    sem.try_acquire_permit_for(n, Duration::from_micros(j % 7 * 10))
                                }
                                1 => sem.try_acquire_permit_until(n, Instant::now()),
                                2 => {
                                    let (ctx, cancel) = Context::background().with_cancel();
                                    let c = cancel.clone();
                                    let t = thread::spawn(move || c.cancel());
                                    let p = sem.acquire_permit_ctx(&ctx, n).ok();
                                    t.join().unwrap();
                                    drop(cancel);
                                    p
                                }
                                _ => {
                                    let (ctx, _c) = Context::background()
                                        .with_timeout(Duration::from_micros(30));
                                    sem.acquire_permit_ctx(&ctx, n).ok()
                                }
                            };
                            if let Some(p) = permit {
                                let now = held.fetch_add(n, Ordering::SeqCst) + n;
                                assert!(now <= 5, "{now} permits held of 5");
                                thread::yield_now();
                                held.fetch_sub(n, Ordering::SeqCst);
                                drop(p);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(sem.available(), 5, "round {round}: a permit leaked");
            assert_eq!(sem.queued(), 0);
            // Still usable in full.
            assert!(sem.try_acquire(5));
            sem.release(5);
        }
    });
}
