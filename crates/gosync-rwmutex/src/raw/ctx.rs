//! The `_ctx` variants of [`RawRwMutex`]'s waits, as `gosync_mutex::RawMutex::lock_ctx`: they
//! give up when a [`Context`] is done, leaving the lock as if they had never been attempted.

use gosync_context::{Context, ContextError};
use gosync_park::cancelled_error;

use super::{GiveUp, RawRwMutex};
use crate::ctx::fail_if_done;

impl RawRwMutex {
    /// Takes a shared lock, giving up when `ctx` is done (cancelled, or past its deadline).
    ///
    /// A context that is already done fails at once, even when the lock is free (the
    /// cancellation came first, as in x/sync).
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken; nothing is held then.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RawRwMutex;
    ///
    /// let raw = RawRwMutex::new();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(raw.lock_shared_ctx(&ctx), Ok(()));
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// cancel.cancel();
    /// assert_eq!(raw.lock_shared_ctx(&ctx), Err(ContextError::Canceled));
    /// assert!(!raw.is_locked());
    /// ```
    #[track_caller]
    #[inline]
    pub fn lock_shared_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        fail_if_done(ctx)?;
        match self.read_until(GiveUp::with(ctx), false) {
            Some(_) => Ok(()),
            None => Err(cancelled_error(ctx)),
        }
    }

    /// Takes the exclusive lock, giving up when `ctx` is done. New readers wait while this
    /// waits; a writer that gives up lets in the readers it held back.
    ///
    /// A context that is already done fails at once, even when the lock is free.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken; nothing is held then.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RawRwMutex;
    /// use std::time::Duration;
    ///
    /// let raw = RawRwMutex::new();
    /// raw.lock_shared();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
    /// assert_eq!(raw.lock_exclusive_ctx(&ctx), Err(ContextError::DeadlineExceeded));
    /// assert!(raw.try_lock_shared(), "the writer that gave up holds no reader back");
    /// // SAFETY: two shared locks are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_shared();
    /// }
    /// ```
    #[inline]
    pub fn lock_exclusive_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        fail_if_done(ctx)?;
        if self.lock_exclusive_until(GiveUp::with(ctx)) {
            Ok(())
        } else {
            Err(cancelled_error(ctx))
        }
    }

    /// Takes an upgradable shared lock, giving up when `ctx` is done.
    ///
    /// A context that is already done fails at once, even when the lock is free.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken; nothing is held then.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RawRwMutex;
    ///
    /// let raw = RawRwMutex::new();
    /// assert_eq!(raw.lock_upgradable_ctx(&Context::background()), Ok(()));
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel(); // normally from another thread, while the call below waits
    /// assert_eq!(raw.lock_upgradable_ctx(&ctx), Err(ContextError::Canceled));
    /// // SAFETY: the first upgradable lock is held.
    /// unsafe { raw.unlock_upgradable() };
    /// ```
    #[track_caller]
    #[inline]
    pub fn lock_upgradable_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        fail_if_done(ctx)?;
        if self.lock_upgradable_until(GiveUp::with(ctx)) {
            Ok(())
        } else {
            Err(cancelled_error(ctx))
        }
    }

    /// Turns the upgradable lock into the exclusive lock, giving up when `ctx` is done (the
    /// caller then still holds the upgradable lock). New readers wait while this waits for the
    /// plain readers inside to leave, and are let in if it gives up.
    ///
    /// A context that is already done fails at once, even when no reader is inside.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the upgrade; the upgradable lock is still held then.
    ///
    /// # Safety
    ///
    /// As [`try_upgrade`](Self::try_upgrade): the caller holds the upgradable lock; on `Ok` it
    /// holds the exclusive lock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_rwmutex::RawRwMutex;
    ///
    /// let raw = RawRwMutex::new();
    /// raw.lock_upgradable();
    /// // SAFETY: the upgradable lock is held.
    /// assert_eq!(unsafe { raw.upgrade_ctx(&Context::background()) }, Ok(()));
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.downgrade_to_upgradable() };
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// // SAFETY: the upgradable lock is held.
    /// assert_eq!(unsafe { raw.upgrade_ctx(&ctx) }, Err(ContextError::Canceled));
    /// // SAFETY: the upgradable lock is still held.
    /// unsafe { raw.unlock_upgradable() };
    /// assert!(!raw.is_locked());
    /// ```
    pub unsafe fn upgrade_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        fail_if_done(ctx)?;
        // SAFETY: forwarded to the caller.
        if unsafe { self.upgrade_until(GiveUp::with(ctx)) } {
            Ok(())
        } else {
            Err(cancelled_error(ctx))
        }
    }
}
