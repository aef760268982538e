//! Deadlines and waiting time: every timed wait in gosync asks these, never the clock itself, so
//! that one rule holds everywhere, loom's included (see [`model`](crate::model)).

use std::time::{Duration, Instant};

/// The deadline `timeout` from now, or `None` when that is too far to represent (wait forever).
///
/// Every `try_*_for(timeout)` in gosync turns its timeout into a deadline with this.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert!(gosync_park::deadline_after(Duration::from_secs(1)).is_some());
/// assert!(gosync_park::deadline_after(Duration::MAX).is_none());
/// ```
#[inline]
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `deadline` has passed: the check a primitive makes before it waits (a past deadline
/// only takes what is free at once) and between waits.
///
/// Under loom this reads the real clock as well, so a model says "already past" with
/// `Instant::now()` (the call must not wait) and "fires at some point of the race" with a far
/// deadline: inside [`park`](crate::park), under loom, every deadline fires at the wait's first
/// look (see [`model`](crate::model)).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// assert!(gosync_park::deadline_passed(Instant::now()));
/// assert!(!gosync_park::deadline_passed(Instant::now() + Duration::from_secs(60)));
/// ```
#[inline]
pub fn deadline_passed(deadline: Instant) -> bool {
    Instant::now() >= deadline
}

/// Whether a parked thread's `deadline` has come by `now` (a clock reading it made): normally
/// when `now` has reached it; under loom, which has no time, always, so that a timed wait models
/// "the timeout fires at any point of the race" (see [`model`](crate::model)).
#[inline]
pub(crate) fn deadline_fired(deadline: Instant, now: Instant) -> bool {
    crate::model::IS_LOOM || now >= deadline
}

/// The earlier of two optional deadlines, `None` meaning "never".
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// let later = now + Duration::from_secs(1);
/// assert_eq!(gosync_park::earliest_deadline(Some(later), Some(now)), Some(now));
/// assert_eq!(gosync_park::earliest_deadline(None, Some(later)), Some(later));
/// assert_eq!(gosync_park::earliest_deadline(None, None), None);
/// ```
#[inline]
pub fn earliest_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How long a waiter may go without the lock it waits for before the lock is handed to it
/// directly (Go's `starvationThresholdNs`): the starvation mode of gosync's mutex and of a map's
/// chain lock. Measured with [`WaitClock`], which counts wake-ups instead under loom.
///
/// # Examples
///
/// ```
/// use gosync_park::{WaitClock, STARVATION_THRESHOLD};
///
/// let mut clock = WaitClock::start();
/// // Woken at once: not starving yet.
/// assert!(!clock.woken_after(STARVATION_THRESHOLD * 60_000));
/// ```
pub const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// How long a waiter has been waiting, from its first park: what a primitive's fairness rule
/// measures (Go's mutex switches to starvation mode after a waiter waited 1 ms).
///
/// Under loom, which has no time, a waiter counts as having waited long from its
/// [`model::LONG_WAIT_WAKE`](crate::model::LONG_WAIT_WAKE)th wake-up on, so that models reach
/// both the normal and the "waited too long" branches deterministically.
///
/// # Examples
///
/// ```
/// use gosync_park::WaitClock;
/// use std::time::Duration;
///
/// let mut clock = WaitClock::start();
/// // ... park, get woken ...
/// assert!(!clock.woken_after(Duration::from_secs(60)));
/// ```
#[derive(Debug)]
pub struct WaitClock {
    since: Instant,
    wakes: u32,
}

impl WaitClock {
    /// Starts measuring now. See the example on [`WaitClock`].
    #[inline]
    #[must_use]
    pub fn start() -> Self {
        Self {
            since: Instant::now(),
            wakes: 0,
        }
    }

    /// Called once per wake-up of the waiter: whether it has now waited longer than
    /// `threshold`. See the example on [`WaitClock`].
    #[inline]
    #[must_use]
    pub fn woken_after(&mut self, threshold: Duration) -> bool {
        self.wakes = self.wakes.saturating_add(1);
        if crate::model::IS_LOOM {
            return self.wakes >= crate::model::LONG_WAIT_WAKE;
        }
        self.since.elapsed() > threshold
    }
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_clock_has_not_waited_long() {
        let mut clock = WaitClock::start();
        assert!(!clock.woken_after(Duration::from_secs(3600)));
        while clock.since.elapsed().is_zero() {
            std::hint::spin_loop();
        }
        assert!(clock.woken_after(Duration::ZERO));
    }

    #[test]
    fn a_waiting_deadline_fires_by_the_clock() {
        let now = Instant::now();
        assert!(deadline_fired(now, now));
        assert!(!deadline_fired(now + Duration::from_secs(60), now));
    }
}
