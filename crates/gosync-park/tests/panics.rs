//! Panics in the callbacks a caller hands the park layer: the panic reaches that caller, and no
//! thread is lost in a queue (an unparker that took a waiter out and then panicked left it
//! asleep for good) or found missing from one (a second panic while unwinding aborted the
//! process).
#![cfg(not(gosync_loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_park::{
    park, unpark_all, unpark_filter, unpark_one, unpark_requeue, Cancellation, FilterOp,
    ParkOptions, ParkResult, RequeueOp, Waker,
};
use gosync_testkit::{join_within, quiet_panics, wait_until};

/// A fresh key, unique to this test binary.
fn fresh_key() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0x9000);
    NEXT.fetch_add(8, Ordering::Relaxed)
}

/// A thread parked on `key` with `token` (untimed, or until `deadline`), once it is queued.
fn parked(key: usize, token: usize, deadline: Option<Instant>) -> thread::JoinHandle<ParkResult> {
    let queued = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let queued = Arc::clone(&queued);
        thread::spawn(move || {
            let options = ParkOptions {
                token,
                deadline,
                ..ParkOptions::default()
            };
            let validate = || {
                queued.fetch_add(1, Ordering::SeqCst);
                true
            };
            park(key, options, validate, || {}, |_, _| {})
        })
    };
    wait_until(|| queued.load(Ordering::SeqCst) == 1);
    waiter
}

/// `unpark_one`'s callback panics after the waiter left the queue: the waiter is woken with
/// token 0 (untimed, or timed: a timed one used to abort the process at its deadline, not
/// finding itself in the queue).
#[test]
fn a_panicking_unpark_callback_still_wakes_the_waiter() {
    quiet_panics("callback panics", || {
        for deadline in [None, Some(Instant::now() + Duration::from_secs(60))] {
            let key = fresh_key();
            let waiter = parked(key, 0, deadline);
            let caught = catch_unwind(|| unpark_one(key, |_| panic!("callback panics")));
            assert!(caught.is_err());
            assert_eq!(join_within(waiter), ParkResult::Unparked(0));
            assert_eq!(unpark_all(key, 0), 0, "nobody left behind");
        }
    });
}

/// `unpark_filter`'s filter panics on the second waiter: the first, already picked, is woken
/// with token 0; the second stays queued for a later unpark.
#[test]
fn a_panicking_filter_wakes_the_waiters_it_picked() {
    quiet_panics("filter panics", || {
        let key = fresh_key();
        let first = parked(key, 1, None);
        let second = parked(key, 2, None);
        let caught = catch_unwind(|| {
            unpark_filter(
                key,
                |token| {
                    assert_eq!(token, 1, "filter panics");
                    FilterOp::Unpark
                },
                |_| 7,
            )
        });
        assert!(caught.is_err());
        assert_eq!(join_within(first), ParkResult::Unparked(0));
        assert_eq!(unpark_all(key, 5), 1);
        assert_eq!(join_within(second), ParkResult::Unparked(5));
    });
}

/// `unpark_requeue`'s callback panics: the waiter it unparked is woken with token 0.
#[test]
fn a_panicking_requeue_callback_still_wakes_the_waiter() {
    quiet_panics("callback panics", || {
        let (from, to) = (fresh_key(), fresh_key());
        let waiter = parked(from, 0, None);
        let caught = catch_unwind(|| {
            unpark_requeue(
                from,
                to,
                || RequeueOp::UnparkOne,
                |_, _| panic!("callback panics"),
            )
        });
        assert!(caught.is_err());
        assert_eq!(join_within(waiter), ParkResult::Unparked(0));
        assert_eq!(unpark_all(from, 0) + unpark_all(to, 0), 0);
    });
}

/// Parks on a fresh key with `options`, `before_sleep` and `on_abort`, expecting a panic out of
/// `park`: returns its payload, once it has checked that nobody is left parked on the key.
fn park_expecting_panic(
    options: ParkOptions<'_>,
    before_sleep: impl FnOnce(),
    on_abort: impl FnOnce(usize, bool),
) -> Box<dyn std::any::Any + Send> {
    let key = fresh_key();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        park(key, options, || true, before_sleep, on_abort)
    }));
    let payload = caught.expect_err("park panics");
    assert_eq!(unpark_all(key, 0), 0, "a thread left in the queue");
    payload
}

/// A panic in `before_sleep` leaves as a timeout would: the thread is out of the queue and
/// `on_abort` ran, so the caller's "parked" bit is cleared (it stayed set).
#[test]
fn a_panicking_before_sleep_runs_on_abort() {
    quiet_panics("before_sleep panics", || {
        let mut aborted = None;
        park_expecting_panic(
            ParkOptions::default(),
            || panic!("before_sleep panics"),
            |_, was_last| aborted = Some(was_last),
        );
        assert_eq!(aborted, Some(true));
    });
}

/// A cancellation source whose `unregister` panics.
struct PanicsOnUnregister;

impl Cancellation for PanicsOnUnregister {
    fn is_cancelled(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        Some(Instant::now())
    }
    fn register(&self, _: Waker) -> bool {
        true
    }
    fn unregister(&self, _: usize) {
        panic!("unregister panics");
    }
}

/// A panic in the cancellation source's `unregister` (after the thread left the queue) reaches
/// `park`'s caller (it aborted the process).
#[test]
fn a_panicking_unregister_reaches_the_caller() {
    quiet_panics("unregister panics", || {
        let options = ParkOptions {
            cancel: Some(&PanicsOnUnregister),
            ..ParkOptions::default()
        };
        park_expecting_panic(options, || {}, |_, _| {});
    });
}

/// A cancellation source that is never cancelled and keeps its registered wakers' ids.
#[derive(Default)]
struct Registry(std::sync::Mutex<Vec<usize>>);

impl Cancellation for Registry {
    fn is_cancelled(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn register(&self, waker: Waker) -> bool {
        self.0.lock().unwrap().push(waker.id());
        true
    }
    fn unregister(&self, waker_id: usize) {
        self.0.lock().unwrap().retain(|&id| id != waker_id);
    }
}

/// A panic in `on_abort` (after the timed-out thread left the queue) reaches `park`'s caller
/// (it aborted the process), and the thread's waker is taken back from its cancellation source
/// (it stayed in the source's list).
#[test]
fn a_panicking_on_abort_reaches_the_caller_and_unregisters_the_waker() {
    quiet_panics("on_abort panics", || {
        let source = Registry::default();
        let options = ParkOptions {
            deadline: Some(Instant::now() + Duration::from_millis(1)),
            cancel: Some(&source),
            ..ParkOptions::default()
        };
        park_expecting_panic(options, || {}, |_, _| panic!("on_abort panics"));
        assert!(source.0.lock().unwrap().is_empty(), "a waker left behind");
    });
}

/// A cancellation source whose `is_cancelled` panics once the waiter has registered with it.
#[derive(Default)]
struct PanicsWhenAsked(std::sync::atomic::AtomicBool);

impl Cancellation for PanicsWhenAsked {
    fn is_cancelled(&self) -> bool {
        if self.0.load(Ordering::SeqCst) {
            panic!("is_cancelled panics");
        }
        false
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn register(&self, _: Waker) -> bool {
        self.0.store(true, Ordering::SeqCst);
        true
    }
    fn unregister(&self, _: usize) {}
}

/// A panic in the cancellation source's `is_cancelled` while the thread is queued leaves as a
/// timeout would: out of the queue, with `on_abort` run, so the caller's "parked" bit is
/// cleared (it stayed set).
#[test]
fn a_panicking_is_cancelled_runs_on_abort() {
    quiet_panics("is_cancelled panics", || {
        let source = PanicsWhenAsked::default();
        let options = ParkOptions {
            cancel: Some(&source),
            ..ParkOptions::default()
        };
        let mut aborted = None;
        park_expecting_panic(options, || {}, |_, was_last| aborted = Some(was_last));
        assert_eq!(aborted, Some(true));
    });
}

/// `before_sleep` panics and then `on_abort` panics too, on the way out: the first panic reaches
/// the caller (the second one would abort the process), and the thread is out of the queue.
#[test]
fn a_panicking_on_abort_after_a_panicking_before_sleep_is_discarded() {
    quiet_panics("before_sleep panics", || {
        let payload = park_expecting_panic(
            ParkOptions::default(),
            || panic!("before_sleep panics"),
            // `resume_unwind`: a panic that runs no hook, so prints nothing.
            |_, _| std::panic::resume_unwind(Box::new("on_abort panics")),
        );
        assert_eq!(
            gosync_testkit::panic_message(&*payload),
            "before_sleep panics",
            "the first panic goes on"
        );
    });
}
