//! `cargo xtask bench [--no-go] [--report-only] [--runs N] [--load N] [FILTER]`: runs the
//! benchmarks and regenerates `docs/performance.md`.
//!
//! `--load N` runs every bench process with N busy neighbour threads competing for the cores
//! (`GOSYNC_BENCH_LOAD=N`, read by `benches/lib.rs`); its results are kept apart from the idle
//! ones (`<target>/criterion/load<N>/run<i>`, `<target>/gosync-bench/load<N>/`), and the report
//! shows every load level measured so far, each with its own date, run count and targets
//! ([`LOAD_TARGETS`]). The Go twins run only idle.
//!
//! 1. `cargo bench -p gosync-benches -- [FILTER]`: the criterion benches (one process per bench
//!    target), the fairness harness, the memory probe and the map rounds harness, whose
//!    `FAIRNESS ...`, `MEMORY ...` and `ROUNDS ...` lines are collected from stdout.
//!    The criterion benches then run again, `N` runs in all (3 by default), each into its own
//!    `<target>/criterion/run<i>`: the report gives the median over the runs of each median,
//!    and of each ratio, since one run on a noisy machine can be off by 10% or more.
//! 2. When `go` is on the `PATH`, the Go twins: `go run . [FILTER]` in `benches/go`
//!    (`GOBENCH ...` and `FAIRNESS ...` lines).
//! 3. Reads criterion's median estimates (`<target>/criterion/run<i>/<group>/<bench>/new/estimates.json`)
//!    and the saved lines, computes ratios (peer median / gosync median: above 1 means gosync is
//!    faster) and writes the report.
//!
//! FILTER keeps the benchmarks whose id (`group/bench`, `fairness/scenario`, or
//! `map_rounds/group`) contains it.
//! Results of earlier runs are kept (criterion's files; the lines in
//! `<target>/gosync-bench/results.txt`), so a filtered run updates only its part of the report;
//! each table states how many runs its medians come from, and a filtered run with fewer runs
//! removes the matching results of the runs it did not repeat. What each invocation did (date,
//! runs, load average, Go version) is saved beside the lines (`run.txt`), so the report states
//! only what happened: no Go row without a Go run, no run count that was not run.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// One criterion group and what the report says about it.
struct Group {
    /// The criterion group id (the Go twin prints the same id).
    id: &'static str,
    /// The primitive's section in the report.
    primitive: &'static str,
    /// What one iteration does.
    what: &'static str,
    /// `(bench id, label)` of each implementation, gosync's first.
    benches: &'static [(&'static str, &'static str)],
    /// The targets to check.
    targets: &'static [Target],
}

/// A ratio target: `median(best of peers) / median(subject) >= min`.
struct Target {
    subject: &'static str,
    peers: &'static [&'static str],
    min: f64,
    /// The target as the issue words it, when that is not simply `≥ min`.
    text: &'static str,
}

/// The bench id the Go twin prints for a group, unless the group names it itself.
const GO: &str = "go";

/// The implementations of the Semaphore groups, and their target.
const SEMAPHORE_BENCHES: &[(&str, &str)] = &[
    ("gosync", "gosync `Semaphore`"),
    ("mutex_condvar", "`std` `Mutex<u64>` + `Condvar` semaphore"),
];
const SEMAPHORE_TARGETS: &[Target] = &[Target {
    subject: "gosync",
    peers: &["mutex_condvar"],
    min: 3.0,
    text: "",
}];

/// The implementations of the RwMutex groups that have no Go twin.
const RWMUTEX_WITHOUT_GO: &[(&str, &str)] = &[
    ("gosync", "gosync `RwMutex`"),
    ("parking_lot", "`parking_lot::RwLock`"),
    ("std", "`std::sync::RwLock`"),
];

/// The implementations of the Map groups (Go's `sync.Map` has no twin yet).
const MAP_BENCHES: &[(&str, &str)] = &[
    ("gosync", "gosync `Map`"),
    ("papaya", "`papaya::HashMap`"),
    ("dashmap", "`dashmap::DashMap`"),
    ("scc", "`scc::HashMap`"),
];

/// The target of the Map read groups: at least as fast as the best of the peers.
const MAP_READ_TARGETS: &[Target] = &[Target {
    subject: "gosync",
    peers: &["papaya", "dashmap", "scc"],
    min: 1.0,
    text: "against the best of them",
}];

/// The implementations of the contended `OnceCell` initialisation groups.
const ONCE_INIT_BENCHES: &[(&str, &str)] = &[
    ("gosync", "gosync `OnceCell::get_or_init`"),
    ("std", "`std::sync::OnceLock::get_or_init`"),
    (
        "parking_lot",
        "`parking_lot::Once::call_once` + `AtomicU64`",
    ),
];

const GROUPS: &[Group] = &[
    Group {
        id: "mutex_uncontended",
        primitive: "Mutex",
        what: "one `lock`, increment, unlock on one thread",
        benches: &[
            ("gosync", "gosync `Mutex`"),
            ("parking_lot", "`parking_lot::Mutex`"),
            ("std", "`std::sync::Mutex`"),
            (GO, "Go `sync.Mutex`"),
        ],
        targets: &[
            Target {
                subject: "gosync",
                peers: &["parking_lot"],
                min: 1.0 / 1.05,
                text: "within 1.05×",
            },
            Target {
                subject: "gosync",
                peers: &["std"],
                min: 1.0,
                text: "",
            },
        ],
    },
    Group {
        id: "mutex_contended_2t",
        primitive: "Mutex",
        what: "2 threads, 2000 lock/increment/unlock in total (throughput)",
        benches: &[
            ("gosync", "gosync `Mutex`"),
            ("parking_lot", "`parking_lot::Mutex`"),
            ("std", "`std::sync::Mutex`"),
            (GO, "Go `sync.Mutex` (GOMAXPROCS=2)"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["parking_lot"],
            min: 1.0,
            text: "",
        }],
    },
    Group {
        id: "mutex_oversubscribed_8t",
        primitive: "Mutex",
        what: "8 threads on the machine's cores, the same 2000 operations in total",
        benches: &[
            ("gosync", "gosync `Mutex`"),
            ("parking_lot", "`parking_lot::Mutex`"),
            ("std", "`std::sync::Mutex`"),
            (GO, "Go `sync.Mutex` (8 goroutines, GOMAXPROCS=2)"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["parking_lot"],
            min: 0.9,
            text: "",
        }],
    },
    Group {
        id: "rwmutex_read_heavy",
        primitive: "RwMutex",
        what: "2 threads, 2000 operations in total, 99% read locks, 1% write locks",
        benches: &[
            ("gosync", "gosync `RwMutex`"),
            ("parking_lot", "`parking_lot::RwLock`"),
            ("std", "`std::sync::RwLock`"),
            (GO, "Go `sync.RWMutex`"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["parking_lot", "std"],
            min: 1.2,
            text: "against the faster of the two",
        }],
    },
    Group {
        id: "rwmutex_writes_10pct",
        primitive: "RwMutex",
        what: "2 threads, 2000 operations in total, 90% read locks, 10% write locks",
        benches: RWMUTEX_WITHOUT_GO,
        targets: &[],
    },
    Group {
        id: "rwmutex_writes_50pct",
        primitive: "RwMutex",
        what: "2 threads, 2000 operations in total, 50% read locks, 50% write locks",
        benches: RWMUTEX_WITHOUT_GO,
        targets: &[],
    },
    Group {
        id: "cond_ping_pong",
        primitive: "Cond",
        what: "100 round trips between 2 threads passing a turn under a mutex + condition variable",
        benches: &[
            ("gosync", "gosync `Mutex` + `Cond`"),
            ("std", "`std` `Mutex` + `Condvar`"),
            ("parking_lot", "`parking_lot` `Mutex` + `Condvar`"),
            (GO, "Go `sync.Mutex` + `sync.Cond`"),
        ],
        targets: &[
            Target {
                subject: "gosync",
                peers: &["std"],
                min: 20.0,
                text: "",
            },
            Target {
                subject: "gosync",
                peers: &["parking_lot"],
                min: 20.0,
                text: "",
            },
        ],
    },
    Group {
        id: "cond_timed_ring",
        primitive: "Cond",
        what: "64 threads pass a token 1000 times round a ring of mutex + condition variable \
               slots, each waiting with timed waits of 60 µs (re-waiting on timeout)",
        benches: &[
            ("gosync", "gosync `Mutex` + `Cond::wait_for`"),
            ("std", "`std` `Mutex` + `Condvar::wait_timeout`"),
            ("parking_lot", "`parking_lot` `Mutex` + `Condvar::wait_for`"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["std"],
            min: 1.0 / 1.5,
            text: "within 1.5×",
        }],
    },
    Group {
        id: "once_done",
        primitive: "Once",
        what: "one call on an already initialised `Once` / cell (the done path)",
        benches: &[
            ("gosync_once", "gosync `Once::call_once`"),
            ("gosync_oncecell_get", "gosync `OnceCell::get`"),
            (
                "gosync_oncecell_get_or_init",
                "gosync `OnceCell::get_or_init`",
            ),
            ("std_once", "`std::sync::Once::call_once`"),
            ("std_oncelock_get", "`std::sync::OnceLock::get`"),
            (
                "std_oncelock_get_or_init",
                "`std::sync::OnceLock::get_or_init`",
            ),
            ("go_once", "Go `sync.Once.Do`"),
        ],
        targets: &[
            Target {
                subject: "gosync_oncecell_get",
                peers: &["std_oncelock_get"],
                min: 1.0 / 1.1,
                text: "within 1.1×",
            },
            Target {
                subject: "gosync_once",
                peers: &["std_oncelock_get"],
                min: 1.0 / 1.1,
                text: "within 1.1×",
            },
        ],
    },
    Group {
        id: "once_init_contended_2t",
        primitive: "Once",
        what: "2 threads started together call `get_or_init` on one fresh cell, whose \
               initialisation is a busy loop of about 1 µs",
        benches: ONCE_INIT_BENCHES,
        targets: &[],
    },
    Group {
        id: "once_init_contended_8t",
        primitive: "Once",
        what: "8 threads on the machine's cores, the same cell and initialisation",
        benches: ONCE_INIT_BENCHES,
        targets: &[],
    },
    Group {
        id: "waitgroup_rounds",
        primitive: "WaitGroup",
        what: "one round: arm for 2 × 5000 completions, 2 workers signal done 5000 times each, \
               the coordinator waits",
        benches: &[
            ("gosync", "gosync `WaitGroup`"),
            ("crossbeam", "`crossbeam_utils::sync::WaitGroup`"),
            ("mutex_condvar", "`std` `Mutex<usize>` + `Condvar`"),
            (GO, "Go `sync.WaitGroup`"),
        ],
        targets: &[
            Target {
                subject: "gosync",
                peers: &["crossbeam"],
                min: 1.0,
                text: "",
            },
            Target {
                subject: "gosync",
                peers: &["mutex_condvar"],
                min: 1.0,
                text: "",
            },
        ],
    },
    Group {
        id: "pool_2t",
        primitive: "Pool",
        what: "2 threads, 2000 round trips in total: take a 4 KiB `Vec<u8>`, write to it, give it \
               back cleared (throughput)",
        benches: &[
            ("gosync", "gosync `Pool` (`get`, guard dropped)"),
            ("fresh_alloc", "`Vec::with_capacity(4096)` + drop"),
            (
                "lockfree_object_pool",
                "`lockfree_object_pool::LinearObjectPool`",
            ),
            ("object_pool", "`object_pool::Pool`"),
        ],
        targets: &[
            Target {
                subject: "gosync",
                peers: &["fresh_alloc"],
                min: 3.0,
                text: "",
            },
            Target {
                subject: "gosync",
                peers: &["lockfree_object_pool", "object_pool"],
                min: 10.0,
                text: "",
            },
        ],
    },
    Group {
        id: "atomic_value_load",
        primitive: "atomic",
        what: "2 threads share 2 000 loads of a small struct while a third stores a new one \
               every 1 ms",
        benches: &[
            ("gosync_load", "gosync `Value::load` (guard)"),
            ("gosync_reader", "gosync `ValueReader::load`"),
            ("gosync_load_arc", "gosync `Value::load_arc`"),
            ("arc_swap_load", "`arc_swap::ArcSwap::load`"),
            ("arc_swap_load_full", "`arc_swap::ArcSwap::load_full`"),
        ],
        targets: &[
            Target {
                subject: "gosync_load",
                peers: &["arc_swap_load"],
                min: 1.0,
                text: "",
            },
            Target {
                subject: "gosync_reader",
                peers: &["arc_swap_load"],
                min: 5.0,
                text: "",
            },
        ],
    },
    Group {
        id: "atomic_value_store",
        primitive: "atomic",
        what: "1 000 stores of a new small struct on one thread (reported, no target)",
        benches: &[
            ("gosync", "gosync `Value::store`"),
            ("arc_swap", "`arc_swap::ArcSwap::store`"),
        ],
        targets: &[],
    },
    Group {
        id: "atomic_counter_2t",
        primitive: "atomic",
        what: "2 threads share 2 000 increments of one counter",
        benches: &[
            ("gosync", "gosync `Counter::inc`"),
            ("atomic_i64", "one shared `AtomicI64::fetch_add(Relaxed)`"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["atomic_i64"],
            min: 4.0,
            text: "",
        }],
    },
    Group {
        id: "map_read_99",
        primitive: "Map",
        what: "2 threads, 2000 operations in total on 10k `u64` keys: 99% loads, 1% stores",
        benches: MAP_BENCHES,
        targets: MAP_READ_TARGETS,
    },
    Group {
        id: "map_read_90",
        primitive: "Map",
        what: "2 threads, 2000 operations in total on 10k `u64` keys: 90% loads, 10% stores",
        benches: MAP_BENCHES,
        targets: MAP_READ_TARGETS,
    },
    Group {
        id: "map_store_delete",
        primitive: "Map",
        what: "2 threads, 2000 operations in total on 10k `u64` keys: 50% stores, 50% deletes",
        benches: MAP_BENCHES,
        targets: &[
            Target {
                subject: "gosync",
                peers: &["dashmap"],
                min: 1.0,
                text: "",
            },
            Target {
                subject: "gosync",
                peers: &["scc"],
                min: 0.8,
                text: "",
            },
        ],
    },
    Group {
        id: "map_read_99_1m",
        primitive: "Map",
        what: "2 threads, 2000 operations in total on 1M `u64` keys: 99% loads, 1% stores",
        benches: MAP_BENCHES,
        targets: MAP_READ_TARGETS,
    },
    Group {
        id: "singleflight_8t_1ms",
        primitive: "singleflight",
        what: "8 threads call one key whose `f` sleeps 1 ms; the round ends when the last returns",
        benches: &[
            (
                "gosync",
                "gosync `singleflight::Group::call` (one `f` per flight)",
            ),
            ("direct", "each thread calls `f` itself (the floor)"),
        ],
        targets: &[],
    },
    Group {
        id: "semaphore_2t_cap1",
        primitive: "Semaphore",
        what: "2 threads, 2000 acquire(1)/increment/release(1) in total, capacity 1 (throughput)",
        benches: SEMAPHORE_BENCHES,
        targets: SEMAPHORE_TARGETS,
    },
    Group {
        id: "semaphore_2t_cap4",
        primitive: "Semaphore",
        what: "2 threads, 2000 acquire(1)/increment/release(1) in total, capacity 4 (throughput)",
        benches: SEMAPHORE_BENCHES,
        targets: SEMAPHORE_TARGETS,
    },
    Group {
        id: "barrier_2t_trips",
        primitive: "Barrier",
        what: "2 threads trip a 2-party barrier 1000 times",
        benches: &[
            ("gosync", "gosync `Barrier`"),
            ("std", "`std::sync::Barrier`"),
        ],
        targets: &[Target {
            subject: "gosync",
            peers: &["std"],
            min: 20.0,
            text: "",
        }],
    },
];

/// The targets checked when the benches ran with busy neighbour threads (`--load N`), as
/// `(group id, target)`; the groups' own targets are for an idle machine.
const LOAD_TARGETS: &[(&str, Target)] = &[
    (
        "cond_ping_pong",
        Target {
            subject: "gosync",
            peers: &["std", "parking_lot"],
            min: 1.0,
            text: "against the faster of the two",
        },
    ),
    (
        "cond_timed_ring",
        Target {
            subject: "gosync",
            peers: &["std"],
            min: 1.0 / 1.5,
            text: "within 1.5×",
        },
    ),
    (
        "waitgroup_rounds",
        Target {
            subject: "gosync",
            peers: &["crossbeam"],
            min: 1.0,
            text: "",
        },
    ),
    (
        "mutex_contended_2t",
        Target {
            subject: "gosync",
            peers: &["parking_lot"],
            min: 0.9,
            text: "",
        },
    ),
    (
        "semaphore_2t_cap1",
        Target {
            subject: "gosync",
            peers: &["mutex_condvar"],
            min: 1.0,
            text: "",
        },
    ),
    (
        "semaphore_2t_cap4",
        Target {
            subject: "gosync",
            peers: &["mutex_condvar"],
            min: 1.0,
            text: "",
        },
    ),
    (
        "barrier_2t_trips",
        Target {
            subject: "gosync",
            peers: &["std"],
            min: 1.0,
            text: "",
        },
    ),
];

/// `(scenario, title, gosync's target on the longest wait in ns)`.
const FAIRNESS: &[(&str, &str, Option<u128>)] = &[
    (
        "mutex",
        "Mutex: a hog re-locks in a tight loop holding ~1 µs; a probe thread's wait for `lock`",
        Some(10_000_000),
    ),
    (
        "rwmutex_writer",
        "RwMutex: 2 readers loop on read locks held ~1 µs; a writer's wait for `write`",
        None,
    ),
];

/// The criterion bench targets, which `--runs` repeats (the fairness harness and the memory probe
/// run once). Every `[[bench]]` of `benches/Cargo.toml` that makes criterion groups belongs here,
/// or its groups get one run only (a test checks).
const CRITERION_BENCHES: &[&str] = &[
    "mutex",
    "rwmutex",
    "cond",
    "once",
    "waitgroup",
    "pool",
    "atomic",
    "map",
    "singleflight",
    "semaphore",
    "barrier",
];

/// How many times the criterion benches run by default.
const DEFAULT_RUNS: usize = 3;

/// A memory probe's section in the report.
struct MemoryProbe {
    id: &'static str,
    what: &'static str,
    /// `(implementation, label)`, gosync first.
    impls: &'static [(&'static str, &'static str)],
}

/// The memory probes (`benches/map_memory.rs`).
const MEMORY: &[MemoryProbe] = &[MemoryProbe {
    id: "map_1m",
    what: "bytes per entry of a map holding 1M `u64 → u64` entries (bytes requested from the \
           allocator, its own overhead not included)",
    impls: &[
        ("gosync", "gosync `Map`"),
        ("papaya", "`papaya::HashMap`"),
        ("dashmap", "`dashmap::DashMap`"),
        ("scc", "`scc::HashMap`"),
    ],
}];

/// Implementations in the fairness table, in order.
const FAIRNESS_IMPLS: &[&str] = &["gosync", "parking_lot", "std", "go"];

/// Runs `cargo xtask bench ARGS`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut go = true;
    let mut run_benches = true;
    let mut runs = DEFAULT_RUNS;
    let mut load = 0;
    let mut filter = None;
    let mut args = args.iter();
    let whole_number = |n: Option<&String>, min: usize, what: &str| {
        n.and_then(|n| n.parse().ok())
            .filter(|&n| n >= min)
            .ok_or(format!(
                "bench: {what} takes a whole number of at least {min}"
            ))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-go" => go = false,
            "--report-only" => run_benches = false,
            "--runs" => runs = whole_number(args.next(), 1, "--runs")?,
            "--load" => load = whole_number(args.next(), 0, "--load")?,
            "-h" | "--help" => {
                println!(
                    "cargo xtask bench [--no-go] [--report-only] [--runs N] [--load N] [FILTER]\n\n\
                     Runs the criterion benches, the fairness harness and (when `go` is installed)\n\
                     the Go twins, then regenerates docs/performance.md.\n\
                     FILTER keeps benchmarks whose id (group/bench, fairness/scenario,\n\
                     map_rounds/group) contains it.\n\
                     --no-go        skip the Go twins\n\
                     --report-only  only regenerate the report from earlier results\n\
                     --runs N       run the criterion benches N times (default 3); the report\n\
                     \x20              takes the median over the runs\n\
                     --load N       run every bench beside N busy neighbour threads (default 0:\n\
                     \x20              idle); each load level keeps its own results, and the\n\
                     \x20              report shows every level measured (the Go twins run idle only)"
                );
                return Ok(());
            }
            f if f.starts_with('-') => return Err(format!("bench: unknown option {f}")),
            f if filter.is_none() => filter = Some(f.to_owned()),
            f => return Err(format!("bench: one FILTER only (got {f} too)")),
        }
    }
    let root = workspace_root()?;
    let target = target_dir(&root);
    let level = Level::new(&target, load);

    if run_benches {
        let started = now_utc();
        let load_before = load_average();
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        match &filter {
            // A full run replaces every earlier result of its level, stale runs included.
            None => {
                let _ = fs::remove_dir_all(&level.criterion_home);
                let _ = fs::remove_file(&level.results);
            }
            // The runs this one does not repeat must not keep older results of what it measures.
            Some(f) => forget_runs_from(&level.criterion_home, runs, f),
        }
        let mut lines = Vec::new();
        for run in 0..runs {
            let mut cmd = Command::new(&cargo);
            cmd.current_dir(&root)
                .args(["bench", "-p", "gosync-benches"])
                .env(
                    "CRITERION_HOME",
                    level.criterion_home.join(format!("run{run}")),
                )
                .env("GOSYNC_BENCH_LOAD", load.to_string());
            if run > 0 {
                // The fairness harness reports one distribution; only throughput is repeated.
                for bench in CRITERION_BENCHES {
                    cmd.args(["--bench", bench]);
                }
            }
            cmd.arg("--").args(filter.iter());
            lines.extend(run_tee(
                cmd,
                &format!("cargo bench (run {} of {runs})", run + 1),
            )?);
        }
        let previous = RunInfo::load(&level.info);
        let mut go_ran = None;
        let go_note = if load > 0 {
            "not run (the Go twins run idle only)".to_owned()
        } else if !go {
            "not run (--no-go)".to_owned()
        } else if let Some(version) = go_version() {
            let mut cmd = Command::new("go");
            cmd.current_dir(root.join("benches").join("go"))
                .arg("run")
                .arg(".");
            cmd.args(filter.iter());
            if env::var_os("GOCACHE").is_none() {
                cmd.env("GOCACHE", target.join("go-build"));
            }
            lines.extend(run_tee(cmd, "go run")?);
            go_ran = Some(version.clone());
            version
        } else {
            println!("bench: `go` not found, skipping the Go twins");
            "not installed".to_owned()
        };
        // Go rows stay only while they come from a Go run that the report can name.
        let go_kept = match (&go_ran, &filter) {
            (Some(version), _) => Some(version.clone()),
            (None, Some(_)) => previous.as_ref().and_then(|p| p.go.clone()),
            (None, None) => None,
        };
        save_lines(&level.results, &lines, go_kept.is_some())?;
        let info = RunInfo {
            started,
            date: now_utc(),
            runs,
            filter: filter.clone(),
            load_before,
            load_after: load_average(),
            go: go_kept,
            go_note,
        };
        info.save(&level.info)?;
    }

    let levels = Level::all(&target);
    let report = render(&levels);
    let out = root.join("docs").join("performance.md");
    fs::create_dir_all(out.parent().expect("docs/ has a parent"))
        .map_err(|e| format!("bench: creating docs/: {e}"))?;
    fs::write(&out, report).map_err(|e| format!("bench: writing {}: {e}", out.display()))?;
    println!("bench: wrote {}", out.display());
    Ok(())
}

/// One load level's results: idle (0) or N busy neighbour threads.
struct Level {
    load: usize,
    /// `<target>/criterion/idle` or `<target>/criterion/load<N>`, holding `run<i>`.
    criterion_home: PathBuf,
    /// The saved result lines (`GOBENCH`, `FAIRNESS`, `MEMORY`, `ROUNDS`).
    results: PathBuf,
    /// What the last invocation at this level did ([`RunInfo`]).
    info: PathBuf,
}

impl Level {
    fn new(target: &Path, load: usize) -> Self {
        let name = match load {
            0 => "idle".to_owned(),
            n => format!("load{n}"),
        };
        let saved = target.join("gosync-bench").join(&name);
        Self {
            load,
            criterion_home: target.join("criterion").join(&name),
            results: saved.join("results.txt"),
            info: saved.join("run.txt"),
        }
    }

    /// Every level that has been run, idle first, then by load.
    fn all(target: &Path) -> Vec<Self> {
        let mut loads: Vec<usize> = fs::read_dir(target.join("gosync-bench"))
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                match name.as_str() {
                    "idle" => Some(0),
                    n => n.strip_prefix("load")?.parse().ok(),
                }
            })
            .collect();
        loads.sort_unstable();
        loads
            .into_iter()
            .map(|load| Self::new(target, load))
            .filter(|level| level.info.is_file())
            .collect()
    }

    fn title(&self) -> String {
        match self.load {
            0 => "idle".to_owned(),
            1 => "1 busy neighbour thread".to_owned(),
            n => format!("{n} busy neighbour threads"),
        }
    }
}

/// What one `cargo xtask bench` invocation did at a load level, saved as `key=value` lines.
#[derive(Debug, Default, PartialEq)]
struct RunInfo {
    /// When the runs started (empty in info files saved before it was recorded).
    started: String,
    /// When the runs ended.
    date: String,
    /// How many times the criterion benches ran.
    runs: usize,
    filter: Option<String>,
    load_before: Option<String>,
    load_after: Option<String>,
    /// The Go version behind the saved Go lines, if any are kept.
    go: Option<String>,
    /// What happened to the Go twins in this invocation.
    go_note: String,
}

impl RunInfo {
    fn save(&self, path: &Path) -> Result<(), String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let text = format!(
            "started={}\ndate={}\nruns={}\nfilter={}\nload_before={}\nload_after={}\ngo={}\n\
             go_note={}\n",
            self.started,
            self.date,
            self.runs,
            opt(&self.filter),
            opt(&self.load_before),
            opt(&self.load_after),
            opt(&self.go),
            self.go_note
        );
        fs::create_dir_all(path.parent().expect("the info file has a parent"))
            .and_then(|()| fs::write(path, text))
            .map_err(|e| format!("bench: saving {}: {e}", path.display()))
    }

    fn load(path: &Path) -> Option<Self> {
        Some(Self::parse(&fs::read_to_string(path).ok()?))
    }

    /// When the runs took place: `2026-01-02 03:04 – 03:30 UTC`, the end's date kept only
    /// when it differs from the start's (the end alone for info files without a start).
    fn span(&self) -> String {
        let Some((start_day, start_time)) = self.started.split_once(' ') else {
            return self.date.clone();
        };
        let start_time = start_time.trim_end_matches(" UTC");
        match self.date.split_once(' ') {
            Some((end_day, end_time)) if end_day == start_day => {
                format!("{start_day} {start_time} – {end_time}")
            }
            _ => format!("{start_day} {start_time} UTC – {}", self.date),
        }
    }

    fn parse(text: &str) -> Self {
        let mut info = Self::default();
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            let opt = || Some(value.to_owned()).filter(|v| !v.is_empty());
            match key {
                "started" => info.started = value.to_owned(),
                "date" => info.date = value.to_owned(),
                "runs" => info.runs = value.parse().unwrap_or(0),
                "filter" => info.filter = opt(),
                "load_before" => info.load_before = opt(),
                "load_after" => info.load_after = opt(),
                "go" => info.go = opt(),
                "go_note" => info.go_note = value.to_owned(),
                _ => {}
            }
        }
        info
    }
}

/// Removes, from the runs numbered `runs` and above, the results of the benchmarks `filter`
/// keeps: a filtered run with fewer runs than the last one does not repeat them there.
fn forget_runs_from(home: &Path, runs: usize, filter: &str) {
    for run in run_dirs(home).iter().skip(runs) {
        for group in fs::read_dir(run).into_iter().flatten().flatten() {
            for bench in fs::read_dir(group.path()).into_iter().flatten().flatten() {
                let id = format!(
                    "{}/{}",
                    group.file_name().to_string_lossy(),
                    bench.file_name().to_string_lossy()
                );
                if id.contains(filter) {
                    let _ = fs::remove_dir_all(bench.path());
                }
            }
        }
    }
}

/// The directory holding the workspace's `Cargo.toml`: the nearest one above the current
/// directory, else the one above this crate.
fn workspace_root() -> Result<PathBuf, String> {
    let here = env::current_dir().map_err(|e| format!("bench: current dir: {e}"))?;
    let starts = [here.as_path(), Path::new(env!("CARGO_MANIFEST_DIR"))];
    for start in starts {
        for dir in start.ancestors() {
            let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
            if manifest.contains("[workspace]") && dir.join("benches").is_dir() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Err("bench: cannot find the workspace root".to_owned())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => env::current_dir()
            .unwrap_or_else(|_| root.to_path_buf())
            .join(d),
        None => root.join("target"),
    }
}

/// The result lines a bench prints for the report, beside criterion's own files.
const RESULT_PREFIXES: &[&str] = &["GOBENCH ", "FAIRNESS ", "MEMORY ", "ROUNDS "];

/// Runs `cmd`, echoing its stdout, and returns the result lines it printed.
fn run_tee(mut cmd: Command, what: &str) -> Result<Vec<String>, String> {
    println!("bench: running {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("bench: cannot start {what}: {e}"))?;
    let mut found = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("bench: reading {what} output: {e}"))?;
        println!("{line}");
        if RESULT_PREFIXES.iter().any(|p| line.starts_with(p)) {
            found.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("bench: waiting for {what}: {e}"))?;
    if status.success() {
        Ok(found)
    } else {
        Err(format!("bench: {what} failed ({status})"))
    }
}

/// Merges `new` result lines into the saved ones (a line replaces the saved line with the same
/// first three words). Without `keep_go`, the Go twins' lines are dropped: no Go run backs them.
fn save_lines(path: &Path, new: &[String], keep_go: bool) -> Result<(), String> {
    let key = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let old = fs::read_to_string(path).unwrap_or_default();
    let mut all: BTreeMap<String, String> = old.lines().map(|l| (key(l), l.to_owned())).collect();
    for l in new {
        all.insert(key(l), l.clone());
    }
    if !keep_go {
        all.retain(|_, l| !is_go_line(l));
    }
    let text: String = all.values().map(|l| format!("{l}\n")).collect();
    fs::create_dir_all(path.parent().expect("results file has a parent"))
        .and_then(|()| fs::write(path, text))
        .map_err(|e| format!("bench: saving {}: {e}", path.display()))
}

/// Whether a bench id names a Go twin (`go`, or `go_<what>` in groups with several).
fn is_go_bench(bench: &str) -> bool {
    bench == GO || bench.starts_with("go_")
}

/// Whether a saved line comes from the Go twins.
fn is_go_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().take(3).collect();
    matches!(words.as_slice(), ["GOBENCH", ..] | ["FAIRNESS", _, "go"])
}

/// The run directories (`run<i>`) under `home`, in order.
fn run_dirs(home: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|run| home.join(format!("run{run}")))
        .take_while(|dir| dir.is_dir())
        .collect()
}

/// The median point estimate (ns) criterion saved for `group/bench` in one run, if any.
fn criterion_median(run: &Path, group: &str, bench: &str) -> Option<f64> {
    let json = fs::read_to_string(
        run.join(group)
            .join(bench)
            .join("new")
            .join("estimates.json"),
    )
    .ok()?;
    let median = &json[json.find("\"median\"")?..];
    json_number_after(median, "\"point_estimate\"")
}

/// The median of `values` (the mean of the middle two for an even count), if any.
fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The number following `key:` in `json`.
fn json_number_after(json: &str, key: &str) -> Option<f64> {
    let rest = json[json.find(key)? + key.len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The value of `name=` in a result line.
fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// Medians of the Go twins: `(group, bench) -> ns`.
fn go_medians(lines: &str) -> BTreeMap<(String, String), f64> {
    lines
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["GOBENCH", group, bench, ..] => Some((
                    (group.to_string(), bench.to_string()),
                    field(l, "median_ns")?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// A duration in ns, in a readable unit.
fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// The report's text: every load level measured, idle first.
fn render(levels: &[Level]) -> String {
    let infos: Vec<RunInfo> = levels
        .iter()
        .map(|l| RunInfo::load(&l.info).unwrap_or_default())
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "# Performance\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask bench` on {}. Do not edit by hand: rerun it.\n",
        now_utc()
    );
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(out, "| cores (nproc) | {cores} |");
    let _ = writeln!(
        out,
        "| CPU | {} |",
        cpu_model().unwrap_or_else(|| "unknown".to_owned())
    );
    let _ = writeln!(
        out,
        "| rustc | {} |",
        command_line("rustc", &["-V"]).unwrap_or_default()
    );
    let idle = levels.iter().zip(&infos).find(|(l, _)| l.load == 0);
    let go = match idle {
        Some((_, info)) => match &info.go {
            Some(version) => format!("{version} (the Go rows)"),
            None => format!("{}: no Go rows", info.go_note),
        },
        None => "not run: no Go rows".to_owned(),
    };
    let _ = writeln!(out, "| go | {go} |\n");

    let _ = writeln!(out, "## Runs\n");
    let _ = writeln!(
        out,
        "| results | measured (start – end) | criterion runs | filter | load average (1 min) before / after |\n\
         | --- | --- | ---: | --- | --- |"
    );
    for (level, info) in levels.iter().zip(&infos) {
        let unknown = || "?".to_owned();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} |",
            level.title(),
            info.span(),
            info.runs,
            info.filter.as_deref().unwrap_or("none (every bench)"),
            info.load_before.clone().unwrap_or_else(unknown),
            info.load_after.clone().unwrap_or_else(unknown)
        );
    }
    out.push('\n');

    let _ = writeln!(out, "## Method\n");
    out.push_str(
        "- A time shown is the median over the runs of criterion's median; a ratio is computed \
         within each run and the median over the runs is shown. Each table says how many runs \
         its medians come from (a filtered run may have repeated only part of the benches).\n\
         - Each workload runs gosync and its peers in one criterion group, one after the other \
         in the same process, so they see the same machine state. Criterion: 20 samples, \
         0.7 s warm-up, 3 s measurement per benchmark (the timed ring: 10 samples of one \
         iteration each).\n\
         - Multi-threaded workloads do a fixed total amount of work per iteration (for example \
         2000 lock operations split over the threads), timed from a common start to the end of \
         the last thread; thread start-up is not timed. So a 2-thread and an 8-thread time \
         compare directly.\n\
         - Ratios are peer median / gosync median: above 1 means gosync is faster. Read the \
         ratios, not the absolute times: the reference machine is a noisy 2-core VM, and \
         repeated runs move single medians by 10% or more, contended ones more; a load \
         average above the core count means other work shared the cores and every number, \
         fairness above all, is unreliable.\n\
         - Under load (`cargo xtask bench --load N`), every bench process also runs N threads \
         that spin without ever sleeping for the whole run, each pinned to its own core in turn \
         (`GOSYNC_BENCH_LOAD`, `benches/lib.rs`), so no core is ever idle: what a busy server \
         looks like. The \
         targets there are the ones that matter under load (a spin that pays on an idle core \
         can cost 50× on a busy one).\n\
         - The Go twins (`benches/go`, `go run .`) run the same workloads with the same work \
         per iteration on Go's `sync` with GOMAXPROCS=2 and report the median of 20 samples; \
         they are for reference, with no target, and appear only when Go ran (see Machine).\n\
         - Fairness is not a throughput: it is the distribution of one thread's waits while \
         others keep taking the lock (`benches/fairness.rs`, 2 s per implementation).\n\
         - Memory is not a time either: `benches/map_memory.rs` fills each map with 1M \
         entries on one thread and counts the bytes requested from the allocator.\n\n",
    );

    let reports: Vec<(String, String)> = levels.iter().map(level_report).collect();
    for (level, (summary, _)) in levels.iter().zip(&reports) {
        let _ = writeln!(out, "## Summary of targets: {}\n", level.title());
        let _ = writeln!(
            out,
            "| workload | ratio | measured | target | |\n| --- | --- | ---: | --- | --- |"
        );
        out.push_str(summary);
        out.push('\n');
    }
    for (level, (_, sections)) in levels.iter().zip(&reports) {
        let _ = writeln!(out, "## Results: {}\n", level.title());
        out.push_str(sections);
    }
    out
}

/// One level's rows for its summary of targets, and its sections.
fn level_report(level: &Level) -> (String, String) {
    let go_backed = RunInfo::load(&level.info).is_some_and(|info| info.go.is_some());
    // Go lines that no recorded Go run produced are not shown.
    let lines: String = fs::read_to_string(&level.results)
        .unwrap_or_default()
        .lines()
        .filter(|l| go_backed || !is_go_line(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let go_results = go_medians(&lines);
    let runs = run_dirs(&level.criterion_home);
    // The median over the runs of criterion's median, or the Go twin's median.
    let median = |group: &str, bench: &str| {
        median_of(
            runs.iter()
                .filter_map(|run| criterion_median(run, group, bench))
                .collect(),
        )
        .or_else(|| {
            go_results
                .get(&(group.to_owned(), bench.to_owned()))
                .copied()
        })
    };
    // The median over the runs of a ratio computed within each run (same machine state).
    let ratio = |group: &str, subject: &str, peers: &[&str]| {
        median_of(
            runs.iter()
                .filter_map(|run| {
                    let s = criterion_median(run, group, subject).filter(|&s| s > 0.0)?;
                    let p = peers
                        .iter()
                        .filter_map(|p| criterion_median(run, group, p))
                        .reduce(f64::min)?;
                    Some(p / s)
                })
                .collect(),
        )
    };

    let mut summary = String::new();
    let mut sections = String::new();
    let mut primitive = "";
    for g in GROUPS {
        if g.primitive != primitive {
            primitive = g.primitive;
            let _ = writeln!(sections, "### {primitive}\n");
        }
        let measured_runs = runs
            .iter()
            .filter(|run| {
                g.benches
                    .iter()
                    .any(|(b, _)| criterion_median(run, g.id, b).is_some())
            })
            .count();
        let _ = writeln!(
            sections,
            "#### `{}`: {} (medians of {measured_runs} run(s))\n",
            g.id, g.what
        );
        let _ = writeln!(
            sections,
            "| implementation | median per iteration |\n| --- | ---: |"
        );
        for (bench, label) in g.benches {
            let Some(ns) = median(g.id, bench) else {
                if !is_go_bench(bench) {
                    let _ = writeln!(sections, "| {label} | not run |");
                }
                continue;
            };
            let _ = writeln!(sections, "| {label} | {} |", fmt_ns(ns));
        }
        let _ = writeln!(
            sections,
            "\n| ratio (> 1: gosync faster) | measured | target | |\n| --- | ---: | --- | --- |"
        );
        let targets: Vec<&Target> = if level.load == 0 {
            g.targets.iter().collect()
        } else {
            LOAD_TARGETS
                .iter()
                .filter(|(id, _)| *id == g.id)
                .map(|(_, t)| t)
                .collect()
        };
        for t in &targets {
            let (ratio, status) = match ratio(g.id, t.subject, t.peers) {
                Some(r) => (
                    format!("{r:.2}×"),
                    if r >= t.min { "met" } else { "**missed**" },
                ),
                None => ("—".to_owned(), "not run"),
            };
            let peers: Vec<&str> = t.peers.iter().map(|p| label_of(g, p)).collect();
            let name = format!("{} vs {}", label_of(g, t.subject), peers.join(" / "));
            let target = if t.text.is_empty() {
                format!("≥ {:.2}×", t.min)
            } else {
                format!("≥ {:.2}× ({})", t.min, t.text)
            };
            let _ = writeln!(sections, "| {name} | {ratio} | {target} | {status} |");
            let _ = writeln!(
                summary,
                "| `{}` | {name} | {ratio} | {target} | {status} |",
                g.id
            );
        }
        let gosync = g.benches.first().map(|(b, _)| *b);
        if let (true, Some(subject)) = (targets.is_empty(), gosync) {
            // No target: each peer's ratio, for reference.
            for (peer, label) in g.benches.iter().skip(1).filter(|(b, _)| !is_go_bench(b)) {
                let measured = ratio(g.id, subject, &[peer])
                    .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
                let _ = writeln!(
                    sections,
                    "| {} vs {label} (for reference) | {measured} | — | |",
                    label_of(g, subject)
                );
            }
        }
        let go_bench = g.benches.iter().find(|(b, _)| *b == GO).map(|(b, _)| *b);
        if let (Some(gb), Some(sb)) = (go_bench, gosync) {
            if let (Some(s), Some(p)) = (median(g.id, sb), median(g.id, gb)) {
                let _ = writeln!(
                    sections,
                    "| {} vs Go (for reference) | {:.2}× | — | |",
                    label_of(g, sb),
                    p / s
                );
            }
        }
        sections.push('\n');
    }
    let (fair_table, fair_summary) = fairness_table(&lines, level.load == 0);
    summary.push_str(&fair_summary);
    sections.push_str(&fair_table);
    sections.push_str(&memory_table(&lines));
    sections.push_str(&rounds_table(&lines));
    (summary, sections)
}

/// The label of `bench` in group `g`.
fn label_of(g: &Group, bench: &str) -> &'static str {
    g.benches
        .iter()
        .find(|(b, _)| *b == bench)
        .map_or("?", |(_, l)| l)
}

/// The fairness section, and its rows for the summary table (only `with_targets`: the
/// fairness targets are for an idle machine).
fn fairness_table(lines: &str, with_targets: bool) -> (String, String) {
    let mut out = String::from("### Fairness\n\n");
    let mut summary = String::new();
    for (scenario, title, target) in FAIRNESS {
        let target = target.filter(|_| with_targets);
        let _ = writeln!(out, "#### `{scenario}`: {title}\n");
        let _ = writeln!(
            out,
            "| implementation | samples | p50 wait | p99 wait | max wait |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for imp in FAIRNESS_IMPLS {
            let line = lines.lines().find(|l| {
                let w: Vec<&str> = l.split_whitespace().take(3).collect();
                w == ["FAIRNESS", scenario, imp]
            });
            let Some(line) = line else {
                if *imp != "go" {
                    let _ = writeln!(out, "| {imp} | not run | | | |");
                }
                if let (Some(limit), &"gosync") = (target, imp) {
                    let _ = writeln!(
                        summary,
                        "| `fairness/{scenario}` | gosync longest wait | — | < {} | not run |",
                        fmt_ns(limit as f64)
                    );
                }
                continue;
            };
            let ns = |f: &str| field(line, f).map_or_else(|| "?".to_owned(), fmt_ns);
            let samples = field(line, "samples").unwrap_or(0.0);
            let _ = writeln!(
                out,
                "| {imp} | {samples} | {} | {} | {} |",
                ns("p50_ns"),
                ns("p99_ns"),
                ns("max_ns")
            );
            if let (Some(limit), &"gosync") = (target, imp) {
                let max = field(line, "max_ns").unwrap_or(f64::INFINITY);
                let status = if max < limit as f64 {
                    "met"
                } else {
                    "**missed**"
                };
                let _ = writeln!(
                    summary,
                    "| `fairness/{scenario}` | gosync longest wait | {} | < {} | {status} |",
                    fmt_ns(max),
                    fmt_ns(limit as f64)
                );
            }
        }
        out.push('\n');
    }
    (out, summary)
}

/// The memory section: each probe's bytes per entry, and each peer's against gosync's (no
/// target: for reference).
fn memory_table(lines: &str) -> String {
    let mut out = String::from("### Memory\n\n");
    for MemoryProbe { id, what, impls } in MEMORY {
        let _ = writeln!(out, "#### `{id}`: {what}\n");
        let _ = writeln!(
            out,
            "| implementation | bytes per entry | gosync's, relative (< 1: gosync smaller) |\n\
             | --- | ---: | ---: |"
        );
        let bytes = |imp: &str| {
            lines
                .lines()
                .find(|l| l.split_whitespace().take(3).eq(["MEMORY", id, imp]))
                .and_then(|l| field(l, "bytes_per_entry"))
        };
        let gosync = bytes("gosync");
        for (imp, label) in *impls {
            let (measured, relative) = match (bytes(imp), gosync) {
                (Some(b), Some(g)) if b > 0.0 => (format!("{b:.1}"), format!("{:.2}×", g / b)),
                (Some(b), _) => (format!("{b:.1}"), "—".to_owned()),
                (None, _) => ("not run".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(out, "| {label} | {measured} | {relative} |");
        }
        out.push('\n');
    }
    out
}

/// The interleaved-rounds section (`benches/map_rounds.rs`): for each Map group, each peer's
/// time against gosync's, taken within each round (no target: the criterion tables keep them).
fn rounds_table(lines: &str) -> String {
    let mut out = String::from("### Map, interleaved rounds\n\n");
    out.push_str(
        "This host's core speed changes by 2–3× from one moment to the next, and criterion \
         times one map for about 4 s before the next, so the ratio of two of its medians can \
         compare two speeds of the host rather than two maps. `benches/map_rounds.rs` times \
         every map in every round (a batch of tens of milliseconds each, the same keys for \
         all, a different map first each round) and takes each ratio within its round, where \
         the four maps ran within the same few hundred milliseconds. Below: the quartiles of \
         those per-round ratios, for reference (no target is checked on them), and each map's \
         median over the rounds of a batch's time divided by its operations (both threads \
         together).\n\n",
    );
    for g in GROUPS.iter().filter(|g| g.primitive == "Map") {
        let line = |peer: &str| {
            lines
                .lines()
                .find(|l| l.split_whitespace().take(3).eq(["ROUNDS", g.id, peer]))
        };
        let peers = || g.benches.iter().skip(1);
        match peers().find_map(|(peer, _)| line(peer)) {
            Some(l) => {
                let number =
                    |f: &str| field(l, f).map_or_else(|| "?".to_owned(), |n| n.to_string());
                let _ = writeln!(
                    out,
                    "#### `{}`: {} rounds of {} operations per map, on 2 threads\n",
                    g.id,
                    number("rounds"),
                    number("batch_ops")
                );
            }
            None => {
                let _ = writeln!(out, "#### `{}`\n", g.id);
            }
        }
        let _ = writeln!(
            out,
            "| peer | median ratio (> 1: gosync faster) | interquartile range | gosync faster in | \
             gosync per operation | peer per operation |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for (peer, label) in peers() {
            let Some(l) = line(peer) else {
                let _ = writeln!(out, "| {label} | not run | | | | |");
                continue;
            };
            let ratio =
                |f: &str| field(l, f).map_or_else(|| "?".to_owned(), |r| format!("{r:.2}×"));
            let ns = |f: &str| field(l, f).map_or_else(|| "?".to_owned(), fmt_ns);
            let count = |f: &str| field(l, f).map_or_else(|| "?".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "| {label} | {} | {} – {} | {} of {} rounds | {} | {} |",
                ratio("ratio_p50"),
                ratio("ratio_p25"),
                ratio("ratio_p75"),
                count("gosync_faster"),
                count("rounds"),
                ns("gosync_ns"),
                ns("peer_ns")
            );
        }
        out.push('\n');
    }
    out
}

/// The first line of `program args`' stdout.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or("").trim().to_owned())
}

/// `go version`, when `go` is installed.
fn go_version() -> Option<String> {
    command_line("go", &["version"])
}

/// The 1-minute load average from `/proc/loadavg`: other work on the machine skews the results.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// The CPU model from `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn criterion_json() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":12.25e0,"standard_error":0.1},"median_abs_dev":{"point_estimate":9.0}}"#;
        let median = &json[json.find("\"median\"").unwrap()..];
        assert_eq!(json_number_after(median, "\"point_estimate\""), Some(12.25));
    }

    #[test]
    fn run_info_round_trips() {
        let info = RunInfo {
            started: "2026-01-02 02:50 UTC".to_owned(),
            date: "2026-01-02 03:04 UTC".to_owned(),
            runs: 3,
            filter: Some("cond".to_owned()),
            load_before: Some("0.10".to_owned()),
            load_after: None,
            go: None,
            go_note: "not installed".to_owned(),
        };
        let dir = env::temp_dir().join(format!("gosync-bench-test-{}", std::process::id()));
        let path = dir.join("run.txt");
        info.save(&path).unwrap();
        assert_eq!(RunInfo::load(&path), Some(info));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn run_info_span_names_start_and_end() {
        let mut info = RunInfo {
            started: "2026-01-02 02:50 UTC".to_owned(),
            date: "2026-01-02 03:04 UTC".to_owned(),
            ..RunInfo::default()
        };
        assert_eq!(info.span(), "2026-01-02 02:50 – 03:04 UTC");
        info.date = "2026-01-03 00:10 UTC".to_owned();
        assert_eq!(info.span(), "2026-01-02 02:50 UTC – 2026-01-03 00:10 UTC");
        info.started.clear();
        assert_eq!(info.span(), "2026-01-03 00:10 UTC");
    }

    #[test]
    fn go_lines_are_recognised() {
        assert!(is_go_line("GOBENCH mutex_uncontended go median_ns=14.5"));
        assert!(is_go_line("FAIRNESS mutex go samples=1 p50_ns=7"));
        assert!(!is_go_line("FAIRNESS mutex gosync samples=1 p50_ns=7"));
    }

    #[test]
    fn levels_keep_their_results_apart() {
        let target = Path::new("/t");
        let idle = Level::new(target, 0);
        let loaded = Level::new(target, 2);
        assert_eq!(idle.criterion_home, Path::new("/t/criterion/idle"));
        assert_eq!(
            loaded.results,
            Path::new("/t/gosync-bench/load2/results.txt")
        );
        assert_eq!(loaded.title(), "2 busy neighbour threads");
        // Every load target names a group and its benches.
        for (id, t) in LOAD_TARGETS {
            let g = GROUPS.iter().find(|g| g.id == *id).expect("a known group");
            for bench in t.peers.iter().chain([&t.subject]) {
                assert_ne!(label_of(g, bench), "?", "{id}/{bench}");
            }
        }
    }

    #[test]
    fn memory_lines_make_a_table() {
        let table = memory_table(
            "MEMORY map_1m gosync bytes_per_entry=40.0\nMEMORY map_1m scc bytes_per_entry=20.0\n",
        );
        assert!(table.contains("| gosync `Map` | 40.0 | 1.00× |"), "{table}");
        assert!(
            table.contains("| `scc::HashMap` | 20.0 | 2.00× |"),
            "{table}"
        );
        assert!(
            table.contains("| `papaya::HashMap` | not run | — |"),
            "{table}"
        );
    }

    /// The `(name, path)` of each `[[bench]]` in `benches/Cargo.toml`.
    fn bench_targets() -> Vec<(String, PathBuf)> {
        let benches = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches");
        let manifest = fs::read_to_string(benches.join("Cargo.toml")).expect("benches/Cargo.toml");
        let value = |section: &str, key: &str| {
            section.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        manifest
            .split("[[bench]]")
            .skip(1)
            .map(|section| {
                let section = section.split("\n[").next().unwrap_or(section);
                let name = value(section, "name").expect("a [[bench]] has a name");
                let path = value(section, "path").unwrap_or_else(|| format!("{name}.rs"));
                (name, benches.join(path))
            })
            .collect()
    }

    #[test]
    fn every_criterion_bench_is_repeated() {
        let targets = bench_targets();
        assert!(targets.len() >= CRITERION_BENCHES.len(), "{targets:?}");
        let mut sources = Vec::new();
        for (name, path) in &targets {
            let source = fs::read_to_string(path).expect("a bench's source");
            let criterion = source.contains("benchmark_group(");
            assert_eq!(
                CRITERION_BENCHES.contains(&name.as_str()),
                criterion,
                "bench target {name}: in CRITERION_BENCHES exactly when it makes criterion groups"
            );
            if criterion {
                sources.push(source);
            }
        }
        // The library modules the benches share (`lib.rs` and its modules) may name the ids.
        let benches = targets[0].1.parent().expect("benches/").to_owned();
        for file in fs::read_dir(&benches).expect("benches/") {
            let path = file.expect("a file of benches/").path();
            let is_target = targets.iter().any(|(_, p)| *p == path);
            if !is_target && path.extension().is_some_and(|e| e == "rs") {
                sources.push(fs::read_to_string(&path).expect("a module's source"));
            }
        }
        // Each group of the report comes from a target that every run repeats.
        for g in GROUPS {
            let quoted = format!("\"{}\"", g.id);
            assert!(
                sources.iter().any(|s| s.contains(&quoted)),
                "group {} is in no bench of CRITERION_BENCHES",
                g.id
            );
        }
    }

    #[test]
    fn rounds_lines_make_a_table() {
        let table = rounds_table(
            "ROUNDS map_read_90 scc rounds=60 batch_ops=600000 ratio_p25=0.75 ratio_p50=0.8 \
             ratio_p75=0.9 gosync_faster=4 gosync_ns=36.21 peer_ns=28.54\n",
        );
        assert!(
            table.contains("#### `map_read_90`: 60 rounds of 600000 operations per map"),
            "{table}"
        );
        assert!(
            table.contains(
                "| `scc::HashMap` | 0.80× | 0.75× – 0.90× | 4 of 60 rounds | 36.2 ns | 28.5 ns |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| `papaya::HashMap` | not run | | | | |"),
            "{table}"
        );
        assert!(table.contains("#### `map_read_99`\n"), "{table}");
    }

    #[test]
    fn lines() {
        let l = "FAIRNESS mutex gosync samples=3 p50_ns=10 p99_ns=20 max_ns=30";
        assert_eq!(field(l, "max_ns"), Some(30.0));
        assert_eq!(field(l, "p50"), None);
        let go = go_medians("GOBENCH mutex_uncontended go median_ns=14.5\nnoise\n");
        assert_eq!(go[&("mutex_uncontended".to_owned(), "go".to_owned())], 14.5);
        assert_eq!(fmt_ns(1_500.0), "1.5 µs");
    }
}
