//! Hostile cases for `singleflight::Group` beyond `tests/singleflight.rs`: user code in the key
//! (`Eq`) panicking on the leader's way out must not leave waiters asleep or the key stuck.

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;

use gosync_singleflight::Group;
use gosync_testkit::{join_within, wait_until, within};

/// A key whose `Eq` panics while `trap` is set (the hash ignores it), and whose drop does what
/// `on_drop` says.
#[derive(Clone)]
struct TrapKey {
    id: u32,
    trap: Arc<AtomicBool>,
    on_drop: OnDrop,
}

/// What a [`TrapKey`]'s drop does.
#[derive(Clone)]
enum OnDrop {
    Nothing,
    /// Panics once, if the flag is set (and clears it).
    Panic(Arc<AtomicBool>),
    /// Takes the group's lock (through its `Debug`), if the group is still alive: as a handle
    /// whose drop hook updates a cache might.
    UseGroup(Weak<Group<TrapKey, u32>>),
}

impl TrapKey {
    fn new(trap: &Arc<AtomicBool>, on_drop: OnDrop) -> Self {
        Self {
            id: 1,
            trap: Arc::clone(trap),
            on_drop,
        }
    }
}

impl PartialEq for TrapKey {
    fn eq(&self, other: &Self) -> bool {
        assert!(!self.trap.load(Ordering::SeqCst), "Eq trap");
        self.id == other.id
    }
}
impl Eq for TrapKey {}
impl Hash for TrapKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
impl Drop for TrapKey {
    fn drop(&mut self) {
        match &self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Panic(armed) => {
                if armed.swap(false, Ordering::SeqCst) {
                    panic!("Drop trap");
                }
            }
            OnDrop::UseGroup(group) => {
                if let Some(group) = group.upgrade() {
                    let _ = format!("{group:?}");
                }
            }
        }
    }
}

fn waiting<K, V>(group: &Group<K, V>) -> usize {
    let shown = format!("{group:?}");
    shown
        .split("waiting: ")
        .nth(1)
        .expect("Debug shows waiting")
        .trim_end_matches(" }")
        .parse()
        .expect("a count")
}

/// The leader's `f` returns, then the key's `Eq` panics while `lead` looks the flight up to
/// remove it: `land` never runs, so the waiter (already counted) is never woken. Go has no
/// user `Eq`, but this crate promises "a panic ... reaches every caller" and documents no
/// exception for the key's own traits.
#[test]
fn a_panicking_key_eq_on_the_leaders_way_out_still_wakes_the_waiter() {
    within(|| {
        let group: Arc<Group<TrapKey, u32>> = Arc::new(Group::new());
        let trap = Arc::new(AtomicBool::new(false));
        let key = TrapKey::new(&trap, OnDrop::Nothing);
        let armed = Arc::clone(&trap);
        let waiter = trip_the_leader_on_its_way_out(&group, &key, move || {
            armed.store(true, Ordering::SeqCst);
        });
        // The waiter got an outcome (a value or the panic), not sleep forever; and the key is
        // free again.
        drop(waiter);
        trap.store(false, Ordering::SeqCst);
        assert_eq!(group.call(key, || 3), (3, false));
    });
}

/// Starts a flight for `key` whose `f` waits until a second caller waits for it, then calls
/// `arm` (which sets the key's traps) and returns 7; checks that the leader panicked on its
/// way out, and returns the second caller's panic message (`None`: it got a value), both
/// within the test's time limit.
fn trip_the_leader_on_its_way_out<K>(
    group: &Arc<Group<K, u32>>,
    key: &K,
    arm: impl FnOnce() + Send + 'static,
) -> Option<String>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let leader = {
        let (group, key) = (Arc::clone(group), key.clone());
        thread::spawn(move || {
            catch_unwind(AssertUnwindSafe(|| {
                group.call(key, || {
                    wait_until(|| waiting(&group) == 1);
                    arm();
                    7
                })
            }))
            .is_err()
        })
    };
    // Let the leader take the key first.
    wait_until(|| format!("{group:?}").contains("flights: 1"));
    let waiter = {
        let (group, key) = (Arc::clone(group), key.clone());
        thread::spawn(move || {
            let caught = catch_unwind(AssertUnwindSafe(|| group.call(key, || 99)));
            caught.err().map(|payload| panic_message(&*payload))
        })
    };
    assert!(join_within(leader), "the leader's Eq panicked");
    join_within(waiter)
}

/// A value that counts its live copies.
#[derive(Debug)]
struct Counted {
    flight: usize,
    live: Arc<std::sync::atomic::AtomicIsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.live.fetch_add(1, Ordering::SeqCst);
        Self {
            flight: self.flight,
            live: Arc::clone(&self.live),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Rounds of one flight with untimed, timed (0–200 µs) and cancelled waiters landing at once:
/// every untimed waiter gets the flight's value, a timed or cancelled one gets it or nothing
/// (or the value of a flight of its own, if it came after the landing), `f` runs once per
/// flight, and every copy made is dropped exactly once.
#[test]
fn mixed_waiters_landing_at_once_count_every_copy_exactly() {
    use gosync_context::Context;
    use std::sync::atomic::{AtomicIsize, AtomicUsize};
    use std::time::Duration;

    within(|| {
        let live = Arc::new(AtomicIsize::new(0));
        let flights = Arc::new(AtomicUsize::new(0));
        for round in 0..gosync_testkit::scaled(200, 5) {
            let group: Arc<Group<u8, Counted>> = Arc::new(Group::new());
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let make = {
                let (live, flights) = (Arc::clone(&live), Arc::clone(&flights));
                move || {
                    live.fetch_add(1, Ordering::SeqCst);
                    Counted {
                        flight: flights.fetch_add(1, Ordering::SeqCst),
                        live: Arc::clone(&live),
                    }
                }
            };
            let leader = {
                let (group, make) = (Arc::clone(&group), make.clone());
                thread::spawn(move || {
                    let (v, shared) = group.call(0, || {
                        release_rx.recv().unwrap();
                        make()
                    });
                    (v.flight, shared)
                })
            };
            wait_until(|| format!("{group:?}").contains("flights: 1"));
            let lead_flight = flights.load(Ordering::SeqCst); // the leader's `f` has not made it yet
            let (ctx, cancel) = Context::background().with_cancel();
            let mut untimed = Vec::new();
            let mut others = Vec::new();
            for i in [0, 3, 1, 2, 4, 5] {
                if i == 1 {
                    wait_until(|| waiting(&group) == 2); // both untimed waiters are counted
                }
                let (group, make, ctx) = (Arc::clone(&group), make.clone(), ctx.clone());
                let handle = thread::spawn(move || -> Option<(usize, bool)> {
                    match i % 3 {
                        0 => Some(group.call(0, &make)).map(|(v, s)| (v.flight, s)),
                        1 => group
                            .try_call_for(0, Duration::from_micros((round % 200) as u64), &make)
                            .map(|(v, s)| (v.flight, s)),
                        _ => group
                            .call_ctx(&ctx, 0, &make)
                            .ok()
                            .map(|(v, s)| (v.flight, s)),
                    }
                });
                if i % 3 == 0 {
                    untimed.push(handle)
                } else {
                    others.push(handle)
                }
            }
            release_tx.send(()).unwrap();
            cancel.cancel();
            let (leader_flight, leader_shared) = join_within(leader);
            assert_eq!(leader_flight, lead_flight);
            for handle in untimed {
                assert_eq!(join_within(handle), Some((lead_flight, true)));
            }
            assert!(leader_shared);
            for handle in others {
                if let Some((flight, shared)) = join_within(handle) {
                    assert!(shared || flight != lead_flight, "{flight} {shared}");
                }
            }
            drop(group);
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "round {round}: a copy leaked or dropped twice"
            );
        }
    });
}

/// The group once dropped its stored key inside `HashMap::remove`, under its map lock, and a
/// key whose `Drop` uses the group deadlocked on that lock (gosync-map fixed the same for
/// its keys and values in 733de01: "drops a key and value left unused after that lock (their
/// Drop may use the map)").
#[test]
fn a_key_whose_drop_uses_the_group_does_not_deadlock() {
    within(|| {
        let group: Arc<Group<TrapKey, u32>> = Arc::new(Group::new());
        let never = Arc::new(AtomicBool::new(false));
        let key = TrapKey::new(&never, OnDrop::UseGroup(Arc::downgrade(&group)));
        assert_eq!(group.call(key.clone(), || 5), (5, false));
        // And `forget` of a flight under way drops the stored key under the lock as well.
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let leader = {
            let (group, key) = (Arc::clone(&group), key.clone());
            thread::spawn(move || {
                group.call(key, || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    6
                })
            })
        };
        started.recv().unwrap();
        // A waiter's own key drops after its wait, outside the lock.
        let waiter = {
            let (group, key) = (Arc::clone(&group), key.clone());
            thread::spawn(move || group.call(key, || 7))
        };
        wait_until(|| waiting(&group) == 1);
        group.forget(&key);
        release.send(()).unwrap();
        assert_eq!(join_within(leader), (6, true));
        assert_eq!(join_within(waiter), (6, true));
    });
}

// A call from inside `f` for the same key would wait for itself: it panics at the inner call,
// and the key is free again. After `forget`, the same call starts a new flight instead.
#[test]
fn a_call_from_inside_f_for_its_own_key_panics_at_the_caller() {
    gosync_testkit::within(|| {
        let group: Group<&str, u32> = Group::new();
        let line = line!() + 3;
        let (file, at, message) = gosync_testkit::panic_site(|| {
            group.call("k", || {
                let _ = group.try_call_for("k", std::time::Duration::ZERO, || 2);
                1
            });
        });
        assert_eq!((file.as_str(), at), (file!(), line));
        assert!(message.contains("inside its own `f`"), "{message}");
        assert_eq!(group.call("k", || 3), (3, false), "the key is free again");
        let outer = group.call("k", || {
            group.forget(&"k");
            group.call("k", || 4).0 + 1
        });
        assert_eq!(outer, (5, false));
    });
}

/// The key's `Eq` panics as the leader looks its flight up to remove it, so the flight is taken
/// out by pointer instead; the stored key's `Drop` then panics there too. The waiter must still
/// get an outcome, and the key be free again.
#[test]
fn a_key_whose_eq_and_then_drop_panic_on_the_leaders_way_out_still_wakes_the_waiter() {
    gosync_testkit::quiet_panics("trap", || {
        within(|| {
            let group: Arc<Group<TrapKey, u32>> = Arc::new(Group::new());
            let (trap, drop_trap) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let key = TrapKey::new(&trap, OnDrop::Panic(Arc::clone(&drop_trap)));
            let armed = (Arc::clone(&trap), Arc::clone(&drop_trap));
            let message = trip_the_leader_on_its_way_out(&group, &key, move || {
                armed.0.store(true, Ordering::SeqCst);
                armed.1.store(true, Ordering::SeqCst);
            })
            .expect("the waiter is handed the leader's panic");
            assert!(
                message.contains("Eq trap"),
                "the first panic goes on, not {message:?}"
            );
            assert!(
                !drop_trap.load(Ordering::SeqCst),
                "the stored key was dropped"
            );
            trap.store(false, Ordering::SeqCst);
            assert_eq!(group.call(key, || 3), (3, false));
        });
    });
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// The key's `Eq` panics as the leader looks its flight up to remove it, so the flight is taken
/// out by pointer; the stored key's `Drop` then takes the group's lock. It must not run under
/// that lock (a deadlock, with the waiter asleep for good).
#[test]
fn a_key_whose_eq_panics_and_whose_drop_uses_the_group_does_not_deadlock() {
    gosync_testkit::quiet_panics("Eq trap", || {
        within(|| {
            let group: Arc<Group<TrapKey, u32>> = Arc::new(Group::new());
            let trap = Arc::new(AtomicBool::new(false));
            let key = TrapKey::new(&trap, OnDrop::UseGroup(Arc::downgrade(&group)));
            let armed = Arc::clone(&trap);
            let message = trip_the_leader_on_its_way_out(&group, &key, move || {
                armed.store(true, Ordering::SeqCst);
            });
            assert!(message.is_some(), "the waiter is handed the leader's panic");
            trap.store(false, Ordering::SeqCst);
            assert_eq!(group.call(key, || 3), (3, false));
        });
    });
}

/// A key that hashes only its `bucket`, whose `Eq` panics at the `panic_at`-th call (counted
/// over every key sharing `eq_calls`), and whose drop takes the group's lock.
#[derive(Clone)]
struct CountdownKey {
    id: u32,
    bucket: u32,
    eq_calls: Arc<std::sync::atomic::AtomicUsize>,
    panic_at: usize,
    group: Weak<Group<CountdownKey, u32>>,
}

impl PartialEq for CountdownKey {
    fn eq(&self, other: &Self) -> bool {
        let call = self.eq_calls.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(call != self.panic_at, "Eq trap");
        self.id == other.id
    }
}
impl Eq for CountdownKey {}
impl Hash for CountdownKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bucket.hash(state);
    }
}
impl Drop for CountdownKey {
    fn drop(&mut self) {
        if let Some(group) = self.group.upgrade() {
            let _ = format!("{group:?}");
        }
    }
}

/// A new flight's key goes into the group's map, whose insert compares it with the flight
/// under way for a key of the same hash: that `Eq` panics (the lookup's did not). The new key,
/// whose drop takes the group's lock, must drop after that lock (it deadlocked), and the group
/// must stay usable: the flight under way lands, and the key can be called again.
#[test]
fn a_key_whose_eq_panics_in_the_insert_and_whose_drop_uses_the_group_does_not_deadlock() {
    gosync_testkit::quiet_panics("Eq trap", || {
        within(|| {
            let group: Arc<Group<CountdownKey, u32>> = Arc::new(Group::new());
            let eq_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let key = |id, panic_at| CountdownKey {
                id,
                bucket: 0,
                eq_calls: Arc::clone(&eq_calls),
                panic_at,
                group: Arc::downgrade(&group),
            };
            let release = Arc::new(AtomicBool::new(false));
            let leader = {
                let (group, first, release) = (Arc::clone(&group), key(1, 0), Arc::clone(&release));
                thread::spawn(move || {
                    group.call(first, || {
                        wait_until(|| release.load(Ordering::SeqCst));
                        1
                    })
                })
            };
            wait_until(|| format!("{group:?}").contains("flights: 1"));
            // The lookup's `Eq` is call 1, the insert's call 2.
            let second = catch_unwind(AssertUnwindSafe(|| group.call(key(2, 2), || 2)));
            assert!(second.is_err(), "the insert's Eq panicked");
            assert!(
                format!("{group:?}").contains("flights: 1"),
                "only the first flight"
            );
            release.store(true, Ordering::SeqCst);
            assert_eq!(join_within(leader), (1, false));
            assert_eq!(group.call(key(2, 0), || 3), (3, false));
        });
    });
}
