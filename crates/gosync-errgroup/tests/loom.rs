//! Loom models of `errgroup::Group`: the first error racing a late `go` from a task (one error
//! comes back, once; the late task runs and is waited for; the context is cancelled), a
//! panicking task racing a failing one (the panic is re-raised after both finished, the error
//! kept for the next wait), and a limit of one handing its slot from task to task.

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

#[test]
fn a_limit_of_one_hands_the_slot_to_the_next_go() {
    loom::model(|| {
        let g = Group::<()>::new();
        g.set_limit(Some(1));
        let running = Arc::new(AtomicBool::new(false));
        for _ in 0..2 {
            let running = running.clone();
            // The second `go` waits for the first task's permit.
            g.go(move || {
                assert!(!running.swap(true, Ordering::Relaxed), "two tasks at once");
                running.store(false, Ordering::Relaxed);
                Ok(())
            });
        }
        assert_eq!(g.wait(), Ok(()));
        assert!(g.try_go(|| Ok(())));
        assert_eq!(g.wait(), Ok(()));
    });
}
