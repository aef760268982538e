//! The registry of running `load_or_store_with` computations against hostile keys and values:
//! an `Eq` that panics while the computed value goes in, a value whose `Drop` uses the map, and
//! a call from inside `f` for its own key.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use gosync_map::Map;
use gosync_testkit::{join_within, panic_site, quiet_panics, scaled, within};

/// A hasher that puts every key in one chain with one tag, so that every lookup calls `Eq`.
#[derive(Clone, Copy, Default)]
struct OneChain;

impl BuildHasher for OneChain {
    type Hasher = OneChainHasher;
    fn build_hasher(&self) -> OneChainHasher {
        OneChainHasher
    }
}

struct OneChainHasher;

impl Hasher for OneChainHasher {
    fn finish(&self) -> u64 {
        0xDEAD_BEEF
    }
    fn write(&mut self, _: &[u8]) {}
}

/// A key that knows whether `Eq` is ever handed a key already dropped, and whose `Eq` panics
/// once when its thread asks.
struct Witness {
    id: u64,
    serial: u64,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);
static COMPARED_A_DROPPED_KEY: AtomicBool = AtomicBool::new(false);

thread_local! {
    static PANIC_IN_NEXT_EQ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn dropped_serials() -> &'static Mutex<HashSet<u64>> {
    static DROPPED: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    DROPPED.get_or_init(Mutex::default)
}

impl Witness {
    fn new(id: u64) -> Self {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::SeqCst);
        Witness { id, serial }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        dropped_serials().lock().unwrap().insert(self.serial);
    }
}

impl PartialEq for Witness {
    fn eq(&self, other: &Self) -> bool {
        let dropped = dropped_serials().lock().unwrap();
        if dropped.contains(&self.serial) || dropped.contains(&other.serial) {
            COMPARED_A_DROPPED_KEY.store(true, Ordering::SeqCst);
        }
        drop(dropped);
        if PANIC_IN_NEXT_EQ.with(|p| p.replace(false)) {
            panic!("hostile Eq");
        }
        self.id == other.id
    }
}

impl Eq for Witness {}

impl Hash for Witness {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

// The computed value goes in under the registry lock after the key has moved into its entry;
// an `Eq` panicking there (against a colliding key) must not leave the computation registered
// once the lock is free, or another caller's lookup in the registry compares its key with the
// dropped one.
#[test]
fn an_eq_panic_while_the_value_goes_in_leaves_no_dropped_key_registered() {
    let rounds = scaled(20_000, 30);
    within(move || {
        quiet_panics("hostile Eq", || {
            let m: Arc<Map<Witness, u64, OneChain>> = Arc::new(Map::with_hasher(OneChain));
            m.store(Witness::new(0), 0);
            let callers: Vec<_> = (0..3)
                .map(|_| {
                    let m = Arc::clone(&m);
                    thread::spawn(move || {
                        for _ in 0..rounds {
                            // Panics at the `Eq` against key 0 as the value goes in, or comes
                            // back at once while another caller computes key 1.
                            let _ = catch_unwind(AssertUnwindSafe(|| {
                                let _ = m.try_load_or_store_with(Witness::new(1), || {
                                    PANIC_IN_NEXT_EQ.with(|p| p.set(true));
                                    1
                                });
                            }));
                            PANIC_IN_NEXT_EQ.with(|p| p.set(false));
                            if COMPARED_A_DROPPED_KEY.load(Ordering::SeqCst) {
                                break;
                            }
                        }
                    })
                })
                .collect();
            for caller in callers {
                join_within(caller);
            }
        });
    });
    assert!(
        !COMPARED_A_DROPPED_KEY.load(Ordering::SeqCst),
        "a caller compared its key with a registered key already dropped"
    );
}

/// A value whose drop calls `load_or_store_with` on the map it lived in.
struct UsesMapOnDrop {
    reenter: bool,
}

impl Clone for UsesMapOnDrop {
    fn clone(&self) -> Self {
        UsesMapOnDrop { reenter: false }
    }
}

fn map_of_reentrant_values() -> &'static Map<u64, UsesMapOnDrop> {
    static MAP: OnceLock<Map<u64, UsesMapOnDrop>> = OnceLock::new();
    MAP.get_or_init(Map::new)
}

impl Drop for UsesMapOnDrop {
    fn drop(&mut self) {
        if self.reenter {
            let _ = map_of_reentrant_values()
                .load_or_store_with(999, || UsesMapOnDrop { reenter: false });
        }
    }
}

// A plain `store` puts the key in while `f` runs: `f`'s value is then unused and dropped, after
// the registry lock, so its `Drop` may call `load_or_store_with` itself.
#[test]
fn a_value_left_unused_is_dropped_outside_the_registry_lock() {
    within(|| {
        let m = map_of_reentrant_values();
        let (running, f_runs) = mpsc::channel();
        let (go_on, release) = mpsc::channel::<()>();
        let computer = thread::spawn(move || {
            let (_, loaded) = m.load_or_store_with(1, move || {
                running.send(()).unwrap();
                release.recv().unwrap();
                UsesMapOnDrop { reenter: true }
            });
            loaded
        });
        f_runs.recv().unwrap();
        m.store(1, UsesMapOnDrop { reenter: false });
        go_on.send(()).unwrap();
        assert!(join_within(computer), "the stored value was loaded");
        assert!(
            m.load(&999).is_some(),
            "the unused value's drop used the map"
        );
    });
}

/// A key whose `Eq` panics at the `EQ_TRAP`-th comparison with another key from when it is
/// set, for a map whose values use it on drop.
struct ArmedKey(u64);

static EQ_TRAP: AtomicU64 = AtomicU64::new(0);

impl PartialEq for ArmedKey {
    fn eq(&self, other: &Self) -> bool {
        let countdown = |left: u64| left.checked_sub(1);
        assert!(
            self.0 == other.0
                || EQ_TRAP.fetch_update(Ordering::SeqCst, Ordering::SeqCst, countdown) != Ok(1),
            "Eq trap"
        );
        self.0 == other.0
    }
}
impl Eq for ArmedKey {}
impl Hash for ArmedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// A value whose drop calls `load_or_store_with` on the one-chain map it lived in.
struct UsesArmedMapOnDrop {
    reenter: bool,
}

impl Clone for UsesArmedMapOnDrop {
    fn clone(&self) -> Self {
        UsesArmedMapOnDrop { reenter: false }
    }
}

fn one_chain_map_of_reentrant_values() -> &'static Map<ArmedKey, UsesArmedMapOnDrop, OneChain> {
    static MAP: OnceLock<Map<ArmedKey, UsesArmedMapOnDrop, OneChain>> = OnceLock::new();
    MAP.get_or_init(|| Map::with_hasher(OneChain))
}

impl Drop for UsesArmedMapOnDrop {
    fn drop(&mut self) {
        if self.reenter {
            let _ = one_chain_map_of_reentrant_values()
                .load_or_store_with(ArmedKey(999), || UsesArmedMapOnDrop { reenter: false });
        }
    }
}

// `f`'s value goes in under the registry lock, and the key's `Eq` panics against another key of
// its chain (in the lookup before the chain's lock, or in the one under it): the key and the
// value drop after the registry lock (the value's `Drop` calls `load_or_store_with`: it
// deadlocked, and every later caller with it), the key stays absent and the map is usable.
#[test]
fn a_value_whose_insert_panics_in_eq_is_dropped_outside_the_registry_lock() {
    quiet_panics("Eq trap", || {
        within(|| {
            let m = one_chain_map_of_reentrant_values();
            m.store(ArmedKey(1), UsesArmedMapOnDrop { reenter: false });
            for (key, trap) in [(2, 1), (3, 2)] {
                let computed = catch_unwind(AssertUnwindSafe(|| {
                    m.load_or_store_with(ArmedKey(key), || {
                        EQ_TRAP.store(trap, Ordering::SeqCst);
                        UsesArmedMapOnDrop { reenter: true }
                    })
                }));
                assert!(computed.is_err(), "the Eq panic reaches the caller");
                assert_eq!(EQ_TRAP.load(Ordering::SeqCst), 0, "the trap went off");
                assert!(m.load(&ArmedKey(key)).is_none(), "the key stays absent");
                assert!(
                    m.load_and_delete(&ArmedKey(999)).is_some(),
                    "the value's drop used the map"
                );
            }
            let (_, loaded) =
                m.load_or_store_with(ArmedKey(2), || UsesArmedMapOnDrop { reenter: false });
            assert!(!loaded);
            assert_eq!(m.len(), 2);
        });
    });
}

// Calling `load_or_store_with` (or a variant) from inside `f` for the same key would wait for
// itself: it panics, pointing at the inner call, and the key stays absent.
#[test]
fn a_call_from_inside_f_for_its_own_key_panics_at_the_caller() {
    within(|| {
        let m: Map<&str, u32> = Map::new();
        let line = line!() + 3;
        let (file, at, message) = panic_site(|| {
            m.load_or_store_with("k", || {
                let _ = m.try_load_or_store_with("k", || 2);
                1
            });
        });
        assert_eq!((file.as_str(), at), (file!(), line));
        assert!(message.contains("inside its own `f`"), "{message}");
        assert!(m.load(&"k").is_none());
        // Another key from inside `f` is fine.
        let (value, loaded) = m.load_or_store_with("a", || m.load_or_store_with("b", || 2).0);
        assert_eq!((value, loaded), (2, false));
        assert_eq!(m.load(&"b"), Some(2));
    });
}
