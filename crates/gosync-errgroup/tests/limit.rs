//! The limit of `errgroup::Group` and `ScopedGroup` (on gosync-semaphore).
//!
//! Ported from x/sync's `errgroup_test.go` (behaviours, in our own code): `TestTryGo` and
//! `TestGoLimit` (without its sleep: tasks wait for each other instead). Then: `set_limit`'s
//! panic with Go's text at the caller's line, a limit of 0, `go` blocking until a slot frees,
//! 64 threads racing `go` and `try_go` against a limit, with the running count checked exactly.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use gosync_errgroup::{scope, Group};
use gosync_testkit::{join_within, panic_message, panic_site, scaled, wait_until, within, LIMIT};

/// A task that returns once the receiver gets a message, and the sender to release it.
fn held_task() -> (
    mpsc::Sender<()>,
    impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let (release, released) = mpsc::channel::<()>();
    (release, move || {
        released.recv_timeout(LIMIT).map_err(|e| e.to_string())
    })
}

/// `g.wait()`, failing the test if it hangs.
fn wait_within<E: Send + 'static>(g: &Arc<Group<E>>) -> Result<(), E> {
    let g = Arc::clone(g);
    within(move || g.wait())
}

#[test]
fn try_go_fails_exactly_when_the_limit_is_reached() {
    let g = Arc::new(Group::new());
    let n = scaled(42, 4);
    g.set_limit(Some(n));
    let mut releases = Vec::new();
    for i in 0..n {
        let (release, task) = held_task();
        assert!(g.try_go(task), "try_go {i} of {n}");
        releases.push(release);
    }
    assert!(!g.try_go(|| Ok(())));
    for release in releases {
        release.send(()).unwrap();
    }
    assert_eq!(wait_within(&g), Ok(()));

    let (release, task) = held_task();
    assert!(g.try_go(task));
    release.send(()).unwrap();
    assert_eq!(g.wait(), Ok(()));

    // Switch the limit.
    g.set_limit(Some(1));
    let (release, task) = held_task();
    assert!(g.try_go(task));
    assert!(!g.try_go(|| Ok(())));
    release.send(()).unwrap();
    assert_eq!(g.wait(), Ok(()));

    // Block all calls.
    g.set_limit(Some(0));
    for _ in 0..scaled(1 << 10, 8) {
        assert!(!g.try_go(|| Ok(())));
    }
    assert_eq!(g.wait(), Ok(()));
    assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: Some(0), .. }");
}

#[test]
fn go_never_runs_more_tasks_than_the_limit() {
    let limit = 10;
    let g = Group::new();
    g.set_limit(Some(limit));
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    for _ in 0..=scaled(1 << 10, 20) {
        let (active, peak) = (Arc::clone(&active), Arc::clone(&peak));
        g.go(move || {
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            if now > limit {
                return Err(format!("saw {now} active tasks; want at most {limit}"));
            }
            thread::yield_now(); // give the others a chance to start
            active.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    assert_eq!(within(move || g.wait()), Ok(()));
    assert!((1..=limit).contains(&peak.load(Ordering::SeqCst)));
}

#[test]
fn go_waits_for_a_slot_to_free() {
    let g = Arc::new(Group::new());
    g.set_limit(Some(1));
    let (release, task) = held_task();
    g.go(task);
    let second_ran = Arc::new(AtomicUsize::new(0));
    let spawner = {
        let (g, second_ran) = (Arc::clone(&g), Arc::clone(&second_ran));
        thread::spawn(move || {
            g.go(move || {
                second_ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        })
    };
    // The spawner is blocked in `go` while the first task holds the only slot.
    assert_eq!(second_ran.load(Ordering::SeqCst), 0);
    release.send(()).unwrap();
    join_within(spawner);
    assert_eq!(wait_within(&g), Ok(()));
    assert_eq!(second_ran.load(Ordering::SeqCst), 1);
}

#[test]
fn set_limit_while_tasks_run_panics_with_gos_text_at_the_callers_line() {
    let g = Group::new();
    let (release, task) = held_task();
    g.go(task);
    let (release_2, task_2) = held_task();
    g.go(task_2);
    let caught = catch_unwind(AssertUnwindSafe(|| g.set_limit(Some(3)))).unwrap_err();
    assert_eq!(
        panic_message(&*caught),
        "errgroup: modify limit while 2 goroutines in the group are still active"
    );
    // Nothing was lost: the tasks finish and the old (absent) limit holds.
    release.send(()).unwrap();
    release_2.send(()).unwrap();
    assert_eq!(g.wait(), Ok(()));
    assert_eq!(format!("{g:?}"), "Group { tasks: 0, limit: None, .. }");
    g.set_limit(Some(3));
}

#[test]
fn set_limit_points_at_the_caller() {
    let g = Group::<()>::new();
    let (release, task) = held_task();
    g.go(move || task().map_err(drop));
    let line = line!() + 1;
    let (file, at, _) = panic_site(|| g.set_limit(None));
    assert_eq!((file.as_str(), at), (file!(), line));
    release.send(()).unwrap();
    assert_eq!(g.wait(), Ok(()));
}

#[test]
fn go_with_a_limit_of_zero_panics_instead_of_blocking_forever() {
    let g = Group::<()>::new();
    g.set_limit(Some(0));
    let caught = catch_unwind(AssertUnwindSafe(|| g.go(|| Ok(())))).unwrap_err();
    assert_eq!(
        panic_message(&*caught),
        "errgroup: go with a limit of 0 can never start a task"
    );
    assert_eq!(g.wait(), Ok(()));
    g.set_limit(None);
    g.go(|| Ok(()));
    assert_eq!(g.wait(), Ok(()));
}

#[test]
fn sixty_four_threads_race_go_and_try_go_against_the_limit() {
    let threads = scaled(64, 4);
    let limit = 3;
    let g = Arc::new(Group::<String>::new());
    g.set_limit(Some(limit));
    let active = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    // One long task keeps the group busy, so that the racing `go`s never meet a `wait` at zero.
    let (release, keeper) = held_task();
    g.go(keeper);
    let spawners: Vec<_> = (0..threads)
        .map(|i| {
            let (g, active, ran, started) = (
                Arc::clone(&g),
                Arc::clone(&active),
                Arc::clone(&ran),
                Arc::clone(&started),
            );
            thread::spawn(move || {
                let task = move || {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    ran.fetch_add(1, Ordering::SeqCst);
                    active.fetch_sub(1, Ordering::SeqCst);
                    if now > limit {
                        Err(format!("{now} tasks running; the limit is {limit}"))
                    } else {
                        Ok(())
                    }
                };
                if i % 2 == 0 {
                    g.go(task);
                    started.fetch_add(1, Ordering::SeqCst);
                } else if g.try_go(task) {
                    started.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for spawner in spawners {
        join_within(spawner);
    }
    release.send(()).unwrap();
    assert_eq!(wait_within(&g), Ok(()));
    let started = started.load(Ordering::SeqCst);
    assert!(started >= threads / 2);
    assert_eq!(ran.load(Ordering::SeqCst), started);
}

#[test]
fn a_scoped_group_has_a_limit_too() {
    let running = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let result: Result<(), String> = scope(|g| {
        g.set_limit(Some(2));
        for _ in 0..scaled(16, 4) {
            g.go(|| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                ran.fetch_add(1, Ordering::SeqCst);
                thread::yield_now();
                running.fetch_sub(1, Ordering::SeqCst);
                if now > 2 {
                    Err(format!("{now} running"))
                } else {
                    Ok(())
                }
            });
        }
        wait_until(|| ran.load(Ordering::SeqCst) == scaled(16, 4));
        assert!(format!("{g:?}").contains("limit: Some(2)"));
    });
    assert_eq!(result, Ok(()));
}
