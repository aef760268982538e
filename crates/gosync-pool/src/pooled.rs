//! `Pooled`: an object on loan from a pool, back in the pool when the guard drops.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use crate::slot::Lent;
use crate::Pool;

/// An object taken from a [`Pool`] by [`Pool::get`]; it goes back to the pool (through the
/// reset function) when the guard is dropped.
///
/// [`Pooled::into_inner`] keeps the object out of the pool instead. A guard dropped while its
/// thread panics drops its object rather than putting it back: the panic may have left the
/// object half-changed, and a reset that panicked too would abort the process.
///
/// # Examples
///
/// ```
/// let pool = gosync_pool::Pool::with_reset(String::new, String::clear);
/// let mut s = pool.get();
/// s.push_str("scratch");
/// assert_eq!(s.len(), 7);
/// drop(s); // cleared and back in the pool
/// assert_eq!(*pool.get(), "");
/// ```
#[must_use = "dropping the guard at once puts the object straight back in the pool"]
pub struct Pooled<'a, T: Send> {
    pool: &'a Pool<T>,
    /// Taken out exactly once: by `into_inner` or by `drop`.
    held: ManuallyDrop<Held<'a, T>>,
}

/// Where a guard's object is.
enum Held<'a, T> {
    /// In place in the thread's slot, which the guard has claimed: the fast path.
    Lent(Lent<'a, T>),
    /// In the guard, when the slot was claimed by someone else.
    Owned(T),
}

impl<'a, T: Send> Pooled<'a, T> {
    #[inline]
    pub(crate) fn lent(pool: &'a Pool<T>, lent: Lent<'a, T>) -> Self {
        Self {
            pool,
            held: ManuallyDrop::new(Held::Lent(lent)),
        }
    }

    #[inline]
    pub(crate) fn owned(pool: &'a Pool<T>, value: T) -> Self {
        Self {
            pool,
            held: ManuallyDrop::new(Held::Owned(value)),
        }
    }

    /// The object, kept out of the pool: Go's `Get` without the `Put`.
    ///
    /// An associated function (`Pooled::into_inner(guard)`), so that it does not hide a method
    /// of `T` of the same name.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_pool::{Pool, Pooled};
    ///
    /// let pool = Pool::new(|| vec![1, 2, 3]);
    /// let v: Vec<i32> = Pooled::into_inner(pool.get());
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    #[inline]
    pub fn into_inner(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so `Pooled::drop` does not take `held` again.
        match unsafe { ManuallyDrop::take(&mut this.held) } {
            Held::Lent(lent) => lent.take_out(),
            Held::Owned(value) => value,
        }
    }
}

impl<T: Send> Drop for Pooled<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `into_inner` skips it: `held` is taken exactly once.
        let held = unsafe { ManuallyDrop::take(&mut self.held) };
        // If the reset panics, the object drops as the panic leaves (a lent one leaves its
        // slot empty).
        match held {
            Held::Lent(mut lent) if !std::thread::panicking() => {
                self.pool.reset(lent.get_mut());
                lent.give_back();
            }
            // Kept out of line, so that the common case above stays small enough to inline.
            held => give_back_slow(self.pool, held),
        }
    }
}

/// An object the guard held outside the slot, or any object while its thread panics (which is
/// dropped: a lent one leaves its slot empty).
#[cold]
#[inline(never)]
fn give_back_slow<T: Send>(pool: &Pool<T>, held: Held<'_, T>) {
    if let (Held::Owned(mut value), false) = (held, std::thread::panicking()) {
        pool.reset(&mut value);
        pool.put_reset(value);
    }
}

impl<T: Send> Deref for Pooled<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        match &*self.held {
            Held::Lent(lent) => lent.get(),
            Held::Owned(value) => value,
        }
    }
}

impl<T: Send> DerefMut for Pooled<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        match &mut *self.held {
            Held::Lent(lent) => lent.get_mut(),
            Held::Owned(value) => value,
        }
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Send + fmt::Display> fmt::Display for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
