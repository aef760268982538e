//! Public behaviour of `Pool` and `Pooled`.
//!
//! Ported behaviours from Go's `src/sync/pool_test.go`: `TestPool` (a put object comes back to
//! the same thread, and is gone after two collections: here two trims), `TestPoolNew` (`New`
//! runs only when nothing is idle), `TestPoolRelease` (idle objects are released: here counted
//! by drops) and `TestPoolStress` (many threads putting and getting), rewritten in our own code;
//! plus the bound on idle objects, reset, panics in `new` and `reset`, and `clear`/`trim` racing
//! everything else.
//!
//! Every object is a `Tracked` that counts itself, so each test checks exactly how many objects
//! were made and dropped; a double drop frees its canary box twice, which the allocator (and
//! miri) reports.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gosync_pool::{Pool, Pooled, MAX_IDLE};
use gosync_testkit::{join_within, panic_message, scaled, within};

/// Counts the `Tracked` objects of one test.
#[derive(Debug, Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
    /// Made and not yet dropped, as one word, so that one load is an exact snapshot.
    live: AtomicUsize,
}

impl Census {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Objects made and not yet dropped, at one instant.
    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// An object that counts itself in its census.
#[derive(Debug)]
struct Tracked {
    census: Arc<Census>,
    /// Freed on drop: a second drop is a double free.
    canary: Box<usize>,
    /// Who holds it (0: nobody); reset to 0 on the way back.
    holder: usize,
}

impl Tracked {
    fn new(census: &Arc<Census>) -> Self {
        census.made.fetch_add(1, Ordering::SeqCst);
        census.live.fetch_add(1, Ordering::SeqCst);
        Tracked {
            census: Arc::clone(census),
            canary: Box::new(0xC0FFEE),
            holder: 0,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert_eq!(*self.canary, 0xC0FFEE, "a Tracked object was corrupted");
        self.census.live.fetch_sub(1, Ordering::SeqCst);
        self.census.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A pool of `Tracked` objects that resets `holder`, and its census.
fn tracked_pool() -> (Pool<Tracked>, Arc<Census>) {
    let census = Census::new();
    let maker = Arc::clone(&census);
    let pool = Pool::with_reset(move || Tracked::new(&maker), |t: &mut Tracked| t.holder = 0);
    (pool, census)
}

#[test]
fn an_object_put_comes_back_to_the_same_thread() {
    let (pool, census) = tracked_pool();
    let mut first = pool.get();
    first.holder = 7;
    let canary = &*first.canary as *const usize;
    drop(first);
    let again = pool.get();
    assert_eq!(
        &*again.canary as *const usize, canary,
        "not the same object"
    );
    assert_eq!(again.holder, 0, "reset did not run");
    assert_eq!(census.made(), 1);
    drop(again);
    drop(pool);
    assert_eq!((census.made(), census.dropped()), (1, 1));
}

#[test]
fn new_runs_only_when_nothing_is_idle() {
    let (pool, census) = tracked_pool();
    let a = pool.take();
    let b = pool.take();
    assert_eq!(census.made(), 2);
    pool.put(a);
    pool.put(b);
    let (a, b) = (pool.take(), pool.take());
    assert_eq!(census.made(), 2, "an idle object was not reused");
    let c = pool.take();
    assert_eq!(census.made(), 3);
    drop((a, b, c, pool));
    assert_eq!(census.live(), 0);
}

#[test]
fn reset_runs_on_every_way_back() {
    let resets = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&resets);
    let pool = Pool::with_reset(String::new, move |s: &mut String| {
        counter.fetch_add(1, Ordering::SeqCst);
        s.clear();
    });
    let mut s = pool.get();
    s.push_str("user one's data");
    drop(s);
    let mut s = pool.take();
    assert_eq!(s, "");
    s.push_str("more");
    pool.put(s);
    assert_eq!(pool.take(), "");
    assert_eq!(resets.load(Ordering::SeqCst), 2);
    // Kept out of the pool: no reset.
    let kept = Pooled::into_inner(pool.get());
    drop(kept);
    assert_eq!(resets.load(Ordering::SeqCst), 2);
}

#[test]
fn into_inner_keeps_the_object_out_of_the_pool() {
    let (pool, census) = tracked_pool();
    let mut guard = pool.get();
    guard.holder = 3;
    let kept = Pooled::into_inner(guard);
    assert_eq!(kept.holder, 3);
    assert_eq!(census.live(), 1);
    let fresh = pool.take();
    assert_eq!(census.made(), 2, "the kept object was still in the pool");
    drop((kept, fresh, pool));
    assert_eq!(census.live(), 0);
}

#[test]
fn a_guard_keeps_its_object_through_clear_and_trim() {
    let (pool, census) = tracked_pool();
    pool.put(pool.take());
    let mut held = pool.get();
    held.holder = 1;
    pool.clear();
    pool.trim();
    pool.trim();
    assert_eq!(census.live(), 1, "clear or trim dropped an object in use");
    assert_eq!(held.holder, 1);
    drop(held);
    let again = pool.get();
    assert_eq!((census.made(), again.holder), (1, 0));
}

#[test]
fn guards_held_together_and_dropped_on_other_threads_all_come_back() {
    let (pool, census) = tracked_pool();
    let pool = Arc::new(pool);
    thread::scope(|s| {
        let first = pool.get(); // in this thread's slot
        let second = pool.get(); // the slot is claimed: held in the guard
        assert_eq!(census.made(), 2);
        s.spawn(move || drop(first));
        s.spawn(move || drop(second));
    });
    assert_eq!(
        census.live(),
        2,
        "a guard dropped on another thread dropped its object"
    );
    // One may wait in the other thread's slot: a trim moves both where any thread finds them.
    pool.trim();
    let (a, b) = (pool.get(), pool.get());
    assert_eq!(
        census.made(),
        2,
        "a guard dropped on another thread did not come back"
    );
    drop((a, b));
    drop(pool);
    assert_eq!(census.live(), 0);
}

#[test]
fn objects_a_thread_puts_beyond_its_slot_reach_other_threads() {
    let (pool, census) = tracked_pool();
    let pool = Arc::new(pool);
    let a = pool.take();
    let b = pool.take();
    pool.put(a); // the slot
    pool.put(b); // the shared queue
    let other = Arc::clone(&pool);
    within(move || drop(other.take()));
    assert_eq!(
        census.made(),
        2,
        "the other thread did not find the shared object"
    );
    drop(pool);
    assert_eq!(census.live(), 0);
}

#[test]
fn an_object_idle_across_two_trims_is_dropped() {
    let (pool, census) = tracked_pool();
    pool.put(pool.take());
    pool.trim();
    assert_eq!(census.live(), 1, "one trim dropped an idle object");
    pool.trim();
    assert_eq!(census.live(), 0, "an object idle across two trims survived");
    assert_eq!(census.dropped(), 1);
}

#[test]
fn an_object_used_between_trims_survives() {
    let (pool, census) = tracked_pool();
    pool.put(pool.take());
    pool.trim();
    pool.put(pool.take()); // found in the victim
    assert_eq!(census.made(), 1);
    pool.trim();
    pool.put(pool.take());
    assert_eq!(
        census.made(),
        1,
        "an object in use between trims was dropped"
    );
    pool.trim();
    pool.trim();
    assert_eq!(census.live(), 0);
}

/// `threads` threads each put one object, from their own slots, and exit.
fn fill_from_threads(pool: &Arc<Pool<Tracked>>, threads: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let pool = Arc::clone(pool);
            thread::spawn(move || pool.put(pool.take()))
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
}

#[test]
fn clear_drops_objects_cached_for_threads_that_exited() {
    let (pool, census) = tracked_pool();
    let pool = Arc::new(pool);
    fill_from_threads(&pool, 4);
    pool.put(pool.take());
    pool.trim(); // some of them in the victim
    fill_from_threads(&pool, 4);
    assert!(census.live() >= 1);
    pool.clear();
    assert_eq!(census.live(), 0);
    let made = census.made();
    drop(pool.take());
    assert_eq!(census.made(), made + 1, "clear left an object behind");
}

#[test]
fn dropping_the_pool_drops_every_idle_object_once() {
    let (pool, census) = tracked_pool();
    let pool = Arc::new(pool);
    fill_from_threads(&pool, 6);
    pool.trim();
    fill_from_threads(&pool, 6);
    let in_use = pool.take();
    let idle = census.live() - 1;
    assert!(idle >= 1 && idle <= pool.max_idle(), "{idle} idle");
    drop(pool);
    assert_eq!(
        census.live(),
        1,
        "dropping the pool left idle objects alive"
    );
    drop(in_use);
    assert_eq!(census.made(), census.dropped());
}

#[test]
fn a_panicking_reset_drops_that_object_and_the_pool_goes_on() {
    let census = Census::new();
    let maker = Arc::clone(&census);
    let pool = Pool::with_reset(
        move || Tracked::new(&maker),
        |t: &mut Tracked| {
            if t.holder == 13 {
                panic!("unlucky object");
            }
            t.holder = 0;
        },
    );
    pool.put(pool.take());
    let mut unlucky = pool.take();
    unlucky.holder = 13;
    let payload = panic::catch_unwind(AssertUnwindSafe(|| pool.put(unlucky))).unwrap_err();
    assert_eq!(panic_message(&*payload), "unlucky object");
    assert_eq!(
        census.live(),
        0,
        "the object whose reset panicked was not dropped"
    );
    // Through the guard too.
    let mut guard = pool.get();
    guard.holder = 13;
    assert!(panic::catch_unwind(AssertUnwindSafe(|| drop(guard))).is_err());
    assert_eq!(census.live(), 0);
    // Still usable.
    pool.put(pool.take());
    pool.put(pool.take());
    assert_eq!(census.live(), 1);
    drop(pool);
    assert_eq!(census.made(), census.dropped());
}

#[test]
fn a_panicking_new_leaves_the_pool_unchanged() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let pool = Pool::new(move || {
        if counter.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("out of widgets");
        }
        vec![1u8]
    });
    pool.put(pool.take());
    let idle = pool.take();
    let payload = panic::catch_unwind(AssertUnwindSafe(|| pool.take())).unwrap_err();
    assert_eq!(panic_message(&*payload), "out of widgets");
    pool.put(idle);
    assert_eq!(pool.take(), [1]);
    assert_eq!(pool.take(), [1]); // the third call of `new` succeeds
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_guard_dropped_during_a_panic_drops_its_object() {
    let (pool, census) = tracked_pool();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut guard = pool.get();
        guard.holder = 1;
        panic!("while holding");
    }));
    assert!(result.is_err());
    assert_eq!(
        census.live(),
        0,
        "the object went back to the pool during the panic"
    );
    drop(pool.take());
    assert_eq!(census.made(), 2);
}

#[test]
fn max_idle_outside_its_range_panics_with_the_range() {
    for bad in [0, MAX_IDLE + 1] {
        let payload = panic::catch_unwind(|| Pool::new(|| 0u8).with_max_idle(bad)).unwrap_err();
        assert_eq!(
            panic_message(&*payload),
            format!("gosync: Pool max_idle must be between 1 and 4096, got {bad}")
        );
    }
    let default = Pool::new(|| 0u8).max_idle();
    assert!((1..=MAX_IDLE).contains(&default), "{default}");
    for good in [1, 2, 3, 7, MAX_IDLE] {
        assert_eq!(Pool::new(|| 0u8).with_max_idle(good).max_idle(), good);
    }
}

#[test]
fn with_max_idle_drops_what_the_pool_held() {
    let (pool, census) = tracked_pool();
    pool.put(pool.take());
    let pool = pool.with_max_idle(3);
    assert_eq!(census.live(), 0);
    drop(pool);
    assert_eq!(census.made(), 1);
}

/// Puts from `threads` threads, `per_thread` new objects each, and checks after every put that
/// no more than the cap are idle (plus one in each putter's hand).
fn idle_stays_within(max_idle: Option<usize>, threads: usize, per_thread: usize) {
    let (pool, census) = tracked_pool();
    let pool = match max_idle {
        Some(max) => pool.with_max_idle(max),
        None => pool,
    };
    let cap = pool.max_idle();
    let pool = Arc::new(pool);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, census, start) = (Arc::clone(&pool), Arc::clone(&census), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut worst = 0;
                for _ in 0..per_thread {
                    pool.put(Tracked::new(&census));
                    worst = worst.max(census.live());
                }
                worst
            })
        })
        .collect();
    for handle in handles {
        let worst = join_within(handle);
        assert!(worst <= cap + threads, "{worst} live with a cap of {cap}");
    }
    assert!(census.live() <= cap);
    drop(pool);
    assert_eq!(census.live(), 0);
    assert_eq!(census.made(), threads * per_thread);
}

#[test]
fn a_million_puts_keep_idle_objects_within_the_default_cap() {
    idle_stays_within(None, 4, scaled(250_000, 100));
}

#[test]
fn a_small_cap_holds_under_puts_and_trims() {
    for cap in [1, 2, 5] {
        idle_stays_within(Some(cap), 3, scaled(10_000, 30));
    }
}

/// Go's `TestPoolStress`, made hostile: 64 threads (6 under miri) get, put, take, clear and trim
/// at once, and each checks that nobody else holds the object it holds.
#[test]
fn sixty_four_threads_get_put_take_clear_and_trim() {
    const THREADS: usize = scaled(64, 6);
    let rounds = scaled(500, 8);
    let (pool, census) = tracked_pool();
    let pool = Arc::new(pool.with_max_idle(16));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (1..=THREADS)
        .map(|me| {
            let (pool, start) = (Arc::clone(&pool), start.clone());
            thread::spawn(move || {
                start.wait();
                for round in 0..rounds {
                    match (me + round) % 16 {
                        0 => pool.clear(),
                        1 => pool.trim(),
                        2..=5 => {
                            let mut held = pool.take();
                            assert_eq!(held.holder, 0, "an object came back without reset");
                            held.holder = me;
                            thread::yield_now();
                            assert_eq!(held.holder, me, "two threads held one object");
                            pool.put(held);
                        }
                        6 => drop(Pooled::into_inner(pool.get())),
                        _ => {
                            let mut held = pool.get();
                            assert_eq!(held.holder, 0, "an object came back without reset");
                            held.holder = me;
                            assert_eq!(held.holder, me, "two threads held one object");
                        }
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
    assert!(census.live() <= 16, "{} idle", census.live());
    drop(pool);
    assert_eq!(census.made(), census.dropped());
}

/// Panics in `new` and `reset` on many threads at once: every object is still dropped exactly
/// once, and the pool keeps serving.
#[test]
fn panics_in_new_and_reset_on_many_threads() {
    // Few panics under miri, where each one (and its backtrace, when asked for) costs seconds.
    const THREADS: usize = scaled(16, 2);
    let rounds = scaled(1_000, 5);
    let census = Census::new();
    let maker = Arc::clone(&census);
    let pool = Arc::new(Pool::with_reset(
        move || {
            let made = Tracked::new(&maker);
            if made.census.made() % 7 == 0 {
                panic!("new failed");
            }
            made
        },
        |t: &mut Tracked| {
            if t.holder % 5 == 0 {
                panic!("reset failed");
            }
            t.holder = 0;
        },
    ));
    let handles: Vec<_> = (0..THREADS)
        .map(|me| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let mut panics = 0;
                for round in 1..=rounds {
                    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                        let mut held = pool.get();
                        held.holder = me * rounds + round;
                    }));
                    if let Err(payload) = outcome {
                        let message = panic_message(&*payload);
                        assert!(message == "new failed" || message == "reset failed");
                        panics += 1;
                    }
                }
                panics
            })
        })
        .collect();
    let panics: usize = handles.into_iter().map(join_within).sum();
    assert!(panics > 0);
    drop(pool);
    assert_eq!(census.made(), census.dropped());
}

#[test]
fn default_debug_and_guard_formatting() {
    let pool: Pool<String> = Pool::default();
    assert_eq!(pool.take(), "");
    let debug = format!("{pool:?}");
    assert!(debug.starts_with("Pool { max_idle: "), "{debug}");
    let mut s = pool.get();
    s.push_str("hi");
    assert_eq!(format!("{s:?} {s}"), "\"hi\" hi");
}
