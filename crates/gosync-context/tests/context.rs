//! The public behaviour of `Context`, `Canceler` and `ContextError`.
//!
//! Behaviours ported from Go's `context/context_test.go` (in our own code): the background
//! context is never done and has no deadline (`TestBackground`); cancelling a parent finishes
//! its children and grandchildren, and a child's cancel leaves its parent and siblings alone
//! (`TestWithCancel`, `testParentFinishesChild`, `testChildFinishesFirst`); a child of a done
//! parent is done at once (`TestCanceledParent`); deadlines and timeouts end a context with
//! `DeadlineExceeded`, a child's deadline is the earlier of its own and its parent's
//! (`TestDeadline`, `TestTimeout`, `TestDeadlineExceededSupportsTimeout`); the error texts;
//! many simultaneous cancels and waiters (`TestSimultaneousCancels`, `TestInterlockedCancels`);
//! cancel racing child creation (`TestWithCancelCanceledParent`, `TestCancelRemoves` in spirit).
//! Plus the park-layer contract: a thread parked with a context as its cancellation source wakes
//! when the context is cancelled or its deadline passes.
//!
//! No test sleeps to synchronise; every wait that could hang is bounded by `join_within` (from
//! `gosync-testkit`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Canceler, Context, ContextError};
use gosync_park::{park, Cancellation, ParkOptions, ParkResult};
use gosync_testkit::{join_within, scaled, LIMIT};

/// How many threads the many-waiter tests start.
const THREADS: usize = scaled(16, 3);

#[test]
fn background_is_never_done() {
    let ctx = Context::background();
    assert!(!ctx.is_done());
    assert_eq!(ctx.err(), None);
    assert_eq!(ctx.deadline(), None);
    assert!(!ctx.wait_for(Duration::from_millis(1)));
    assert!(!Context::default().is_done());
    assert!(format!("{ctx:?}").starts_with("Context"));
}

#[test]
fn error_texts_match_go() {
    assert_eq!(ContextError::Canceled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(ContextError::Canceled);
    assert_eq!(boxed.to_string(), "context canceled");
}

#[test]
fn parent_cancel_finishes_children_and_grandchildren() {
    let (parent, cancel) = Context::background().with_cancel();
    let (child_cancel, _c1) = parent.with_cancel();
    let (child_timer, _c2) = parent.with_timeout(Duration::from_secs(3600));
    let (grandchild, _c3) = child_cancel.with_cancel();
    let (great, _c4) = grandchild.with_timeout(Duration::from_secs(3600));
    let all = [&parent, &child_cancel, &child_timer, &grandchild, &great];
    assert!(all.iter().all(|c| !c.is_done()));

    cancel.cancel();
    for ctx in all {
        assert_eq!(ctx.err(), Some(ContextError::Canceled), "{ctx:?}");
        assert!(ctx.wait_for(Duration::ZERO));
    }
}

#[test]
fn child_cancel_leaves_parent_and_siblings() {
    let (parent, _cancel) = Context::background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    let (sibling, _cs) = parent.with_cancel();
    let (grandchild, _cg) = child.with_cancel();

    cancel_child.cancel();
    assert_eq!(child.err(), Some(ContextError::Canceled));
    assert_eq!(grandchild.err(), Some(ContextError::Canceled));
    assert_eq!(parent.err(), None);
    assert_eq!(sibling.err(), None);
}

#[test]
fn cancel_is_idempotent_and_shared_by_clones() {
    let (ctx, cancel) = Context::background().with_cancel();
    let clone = ctx.clone();
    let cancel2 = cancel.clone();
    cancel2.cancel();
    cancel.cancel();
    cancel2.cancel();
    assert_eq!(clone.err(), Some(ContextError::Canceled));
    assert!(format!("{cancel:?}").contains("Canceled"));
}

#[test]
fn dropping_the_canceler_does_not_cancel() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, child_cancel) = ctx.with_cancel();
    drop(child_cancel);
    drop(cancel);
    assert!(!ctx.is_done());
    assert!(!child.is_done());
}

#[test]
fn child_of_a_done_parent_is_done_at_once() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (child, child_cancel) = parent.with_cancel();
    assert_eq!(child.err(), Some(ContextError::Canceled));
    let (timed, _c) = parent.with_timeout(Duration::from_secs(3600));
    assert_eq!(timed.err(), Some(ContextError::Canceled));
    child_cancel.cancel();
    assert_eq!(child.err(), Some(ContextError::Canceled));

    let (expired, _c) = Context::background().with_deadline(Instant::now());
    let (child, _c) = expired.with_cancel();
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn deadlines_and_timeouts() {
    let (ctx, _c) = Context::background().with_deadline(Instant::now());
    assert!(ctx.is_done());
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));

    let (ctx, _c) = Context::background().with_timeout(Duration::ZERO);
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));

    // A timeout too far to represent means no deadline of its own.
    let (ctx, _c) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(ctx.deadline(), None);
    assert!(!ctx.is_done());

    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(20));
    ctx.wait(); // returns at the deadline: nothing else ends it
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn a_child_deadline_is_the_earlier_one() {
    let now = Instant::now();
    let near = now + Duration::from_secs(100);
    let far = now + Duration::from_secs(200);
    let (parent, _c) = Context::background().with_deadline(near);
    let (later, _c1) = parent.with_deadline(far);
    let (earlier, _c2) = parent.with_deadline(now + Duration::from_secs(50));
    let (plain, _c3) = parent.with_cancel();
    assert_eq!(later.deadline(), Some(near));
    assert_eq!(earlier.deadline(), Some(now + Duration::from_secs(50)));
    assert_eq!(plain.deadline(), Some(near));
}

#[test]
fn a_parent_deadline_ends_the_child() {
    let (parent, _c) = Context::background().with_timeout(Duration::from_millis(20));
    let (child, _c) = parent.with_timeout(Duration::from_secs(3600));
    let waiter = thread::spawn(move || {
        child.wait();
        child.err()
    });
    assert_eq!(join_within(waiter), Some(ContextError::DeadlineExceeded));
}

#[test]
fn the_first_reason_wins() {
    // The deadline passes first, then cancel: still DeadlineExceeded, for the tree too.
    let (parent, cancel) = Context::background().with_deadline(Instant::now());
    let (child, _c) = parent.with_cancel();
    cancel.cancel();
    assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));

    // Cancel first, then the deadline passes: still Canceled. (A slow machine may reach the
    // deadline before `cancel`; the error must not change afterwards either way.)
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(20));
    cancel.cancel();
    let deadline = ctx.deadline().unwrap();
    let cancelled_in_time = Instant::now() < deadline;
    let first = ctx.err();
    if cancelled_in_time {
        assert_eq!(first, Some(ContextError::Canceled));
    }
    let (timer, _c) = Context::background().with_deadline(deadline);
    timer.wait();
    assert_eq!(ctx.err(), first);

    // A child whose own deadline passed keeps DeadlineExceeded when its parent is cancelled.
    let (parent, cancel) = Context::background().with_cancel();
    let (child, _c) = parent.with_deadline(Instant::now());
    cancel.cancel();
    assert_eq!(parent.err(), Some(ContextError::Canceled));
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
}

/// A cancel landing at the deadline's instant, seen by a reader that polls `err`: whatever the
/// reader sees first, it sees for good. (The reader could see `DeadlineExceeded` from the clock
/// while the cancel, which had read the clock just before the deadline, was about to record
/// `Canceled`.) On the context itself and on a child whose parent is cancelled.
#[test]
fn the_first_reason_never_changes_when_a_cancel_meets_the_deadline() {
    let rounds = scaled(4_000, 4);
    let (contexts, handed) = std::sync::mpsc::channel::<Context>();
    let reader = thread::spawn(move || {
        let mut changed = 0;
        for ctx in handed {
            let first = loop {
                if let Some(err) = ctx.err() {
                    break err;
                }
            };
            if (0..scaled(500, 5)).any(|_| ctx.err() != Some(first)) {
                changed += 1;
            }
        }
        changed
    });
    for round in 0..rounds {
        let deadline = Instant::now() + Duration::from_micros(30 + (round % 20) as u64);
        let (parent, cancel) = Context::background().with_cancel();
        let (child, _cancel_child) = parent.with_deadline(deadline);
        let (ctx, cancel) = if round % 2 == 0 {
            (child, cancel)
        } else {
            Context::background().with_deadline(deadline)
        };
        contexts.send(ctx).unwrap();
        while Instant::now() + Duration::from_nanos(300) < deadline {}
        cancel.cancel();
    }
    drop(contexts);
    assert_eq!(join_within(reader), 0, "rounds whose error changed");
}

/// A parent cancelled just before its deadline, whose cancellation is still on its way to its
/// many children when the deadline passes: every child inherits the deadline, so every child
/// takes the parent's error, whether a reader looks at it during the walk or after. (The walk
/// used to compare each child's deadline with the clock when it got there, and a reader with
/// the clock when it looked.) The timing decides only how often the deadline falls inside the
/// walk, never what must hold.
#[test]
fn children_take_their_parents_error_when_its_deadline_passes_mid_walk() {
    let children = scaled(20_000, 50);
    for round in 0..scaled(10, 2) {
        let deadline = Instant::now() + Duration::from_millis(100);
        let (parent, cancel) = Context::background().with_deadline(deadline);
        let kids: Arc<Vec<_>> = Arc::new((0..children).map(|_| parent.with_cancel()).collect());
        // From the deadline on, a reader looks at the children from the last while the walk
        // goes from the first.
        let reader = {
            let kids = Arc::clone(&kids);
            thread::spawn(move || {
                while Instant::now() < deadline {}
                let seen: Vec<_> = kids.iter().rev().map(|(kid, _)| kid.err()).collect();
                seen
            })
        };
        // Cancel a moment before the deadline, varied over the rounds: the walk of this many
        // children takes about a millisecond.
        let lead = Duration::from_micros(100 * (round as u64 % 10));
        while Instant::now() + lead < deadline {}
        cancel.cancel();
        let err = parent.err().expect("cancelled");
        let seen = join_within(reader);
        for (kid, _) in kids.iter() {
            assert_eq!(
                kid.err(),
                Some(err),
                "round {round}: a child disagrees with its parent"
            );
        }
        assert!(
            seen.iter().all(|&e| e == Some(err)),
            "round {round}: a child was seen with another error than its parent's {err:?}"
        );
    }
}

#[test]
fn wait_wakes_on_cancel_from_another_thread() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, _c) = ctx.with_timeout(Duration::from_secs(3600));
    let waiters: Vec<_> = [ctx.clone(), child]
        .into_iter()
        .map(|ctx| {
            thread::spawn(move || {
                ctx.wait();
                ctx.err()
            })
        })
        .collect();
    let canceller = thread::spawn(move || cancel.cancel());
    join_within(canceller);
    for waiter in waiters {
        assert_eq!(join_within(waiter), Some(ContextError::Canceled));
    }
}

#[test]
fn wait_for_reports_timeout_and_done() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(!ctx.wait_for(Duration::ZERO));
    assert!(!ctx.wait_for(Duration::from_millis(10)));
    let waiter = {
        let ctx = ctx.clone();
        thread::spawn(move || ctx.wait_for(LIMIT * 2))
    };
    cancel.cancel();
    assert!(join_within(waiter));
    assert!(ctx.wait_for(Duration::ZERO));

    // The context's own deadline ends a longer wait_for with `true`.
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(10));
    assert!(ctx.wait_for(LIMIT));
}

#[test]
fn parked_threads_wake_on_cancel() {
    let (ctx, cancel) = Context::background().with_cancel();
    let word = 0u64; // outlives every park below: each thread is joined before the end
    let key = &word as *const u64 as usize;
    let waiter = {
        let ctx = ctx.clone();
        thread::spawn(move || {
            let options = ParkOptions {
                cancel: Some(&ctx as &dyn Cancellation),
                ..ParkOptions::default()
            };
            park(key, options, || true, || {}, |_, _| {})
        })
    };
    cancel.cancel();
    assert_eq!(join_within(waiter), ParkResult::Cancelled);

    // An already-done context makes park give up at once; so does its deadline.
    let options = ParkOptions {
        cancel: Some(&ctx as &dyn Cancellation),
        ..ParkOptions::default()
    };
    assert_eq!(
        park(key, options, || true, || {}, |_, _| {}),
        ParkResult::Cancelled
    );
    let (timed, _c) = Context::background().with_timeout(Duration::from_millis(10));
    let options = ParkOptions {
        cancel: Some(&timed as &dyn Cancellation),
        ..ParkOptions::default()
    };
    assert_eq!(
        park(key, options, || true, || {}, |_, _| {}),
        ParkResult::Cancelled
    );
    assert!(timed.is_cancelled());
}

#[test]
fn parked_threads_wake_on_an_ancestor_cancel() {
    let (root, cancel) = Context::background().with_cancel();
    let (leaf, _c) = root.with_cancel().0.with_cancel();
    let word = 0u64; // outlives every park below: each thread is joined before the end
    let key = &word as *const u64 as usize;
    let waiter = thread::spawn(move || {
        let options = ParkOptions {
            cancel: Some(&leaf as &dyn Cancellation),
            ..ParkOptions::default()
        };
        park(key, options, || true, || {}, |_, _| {})
    });
    cancel.cancel();
    assert_eq!(join_within(waiter), ParkResult::Cancelled);
}

/// Many threads wait on a tree of contexts; one cancel at the root wakes them all.
#[test]
fn one_cancel_wakes_every_waiter() {
    let rounds = scaled(50, 2);
    for _ in 0..rounds {
        let (root, cancel) = Context::background().with_cancel();
        let (mid, _c) = root.with_timeout(Duration::from_secs(3600));
        let ready = Arc::new(Barrier::new(THREADS + 1));
        let waiters: Vec<_> = (0..THREADS)
            .map(|i| {
                let ctx = match i % 3 {
                    0 => root.clone(),
                    1 => mid.clone(),
                    _ => mid.with_cancel().0,
                };
                let ready = Arc::clone(&ready);
                thread::spawn(move || {
                    ready.wait();
                    if i % 2 == 0 {
                        ctx.wait();
                        true
                    } else {
                        ctx.wait_for(LIMIT * 2)
                    }
                })
            })
            .collect();
        ready.wait();
        cancel.cancel();
        for waiter in waiters {
            assert!(join_within(waiter));
        }
    }
}

/// Children created while the parent is being cancelled always end up done; children dropped
/// concurrently do no harm.
#[test]
fn cancel_races_child_creation() {
    let rounds = scaled(200, 3);
    for _ in 0..rounds {
        let (parent, cancel) = Context::background().with_cancel();
        let start = Arc::new(Barrier::new(3));
        let makers: Vec<_> = (0..2)
            .map(|_| {
                let parent = parent.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    let mut kept = Vec::new();
                    for i in 0..20 {
                        let (child, c) = parent.with_cancel();
                        let (grandchild, gc) = child.with_cancel();
                        if i % 2 == 0 {
                            kept.push((grandchild, gc, c));
                        }
                    }
                    kept
                })
            })
            .collect();
        start.wait();
        cancel.cancel();
        for maker in makers {
            for (grandchild, _, _) in join_within(maker) {
                assert_eq!(grandchild.err(), Some(ContextError::Canceled));
            }
        }
    }
}

/// Many cancels of one tree at once, from the root and from the leaves (Go's
/// `TestSimultaneousCancels`).
#[test]
fn simultaneous_cancels() {
    let (root, cancel_root) = Context::background().with_cancel();
    let mut nodes: Vec<(Context, Canceler)> = Vec::new();
    for i in 0..THREADS * 4 {
        let parent = if i == 0 { &root } else { &nodes[i / 2].0 };
        let pair = parent.with_cancel();
        nodes.push(pair);
    }
    let cancelled = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let cancelers: Vec<_> = nodes
        .iter()
        .step_by(4)
        .map(|(_, cancel)| {
            let cancel = cancel.clone();
            let start = Arc::clone(&start);
            let cancelled = Arc::clone(&cancelled);
            thread::spawn(move || {
                start.wait();
                cancel.cancel();
                cancelled.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let waiters: Vec<_> = nodes
        .iter()
        .map(|(ctx, _)| {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.wait())
        })
        .collect();
    start.wait();
    cancel_root.cancel();
    for handle in cancelers.into_iter().chain(waiters) {
        join_within(handle);
    }
    assert_eq!(cancelled.load(Ordering::Relaxed), THREADS);
    assert!(nodes.iter().all(|(ctx, _)| ctx.is_done()));
}

/// Threads hammer one long-lived parent with short-lived children (each waited on briefly)
/// while others cancel children; the parent stays usable and finally cancels everything left.
#[test]
fn stress_short_lived_children() {
    let per_thread = scaled(5_000, 20);
    let (parent, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let parent = parent.clone();
            thread::spawn(move || {
                let mut last = None;
                for i in 0..per_thread {
                    let (child, c) = parent.with_cancel();
                    if (i + t) % 3 == 0 {
                        c.cancel();
                        assert!(child.wait_for(Duration::ZERO));
                    } else {
                        assert!(!child.is_done());
                    }
                    last = Some(child);
                }
                last.unwrap()
            })
        })
        .collect();
    let last: Vec<Context> = workers.into_iter().map(join_within).collect();
    cancel.cancel();
    assert!(last.iter().all(Context::is_done));
}

#[test]
fn wait_until_reports_timeout_and_done() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(!ctx.wait_until(Instant::now()));
    assert!(!ctx.wait_until(Instant::now() + Duration::from_millis(5)));
    let waiter = {
        let ctx = ctx.clone();
        thread::spawn(move || ctx.wait_until(Instant::now() + LIMIT * 2))
    };
    cancel.cancel();
    assert!(join_within(waiter));
    // Done: even a past deadline says so.
    assert!(ctx.wait_until(Instant::now()));

    // The context's own deadline, earlier than the wait's, ends the wait with `true`.
    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(5));
    assert!(ctx.wait_until(Instant::now() + LIMIT));
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn a_waiter_cancelled_mid_wait_is_woken_and_forgotten() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, _c) = ctx.with_timeout(LIMIT * 4);
    let waiter = {
        let child = child.clone();
        thread::spawn(move || (child.wait_until(Instant::now() + LIMIT * 2), child.err()))
    };
    cancel.cancel(); // the parent: reaches the child's waiter
    assert_eq!(join_within(waiter), (true, Some(ContextError::Canceled)));
}

#[test]
fn debug_shows_the_time_left_not_instants() {
    assert_eq!(
        format!("{:?}", Context::background()),
        "Context { err: None, time_left: None }"
    );
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let shown = format!("{ctx:?}");
    assert!(
        shown.starts_with("Context { err: None, time_left: Some("),
        "{shown}"
    );
    assert!(!shown.contains("Instant"), "{shown}");
    cancel.cancel();
    assert!(format!("{ctx:?}").starts_with("Context { err: Some(Canceled), time_left: Some("));
    let (past, _c) = Context::background().with_deadline(Instant::now());
    assert_eq!(
        format!("{past:?}"),
        "Context { err: Some(DeadlineExceeded), time_left: Some(0ns) }"
    );
}
