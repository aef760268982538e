//! The variants of `go` and `wait` that give up (gosync's convention): a zero timeout or past
//! deadline still succeeds when there is room or nothing runs; a context that is already done
//! fails at once even then; giving up mid-wait (by timeout, or a cancellation from another
//! thread) leaves nothing behind: the task comes back unrun, no slot or permit is held, the
//! first error stays for the next wait and the group's context is not cancelled. Every count
//! is checked exactly, and every wait is bounded by gosync-testkit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_errgroup::{scope, Group};
use gosync_testkit::{
    join_within, panic_message, panic_site, scaled, short_panics_under_miri, wait_until, within,
    LIMIT,
};

/// A task that returns `result` once released, and the sender that releases it.
fn held_task(
    result: Result<(), &'static str>,
) -> (
    mpsc::Sender<()>,
    impl FnOnce() -> Result<(), &'static str> + Send + 'static,
) {
    let (release, released) = mpsc::channel::<()>();
    (release, move || {
        released.recv_timeout(LIMIT).expect("released in time");
        result
    })
}

/// A task that counts itself in `runs`.
fn counted(runs: &Arc<AtomicUsize>) -> impl FnOnce() -> Result<(), &'static str> + Send + 'static {
    let runs = Arc::clone(runs);
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn cancelled() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

#[test]
fn go_variants_start_at_once_when_there_is_room() {
    let g = Group::new();
    let runs = Arc::new(AtomicUsize::new(0));
    assert!(g.try_go_for(Duration::ZERO, counted(&runs)).is_ok());
    assert!(g
        .try_go_until(Instant::now() - Duration::from_millis(1), counted(&runs))
        .is_ok());
    assert!(g.go_ctx(&Context::background(), counted(&runs)).is_ok());
    assert_eq!(within_wait(&g), Ok(()));
    g.set_limit(Some(1));
    assert!(g.try_go_for(Duration::ZERO, counted(&runs)).is_ok());
    assert_eq!(within_wait(&g), Ok(()));
    assert!(g.try_go_until(Instant::now(), counted(&runs)).is_ok());
    assert_eq!(within_wait(&g), Ok(()));
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

/// `g.wait()`, failing the test if it hangs.
fn within_wait(g: &Group<&'static str>) -> Result<(), &'static str> {
    g.wait_for(LIMIT).expect("every task finished in time")
}

#[test]
fn go_variants_give_the_task_back_at_once_when_full() {
    let g = Group::new();
    g.set_limit(Some(1));
    let (release, task) = held_task(Ok(()));
    g.go(task);
    let runs = Arc::new(AtomicUsize::new(0));
    let back = g.try_go_for(Duration::ZERO, counted(&runs)).unwrap_err();
    let back_too = g.try_go_until(Instant::now(), counted(&runs)).unwrap_err();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran");
    assert_eq!(format!("{g:?}"), "Group { tasks: 1, limit: Some(1), .. }");
    release.send(()).unwrap();
    assert_eq!(within_wait(&g), Ok(()));
    // The tasks given back are whole: they run now.
    back().unwrap();
    assert!(g.try_go_for(LIMIT, back_too).is_ok());
    assert_eq!(within_wait(&g), Ok(()));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    g.set_limit(Some(0));
    // A limit of 0 gives up at once: waiting out the hour would fail the bound.
    let task = counted(&runs);
    let back = within(move || g.try_go_for(Duration::from_secs(3600), task).is_err());
    assert!(back, "never room");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn go_ctx_with_a_done_context_fails_at_once_even_with_room() {
    let g = Group::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let (task, err) = g.go_ctx(&cancelled(), counted(&runs)).unwrap_err();
    assert_eq!(err, ContextError::Canceled);
    let (expired, _cancel) = Context::background().with_deadline(Instant::now());
    let (_, err) = g.go_ctx(&expired, counted(&runs)).unwrap_err();
    assert_eq!(err, ContextError::DeadlineExceeded);
    g.set_limit(Some(1));
    let (_, err) = g.go_ctx(&cancelled(), counted(&runs)).unwrap_err();
    assert_eq!(err, ContextError::Canceled);
    assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: Some(1), .. }");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    task().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn waiting_go_variants_start_when_a_slot_frees() {
    within(|| {
        let g = Arc::new(Group::new());
        g.set_limit(Some(1));
        let runs = Arc::new(AtomicUsize::new(0));
        for kind in 0..3 {
            let (release, task) = held_task(Ok(()));
            g.go(task);
            let starter = {
                let (g, task) = (Arc::clone(&g), counted(&runs));
                thread::spawn(move || match kind {
                    0 => g.try_go_for(LIMIT, task).is_ok(),
                    1 => g.try_go_until(Instant::now() + LIMIT, task).is_ok(),
                    _ => g.go_ctx(&Context::background(), task).is_ok(),
                })
            };
            release.send(()).unwrap();
            assert!(join_within(starter), "variant {kind} started its task");
            assert_eq!(g.wait(), Ok(()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn go_ctx_cancelled_mid_wait_gives_the_task_back_and_holds_no_slot() {
    within(|| {
        let g = Arc::new(Group::new());
        g.set_limit(Some(1));
        let (release, task) = held_task(Ok(()));
        g.go(task);
        let runs = Arc::new(AtomicUsize::new(0));
        let (ctx, cancel) = Context::background().with_cancel();
        let starter = {
            let (g, task) = (Arc::clone(&g), counted(&runs));
            thread::spawn(move || g.go_ctx(&ctx, task).map_err(|(task, err)| (task(), err)))
        };
        wait_until(|| g.queued_starts() == 1); // asleep, not on the early return
        cancel.cancel();
        // The task came back unrun, and the starter ran it itself.
        assert_eq!(join_within(starter), Err((Ok(()), ContextError::Canceled)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        release.send(()).unwrap();
        assert_eq!(g.wait(), Ok(()));
        // The one slot is free: nothing of the cancelled start holds it.
        assert!(g.try_go(counted(&runs)));
        assert_eq!(g.wait(), Ok(()));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_timed_go_racing_the_slot_freeing_runs_its_task_exactly_once() {
    within(|| {
        let g = Arc::new(Group::new());
        g.set_limit(Some(1));
        let runs = Arc::new(AtomicUsize::new(0));
        let rounds = scaled(200, 10);
        for round in 0..rounds {
            let (release, task) = held_task(Ok(()));
            g.go(task);
            let starter = {
                let (g, task) = (Arc::clone(&g), counted(&runs));
                thread::spawn(move || {
                    let timeout = Duration::from_micros(10 + round as u64 % 40);
                    // Given back: run it here, so that every round runs it once either way.
                    g.try_go_for(timeout, task).or_else(|task| task())
                })
            };
            release.send(()).unwrap();
            assert_eq!(join_within(starter), Ok(()));
            assert_eq!(g.wait(), Ok(()));
        }
        assert_eq!(runs.load(Ordering::SeqCst), rounds);
        assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: Some(1), .. }");
    });
}

#[test]
fn try_wait_and_timed_waits_give_up_leaving_everything_as_it_was() {
    let (g, ctx) = Group::with_context(&Context::background());
    let (release, task) = held_task(Err("second"));
    g.go(|| Err("first"));
    g.go(task);
    assert_eq!(g.try_wait(), None);
    assert_eq!(g.wait_for(Duration::ZERO), None);
    assert_eq!(g.wait_for(Duration::from_millis(2)), None);
    assert_eq!(g.wait_until(Instant::now()), None);
    assert_eq!(
        g.wait_until(Instant::now() + Duration::from_millis(2)),
        None
    );
    // The first error cancels the context, as always (the task may still be on its way to
    // it); giving up handed nothing over.
    wait_until(|| ctx.is_done());
    release.send(()).unwrap();
    assert_eq!(g.wait_until(Instant::now() + LIMIT), Some(Err("first")));
    assert_eq!(g.try_wait(), Some(Ok(())), "handed over once");
    assert_eq!(g.wait_for(Duration::ZERO), Some(Ok(())));
}

#[test]
fn a_timed_wait_that_gives_up_does_not_cancel_the_groups_context() {
    let (g, ctx) = Group::<&str>::with_context(&Context::background());
    let (release, task) = held_task(Ok(()));
    g.go(task);
    assert_eq!(g.wait_for(Duration::from_millis(1)), None);
    let (ctx_done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(g.wait_ctx(&ctx_done), Err(ContextError::Canceled));
    assert!(
        !ctx.is_done(),
        "only a wait that saw every task finish cancels it"
    );
    release.send(()).unwrap();
    let (bounded, _cancel) = Context::background().with_timeout(LIMIT);
    assert_eq!(g.wait_ctx(&bounded), Ok(Ok(())));
    assert!(ctx.is_done());
}

#[test]
fn wait_ctx_with_a_done_context_fails_at_once_even_with_no_task() {
    let g = Group::<&str>::new();
    assert_eq!(g.wait_ctx(&cancelled()), Err(ContextError::Canceled));
    g.go(|| Err("kept"));
    let (expired, _cancel) = Context::background().with_deadline(Instant::now());
    assert_eq!(g.wait_ctx(&expired), Err(ContextError::DeadlineExceeded));
    assert_eq!(
        within_wait(&g),
        Err("kept"),
        "the error waited for this wait"
    );
}

#[test]
fn wait_ctx_cancelled_mid_wait_from_another_thread() {
    within(|| {
        let g = Arc::new(Group::new());
        let (release, task) = held_task(Err("after"));
        g.go(task);
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let g = Arc::clone(&g);
            thread::spawn(move || g.wait_ctx(&ctx))
        };
        wait_until(|| g.has_waiters()); // asleep, not on the early return
        cancel.cancel();
        assert_eq!(join_within(waiter), Err(ContextError::Canceled));
        release.send(()).unwrap();
        assert_eq!(g.wait(), Err("after"));
    });
}

#[test]
fn timed_waits_are_woken_by_the_last_task() {
    within(|| {
        let g = Arc::new(Group::new());
        for kind in 0..3 {
            let (release, task) = held_task(Err("done"));
            g.go(task);
            let waiter = {
                let g = Arc::clone(&g);
                thread::spawn(move || match kind {
                    0 => g.wait_for(LIMIT),
                    1 => g.wait_until(Instant::now() + LIMIT),
                    _ => g.wait_ctx(&Context::background()).ok(),
                })
            };
            release.send(()).unwrap();
            assert_eq!(join_within(waiter), Some(Err("done")), "variant {kind}");
        }
    });
}

#[test]
fn a_timed_wait_re_raises_a_task_panic_once_every_task_finished() {
    short_panics_under_miri();
    let g = Group::<&str>::new();
    g.go(|| panic!("task failed"));
    g.go(|| Err("also"));
    let caught = catch_unwind(AssertUnwindSafe(|| g.wait_for(LIMIT))).unwrap_err();
    assert_eq!(panic_message(&*caught), "task failed");
    assert_eq!(g.try_wait(), Some(Err("also")));
}

#[test]
fn scoped_go_variants() {
    let runs = AtomicUsize::new(0);
    let count = || {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    };
    let result: Result<(), &str> = scope(|g| {
        assert!(g.try_go_for(Duration::ZERO, count).is_ok());
        assert!(g.try_go_until(Instant::now(), count).is_ok());
        assert!(g.go_ctx(&Context::background(), count).is_ok());
        let (_, err) = g.go_ctx(&cancelled(), count).unwrap_err();
        assert_eq!(err, ContextError::Canceled);
    });
    assert_eq!(result, Ok(()));
    let result: Result<(), &str> = scope(|g| {
        g.set_limit(Some(0));
        assert!(g.try_go_for(Duration::from_millis(1), count).is_err());
        assert!(g.try_go_until(Instant::now(), count).is_err());
        let (_, err) = g.go_ctx(&cancelled(), count).unwrap_err();
        assert_eq!(err, ContextError::Canceled, "a done context comes first");
    });
    assert_eq!(result, Ok(()));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[test]
fn go_ctx_with_a_limit_of_zero_panics_at_the_caller_as_go_does() {
    let g = Group::<()>::new();
    g.set_limit(Some(0));
    let (ctx, _cancel) = Context::background().with_cancel();
    let line = line!() + 1;
    let (file, at, message) = panic_site(|| assert!(g.go_ctx(&ctx, || Ok(())).is_ok()));
    assert_eq!((file.as_str(), at), (file!(), line));
    assert_eq!(
        message,
        "errgroup: go with a limit of 0 can never start a task"
    );
    let line = line!() + 1;
    let (file, at, _) = panic_site(|| g.go(|| Ok(())));
    assert_eq!((file.as_str(), at), (file!(), line));
    let line = line!() + 1;
    let (file, at, _) = panic_site(|| {
        let _ = scope(|g| {
            g.set_limit(Some(0));
            let _ = g.go_ctx(&ctx, || Ok::<(), ()>(()));
        });
    });
    assert_eq!((file.as_str(), at), (file!(), line + 3));
    assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: Some(0), .. }");
}
