//! Stress: RawRwMutex's _ctx waits giving up (cancellations racing unlocks) leave the
//! lock consistent: exclusion holds and the lock is free at the end.

// Thousands of threads and timed waits: too slow for miri, which runs the smaller tests of
// every bounded wait.
#![cfg(not(any(gosync_loom, miri)))]

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync_context::Context;
use gosync_rwmutex::RawRwMutex;
use gosync_testkit::within;

#[test]
fn ctx_waits_giving_up_keep_the_lock_consistent() {
    within(|| {
        for _round in 0..20 {
            let raw = Arc::new(RawRwMutex::new());
            // >0: readers inside; -1: a writer inside.
            let inside = Arc::new(AtomicIsize::new(0));
            let threads: Vec<_> = (0..5usize)
                .map(|i| {
                    let (raw, inside) = (raw.clone(), inside.clone());
                    thread::spawn(move || {
                        for j in 0..150usize {
                            let (ctx, cancel) = if (i + j) % 2 == 0 {
                                Context::background()
                                    .with_timeout(Duration::from_micros(j as u64 % 5 * 20))
                            } else {
                                Context::background().with_cancel()
                            };
                            let c = cancel.clone();
                            let t = thread::spawn(move || c.cancel());
                            match (i + j) % 4 {
                                0 | 1 => {
                                    if raw.lock_shared_ctx(&ctx).is_ok() {
                                        assert!(inside.fetch_add(1, Ordering::SeqCst) >= 0);
                                        thread::yield_now();
                                        inside.fetch_sub(1, Ordering::SeqCst);
                                        // SAFETY: this thread holds the lock it releases or upgrades.
                                        unsafe { raw.unlock_shared() };
                                    }
                                }
                                2 => {
                                    if raw.lock_exclusive_ctx(&ctx).is_ok() {
                                        assert_eq!(inside.swap(-1, Ordering::SeqCst), 0);
                                        thread::yield_now();
                                        assert_eq!(inside.swap(0, Ordering::SeqCst), -1);
                                        // SAFETY: this thread holds the lock it releases or upgrades.
                                        unsafe { raw.unlock_exclusive() };
                                    }
                                }
                                _ => {
                                    if raw.lock_upgradable_ctx(&ctx).is_ok() {
                                        assert!(inside.fetch_add(1, Ordering::SeqCst) >= 0);
                                        inside.fetch_sub(1, Ordering::SeqCst);
                                        // SAFETY: this thread holds the lock it releases or upgrades.
                                        if unsafe { raw.upgrade_ctx(&ctx) }.is_ok() {
                                            assert_eq!(inside.swap(-1, Ordering::SeqCst), 0);
                                            thread::yield_now();
                                            assert_eq!(inside.swap(0, Ordering::SeqCst), -1);
                                            // SAFETY: this thread holds the lock it releases or upgrades.
                                            unsafe { raw.unlock_exclusive() };
                                        } else {
                                            // SAFETY: this thread holds the lock it releases or upgrades.
                                            unsafe { raw.unlock_upgradable() };
                                        }
                                    }
                                }
                            }
                            t.join().unwrap();
                            drop(cancel);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(!raw.is_locked());
            raw.lock_exclusive();
            // SAFETY: this thread holds the lock it releases or upgrades.
            unsafe { raw.unlock_exclusive() };
            assert!(raw.try_lock_shared());
            // SAFETY: this thread holds the lock it releases or upgrades.
            unsafe { raw.unlock_shared() };
        }
    });
}
