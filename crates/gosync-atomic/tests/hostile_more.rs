//! Hostile cases for `Value` beyond `tests/hostile.rs`.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use gosync_atomic::Value;
use gosync_testkit::{panic_message, within};

#[allow(dead_code)]
mod common;

use common::{Census, Counted};

struct PanicsOnDrop {
    _counted: Counted,
    panics: bool,
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.panics {
            panic!("drop of the current value panicked");
        }
    }
}

/// `Value`'s docs: "every stored value is dropped at the latest with the `Value`" and, for a
/// panicking drop, "Every other value of the `Value` is still dropped exactly once, at the
/// latest when the `Value` drops". When the *current* value's drop panics, `Value::drop`
/// unwinds before it takes the retire list, so the old values outlive the `Value`: they wait
/// for a later epoch collection (which, for a `T` that borrows, may run after the borrow has
/// ended). Old values are kept on the list here by an epoch pin held across the stores, as any
/// other thread's short `load` would.
#[test]
fn old_values_are_dropped_with_the_value_even_when_the_current_ones_drop_panics() {
    within(|| {
        let census = Arc::new(Census::default());
        let make = |id, panics| PanicsOnDrop {
            _counted: Counted::new(&census, id),
            panics,
        };
        let pin = crossbeam_epoch::pin(); // keeps the old values' deferred drops from running
        let value = Value::new(make(0, false));
        value.store(make(1, false));
        value.store(make(2, true));
        let caught = panic::catch_unwind(AssertUnwindSafe(|| drop(value))).unwrap_err();
        assert_eq!(
            panic_message(&*caught),
            "drop of the current value panicked"
        );
        let live = census.live();
        drop(pin);
        assert_eq!(
            live, 0,
            "old values outlived the Value whose drop returned (by panic)"
        );
    });
}
