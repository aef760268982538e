//! Loom models of the pool's races: objects moving between threads through the private slots
//! and the shared queue, and `clear` and `trim` racing gets and puts. Each model counts the
//! objects made and dropped: every object must be dropped exactly once, by the end of the
//! model, and no two threads may hold one object at once (loom's checked `UnsafeCell` in the
//! slots reports any access the slot's protocol does not order).
//!
//! Under loom the shared queues are a lock-and-deque stand-in (see `src/queue.rs` for why).
//!
//! Run with `cargo xtask loom gosync-pool`.

#![cfg(gosync_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use gosync_park::sync::Arc;
use gosync_park::thread;
use gosync_pool::Pool;

/// Counts the objects of one model execution.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

/// An object that counts itself; `holder` says who has it (0: idle).
struct Tracked {
    census: std::sync::Arc<Census>,
    holder: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn tracked_pool(max_idle: usize) -> (Arc<Pool<Tracked>>, std::sync::Arc<Census>) {
    let census = std::sync::Arc::new(Census::default());
    let maker = std::sync::Arc::clone(&census);
    let pool = Pool::with_reset(
        move || {
            maker.made.fetch_add(1, Ordering::SeqCst);
            Tracked {
                census: std::sync::Arc::clone(&maker),
                holder: 0,
            }
        },
        |t: &mut Tracked| t.holder = 0,
    )
    .with_max_idle(max_idle);
    (Arc::new(pool), census)
}

/// Gets an object, checks nobody else holds it, marks it and puts it back.
fn use_one(pool: &Pool<Tracked>, me: usize) {
    let mut held = pool.get();
    assert_eq!(held.holder, 0, "an object was handed out twice");
    held.holder = me;
}

fn check_census(census: &Census) {
    let made = census.made.load(Ordering::SeqCst);
    assert_eq!(made, census.dropped.load(Ordering::SeqCst));
}

/// One thread puts objects while another gets: the getter finds one of them or makes its own,
/// and no object is lost or dropped twice. With room for 2 the pool has one slot, which every
/// thread shares, so the object goes from thread to thread through it; with room for 6 each
/// thread has its own slot and the second object goes through the shared queue.
#[test]
fn get_and_put_across_threads() {
    for max_idle in [2, 6] {
        loom::model(move || {
            let (pool, census) = tracked_pool(max_idle);
            let a = pool.take();
            let b = pool.take();
            let putter = {
                let pool = pool.clone();
                thread::spawn(move || {
                    pool.put(a);
                    pool.put(b);
                })
            };
            let getter = {
                let pool = pool.clone();
                thread::spawn(move || use_one(&pool, 2))
            };
            putter.join().unwrap();
            getter.join().unwrap();
            use_one(&pool, 3);
            drop(pool);
            check_census(&census);
        });
    }
}

/// Two threads use objects while the main thread clears.
#[test]
fn clear_races_get_and_put() {
    loom::model(|| {
        let (pool, census) = tracked_pool(4);
        pool.put(pool.take());
        let users: Vec<_> = (1..=2)
            .map(|me| {
                let pool = pool.clone();
                thread::spawn(move || use_one(&pool, me))
            })
            .collect();
        pool.clear();
        for user in users {
            user.join().unwrap();
        }
        drop(pool);
        check_census(&census);
    });
}

/// A thread uses objects while another trims twice: an object is either in use, idle in the
/// pool, or dropped, never two of these.
#[test]
fn trim_races_get_and_put() {
    loom::model(|| {
        let (pool, census) = tracked_pool(4);
        pool.put(pool.take());
        let user = {
            let pool = pool.clone();
            thread::spawn(move || {
                use_one(&pool, 1);
                use_one(&pool, 1);
            })
        };
        pool.trim();
        pool.trim();
        user.join().unwrap();
        drop(pool);
        check_census(&census);
    });
}

/// Two threads trim at once while a third puts: trims racing each other drop nothing twice.
#[test]
fn trims_race_each_other_and_a_put() {
    loom::model(|| {
        let (pool, census) = tracked_pool(2);
        let a = pool.take();
        pool.put(pool.take());
        let trimmers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.trim())
            })
            .collect();
        pool.put(a);
        for trimmer in trimmers {
            trimmer.join().unwrap();
        }
        drop(pool);
        check_census(&census);
    });
}
