//! Loom models of `errgroup::Group`: the first error racing a late `go` from a task (one error
//! comes back, once; the late task runs and is waited for; the context is cancelled), and a
//! panicking task racing a failing one (the panic is re-raised after both finished, the error
//! kept for the next wait).

#![cfg(gosync_loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use gosync_context::Context;
use gosync_errgroup::Group;
use gosync_park::sync::Arc;
use gosync_park::sync::{AtomicBool, Ordering};

#[test]
fn first_error_vs_late_go() {
    loom::model(|| {
        let (g, ctx) = Group::with_context(&Context::background());
        let g = Arc::new(g);
        let late_ran = Arc::new(AtomicBool::new(false));
        {
            let (inner, late_ran) = (g.clone(), late_ran.clone());
            g.go(move || {
                inner.go(move || {
                    late_ran.store(true, Ordering::Relaxed);
                    Err(2)
                });
                Err(1)
            });
        }
        let first = g.wait();
        assert!(first == Err(1) || first == Err(2), "{first:?}");
        assert!(late_ran.load(Ordering::Relaxed));
        assert!(ctx.is_done());
        assert_eq!(g.wait(), Ok(()));
    });
}

#[test]
fn a_panicking_task_vs_a_failing_one() {
    loom::model(|| {
        let g = Group::new();
        g.go(|| Err("failed"));
        g.go(|| panic!("exploded"));
        let caught = catch_unwind(AssertUnwindSafe(|| g.wait()));
        assert!(caught.is_err());
        assert_eq!(g.wait(), Err("failed"));
    });
}
