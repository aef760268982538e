//! Runs every example program with small sizes and a time limit, and checks the invariants it
//! prints: each item handled once, nothing leaked, limits never exceeded.
//!
//! `cargo test` builds the examples next to this test (`target/<profile>/examples/`); when a
//! filtered run did not, the test builds the one it needs. Not under miri, which cannot start
//! processes (and the examples are native programs, not the code miri is there to check).
#![cfg(not(miri))]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous for a busy 2-core machine; each example finishes in a second or two when idle.
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn example_binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let status = Command::new(cargo)
            .args(["build", "-p", "gosync", "--example", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building example {name} failed");
    }
    binary
}

/// Runs an example to completion within [`TIME_LIMIT`] and returns its stdout; fails the test on
/// a non-zero exit, a missing `invariants: ok` line, or the time limit.
fn run_example(name: &str, args: &[&str]) -> String {
    let binary = example_binary(name);
    let child = Command::new(&binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let pid = child.id();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<std::io::Result<Output>>();
    thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(TIME_LIMIT) {
        Ok(output) => output.expect("waiting for the example"),
        Err(_) => {
            #[cfg(unix)]
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("example {name} {args:?} (pid {pid}) ran longer than {TIME_LIMIT:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "--- {name} {args:?} took {:.2?}\n{stdout}{stderr}",
        started.elapsed()
    );
    assert!(
        output.status.success(),
        "example {name} exited with {}",
        output.status
    );
    assert!(
        stdout.lines().any(|line| line == "invariants: ok"),
        "example {name} did not report `invariants: ok`"
    );
    assert!(
        !stdout.contains("FAILED"),
        "example {name} reported a failed check"
    );
    stdout
}

/// The number after `key=` in the program's `summary:` lines.
fn field(stdout: &str, key: &str) -> i64 {
    let needle = format!("{key}=");
    stdout
        .lines()
        .filter(|line| line.starts_with("summary:"))
        .flat_map(str::split_whitespace)
        .find_map(|word| word.strip_prefix(needle.as_str()))
        .unwrap_or_else(|| panic!("no `{key}=` in the summary:\n{stdout}"))
        .parse()
        .unwrap_or_else(|e| panic!("`{key}=` is not a number ({e}):\n{stdout}"))
}

#[test]
fn ttl_cache() {
    let out = run_example(
        "ttl_cache",
        &[
            "--workers",
            "4",
            "--ops",
            "2000",
            "--keys",
            "200",
            "--capacity",
            "50",
            "--ttl-ms",
            "10",
        ],
    );
    assert_eq!(
        field(&out, "hits") + field(&out, "misses"),
        field(&out, "gets")
    );
    assert_eq!(
        field(&out, "inserts"),
        field(&out, "replaced")
            + field(&out, "evicted")
            + field(&out, "expired")
            + field(&out, "left")
    );
    assert!(field(&out, "high_water") <= 50);
    assert!(
        field(&out, "evicted") > 0,
        "the workload is sized to fill the cache"
    );
    assert!(
        field(&out, "expired") > 0,
        "the final sweep at least expires what is left"
    );
    assert_eq!(field(&out, "left"), 0);
}

#[test]
fn job_queue_resumes_without_losing_or_repeating_jobs() {
    let dir = std::env::temp_dir().join(format!("gosync-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let state = dir.join("job_queue.state");
    let ledger = dir.join("job_queue.ledger");
    let files = [
        "--state",
        state.to_str().expect("a UTF-8 path"),
        "--ledger",
        ledger.to_str().expect("a UTF-8 path"),
    ];

    let mut first_args = vec![
        "--fresh",
        "--jobs",
        "200",
        "--workers",
        "4",
        "--stop-after",
        "60",
    ];
    first_args.extend(files);
    let first = run_example("job_queue", &first_args);
    let saved = field(&first, "saved");
    assert!(
        saved > 0,
        "stopping after 60 of 200 jobs leaves some to save"
    );
    assert_eq!(
        field(&first, "done") + field(&first, "dead") + saved,
        200,
        "every job of the first run finished or was saved"
    );

    let mut second_args = vec!["--jobs", "30", "--workers", "3"];
    second_args.extend(files);
    let second = run_example("job_queue", &second_args);
    assert_eq!(
        field(&second, "resumed"),
        saved,
        "the second run loads what the first saved"
    );
    assert_eq!(
        field(&second, "saved"),
        0,
        "the second run finishes everything"
    );
    assert_eq!(field(&second, "ids_issued"), 230);
    assert_eq!(
        field(&second, "ledger_ids"),
        230,
        "every job finished, across both runs"
    );
    assert_eq!(
        field(&second, "ledger_duplicates"),
        0,
        "no job finished twice"
    );
    assert_eq!(field(&second, "lost"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conn_pool() {
    let out = run_example(
        "conn_pool",
        &[
            "--clients",
            "6",
            "--requests",
            "50",
            "--max-conns",
            "3",
            "--conn-life",
            "10",
        ],
    );
    assert_eq!(field(&out, "echoed"), field(&out, "requests"));
    assert_eq!(field(&out, "errors"), 0);
    assert!(field(&out, "max_lent") <= 3);
    assert!(field(&out, "max_open") <= 3);
    assert_eq!(field(&out, "open_at_end"), 0, "no connection leaked");
    assert_eq!(field(&out, "dialed"), field(&out, "accepted"));
    assert!(
        field(&out, "unhealthy") + field(&out, "broken_mid_request") > 0,
        "connections the server closed were found and replaced"
    );
}

#[test]
fn scheduler() {
    let out = run_example(
        "scheduler",
        &["--tasks", "30", "--limit", "3", "--seconds", "3"],
    );
    let tasks = field(&out, "tasks");
    assert_eq!(tasks, 33);
    assert_eq!(
        field(&out, "pending"),
        0,
        "every one-time task is due well before shutdown"
    );
    assert_eq!(
        field(&out, "succeeded")
            + field(&out, "failed")
            + field(&out, "cancelled")
            + field(&out, "skipped"),
        tasks
    );
    assert!(field(&out, "cancelled") >= 2);
    assert!(field(&out, "skipped") >= 1);
    assert!(field(&out, "max_running") <= 3);
    assert_eq!(field(&out, "early_starts"), 0);
    assert_eq!(field(&out, "dep_violations"), 0);
    assert!(
        field(&out, "cron_firings") >= 1,
        "the every-second cron task fired"
    );
    assert_eq!(field(&out, "cron_gaps") + field(&out, "cron_duplicates"), 0);
}

#[test]
fn crawler_fetches_every_allowed_page_once() {
    let out = run_example(
        "crawler",
        &[
            "--hosts",
            "3",
            "--pages",
            "12",
            "--workers",
            "6",
            "--per-host",
            "2",
            "--delay-ms",
            "0",
        ],
    );
    assert_eq!(field(&out, "fetched"), 36);
    assert_eq!(field(&out, "server_page_fetches"), 36);
    assert_eq!(
        field(&out, "repeats"),
        0,
        "no URL, robots.txt included, fetched twice"
    );
    assert_eq!(field(&out, "private_fetches"), 0);
    assert!(field(&out, "max_in_flight_per_host") <= 2);
    assert_eq!(field(&out, "errors"), 0);
}

#[test]
fn crawler_is_polite_and_stops_on_cancel() {
    let out = run_example(
        "crawler",
        &[
            "--hosts",
            "2",
            "--pages",
            "30",
            "--workers",
            "4",
            "--per-host",
            "1",
            "--delay-ms",
            "3",
            "--max-pages",
            "8",
        ],
    );
    let fetched = field(&out, "fetched");
    assert!(
        (8..60).contains(&fetched),
        "cancelled after 8 pages, fetched {fetched}"
    );
    assert_eq!(field(&out, "server_page_fetches"), fetched);
    assert_eq!(field(&out, "repeats"), 0);
    assert_eq!(field(&out, "private_fetches"), 0);
    assert!(field(&out, "max_in_flight_per_host") <= 1);
}

/// The README and docs/ point readers at the examples and at each other: every relative link
/// must name a file or directory that exists.
#[test]
fn doc_links_resolve() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ exists") {
        let path = entry.expect("a readable entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a readable page");
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            let dir = page.parent().expect("a page has a directory");
            if !dir.join(path).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
