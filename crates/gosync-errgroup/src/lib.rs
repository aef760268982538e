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

use gosync_context::{Canceler, Context};
use gosync_park::sync::{Arc, BookkeepingLock};
use gosync_semaphore::Semaphore;
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
///   panic end the process; a Rust thread's panic would otherwise vanish.
/// - [`set_limit`](Self::set_limit) panics whenever tasks are running (Go's only when a limit
///   was set), and with a limit of zero, `go` panics instead of blocking forever.
/// - Each task runs on a thread of its own (see [What a task costs](crate#what-a-task-costs)).
/// - For tasks that borrow from the caller, use [`scope`].
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

    /// Keeps the first error and cancels the context.
    fn fail(&self, error: E) {
        self.error.lock().get_or_insert(error);
        self.cancel_context();
    }

    /// Keeps the first panic and cancels the context.
    fn panicked(&self, payload: Box<dyn Any + Send>) {
        self.panic.lock().get_or_insert(payload);
        self.cancel_context();
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

/// A task's place in its group: counted in (with a permit of the limit) when the task is
/// admitted, counted out when the task has run (and reported), or when it never starts because
/// the thread could not be spawned.
struct Slot<E> {
    shared: Arc<Shared<E>>,
    /// The limit the task holds a permit of.
    limit: Option<Arc<Semaphore>>,
}

/// What `go` does when the limit is reached.
#[derive(Clone, Copy)]
enum WhenFull {
    /// Wait for a running task to finish (`go`).
    Wait,
    /// Give up (`try_go`).
    GiveUp,
}

impl<E> Slot<E> {
    /// Counts a new task in, first taking a permit of the limit, if there is one; `None` when
    /// the limit is reached and `when_full` says to give up.
    #[track_caller]
    fn admit(shared: &Arc<Shared<E>>, when_full: WhenFull) -> Option<Self> {
        let limit = shared.limit.lock().clone();
        if let Some(permits) = &limit {
            match when_full {
                WhenFull::Wait if permits.capacity() == 0 => {
                    panic!("errgroup: go with a limit of 0 can never start a task")
                }
                WhenFull::Wait => permits.acquire(1),
                WhenFull::GiveUp if !permits.try_acquire(1) => return None,
                WhenFull::GiveUp => {}
            }
        }
        shared.tasks.add(1);
        Some(Self {
            shared: Arc::clone(shared),
            limit,
        })
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
    /// it started. Go's `TryGo`. Without a limit it always starts.
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
    pub fn try_go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static) -> bool {
        let Some(slot) = Slot::admit(&self.shared, WhenFull::GiveUp) else {
            return false;
        };
        gosync_park::thread::spawn(move || slot.run(f));
        true
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
    pub fn wait(&self) -> Result<(), E> {
        self.shared.tasks.wait();
        self.shared.finish()
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
    pub fn try_go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'scope) -> bool {
        let Some(slot) = Slot::admit(&self.shared, WhenFull::GiveUp) else {
            return false;
        };
        self.scope.spawn(move || slot.run(f));
        true
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
}
