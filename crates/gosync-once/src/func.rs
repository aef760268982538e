//! [`once_func`] and [`once_value`]: Go's `sync.OnceFunc` and `sync.OnceValue`.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use gosync_park::sync::BookkeepingLock;

use crate::OnceCell;

/// Runs `f` on the first call and remembers its outcome: the value, or the message of its panic.
struct OnceCall<T, F> {
    f: BookkeepingLock<Option<F>>,
    outcome: OnceCell<Result<T, String>>,
}

impl<T, F: FnOnce() -> T> OnceCall<T, F> {
    fn new(f: F) -> Self {
        Self {
            f: BookkeepingLock::new(Some(f)),
            outcome: OnceCell::new(),
        }
    }

    /// The value of the one run of `f`; panics as `f` did, on the first call with its own
    /// payload and on later calls with its message.
    #[inline]
    fn get(&self) -> &T {
        let outcome = match self.outcome.get() {
            Some(outcome) => outcome,
            None => self.run(),
        };
        match outcome {
            Ok(value) => value,
            Err(message) => repanic(message),
        }
    }

    #[cold]
    fn run(&self) -> &Result<T, String> {
        let mut payload = None;
        let outcome = self.outcome.get_or_init(|| {
            // The lock is never contended: only the thread initialising `outcome` takes it, and
            // `outcome` cannot be left empty (the panic is caught), so it runs once.
            let f = self
                .f
                .lock()
                .take()
                .expect("the once function runs at most once");
            panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
                let message = panic_message(&*p).to_owned();
                payload = Some(p);
                message
            })
        });
        if let Some(payload) = payload {
            panic::resume_unwind(payload);
        }
        outcome
    }
}

/// Panics again with an earlier panic's message.
#[cold]
#[inline(never)]
fn repanic(message: &str) -> ! {
    panic!("{message}")
}

/// The message of a panic payload, as the default panic hook prints it.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Wraps `f` in a function that calls it only the first time it is called, however many
/// threads call it: Go's `sync.OnceFunc`.
///
/// Concurrent callers wait for the first call to finish. If `f` panics, the first call panics
/// with `f`'s payload, and every later call panics again with the same message (Go: "the
/// returned function will panic with the same value on every call").
///
/// # Differences from Go
///
/// Later panics carry the first panic's message (a `String`), not the original payload, which
/// has been handed to the first caller.
///
/// A call behind a first call still running waits as long as that takes: there is no bounded
/// form (gosync's exception, as for [`Once::call_once`](crate::Once::call_once)). For a wait
/// that gives up, keep the value in a [`OnceCell`](crate::OnceCell) and use its bounded
/// waits.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let runs = AtomicUsize::new(0);
/// let init = gosync_once::once_func(|| { runs.fetch_add(1, Ordering::Relaxed); });
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(&init);
///     }
/// });
/// init();
/// assert_eq!(runs.load(Ordering::Relaxed), 1);
/// ```
pub fn once_func<F: FnOnce() + Send>(f: F) -> impl Fn() + Send + Sync {
    let call = OnceCall::new(f);
    move || *call.get()
}

/// Wraps `f` in a function that calls it only the first time and returns (a clone of) its value
/// on every call: Go's `sync.OnceValue` (and `OnceValues`, with `T` a tuple or a `Result`).
///
/// Concurrent callers wait for the first call to finish. If `f` panics, the first call panics
/// with `f`'s payload, and every later call panics again with the same message.
///
/// # Differences from Go
///
/// As [`once_func`]. The value is cloned out on each call (Go copies it); wrap it in an `Arc`
/// to share a large one.
///
/// # Examples
///
/// ```
/// let config = gosync_once::once_value(|| {
///     println!("loading"); // printed once
///     vec![1, 2, 3]
/// });
/// assert_eq!(config(), vec![1, 2, 3]);
/// assert_eq!(config(), vec![1, 2, 3]);
///
/// // OnceValues: return a tuple or a Result.
/// let parsed = gosync_once::once_value(|| "42".parse::<u32>());
/// assert_eq!(parsed(), Ok(42));
/// ```
pub fn once_value<T: Clone + Send + Sync, F: FnOnce() -> T + Send>(
    f: F,
) -> impl Fn() -> T + Send + Sync {
    let call = OnceCall::new(f);
    move || call.get().clone()
}
