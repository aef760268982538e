//! [`OnceCell`]: a value written once, read without locking.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::cell::UnsafeCell;
use gosync_park::Cancellation;

use crate::raw::{OnPanic, RawOnce};

/// A cell written at most once, then read by any thread without locking: std's `OnceLock` on
/// gosync's wait layer, the value-carrying side of Go's `sync.Once`.
///
/// [`get_or_init`](Self::get_or_init) runs its function in one thread while racing callers
/// sleep until the value is there, then all get the same `&T`. Once set, [`get`](Self::get) is one
/// atomic load.
///
/// # Differences from Go
///
/// Go has no cell type: a `sync.Once` guards a variable beside it, or `sync.OnceValue` wraps a
/// function. Unlike [`Once`](crate::Once), a panicking init function does **not** fill the cell:
/// it stays empty and a waiting caller runs its own function (a value cannot be made up out of a
/// panic). Initialising the cell from inside its own init function deadlocks, as in Go.
///
/// # Bounded waits
///
/// [`get_or_init`](Self::get_or_init), [`get_or_try_init`](Self::get_or_try_init) and
/// [`set`](Self::set) wait only behind another thread that is running its init function. Both
/// init methods have gosync's variants of that wait: `try_` never waits, `try_.._for` and
/// `try_.._until` give up at a deadline, `.._ctx` when a [`Context`] is done. Each runs its own
/// function when the cell is empty and nobody else is initialising it (however long that takes:
/// it is the caller's own code), and gives the function back unrun when it gives up.
///
/// | waits as long as it takes | never waits | gives up at a deadline | gives up on a context |
/// | --- | --- | --- | --- |
/// | [`get_or_init`](Self::get_or_init) | [`try_get_or_init`](Self::try_get_or_init) | [`try_get_or_init_for`](Self::try_get_or_init_for), [`try_get_or_init_until`](Self::try_get_or_init_until) | [`get_or_init_ctx`](Self::get_or_init_ctx) |
/// | [`get_or_try_init`](Self::get_or_try_init) | [`try_get_or_try_init`](Self::try_get_or_try_init) | [`try_get_or_try_init_for`](Self::try_get_or_try_init_for), [`try_get_or_try_init_until`](Self::try_get_or_try_init_until) | [`get_or_try_init_ctx`](Self::get_or_try_init_ctx) |
///
/// These eight are the smallest set that bounds every wait of the cell: `set(value)` is
/// `get_or_init(|| value)`, so a bounded `set` is a `get_or_init` variant with `|| value` (the
/// function ran exactly when `value` went in, and calling the function given back returns
/// `value`). One difference: on a cell already full, `set` gives `value` back, while the
/// variant returns the stored value and drops the function with `value` in it; a caller that
/// needs to know whether its value went in records it in the function (see
/// [`try_get_or_init_for`](Self::try_get_or_init_for)). A wait for a value that only other threads set (std's `OnceLock::wait`) would be a
/// new operation, not a variant of one; it is left out.
///
/// # Differences from std
///
/// The same contract as [`std::sync::OnceLock`], with `get_or_try_init` on stable, and the
/// bounded waits above, which std lacks.
///
/// # Examples
///
/// ```
/// use gosync_once::OnceCell;
///
/// static CONFIG: OnceCell<String> = OnceCell::new();
///
/// let values: Vec<&'static str> = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..4)
///         .map(|i| s.spawn(move || CONFIG.get_or_init(|| format!("made by {i}")).as_str()))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert!(values.iter().all(|v| *v == values[0]));
/// ```
pub struct OnceCell<T> {
    once: RawOnce,
    value: UnsafeCell<MaybeUninit<T>>,
    /// The cell owns a `T` (for drop check).
    _owns: PhantomData<T>,
}

// SAFETY: sharing the cell shares `&T` (so `T: Sync`) and lets any thread write the value that
// another thread later drops (so `T: Send`); the once word orders the single write before every
// read.
unsafe impl<T: Send + Sync> Sync for OnceCell<T> {}
// SAFETY: moving the cell moves the `T` it may hold.
unsafe impl<T: Send> Send for OnceCell<T> {}

impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceCell<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceCell<T> {}

impl<T> OnceCell<T> {
    gosync_park::const_unless_loom! {
        /// Creates an empty cell.
        ///
        /// # Examples
        ///
        /// ```
        /// static CELL: gosync_once::OnceCell<u32> = gosync_once::OnceCell::new();
        /// assert_eq!(CELL.get(), None);
        /// ```
        #[must_use]
        pub const fn new() -> Self {
            Self {
                once: RawOnce::new(),
                value: UnsafeCell::new(MaybeUninit::uninit()),
                _owns: PhantomData,
            }
        }
    }

    /// The value, if the cell has been set. Never blocks: while another thread is initialising
    /// the cell, this returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// assert_eq!(cell.get(), None);
    /// cell.set(7).unwrap();
    /// assert_eq!(cell.get(), Some(&7));
    /// ```
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.once.is_complete() {
            // SAFETY: the cell is complete (and the Acquire load saw the write of the value).
            Some(unsafe { self.get_unchecked() })
        } else {
            None
        }
    }

    /// Test hook: whether a thread sleeps waiting for the init function of another. Not part
    /// of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn has_sleepers(&self) -> bool {
        self.once.has_sleepers()
    }

    /// A mutable reference to the value, if the cell has been set.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = gosync_once::OnceCell::from(1);
    /// *cell.get_mut().unwrap() += 1;
    /// assert_eq!(cell.get(), Some(&2));
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.once.is_complete_mut() {
            // SAFETY: the cell is complete, so the value is initialised; `&mut self` is exclusive.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// The value, running `f` to make it if the cell is empty. If another thread is running its
    /// function, this one sleeps until that finishes and returns its value.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic continues in this thread and the cell stays empty: a caller that
    /// was waiting (or the next caller) runs its own function. Calling `get_or_init` on the same
    /// cell from inside `f` deadlocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// assert_eq!(*cell.get_or_init(|| 1), 1);
    /// assert_eq!(*cell.get_or_init(|| 2), 1);
    /// ```
    #[inline]
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, Infallible>(f())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The value, running `f` to make it if the cell is empty; an error from `f` leaves the cell
    /// empty, so that the next call tries again.
    ///
    /// # Errors
    ///
    /// The error `f` returned, when this call ran `f` and it failed. A thread that was waiting
    /// for the failed call then runs its own function.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// assert_eq!(cell.get_or_try_init(|| "abc".parse::<u32>()).is_err(), true);
    /// assert_eq!(cell.get(), None);
    /// assert_eq!(cell.get_or_try_init(|| "12".parse::<u32>()), Ok(&12));
    /// ```
    #[inline]
    pub fn get_or_try_init<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        self.get_or_try_init_by(None, None, f, |f| f())
            .unwrap_or_else(|_| {
                unreachable!("a wait without a deadline or a context never gives up")
            })
    }

    /// As [`get_or_init`](Self::get_or_init), but never waits: when another thread is
    /// initialising the cell, gives `f` back unrun.
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was running its init function.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// assert_eq!(cell.try_get_or_init(|| 1).ok(), Some(&1));
    /// assert_eq!(cell.try_get_or_init(|| 2).ok(), Some(&1));
    /// ```
    pub fn try_get_or_init<F: FnOnce() -> T>(&self, f: F) -> Result<&T, F> {
        // A full cell costs one load, as `get`: the clock is read on the way to the init only.
        if let Some(value) = self.get() {
            return Ok(value);
        }
        Self::infallible(self.initialize(Some(Instant::now()), None, f, |f| Ok(f())))
    }

    /// As [`get_or_init`](Self::get_or_init), but a wait behind another thread's init function
    /// gives up after `timeout`, giving `f` back unrun. A zero timeout is
    /// [`try_get_or_init`](Self::try_get_or_init).
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was still running its init function at the deadline.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// A bounded `set`: the function given back returns the value that did not go in, and
    /// the function records whether it ran (on a full cell it is dropped unrun, with the value
    /// in it).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// for attempt in ["config", "late"] {
    ///     let value = String::from(attempt);
    ///     let mut went_in = false;
    ///     match cell.try_get_or_init_for(Duration::from_secs(1), || {
    ///         went_in = true;
    ///         value
    ///     }) {
    ///         Ok(stored) => assert_eq!(stored, "config"),
    ///         Err(give_back) => drop(give_back()), // still initialising elsewhere after 1 s
    ///     }
    ///     assert_eq!(went_in, attempt == "config");
    /// }
    /// ```
    pub fn try_get_or_init_for<F: FnOnce() -> T>(&self, timeout: Duration, f: F) -> Result<&T, F> {
        let deadline = gosync_park::deadline_after(timeout);
        Self::infallible(self.get_or_try_init_by(deadline, None, f, |f| Ok(f())))
    }

    /// As [`get_or_init`](Self::get_or_init), but a wait behind another thread's init function
    /// gives up at `deadline`, giving `f` back unrun. A past deadline is
    /// [`try_get_or_init`](Self::try_get_or_init).
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was still running its init function at the deadline.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(cell.try_get_or_init_until(deadline, || 5).ok(), Some(&5));
    /// ```
    pub fn try_get_or_init_until<F: FnOnce() -> T>(
        &self,
        deadline: Instant,
        f: F,
    ) -> Result<&T, F> {
        Self::infallible(self.get_or_try_init_by(Some(deadline), None, f, |f| Ok(f())))
    }

    /// As [`get_or_init`](Self::get_or_init), but a wait behind another thread's init function
    /// gives up when `ctx` is done, giving `f` back unrun.
    ///
    /// A context that is already done fails at once, even when the cell holds a value (the
    /// cancellation came first, as in x/sync).
    ///
    /// # Errors
    ///
    /// `Err((f, error))` with the context's error ([`ContextError::Canceled`] or
    /// [`ContextError::DeadlineExceeded`]) when it is done before the value is there.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(cell.get_or_init_ctx(&ctx, || 3).ok(), Some(&3));
    /// cancel.cancel();
    /// let (_f, err) = cell.get_or_init_ctx(&ctx, || 4).unwrap_err();
    /// assert_eq!(err, ContextError::Canceled);
    /// ```
    pub fn get_or_init_ctx<F: FnOnce() -> T>(
        &self,
        ctx: &Context,
        f: F,
    ) -> Result<&T, (F, ContextError)> {
        Self::infallible(self.get_or_try_init_with_ctx(ctx, f, |f| Ok(f())))
    }

    /// As [`get_or_try_init`](Self::get_or_try_init), but never waits: when another thread is
    /// initialising the cell, gives `f` back unrun.
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was running its init function; otherwise `Ok` with what
    /// `get_or_try_init` returns.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::<u32>::new();
    /// let parsed = cell.try_get_or_try_init(|| "x".parse::<u32>()).ok().unwrap();
    /// assert!(parsed.is_err());
    /// assert_eq!(cell.get(), None); // the error left it empty
    /// ```
    pub fn try_get_or_try_init<E, F>(&self, f: F) -> Result<Result<&T, E>, F>
    where
        F: FnOnce() -> Result<T, E>,
    {
        // A full cell costs one load, as `get`: the clock is read on the way to the init only.
        if let Some(value) = self.get() {
            return Ok(Ok(value));
        }
        self.initialize(Some(Instant::now()), None, f, |f| f())
    }

    /// As [`get_or_try_init`](Self::get_or_try_init), but a wait behind another thread's init
    /// function gives up after `timeout`, giving `f` back unrun.
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was still running its init function at the deadline;
    /// otherwise `Ok` with what `get_or_try_init` returns.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// let result = cell.try_get_or_try_init_for(Duration::from_secs(1), || "7".parse::<u8>());
    /// assert_eq!(result.ok(), Some(Ok(&7)));
    /// ```
    pub fn try_get_or_try_init_for<E, F>(&self, timeout: Duration, f: F) -> Result<Result<&T, E>, F>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.get_or_try_init_by(gosync_park::deadline_after(timeout), None, f, |f| f())
    }

    /// As [`get_or_try_init`](Self::get_or_try_init), but a wait behind another thread's init
    /// function gives up at `deadline`, giving `f` back unrun.
    ///
    /// # Errors
    ///
    /// `Err(f)` when another thread was still running its init function at the deadline;
    /// otherwise `Ok` with what `get_or_try_init` returns.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// let result = cell.try_get_or_try_init_until(Instant::now(), || Ok::<_, ()>(1));
    /// assert_eq!(result.ok(), Some(Ok(&1))); // nobody else initialising: runs at once
    /// ```
    pub fn try_get_or_try_init_until<E, F>(
        &self,
        deadline: Instant,
        f: F,
    ) -> Result<Result<&T, E>, F>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.get_or_try_init_by(Some(deadline), None, f, |f| f())
    }

    /// As [`get_or_try_init`](Self::get_or_try_init), but a wait behind another thread's init
    /// function gives up when `ctx` is done, giving `f` back unrun.
    ///
    /// A context that is already done fails at once, even when the cell holds a value.
    ///
    /// # Errors
    ///
    /// `Err((f, error))` with the context's error when it is done before the value is there;
    /// otherwise `Ok` with what `get_or_try_init` returns.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init), when it runs `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::Context;
    ///
    /// let cell = gosync_once::OnceCell::new();
    /// let result = cell.get_or_try_init_ctx(&Context::background(), || Err::<u8, _>("no"));
    /// assert_eq!(result.ok(), Some(Err("no")));
    /// ```
    #[allow(clippy::type_complexity)] // the init result inside the wait's
    pub fn get_or_try_init_ctx<E, F>(
        &self,
        ctx: &Context,
        f: F,
    ) -> Result<Result<&T, E>, (F, ContextError)>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.get_or_try_init_with_ctx(ctx, f, |f| f())
    }

    /// The `_ctx` forms: a context that is already done fails at once.
    fn get_or_try_init_with_ctx<F, E>(
        &self,
        ctx: &Context,
        f: F,
        run: impl FnOnce(F) -> Result<T, E>,
    ) -> Result<Result<&T, E>, (F, ContextError)> {
        if let Some(err) = ctx.err() {
            return Err((f, err));
        }
        self.get_or_try_init_by(None, Some(ctx), f, run)
            .map_err(|f| (f, gosync_park::cancelled_error(ctx)))
    }

    /// Every init: the value if the cell holds one; else `run(f)` if nobody else is
    /// initialising; else a wait behind that thread, which gives `f` back unrun at `deadline`
    /// or when `cancel` is done (a cell completed by then gives its value).
    #[inline]
    fn get_or_try_init_by<F, E>(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
        f: F,
        run: impl FnOnce(F) -> Result<T, E>,
    ) -> Result<Result<&T, E>, F> {
        if let Some(value) = self.get() {
            return Ok(Ok(value));
        }
        self.initialize(deadline, cancel, f, run)
    }

    #[cold]
    fn initialize<F, E>(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
        f: F,
        run: impl FnOnce(F) -> Result<T, E>,
    ) -> Result<Result<&T, E>, F> {
        let mut f = Some(f);
        let mut run = Some(run);
        let mut error = None;
        let finished = self.once.call(OnPanic::Retry, deadline, cancel, &mut || {
            let (f, run) = (f.take(), run.take());
            match (run.expect("the init function runs at most once"))(f.expect("unrun")) {
                Ok(value) => {
                    // SAFETY: this thread moved the word to RUNNING, so it alone accesses the
                    // value until it publishes COMPLETE; nobody reads an incomplete cell.
                    unsafe { (*self.value.mut_ptr()).write(value) };
                    true
                }
                Err(e) => {
                    error = Some(e);
                    false
                }
            }
        });
        if let Some(e) = error {
            return Ok(Err(e));
        }
        if !finished {
            return Err(f.expect("a wait that gave up ran nothing"));
        }
        // SAFETY: `call` finished without our function failing, so the word is COMPLETE and
        // the value was written before the Release that our Acquire observed.
        Ok(Ok(unsafe { self.get_unchecked() }))
    }

    /// A result whose init could not fail.
    fn infallible<R>(result: Result<Result<&T, Infallible>, R>) -> Result<&T, R> {
        result.map(|init| match init {
            Ok(value) => value,
            Err(never) => match never {},
        })
    }

    /// Sets the value if the cell is empty. If another thread is initialising it, waits for that
    /// first.
    ///
    /// # Errors
    ///
    /// `Err(value)`, giving the value back, when the cell already holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("taken once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// Takes the value out, leaving the cell empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = gosync_once::OnceCell::from("x");
    /// assert_eq!(cell.take(), Some("x"));
    /// assert_eq!(cell.get(), None);
    /// ```
    pub fn take(&mut self) -> Option<T> {
        if self.once.is_complete_mut() {
            self.once.reset_mut();
            // SAFETY: the cell was complete, so the value is initialised; the word now says
            // empty, so the value is not read or dropped again.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }

    /// The value, if the cell holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gosync_once::OnceCell::new();
    /// cell.set(String::from("v")).unwrap();
    /// assert_eq!(cell.into_inner().as_deref(), Some("v"));
    /// ```
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// # Safety
    ///
    /// The cell is complete, observed by an Acquire load of the word in this thread.
    #[inline]
    unsafe fn get_unchecked(&self) -> &T {
        // SAFETY: complete cells hold an initialised value that is never written again while
        // shared; the caller's Acquire load ordered its write before this read.
        unsafe { (*self.value.ptr()).assume_init_ref() }
    }
}

impl<T> Drop for OnceCell<T> {
    fn drop(&mut self) {
        if self.once.is_complete_mut() {
            // SAFETY: complete means initialised; this is the last access.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for OnceCell<T> {
    /// An empty cell, as [`OnceCell::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    /// A cell that already holds `value`.
    fn from(value: T) -> Self {
        Self {
            once: RawOnce::new_complete(),
            value: UnsafeCell::new(MaybeUninit::new(value)),
            _owns: PhantomData,
        }
    }
}

impl<T: Clone> Clone for OnceCell<T> {
    /// A new cell holding a clone of this one's value, or an empty cell.
    fn clone(&self) -> Self {
        match self.get() {
            Some(value) => Self::from(value.clone()),
            None => Self::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceCell<T> {
    /// Two cells are equal when both are empty or both hold equal values.
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceCell<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceCell");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
