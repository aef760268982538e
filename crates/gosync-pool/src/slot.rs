//! One private slot: a cell that holds at most one idle object, claimed with one atomic
//! read-modify-write so that its thread, threads sharing its stripe, and `clear`/`trim` on any
//! thread can all reach it without a lock.

// Notes about memory ordering: the object is handed from the thread that fills the slot to the
// thread that empties it. Filling writes the object and then stores `FULL` with Release;
// emptying claims the slot with an Acquire compare-exchange from `FULL`, so the object's bytes
// (and everything the putter wrote into the object) are visible before they are read. The other
// direction is the same: emptying reads the object out and then stores `EMPTY` with Release; the
// next filler's Acquire claim from `EMPTY` orders its write after that read. The plain loads
// that peek at the state before claiming are Relaxed: a stale peek only sends the caller to the
// shared queue, and the claim re-checks.

use std::mem::MaybeUninit;

use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{AtomicU8, Ordering};

/// The slot holds no object; whoever claims it from here may write one.
const EMPTY: u8 = 0;
/// The slot holds an object; whoever claims it from here may read it out.
const FULL: u8 = 1;
/// A thread has claimed the slot and is writing or reading the object; everyone else passes by.
const BUSY: u8 = 2;

/// A cell for one idle object with the state machine `EMPTY → BUSY → FULL → BUSY → EMPTY`.
///
/// Only the thread that moved the state to `BUSY` touches `value`, and it is initialised exactly
/// when the state is `FULL`.
pub(crate) struct Slot<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the slot moves a `T` from one thread to another (hence `T: Send`) and never hands out
// a reference to it, so `T: Sync` is not needed; the `BUSY` claim makes every access to `value`
// exclusive (see the type's invariant).
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Takes the object out, if the slot holds one and nobody else is at it.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        if self.state.load(Ordering::Relaxed) != FULL {
            return None;
        }
        // Acquire: pairs with the Release store of `FULL` in `offer`, so the object is there.
        self.state
            .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: the claim from `FULL` makes this thread the only one at `value`, and `FULL`
        // says it holds an initialised object, which is moved out exactly once: the state goes
        // to `EMPTY` next.
        let value = unsafe { self.value.ptr().read().assume_init() };
        // Release: pairs with the Acquire claim in `offer`, so the next write follows this read.
        self.state.store(EMPTY, Ordering::Release);
        Some(value)
    }

    /// Puts `value` in, if the slot is empty and nobody else is at it; otherwise hands it back.
    #[inline]
    pub(crate) fn offer(&self, value: T) -> Result<(), T> {
        if self.state.load(Ordering::Relaxed) != EMPTY {
            return Err(value);
        }
        // Acquire: pairs with the Release store of `EMPTY` in `take`: that read is finished.
        if self
            .state
            .compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the claim from `EMPTY` makes this thread the only one at `value`, and `EMPTY`
        // says it holds nothing that this write could leak.
        unsafe { self.value.mut_ptr().write(MaybeUninit::new(value)) };
        // Release: pairs with the Acquire claim in `take`, publishing the object.
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means every other access has finished and is ordered before this.
        if self.state.load(Ordering::Relaxed) == FULL {
            // SAFETY: `FULL` says the object is initialised, and `&mut self` that nobody else
            // can reach it; it is dropped once, here.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}
