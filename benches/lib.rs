//! Shared pieces of the gosync benchmarks.
//!
//! Each primitive has its own bench target (`mutex.rs`, `rwmutex.rs`, `cond.rs`, `once.rs`,
//! `waitgroup.rs`), a criterion group per workload with gosync and its peers side by side, so
//! that one run compares them on the same machine state. `fairness.rs` is a plain program (no
//! criterion) that measures how long a thread waits for a lock another thread keeps
//! re-acquiring. `map_rounds.rs`, also a plain program, times the maps of `map.rs` in
//! interleaved rounds ([`map_workload`] holds what both run). `benches/go/` holds the same
//! workloads for Go's `sync`.
//!
//! `cargo xtask bench` runs everything and regenerates `docs/performance.md` from the medians.
//!
//! With `GOSYNC_BENCH_LOAD=N` in the environment (`cargo xtask bench --load N`), every bench
//! process first starts N busy neighbour threads (see [`start_neighbours`]), so that the
//! workloads compete for the cores as they do on a loaded server.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! let hits = AtomicU64::new(0);
//! let elapsed = gosync_benches::run_threads(2, |_| {
//!     hits.fetch_add(1, Ordering::Relaxed);
//! });
//! assert_eq!(hits.load(Ordering::Relaxed), 2);
//! assert!(elapsed.as_secs() < 60);
//! ```

use std::sync::{Barrier, Once};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;

pub mod map_workload;

/// Lock operations per criterion iteration in the contended mutex and rwmutex workloads,
/// summed over all threads (the Go twin uses the same number).
///
/// The total is fixed, so a 2-thread and an 8-thread iteration do the same work and their
/// times compare directly.
pub const OPS_PER_ITER: u64 = 2_000;

/// The criterion settings every gosync bench uses: short, so that a full `cargo xtask bench`
/// fits in about ten minutes on a 2-core machine. Also starts the busy neighbours asked for in
/// [`LOAD_VAR`] ([`start_neighbours`]), so that no criterion bench can run without them.
///
/// # Examples
///
/// ```
/// let c = gosync_benches::config();
/// drop(c);
/// ```
pub fn config() -> Criterion {
    start_neighbours();
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

/// The environment variable holding the number of busy neighbour threads.
pub const LOAD_VAR: &str = "GOSYNC_BENCH_LOAD";

/// The number of busy neighbour threads asked for in [`LOAD_VAR`] (0 when unset).
///
/// # Panics
///
/// Panics if the variable is set but is not a whole number.
///
/// # Examples
///
/// ```
/// if std::env::var_os(gosync_benches::LOAD_VAR).is_none() {
///     assert_eq!(gosync_benches::neighbours_wanted(), 0);
/// }
/// ```
pub fn neighbours_wanted() -> usize {
    match std::env::var(LOAD_VAR) {
        Ok(n) => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{LOAD_VAR}={n:?}: expected a whole number of threads")),
        Err(_) => 0,
    }
}

/// Starts the busy neighbour threads asked for in [`LOAD_VAR`], once per process; they spin
/// without sleeping until the process exits, so the workloads run on cores that are never
/// idle. [`config`] calls it, and a bench without criterion calls it first. Returns how many
/// run.
///
/// On Linux neighbour `i` is pinned to the `i`-th core this process may use (round robin), so
/// that every core keeps its share of the load. Left free, the kernel's balancer sometimes
/// stacks both neighbours on one core of a 2-core machine and leaves the other to the workload:
/// then a run measures an idle core, and whether it does changes from one run to the next
/// (`docs/park.md`, "Where the neighbours run").
///
/// # Panics
///
/// As [`neighbours_wanted`].
///
/// # Examples
///
/// ```
/// let n = gosync_benches::start_neighbours();
/// assert_eq!(n, gosync_benches::neighbours_wanted());
/// ```
pub fn start_neighbours() -> usize {
    static START: Once = Once::new();
    let n = neighbours_wanted();
    START.call_once(|| {
        for i in 0..n {
            thread::Builder::new()
                .name(format!("neighbour-{i}"))
                .spawn(move || {
                    pin_to_nth_core(i);
                    let mut x = 0_u64;
                    loop {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .expect("cannot start a neighbour thread");
        }
        if n > 0 {
            eprintln!("gosync-benches: {n} busy neighbour thread(s) running");
        }
    });
    n
}

/// Pins the calling thread to the `n`-th (modulo their number) of the cores it may run on.
#[cfg(target_os = "linux")]
fn pin_to_nth_core(n: usize) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set: it is a plain bit array.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a writable `cpu_set_t` of `size` bytes; pid 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return;
    }
    let cores: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below `CPU_SETSIZE`, the number of bits in the set.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &allowed) })
        .collect();
    if cores.is_empty() {
        return;
    }
    // SAFETY: as for `allowed` above.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the core number came from the set, so it is below `CPU_SETSIZE`.
    unsafe { libc::CPU_SET(cores[n % cores.len()], &mut one) };
    // SAFETY: `one` is a valid `cpu_set_t` of `size` bytes; pid 0 is the calling thread. A
    // failure leaves the thread unpinned, which only makes the load less even.
    let _ = unsafe { libc::sched_setaffinity(0, size, &one) };
}

#[cfg(not(target_os = "linux"))]
fn pin_to_nth_core(_n: usize) {}

/// Runs `work(i)` on `threads` threads at once and returns the time from the common start to
/// the last thread's end.
///
/// Spawning is not timed: every thread waits at a barrier, then reads the clock. The time is
/// from the earliest start read by a worker to the latest end, so a worker (or the calling
/// thread) that loses its core around the barrier cannot shorten it.
///
/// # Panics
///
/// Panics if a worker panics.
///
/// # Examples
///
/// ```
/// let t = gosync_benches::run_threads(3, |i| assert!(i < 3));
/// assert!(t.as_secs() < 60);
/// ```
pub fn run_threads<F>(threads: usize, work: F) -> Duration
where
    F: Fn(usize) + Sync,
{
    let start = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (start, work) = (&start, &work);
                s.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    work(i);
                    (began, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect();
        let began = spans
            .iter()
            .map(|&(b, _)| b)
            .min()
            .expect("at least one thread");
        let ended = spans
            .iter()
            .map(|&(_, e)| e)
            .max()
            .expect("at least one thread");
        ended - began
    })
}

/// Splits `total` operations over `threads` threads: thread `i` gets its share.
///
/// # Examples
///
/// ```
/// let shares: u64 = (0..3).map(|i| gosync_benches::share(10, 3, i)).sum();
/// assert_eq!(shares, 10);
/// ```
pub fn share(total: u64, threads: usize, i: usize) -> u64 {
    let threads = threads as u64;
    let i = i as u64;
    total / threads + u64::from(i < total % threads)
}

/// Spins (without sleeping) for about `d`: the busy work done while a lock is held.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let t0 = Instant::now();
/// gosync_benches::busy_for(Duration::from_micros(5));
/// assert!(t0.elapsed() >= Duration::from_micros(5));
/// ```
pub fn busy_for(d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Wait-time statistics of one fairness run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStats {
    /// How many waits were recorded.
    pub samples: usize,
    /// The median wait.
    pub p50: Duration,
    /// The 99th percentile wait.
    pub p99: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl WaitStats {
    /// Computes the statistics of `waits` (sorting it in place).
    ///
    /// # Panics
    ///
    /// Panics if `waits` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut waits: Vec<_> = (1..=100).map(Duration::from_micros).collect();
    /// let s = gosync_benches::WaitStats::from_waits(&mut waits);
    /// assert_eq!(s.p50, Duration::from_micros(51));
    /// assert_eq!(s.p99, Duration::from_micros(100));
    /// assert_eq!(s.max, Duration::from_micros(100));
    /// ```
    pub fn from_waits(waits: &mut [Duration]) -> Self {
        assert!(!waits.is_empty(), "no waits recorded");
        waits.sort_unstable();
        let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
        WaitStats {
            samples: waits.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: waits[waits.len() - 1],
        }
    }

    /// The line `cargo xtask bench` parses:
    /// `FAIRNESS <scenario> <impl> samples=<n> p50_ns=<n> p99_ns=<n> max_ns=<n>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut waits = vec![Duration::from_nanos(7)];
    /// let s = gosync_benches::WaitStats::from_waits(&mut waits);
    /// assert_eq!(
    ///     s.line("mutex", "std"),
    ///     "FAIRNESS mutex std samples=1 p50_ns=7 p99_ns=7 max_ns=7"
    /// );
    /// ```
    pub fn line(&self, scenario: &str, imp: &str) -> String {
        format!(
            "FAIRNESS {scenario} {imp} samples={} p50_ns={} p99_ns={} max_ns={}",
            self.samples,
            self.p50.as_nanos(),
            self.p99.as_nanos(),
            self.max.as_nanos()
        )
    }
}
