//! A task scheduler: one-time and cron tasks, priorities, dependencies and cancellation.
//!
//! What it shows:
//! - one-time tasks and recurring tasks written in cron syntax (the `cron` crate parses them and
//!   lists their occurrences; the seconds field lets a short run see several firings);
//! - a dispatcher thread sleeping on a `Cond` until the next timer, a change, or shutdown: it
//!   waits with a child `Context` whose deadline is the next timer, so one `wait_ctx` covers all
//!   three (`Context::with_deadline`);
//! - three priority queues with weighted credits (4 high, 2 normal, 1 low, refilled when spent),
//!   so a backlog of high-priority work never starves low priority;
//! - bounded concurrency and error collection: each run is an `errgroup::Group` task, the group
//!   limited to `--limit` at once (`set_limit`); `wait` returns the first error, and every error
//!   is also kept in a list;
//! - tasks that depend on other tasks: released when all of them succeeded, skipped when one
//!   failed or was cancelled;
//! - cancellation of one task (pending or running: each run has its own child `Context`) and of
//!   the whole scheduler (the root `Context`'s deadline, `--seconds`).
//!
//! Run it with `cargo run --example scheduler -- --tasks 60 --limit 4 --seconds 3`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cron::Schedule;
use gosync::context::{Canceler, Context};
use gosync::{errgroup, Cond, Mutex};

mod common;

use common::{usage, Invariants};

type TaskId = usize;
const WEIGHTS: [u32; 3] = [4, 2, 1];

enum When {
    At(Instant),
    Cron(Box<Schedule>),
}

struct Task {
    name: String,
    priority: usize,
    when: When,
    deps: Vec<TaskId>,
    work: Duration,
    fails: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

struct Run {
    task: TaskId,
    due: Instant,
    occurrence: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct State {
    timers: BinaryHeap<Reverse<(Instant, TaskId)>>,
    next_occurrence: HashMap<TaskId, DateTime<Utc>>,
    waiting_for_deps: Vec<(TaskId, Instant)>,
    ready: [VecDeque<Run>; 3],
    credits: [u32; 3],
    running: HashMap<TaskId, Canceler>,
    cancelled: HashSet<TaskId>,
    outcomes: HashMap<TaskId, Outcome>,
    /// One-time tasks: (started, finished); the dependency check reads it.
    timeline: HashMap<TaskId, (Instant, Instant)>,
    firings: Vec<(TaskId, DateTime<Utc>, Outcome)>,
    passed_over: [usize; 3],
    max_passed_over: [usize; 3],
}

impl State {
    /// Moves due timers on: one-time tasks to the dependency check, cron firings straight to
    /// their queue (booking the next occurrence); then releases or skips tasks whose deps ended.
    fn release_due(&mut self, tasks: &[Task], now: Instant) {
        while let Some(&Reverse((due, id))) = self.timers.peek().filter(|t| t.0 .0 <= now) {
            self.timers.pop();
            match &tasks[id].when {
                _ if self.cancelled.contains(&id) => {} // `cancel` recorded the outcome
                When::At(_) => self.waiting_for_deps.push((id, due)),
                When::Cron(schedule) => {
                    let occurrence = self.next_occurrence[&id];
                    self.ready[tasks[id].priority].push_back(Run {
                        task: id,
                        due,
                        occurrence: Some(occurrence),
                    });
                    self.book_cron(id, schedule, occurrence);
                }
            }
        }
        loop {
            let before = self.waiting_for_deps.len();
            let outcomes = &mut self.outcomes;
            let ready = &mut self.ready;
            self.waiting_for_deps.retain(|&(id, due)| {
                let deps: Vec<_> = tasks[id]
                    .deps
                    .iter()
                    .map(|d| outcomes.get(d).copied())
                    .collect();
                if deps
                    .iter()
                    .any(|o| matches!(o, Some(o) if *o != Outcome::Succeeded))
                {
                    outcomes.insert(id, Outcome::Skipped);
                } else if deps.iter().all(|o| *o == Some(Outcome::Succeeded)) {
                    ready[tasks[id].priority].push_back(Run {
                        task: id,
                        due,
                        occurrence: None,
                    });
                } else {
                    return true;
                }
                false
            });
            if self.waiting_for_deps.len() == before {
                break;
            }
        }
    }

    fn book_cron(&mut self, id: TaskId, schedule: &Schedule, after: DateTime<Utc>) {
        if let Some(next) = schedule.after(&after).next() {
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            self.timers.push(Reverse((Instant::now() + wait, id)));
            self.next_occurrence.insert(id, next);
        }
    }

    /// The highest priority that has both runs and credits; credits refill when none does.
    fn pop_fair(&mut self) -> Option<Run> {
        if self.ready.iter().all(VecDeque::is_empty) {
            return None;
        }
        let chosen = match (0..3).find(|&p| self.credits[p] > 0 && !self.ready[p].is_empty()) {
            Some(p) => p,
            None => {
                self.credits = WEIGHTS;
                (0..3).find(|&p| !self.ready[p].is_empty())?
            }
        };
        self.credits[chosen] -= 1;
        for p in 0..3 {
            let passed = p != chosen && !self.ready[p].is_empty();
            self.passed_over[p] = if passed { self.passed_over[p] + 1 } else { 0 };
            self.max_passed_over[p] = self.max_passed_over[p].max(self.passed_over[p]);
        }
        self.ready[chosen].pop_front()
    }
}

struct Scheduler {
    tasks: Vec<Task>,
    state: Mutex<State>,
    changed: Cond,
    running_now: AtomicUsize,
    max_running: AtomicUsize,
    early_starts: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Scheduler {
    fn new(tasks: Vec<Task>) -> Self {
        let mut state = State {
            credits: WEIGHTS,
            ..State::default()
        };
        for (id, task) in tasks.iter().enumerate() {
            match &task.when {
                When::At(at) => state.timers.push(Reverse((*at, id))),
                When::Cron(schedule) => state.book_cron(id, schedule, Utc::now()),
            }
        }
        let state = Mutex::new(state);
        let (running_now, max_running, early_starts) = Default::default();
        Scheduler {
            tasks,
            state,
            changed: Cond::new(),
            running_now,
            max_running,
            early_starts,
            errors: Mutex::default(),
        }
    }

    /// Cancels a task: a pending one never runs, a running one is interrupted, a cron task stops.
    fn cancel(&self, id: TaskId) {
        let mut state = self.state.lock();
        state.cancelled.insert(id);
        if let Some(canceler) = state.running.get(&id) {
            canceler.cancel();
        }
        for queue in &mut state.ready {
            queue.retain(|run| run.task != id);
        }
        state.waiting_for_deps.retain(|&(waiting, _)| waiting != id);
        let not_started = !state.running.contains_key(&id);
        if matches!(self.tasks[id].when, When::At(_)) && not_started {
            state.outcomes.entry(id).or_insert(Outcome::Cancelled);
        }
        self.changed.signal(); // dependents may now be skipped
    }

    /// Starts due runs, fairly, at most `limit` at once, until `ctx` is done.
    fn dispatch(self: &Arc<Self>, ctx: &Context, group: &errgroup::Group<String>) {
        loop {
            let (run, run_ctx) = {
                let mut state = self.state.lock();
                loop {
                    if ctx.is_done() {
                        return;
                    }
                    state.release_due(&self.tasks, Instant::now());
                    if let Some(run) = state.pop_fair() {
                        let (run_ctx, canceler) = ctx.with_cancel();
                        state.running.insert(run.task, canceler);
                        break (run, run_ctx);
                    }
                    let (timer, stop_timer) = match state.timers.peek() {
                        Some(Reverse((at, _))) => ctx.with_deadline(*at),
                        None => ctx.with_cancel(),
                    };
                    let _ = self.changed.wait_ctx(&mut state, &timer);
                    stop_timer.cancel(); // detaches the timer from `ctx`
                }
            };
            let scheduler = Arc::clone(self);
            group.go(move || scheduler.execute(run, &run_ctx)); // blocks while `limit` are running
        }
    }

    fn execute(&self, run: Run, ctx: &Context) -> Result<(), String> {
        let task = &self.tasks[run.task];
        let started = Instant::now();
        if started < run.due {
            self.early_starts.fetch_add(1, Ordering::SeqCst);
        }
        let now_running = self.running_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now_running, Ordering::SeqCst);
        let outcome = if ctx.wait_for(task.work) {
            Outcome::Cancelled // the work listens to its context, as Go code selects on ctx.Done()
        } else if task.fails {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        };
        self.running_now.fetch_sub(1, Ordering::SeqCst);

        let mut state = self.state.lock();
        state.running.remove(&run.task);
        match run.occurrence {
            Some(occurrence) => state.firings.push((run.task, occurrence, outcome)),
            None => {
                state.outcomes.insert(run.task, outcome);
                state.timeline.insert(run.task, (started, Instant::now()));
            }
        }
        self.changed.signal(); // dependents may be released
        drop(state);
        match outcome {
            Outcome::Succeeded => Ok(()),
            _ => {
                let error = format!("{} {outcome:?}", task.name);
                self.errors.lock().push(error.clone());
                Err(error)
            }
        }
    }
}

/// The demo workload: `n` one-time tasks due within the first 400 ms (every 9th fails; every
/// 10th depends on the two before it), a long task cancelled while running, a task cancelled
/// before it is due and its dependent, and two cron tasks.
fn workload(n: usize, start: Instant) -> Vec<Task> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut tasks: Vec<Task> = (0..n)
        .map(|i| Task {
            name: format!("task-{i}"),
            priority: rng.usize(0..3),
            when: When::At(start + Duration::from_millis(rng.u64(0..400))),
            deps: if i % 10 == 7 {
                vec![i - 1, i - 2]
            } else {
                vec![]
            },
            work: Duration::from_millis(rng.u64(2..15)),
            fails: i % 9 == 4,
        })
        .collect();
    let one_time = |name: &str, at: Duration, deps, work| Task {
        name: name.into(),
        priority: 0,
        when: When::At(start + at),
        deps,
        work,
        fails: false,
    };
    tasks.push(one_time(
        "long-running",
        Duration::ZERO,
        vec![],
        Duration::from_secs(60),
    ));
    tasks.push(one_time(
        "cancelled-early",
        Duration::from_secs(2),
        vec![],
        Duration::from_millis(5),
    ));
    tasks.push(one_time(
        "after-cancelled",
        Duration::ZERO,
        vec![n + 1],
        Duration::from_millis(5),
    ));
    for (name, spec, priority) in [
        ("heartbeat", "* * * * * *", 2),
        ("report", "*/2 * * * * *", 1),
    ] {
        let schedule = Schedule::from_str(spec).expect("a valid cron expression");
        let when = When::Cron(Box::new(schedule));
        tasks.push(Task {
            name: name.into(),
            priority,
            when,
            deps: vec![],
            work: Duration::from_millis(3),
            fails: false,
        });
    }
    tasks
}

fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    let parsed = (|| -> Result<_, pico_args::Error> {
        Ok((
            args.opt_value_from_str("--tasks")?.unwrap_or(60usize),
            args.opt_value_from_str("--limit")?.unwrap_or(4usize),
            args.opt_value_from_str("--seconds")?.unwrap_or(3u64),
        ))
    })();
    let (n, limit, seconds) = match (parsed, args.finish()) {
        (Ok(values), rest) if rest.is_empty() => values,
        (Err(e), _) => return usage(&e.to_string()),
        (_, rest) => return usage(&format!("unknown arguments {rest:?}")),
    };

    let start = Instant::now();
    let scheduler = Arc::new(Scheduler::new(workload(n, start)));
    let (ctx, _) = Context::background().with_timeout(Duration::from_secs(seconds));
    let group = errgroup::Group::<String>::new();
    group.set_limit(Some(limit.max(1)));
    println!("scheduler: {n} one-time tasks + 3 special + 2 cron, limit {limit}, shutting down after {seconds}s");

    let canceller = {
        let (scheduler, ctx) = (Arc::clone(&scheduler), ctx.clone());
        thread::spawn(move || {
            if !ctx.wait_for(Duration::from_millis(300)) {
                scheduler.cancel(n); // long-running: running by now
                scheduler.cancel(n + 1); // cancelled-early: not due yet
            }
        })
    };
    scheduler.dispatch(&ctx, &group);
    let first_error = group.wait().err();
    canceller.join().expect("the canceller does not panic");
    let elapsed = start.elapsed();

    let state = scheduler.state.lock();
    let one_time = n + 3;
    let count = |o| {
        (0..one_time)
            .filter(|id| state.outcomes.get(id) == Some(&o))
            .count()
    };
    let (succeeded, failed) = (count(Outcome::Succeeded), count(Outcome::Failed));
    let (cancelled, skipped) = (count(Outcome::Cancelled), count(Outcome::Skipped));
    let pending = one_time - state.outcomes.len();
    let dep_violations = state
        .timeline
        .iter()
        .filter(|(id, (started, _))| {
            scheduler.tasks[**id]
                .deps
                .iter()
                .any(|d| !matches!(state.timeline.get(d), Some((_, end)) if end <= started))
        })
        .count();
    let (mut cron_gaps, mut cron_duplicates, mut cron_firings) = (0, 0, 0);
    for (id, task) in scheduler.tasks.iter().enumerate() {
        let When::Cron(schedule) = &task.when else {
            continue;
        };
        let mut fired: Vec<_> = state
            .firings
            .iter()
            .filter(|f| f.0 == id)
            .map(|f| f.1)
            .collect();
        fired.sort();
        cron_firings += fired.len();
        println!(
            "cron {} ({}): fired {} times",
            task.name,
            schedule.source(),
            fired.len()
        );
        for pair in fired.windows(2) {
            cron_duplicates += usize::from(pair[0] == pair[1]);
            cron_gaps +=
                usize::from(pair[0] != pair[1] && schedule.after(&pair[0]).next() != Some(pair[1]));
        }
    }
    let max_running = scheduler.max_running.load(Ordering::SeqCst);
    let early = scheduler.early_starts.load(Ordering::SeqCst);
    let errors = scheduler.errors.lock().len();

    println!(
        "ran {elapsed:.2?}; first error from the group: {first_error:?}; {errors} errors collected"
    );
    let pf = state.max_passed_over;
    println!(
        "most dispatches in a row that passed over waiting high/normal/low runs: {}/{}/{}",
        pf[0], pf[1], pf[2]
    );
    println!("summary: tasks={one_time} succeeded={succeeded} failed={failed} cancelled={cancelled} skipped={skipped} pending={pending}");
    println!("summary: limit={limit} max_running={max_running} early_starts={early} dep_violations={dep_violations}");
    println!("summary: cron_firings={cron_firings} cron_gaps={cron_gaps} cron_duplicates={cron_duplicates} errors={errors}");

    let mut invariants = Invariants::default();
    let ended = succeeded + failed + cancelled + skipped;
    invariants.check(
        "every one-time task ended once, or is still pending",
        ended + pending == one_time,
    );
    let outcome = |id: TaskId| state.outcomes.get(&id).copied();
    invariants.check(
        "both cancelled tasks ended cancelled; the early one never ran",
        outcome(n) == Some(Outcome::Cancelled)
            && outcome(n + 1) == Some(Outcome::Cancelled)
            && !state.timeline.contains_key(&(n + 1)),
    );
    invariants.check(
        "a dependent of a cancelled task was skipped",
        outcome(n + 2) == Some(Outcome::Skipped),
    );
    invariants.check(
        "no task started before its dependencies finished",
        dep_violations == 0,
    );
    invariants.check("no run started before it was due", early == 0);
    invariants.check(
        "never more than `limit` runs at once",
        max_running <= limit.max(1),
    );
    invariants.check(
        "every cron occurrence fired once, none skipped",
        cron_gaps + cron_duplicates == 0,
    );
    invariants.check(
        "the group reported an error iff a run failed",
        first_error.is_some() == (errors > 0),
    );
    // A priority that spent its credit just before a burst of others waits out the rest of the
    // round and, at worst, one more round: twice the others' credits.
    let bound = |p: usize| 2 * (WEIGHTS.iter().sum::<u32>() - WEIGHTS[p]) as usize;
    invariants.check(
        "no priority passed over for more than two rounds of the others' credits",
        (0..3).all(|p| pf[p] <= bound(p)),
    );
    invariants.verdict()
}
