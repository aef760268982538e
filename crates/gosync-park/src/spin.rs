//! Spinning policy, in one place for every primitive.
//!
//! Two kinds of spinning happen in gosync:
//!
//! - [`SpinWait`]: a primitive's own bounded back-off before it decides to park (the mutex
//!   spinning while the holder is running), as Go's `runtime_canSpin` and parking_lot's
//!   `SpinWait`: a few rounds of exponentially longer `spin_loop` bursts, then a few yields.
//! - `AdaptiveSpin`: the park layer's wait before it sleeps. A thread that has queued itself
//!   spins on its own wake flag for a while before paying for a futex sleep, so a wake that
//!   arrives within microseconds costs no sleep+wake round trip. The budget adapts per thread to
//!   the waits it sees: twice the last wait when that was short, half the budget when it was
//!   long or when a spin ran out without seeing the wake, between [`MIN_SPIN`] and
//!   [`MAX_SPIN`].
//!
//! Why [`MAX_SPIN`] is about one sleep+wake: a futex sleep+wake costs 20–40 µs of latency on a
//! small VM, so a spin that long at worst doubles the price of a wait that had to sleep anyway,
//! and it must be at least that long to be useful at all. Two threads handing work back and
//! forth (a condition variable ping-pong) settle into spinning only if each spins longer than
//! the other takes to wake from a sleep; with a shorter cap both keep sleeping.
//!
//! # Spinning only while a core is idle
//!
//! A spin pays only if the thread it waits for is running on another core. When every core is
//! taken (more runnable threads than cores), the thread we wait for is often waiting for a core
//! itself, and our spin burns the time slice it needs: measured with two busy neighbour threads
//! on two cores, a `Cond` ping-pong that spun ran 10–50× slower than one that slept. Go spins
//! only while a processor is idle; OS threads get the same rule from two signals, either of
//! which stops all spinning in the process (both kinds) for a short while:
//!
//! - **Preemption** (Unix): at most once per [`SAMPLE_PERIOD`], one thread about to spin reads
//!   how many times the kernel has taken a core away from a thread of this process that still
//!   wanted it (`getrusage`'s involuntary context switches). Two such preemptions within
//!   [`PREEMPTION_WINDOW`] mean that threads of ours wait for cores: nothing spins for
//!   [`BUSY_BACKOFF`]. (A single one is taken for noise: a kernel thread running for a moment
//!   on an idle machine.)
//!   This counts only the load that actually competes with us: threads of lower priority that
//!   never take our cores do not stop our spinning, as they would if we counted runnable
//!   threads against cores.
//! - **Descheduling**: a spinner reads the clock every few dozen spin hints; a gap of more than
//!   [`DESCHEDULED_GAP`] between two reads means the thread lost its core to another one in the
//!   middle of a spin. It stops at once, and nothing spins for [`BUSY_BACKOFF`]. This is the
//!   signal on every platform, and catches load that the sample missed.
//!
//! [`SpinWait`] keeps its few short rounds and its yields whether the cores are busy or not, as
//! parking_lot's does: a lock is held for a moment, and a yield that lets its holder (or anyone)
//! run costs its waiter far less than a park, which makes the releaser pay a wake-up and the
//! woken thread wait for a core again (measured with busy neighbours: 3–10× on read-write locks
//! and semaphores, `docs/park.md`). Only the wait whose yield was slow (longer than
//! [`DESCHEDULED_GAP`]: the core went to another thread for a time slice) parks at once after it;
//! except in a crowd of our own: while at least as many of our threads as cores are inside a
//! `SpinWait`'s yield, the cores run our threads, a slow yield was spent on our own work, and the
//! yields go on. Beyond four such threads a core a yield queues behind too many of them, and the
//! waiter parks instead.
//!
//! On top of that, nothing spins on a single core, and at most one thread per core spins in the
//! park layer at once (an admission counter), so spinners cannot crowd out the threads they
//! wait for among themselves. A waiter that has already spun on its own terms (a mutex after
//! its back-off) skips the adaptive spin: `ParkOptions::sleep_at_once`. Under loom and miri
//! nothing spins: loom would explore every spin iteration, and under miri time is meaningless.

use crate::facade::hint;

/// Number of cores, cached; 0 until first asked.
#[cfg(not(any(gosync_loom, miri)))]
static CORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Threads currently spinning in an [`AdaptiveSpin`].
#[cfg(not(any(gosync_loom, miri)))]
static SPINNERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Threads of this process inside a [`SpinWait`]'s yield, including those the yield left
/// waiting for a core: runnable waiters of the process's own primitives. As many as the cores
/// means our own threads crowd them (see [`SpinWait::spin`]); parked waiters do not count, as
/// they compete for no core.
#[cfg(not(any(gosync_loom, miri)))]
static CROWD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The most yielding waiters per core for which a [`SpinWait`] still yields (and a crowd of our
/// own threads keeps yielding whatever a yield costs); see [`SpinWait::spin`].
#[cfg(not(any(gosync_loom, miri)))]
const CROWD_PER_CORE: usize = 4;

/// The shortest adaptive spin, in nanoseconds.
///
/// # Examples
///
/// ```
/// assert!(gosync_park::spin::MIN_SPIN < gosync_park::spin::MAX_SPIN);
/// ```
pub const MIN_SPIN: u32 = 1_000;
/// The longest adaptive spin, in nanoseconds: about one futex sleep+wake on a small VM (see the
/// module docs).
///
/// # Examples
///
/// ```
/// assert_eq!(gosync_park::spin::MAX_SPIN, 50_000);
/// ```
pub const MAX_SPIN: u32 = 50_000;

/// How often, at most, the process's involuntary context switches are sampled (Unix; see the
/// module docs).
///
/// # Examples
///
/// ```
/// assert!(gosync_park::spin::SAMPLE_PERIOD.as_micros() >= 100);
/// ```
pub const SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_millis(1);

/// A gap between two clock reads of a spin longer than this means the spinner was
/// descheduled. A burst between two reads takes a few microseconds, and an interrupt or a
/// hypervisor hiccup well under this. A [`SpinWait`] yield that takes longer gave the core away
/// for longer than a futex sleep+wake costs: that wait parks next (unless our own yielding
/// waiters crowd the cores; see [`SpinWait::spin`]).
///
/// # Examples
///
/// ```
/// assert!(gosync_park::spin::DESCHEDULED_GAP.as_nanos() >= u128::from(gosync_park::spin::MAX_SPIN));
/// ```
pub const DESCHEDULED_GAP: std::time::Duration = std::time::Duration::from_micros(50);

/// How long nothing spins after a spinner saw it was descheduled: a few time slices' worth of
/// waits, after which spinning is tried again.
///
/// # Examples
///
/// ```
/// assert!(gosync_park::spin::BUSY_BACKOFF > gosync_park::spin::DESCHEDULED_GAP);
/// ```
pub const BUSY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(4);

/// Two preemptions of our threads within this window mean the cores are busy; a single one is
/// taken for noise (a kernel thread running for a moment on an otherwise idle machine).
///
/// # Examples
///
/// ```
/// assert!(gosync_park::spin::PREEMPTION_WINDOW > gosync_park::spin::SAMPLE_PERIOD);
/// ```
pub const PREEMPTION_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

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

/// Whether every core looks taken, so that spinning would steal the time slice of the thread
/// being waited for; see the module docs. Samples the process's involuntary context switches
/// when the last sample is older than [`SAMPLE_PERIOD`].
#[cfg(not(any(gosync_loom, miri)))]
fn cores_busy(now: std::time::Instant) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let now = busy::nanos_since_epoch(now);
    // Relaxed, here and below: these words are hints about the machine, not guards of data; a
    // stale value costs one spin too many or too few.
    let next = busy::NEXT_SAMPLE.load(Relaxed);
    if now >= next
        && busy::NEXT_SAMPLE
            .compare_exchange(next, now + busy::nanos(SAMPLE_PERIOD), Relaxed, Relaxed)
            .is_ok()
    {
        if let Some(switches) = busy::involuntary_switches() {
            let new = switches.saturating_sub(busy::SWITCHES.swap(switches, Relaxed));
            // One preemption is noise (a kernel thread ran for a moment); a second one within
            // the window is load.
            let last = busy::LAST_PREEMPTED.load(Relaxed);
            if new > 0 {
                busy::LAST_PREEMPTED.store(now, Relaxed);
            }
            let recent = last != 0 && now - last.min(now) < busy::nanos(PREEMPTION_WINDOW);
            if new > 1 || (new == 1 && recent) {
                busy::BUSY_UNTIL.fetch_max(now + busy::nanos(BUSY_BACKOFF), Relaxed);
            }
        }
    }
    now < busy::BUSY_UNTIL.load(Relaxed)
}

/// Records that a spinner lost its core at `now`: nothing spins for [`BUSY_BACKOFF`].
#[cfg(not(any(gosync_loom, miri)))]
fn descheduled(now: std::time::Instant) {
    let until = busy::nanos_since_epoch(now) + busy::nanos(BUSY_BACKOFF);
    // Relaxed: see `cores_busy`.
    busy::BUSY_UNTIL.fetch_max(until, std::sync::atomic::Ordering::Relaxed);
}

/// The shared state behind [`cores_busy`]: instants as nanoseconds since a process-wide epoch,
/// so that they fit in atomics.
#[cfg(not(any(gosync_loom, miri)))]
mod busy {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Nothing spins before this instant.
    pub(super) static BUSY_UNTIL: AtomicU64 = AtomicU64::new(0);
    /// When the context switches are next sampled.
    pub(super) static NEXT_SAMPLE: AtomicU64 = AtomicU64::new(0);
    /// The process's involuntary context switches at the last sample.
    pub(super) static SWITCHES: AtomicU64 = AtomicU64::new(0);
    /// When a sample last saw a preemption (0: never).
    pub(super) static LAST_PREEMPTED: AtomicU64 = AtomicU64::new(0);

    pub(super) fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn nanos_since_epoch(now: Instant) -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        nanos(now.saturating_duration_since(*EPOCH.get_or_init(|| now)))
    }

    /// How many times the kernel has taken a core away from a thread of this process that
    /// still wanted it, over the process's life (`getrusage`'s `ru_nivcsw`), or `None` where
    /// that is not counted.
    #[cfg(unix)]
    pub(super) fn involuntary_switches() -> Option<u64> {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
        // SAFETY: `getrusage` writes a whole `rusage` to the pointer it is given, which points to
        // writable memory of that size, and reads nothing from it.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: `getrusage` succeeded, so it initialised `usage`.
        let usage = unsafe { usage.assume_init() };
        u64::try_from(usage.ru_nivcsw).ok()
    }

    #[cfg(not(unix))]
    pub(super) fn involuntary_switches() -> Option<u64> {
        None
    }
}

/// Whether spinning can ever help: more than one core, and not under loom or miri.
///
/// # Examples
///
/// ```
/// let cores = std::thread::available_parallelism().map_or(1, usize::from);
/// if cores == 1 {
///     assert!(!gosync_park::spin::spinning_allowed());
/// }
/// ```
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

    /// A fresh back-off. See the example on [`SpinWait`].
    pub const fn new() -> Self {
        Self { rounds: 0 }
    }

    /// Starts the back-off over, after progress was made.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut spin = gosync_park::SpinWait::new();
    /// while spin.spin() {}
    /// spin.reset();
    /// assert_eq!(spin.spin(), gosync_park::spin::spinning_allowed());
    /// ```
    #[inline]
    pub fn reset(&mut self) {
        self.rounds = 0;
    }

    /// Spins or yields once. Returns `false` when the caller should park instead: the rounds are
    /// used up, or spinning cannot help on this machine. See the example on [`SpinWait`].
    ///
    /// The first rounds spin for well under a microsecond; the others yield the core, whether
    /// the cores are busy or not (see the [module docs](self)). A yield slower than
    /// [`DESCHEDULED_GAP`] (longer than a futex sleep+wake: another thread kept the core for a
    /// while) ends this wait's spinning, so the caller parks next; unless the yields of our own
    /// waiters crowd the cores (at least one thread per core inside a yield), where a slow yield
    /// was spent on our own threads, the lock holder among them. With more than four yielding
    /// waiters a core, a yield would queue behind them all: the caller parks instead.
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
            return true;
        }
        #[cfg(not(any(gosync_loom, miri)))]
        {
            use std::sync::atomic::Ordering::Relaxed;
            // Relaxed: a head count for a hint, as the other words of this module.
            let crowd = CROWD.fetch_add(1, Relaxed) + 1;
            let yields = crowd <= CROWD_PER_CORE * cores();
            if yields {
                let start = std::time::Instant::now();
                // Not loom's: nothing spins under loom (`spinning_allowed`).
                std::thread::yield_now();
                // Our own yielding waiters crowd the cores: the threads the cores run are mostly
                // ours, a yield passes the core to one of them (the lock holder among them), and a
                // slow yield says only that it kept the core for a while doing our work. Parking
                // instead leaves the lock to threads that are not running (measured: 8 threads on
                // one mutex on 2 cores ran 2x slower than `parking_lot`).
                let crowded = crowd >= cores();
                self.yielded(start.elapsed(), crowded);
            }
            CROWD.fetch_sub(1, Relaxed);
            if !yields {
                return false;
            }
        }
        true
    }

    /// After a yield that took `took`: a slow one, outside a crowd of our own yielding waiters,
    /// ends this wait's spinning.
    #[cfg(not(any(gosync_loom, miri)))]
    fn yielded(&mut self, took: std::time::Duration, crowded: bool) {
        if took > DESCHEDULED_GAP && !crowded {
            self.rounds = Self::ROUNDS;
        }
    }
}

#[cfg(not(any(gosync_loom, miri)))]
std::thread_local! {
    /// This thread's current adaptive spin budget, in nanoseconds.
    static SPIN_BUDGET: std::cell::Cell<u32> = const { std::cell::Cell::new(MAX_SPIN / 2) };
}

/// One wait's adaptive spin: spin first, and if that did not see the wake, tell it how long the
/// whole wait took once the thread is woken after sleeping.
///
/// The budget follows the waits this thread has seen. A wait that ended (by spinning or after a
/// sleep) within [`MAX_SPIN`] sets the budget to twice its length, so the next such wait is
/// caught spinning; a longer wait halves it, towards [`MIN_SPIN`], and so does a spin that ran
/// out (the wait may then end by a timeout, which says nothing else). Learning from waits that
/// ended after a sleep matters: a budget that only shrank would collapse for good as soon as
/// waits got a little longer than it. No spin at all while the cores are busy (module docs).
#[derive(Debug)]
pub(crate) struct AdaptiveSpin {
    /// When the spin started; `None` when this wait did not spin (no budget to adapt).
    #[cfg(not(any(gosync_loom, miri)))]
    start: Option<std::time::Instant>,
    /// The last clock reading it made, if any (see [`looked_at`](Self::looked_at)).
    #[cfg(not(any(gosync_loom, miri)))]
    looked: Option<std::time::Instant>,
}

impl AdaptiveSpin {
    /// Spins until `woken()` is true or this thread's budget runs out. `Ok` if it saw the wake;
    /// otherwise the caller sleeps, and calls [`woken_after_sleep`](Self::woken_after_sleep) if
    /// a wake (not a timeout) ended the wait.
    #[inline]
    pub(crate) fn spin(woken: impl Fn() -> bool) -> Result<(), Self> {
        #[cfg(any(gosync_loom, miri))]
        return {
            let _ = woken;
            Self::skip()
        };
        #[cfg(not(any(gosync_loom, miri)))]
        return Self::spin_adaptively(woken);
    }

    /// A wait that does not spin (and so teaches the budget nothing).
    #[inline]
    pub(crate) fn skip() -> Result<(), Self> {
        Err(Self {
            #[cfg(not(any(gosync_loom, miri)))]
            start: None,
            #[cfg(not(any(gosync_loom, miri)))]
            looked: None,
        })
    }

    /// The instant of the last clock reading this spin made (when it decided not to spin, or
    /// when its spin ended), if it read the clock at all: a timed wait's first deadline check
    /// uses it rather than reading the clock again.
    #[inline]
    pub(crate) fn looked_at(&self) -> Option<std::time::Instant> {
        #[cfg(not(any(gosync_loom, miri)))]
        return self.looked;
        #[cfg(any(gosync_loom, miri))]
        return None;
    }

    #[cfg(not(any(gosync_loom, miri)))]
    fn spin_adaptively(woken: impl Fn() -> bool) -> Result<(), Self> {
        use std::sync::atomic::Ordering::Relaxed;
        use std::time::{Duration, Instant};

        let cores = cores();
        if cores < 2 {
            return Self::skip();
        }
        let start = Instant::now();
        let not_spun = Err(Self {
            start: None,
            looked: Some(start),
        });
        if cores_busy(start) {
            return not_spun;
        }
        // Relaxed: SPINNERS is an admission counter, not a guard of any data.
        if SPINNERS.fetch_add(1, Relaxed) >= cores {
            SPINNERS.fetch_sub(1, Relaxed);
            return not_spun;
        }
        let limit = Duration::from_nanos(u64::from(SPIN_BUDGET.with(std::cell::Cell::get)));
        let mut last = start;
        let outcome = 'spin: loop {
            // Reading the clock costs as much as a few dozen spin hints: look at it now and then.
            for _ in 0..32 {
                if woken() {
                    break 'spin Ok(start.elapsed());
                }
                hint::spin_loop();
            }
            let now = Instant::now();
            if now - last > DESCHEDULED_GAP {
                // Another thread had our core: the one we wait for may be waiting for one too.
                descheduled(now);
                last = now;
                break if woken() { Ok(now - start) } else { Err(()) };
            }
            last = now;
            if now - start >= limit {
                break if woken() { Ok(now - start) } else { Err(()) };
            }
        };
        SPINNERS.fetch_sub(1, Relaxed);
        match outcome {
            Ok(waited) => {
                adapt(waited);
                Ok(())
            }
            Err(()) => {
                // The spin did not pay: spin less next time, whatever ends this wait (a
                // timed-out wait teaches nothing else).
                SPIN_BUDGET.with(|budget| budget.set((budget.get() / 2).max(MIN_SPIN)));
                Err(Self {
                    start: Some(start),
                    looked: Some(last),
                })
            }
        }
    }

    /// The wait this spin began ended with a wake after the thread slept.
    #[inline]
    pub(crate) fn woken_after_sleep(self) {
        #[cfg(not(any(gosync_loom, miri)))]
        if let Some(start) = self.start {
            adapt(start.elapsed());
        }
    }
}

/// Sets this thread's budget from the length of a wait that just ended; see [`AdaptiveSpin`].
#[cfg(not(any(gosync_loom, miri)))]
fn adapt(waited: std::time::Duration) {
    let waited = u32::try_from(waited.as_nanos()).unwrap_or(u32::MAX);
    SPIN_BUDGET.with(|budget| {
        let next = if waited <= MAX_SPIN {
            waited.saturating_mul(2).clamp(MIN_SPIN, MAX_SPIN)
        } else {
            (budget.get() / 2).max(MIN_SPIN)
        };
        budget.set(next);
    });
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
    fn adaptive_spin_sees_a_wake_that_already_happened() {
        let spin = AdaptiveSpin::spin(|| true);
        // It does not spin at all when it cannot help, or while the cores are busy.
        assert!(spin.is_err() || spinning_allowed());
        if let Err(spin) = spin {
            spin.woken_after_sleep();
        }
    }

    #[cfg(all(unix, not(any(gosync_loom, miri))))]
    #[test]
    fn involuntary_switches_are_counted() {
        let first = busy::involuntary_switches().expect("getrusage works on unix");
        assert!(busy::involuntary_switches().expect("getrusage works on unix") >= first);
    }

    #[cfg(not(any(gosync_loom, miri)))]
    #[test]
    fn descheduling_marks_the_cores_busy() {
        use std::time::{Duration, Instant};
        let now = Instant::now();
        descheduled(now);
        assert!(cores_busy(now));
        assert!(cores_busy(now + BUSY_BACKOFF - Duration::from_micros(1)));
    }

    #[cfg(not(any(gosync_loom, miri)))]
    #[test]
    fn a_slow_yield_ends_the_wait_unless_our_own_waiters_crowd_the_cores() {
        let slow = DESCHEDULED_GAP * 2;
        let yielding = SpinWait::BUSY_ROUNDS + 1;
        let mut spin = SpinWait { rounds: yielding };
        spin.yielded(DESCHEDULED_GAP / 2, false);
        assert_eq!(spin.rounds, yielding, "a quick yield goes on");
        spin.yielded(slow, true);
        assert_eq!(spin.rounds, yielding, "a crowd's slow yield goes on");
        spin.yielded(slow, false);
        assert!(!spin.spin(), "a slow yield parks");
    }

    #[cfg(not(any(gosync_loom, miri)))]
    #[test]
    fn budget_follows_the_waits_seen() {
        use std::time::Duration;
        adapt(Duration::from_micros(3));
        assert_eq!(SPIN_BUDGET.with(std::cell::Cell::get), 6_000);
        adapt(Duration::from_millis(1));
        assert_eq!(SPIN_BUDGET.with(std::cell::Cell::get), 3_000);
        for _ in 0..10 {
            adapt(Duration::from_millis(1));
        }
        assert_eq!(SPIN_BUDGET.with(std::cell::Cell::get), MIN_SPIN);
        adapt(Duration::from_nanos(10));
        assert_eq!(SPIN_BUDGET.with(std::cell::Cell::get), MIN_SPIN);
    }
}
