//! Helpers shared by gosync's test suites: bounded joins and waits, panic messages, and
//! iteration counts scaled for miri.
//!
//! Every test in gosync follows two rules: it never sleeps to synchronise, and every wait that
//! could hang is bounded so that a deadlock fails the test instead of hanging the run. These
//! helpers are those rules, written once:
//!
//! - [`join_within`] joins a thread, failing after [`LIMIT`]; [`within`] runs a closure on a
//!   new thread the same way. A panic in the thread is re-raised on the caller with its
//!   original payload, so `catch_unwind` and [`panic_message`] still see it.
//! - [`spawn_with`] starts a thread on its own handle of a shared value.
//! - [`wait_until`] yields (never sleeps) until a condition holds, failing after [`LIMIT`].
//! - [`panic_message`] is the text of a caught panic, for comparing with Go's panic texts;
//!   [`panic_site`] also gives the file and line it points at; [`quiet_panics`] keeps a stress
//!   test's thousands of expected panics out of the output.
//! - [`scaled`] picks an iteration or thread count: the full one normally, a small one under
//!   miri, which runs code thousands of times slower.
//!
//! This crate is for tests only (never published), uses std only, and depends on no gosync
//! crate, so every gosync crate, the park layer included, can take it as a dev-dependency.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use std::thread;
//!
//! use gosync_testkit::{join_within, scaled, wait_until};
//!
//! let started = Arc::new(AtomicBool::new(false));
//! let worker = {
//!     let started = Arc::clone(&started);
//!     thread::spawn(move || {
//!         started.store(true, Ordering::SeqCst);
//!         (0..scaled(1000, 10)).sum::<usize>()
//!     })
//! };
//! wait_until(|| started.load(Ordering::SeqCst));
//! assert!(join_within(worker) > 0);
//! ```

use std::any::Any;
use std::panic;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The longest any single wait in a test may take before the test fails as hung.
///
/// Generous on purpose: a loaded two-core CI machine, or miri, must never fail a correct test.
/// Tests may also use it as "forever" for a timed operation that is expected to succeed
/// (`try_lock_for(LIMIT)`), so that a bug fails the test rather than hanging it. Under miri,
/// which interprets every step and shares two cores with the rest of the verify run, it is
/// 300 s: still a hang detector, never a speed check. So it is when this crate is built with
/// `GOSYNC_TESTKIT_SLOW` set, as `cargo xtask tsan` does: ThreadSanitizer slows a stress test
/// several times over.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// tx.send(7).unwrap();
/// assert_eq!(rx.recv_timeout(gosync_testkit::LIMIT), Ok(7));
/// ```
pub const LIMIT: Duration = Duration::from_secs(
    if cfg!(miri) || option_env!("GOSYNC_TESTKIT_SLOW").is_some() {
        300
    } else {
        20
    },
);

/// Joins `handle` and returns the thread's result, failing the test if the thread is still
/// running after [`LIMIT`].
///
/// The wait runs on a watcher thread that this function joins again once the thread has
/// finished, so no helper thread outlives a passing test (miri checks that).
///
/// # Panics
///
/// Panics if the thread does not finish within [`LIMIT`]. If the thread itself panicked, its
/// panic is resumed on the calling thread with the original payload (see
/// [`std::panic::resume_unwind`]), so a test that expects the panic can catch it and check its
/// message.
///
/// # Examples
///
/// ```
/// use std::panic::{catch_unwind, AssertUnwindSafe};
/// use std::thread;
///
/// use gosync_testkit::{join_within, panic_message};
///
/// assert_eq!(join_within(thread::spawn(|| 6 * 7)), 42);
///
/// let failing = thread::spawn(|| panic!("sync: negative WaitGroup counter"));
/// let caught = catch_unwind(AssertUnwindSafe(|| join_within(failing))).unwrap_err();
/// assert_eq!(panic_message(&*caught), "sync: negative WaitGroup counter");
/// ```
#[track_caller]
pub fn join_within<T: Send + 'static>(handle: JoinHandle<T>) -> T {
    match join_for(handle, LIMIT) {
        Some(Ok(value)) => value,
        Some(Err(payload)) => panic::resume_unwind(payload),
        None => panic!("a thread did not finish within {LIMIT:?} (deadlock?)"),
    }
}

/// Runs `f` on a new thread and returns its result, failing the test if it takes over
/// [`LIMIT`]: [`std::thread::spawn`] followed by [`join_within`].
///
/// Wrap a whole test body in it when any step of the body could block forever.
///
/// # Panics
///
/// As [`join_within`]: if `f` does not return within [`LIMIT`], or with `f`'s own panic
/// (original payload) if it panicked.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
///
/// let got = gosync_testkit::within(|| {
///     let (tx, rx) = mpsc::channel();
///     std::thread::spawn(move || tx.send("hello").unwrap());
///     rx.recv().unwrap() // would hang the run if the sender were lost
/// });
/// assert_eq!(got, "hello");
/// ```
#[track_caller]
pub fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    join_within(thread::spawn(f))
}

/// Spawns a thread that runs `f` with its own handle on `shared`: the
/// `{ let x = Arc::clone(&x); thread::spawn(move || ...) }` of a test, in one call.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use gosync_testkit::{join_within, spawn_with};
///
/// let total = Arc::new(Mutex::new(1));
/// let doubler = spawn_with(&total, |total| *total.lock().unwrap() *= 2);
/// join_within(doubler);
/// assert_eq!(*total.lock().unwrap(), 2);
/// ```
pub fn spawn_with<S, T>(shared: &Arc<S>, f: impl FnOnce(&S) -> T + Send + 'static) -> JoinHandle<T>
where
    S: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
{
    let shared = Arc::clone(shared);
    thread::spawn(move || f(&shared))
}

/// Waits, yielding and never sleeping, until `condition` returns `true`; fails the test if it
/// has not within [`LIMIT`].
///
/// For a test that must know another thread reached some point (queued on a lock, holds a
/// guard) before it goes on, where the other thread can only be observed, not told to report.
///
/// # Panics
///
/// Panics, naming the caller's location, if `condition` is still `false` after [`LIMIT`].
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let count = Arc::new(AtomicUsize::new(0));
/// let worker = {
///     let count = Arc::clone(&count);
///     std::thread::spawn(move || {
///         for _ in 0..3 {
///             count.fetch_add(1, Ordering::SeqCst);
///         }
///     })
/// };
/// gosync_testkit::wait_until(|| count.load(Ordering::SeqCst) == 3);
/// gosync_testkit::join_within(worker);
/// ```
#[track_caller]
pub fn wait_until(condition: impl FnMut() -> bool) {
    assert!(
        holds_within(LIMIT, condition),
        "the awaited condition did not hold within {LIMIT:?}"
    );
}

/// The message of a caught panic: the `&str` or `String` that `panic!` was given.
///
/// Takes the payload of [`std::panic::catch_unwind`] or [`std::thread::JoinHandle::join`]
/// (`&*payload`); a reference to the `Box` itself (`&payload`, which coerces to a `dyn Any`
/// of the box) is looked through as well. A payload of any other type gives an empty string.
///
/// # Examples
///
/// ```
/// use std::panic::catch_unwind;
///
/// use gosync_testkit::panic_message;
///
/// let caught = catch_unwind(|| panic!("sync: unlock of unlocked mutex")).unwrap_err();
/// assert_eq!(panic_message(&*caught), "sync: unlock of unlocked mutex");
///
/// let caught = catch_unwind(|| panic!("{} {}", "formatted", 42)).unwrap_err();
/// assert_eq!(panic_message(&caught), "formatted 42");
///
/// let caught = catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
/// assert_eq!(panic_message(&*caught), "");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(inner) = payload.downcast_ref::<Box<dyn Any + Send>>() {
        panic_message(&**inner)
    } else {
        String::new()
    }
}

/// Runs `f`, which must panic, and returns the file and line the panic points at, and its
/// message: for checking that a misuse panic (`#[track_caller]`) points at the caller.
///
/// The panic hook is process-wide: a lock keeps the tests of one binary from swapping it under
/// each other, and the hook keeps only this thread's location (other tests may be panicking
/// at the same time).
///
/// # Panics
///
/// If `f` returns without panicking.
///
/// # Examples
///
/// ```
/// use gosync_testkit::panic_site;
///
/// #[track_caller]
/// fn refuse() {
///     panic!("refused");
/// }
///
/// let line = line!() + 1;
/// let (file, at, message) = panic_site(|| refuse());
/// assert_eq!((file.as_str(), at, message.as_str()), (file!(), line, "refused"));
/// ```
pub fn panic_site(f: impl FnOnce()) -> (String, u32, String) {
    let _one_at_a_time = hook_lock();
    let site = Arc::new(Mutex::new(None));
    let hook_site = Arc::clone(&site);
    let me = thread::current().id();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if thread::current().id() == me {
            *hook_site.lock().unwrap_or_else(PoisonError::into_inner) =
                info.location().map(|at| (at.file().to_owned(), at.line()));
        }
    }));
    // Unwind safety is the test's to mind: it only looks at the panic.
    let result = panic::catch_unwind(panic::AssertUnwindSafe(f));
    panic::set_hook(previous);
    let message = panic_message(&*result.expect_err("it panics"));
    let (file, line) = site
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .expect("the hook saw the panic");
    (file, line, message)
}

/// Runs `f` with every panic whose message is `expected` kept out of the output, on any
/// thread, and returns what `f` returns; every other panic is reported as usual.
///
/// For stress tests that provoke a misuse panic thousands of times (and catch each one) while
/// other threads behave: printed, those panics would bury the report of a real failure.
///
/// The panic hook is process-wide: the lock [`panic_site`] takes serialises these swaps too, so
/// the tests of one binary can use both (one at a time: `f` must not call either, the lock is
/// not re-entrant), and the previous hook is back when `f` returns or panics.
///
/// # Panics
///
/// With `f`'s own panic (original payload), once the hook is restored.
///
/// # Examples
///
/// ```
/// use std::panic::catch_unwind;
///
/// use gosync_testkit::quiet_panics;
///
/// let caught = quiet_panics("sync: negative WaitGroup counter", || {
///     (0..1000)
///         .filter(|_| catch_unwind(|| panic!("sync: negative WaitGroup counter")).is_err())
///         .count()
/// });
/// assert_eq!(caught, 1000);
/// ```
pub fn quiet_panics<T>(expected: &str, f: impl FnOnce() -> T) -> T {
    let _one_at_a_time = hook_lock();
    let previous = Arc::new(panic::take_hook());
    let report = Arc::clone(&previous);
    let expected = expected.to_owned();
    panic::set_hook(Box::new(move |info| {
        if panic_message(info.payload()) != expected {
            report(info);
        }
    }));
    // Unwind safety is the test's to mind: a panic of `f` only passes through.
    let result = panic::catch_unwind(panic::AssertUnwindSafe(f));
    // Taking our hook back drops it, and its handle on the previous one, once no panic runs it.
    drop(panic::take_hook());
    match Arc::try_unwrap(previous) {
        Ok(previous) => panic::set_hook(previous),
        Err(shared) => panic::set_hook(Box::new(move |info| shared(info))),
    }
    result.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

/// The lock that keeps the tests of one binary from swapping the process-wide panic hook under
/// each other ([`panic_site`], [`quiet_panics`]).
fn hook_lock() -> MutexGuard<'static, ()> {
    static HOOK: Mutex<()> = Mutex::new(());
    HOOK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Under miri, makes panics print their message without a backtrace, for tests that panic on
/// purpose; does nothing otherwise.
///
/// Printing a panic's backtrace under miri takes seconds on a busy machine (measured: 4–5 s
/// per panic, against 0.05–0.15 s with this hook), so a test whose threads panic several
/// times would meet its [`LIMIT`] in the printing, not in the code under test. The hook is
/// process-wide and installed once; the message (location and text) is still printed.
///
/// # Examples
///
/// ```
/// gosync_testkit::short_panics_under_miri();
/// let caught = std::panic::catch_unwind(|| panic!("on purpose"));
/// assert!(caught.is_err());
/// ```
pub fn short_panics_under_miri() {
    if cfg!(miri) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    }
}

/// `n` normally, `under_miri` when the tests run under miri.
///
/// For iteration and thread counts: miri interprets every step and explores thread
/// interleavings, so a stress test's full count would take hours there, while a few rounds
/// still check for undefined behaviour and leaks. This crate is built under miri along with
/// the tests, so `cfg!(miri)` here answers for the test run.
///
/// # Examples
///
/// ```
/// use gosync_testkit::scaled;
///
/// const THREADS: usize = scaled(16, 3);
///
/// let rounds = scaled(2_000, 20);
/// assert_eq!((THREADS, rounds), if cfg!(miri) { (3, 20) } else { (16, 2_000) });
/// ```
#[must_use]
pub const fn scaled(n: usize, under_miri: usize) -> usize {
    if cfg!(miri) {
        under_miri
    } else {
        n
    }
}

/// Joins `handle` if it finishes within `limit`; `None` if it does not, in which case a
/// detached watcher thread joins it whenever it does finish.
fn join_for<T: Send + 'static>(
    handle: JoinHandle<T>,
    limit: Duration,
) -> Option<thread::Result<T>> {
    if handle.is_finished() {
        return Some(handle.join());
    }
    let (tx, rx) = mpsc::channel();
    let watcher = thread::spawn(move || {
        // The receiver is gone only if the caller timed out: the result has no one to go to.
        let _ = tx.send(handle.join());
    });
    let result = rx.recv_timeout(limit).ok()?;
    watcher
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload));
    Some(result)
}

/// Whether `condition` holds, checked again after each yield, before `limit` has passed.
fn holds_within(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn join_within_returns_the_result() {
        let handle = thread::spawn(|| vec![1, 2, 3]);
        assert_eq!(join_within(handle), [1, 2, 3]);
    }

    #[test]
    fn join_within_returns_the_result_of_a_finished_thread() {
        let handle = thread::spawn(|| 5);
        while !handle.is_finished() {
            thread::yield_now();
        }
        assert_eq!(join_within(handle), 5);
    }

    #[test]
    fn join_within_resumes_the_threads_panic() {
        let handle = thread::spawn(|| panic!("boom {}", 1));
        let caught = catch_unwind(AssertUnwindSafe(|| join_within(handle))).unwrap_err();
        assert_eq!(panic_message(&*caught), "boom 1");
    }

    #[test]
    fn within_runs_on_another_thread() {
        let caller = thread::current().id();
        let ran_on = within(|| thread::current().id());
        assert_ne!(ran_on, caller);
        let caught = catch_unwind(|| within(|| panic_any("static text"))).unwrap_err();
        assert_eq!(panic_message(&*caught), "static text");
    }

    #[test]
    #[cfg_attr(miri, ignore = "leaves the watcher thread running past the test's end")]
    fn join_for_gives_up_after_the_limit() {
        let (release, blocked) = mpsc::channel::<()>();
        let handle = thread::spawn(move || blocked.recv().is_ok());
        assert!(join_for(handle, Duration::from_millis(1)).is_none());
        release.send(()).unwrap();
    }

    #[test]
    fn wait_until_sees_another_threads_progress() {
        let count = Arc::new(AtomicUsize::new(0));
        let worker = {
            let count = Arc::clone(&count);
            thread::spawn(move || {
                for _ in 0..scaled(100, 5) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        wait_until(|| count.load(Ordering::SeqCst) == scaled(100, 5));
        join_within(worker);
    }

    #[test]
    fn holds_within_gives_up_after_the_limit() {
        let mut calls = 0;
        assert!(!holds_within(Duration::from_millis(1), || {
            calls += 1;
            false
        }));
        assert!(calls >= 1);
        assert!(holds_within(Duration::ZERO, || true));
    }

    #[test]
    fn panic_message_reads_str_string_and_boxed_payloads() {
        let caught = catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*caught), "plain");
        assert_eq!(panic_message(&caught), "plain");
        let caught = catch_unwind(|| panic!("{}", String::from("owned"))).unwrap_err();
        assert_eq!(panic_message(&*caught), "owned");
        let caught = catch_unwind(|| panic_any(3_i32)).unwrap_err();
        assert_eq!(panic_message(&*caught), "");
    }

    #[test]
    fn quiet_panics_keeps_only_the_expected_message_quiet() {
        static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let seen = || SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = {
            let _one_at_a_time = hook_lock();
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                seen().push(panic_message(info.payload()))
            }));
            previous
        };
        let caught = catch_unwind(AssertUnwindSafe(|| {
            quiet_panics("quiet", || {
                assert!(thread::spawn(|| panic!("quiet")).join().is_err());
                panic!("loud");
            })
        }))
        .unwrap_err();
        assert_eq!(panic_message(&*caught), "loud");
        let _ = catch_unwind(|| panic!("after"));
        {
            let _one_at_a_time = hook_lock();
            panic::set_hook(previous);
        }
        // Other tests of this binary may panic meanwhile: only these three messages count.
        let ours: Vec<String> = seen()
            .iter()
            .filter(|m| ["quiet", "loud", "after"].contains(&m.as_str()))
            .cloned()
            .collect();
        assert_eq!(ours, ["loud", "after"]);
    }

    #[test]
    fn scaled_picks_by_miri() {
        assert_eq!(scaled(10, 2), if cfg!(miri) { 2 } else { 10 });
    }
}
