//! Stress: bounded starts giving up while tasks finish; a task given back was never run,
//! every task started ran once, the limit holds, and the limit's permits all come back.

// Thousands of threads and timed waits: too slow for miri, which runs the smaller tests of
// every bounded wait.
#![cfg(not(any(gosync_loom, miri)))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::Context;
use gosync_errgroup::Group;
use gosync_testkit::within;

#[test]
fn bounded_starts_count_exactly() {
    within(|| {
        for round in 0..20usize {
            let g = Arc::new(Group::<usize>::new());
            g.set_limit(Some(3));
            let ran = Arc::new(AtomicUsize::new(0));
            let running = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let starters: Vec<_> = (0..3usize)
                .map(|i| {
                    let (g, ran, running, started) =
                        (g.clone(), ran.clone(), running.clone(), started.clone());
                    thread::spawn(move || {
                        for j in 0..60usize {
                            let task = {
                                let (ran, running) = (ran.clone(), running.clone());
                                move || {
                                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                    assert!(now <= 3, "{now} tasks at once with a limit of 3");
                                    ran.fetch_add(1, Ordering::SeqCst);
                                    thread::yield_now();
                                    running.fetch_sub(1, Ordering::SeqCst);
                                    if (i + j + round) % 11 == 0 {
                                        Err(j)
                                    } else {
                                        Ok(())
                                    }
                                }
                            };
                            let given_back = match (i + j) % 3 {
                                0 => g.try_go_for(Duration::from_micros(20), task).err(),
                                1 => g.try_go_until(Instant::now(), task).err(),
                                _ => {
                                    let (ctx, cancel) = Context::background().with_cancel();
                                    let c = cancel.clone();
                                    let t = thread::spawn(move || c.cancel());
                                    let r = g.go_ctx(&ctx, task).err().map(|(f, _)| f);
                                    t.join().unwrap();
                                    drop(cancel);
                                    r
                                }
                            };
                            match given_back {
                                None => {
                                    started.fetch_add(1, Ordering::SeqCst);
                                }
                                Some(f) => drop(f),
                            }
                            if j % 10 == 0 {
                                let _ = g.try_wait();
                            }
                        }
                    })
                })
                .collect();
            for t in starters {
                t.join().unwrap();
            }
            let _ = g.wait();
            assert_eq!(ran.load(Ordering::SeqCst), started.load(Ordering::SeqCst));
            // The limit is whole again: three tasks start without waiting.
            let gate = Arc::new(std::sync::Barrier::new(4));
            for _ in 0..3 {
                let gate = gate.clone();
                assert!(g.try_go(move || {
                    gate.wait();
                    Ok(())
                }));
            }
            assert!(!g.try_go(|| Ok(())), "a fourth start with a limit of 3");
            gate.wait();
            assert_eq!(g.wait(), Ok(()));
        }
    });
}

/// One thread that starts a task, waits for it with a tiny timeout (then without one when that
/// gives up), and starts the next: legal sequential use must never meet a WaitGroup misuse panic
/// from a `WAITERS` bit a bounded wait left behind.
#[test]
fn bounded_waits_then_starts_in_sequence() {
    within(|| {
        let g = Group::<()>::new();
        let (ctx, _cancel) = Context::background().with_cancel();
        for i in 0..3000u32 {
            g.go(|| {
                thread::yield_now();
                Ok(())
            });
            let done = match i % 3 {
                0 => g.wait_for(Duration::from_micros(u64::from(i % 13))),
                1 => g.try_wait(),
                _ => g.wait_until(Instant::now() + Duration::from_micros(5)),
            };
            if done.is_none() {
                assert_eq!(g.wait_ctx(&ctx).expect("not cancelled"), Ok(()));
            }
        }
    });
}
