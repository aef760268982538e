//! Fairness: how long a thread waits for a lock that another thread keeps re-acquiring.
//!
//! Not a criterion bench: the result is a distribution of waits, not a time per iteration.
//!
//! - `mutex`: a hog thread locks, spins about 1 µs, unlocks and locks again at once; a probe
//!   thread repeatedly times how long `lock()` takes, then releases and spins 50 µs outside
//!   the lock. Go's starvation mode bounds the probe's wait (about 1 ms plus a hand-off); a lock
//!   without hand-off can let the hog win again and again.
//! - `rwmutex_writer`: 2 reader threads keep taking read locks
//!   held about 1 µs; a writer times each `write()`.
//!
//! Each scenario runs for a fixed time per implementation (2 s under `cargo bench`, a few
//! milliseconds otherwise, so `cargo test --benches` stays cheap). A non-flag argument keeps the
//! scenarios whose id (`fairness/<scenario>`) contains it. Output, one line per run, parsed by `cargo xtask bench`:
//! `FAIRNESS <scenario> <impl> samples=<n> p50_ns=<n> p99_ns=<n> max_ns=<n>`.

use std::time::{Duration, Instant};

use gosync_benches::{busy_for, WaitStats};

/// How long the lock is held by the hog (and by each reader).
const HOLD: Duration = Duration::from_micros(1);
/// How long the probe spins outside the lock between two acquisitions: long enough for a hog
/// woken by the probe's unlock to be back in its loop, so that each acquisition competes
/// with a running hog.
const PAUSE: Duration = Duration::from_micros(50);

/// Runs `hogs` hog threads (each calling `hog` in a loop) against one probe thread that
/// records `probe`'s returned wait, both for `dur`.
fn measure<L: Sync>(
    dur: Duration,
    hogs: usize,
    lock: &L,
    hog: impl Fn(&L) + Sync,
    probe: impl Fn(&L) -> Duration + Sync,
) -> WaitStats {
    let t0 = Instant::now();
    let mut waits = Vec::with_capacity(1 << 16);
    std::thread::scope(|s| {
        for _ in 0..hogs {
            s.spawn(|| {
                while t0.elapsed() < dur {
                    hog(lock);
                }
            });
        }
        // At least one sample, however late the clock started.
        loop {
            waits.push(probe(lock));
            if t0.elapsed() >= dur {
                break;
            }
            busy_for(PAUSE);
        }
    });
    WaitStats::from_waits(&mut waits)
}

/// Runs the `mutex` scenario on `$mutex` (a lock around a `u64`), locking with `$lock`, which
/// turns `&$m` into a guard; prints its line as implementation `$name`.
macro_rules! mutex_scenario {
    ($dur:expr, $name:literal, $mutex:expr, |$m:ident| $lock:expr) => {{
        let mutex = $mutex;
        let stats = measure(
            $dur,
            1,
            &mutex,
            |$m| {
                let mut g = $lock;
                busy_for(HOLD);
                *g += 1;
            },
            |$m| {
                let t = Instant::now();
                let g = $lock;
                let w = t.elapsed();
                drop(g);
                w
            },
        );
        println!("{}", stats.line("mutex", $name));
    }};
}

/// Runs the `rwmutex_writer` scenario on `$lock` (a reader-writer lock around a `u64`), with
/// `$read` and `$write` turning `&$l` into guards; prints its line as implementation `$name`.
macro_rules! rwmutex_writer_scenario {
    ($dur:expr, $name:literal, $lock:expr, |$l:ident| $read:expr, $write:expr) => {{
        let lock = $lock;
        let stats = measure(
            $dur,
            2,
            &lock,
            |$l| {
                let g = $read;
                busy_for(HOLD);
                std::hint::black_box(*g);
            },
            |$l| {
                let t = Instant::now();
                let mut g = $write;
                let w = t.elapsed();
                *g += 1;
                w
            },
        );
        println!("{}", stats.line("rwmutex_writer", $name));
    }};
}

fn mutex(dur: Duration) {
    mutex_scenario!(dur, "gosync", gosync_mutex::Mutex::new(0_u64), |m| m.lock());
    mutex_scenario!(dur, "parking_lot", parking_lot::Mutex::new(0_u64), |m| m
        .lock());
    mutex_scenario!(dur, "std", std::sync::Mutex::new(0_u64), |m| m
        .lock()
        .unwrap());
}

fn rwmutex_writer(dur: Duration) {
    rwmutex_writer_scenario!(
        dur,
        "gosync",
        gosync_rwmutex::RwMutex::new(0_u64),
        |l| l.read(),
        l.write()
    );
    rwmutex_writer_scenario!(
        dur,
        "parking_lot",
        parking_lot::RwLock::new(0_u64),
        |l| l.read(),
        l.write()
    );
    rwmutex_writer_scenario!(
        dur,
        "std",
        std::sync::RwLock::new(0_u64),
        |l| l.read().unwrap(),
        l.write().unwrap()
    );
}

fn main() {
    gosync_benches::start_neighbours();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dur = if args.iter().any(|a| a == "--bench") {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(5)
    };
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f.as_str()));
    if wanted("fairness/mutex") {
        mutex(dur);
    }
    if wanted("fairness/rwmutex_writer") {
        rwmutex_writer(dur);
    }
}
