//! Word waits: sleep while an `AtomicU32` holds a value, as a futex does.
//!
//! The cheap path for untimed waits (a `Once` being run, a `WaitGroup` draining): normally a
//! futex through `atomic-wait`, after the same adaptive spin as [`park`](crate::park). Under loom,
//! which cannot model a futex, a word wait is a [`park`](crate::park) on the word's address that
//! validates the value under the queue lock, and a wake is an unpark of that key.
//!
//! A word that is waited on with [`wait`] must be woken with [`wake_one`] / [`wake_all`]; the two
//! mechanisms are not interchangeable.

use crate::facade::sync::{AtomicU32, Ordering};
use crate::spin::AdaptiveSpin;

/// Blocks while `word` holds `expected`. Returns at once if it does not. May return spuriously:
/// callers re-check in a loop.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let word = Arc::new(AtomicU32::new(0));
/// let setter = {
///     let word = Arc::clone(&word);
///     std::thread::spawn(move || {
///         word.store(1, Ordering::Release);
///         gosync_park::wake_all(&*word);
///     })
/// };
/// while word.load(Ordering::Acquire) == 0 {
///     gosync_park::wait(&word, 0);
/// }
/// setter.join().unwrap();
/// ```
#[inline]
pub fn wait(word: &AtomicU32, expected: u32) {
    // Acquire: the caller re-checks its condition after this returns; pairs with whatever
    // Release store changed the word.
    if let Err(spin) = AdaptiveSpin::spin(|| word.load(Ordering::Acquire) != expected) {
        sleep(word, expected);
        spin.woken_after_sleep();
    }
}

#[cfg(not(gosync_loom))]
fn sleep(word: &AtomicU32, expected: u32) {
    atomic_wait::wait(word, expected);
}

#[cfg(gosync_loom)]
fn sleep(word: &AtomicU32, expected: u32) {
    crate::park(
        word as *const AtomicU32 as usize,
        crate::ParkOptions::default(),
        || word.load(Ordering::Relaxed) == expected,
        || {},
        |_, _| {},
    );
}

/// Wakes one thread blocked in [`wait`] on `word`.
///
/// Takes a pointer, as a futex does: waking is allowed after the word may have been freed
/// (the last thing a releasing thread does), and touches no memory at that address.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let word = AtomicU32::new(0);
/// word.store(1, Ordering::Release);
/// gosync_park::wake_one(&word); // nobody waits: a no-op
/// gosync_park::wait(&word, 0); // the value differs: returns at once
/// ```
#[inline]
pub fn wake_one(word: *const AtomicU32) {
    #[cfg(not(gosync_loom))]
    atomic_wait::wake_one(word);
    #[cfg(gosync_loom)]
    crate::unpark_one(word as usize, |_| 0);
}

/// Wakes every thread blocked in [`wait`] on `word`. Takes a pointer for the reason given on
/// [`wake_one`]. See the example on [`wait`].
#[inline]
pub fn wake_all(word: *const AtomicU32) {
    #[cfg(not(gosync_loom))]
    atomic_wait::wake_all(word);
    #[cfg(gosync_loom)]
    crate::unpark_all(word as usize, 0);
}
