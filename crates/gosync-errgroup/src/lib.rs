//! Go's `x/sync/errgroup`: run tasks on threads, wait for all of them, and get the first error.
//!
//! | Go | here |
//! | --- | --- |
//! | `var g errgroup.Group` | [`Group::new`], `Group::default()` |
//! | `g, ctx := errgroup.WithContext(parent)` | `let (g, ctx) = Group::with_context(&parent)` ([`Group::with_context`]) |
//! | `g.Go(f)` | [`g.go(f)`](Group::go) |
//! | `g.TryGo(f)` | [`g.try_go(f)`](Group::try_go) |
//! | `g.SetLimit(n)` | [`g.set_limit(Some(n))`](Group::set_limit), `None` for no limit (Go's `-1`) |
//! | `g.Wait()` | [`g.wait()`](Group::wait) |
//! | (no Go analog) | [`try_go_for`](Group::try_go_for), [`try_go_until`](Group::try_go_until), [`go_ctx`](Group::go_ctx): `go` that gives up waiting for the limit and hands the task back |
//! | (no Go analog) | [`try_wait`](Group::try_wait), [`wait_for`](Group::wait_for), [`wait_until`](Group::wait_until), [`wait_ctx`](Group::wait_ctx): `wait` that gives up, leaving the tasks, the first error and the context as they were |
//! | (no Go analog) | [`scope`]: tasks that borrow from the caller, as `std::thread::scope` |
//!
//! # What a task costs
//!
//! Each task runs on a thread of its own (`std::thread::spawn`, or the scope's threads in
//! [`scope`]): a spawn, a stack and an exit, tens of microseconds. Measured side by side on a
//! busy 2-core machine, `go` plus its share of `wait` cost 35–75 µs per empty task, and a bare
//! `std::thread::spawn` plus `join` 95–125 µs: the group adds nothing measurable to the thread.
//! A thread each is what a blocking task needs (in a fixed pool, tasks that block, waiting for
//! each other or for the context, would starve the rest), and it is what Go's goroutines give.
//! For many small tasks, bound how many threads run at once with [`Group::set_limit`], or
//! batch the work.
//!
//! # Examples
//!
//! ```
//! use gosync_errgroup::scope;
//!
//! let pages = ["a", "bb", "ccc"];
//! let mut lengths = [0; 3];
//! let result: Result<(), String> = scope(|g| {
//!     for (page, length) in pages.iter().zip(lengths.iter_mut()) {
//!         g.go(move || {
//!             *length = page.len();
//!             Ok(())
//!         });
//!     }
//! });
//! assert_eq!(result, Ok(()));
//! assert_eq!(lengths, [1, 2, 3]);
//! ```

// Notes about memory ordering: this file has no atomics of its own. A task's writes reach the
// thread that returns from `wait` through the WaitGroup (each task's `done` is a Release, the
// wait an Acquire, see gosync-waitgroup); the error and panic slots and the limit live under
// locks; the permits are ordered by the semaphore.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use gosync_context::{Canceler, Context, ContextError};
use gosync_park::discard_panic;
use gosync_park::sync::{Arc, BookkeepingLock};
use gosync_semaphore::{Permit, Semaphore};
use gosync_waitgroup::WaitGroup;

/// A collection of tasks working on parts of one job: Go's `errgroup.Group`.
///
/// [`go`](Self::go) runs a task on a new thread; [`wait`](Self::wait) waits for every task
/// and returns the first error any of them returned. A group made by
/// [`with_context`](Self::with_context) also cancels its context at the first error, so the
/// other tasks can stop early, and when `wait` returns.
///
/// # Differences from Go
///
/// - The error type is a parameter (`Group<E>`); a task returns `Result<(), E>`.
/// - [`wait`](Self::wait) hands the first error over once: a later `wait` returns `Ok` unless
///   tasks started since then failed (Go's returns the same error again; Rust's `E` need not be
///   `Clone`).
/// - A task that panics cancels the context as an error would, and `wait` re-raises the panic
///   (the first one, with its payload) once every task has finished. Go's errgroup lets the
///   panic end the process; a Rust thread's panic would otherwise vanish. Errors after the
///   first are dropped on their task's thread, and a panic in that drop counts as the task's.
/// - [`set_limit`](Self::set_limit) panics whenever tasks are running (Go's only when a limit
///   was set), and with a limit of zero, `go` (and `go_ctx`) panics instead of blocking
///   forever.
/// - Each task runs on a thread of its own (see [What a task costs](crate#what-a-task-costs)).
/// - For tasks that borrow from the caller, use [`scope`].
/// - Both waits have variants that give up (gosync's convention): `go` as
///   [`try_go_for`](Self::try_go_for), [`try_go_until`](Self::try_go_until) and
///   [`go_ctx`](Self::go_ctx), which hand the task back unrun when they give up; `wait` as
///   [`try_wait`](Self::try_wait), [`wait_for`](Self::wait_for),
///   [`wait_until`](Self::wait_until) (`None` when they give up) and
///   [`wait_ctx`](Self::wait_ctx) (the context's error). A wait that gives up leaves
///   everything as it was: the tasks run on, the first error (or panic) waits for the wait
///   that sees every task finished, and the group's context is not cancelled.
///
/// As in Go, a `go` from outside the group's tasks must not race with a `wait` that may find
/// no task running: the [`WaitGroup`] underneath reports that misuse.
///
/// # Examples
///
/// ```
/// use gosync_context::Context;
/// use gosync_errgroup::Group;
///
/// let (g, ctx) = Group::with_context(&Context::background());
/// g.go(|| Err("disk full"));
/// let watcher = ctx.clone();
/// g.go(move || {
///     watcher.wait(); // cancelled by the first error
///     Ok(())
/// });
/// assert_eq!(g.wait(), Err("disk full"));
/// assert!(ctx.is_done());
/// assert_eq!(g.wait(), Ok(())); // handed over once
/// ```
pub struct Group<E> {
    shared: Arc<Shared<E>>,
}

/// What a group's tasks report to: the count of running tasks, the first error and panic, and
/// the context to cancel.
struct Shared<E> {
    /// Tasks admitted and not yet finished.
    tasks: WaitGroup,
    /// The first error since the last hand-over.
    error: BookkeepingLock<Option<E>>,
    /// The payload of the first panicking task since the last re-raise.
    panic: BookkeepingLock<Option<Box<dyn Any + Send>>>,
    /// Cancels the context of [`Group::with_context`].
    cancel: Option<Canceler>,
    /// One permit per task allowed to run at once; `None` without a limit.
    limit: BookkeepingLock<Option<Arc<Semaphore>>>,
}

impl<E> Shared<E> {
    fn new(cancel: Option<Canceler>) -> Self {
        Self {
            tasks: WaitGroup::new(),
            error: BookkeepingLock::new(None),
            panic: BookkeepingLock::new(None),
            cancel,
            limit: BookkeepingLock::new(None),
        }
    }

    /// Replaces the limit while no task runs.
    #[track_caller]
    fn set_limit(&self, limit: Option<usize>) {
        let active = self.tasks.count();
        if active != 0 {
            panic!(
                "errgroup: modify limit while {active} goroutines in the group are still active"
            );
        }
        // A limit beyond what a semaphore counts is no limit.
        let capacity = limit
            .and_then(|limit| u64::try_from(limit).ok())
            .filter(|&capacity| capacity <= i64::MAX as u64);
        *self.limit.lock() = capacity.map(|capacity| Arc::new(Semaphore::new(capacity)));
    }

    /// The limit now, for `Debug`.
    fn limit(&self) -> Option<u64> {
        self.limit.lock().as_ref().map(|limit| limit.capacity())
    }

    /// Keeps the first error and cancels the context. A later error is dropped after the lock
    /// (its `Drop` may use the group), and a panic in that drop counts as the task's panic.
    fn fail(&self, error: E) {
        let later = keep_first(&self.error, error);
        self.cancel_context();
        if let Some(later) = later {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(later))) {
                self.panicked(payload);
            }
        }
    }

    /// Keeps the first panic and cancels the context. A later payload is dropped after the
    /// lock, and a panic in that drop is discarded (only the first panic is raised again).
    fn panicked(&self, payload: Box<dyn Any + Send>) {
        let later = keep_first(&self.panic, payload);
        self.cancel_context();
        if let Some(later) = later {
            discard_panic(later);
        }
    }

    fn cancel_context(&self) {
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }

    /// After every task has finished: cancels the context, re-raises the first panic, hands
    /// the first error over.
    fn finish(&self) -> Result<(), E> {
        self.cancel_context();
        let payload = self.panic.lock().take();
        if let Some(payload) = payload {
            panic::resume_unwind(payload);
        }
        let error = self.error.lock().take();
        error.map_or(Ok(()), Err)
    }
}

/// Stores `value` in `first` if it is empty; otherwise hands `value` back, for the caller to
/// drop after the lock.
fn keep_first<T>(first: &BookkeepingLock<Option<T>>, value: T) -> Option<T> {
    let mut first = first.lock();
    if first.is_some() {
        return Some(value);
    }
    *first = Some(value);
    None
}

/// A task's place in its group: counted in (with a permit of the limit) when the task is
/// admitted, counted out when the task has run (and reported), or when it never starts because
/// the thread could not be spawned.
struct Slot<E> {
    shared: Arc<Shared<E>>,
    /// The limit the task holds a permit of.
    limit: Option<Arc<Semaphore>>,
}

/// What `go` and its variants do when the limit is reached.
#[derive(Clone, Copy)]
enum WhenFull<'a> {
    /// Wait for a running task to finish (`go`).
    Wait,
    /// Give up at once (`try_go`).
    GiveUp,
    /// Wait at most this long (`try_go_for`).
    GiveUpAfter(Duration),
    /// Wait until this instant at most (`try_go_until`).
    GiveUpAt(Instant),
    /// Wait until the context is done (`go_ctx`).
    GiveUpWith(&'a Context),
}

impl<E> Slot<E> {
    /// Counts a new task in, first taking a permit of the limit, if there is one; `None` when
    /// the limit is reached and `when_full` says to give up (the semaphore's waits decide).
    #[track_caller]
    fn admit(shared: &Arc<Shared<E>>, when_full: WhenFull<'_>) -> Option<Self> {
        let limit = shared.limit.lock().clone();
        // A guard until the task is counted in: if `add` panics (a WaitGroup misuse), the
        // permit goes back and the limit keeps its size.
        let permit = match &limit {
            None => None,
            Some(permits) => Some(match when_full {
                WhenFull::Wait | WhenFull::GiveUpWith(_) if permits.capacity() == 0 => {
                    panic!("errgroup: go with a limit of 0 can never start a task")
                }
                WhenFull::Wait => permits.acquire_permit(1),
                WhenFull::GiveUp => permits.try_acquire_permit(1)?,
                WhenFull::GiveUpAfter(timeout) => permits.try_acquire_permit_for(1, timeout)?,
                WhenFull::GiveUpAt(deadline) => permits.try_acquire_permit_until(1, deadline)?,
                WhenFull::GiveUpWith(ctx) => permits.acquire_permit_ctx(ctx, 1).ok()?,
            }),
        };
        shared.tasks.add(1);
        // Counted in: from here the slot holds the permit, and its drop gives it back.
        permit.into_iter().for_each(Permit::forget);
        Some(Self {
            shared: Arc::clone(shared),
            limit,
        })
    }

    /// As [`admit`](Self::admit) giving up when `ctx` is done: a context that is already done
    /// fails at once, even with the limit not reached (the cancellation came first).
    #[track_caller]
    fn admit_ctx(shared: &Arc<Shared<E>>, ctx: &Context) -> Result<Self, ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        Self::admit(shared, WhenFull::GiveUpWith(ctx))
            .ok_or_else(|| gosync_park::cancelled_error(ctx))
    }

    /// Runs the task and reports how it ended; the slot is freed on return.
    fn run(self, f: impl FnOnce() -> Result<(), E>) {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.shared.fail(error),
            Err(payload) => self.shared.panicked(payload),
        }
    }
}

impl<E> Drop for Slot<E> {
    fn drop(&mut self) {
        // The permit first, as Go: once `wait` returns, every permit is back.
        if let Some(permits) = &self.limit {
            permits.release(1);
        }
        self.shared.tasks.done();
    }
}

impl<E: Send + 'static> Group<E> {
    /// Creates a group with no tasks, no limit and no context (Go's zero value).
    ///
    /// # Examples
    ///
    /// ```
    /// let g = gosync_errgroup::Group::<std::io::Error>::new();
    /// assert!(g.wait().is_ok());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared::new(None)),
        }
    }

    /// Creates a group and a child of `parent` that is cancelled at the group's first error
    /// (or panic), or when [`wait`](Self::wait) returns, whichever comes first. Go's
    /// `errgroup.WithContext`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_errgroup::Group;
    ///
    /// let (g, ctx) = Group::<()>::with_context(&Context::background());
    /// assert!(!ctx.is_done());
    /// assert_eq!(g.wait(), Ok(()));
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled)); // wait returned
    /// ```
    #[must_use = "the context is how the group's first error reaches the other tasks"]
    pub fn with_context(parent: &Context) -> (Self, Context) {
        let (ctx, cancel) = parent.with_cancel();
        let group = Self {
            shared: Arc::new(Shared::new(Some(cancel))),
        };
        (group, ctx)
    }

    /// Runs `f` on a new thread as one more task of the group. Go's `Go`.
    ///
    /// With a limit (see [`set_limit`](Self::set_limit)), first waits until fewer tasks than
    /// the limit are running. The first task to return an error (or to panic) cancels the
    /// group's context; later tasks still run, as in Go.
    ///
    /// # Panics
    ///
    /// With a limit of 0 (no task could ever start: Go's blocks forever), with
    /// `errgroup: go with a limit of 0 can never start a task`. If the thread cannot be spawned
    /// (the task is not counted then).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let g = Group::<String>::new();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..3 {
    ///     let done = Arc::clone(&done);
    ///     g.go(move || {
    ///         done.fetch_add(1, Ordering::Relaxed);
    ///         Ok(())
    ///     });
    /// }
    /// assert_eq!(g.wait(), Ok(()));
    /// assert_eq!(done.load(Ordering::Relaxed), 3);
    /// ```
    #[track_caller]
    pub fn go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static) {
        // Always admitted: `Wait` waits for a free slot.
        if let Some(slot) = Slot::admit(&self.shared, WhenFull::Wait) {
            gosync_park::thread::spawn(move || slot.run(f));
        }
    }

    /// Runs `f` as [`go`](Self::go) does if the limit lets it start now, and returns whether
    /// it started. Go's `TryGo`. Without a limit it always starts. A task that did not start
    /// is dropped unrun; [`try_go_for`](Self::try_go_for) with a zero timeout gives it back
    /// instead.
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned (the task is not counted then).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::sync::mpsc;
    ///
    /// let g = Group::<()>::new();
    /// g.set_limit(Some(1));
    /// let (release, released) = mpsc::channel::<()>();
    /// assert!(g.try_go(move || {
    ///     released.recv().unwrap();
    ///     Ok(())
    /// }));
    /// assert!(!g.try_go(|| Ok(()))); // the one slot is taken
    /// release.send(()).unwrap();
    /// assert_eq!(g.wait(), Ok(()));
    /// assert!(g.try_go(|| Ok(())));
    /// # g.wait().unwrap();
    /// ```
    #[must_use = "false means the task was not started"]
    #[track_caller]
    pub fn try_go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static) -> bool {
        Self::start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUp), f).is_ok()
    }

    /// Runs `f` as [`go`](Self::go) does, waiting at most `timeout` for the limit to let it
    /// start. Without a limit it always starts. A zero timeout starts it only if
    /// [`try_go`](Self::try_go) would.
    ///
    /// # Errors
    ///
    /// `Err(f)`, giving the task back unrun, when `timeout` passed with the limit still
    /// reached (at once with a limit of 0).
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned (the task is not counted then).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let g = Group::<()>::new();
    /// g.set_limit(Some(1));
    /// let (release, released) = mpsc::channel::<()>();
    /// let started = g.try_go_for(Duration::ZERO, move || {
    ///     released.recv().unwrap();
    ///     Ok(())
    /// });
    /// assert!(started.is_ok());
    /// let task = g.try_go_for(Duration::from_millis(1), || Ok(())).unwrap_err();
    /// release.send(()).unwrap();
    /// assert_eq!(g.wait(), Ok(()));
    /// assert!(g.try_go_for(Duration::from_secs(60), task).is_ok()); // run it after all
    /// # g.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn try_go_for<F>(&self, timeout: Duration, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        Self::start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUpAfter(timeout)), f)
    }

    /// Runs `f` as [`go`](Self::go) does, waiting until `deadline` at most for the limit to
    /// let it start. Without a limit it always starts. A past deadline starts it only if
    /// [`try_go`](Self::try_go) would.
    ///
    /// # Errors
    ///
    /// `Err(f)`, giving the task back unrun, when `deadline` passed with the limit still
    /// reached (at once with a limit of 0).
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned (the task is not counted then).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::time::{Duration, Instant};
    ///
    /// let g = Group::<()>::new();
    /// g.set_limit(Some(0));
    /// let deadline = Instant::now() + Duration::from_millis(1);
    /// assert!(g.try_go_until(deadline, || Ok(())).is_err()); // never room under a limit of 0
    /// g.set_limit(None);
    /// assert!(g.try_go_until(Instant::now(), || Ok(())).is_ok()); // room at once
    /// assert_eq!(g.wait(), Ok(()));
    /// ```
    #[track_caller]
    pub fn try_go_until<F>(&self, deadline: Instant, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        Self::start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUpAt(deadline)), f)
    }

    /// Runs `f` as [`go`](Self::go) does, waiting for the limit to let it start until `ctx`
    /// is done (Go's `Go` with the wait for a slot in a `select` on `ctx.Done()`). Without a
    /// limit it starts at once.
    ///
    /// A context that is already done fails at once, even when the limit is not reached (the
    /// cancellation came first, as in x/sync).
    ///
    /// # Errors
    ///
    /// `Err((f, error))`, giving the task back unrun with the context's error
    /// ([`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`]), when the context is
    /// done before the task could start.
    ///
    /// # Panics
    ///
    /// As [`go`](Self::go): with a limit of 0 (unless `ctx` is done already), with
    /// `errgroup: go with a limit of 0 can never start a task`; if the thread cannot be
    /// spawned (the task is not counted then).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_errgroup::Group;
    ///
    /// let (g, ctx) = Group::<&str>::with_context(&Context::background());
    /// assert!(g.go_ctx(&ctx, || Err("failed")).is_ok());
    /// ctx.wait(); // cancelled by the error
    /// let (_task, err) = g.go_ctx(&ctx, || Ok(())).unwrap_err();
    /// assert_eq!(err, ContextError::Canceled);
    /// assert_eq!(g.wait(), Err("failed"));
    /// ```
    #[track_caller]
    pub fn go_ctx<F>(&self, ctx: &Context, f: F) -> Result<(), (F, ContextError)>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        match Slot::admit_ctx(&self.shared, ctx) {
            Ok(slot) => {
                gosync_park::thread::spawn(move || slot.run(f));
                Ok(())
            }
            Err(err) => Err((f, err)),
        }
    }

    /// Runs `f` on a new thread in `slot`; gives `f` back when it was not admitted.
    fn start_if_admitted<F>(slot: Option<Slot<E>>, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let Some(slot) = slot else {
            return Err(f);
        };
        gosync_park::thread::spawn(move || slot.run(f));
        Ok(())
    }

    /// Limits how many tasks run at once to `limit` (`None`: no limit, the default). Go's
    /// `SetLimit` (whose negative `n` is `None` here).
    ///
    /// # Panics
    ///
    /// If tasks are running, with Go's text: `errgroup: modify limit while N goroutines in the
    /// group are still active`. (Go checks only while a limit is set.) The limit is left as it
    /// was. A `go` racing `set_limit` from another thread is a logic error (in Go, a data race):
    /// its task may run under the old limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let g = Group::<()>::new();
    /// g.set_limit(Some(2));
    /// let running = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..8 {
    ///     let running = Arc::clone(&running);
    ///     g.go(move || {
    ///         assert!(running.fetch_add(1, Ordering::SeqCst) < 2);
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// assert_eq!(g.wait(), Ok(()));
    /// ```
    #[track_caller]
    pub fn set_limit(&self, limit: Option<usize>) {
        self.shared.set_limit(limit);
    }

    /// Waits for every task to finish, then returns the first error a task returned since the
    /// last `wait`. Go's `Wait`. The group's context (if any) is cancelled when it returns.
    ///
    /// # Errors
    ///
    /// The first error since the last `wait`, handed over once.
    ///
    /// # Panics
    ///
    /// Re-raises the first panic of a task since the last `wait`, with its payload, after
    /// every task has finished (an error, if there also was one, waits for the next `wait`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    ///
    /// let g = Group::new();
    /// g.go(|| Err(1));
    /// assert_eq!(g.wait(), Err(1));
    /// assert_eq!(g.wait(), Ok(()));
    ///
    /// g.go(|| panic!("task failed"));
    /// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.wait()));
    /// assert!(caught.is_err());
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Result<(), E> {
        self.shared.tasks.wait();
        self.shared.finish()
    }

    /// As [`wait`](Self::wait) if every task has finished already; `None` at once otherwise.
    /// Never blocks.
    ///
    /// `None` changes nothing: the tasks go on, the first error stays for a later wait, and
    /// the group's context is not cancelled.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when every task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::sync::mpsc;
    ///
    /// let g = Group::new();
    /// let (release, released) = mpsc::channel::<()>();
    /// g.go(move || {
    ///     released.recv().unwrap();
    ///     Err("late")
    /// });
    /// assert_eq!(g.try_wait(), None); // still running
    /// release.send(()).unwrap();
    /// assert_eq!(g.wait(), Err("late"));
    /// assert_eq!(g.try_wait(), Some(Ok(())));
    /// ```
    #[must_use = "None means tasks are still running; Some holds the first error"]
    #[track_caller]
    pub fn try_wait(&self) -> Option<Result<(), E>> {
        self.wait_until(Instant::now())
    }

    /// As [`wait`](Self::wait), giving up after `timeout`: `None` when tasks are still running
    /// then, `Some` with `wait`'s result when every task finished in time. A zero timeout is
    /// [`try_wait`](Self::try_wait).
    ///
    /// Giving up changes nothing: the tasks go on, the first error stays for a later wait, and
    /// the group's context is not cancelled.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when every task finished in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::time::Duration;
    ///
    /// let g = Group::new();
    /// g.go(|| Err(7));
    /// assert_eq!(g.wait_for(Duration::from_secs(60)), Some(Err(7)));
    /// assert_eq!(g.wait_for(Duration::ZERO), Some(Ok(()))); // handed over once
    /// ```
    #[must_use = "None means tasks are still running; Some holds the first error"]
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration) -> Option<Result<(), E>> {
        self.shared
            .tasks
            .wait_for(timeout)
            .then(|| self.shared.finish())
    }

    /// As [`wait`](Self::wait), giving up at `deadline`: `None` when tasks are still running
    /// then, `Some` with `wait`'s result when every task finished in time. A past deadline is
    /// [`try_wait`](Self::try_wait).
    ///
    /// Giving up changes nothing: the tasks go on, the first error stays for a later wait, and
    /// the group's context is not cancelled.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when every task finished in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_errgroup::Group;
    /// use std::time::{Duration, Instant};
    ///
    /// let g = Group::<()>::new();
    /// g.go(|| Ok(()));
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(g.wait_until(deadline), Some(Ok(())));
    /// ```
    #[must_use = "None means tasks are still running; Some holds the first error"]
    #[track_caller]
    pub fn wait_until(&self, deadline: Instant) -> Option<Result<(), E>> {
        self.shared
            .tasks
            .wait_until(deadline)
            .then(|| self.shared.finish())
    }

    /// As [`wait`](Self::wait), giving up when `ctx` is done: `Err` with the context's error
    /// when tasks are still running then, `Ok` with `wait`'s result when every task finished
    /// first.
    ///
    /// A context that is already done fails at once, even when every task has finished (the
    /// cancellation came first, as in x/sync). Giving up changes nothing: the tasks go on, the
    /// first error stays for a later wait, and the group's context is not cancelled.
    ///
    /// Passing the group's own context makes the wait give up at the first error, and from
    /// then on every `wait_ctx` with it fails at once (that context stays cancelled) without
    /// handing the error over: follow up with [`wait`](Self::wait) (or a timed wait) to get
    /// the error and see every task finished.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before every task finished. The inner result is `wait`'s.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when every task finished first.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_errgroup::Group;
    ///
    /// let g = Group::new();
    /// g.go(|| Err("bad input"));
    /// assert_eq!(g.wait_ctx(&Context::background()), Ok(Err("bad input")));
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert_eq!(g.wait_ctx(&ctx), Err(ContextError::Canceled));
    /// ```
    #[track_caller]
    pub fn wait_ctx(&self, ctx: &Context) -> Result<Result<(), E>, ContextError> {
        self.shared.tasks.wait_ctx(ctx)?;
        Ok(self.shared.finish())
    }

    /// Test hook: whether a thread sleeps in a wait for the tasks. Not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    #[must_use]
    pub fn has_waiters(&self) -> bool {
        self.shared.tasks.has_waiters()
    }

    /// Test hook: how many threads sleep waiting for the limit to let a task start. Not part
    /// of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    #[must_use]
    pub fn queued_starts(&self) -> usize {
        self.shared
            .limit
            .lock()
            .as_ref()
            .map_or(0, |limit| limit.queued())
    }
}

impl<E: Send + 'static> Default for Group<E> {
    /// Same as [`Group::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Shows how many tasks are running and whether the context (if any) is cancelled.
impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("tasks", &self.shared.tasks.count())
            .field("limit", &self.shared.limit())
            .finish_non_exhaustive()
    }
}

/// The group of a [`scope`]: tasks spawned on it may borrow from outside the scope. Go's
/// `errgroup.Group` used within one function.
///
/// # Examples
///
/// ```
/// let numbers = vec![1, 2, 3];
/// let result = gosync_errgroup::scope(|g| {
///     g.go(|| if numbers.contains(&2) { Ok(()) } else { Err("no two") });
///     numbers.len()
/// });
/// assert_eq!(result, Ok(3));
/// ```
pub struct ScopedGroup<'scope, 'env, E> {
    /// `std`'s scope: loom has no scoped threads, so models use [`Group`].
    scope: &'scope std::thread::Scope<'scope, 'env>,
    shared: Arc<Shared<E>>,
}

/// Runs `f` with a [`ScopedGroup`] whose tasks may borrow from the caller, waits for every task
/// (as `std::thread::scope`), and returns `f`'s result or the first error.
///
/// # Errors
///
/// The first error a task returned (`f`'s result is then dropped).
///
/// # Panics
///
/// If `f` panics, once every task has finished, with `f`'s panic. Otherwise, if a task
/// panicked, with the first task panic's payload, once every task has finished.
///
/// # Examples
///
/// ```
/// let mut parts = vec![0; 4];
/// let result: Result<usize, std::num::ParseIntError> = gosync_errgroup::scope(|g| {
///     for (i, part) in parts.iter_mut().enumerate() {
///         g.go(move || {
///             *part = "10".parse::<i32>()? * i as i32;
///             Ok(())
///         });
///     }
///     4
/// });
/// assert_eq!(result, Ok(4));
/// assert_eq!(parts, [0, 10, 20, 30]);
///
/// let failed = gosync_errgroup::scope(|g| g.go(|| "x".parse::<i32>().map(drop)));
/// assert!(failed.is_err());
/// ```
pub fn scope<'env, E, R>(
    f: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E>) -> R,
) -> Result<R, E>
where
    E: Send + 'env,
{
    let shared = Arc::new(Shared::new(None));
    let result = std::thread::scope(|scope| {
        f(&ScopedGroup {
            scope,
            shared: Arc::clone(&shared),
        })
    });
    shared.finish().map(|()| result)
}

impl<'scope, 'env, E: Send + 'env> ScopedGroup<'scope, 'env, E> {
    /// Runs `f` on a new scoped thread as one more task; [`scope`] returns after it finished.
    /// As [`Group::go`].
    ///
    /// # Panics
    ///
    /// As [`Group::go`].
    ///
    /// # Examples
    ///
    /// See [`scope`].
    #[track_caller]
    pub fn go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'scope) {
        // Always admitted: `Wait` waits for a free slot.
        if let Some(slot) = Slot::admit(&self.shared, WhenFull::Wait) {
            self.scope.spawn(move || slot.run(f));
        }
    }

    /// Runs `f` as [`go`](Self::go) does if the limit lets it start now, and returns whether
    /// it started. As [`Group::try_go`].
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// let started = gosync_errgroup::scope(|g| {
    ///     g.set_limit(Some(0));
    ///     g.try_go(|| Err::<(), ()>(()))
    /// });
    /// assert_eq!(started, Ok(false));
    /// ```
    #[must_use = "false means the task was not started"]
    #[track_caller]
    pub fn try_go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'scope) -> bool {
        self.start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUp), f)
            .is_ok()
    }

    /// Runs `f` as [`go`](Self::go) does, waiting at most `timeout` for the limit to let it
    /// start. As [`Group::try_go_for`].
    ///
    /// # Errors
    ///
    /// `Err(f)`, giving the task back unrun, when `timeout` passed with the limit still
    /// reached (at once with a limit of 0).
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let result = gosync_errgroup::scope(|g| {
    ///     g.set_limit(Some(0));
    ///     let task = g.try_go_for(Duration::from_millis(1), || Err::<(), ()>(())).unwrap_err();
    ///     task() // run it here instead
    /// });
    /// assert_eq!(result, Ok(Err(())));
    /// ```
    #[track_caller]
    pub fn try_go_for<F>(&self, timeout: Duration, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        self.start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUpAfter(timeout)), f)
    }

    /// Runs `f` as [`go`](Self::go) does, waiting until `deadline` at most for the limit to
    /// let it start. As [`Group::try_go_until`].
    ///
    /// # Errors
    ///
    /// `Err(f)`, giving the task back unrun, when `deadline` passed with the limit still
    /// reached (at once with a limit of 0).
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let mut hits = 0;
    /// let result: Result<(), ()> = gosync_errgroup::scope(|g| {
    ///     let started = g.try_go_until(Instant::now(), || {
    ///         hits += 1;
    ///         Ok(())
    ///     });
    ///     assert!(started.is_ok()); // no limit: room at once, past deadline or not
    /// });
    /// assert_eq!((result, hits), (Ok(()), 1));
    /// ```
    #[track_caller]
    pub fn try_go_until<F>(&self, deadline: Instant, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        self.start_if_admitted(Slot::admit(&self.shared, WhenFull::GiveUpAt(deadline)), f)
    }

    /// Runs `f` as [`go`](Self::go) does, waiting for the limit to let it start until `ctx`
    /// is done. As [`Group::go_ctx`].
    ///
    /// # Errors
    ///
    /// `Err((f, error))`, giving the task back unrun with the context's error, when the
    /// context is done before the task could start (at once when it is done already).
    ///
    /// # Panics
    ///
    /// As [`Group::go_ctx`]: with a limit of 0 (unless `ctx` is done already); if the thread
    /// cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let result = gosync_errgroup::scope(|g| {
    ///     assert!(g.go_ctx(&ctx, || Ok::<(), ()>(())).is_ok());
    ///     cancel.cancel();
    ///     g.go_ctx(&ctx, || Ok(())).map_err(|(_task, err)| err)
    /// });
    /// assert_eq!(result, Ok(Err(ContextError::Canceled)));
    /// ```
    #[track_caller]
    pub fn go_ctx<F>(&self, ctx: &Context, f: F) -> Result<(), (F, ContextError)>
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        match Slot::admit_ctx(&self.shared, ctx) {
            Ok(slot) => {
                self.scope.spawn(move || slot.run(f));
                Ok(())
            }
            Err(err) => Err((f, err)),
        }
    }

    /// Runs `f` on a new scoped thread in `slot`; gives `f` back when it was not admitted.
    fn start_if_admitted<F>(&self, slot: Option<Slot<E>>, f: F) -> Result<(), F>
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        let Some(slot) = slot else {
            return Err(f);
        };
        self.scope.spawn(move || slot.run(f));
        Ok(())
    }

    /// Limits how many tasks of the scope run at once. As [`Group::set_limit`].
    ///
    /// # Panics
    ///
    /// As [`Group::set_limit`]: if tasks are running.
    ///
    /// # Examples
    ///
    /// ```
    /// let result: Result<(), ()> = gosync_errgroup::scope(|g| {
    ///     g.set_limit(Some(1));
    ///     for _ in 0..4 {
    ///         g.go(|| Ok(())); // one at a time
    ///     }
    /// });
    /// assert_eq!(result, Ok(()));
    /// ```
    #[track_caller]
    pub fn set_limit(&self, limit: Option<usize>) {
        self.shared.set_limit(limit);
    }
}

impl<E> fmt::Debug for ScopedGroup<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGroup")
            .field("tasks", &self.shared.tasks.count())
            .field("limit", &self.shared.limit())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(Group<String>: Send, Sync, Default, fmt::Debug);
    static_assertions::assert_impl_all!(
        ScopedGroup<'static, 'static, String>: Send, Sync, fmt::Debug
    );
    static_assertions::assert_not_impl_any!(Group<std::rc::Rc<u8>>: Send, Sync);

    /// A start whose count-in panics (here the WaitGroup's overflow, standing for any misuse
    /// it reports) gives its permit back, and the panic points at the caller.
    #[test]
    #[cfg(not(gosync_loom))]
    fn a_start_refused_by_the_wait_group_gives_its_permit_back() {
        let g = Group::<()>::new();
        g.set_limit(Some(1));
        let full = isize::try_from(i32::MAX).unwrap();
        g.shared.tasks.add(full);
        let permits = g.shared.limit.lock().clone().unwrap();
        let (ctx, _cancel) = Context::background().with_cancel();
        let (ok, now, zero) = (|| Ok(()), Instant::now(), Duration::ZERO);
        let starts: [(u32, &dyn Fn()); 5] = [
            (line!(), &|| g.go(ok)),
            (line!(), &|| assert!(g.try_go(ok))),
            (line!(), &|| assert!(g.try_go_for(zero, ok).is_ok())),
            (line!(), &|| assert!(g.try_go_until(now, ok).is_ok())),
            (line!(), &|| assert!(g.go_ctx(&ctx, ok).is_ok())),
        ];
        for (line, start) in starts {
            let (file, at, message) = gosync_testkit::panic_site(start);
            assert_eq!(message, "sync: WaitGroup counter overflow");
            assert_eq!((file.as_str(), at), (file!(), line));
            assert_eq!(
                permits.available(),
                1,
                "the permit of line {line} came back"
            );
        }
        g.shared.tasks.add(-full);
        assert_eq!(g.wait(), Ok(()));
    }
}
