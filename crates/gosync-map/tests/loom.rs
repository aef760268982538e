//! Loom models of `Map`: an insert racing a load on one chain (the load sees nothing or the
//! whole value), a delete and an insert in one chain's head (both publish their tags through
//! the chain lock's unlock), a delete racing `load_or_store`, two inserts overflowing the same
//! full chain and growing the table, a resize racing a load, a range and a store (the key is
//! found, visited once, and the store lands in the new table), `clear` racing a store,
//! reclamation (a replaced value is freed once, never while a reader can see it, also when the
//! reader finds it through a moved chain of the old table, and its block is reused only after
//! that), two `load_or_store_with` callers for one absent key, and `update` racing a resize and
//! another `update` (no increment lost) or a delete and re-store of its key (never applied to a
//! stale entry), a delete and re-store racing two loads (a later load never misses what an
//! earlier one returned), three writers of one chain with two of them asleep on its lock, and the
//! chain lock's starvation-mode hand-off (the waiter gets the lock before a newcomer, and sees
//! the tag the unlock published), and a `load_or_store_with` whose insert panics in its key's
//! `Eq` beside a second caller for the key (no dropped key stays registered; the second stores
//! its own value).
//!
//! A map starts with one bucket of six slots, so six keys fill it and a seventh overflows the
//! chain and grows the table. Two writers of one chain contend for its lock, which parks
//! the second at once under loom. Values are loom cells, so a reader that could see a value without
//! the writer's writes happening before, or after it was freed, fails the model.

#![cfg(gosync_loom)]

use std::hash::{BuildHasher, Hasher};

use gosync_map::Map;
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicUsize, Ordering};
use gosync_park::thread;

/// Hashes a `u64` key `k` to `k` in the low bits (the bucket index: after a resize to two
/// buckets, even and odd keys part) and `k` in the top 7 bits (distinct tags for small keys).
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

/// Stores `k → v` on a new thread.
fn spawn_store(
    m: &Arc<TestMap>,
    drops: &Arc<AtomicUsize>,
    k: u64,
    v: u64,
) -> thread::JoinHandle<()> {
    let (m, drops) = (Arc::clone(m), Arc::clone(drops));
    thread::spawn(move || m.store(k, Value::new(v, &drops)))
}

/// Deletes `k` on a new thread.
fn spawn_delete(m: &Arc<TestMap>, k: u64) -> thread::JoinHandle<()> {
    let m = Arc::clone(m);
    thread::spawn(move || m.delete(&k))
}

/// A map holding keys `1..=6` (value `10 * k`): its one bucket is full.
fn full_bucket(drops: &Arc<AtomicUsize>) -> Arc<TestMap> {
    let m = Arc::new(TestMap::default());
    for k in 1..=6 {
        m.store(k, Value::new(10 * k, drops));
    }
    m
}

#[test]
fn insert_vs_load_on_one_chain() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let writer = spawn_store(&m, &drops, 2, 20);
        let seen = m.load_with(&2, Value::get);
        assert!(seen.is_none() || seen == Some(20));
        assert_eq!(m.load_with(&1, Value::get), Some(10));
        writer.join().unwrap();
        assert_eq!(contents(&m), [(1, 10), (2, 20)]);
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn delete_vs_insert_in_one_head_publish_their_tags_at_unlock() {
    // Both writers change the head's tags, through the unlock that adds them to the header;
    // one of them waits for the other's lock (parks at once under loom). The reader in the
    // middle sees each key before or after its write, never a slot without its tag's entry.
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let deleter = spawn_delete(&m, 1);
        m.store(2, Value::new(20, &drops));
        let seen = m.load_with(&1, Value::get);
        assert!(seen.is_none() || seen == Some(10));
        assert_eq!(m.load_with(&2, Value::get), Some(20));
        deleter.join().unwrap();
        assert_eq!(contents(&m), [(2, 20)]);
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn delete_vs_load_or_store() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let deleter = spawn_delete(&m, 1);
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
fn two_inserts_overflow_and_grow_the_same_chain() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = full_bucket(&drops);
        let other = spawn_store(&m, &drops, 7, 70);
        m.store(8, Value::new(80, &drops));
        other.join().unwrap();
        let expected: Vec<_> = (1..=8).map(|k| (k, 10 * k)).collect();
        assert_eq!(contents(&m), expected);
        assert_eq!(m.len(), 8);
    });
}

#[test]
fn resize_vs_load_finds_every_key() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = full_bucket(&drops);
        let grower = spawn_store(&m, &drops, 7, 70);
        assert_eq!(m.load_with(&4, Value::get), Some(40));
        assert_eq!(m.load_with(&1, Value::get), Some(10));
        let new = m.load_with(&7, Value::get);
        assert!(new.is_none() || new == Some(70));
        grower.join().unwrap();
        assert_eq!(m.load_with(&7, Value::get), Some(70));
    });
}

#[test]
fn resize_vs_range_visits_every_key_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = full_bucket(&drops);
        let grower = spawn_store(&m, &drops, 7, 70);
        let mut seen = contents(&m);
        seen.retain(|&(k, _)| k != 7);
        let expected: Vec<_> = (1..=6).map(|k| (k, 10 * k)).collect();
        assert_eq!(seen, expected);
        grower.join().unwrap();
    });
}

#[test]
fn resize_vs_store_keeps_the_store() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = full_bucket(&drops);
        let grower = spawn_store(&m, &drops, 7, 70);
        m.store(2, Value::new(21, &drops));
        m.delete(&3);
        grower.join().unwrap();
        let expected = [(1, 10), (2, 21), (4, 40), (5, 50), (6, 60), (7, 70)];
        assert_eq!(contents(&m), expected);
        assert_eq!(m.len(), 6);
        drop(m);
        assert_eq!(drops.load(Ordering::Relaxed), 8);
    });
}

#[test]
fn clear_vs_store() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let storer = spawn_store(&m, &drops, 2, 20);
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
                // Each store retires the entry before it; a later store may reuse its block
                // once no reader can see it.
                for v in 11..=12 {
                    m.store(1, Value::new(v, &drops));
                }
                m.delete(&1);
            })
        };
        // Reads the value in place: it must not be freed, or its block reused, under the read.
        for _ in 0..2 {
            let seen = m.load_with(&1, Value::get);
            assert!(matches!(seen, None | Some(10..=12)));
        }
        writer.join().unwrap();
        assert!(m.is_empty());
        drop(m);
        // Every value dropped exactly once, the retired ones at the latest with the map.
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn reclamation_across_a_resize_frees_nothing_under_a_reader() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = full_bucket(&drops);
        let writer = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || {
                m.store(7, Value::new(70, &drops));
                // In the new table; the old table's moved chain still points at the entry.
                m.store(1, Value::new(11, &drops));
                m.delete(&1);
            })
        };
        // Reads the value in place, maybe through the old table's moved chain.
        let seen = m.load_with(&1, Value::get);
        assert!(matches!(seen, None | Some(10) | Some(11)));
        writer.join().unwrap();
        assert_eq!(m.len(), 6);
        drop(m);
        assert_eq!(drops.load(Ordering::Relaxed), 8);
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

/// A plain `u64` map, for the models of `update` and of the chain lock's hand-off.
type CountMap = Map<u64, u64, Placed>;

fn add_one(n: Option<&u64>) -> Option<u64> {
    Some(n.map_or(1, |n| n + 1))
}

/// Keys `1..=6`, values `10 * k`: the one bucket is full.
fn full_count_bucket() -> Arc<CountMap> {
    let m = Arc::new(CountMap::default());
    for k in 1..=6 {
        m.store(k, 10 * k);
    }
    m
}

#[test]
fn update_vs_resize_and_update_loses_no_increment() {
    loom::model(|| {
        let m = full_count_bucket();
        let other = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.store(7, 70);
                m.update(2, add_one);
            })
        };
        m.update(2, add_one);
        other.join().unwrap();
        assert_eq!(m.load(&2), Some(22));
        assert_eq!(m.len(), 7);
    });
}

#[test]
fn update_vs_delete_and_restore_applies_to_the_current_entry() {
    loom::model(|| {
        let m = full_count_bucket();
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
        assert_eq!(m.len(), 6);
    });
}

// A bounded waiter beside an unbounded one while `f` completes. The waiters start from inside
// `f`, so both find the computation registered (or, later, the key stored); the bounded one's
// deadline fires at its first look in the park (loom has no clock), so it gives up, or finds the
// computation done first. Either way `f` ran once, every value returned is the stored one, the
// unbounded waiter is woken, and no registration is left behind.
#[test]
fn bounded_waiter_gives_up_beside_an_unbounded_one_while_f_completes() {
    // Three threads through the registry and the park queue: two preemptions reach every order
    // of the give-up, the completion and the wakes, in a fraction of the time of three.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let m = Arc::new(CountMap::default());
        let mut waiters = None;
        let mine = m.load_or_store_with(1, || {
            let unbounded = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.load_or_store_with(1, || unreachable!("f is running")))
            };
            let bounded = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let far = std::time::Duration::from_secs(3600);
                    m.try_load_or_store_with_for(1, far, || unreachable!("f is running"))
                        .map_err(|(key, _f)| key)
                })
            };
            waiters = Some((unbounded, bounded));
            10
        });
        assert_eq!(mine, (10, false));
        let (unbounded, bounded) = waiters.unwrap();
        assert_eq!(unbounded.join().unwrap(), (10, true));
        match bounded.join().unwrap() {
            Ok(result) => assert_eq!(result, (10, true)),
            Err(key) => assert_eq!(key, 1),
        }
        assert_eq!(m.waiters_for(&1), None);
    });
}

#[test]
fn delete_and_restore_vs_two_loads_is_linearizable() {
    // The restore takes the slot the delete emptied and publishes its tag at its unlock: a load
    // that saw the old tag and then finds the new entry in the slot must not return it before
    // the unlock, or a later load (which finds the tag clear) would miss what an earlier one saw.
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        m.store(1, Value::new(10, &drops));
        let writer = {
            let (m, drops) = (Arc::clone(&m), Arc::clone(&drops));
            thread::spawn(move || {
                m.delete(&1);
                m.store(1, Value::new(11, &drops));
            })
        };
        let first = m.load_with(&1, Value::get);
        let second = m.load_with(&1, Value::get);
        assert!(
            !(first == Some(11) && second.is_none()),
            "a load returned {first:?}, a later one {second:?}"
        );
        writer.join().unwrap();
        assert_eq!(contents(&m), [(1, 11)]);
    });
}

#[test]
fn three_writers_of_one_chain_two_parked_at_once() {
    // Under loom a writer that finds the chain locked parks at once: with the lock held, both
    // others can be asleep on it, so the first unlock wakes one and keeps `PARKED` set for the
    // other, whose wake comes from a later unlock. No store is lost, nobody sleeps forever.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(TestMap::default());
        let first = spawn_store(&m, &drops, 1, 10);
        let second = spawn_store(&m, &drops, 2, 20);
        m.store(3, Value::new(30, &drops));
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(contents(&m), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(m.len(), 3);
    });
}

#[test]
fn starving_waiter_is_handed_the_lock_before_a_newcomer() {
    // A writer of key 1 sleeps on the chain while this thread stores key 1 and switches the
    // lock to starvation mode (as a waiter does after 1 ms). The unlock must hand the lock to
    // the sleeper, which sees the tag the unlock published in the same instruction (it finds
    // key 1 and replaces it, one entry, not two), and this thread, a newcomer from then on,
    // must land after it. Nobody sleeps forever.
    // Outside the model: how many executions reached the hand-off (the checks below run only in
    // those), so that the model cannot pass without testing it.
    static HANDED_OFF: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    loom::model(|| {
        let m = Arc::new(CountMap::default());
        let waiter = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.swap(1, 2))
        };
        let forced = m.store_forcing_starvation(1, 1);
        if forced {
            HANDED_OFF.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let newcomer = m.swap(1, 3);
        let waiter = waiter.join().unwrap();
        if forced {
            // The waiter was asleep: key 1 was absent, this thread inserted it.
            assert_eq!(waiter, Some(1), "the waiter missed the handed-over insert");
            assert_eq!(
                newcomer,
                Some(2),
                "the newcomer overtook the starving waiter"
            );
        }
        // Each write replaced the one before it: the swaps saw two of the three writes, the last
        // write is stored, and the first replaced nothing.
        let last = m.load(&1).expect("stored");
        let mut seen = [waiter, newcomer, Some(last)];
        seen.sort_unstable();
        let waiter_first = [None, Some(1), Some(3)];
        assert!(seen == [Some(1), Some(2), Some(3)] || (seen == waiter_first && waiter.is_none()));
        assert_eq!(m.len(), 1);
    });
    assert!(
        HANDED_OFF.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no execution reached the hand-off"
    );
}

/// A key that hashes like every other (one chain, one tag, so every lookup compares keys),
/// records its drop, and whose `Eq` against a key of another id panics once the model has armed
/// it, if the key is `hostile`.
struct Hostile {
    id: u64,
    /// Its bit in `dropped`.
    serial: u32,
    hostile: bool,
    armed: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl std::hash::Hash for Hostile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(0);
    }
}

impl PartialEq for Hostile {
    fn eq(&self, other: &Self) -> bool {
        let dropped = self.dropped.load(Ordering::Relaxed);
        assert_eq!(
            dropped & (1 << self.serial | 1 << other.serial),
            0,
            "compared a dropped key"
        );
        let armed = self.armed.load(Ordering::Relaxed) != 0;
        if armed && (self.hostile || other.hostile) && self.id != other.id {
            panic!("hostile Eq");
        }
        self.id == other.id
    }
}

impl Eq for Hostile {}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.dropped.fetch_or(1 << self.serial, Ordering::Relaxed);
    }
}

// The leader's value goes in under the registry lock; its key's `Eq` panics there, as the insert
// looks the key up and compares it with the key already in the chain. The computation must be
// unregistered before the lock is free (a second caller comparing its key with the registered
// one would compare with a dropped key), the second caller must then compute and store its own
// value, and nothing is left registered. (The caller whose insert panics may instead come second
// and find the other's value; some execution must reach the panic.) `Eq` reads the serials of
// both keys: after a regression, one of them may be dropped already, and the read is only a
// canary (the key stays allocated in its registry slot).
static LEADER_PANICKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn a_leader_whose_insert_panics_leaves_no_dropped_key_registered() {
    gosync_testkit::quiet_panics("hostile Eq", || {
        loom::model(|| {
            let armed = Arc::new(AtomicUsize::new(0));
            let dropped = Arc::new(AtomicUsize::new(0));
            let key = |id, serial, hostile| Hostile {
                id,
                serial,
                hostile,
                armed: Arc::clone(&armed),
                dropped: Arc::clone(&dropped),
            };
            let m: Arc<Map<Hostile, u64, Placed>> = Arc::new(Map::with_hasher(Placed));
            m.store(key(0, 0, false), 0);
            let leader = {
                let (m, armed, hostile_key) = (Arc::clone(&m), Arc::clone(&armed), key(1, 1, true));
                thread::spawn(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        m.load_or_store_with(hostile_key, || {
                            armed.store(1, Ordering::Relaxed);
                            1
                        })
                    }))
                    .ok()
                })
            };
            // This caller's key is never hostile, so it always stores its own value: first, or
            // after the hostile computation panicked.
            assert_eq!(m.load_or_store_with(key(1, 2, false), || 2), (2, false));
            // The hostile caller panicked if its `f` ran, or else found this caller's value.
            match leader.join().unwrap() {
                Some(found) => assert_eq!(found, (2, true)),
                None => {
                    LEADER_PANICKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            assert_eq!(m.load(&key(1, 3, false)), Some(2));
            assert_eq!(m.waiters_for(&key(1, 4, false)), None);
        });
    });
    assert!(LEADER_PANICKED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
