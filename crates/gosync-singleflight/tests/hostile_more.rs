//! Hostile cases for `singleflight::Group` beyond `tests/singleflight.rs`: user code in the key
//! (`Eq`) panicking on the leader's way out must not leave waiters asleep or the key stuck.

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use gosync_singleflight::Group;
use gosync_testkit::{join_within, wait_until, within};

/// A key whose `Eq` panics once `trap` is set (the hash ignores `trap`).
#[derive(Clone)]
struct TrapKey {
    id: u32,
    trap: Arc<AtomicBool>,
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
        let key = TrapKey { id: 1, trap: Arc::clone(&trap) };

        let leader = {
            let (group, key, trap) = (Arc::clone(&group), key.clone(), Arc::clone(&trap));
            thread::spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    group.call(key, || {
                        // Wait for the waiter to be counted, then arm the trap.
                        wait_until(|| waiting(&group) == 1);
                        trap.store(true, Ordering::SeqCst);
                        7
                    })
                }))
                .is_err()
            })
        };
        // Let the leader take the key first.
        wait_until(|| format!("{group:?}").contains("flights: 1"));
        let waiter = {
            let (group, key) = (Arc::clone(&group), key.clone());
            thread::spawn(move || catch_unwind(AssertUnwindSafe(|| group.call(key, || 99))))
        };
        let leader_panicked = join_within(leader);
        assert!(leader_panicked, "the leader's Eq panicked");
        // The waiter must get an outcome (a value or the panic), not sleep forever.
        let _outcome = join_within(waiter);
        // And the key is free again.
        trap.store(false, Ordering::SeqCst);
        assert_eq!(group.call(key, || 3), (3, false));
    });
}
