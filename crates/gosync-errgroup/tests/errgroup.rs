//! `errgroup::Group` and `scope` behaviour.
//!
//! Ported from x/sync's `errgroup_test.go` (behaviours, in our own code): `TestZeroGroup` (with
//! the error handed over once), `TestWithContext`, `TestCancelCause` (the context is cancelled
//! by the first error or by `wait`), `ExampleGroup_justErrors` and `ExampleGroup_parallel`,
//! `TestTryGo` and `TestGoLimit` (in `tests/limit.rs`). Then hostile cases: 64 tasks, every one
//! failing, panicking tasks, a late `go` from a task after the first error, the scoped form,
//! with every count checked exactly.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gosync_context::{Context, ContextError};
use gosync_errgroup::{scope, Group};
use gosync_testkit::{panic_message, scaled, short_panics_under_miri, within};

#[test]
fn zero_group_hands_each_first_error_over_once() {
    let cases: [&[Option<&str>]; 5] = [
        &[],
        &[None],
        &[Some("errgroup_test: 1")],
        &[Some("errgroup_test: 1"), None],
        &[Some("errgroup_test: 1"), None, Some("errgroup_test: 2")],
    ];
    for errors in cases {
        let g = Group::new();
        for &error in errors {
            g.go(move || error.map_or(Ok(()), Err));
            // Every earlier error was handed over by the previous wait.
            assert_eq!(g.wait(), error.map_or(Ok(()), Err), "{errors:?}");
        }
        assert_eq!(g.wait(), Ok(()));
    }
}

#[test]
fn with_context_is_cancelled_by_the_first_error_or_by_wait() {
    let cases: [(&[Option<&str>], Option<&str>); 4] = [
        (&[], None),
        (&[None], None),
        (&[Some("group_test: doomed")], Some("group_test: doomed")),
        (
            &[Some("group_test: doomed"), None],
            Some("group_test: doomed"),
        ),
    ];
    for (errors, want) in cases {
        let (g, ctx) = Group::with_context(&Context::background());
        for &error in errors {
            g.go(move || error.map_or(Ok(()), Err));
        }
        assert_eq!(g.wait(), want.map_or(Ok(()), Err), "{errors:?}");
        assert_eq!(ctx.err(), Some(ContextError::Canceled), "{errors:?}");
    }
}

#[test]
fn a_cancelled_parent_cancels_the_groups_context() {
    let (parent, cancel) = Context::background().with_cancel();
    let (g, ctx) = Group::<()>::with_context(&parent);
    cancel.cancel();
    assert!(ctx.is_done());
    assert_eq!(g.wait(), Ok(()));
}

#[test]
fn just_errors_like_a_wait_group() {
    let g = Group::new();
    let fetched = Arc::new(AtomicUsize::new(0));
    for url in [
        "http://www.golang.org/",
        "http://www.google.com/",
        "http://bad/",
    ] {
        let fetched = Arc::clone(&fetched);
        g.go(move || {
            fetched.fetch_add(1, Ordering::SeqCst);
            if url.contains("bad") {
                Err(format!("no such host: {url}"))
            } else {
                Ok(())
            }
        });
    }
    assert_eq!(g.wait(), Err(String::from("no such host: http://bad/")));
    assert_eq!(fetched.load(Ordering::SeqCst), 3);
}

#[test]
fn parallel_search_fills_every_slot() {
    let search = |kind: &str, query: &str| Ok::<_, String>(format!("{kind} result for {query:?}"));
    let mut results = vec![String::new(); 3];
    let outcome: Result<(), String> = scope(|g| {
        for (kind, slot) in ["web", "image", "video"]
            .into_iter()
            .zip(results.iter_mut())
        {
            g.go(move || {
                *slot = search(kind, "golang")?;
                Ok(())
            });
        }
    });
    assert_eq!(outcome, Ok(()));
    assert_eq!(
        results,
        [
            r#"web result for "golang""#,
            r#"image result for "golang""#,
            r#"video result for "golang""#
        ]
    );
}

#[test]
fn sixty_four_tasks_all_run_and_one_error_comes_back() {
    let tasks = scaled(64, 4);
    let (g, ctx) = Group::with_context(&Context::background());
    let ran = Arc::new(AtomicUsize::new(0));
    for task in 0..tasks {
        let ran = Arc::clone(&ran);
        g.go(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            if task % 3 == 0 {
                Err(task)
            } else {
                Ok(())
            }
        });
    }
    let error = within(move || g.wait()).unwrap_err();
    assert_eq!(error % 3, 0);
    assert_eq!(ran.load(Ordering::SeqCst), tasks);
    assert!(ctx.is_done());
}

#[test]
fn the_other_tasks_see_the_cancellation_of_the_first_error() {
    let tasks = scaled(64, 4);
    let (g, ctx) = Group::with_context(&Context::background());
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    for _ in 0..tasks {
        let (ctx, saw_cancel) = (ctx.clone(), Arc::clone(&saw_cancel));
        g.go(move || {
            if ctx.wait_for(gosync_testkit::LIMIT) {
                saw_cancel.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
    }
    g.go(|| Err("doomed"));
    assert_eq!(within(move || g.wait()), Err("doomed"));
    assert_eq!(saw_cancel.load(Ordering::SeqCst), tasks);
}

#[test]
fn a_late_go_after_the_first_error_still_runs_and_may_not_replace_it() {
    for _ in 0..scaled(100, 3) {
        let (g, ctx) = Group::with_context(&Context::background());
        let g = Arc::new(g);
        let late_ran = Arc::new(AtomicBool::new(false));
        {
            let (inner, late_ran, ctx) = (Arc::clone(&g), Arc::clone(&late_ran), ctx.clone());
            g.go(move || {
                inner.go(move || {
                    late_ran.store(true, Ordering::SeqCst);
                    Err("late")
                });
                assert!(!ctx.is_done() || ctx.err() == Some(ContextError::Canceled));
                Err("first")
            });
        }
        let first = within({
            let g = Arc::clone(&g);
            move || g.wait()
        });
        assert!(first == Err("first") || first == Err("late"), "{first:?}");
        assert!(late_ran.load(Ordering::SeqCst));
        assert_eq!(g.wait(), Ok(()));
        assert!(ctx.is_done());
    }
}

#[test]
fn a_panicking_task_cancels_and_is_re_raised_after_every_task_finished() {
    short_panics_under_miri();
    let (g, ctx) = Group::<&str>::with_context(&Context::background());
    let others_finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..scaled(8, 2) {
        let (ctx, others_finished) = (ctx.clone(), Arc::clone(&others_finished));
        g.go(move || {
            assert!(ctx.wait_for(gosync_testkit::LIMIT));
            others_finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    g.go(|| panic!("task exploded"));
    let g = Arc::new(g);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let g = Arc::clone(&g);
        within(move || g.wait())
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "task exploded");
    assert_eq!(others_finished.load(Ordering::SeqCst), scaled(8, 2));
    assert!(ctx.is_done());
    assert_eq!(g.wait(), Ok(())); // re-raised once
}

#[test]
fn a_panic_comes_first_and_the_error_waits_for_the_next_wait() {
    short_panics_under_miri();
    let g = Group::new();
    g.go(|| Err("failed"));
    g.go(|| panic!("exploded"));
    let caught = catch_unwind(AssertUnwindSafe(|| g.wait())).unwrap_err();
    assert_eq!(panic_message(&*caught), "exploded");
    assert_eq!(g.wait(), Err("failed"));
    assert_eq!(g.wait(), Ok(()));
}

/// An error whose drop panics when its number is 2.
#[derive(Debug)]
struct PanicsOnDrop(u32);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.0 == 2 && !std::thread::panicking() {
            panic!("dropping error {}", self.0);
        }
    }
}

/// Only the first error is kept; a later one is dropped, and a panic in that drop is a task
/// panic like any other: `wait` and `scope` raise it (it was lost: `wait` returned the first
/// error, `scope` lost both).
#[test]
fn a_panic_dropping_a_later_error_is_re_raised() {
    short_panics_under_miri();
    let (g, ctx) = Group::<PanicsOnDrop>::with_context(&Context::background());
    g.go(|| Err(PanicsOnDrop(1)));
    g.go(move || {
        assert!(
            ctx.wait_for(gosync_testkit::LIMIT),
            "the first error cancels"
        );
        Err(PanicsOnDrop(2))
    });
    let caught = catch_unwind(AssertUnwindSafe(|| g.wait())).unwrap_err();
    assert_eq!(panic_message(&*caught), "dropping error 2");
    assert_eq!(g.wait().map_err(|e| e.0), Err(1));

    let caught = catch_unwind(AssertUnwindSafe(|| {
        scope(|g| {
            g.go(|| Err(PanicsOnDrop(1)));
            // The first task has reported its error and left.
            gosync_testkit::wait_until(|| format!("{g:?}").contains("tasks: 0"));
            g.go(|| Err(PanicsOnDrop(2)));
        })
        .map_err(|e| e.0)
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "dropping error 2");
}

#[test]
fn wait_with_no_tasks_returns_at_once() {
    let g = Group::<()>::default();
    assert_eq!(g.wait(), Ok(()));
    assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: None, .. }");
}

#[test]
fn scope_returns_the_first_error_after_every_task() {
    let finished = AtomicUsize::new(0);
    let result = scope(|g| {
        for task in 0..scaled(16, 3) {
            let finished = &finished;
            g.go(move || {
                finished.fetch_add(1, Ordering::SeqCst);
                if task == 1 {
                    Err(task)
                } else {
                    Ok(())
                }
            });
        }
        "body"
    });
    assert_eq!(result, Err(1));
    assert_eq!(finished.load(Ordering::SeqCst), scaled(16, 3));
}

#[test]
fn scope_re_raises_a_task_panic_after_every_task() {
    short_panics_under_miri();
    let finished = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        scope(|g| {
            g.go(|| panic!("scoped task exploded"));
            for _ in 0..scaled(4, 2) {
                g.go(|| {
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                });
            }
        })
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "scoped task exploded");
    assert_eq!(finished.load(Ordering::SeqCst), scaled(4, 2));
}

#[test]
fn scope_re_raises_the_bodys_own_panic_after_its_tasks() {
    short_panics_under_miri();
    let finished = AtomicBool::new(false);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        scope(|g| {
            g.go(|| {
                finished.store(true, Ordering::SeqCst);
                Err::<(), _>("ignored")
            });
            panic!("body exploded")
        })
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "body exploded");
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn scoped_tasks_borrow_a_shared_lock() {
    let total = Mutex::new(0);
    let result: Result<(), ()> = scope(|g| {
        for _ in 0..4 {
            g.go(|| {
                *total.lock().unwrap() += 1;
                Ok(())
            });
        }
        assert!(format!("{g:?}").starts_with("ScopedGroup { tasks: "));
    });
    assert_eq!(result, Ok(()));
    assert_eq!(*total.lock().unwrap(), 4);
}
