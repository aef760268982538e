//! Spinning policy, in one place for every primitive.
//!
//! Two kinds of spinning happen in gosync:
//!
//! - [`SpinWait`]: a primitive's own bounded back-off before it decides to park (the mutex
//!   spinning while the holder is running), as Go's `runtime_canSpin` and parking_lot's
//!   `SpinWait`: a few rounds of exponentially longer `spin_loop` bursts, then a few yields.
//! - `spin_until_woken`: the park layer's wait before it sleeps. A thread that has queued
//!   itself spins on its own wake flag for a while before paying for a futex sleep, so a wake that
//!   arrives within microseconds costs no sleep+wake round trip (~20 µs on a small VM). The
//!   budget adapts per thread: it doubles when a spin ended in a wake and halves when it did not,
//!   between [`MIN_SPIN`] and [`MAX_SPIN`] (about the cost of one sleep+wake, so spinning at
//!   worst doubles the price of a wait that had to sleep anyway).
//!
//! Neither spins on a single core, and at most `cores - 1` threads spin in the park layer at
//! once: when threads outnumber cores, a spinner only steals the time slice of the thread it
//! waits for. Under loom and miri nothing spins: loom would explore every spin iteration, and
//! under miri time is meaningless.

use crate::facade::{hint, thread};

/// Number of cores, cached; 0 until first asked.
#[cfg(not(any(gosync_loom, miri)))]
static CORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Threads currently spinning in [`spin_until_woken`].
#[cfg(not(any(gosync_loom, miri)))]
static SPINNERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The shortest adaptive spin, in nanoseconds.
pub const MIN_SPIN: u32 = 1_000;
/// The longest adaptive spin, in nanoseconds: about one futex sleep+wake on a small VM.
pub const MAX_SPIN: u32 = 20_000;

/// How many cores this process may use (cached after the first call).
#[cfg(not(any(gosync_loom, miri)))]
fn cores() -> usize {
    use std::sync::atomic::Ordering::Relaxed;
    // Relaxed: the value is a pure cache of a fact that does not change; any thread computing
    // it again computes the same number.
    match CORES.load(Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, usize::from);
            CORES.store(n, Relaxed);
            n
        }
        n => n,
    }
}

/// Whether spinning can ever help: more than one core, and not under loom or miri.
#[inline]
pub fn spinning_allowed() -> bool {
    #[cfg(any(gosync_loom, miri))]
    return false;
    #[cfg(not(any(gosync_loom, miri)))]
    return cores() > 1;
}

/// Bounded exponential back-off for a primitive's own spin-then-park loops.
///
/// # Examples
///
/// ```
/// use gosync_park::SpinWait;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let flag = AtomicBool::new(true);
/// let mut spin = SpinWait::new();
/// while !flag.load(Ordering::Acquire) {
///     if !spin.spin() {
///         break; // time to park instead
///     }
/// }
/// ```
#[derive(Debug, Default)]
pub struct SpinWait {
    rounds: u32,
}

impl SpinWait {
    /// Rounds of busy spinning (each twice as long as the last) before yielding instead.
    const BUSY_ROUNDS: u32 = 3;
    /// Total rounds before [`spin`](Self::spin) says to park.
    const ROUNDS: u32 = 10;

    /// A fresh back-off.
    pub const fn new() -> Self {
        Self { rounds: 0 }
    }

    /// Starts the back-off over, after progress was made.
    #[inline]
    pub fn reset(&mut self) {
        self.rounds = 0;
    }

    /// Spins or yields once. Returns `false` when the caller should park instead: the rounds are
    /// used up, or spinning cannot help on this machine.
    #[inline]
    pub fn spin(&mut self) -> bool {
        if self.rounds >= Self::ROUNDS || !spinning_allowed() {
            return false;
        }
        self.rounds += 1;
        if self.rounds <= Self::BUSY_ROUNDS {
            for _ in 0..(1u32 << self.rounds) {
                hint::spin_loop();
            }
        } else {
            thread::yield_now();
        }
        true
    }
}

#[cfg(not(any(gosync_loom, miri)))]
std::thread_local! {
    /// This thread's current adaptive spin budget, in nanoseconds.
    static SPIN_BUDGET: std::cell::Cell<u32> = const { std::cell::Cell::new(MAX_SPIN / 2) };
}

/// Spins until `woken()` is true or this thread's adaptive budget runs out; returns whether it
/// was woken. See the module docs for the policy.
#[inline]
pub(crate) fn spin_until_woken(woken: impl Fn() -> bool) -> bool {
    #[cfg(any(gosync_loom, miri))]
    return {
        let _ = woken;
        false
    };
    #[cfg(not(any(gosync_loom, miri)))]
    return adaptive_spin(woken);
}

#[cfg(not(any(gosync_loom, miri)))]
fn adaptive_spin(woken: impl Fn() -> bool) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};

    let cores = cores();
    if cores < 2 {
        return false;
    }
    // Relaxed: SPINNERS is an admission counter, not a guard of any data.
    if SPINNERS.fetch_add(1, Relaxed) + 1 >= cores {
        SPINNERS.fetch_sub(1, Relaxed);
        return false;
    }
    let budget = SPIN_BUDGET.with(std::cell::Cell::get);
    let limit = Duration::from_nanos(u64::from(budget));
    let start = Instant::now();
    let was_woken = 'spin: loop {
        // Reading the clock costs as much as a few dozen spin hints: look at it now and then.
        for _ in 0..32 {
            if woken() {
                break 'spin true;
            }
            hint::spin_loop();
        }
        if start.elapsed() >= limit {
            break woken();
        }
    };
    SPINNERS.fetch_sub(1, Relaxed);
    let next = if was_woken {
        budget.saturating_mul(2).min(MAX_SPIN)
    } else {
        (budget / 2).max(MIN_SPIN)
    };
    SPIN_BUDGET.with(|b| b.set(next));
    was_woken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_wait_gives_up_after_its_rounds() {
        let mut spin = SpinWait::new();
        let mut rounds = 0;
        while spin.spin() {
            rounds += 1;
            assert!(rounds <= SpinWait::ROUNDS, "spun past its bound");
        }
        spin.reset();
        assert_eq!(spin.rounds, 0);
    }

    #[test]
    fn spin_until_woken_returns_true_at_once_when_already_woken() {
        if spinning_allowed() {
            assert!(spin_until_woken(|| true));
        } else {
            assert!(!spin_until_woken(|| true));
        }
    }
}
