//! [`OnceCell`]: a value written once, read without locking.

use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};

use gosync_park::cell::UnsafeCell;

use crate::raw::{OnPanic, RawOnce};

/// A cell written at most once, then read by any thread without locking: std's `OnceLock` on
/// gosync's futex waits, the value-carrying side of Go's `sync.Once`.
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
/// # Differences from std
///
/// The same contract as [`std::sync::OnceLock`], with `get_or_try_init` on stable.
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
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(f())) {
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
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.initialize(f)
    }

    #[cold]
    fn initialize<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        let mut f = Some(f);
        let mut error = None;
        self.once.call(OnPanic::Retry, &mut || {
            match (f.take().expect("the init function runs at most once"))() {
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
        match error {
            Some(e) => Err(e),
            // SAFETY: `call` returned without our function failing, so the word is COMPLETE
            // and the value was written before the Release that our Acquire observed.
            None => Ok(unsafe { self.get_unchecked() }),
        }
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
