//! The miri step: every crate's unit and integration tests, interpreted by miri, each test
//! target as its own job (see `jobs.rs`).

use std::env;
use std::fs;

use super::jobs::{self, source_bytes};
use super::{add_nightly_components, Cmd, Crate, Workspace};

/// The default of `MIRIFLAGS`: the tests read the clock (`Instant`), which miri's isolation forbids.
const DEFAULT_MIRIFLAGS: &str = "-Zmiri-disable-isolation";

/// Crates whose manifest names one of these (crossbeam-epoch, or a gosync crate built on it)
/// run miri with [`CROSSBEAM_EPOCH_MIRIFLAGS`] added.
const CROSSBEAM_EPOCH_DEPENDENCIES: &[&str] = &["crossbeam-epoch", "gosync-atomic"];

/// What crossbeam-epoch needs under miri, as crossbeam's own CI runs it: Tree Borrows instead of
/// Stacked Borrows, whose rules its intrusive lists break (crossbeam issues #545 and #878; Tree
/// Borrows still checks every aliasing rule the compiler relies on today), and no leak check,
/// since its global collector keeps its lists behind integer-tagged pointers that miri cannot
/// follow (crossbeam issue #579). Tests of such crates count their own values' drops instead.
const CROSSBEAM_EPOCH_MIRIFLAGS: &str = "-Zmiri-tree-borrows -Zmiri-ignore-leaks";

/// The miri step: each selected crate's unit and integration tests (doc tests are left to the
/// test step: under miri they cost minutes and exercise little unsafe code).
pub(crate) fn miri(ws: &Workspace, selected: &[String]) -> Result<String, String> {
    let crates = ws.select_crates(selected)?;
    ensure_miri(ws)?;
    let target_dir = ws.display_path(&ws.target_dir.join("miri"));
    Cmd::cargo(&["+nightly", "miri", "setup"])
        .env("CARGO_TARGET_DIR", target_dir.clone())
        .run(ws)?;
    let miriflags = env::var("MIRIFLAGS").unwrap_or_else(|_| DEFAULT_MIRIFLAGS.to_owned());
    let mut all = Vec::new();
    let mut compiled_out = Vec::new();
    for krate in &crates {
        all.extend(targets(krate, &miriflags, &target_dir, &mut compiled_out)?);
    }
    if !compiled_out.is_empty() {
        println!("--- compiled out under miri: {}", compiled_out.join(", "));
    }
    let names: Vec<&str> = crates.iter().map(|krate| krate.name.as_str()).collect();
    jobs::run_all(
        ws,
        all,
        &ws.target_dir.join("miri").join("logs"),
        &names,
        &[],
        "",
    )
}

/// A job for the unit tests and for each integration test of `krate`: each `tests/NAME.rs` and
/// `tests/NAME/main.rs` but those whose `#![cfg(...)]` compiles them to nothing under miri
/// (`tests/loom.rs`, the stress tests too big for it, the umbrella's example runs), whose labels
/// go to `compiled_out`. A crate
/// that declares its targets otherwise is an error, so that none is silently skipped.
fn targets(
    krate: &Crate,
    miriflags: &str,
    target_dir: &str,
    compiled_out: &mut Vec<String>,
) -> Result<Vec<jobs::Job>, String> {
    let manifest = fs::read_to_string(krate.dir.join("Cargo.toml")).unwrap_or_default();
    let declared = ["[[test]]", "[[bin]]", "autotests", "autobins"];
    let binaries = ["src/main.rs", "src/bin"].map(|path| krate.dir.join(path));
    if declared.iter().any(|key| manifest.contains(key)) || binaries.iter().any(|p| p.exists()) {
        return Err(format!(
            "{} declares test targets or binaries the miri step does not list: add them to \
             `targets` in xtask/src/miri.rs",
            krate.name
        ));
    }
    let on_crossbeam_epoch = CROSSBEAM_EPOCH_DEPENDENCIES
        .iter()
        .any(|dependency| manifest.contains(dependency));
    let (miriflags, slowdown) = if on_crossbeam_epoch {
        // Tree Borrows and the collector's bookkeeping make these tests the slowest.
        (format!("{miriflags} {CROSSBEAM_EPOCH_MIRIFLAGS}"), 4)
    } else {
        (miriflags.to_owned(), 1)
    };
    let job = |target: &[&str], weight: u64| jobs::Job {
        krate: krate.name.clone(),
        label: format!("{} ({})", krate.name, target.join(" ")),
        cmd: Cmd::cargo(&[
            "+nightly",
            "miri",
            "test",
            "-p",
            &krate.name,
            "--all-features",
        ])
        .args(target)
        .env("MIRIFLAGS", miriflags.clone())
        // A panic's backtrace costs seconds under miri, and the tests panic on purpose
        // often; the message and location are still printed.
        .env("RUST_BACKTRACE", "0".to_owned())
        .env("CARGO_TARGET_DIR", target_dir.to_owned()),
        weight: weight * slowdown,
    };
    let mut jobs = Vec::new();
    if krate.dir.join("src/lib.rs").is_file() {
        // Unit tests are a small part of the sources.
        jobs.push(job(&["--lib"], source_bytes(&krate.dir.join("src")) / 4));
    }
    let tests = fs::read_dir(krate.dir.join("tests")).into_iter().flatten();
    for path in tests.flatten().map(|entry| entry.path()) {
        let name = if path.is_dir() {
            path.join("main.rs")
                .is_file()
                .then(|| path.file_name())
                .flatten()
        } else {
            path.extension()
                .is_some_and(|ext| ext == "rs")
                .then(|| path.file_stem())
                .flatten()
        };
        if let Some(name) = name.and_then(|name| name.to_str()) {
            let source = if path.is_dir() {
                path.join("main.rs")
            } else {
                path.clone()
            };
            let text = fs::read_to_string(&source).unwrap_or_default();
            if compiled_out_under_miri(&text) {
                compiled_out.push(format!("{} (--test {name})", krate.name));
            } else {
                jobs.push(job(&["--test", name], source_bytes(&path)));
            }
        }
    }
    Ok(jobs)
}

/// Whether a crate-level `#![cfg(...)]` of `source` is false under the miri step, where `miri`
/// and `test` are set and the loom cfgs are not. A predicate on anything else is taken as
/// unknown, and an unknown attribute keeps the target: running an empty binary costs seconds,
/// skipping a real one loses its tests.
fn compiled_out_under_miri(source: &str) -> bool {
    // Only the file's preamble (blank lines, `//` comments and inner attributes at the start of
    // a line) holds crate-level attributes: an indented one belongs to a module or function,
    // and one after a block comment or an item may be inside a string.
    source
        .lines()
        .take_while(|line| {
            line.trim().is_empty() || line.starts_with("//") || line.starts_with("#![")
        })
        .filter_map(|line| line.trim_end().strip_prefix("#![cfg(")?.strip_suffix(")]"))
        .any(|predicate| cfg_under_miri(predicate) == Some(false))
}

/// A cfg predicate's value under the miri step, `None` when it depends on what the step does not
/// know.
fn cfg_under_miri(predicate: &str) -> Option<bool> {
    let predicate = predicate.trim();
    let Some((operator, inner)) = predicate
        .strip_suffix(')')
        .and_then(|call| call.split_once('('))
    else {
        return match predicate {
            "miri" | "test" => Some(true),
            "gosync_loom" | "crossbeam_loom" => Some(false),
            _ => None,
        };
    };
    let items = top_level_items(inner);
    let count = items.len();
    let mut values = items.into_iter().map(cfg_under_miri);
    // `any` and `all` stop at the first item that decides them; otherwise an unknown item
    // leaves them unknown.
    match (operator.trim(), count) {
        ("not", 1) => values.next().flatten().map(|value| !value),
        ("any", _) => values
            .try_fold(false, |unknown, value| match value {
                Some(true) => Err(Some(true)),
                Some(false) => Ok(unknown),
                None => Ok(true),
            })
            .map_or_else(|found| found, |unknown| (!unknown).then_some(false)),
        ("all", _) => values
            .try_fold(false, |unknown, value| match value {
                Some(false) => Err(Some(false)),
                Some(true) => Ok(unknown),
                None => Ok(true),
            })
            .map_or_else(|found| found, |unknown| (!unknown).then_some(true)),
        _ => None,
    }
}

/// The comma-separated items of a cfg list, split only outside parentheses and strings.
fn top_level_items(list: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start, mut in_string) = (0_usize, 0, false);
    for (at, c) in list.char_indices() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.retain(|item| !item.trim().is_empty());
    items
}

/// Makes `cargo +nightly miri` available: installs nightly with miri and rust-src, or adds the
/// two components to an installed nightly.
fn ensure_miri(ws: &Workspace) -> Result<(), String> {
    let probe = Cmd::cargo(&["+nightly", "miri", "--version"]);
    if probe.succeeds_quietly(ws) {
        return Ok(());
    }
    println!("--- `cargo +nightly miri` does not run: installing it through rustup");
    add_nightly_components(ws, &["miri", "rust-src"])?;
    if probe.succeeds_quietly(ws) {
        Ok(())
    } else {
        Err("`cargo +nightly miri` still does not run after installing it".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_crate_has_a_job_for_its_lib_and_each_test_but_loom() {
        let krate = Crate {
            name: "gosync-map".to_owned(),
            dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/gosync-map"),
        };
        let mut compiled_out = Vec::new();
        let jobs = targets(&krate, "-Zflag", "target/miri", &mut compiled_out).unwrap();
        assert_eq!(compiled_out, ["gosync-map (--test loom)"]);
        let labels: Vec<&str> = jobs.iter().map(|job| job.label.as_str()).collect();
        assert!(labels.contains(&"gosync-map (--lib)"), "{labels:?}");
        assert!(labels.contains(&"gosync-map (--test map)"), "{labels:?}");
        assert!(
            !labels.iter().any(|label| label.contains("loom")),
            "{labels:?}"
        );
        assert!(
            !labels.iter().any(|label| label.contains("common")),
            "{labels:?}"
        );
        let command = jobs[0].cmd.to_string();
        assert!(
            command.starts_with("MIRIFLAGS='-Zflag -Zmiri-tree-borrows"),
            "{command}"
        );
    }

    #[test]
    fn a_test_file_compiled_out_under_miri_is_recognised() {
        let out = |source: &str| compiled_out_under_miri(source);
        assert!(out("//! Models.\n#![cfg(gosync_loom)]\nuse loom;"));
        assert!(out("#![cfg(not(miri))]"));
        assert!(out("#![cfg(not(any(gosync_loom, miri)))]"));
        assert!(out("#![cfg(all(unix, not(miri)))]"));
        assert!(!out("#![cfg(not(gosync_loom))]\n#![allow(unused)]"));
        assert!(!out("#![cfg(any(gosync_loom, miri))]"));
        // What the step cannot tell is kept.
        assert!(!out("#![cfg(target_os = \"linux\")]"));
        assert!(!out("#![cfg(any(gosync_loom, unix))]"));
        assert!(!out("#![cfg(not(any(gosync_loom, unix)))]"));
        assert!(!out("#![cfg_attr(miri, ignore)]"));
        assert!(!out("fn main() {}"));
        assert!(!out("#![cfg(not(any(feature = \"a, miri, b\")))]"));
        // Only the preamble's attributes are the file's.
        assert!(!out("mod stress {\n    #![cfg(not(miri))]\n}"));
        assert!(!out("//! Tests.\n\n    #![cfg(not(miri))]"));
        assert!(!out("/*\n#![cfg(not(miri))]\n*/"));
        assert!(!out("const S: &str = r#\"\n#![cfg(gosync_loom)]\n\"#;"));
        assert!(out(
            "//! Tests.\n\n// Why.\n#![allow(unused)]\n#![cfg(not(miri))]\n"
        ));
    }

    #[test]
    fn every_crates_loom_models_are_compiled_out_under_miri() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
        let mut seen = 0;
        for entry in fs::read_dir(crates).unwrap() {
            let models = entry.unwrap().path().join("tests/loom.rs");
            if let Ok(source) = fs::read_to_string(&models) {
                assert!(compiled_out_under_miri(&source), "{}", models.display());
                seen += 1;
            }
        }
        assert!(seen > 0, "no tests/loom.rs found");
    }
}
