//! Loom models of `Value` and `Counter`: a store racing a guard (the guard's value stays alive,
//! nothing is freed twice), compare-and-swap racing a store, two `update`s racing, the reader
//! handle racing a store, and counter adds read after join.
//!
//! Values carry a loom `UnsafeCell` that their drop writes, so a drop that is not ordered after
//! a guard's read is reported as a data race; every model counts drops exactly. Storing threads
//! then collect epoch garbage a few times, so that the deferred drops run inside the model
//! (racing the other thread's guard) rather than only when the model ends.

#![cfg(gosync_loom)]

use gosync_atomic::{Counter, Value, ValueGuard};
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicUsize, Ordering::SeqCst};
use gosync_park::thread;

/// Counts values made and dropped.
#[derive(Default)]
struct Live {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

/// A new value counted by `live`.
fn track(live: &Arc<Live>, id: usize) -> Tracked {
    live.created.fetch_add(1, SeqCst);
    Tracked {
        id: UnsafeCell::new(id),
        live: Arc::clone(live),
    }
}

impl Live {
    fn assert_all_dropped(&self) {
        assert_eq!(self.created.load(SeqCst), self.dropped.load(SeqCst));
    }
}

/// A value whose drop writes its cell: loom reports a drop that races a read.
struct Tracked {
    id: UnsafeCell<usize>,
    live: Arc<Live>,
}

// SAFETY: `id` is written only by `drop`, which has the value to itself; reads go through
// `&self` and loom checks that they are ordered before that write.
unsafe impl Sync for Tracked {}

impl Tracked {
    fn id(&self) -> usize {
        // SAFETY: the only write is in `drop` (see the `Sync` impl).
        unsafe { *self.id.ptr() }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nothing else accesses the value any more.
        unsafe { *self.id.mut_ptr() = usize::MAX };
        self.live.dropped.fetch_add(1, SeqCst);
    }
}

/// Lets the epoch advance and run deferred drops, as later loads and stores would.
fn collect_garbage() {
    for _ in 0..3 {
        crossbeam_epoch::pin().flush();
    }
}

/// A value holding 1, and a thread that stores 2 into it and then collects garbage.
fn value_and_storer(live: &Arc<Live>) -> (Arc<Value<Tracked>>, thread::JoinHandle<()>) {
    let value = Arc::new(Value::new(track(live, 1)));
    let storer = {
        let (value, live) = (value.clone(), live.clone());
        thread::spawn(move || {
            value.store(track(&live, 2));
            collect_garbage();
        })
    };
    (value, storer)
}

#[test]
fn store_vs_guard() {
    loom::model(|| {
        let live = Arc::new(Live::default());
        let (value, storer) = value_and_storer(&live);
        let guard = value.load();
        let seen = guard.id();
        assert!(seen == 1 || seen == 2, "{seen}");
        assert_eq!(guard.id(), seen, "a guard's value does not change or die");
        let kept = ValueGuard::to_arc(&guard);
        drop(guard);
        storer.join().unwrap();
        assert_eq!(value.load().id(), 2);
        assert_eq!(kept.id(), seen);
        drop(value);
        drop(kept);
        live.assert_all_dropped();
    });
}

#[test]
fn compare_and_swap_vs_store() {
    loom::model(|| {
        let live = Arc::new(Live::default());
        let (value, storer) = value_and_storer(&live);
        let current = value.load_arc();
        let swapped = value.compare_and_swap(&current, Arc::new(track(&live, 3)));
        match &swapped {
            Ok(previous) => assert!(Arc::ptr_eq(previous, &current)),
            Err(actual) => assert_eq!((current.id(), actual.id()), (1, 2)),
        }
        storer.join().unwrap();
        // Either the store came last, or it came before a CAS that then replaced it.
        let expected = if swapped.is_ok() && current.id() == 2 {
            3
        } else {
            2
        };
        assert_eq!(value.load().id(), expected);
        drop((current, swapped, value));
        live.assert_all_dropped();
    });
}

#[test]
fn two_updates_race() {
    loom::model(|| {
        let live = Arc::new(Live::default());
        let value = Arc::new(Value::new(track(&live, 0)));
        let updater = {
            let (value, live) = (value.clone(), live.clone());
            thread::spawn(move || {
                value.update(|old| track(&live, old.id() + 1));
                collect_garbage();
            })
        };
        let stored = value.update(|old| track(&live, old.id() + 1));
        assert!(stored.id() == 1 || stored.id() == 2);
        updater.join().unwrap();
        assert_eq!(value.load().id(), 2, "both increments landed");
        drop((stored, value));
        live.assert_all_dropped();
    });
}

#[test]
fn reader_vs_store() {
    loom::model(|| {
        let live = Arc::new(Live::default());
        let (value, storer) = value_and_storer(&live);
        let mut reader = value.reader();
        let seen = reader.load().id();
        assert!(seen == 1 || seen == 2);
        storer.join().unwrap();
        assert_eq!(
            reader.load().id(),
            2,
            "a reader sees a store that happened before"
        );
        drop(reader);
        drop(value);
        live.assert_all_dropped();
    });
}

#[test]
fn counter_adds_read_after_join() {
    loom::model(|| {
        let counter = Arc::new(Counter::new());
        let adders: Vec<_> = [5, -2]
            .into_iter()
            .map(|delta| {
                let counter = counter.clone();
                thread::spawn(move || {
                    counter.add(delta);
                    counter.inc();
                })
            })
            .collect();
        counter.dec();
        for adder in adders {
            adder.join().unwrap();
        }
        assert_eq!(counter.value(), 5 - 2 + 2 - 1);
        counter.reset();
        assert_eq!(counter.value(), 0);
    });
}
