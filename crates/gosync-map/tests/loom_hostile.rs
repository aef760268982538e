//! Loom models of hostile races on `Map`'s table: `update` racing a resize of its chain and
//! another `update` (no increment lost, whichever table each finds the key in), and `update`
//! racing a delete and re-store of its key (its result is never applied to a stale entry).
//!
//! A map starts with one bucket of five slots: keys `1..=5` fill it and storing a sixth grows
//! the table, moving every key.

#![cfg(gosync_loom)]

use std::hash::{BuildHasher, Hasher};

use gosync_map::Map;
use gosync_park::sync::Arc;
use gosync_park::thread;

/// Hashes key `k` to `k` in the low bits (its bucket) and the top 7 bits (its tag).
#[derive(Clone, Copy, Default)]
struct Placed;

struct PlacedHasher(u64);

impl Hasher for PlacedHasher {
    fn finish(&self) -> u64 {
        self.0 | self.0 << 57
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

type TestMap = Map<u64, u64, Placed>;

fn add_one(n: Option<&u64>) -> Option<u64> {
    Some(n.map_or(1, |n| n + 1))
}

/// Keys `1..=5`, values `10 * k`: the one bucket is full.
fn full_bucket() -> Arc<TestMap> {
    let m = Arc::new(TestMap::default());
    for k in 1..=5 {
        m.store(k, 10 * k);
    }
    m
}

#[test]
fn update_vs_resize_and_update_loses_no_increment() {
    loom::model(|| {
        let m = full_bucket();
        let other = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.store(6, 60);
                m.update(2, add_one);
            })
        };
        m.update(2, add_one);
        other.join().unwrap();
        assert_eq!(m.load(&2), Some(22));
        assert_eq!(m.len(), 6);
    });
}

#[test]
fn update_vs_delete_and_restore_applies_to_the_current_entry() {
    loom::model(|| {
        let m = full_bucket();
        let other = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.delete(&3);
                m.store(3, 100);
            })
        };
        m.update(3, add_one);
        other.join().unwrap();
        // Before the delete (31, then replaced by 100), or after the store (101); an update
        // between the two stores 1, which the store replaces.
        let v = m.load(&3);
        assert!(v == Some(100) || v == Some(101), "{v:?}");
        assert_eq!(m.len(), 5);
    });
}
