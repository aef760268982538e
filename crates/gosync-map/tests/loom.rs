//! Loom models of `Map`: an insert racing a load on one node (the load sees nothing or the
//! whole value), a delete racing `load_or_store`, two inserts growing the same slot into a
//! node, `clear` racing a store, reclamation (a replaced value is freed once, never while a
//! reader can see it) and two `load_or_store_with` callers for one absent key.
//!
//! Values are loom cells, so a reader that could see a value without the writer's writes
//! happening before, or after it was freed, fails the model.

#![cfg(gosync_loom)]

use std::hash::{BuildHasher, Hasher};

use gosync_map::Map;
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicUsize, Ordering};
use gosync_park::thread;

/// Hashes a `u64` key to itself rotated: keys 1 and 2 share the root slot 0 and split one level
/// down, so small keys exercise node growth and pruning.
#[derive(Clone, Copy, Default)]
struct Placed;

struct PlacedHasher(u64);

impl Hasher for PlacedHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_right(8)
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Placed {
    type Hasher = PlacedHasher;
    fn build_hasher(&self) -> PlacedHasher {
        PlacedHasher(0)
    }
}

/// A value in a loom cell, counting drops.
struct Value {
    cell: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

// SAFETY: the cell is written only at construction, before the value is shared.
unsafe impl Sync for Value {}

impl Value {
    fn new(n: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            cell: UnsafeCell::new(n),
            drops: Arc::clone(drops),
        }
    }

    fn get(&self) -> u64 {
        // SAFETY: never written after construction.
        unsafe { *self.cell.ptr() }
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        Self::new(self.get(), &self.drops)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

type TestMap = Map<u64, Value, Placed>;

fn contents(m: &TestMap) -> Vec<(u64, u64)> {
    let mut all = Vec::new();
    m.range(|&k, v| {
        all.push((k, v.get()));
        true
    });
    all.sort_unstable();
    all
}

#[test]
fn insert_vs_load_on_one_node() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let writer = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || m.store(2, Value::new(20, &drops)))
        };
        let seen = m.load_with(&2, Value::get);
        assert!(seen.is_none() || seen == Some(20));
        assert_eq!(m.load_with(&1, Value::get), Some(10));
        writer.join().unwrap();
        assert_eq!(contents(&m), [(1, 10), (2, 20)]);
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn delete_vs_load_or_store() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let deleter = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.delete(&1))
        };
        let (value, loaded) = m.load_or_store(1, Value::new(20, &drops));
        deleter.join().unwrap();
        let after = contents(&m);
        if loaded {
            // Loaded the old value, and the delete came after.
            assert_eq!(value.get(), 10);
            assert!(after.is_empty());
        } else {
            // Stored after the delete.
            assert_eq!(value.get(), 20);
            assert_eq!(after, [(1, 20)]);
        }
        assert_eq!(m.len(), after.len());
    });
}

#[test]
fn two_inserts_grow_the_same_slot() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let other = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || m.store(2, Value::new(20, &drops)))
        };
        m.store(3, Value::new(30, &drops));
        other.join().unwrap();
        assert_eq!(contents(&m), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(m.len(), 3);
    });
}

#[test]
fn clear_vs_store() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let storer = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || m.store(2, Value::new(20, &drops)))
        };
        m.clear();
        storer.join().unwrap();
        let after = contents(&m);
        assert!(after.is_empty() || after == [(2, 20)]);
        assert_eq!(m.len(), after.len());
    });
}

#[test]
fn reclamation_frees_replaced_values_once_and_never_under_a_reader() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let writer = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || {
                m.store(1, Value::new(11, &drops));
                m.delete(&1);
            })
        };
        // Reads the value in place: it must not be freed under the read.
        let seen = m.load_with(&1, Value::get);
        assert!(matches!(seen, None | Some(10) | Some(11)));
        writer.join().unwrap();
        assert!(m.is_empty());
        drop(m);
        // Both values dropped exactly once, the retired ones at the latest with
        // the map.
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn load_or_store_with_runs_f_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        let other = {
            let (m, drops, runs) = (Arc::clone(&m), Arc::clone(&drops), Arc::clone(&runs));
            thread::spawn(move || {
                let (v, _) = m.load_or_store_with(1, || {
                    runs.fetch_add(1, Ordering::Relaxed);
                    Value::new(20, &drops)
                });
                v.get()
            })
        };
        let (v, _) = m.load_or_store_with(1, || {
            runs.fetch_add(1, Ordering::Relaxed);
            Value::new(10, &drops)
        });
        let theirs = other.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(v.get(), theirs);
    });
}
