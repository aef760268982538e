//! The `_ctx` variants of [`RwMutex`]'s waits: they give up when a [`Context`] is done.

use gosync_context::{Context, ContextError};

use crate::raw::GiveUp;
use crate::{RwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard, RwMutexWriteGuard};

impl<T: ?Sized> RwMutex<T> {
    /// Locks for reading, giving up when `ctx` is done (Go's `RLock` with a context's
    /// cancellation).
    ///
    /// A context that is already done fails at once, even when the lock is free: the
    /// cancellation came first. A reader waiting when the context is cancelled (or its deadline
    /// passes) wakes at once and holds nothing.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RwMutex;
    ///
    /// let lock = RwMutex::new(1);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(*lock.read_ctx(&ctx).unwrap(), 1);
    /// cancel.cancel();
    /// assert_eq!(lock.read_ctx(&ctx).unwrap_err(), ContextError::Canceled);
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    pub fn read_ctx(&self, ctx: &Context) -> Result<RwMutexReadGuard<'_, T>, ContextError> {
        fail_if_done(ctx)?;
        match self.raw.try_lock_read_until(GiveUp::with(ctx)) {
            Some(slot) => Ok(self.read_guard(slot)),
            None => Err(gosync_park::cancelled_error(ctx)),
        }
    }

    /// Locks for writing, giving up when `ctx` is done. New readers wait while this waits, and
    /// are let in if it gives up.
    ///
    /// A context that is already done fails at once, even when the lock is free. A writer
    /// waiting when the context is done wakes at once and leaves nothing behind: the readers it
    /// held back get in.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RwMutex;
    /// use std::time::Duration;
    ///
    /// let lock = RwMutex::new(1);
    /// *lock.write_ctx(&Context::background()).unwrap() += 1;
    /// let reader = lock.read();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
    /// assert_eq!(lock.write_ctx(&ctx).unwrap_err(), ContextError::DeadlineExceeded);
    /// assert_eq!(*reader, 2);
    /// ```
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    pub fn write_ctx(&self, ctx: &Context) -> Result<RwMutexWriteGuard<'_, T>, ContextError> {
        fail_if_done(ctx)?;
        if self.raw.lock_exclusive_until(GiveUp::with(ctx)) {
            Ok(self.write_guard())
        } else {
            Err(gosync_park::cancelled_error(ctx))
        }
    }

    /// Locks for an upgradable read, giving up when `ctx` is done.
    ///
    /// A context that is already done fails at once, even when the lock is free.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RwMutex;
    ///
    /// let lock = RwMutex::new(1);
    /// let first = lock.upgradable_read_ctx(&Context::background()).unwrap();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert_eq!(lock.upgradable_read_ctx(&ctx).unwrap_err(), ContextError::Canceled);
    /// assert_eq!(*first, 1);
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    pub fn upgradable_read_ctx(
        &self,
        ctx: &Context,
    ) -> Result<RwMutexUpgradableReadGuard<'_, T>, ContextError> {
        fail_if_done(ctx)?;
        if self.raw.lock_upgradable_until(GiveUp::with(ctx)) {
            Ok(self.upgradable_guard())
        } else {
            Err(gosync_park::cancelled_error(ctx))
        }
    }
}

impl<'a, T: ?Sized> RwMutexUpgradableReadGuard<'a, T> {
    /// Turns the upgradable read into a write lock, giving up when `ctx` is done. New readers
    /// wait while it waits for the plain readers inside to leave, and are let in if it gives up.
    ///
    /// A context that is already done fails at once, even when no reader is inside.
    ///
    /// # Errors
    ///
    /// Gives the guard back, still upgradable, with the context's error
    /// ([`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard, RwMutexWriteGuard};
    ///
    /// let lock = RwMutex::new(1);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let guard = lock.upgradable_read();
    /// let mut writer = RwMutexUpgradableReadGuard::upgrade_ctx(guard, &ctx).unwrap();
    /// *writer = 2;
    /// let guard = RwMutexWriteGuard::downgrade_to_upgradable(writer);
    /// cancel.cancel();
    /// let (guard, err) = RwMutexUpgradableReadGuard::upgrade_ctx(guard, &ctx).unwrap_err();
    /// assert_eq!((*guard, err), (2, ContextError::Canceled));
    /// ```
    #[must_use = "says whether the guard was upgraded (the error gives it back)"]
    pub fn upgrade_ctx(
        guard: Self,
        ctx: &Context,
    ) -> Result<RwMutexWriteGuard<'a, T>, (Self, ContextError)> {
        if let Err(err) = fail_if_done(ctx) {
            return Err((guard, err));
        }
        // SAFETY: the guard holds the upgradable lock, which `upgrade_until` turns into the
        // exclusive lock when it returns `true`, and keeps when it returns `false`.
        unsafe { Self::upgrade_if(guard, |raw| raw.upgrade_until(GiveUp::with(ctx))) }
            .map_err(|guard| (guard, gosync_park::cancelled_error(ctx)))
    }
}

/// The rule of every `_ctx` wait: a context that is already done fails at once.
#[inline]
pub(crate) fn fail_if_done(ctx: &Context) -> Result<(), ContextError> {
    ctx.err().map_or(Ok(()), Err)
}
