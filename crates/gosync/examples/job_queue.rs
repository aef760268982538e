//! A priority job queue with a fixed worker pool, retries and a graceful, resumable shutdown.
//!
//! What it shows:
//! - three priority queues behind one `Mutex`, with a `Cond` that wakes idle workers; a weighted
//!   round robin (4 high, 2 normal, 1 low per cycle of 7 pops) so low priority never starves;
//! - a worker pool of fixed size joined with a `WaitGroup`, and a second `WaitGroup` counting
//!   unfinished jobs that the main thread waits on with `wait_ctx`, so a stop request (the
//!   `Context`, cancelled after `--stop-after` jobs or at `--run-ms`) interrupts the wait;
//! - retries with exponential backoff: a failed job waits in a delayed list, and workers sleep on
//!   the `Cond` until the earliest retry is due (`Cond::wait_until`);
//! - monitoring: a thread samples queue lengths; processing times give p50/p99;
//! - graceful shutdown: running jobs finish, then every job still queued or waiting to retry is
//!   saved to a state file, which the next start loads.
//!
//! Every finished job is appended to a ledger file. At the end the program checks across all runs
//! so far: every job id ever issued is in the ledger or in the saved state, exactly once.
//!
//! Try it: `cargo run --example job_queue -- --fresh --stop-after 100`, then
//! `cargo run --example job_queue -- --jobs 20` to resume.
//! Flags: `--jobs` (new jobs this run), `--workers`, `--stop-after`, `--run-ms`, `--state`,
//! `--ledger`, `--fresh` (start over: delete the state and the ledger).

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::atomic::Counter;
use gosync::context::Context;
use gosync::{Cond, Mutex, WaitGroup};

mod common;

use common::{usage, Invariants};

/// One cycle of the weighted round robin: which priority each pop prefers.
const SLOTS: [usize; 7] = [0, 0, 0, 0, 1, 1, 2];
const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, Debug)]
struct Job {
    id: u64,
    priority: usize,
    attempts: u32,
}

impl Job {
    /// The simulated work: a job whose id is a multiple of 5 fails twice and then succeeds; a
    /// multiple of 17 always fails, and is given up after `MAX_ATTEMPTS`.
    fn run(&self) -> Result<(), String> {
        thread::sleep(Duration::from_micros(200 + self.id % 5 * 100));
        if self.id % 17 == 0 || (self.id % 5 == 0 && self.attempts < 2) {
            Err(format!(
                "job {} failed on attempt {}",
                self.id,
                self.attempts + 1
            ))
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct Queues {
    ready: [VecDeque<Job>; 3],
    /// Failed jobs waiting for their backoff to pass.
    retrying: Vec<(Instant, Job)>,
    closed: bool,
    next_slot: usize,
    /// Per priority: pops in a row that passed over it while it had jobs, and the most seen.
    passed_over: [usize; 3],
    max_passed_over: [usize; 3],
}

impl Queues {
    fn len(&self, priority: usize) -> usize {
        self.ready[priority].len()
            + self
                .retrying
                .iter()
                .filter(|(_, j)| j.priority == priority)
                .count()
    }

    fn promote_due_retries(&mut self, now: Instant) {
        let (due, waiting) = self.retrying.drain(..).partition(|(at, _)| *at <= now);
        self.retrying = waiting;
        for (_, job) in due {
            self.ready[job.priority].push_back(job);
        }
    }

    fn pop_weighted(&mut self) -> Option<Job> {
        let slot = (0..SLOTS.len())
            .map(|i| (self.next_slot + i) % SLOTS.len())
            .find(|&slot| !self.ready[SLOTS[slot]].is_empty())?;
        let chosen = SLOTS[slot];
        self.next_slot = (slot + 1) % SLOTS.len();
        for priority in 0..3 {
            if priority == chosen || self.ready[priority].is_empty() {
                self.passed_over[priority] = 0;
            } else {
                self.passed_over[priority] += 1;
                self.max_passed_over[priority] =
                    self.max_passed_over[priority].max(self.passed_over[priority]);
            }
        }
        self.ready[chosen].pop_front()
    }
}

#[derive(Default)]
struct JobQueue {
    queues: Mutex<Queues>,
    changed: Cond,
}

impl JobQueue {
    fn push(&self, job: Job) {
        self.queues.lock().ready[job.priority].push_back(job);
        self.changed.signal();
    }

    fn retry_later(&self, job: Job, delay: Duration) {
        self.queues
            .lock()
            .retrying
            .push((Instant::now() + delay, job));
        // A worker may be sleeping until a later retry: wake one to recompute its deadline.
        self.changed.signal();
    }

    /// The next job by weighted priority; `None` once the queue is closed.
    fn pop(&self) -> Option<Job> {
        let mut queues = self.queues.lock();
        loop {
            if queues.closed {
                return None;
            }
            queues.promote_due_retries(Instant::now());
            if let Some(job) = queues.pop_weighted() {
                return Some(job);
            }
            match queues.retrying.iter().map(|(at, _)| *at).min() {
                Some(due) => {
                    let _ = self.changed.wait_until(&mut queues, due);
                }
                None => self.changed.wait(&mut queues),
            }
        }
    }

    fn close(&self) {
        self.queues.lock().closed = true;
        self.changed.broadcast();
    }
}

struct Config {
    jobs: u64,
    workers: usize,
    stop_after: Option<i64>,
    run_for: Duration,
    state: PathBuf,
    ledger: PathBuf,
    fresh: bool,
}

fn parse_args() -> Result<Config, pico_args::Error> {
    let mut args = pico_args::Arguments::from_env();
    let tmp = std::env::temp_dir();
    let config = Config {
        fresh: args.contains("--fresh"),
        jobs: args.opt_value_from_str("--jobs")?.unwrap_or(300),
        workers: args.opt_value_from_str("--workers")?.unwrap_or(4),
        stop_after: args.opt_value_from_str("--stop-after")?,
        run_for: Duration::from_millis(args.opt_value_from_str("--run-ms")?.unwrap_or(10_000)),
        state: args
            .opt_value_from_str("--state")?
            .unwrap_or_else(|| tmp.join("gosync-job_queue.state")),
        ledger: args
            .opt_value_from_str("--ledger")?
            .unwrap_or_else(|| tmp.join("gosync-job_queue.ledger")),
    };
    let rest = args.finish();
    if !rest.is_empty() {
        let cause = format!("unknown arguments {rest:?}");
        return Err(pico_args::Error::ArgumentParsingFailed { cause });
    }
    Ok(config)
}

/// The state file: `next_id N`, then one `job ID PRIORITY ATTEMPTS` line per unfinished job.
fn load_state(path: &PathBuf) -> Result<(u64, Vec<Job>), String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let mut next_id = 0;
    let mut jobs = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        match (fields.first(), number(1), number(2), number(3)) {
            (Some(&"next_id"), Some(n), None, None) => next_id = n,
            (Some(&"job"), Some(id), Some(priority @ 0..=2), Some(attempts)) => jobs.push(Job {
                id,
                priority: priority as usize,
                attempts: attempts as u32,
            }),
            _ => return Err(format!("{}: bad line {line:?}", path.display())),
        }
    }
    Ok((next_id, jobs))
}

fn save_state(path: &PathBuf, next_id: u64, jobs: &[Job]) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "next_id {next_id}")?;
    for job in jobs {
        writeln!(out, "job {} {} {}", job.id, job.priority, job.attempts)?;
    }
    out.flush()
}

/// The ids in the ledger (`done ID` / `dead ID` lines) and how many appear more than once.
fn read_ledger(path: &PathBuf) -> (HashSet<u64>, usize) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut ids = HashSet::new();
    let mut duplicates = 0;
    for id in text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
    {
        duplicates += usize::from(!ids.insert(id));
    }
    (ids, duplicates)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(e) => return usage(&e.to_string()),
    };
    if config.fresh {
        let _ = fs::remove_file(&config.state);
        let _ = fs::remove_file(&config.ledger);
    }
    let (mut next_id, resumed) = match load_state(&config.state) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("job_queue: {e}");
            return ExitCode::from(2);
        }
    };
    let (finished_before, _) = read_ledger(&config.ledger);
    let resumed_already_done = resumed
        .iter()
        .filter(|j| finished_before.contains(&j.id))
        .count();

    let queue = Arc::new(JobQueue::default());
    for &job in &resumed {
        queue.push(job);
    }
    for _ in 0..config.jobs {
        // 50% high, 30% normal, 20% low.
        let priority = match next_id % 10 {
            0..=4 => 0,
            5..=7 => 1,
            _ => 2,
        };
        queue.push(Job {
            id: next_id,
            priority,
            attempts: 0,
        });
        next_id += 1;
    }
    let total = resumed.len() + config.jobs as usize;
    println!(
        "job_queue: resumed {} jobs from {}, submitted {} new, {} workers",
        resumed.len(),
        config.state.display(),
        config.jobs,
        config.workers
    );

    let ledger_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.ledger);
    let ledger = match ledger_file {
        Ok(file) => Arc::new(Mutex::new(BufWriter::new(file))),
        Err(e) => {
            eprintln!("job_queue: opening {}: {e}", config.ledger.display());
            return ExitCode::from(2);
        }
    };
    let (ctx, stop) = Context::background().with_timeout(config.run_for);
    let unfinished = Arc::new(WaitGroup::new());
    unfinished.add(total as isize);
    let (done, dead, retried) = (
        Arc::new(Counter::new()),
        Arc::new(Counter::new()),
        Arc::new(Counter::new()),
    );
    let times = Arc::new(Mutex::new(Vec::with_capacity(total)));

    let workers = Arc::new(WaitGroup::new());
    for _ in 0..config.workers {
        let (queue, ledger, unfinished, stop) = (
            queue.clone(),
            ledger.clone(),
            unfinished.clone(),
            stop.clone(),
        );
        let (done, dead, retried, times) =
            (done.clone(), dead.clone(), retried.clone(), times.clone());
        let stop_after = config.stop_after;
        workers.go(move || {
            while let Some(mut job) = queue.pop() {
                let started = Instant::now();
                let result = job.run();
                let took = started.elapsed();
                times.lock().push(took);
                job.attempts += 1;
                let outcome = match result {
                    Ok(()) => "done",
                    Err(_) if job.attempts < MAX_ATTEMPTS => {
                        retried.inc();
                        queue.retry_later(job, BACKOFF_BASE * 2u32.pow(job.attempts));
                        continue;
                    }
                    Err(_) => "dead",
                };
                writeln!(ledger.lock(), "{outcome} {}", job.id).expect("the ledger is writable");
                let finished = if outcome == "done" { &done } else { &dead };
                finished.inc();
                unfinished.done();
                if stop_after.is_some_and(|n| done.value() + dead.value() >= n) {
                    stop.cancel();
                }
            }
        });
    }

    let monitor = {
        let (queue, ctx) = (queue.clone(), ctx.clone());
        thread::spawn(move || {
            let (mut samples, mut max_len) = (0, [0; 3]);
            while !ctx.wait_for(Duration::from_millis(10)) {
                let queues = queue.queues.lock();
                for (p, max) in max_len.iter_mut().enumerate() {
                    *max = (*max).max(queues.len(p));
                }
                samples += 1;
            }
            (samples, max_len)
        })
    };

    let started = Instant::now();
    let why_stopped = match unfinished.wait_ctx(&ctx) {
        Ok(()) => "every job finished".to_string(),
        Err(e) => format!("stop requested ({e})"),
    };
    stop.cancel(); // ends the monitor when every job finished
    queue.close();
    workers.wait();
    let elapsed = started.elapsed();
    let (samples, max_len) = monitor.join().expect("the monitor does not panic");

    let mut queues = queue.queues.lock();
    let passed_over = queues.max_passed_over;
    let mut saved: Vec<Job> = queues.ready.iter_mut().flat_map(|q| q.drain(..)).collect();
    saved.extend(queues.retrying.drain(..).map(|(_, job)| job));
    drop(queues);
    if let Err(e) = save_state(&config.state, next_id, &saved) {
        eprintln!("job_queue: saving {}: {e}", config.state.display());
        return ExitCode::FAILURE;
    }
    ledger.lock().flush().expect("the ledger is writable");

    let (ledger_ids, duplicates) = read_ledger(&config.ledger);
    let saved_ids: HashSet<u64> = saved.iter().map(|j| j.id).collect();
    let lost = (0..next_id)
        .filter(|id| !ledger_ids.contains(id) && !saved_ids.contains(id))
        .count();
    let both = saved_ids.intersection(&ledger_ids).count();
    let mut times = times.lock().clone();
    times.sort();
    let percentile = |p: usize| {
        times
            .get(times.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or_default()
    };

    println!(
        "{why_stopped} after {elapsed:.2?}; saved {} unfinished jobs to {}",
        saved.len(),
        config.state.display()
    );
    println!(
        "queue lengths sampled {samples} times, max high/normal/low: {}/{}/{}",
        max_len[0], max_len[1], max_len[2]
    );
    println!(
        "processing time per attempt: p50 {:.2?}, p99 {:.2?}",
        percentile(50),
        percentile(99)
    );
    let [high, normal, low] = passed_over;
    println!(
        "most pops in a row that passed over waiting high/normal/low jobs: {high}/{normal}/{low}"
    );
    let (done, dead, retried) = (done.value(), dead.value(), retried.value());
    println!(
        "summary: resumed={} submitted={} done={done} dead={dead} retried={retried} saved={}",
        resumed.len(),
        config.jobs,
        saved.len()
    );
    println!(
        "summary: ids_issued={next_id} ledger_ids={} ledger_duplicates={duplicates} lost={lost}",
        ledger_ids.len()
    );

    let mut invariants = Invariants::default();
    let finished = done + dead + saved.len() as i64;
    invariants.check(
        "every job of this run finished or was saved",
        finished == total as i64,
    );
    invariants.check(
        "no resumed job had already finished",
        resumed_already_done == 0,
    );
    invariants.check(
        "no job finished twice, in any run",
        duplicates == 0 && both == 0,
    );
    invariants.check("every id ever issued is finished or saved", lost == 0);
    let bound = |p: usize| SLOTS.iter().filter(|&&s| s != p).count();
    invariants.check(
        "no priority waited more than a cycle of 7 pops",
        (0..3).all(|p| passed_over[p] <= bound(p)),
    );
    invariants.verdict()
}
