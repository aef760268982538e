//! `Pool` as a hostile user drives it: `new`, `reset` and `Drop` that re-enter the pool, panics
//! in drops during `clear`, `trim` and the pool's own drop, forgotten guards, and many threads
//! on few cores racing `clear` and `trim`, with every object counted.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;

use gosync_pool::{Pool, Pooled};
use gosync_testkit::{join_within, panic_message, scaled};

/// Objects made and not yet dropped, and whether one was dropped twice.
#[derive(Debug, Default)]
struct Census {
    live: AtomicUsize,
    made: AtomicUsize,
}

#[derive(Debug)]
struct Obj {
    census: Arc<Census>,
    /// A second drop is a double free of this box.
    canary: Box<u32>,
    /// Panics on drop when set (once: the flag is taken).
    panic_on_drop: bool,
    dirty: bool,
}

impl Obj {
    fn new(census: &Arc<Census>) -> Self {
        census.live.fetch_add(1, SeqCst);
        census.made.fetch_add(1, SeqCst);
        Self {
            census: Arc::clone(census),
            canary: Box::new(0xFEED),
            panic_on_drop: false,
            dirty: false,
        }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(*self.canary, 0xFEED, "corrupted object");
        self.census.live.fetch_sub(1, SeqCst);
        if std::mem::take(&mut self.panic_on_drop) {
            panic!("object drop panicked");
        }
    }
}

fn obj_pool(census: &Arc<Census>) -> Pool<Obj> {
    let maker = Arc::clone(census);
    Pool::with_reset(move || Obj::new(&maker), |obj: &mut Obj| obj.dirty = false)
}

#[test]
fn a_reset_that_reenters_the_pool_is_safe() {
    let census = Arc::new(Census::default());
    let pool: Arc<OnceLock<Pool<Obj>>> = Arc::new(OnceLock::new());
    let depth = Arc::new(AtomicUsize::new(0));
    let maker = Arc::clone(&census);
    // Weak: the pool owns this reset, which must not own the pool.
    let (inner_pool, inner_depth) = (Arc::downgrade(&pool), Arc::clone(&depth));
    let built = Pool::with_reset(
        move || Obj::new(&maker),
        move |obj: &mut Obj| {
            obj.dirty = false;
            // While the reset runs the thread's slot is claimed: everything here goes around
            // it. The depth bounds the recursion (a guard dropped here resets again).
            if inner_depth.fetch_add(1, SeqCst) < 3 {
                let pool = inner_pool.upgrade().unwrap();
                let pool = pool.get().unwrap();
                let mut other = pool.get();
                other.dirty = true;
                let taken = pool.take();
                pool.put(taken);
                pool.trim();
                drop(other);
                pool.clear();
            }
            inner_depth.fetch_sub(1, SeqCst);
        },
    );
    assert!(pool.set(built).is_ok());
    let pool = pool.get().unwrap();
    for _ in 0..scaled(50, 5) {
        let mut obj = pool.get();
        obj.dirty = true;
        drop(obj);
        let obj = pool.take();
        pool.put(obj);
        assert!(!pool.get().dirty);
    }
    pool.clear();
    assert_eq!(census.live.load(SeqCst), 0);
}

#[test]
fn a_new_that_reenters_the_pool_is_safe() {
    let census = Arc::new(Census::default());
    let pool: Arc<OnceLock<Pool<Obj>>> = Arc::new(OnceLock::new());
    let inner = Arc::downgrade(&pool);
    let maker = Arc::clone(&census);
    let nested = Arc::new(AtomicBool::new(false));
    let built = Pool::new(move || {
        if !nested.swap(true, SeqCst) {
            let pool = inner.upgrade().unwrap();
            let pool = pool.get().unwrap();
            // The slot is claimed by the `get` that called us: these go around it.
            let guard = pool.get();
            pool.clear();
            drop(guard);
            pool.put(Obj::new(&maker));
            nested.store(false, SeqCst);
        }
        Obj::new(&maker)
    });
    assert!(pool.set(built).is_ok());
    let pool = pool.get().unwrap();
    let outer = pool.get();
    let again = pool.get();
    drop((outer, again));
    pool.clear();
    assert_eq!(census.live.load(SeqCst), 0);
}

/// An object whose drop puts a fresh object back into the (static) pool it came from.
struct Boomerang;

static BOOMERANGS: OnceLock<Pool<Boomerang>> = OnceLock::new();
static BOOMERANG_LIVE: AtomicUsize = AtomicUsize::new(0);
static THROWING: AtomicBool = AtomicBool::new(true);

impl Drop for Boomerang {
    fn drop(&mut self) {
        BOOMERANG_LIVE.fetch_sub(1, SeqCst);
        if THROWING.load(SeqCst) {
            let pool = BOOMERANGS.get().unwrap();
            BOOMERANG_LIVE.fetch_add(1, SeqCst);
            // When the pool is full this new one is dropped and throws again: bounded by the
            // free places, which every throw fills or finds full.
            THROWING.store(false, SeqCst);
            pool.put(Boomerang);
            THROWING.store(true, SeqCst);
        }
    }
}

#[test]
fn a_drop_that_puts_back_into_the_pool_during_clear_and_trim() {
    let pool = BOOMERANGS.get_or_init(|| {
        Pool::new(|| {
            BOOMERANG_LIVE.fetch_add(1, SeqCst);
            Boomerang
        })
        .with_max_idle(8)
    });
    for _ in 0..scaled(20, 3) {
        let held: Vec<_> = (0..12).map(|_| pool.take()).collect();
        for obj in held {
            pool.put(obj);
        }
        pool.trim();
        pool.trim();
        pool.clear();
        assert!(BOOMERANG_LIVE.load(SeqCst) <= pool.max_idle());
    }
    THROWING.store(false, SeqCst);
    pool.clear();
    assert_eq!(BOOMERANG_LIVE.load(SeqCst), 0);
}

#[test]
fn a_panicking_drop_in_clear_leaves_the_rest_for_the_next_clear() {
    let census = Arc::new(Census::default());
    let pool = obj_pool(&census).with_max_idle(16);
    let mut objs: Vec<_> = (0..8).map(|_| pool.take()).collect();
    objs[3].panic_on_drop = true;
    for obj in objs {
        pool.put(obj);
    }
    pool.trim(); // all of them to the victim
    let failed = panic::catch_unwind(AssertUnwindSafe(|| pool.clear()));
    assert_eq!(panic_message(&*failed.unwrap_err()), "object drop panicked");
    pool.clear();
    assert_eq!(census.live.load(SeqCst), 0);
    // And the pool goes on.
    drop(pool.get());
    drop(pool);
    assert_eq!(census.live.load(SeqCst), 0);
}

#[test]
fn a_panicking_drop_in_the_pools_drop_drops_every_other_object() {
    let census = Arc::new(Census::default());
    let pool = obj_pool(&census).with_max_idle(16);
    let mut objs: Vec<_> = (0..6).map(|_| pool.take()).collect();
    objs[0].panic_on_drop = true; // first put: the thread's slot
    for obj in objs {
        pool.put(obj);
    }
    let failed = panic::catch_unwind(AssertUnwindSafe(move || drop(pool)));
    assert_eq!(panic_message(&*failed.unwrap_err()), "object drop panicked");
    assert_eq!(census.live.load(SeqCst), 0);
}

#[test]
fn a_panicking_drop_in_the_shared_queue_during_the_pools_drop_drops_the_rest() {
    let census = Arc::new(Census::default());
    let pool = obj_pool(&census).with_max_idle(32);
    let mut objs: Vec<_> = (0..12).map(|_| pool.take()).collect();
    objs[1].panic_on_drop = true; // the first put fills the slot; this one leads the shared queue
    for obj in objs {
        pool.put(obj);
    }
    let failed = panic::catch_unwind(AssertUnwindSafe(move || drop(pool)));
    assert_eq!(panic_message(&*failed.unwrap_err()), "object drop panicked");
    assert_eq!(
        census.live.load(SeqCst),
        0,
        "objects behind the panicking one leaked"
    );
}

#[test]
fn a_forgotten_guard_leaks_one_object_and_nothing_else() {
    // A static pool, so that the forgotten object stays reachable (miri checks for leaks).
    static FORGETFUL: OnceLock<(Pool<Obj>, Arc<Census>)> = OnceLock::new();
    let (pool, census) = FORGETFUL.get_or_init(|| {
        let census = Arc::new(Census::default());
        (obj_pool(&census), census)
    });
    std::mem::forget(pool.get());
    // Its slot stays claimed: gets and puts on this thread go around it.
    for _ in 0..10 {
        let a = pool.get();
        let b = pool.take();
        drop(a);
        pool.put(b);
    }
    pool.clear();
    assert_eq!(census.live.load(SeqCst), 1, "exactly the forgotten object");
}

#[test]
fn sixty_four_threads_race_clear_and_trim_and_every_object_is_dropped_once() {
    let census = Arc::new(Census::default());
    let pool = Arc::new(obj_pool(&census).with_max_idle(32));
    let threads = scaled(64, 4);
    let rounds = scaled(400, 10);
    let gate = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, gate) = (Arc::clone(&pool), Arc::clone(&gate));
            thread::spawn(move || {
                gate.wait();
                let mut kept = Vec::new();
                for i in 0..rounds {
                    match (t + i) % 7 {
                        0 => pool.clear(),
                        1 => pool.trim(),
                        2 => kept.push(pool.take()),
                        3 => {
                            if let Some(obj) = kept.pop() {
                                pool.put(obj);
                            }
                        }
                        4 => {
                            let mut a = pool.get();
                            let mut b = pool.get();
                            assert!(!a.dirty && !b.dirty, "an object came back unreset");
                            a.dirty = true;
                            b.dirty = true;
                            if i % 3 == 0 {
                                kept.push(Pooled::into_inner(b));
                            }
                        }
                        5 => {
                            let guard = pool.get();
                            // Dropped on another thread.
                            thread::scope(|s| {
                                s.spawn(move || drop(guard));
                            });
                        }
                        _ => {
                            let obj = pool.take();
                            pool.put(obj);
                        }
                    }
                }
                drop(kept);
            })
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
    // Quiescent: every live object is idle, and idle objects stay within the cap.
    let live = census.live.load(SeqCst);
    assert!(
        live <= pool.max_idle(),
        "{live} idle > cap {}",
        pool.max_idle()
    );
    let pool = Arc::try_unwrap(pool).expect("the only handle");
    drop(pool);
    assert_eq!(census.live.load(SeqCst), 0);
}
