//! Commands run side by side: the loom step's crates and the miri step's test targets.
//!
//! Miri interprets on one core, and a loom model often leaves one of two cores idle while its
//! last model runs; run one after another, the two steps took over half an hour on the 2-core CI
//! machine. So each crate (loom) or test target (miri) is a job, as many run at once as the
//! machine has cores (at most [`MAX_JOBS`]; `XTASK_JOBS` overrides), the largest first. Jobs
//! share a target directory: cargo's lock lets one build at a time while the others run. A job's
//! output goes to a log file and is printed whole when it ends, so jobs never interleave; its
//! start is printed at once.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::env;
use std::fs;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::{Cmd, Workspace};

/// Jobs at once by default: one per core, up to this many (each miri process holds its own
/// copy of the interpreted program, hundreds of MB for the larger tests).
const MAX_JOBS: usize = 4;

/// One command of a step, for one crate.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) krate: String,
    /// What the job runs, for the log's name and the report: `gosync-map (--test map)`.
    pub(crate) label: String,
    pub(crate) cmd: Cmd,
    /// The size of its sources: the larger start first, so that the longest jobs do not end
    /// the step alone.
    pub(crate) weight: u64,
}

/// Runs `jobs`, largest first, with their logs in `logs`; the step's note, or the jobs that
/// failed. `crates` are the crates the step went over, and `without` those it had nothing to run
/// for (`without_label` says why).
pub(crate) fn run_all(
    ws: &Workspace,
    mut jobs: Vec<Job>,
    logs: &Path,
    crates: &[&str],
    without: &[&str],
    without_label: &str,
) -> Result<String, String> {
    jobs.sort_by_key(|job| Reverse(job.weight));
    let count = jobs.len();
    let workers = workers()?.min(count.max(1));
    fs::create_dir_all(logs)
        .map_err(|error| format!("cannot create {}: {error}", logs.display()))?;
    let failed = run_on(ws, jobs, logs, workers);

    let passed: Vec<&str> = crates
        .iter()
        .copied()
        .filter(|name| !without.contains(name) && !failed.iter().any(|job| job.krate == *name))
        .collect();
    let mut failed: Vec<&str> = failed.iter().map(|job| job.label.as_str()).collect();
    failed.sort_unstable();
    crate_report(&passed, without, without_label, &failed).map(|note| {
        let jobs = if count == 1 { "job" } else { "jobs" };
        format!("{note}; {count} {jobs}, {workers} at a time")
    })
}

/// How often the jobs still running are named, with how long they have run: their output comes
/// only when they end, and a job that hangs must not go unnamed until the CI's time limit.
const STILL_RUNNING_EVERY: Duration = Duration::from_secs(300);

/// Runs `jobs` in order on `workers` threads; returns those that failed.
fn run_on(ws: &Workspace, jobs: Vec<Job>, logs: &Path, workers: usize) -> Vec<Job> {
    let queue = Mutex::new(VecDeque::from(jobs));
    let failed = Mutex::new(Vec::new());
    let running = Mutex::new(Vec::<(String, Instant)>::new());
    let (done, all_done) = (Mutex::new(false), Condvar::new());
    thread::scope(|scope| {
        let workers: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    // Not `while let`, whose scrutinee's guard would hold the queue (and so keep
                    // the other workers waiting) until the job ends.
                    loop {
                        let Some(job) = lock(&queue).pop_front() else {
                            break;
                        };
                        let log = logs.join(format!("{}.log", file_name(&job.label)));
                        println!(
                            "--- started: {} (log: {})",
                            job.label,
                            ws.display_path(&log)
                        );
                        lock(&running).push((job.label.clone(), Instant::now()));
                        let result = job.cmd.run_logged(ws, &log);
                        lock(&running).retain(|(label, _)| *label != job.label);
                        if result.is_err() {
                            lock(&failed).push(job);
                        }
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            let mut finished = lock(&done);
            while !*finished {
                finished = all_done
                    .wait_timeout(finished, STILL_RUNNING_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                for (label, started) in lock(&running).iter() {
                    let seconds = started.elapsed().as_secs();
                    if !*finished && seconds >= STILL_RUNNING_EVERY.as_secs() {
                        println!("--- still running after {seconds} s: {label}");
                    }
                }
            }
        });
        let panicked = workers.into_iter().find_map(|worker| worker.join().err());
        *lock(&done) = true;
        all_done.notify_all();
        if let Some(payload) = panicked {
            std::panic::resume_unwind(payload);
        }
    });
    failed.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// `mutex`'s guard, also after a panic elsewhere (the data are lists a panic leaves whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `label` with every character but ASCII letters, digits and `-` replaced by `_`.
fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Jobs to run at once: `XTASK_JOBS`, or one per core up to [`MAX_JOBS`].
fn workers() -> Result<usize, String> {
    match env::var("XTASK_JOBS") {
        Ok(jobs) => match jobs.trim().parse() {
            Ok(jobs) if jobs > 0 => Ok(jobs),
            _ => Err(format!(
                "XTASK_JOBS must be a number of jobs above 0, not `{jobs}`"
            )),
        },
        Err(_) => Ok(thread::available_parallelism()
            .map_or(1, |cores| cores.get())
            .min(MAX_JOBS)),
    }
}

/// Bytes of Rust source under `path` (a file or a directory).
pub(crate) fn source_bytes(path: &Path) -> u64 {
    if path.is_file() {
        let is_rust = path.extension().is_some_and(|ext| ext == "rs");
        return if is_rust {
            fs::metadata(path).map_or(0, |meta| meta.len())
        } else {
            0
        };
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| source_bytes(&entry.path()))
        .sum()
}

/// The summary note of a per-crate step, or the list of crates that failed.
fn crate_report(
    passed: &[&str],
    without: &[&str],
    without_label: &str,
    failed: &[&str],
) -> Result<String, String> {
    if !failed.is_empty() {
        return Err(format!("failed in {}", failed.join(", ")));
    }
    let mut note = match passed.len() {
        0 => "no crate ran".to_owned(),
        1 => format!("1 crate: {}", passed[0]),
        n => format!("{n} crates"),
    };
    if !without.is_empty() {
        note.push_str(&format!("; {without_label}: {}", without.join(", ")));
    }
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(krate: &str, program: &'static str) -> Job {
        Job {
            krate: krate.to_owned(),
            label: format!("{krate} (check)"),
            cmd: Cmd::new(program, &[]),
            weight: 1,
        }
    }

    #[test]
    fn a_failed_job_fails_the_step_and_is_named() {
        let root = env::temp_dir().join(format!("xtask-jobs-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        let ws = Workspace {
            root: root.clone(),
            target_dir: root.join("target"),
        };
        let logs = root.join("logs");
        let jobs = vec![job("a", "true"), job("b", "false"), job("c", "true")];
        let failed = run_all(&ws, jobs, &logs, &["a", "b", "c"], &[], "");
        assert_eq!(failed, Err("failed in b (check)".to_owned()));
        let note = run_all(
            &ws,
            vec![job("a", "true")],
            &logs,
            &["a", "d"],
            &["d"],
            "none",
        );
        assert_eq!(
            note.as_deref(),
            Ok("1 crate: a; none: d; 1 job, 1 at a time")
        );
        fs::remove_dir_all(&root).unwrap();
    }

    /// Two jobs that meet through a named pipe (each side blocks until the other opens it) end
    /// only if they run at once; `timeout` fails them instead of hanging if they do not.
    #[cfg(unix)]
    #[test]
    fn jobs_run_side_by_side() {
        let root = env::temp_dir().join(format!("xtask-jobs-pipe-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        let pipe = root.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(made.success());
        let ws = Workspace {
            root: root.clone(),
            target_dir: root.join("target"),
        };
        let side = |krate: &str, script: &str| Job {
            krate: krate.to_owned(),
            label: format!("{krate} (pipe)"),
            cmd: Cmd::new("timeout", &["60", "sh", "-c", script]),
            weight: 1,
        };
        let jobs = vec![side("a", "echo hello > pipe"), side("b", "cat pipe")];
        let logs = root.join("logs");
        fs::create_dir_all(&logs).unwrap();
        let failed = run_on(&ws, jobs, &logs, 2);
        assert!(failed.is_empty(), "the jobs ran one after the other");
        fs::remove_dir_all(&root).unwrap();
    }
}
