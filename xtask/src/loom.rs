//! The loom step: each crate's `tests/loom.rs`, in release mode under `--cfg gosync_loom`, each
//! crate as its own job (see `jobs.rs`).

use std::env;
use std::fs;

use super::jobs;
use super::{append_flags, Cmd, Workspace};

/// The default of `LOOM_MAX_PREEMPTIONS`: enough for the models' races, small enough that the
/// loom step stays within minutes.
const DEFAULT_LOOM_MAX_PREEMPTIONS: &str = "3";

/// The loom step: each selected crate's `tests/loom.rs`, in release mode under `--cfg gosync_loom`,
/// each crate as its own job (see `jobs.rs`).
pub(crate) fn loom(ws: &Workspace, selected: &[String]) -> Result<String, String> {
    let crates = ws.select_crates(selected)?;
    let preemptions = env::var("LOOM_MAX_PREEMPTIONS")
        .unwrap_or_else(|_| DEFAULT_LOOM_MAX_PREEMPTIONS.to_owned());
    // Debug assertions stay on in the optimised build: they are checks the model should run.
    let rustflags = append_flags("RUSTFLAGS", "--cfg gosync_loom -C debug-assertions");
    let mut all = Vec::new();
    let mut without = Vec::new();
    for krate in &crates {
        let models = krate.dir.join("tests").join("loom.rs");
        if !models.is_file() {
            without.push(krate.name.as_str());
            continue;
        }
        // A crate built on crossbeam-epoch opts in to crossbeam's own loom cfg by naming it in
        // its manifest (`[target.'cfg(crossbeam_loom)'.dependencies]`, enabling
        // `crossbeam-epoch/loom`). Only such crates get the cfg, since crossbeam-utils refuses to
        // build under it without its loom feature; they build in a target dir of their own so
        // the two sets of flags do not rebuild each other's dependencies.
        let manifest = fs::read_to_string(krate.dir.join("Cargo.toml")).unwrap_or_default();
        let (flags, dir, slowdown) = if manifest.contains("crossbeam_loom") {
            // Models of crossbeam-epoch's own atomics explore many more interleavings.
            let flags = format!("{rustflags} --cfg crossbeam_loom");
            (flags, ws.target_dir.join("loom-crossbeam"), 4)
        } else {
            (rustflags.clone(), ws.target_dir.join("loom"), 1)
        };
        all.push(jobs::Job {
            krate: krate.name.clone(),
            label: format!("{} (loom)", krate.name),
            cmd: Cmd::cargo(&["test", "-p", &krate.name, "--test", "loom", "--release"])
                .env("RUSTFLAGS", flags)
                .env("LOOM_MAX_PREEMPTIONS", preemptions.clone())
                .env("CARGO_TARGET_DIR", ws.display_path(&dir)),
            weight: jobs::source_bytes(&models) * slowdown,
        });
    }
    if !without.is_empty() {
        println!("--- no tests/loom.rs in: {}", without.join(", "));
    }
    let names: Vec<&str> = crates.iter().map(|krate| krate.name.as_str()).collect();
    let logs = ws.target_dir.join("loom").join("logs");
    jobs::run_all(ws, all, &logs, &names, &without, "no loom tests")
}
