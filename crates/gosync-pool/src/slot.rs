//! One private slot: a cell that holds at most one idle object, claimed with one atomic
//! read-modify-write so that its thread, threads sharing its slot, and `clear`/`trim` on any
//! thread can all reach it without a lock.

// Notes about memory ordering: every access to the object happens under a claim, and claims
// follow each other in one chain: a claim begins with an Acquire compare-exchange and ends with
// a Release store (`FULL` after writing the object, `EMPTY` after reading it out), which the
// next claim's Acquire reads. So the object's bytes (and everything the putter wrote into the
// object) are visible to the next claimer, and a claimer's write follows the last read. The
// loads that peek at the state before claiming are Relaxed: a stale peek only sends the caller
// elsewhere (the shared queue), and the compare-exchange re-checks.

use std::mem::MaybeUninit;

use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{AtomicU8, Ordering};

/// The slot holds no object and nobody is at it.
const EMPTY: u8 = 0;
/// The slot holds an object and nobody is at it.
const FULL: u8 = 1;
/// Someone holds a [`Claim`] on the slot: it alone may read or write the object; everyone else
/// passes by.
const CLAIMED: u8 = 2;

/// A cell for one idle object with the state machine `EMPTY ⇄ CLAIMED ⇄ FULL`.
///
/// Only the holder of the [`Claim`] (the thread that moved the state to `CLAIMED`) touches
/// `value`, and it is initialised exactly when the state is `FULL`.
pub(crate) struct Slot<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the slot moves a `T` from one thread to another (hence `T: Send`) and never hands out
// a reference to it, so `T: Sync` is not needed; a claim makes every access to `value`
// exclusive (see the type's invariant).
unsafe impl<T: Send> Sync for Slot<T> {}

/// The exclusive right to a slot that holds no object: [`fill`](Self::fill) puts one in and
/// lets go, [`lend`](Self::lend) puts one in and keeps the claim; dropping the claim leaves the
/// slot empty.
pub(crate) struct Claim<'a, T> {
    slot: &'a Slot<T>,
}

/// The exclusive right to a slot and to the object in it, which stays in place while a
/// `Pooled` guard uses it: nothing is moved on the way out or back, and giving it back is a
/// plain store. Dropping it drops the object and leaves the slot empty.
pub(crate) struct Lent<'a, T> {
    slot: &'a Slot<T>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Claims the slot if nobody else holds it: with its object in place when it holds one,
    /// empty otherwise.
    #[inline]
    pub(crate) fn lend(&self) -> Option<Result<Lent<'_, T>, Claim<'_, T>>> {
        let from = self.state.load(Ordering::Relaxed);
        if from == CLAIMED {
            return None;
        }
        self.claim_from(from)?;
        Some(if from == FULL {
            Ok(Lent { slot: self })
        } else {
            Err(Claim { slot: self })
        })
    }

    /// Takes the object out, if the slot holds one and nobody else is at it.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        if self.state.load(Ordering::Relaxed) != FULL {
            return None;
        }
        self.claim_from(FULL)?;
        Some(Lent { slot: self }.take_out())
    }

    /// Puts `value` in, if the slot is empty and nobody else is at it; otherwise hands it back.
    #[inline]
    pub(crate) fn offer(&self, value: T) -> Result<(), T> {
        if self.state.load(Ordering::Relaxed) != EMPTY {
            return Err(value);
        }
        match self.claim_from(EMPTY) {
            Some(()) => {
                Claim { slot: self }.fill(value);
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Moves the state from `from` to `CLAIMED`; the caller then holds the claim.
    #[inline]
    fn claim_from(&self, from: u8) -> Option<()> {
        // Acquire: pairs with the Release store that ended the previous claim (`FULL` after a
        // write, `EMPTY` after a read or drop): the object is there to use, and the last use of
        // the cell is finished before this claim writes it.
        self.state
            .compare_exchange(from, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(drop)
    }
}

impl<'a, T> Claim<'a, T> {
    /// Puts `value` in the slot and gives up the claim.
    #[inline]
    pub(crate) fn fill(self, value: T) {
        self.lend(value).give_back();
    }

    /// Puts `value` in the slot and keeps the claim, with the object in place.
    #[inline]
    pub(crate) fn lend(self, value: T) -> Lent<'a, T> {
        let slot = std::mem::ManuallyDrop::new(self).slot;
        // SAFETY: the claim makes this thread the only one at the cell, and the slot holds no
        // object, so nothing is overwritten.
        unsafe { slot.value.mut_ptr().write(MaybeUninit::new(value)) };
        Lent { slot }
    }
}

impl<T> Drop for Claim<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: pairs with the Acquire of the next claim; the cell was not written.
        self.slot.state.store(EMPTY, Ordering::Release);
    }
}

impl<T> Lent<'_, T> {
    /// The object, in the slot.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: the claim makes this thread the only one at the cell, which holds an
        // initialised object; `&self` keeps the claim alive for the reference's lifetime.
        unsafe { (*self.slot.value.ptr()).assume_init_ref() }
    }

    /// The object, in the slot, to change.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: as in `get`, and `&mut self` makes the reference unique.
        unsafe { (*self.slot.value.mut_ptr()).assume_init_mut() }
    }

    /// Leaves the object in the slot for the next claimer and gives up the claim.
    #[inline]
    pub(crate) fn give_back(self) {
        let slot = std::mem::ManuallyDrop::new(self).slot;
        // Release: pairs with the Acquire of the next claim, publishing the object and every
        // change made to it under this claim.
        slot.state.store(FULL, Ordering::Release);
    }

    /// Moves the object out and leaves the slot empty.
    #[inline]
    pub(crate) fn take_out(self) -> T {
        let claim = Claim {
            slot: std::mem::ManuallyDrop::new(self).slot,
        };
        // SAFETY: the claim makes this thread the only one at the cell, which holds an
        // initialised object; it is moved out once, and the slot is empty from here on (the
        // claim drops as `EMPTY`).
        unsafe { claim.slot.value.ptr().read().assume_init() }
    }
}

impl<T> Drop for Lent<'_, T> {
    fn drop(&mut self) {
        // Leaves the slot empty even if the object's drop panics.
        let claim = Claim { slot: self.slot };
        // SAFETY: the claim makes this thread the only one at the cell, which holds an
        // initialised object; it is dropped once, and the slot is empty from here on.
        unsafe { (*claim.slot.value.mut_ptr()).assume_init_drop() };
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means every other access has finished and is ordered before this
        // (claims borrow the slot, so none is alive).
        if self.state.load(Ordering::Relaxed) == FULL {
            // SAFETY: `FULL` says the object is initialised, and `&mut self` that nobody else
            // can reach it; it is dropped once, here.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}
