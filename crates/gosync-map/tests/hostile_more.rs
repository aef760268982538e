//! More hostile tests of `Map`: panicking drops of a caller's own arguments, and exact counts of
//! the read-modify-write methods (`update`, `compare_and_swap`, `compare_and_delete`) racing
//! resizes, `range` and `clear`. Every wait is bounded and every drop counted.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use gosync_map::Map;
use gosync_testkit::{join_within, within};

#[allow(dead_code)]
mod common;

use common::Counted;

/// A key whose drop panics when `armed`; hashed and compared by `id` alone.
struct Bomb {
    id: u64,
    armed: bool,
}

impl Hash for Bomb {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialEq for Bomb {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Bomb {}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed && !thread::panicking() {
            panic!("key drop {}", self.id);
        }
    }
}

/// `load_or_store` of a present key gives the caller's key and value back unused and drops
/// them; when that drop panics, the clone of the stored value it was about to return must not
/// leak (rustc does not drop a built return value when a later local's drop panics,
/// rust-lang/rust#47949, as `load_or_store_with` already knows).
#[test]
fn load_or_store_leaks_its_clone_when_the_unused_key_drop_panics() {
    within(|| {
        let live = Arc::new(AtomicUsize::new(0));
        let m: Map<Bomb, Counted> = Map::new();
        m.store(Bomb { id: 1, armed: false }, Counted::new(1, &live));
        assert_eq!(live.load(Ordering::SeqCst), 1);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            m.load_or_store(Bomb { id: 1, armed: true }, Counted::new(2, &live))
        }));
        assert!(caught.is_err(), "the unused key's drop panics");
        // The map still holds its one value; nothing else may be alive.
        assert_eq!(m.len(), 1);
        drop(m);
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "a clone built by load_or_store leaked"
        );
    });
}
