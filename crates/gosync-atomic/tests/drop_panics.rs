//! A `Value` whose `T::drop` panics. An old value is dropped by a later `load` or store of its
//! `Value` once crossbeam-epoch has seen it unreachable, or by the `Value`'s drop, so the panic
//! surfaces in one of those calls (a binary of its own, as the epoch's timing is process-wide).

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use gosync_atomic::Value;
use gosync_testkit::{panic_message, scaled};

mod common;

use common::{Census, Counted};

/// A value whose drop panics when its id is the chosen one.
struct PanicsOnDrop {
    counted: Counted,
    panics: bool,
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.panics {
            panic!("drop of value {} panicked", self.counted.id);
        }
    }
}

#[test]
fn a_value_whose_drop_panics_loses_no_other_value() {
    let census = Arc::new(Census::default());
    let make = |id| PanicsOnDrop {
        counted: Counted::new(&census, id),
        panics: id == 3,
    };
    let mut panics = Vec::new();
    let mut catch = |f: &mut dyn FnMut()| {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            panics.push(panic_message(&*payload));
        }
    };
    let value = Value::new(make(0));
    for id in 1..=scaled(40, 20) {
        // The old value's drop, and so the panic, may come in any later store (a collection
        // asked for here only lets the epoch see it unreachable).
        catch(&mut || value.store(make(id)));
        catch(&mut || crossbeam_epoch::pin().flush());
    }
    let mut value = Some(value);
    catch(&mut || drop(value.take()));
    assert_eq!(
        panics,
        ["drop of value 3 panicked"],
        "the one panic surfaces once, on the thread that dropped the value"
    );
    assert_eq!(
        census.live(),
        0,
        "every other value is dropped exactly once"
    );
}
