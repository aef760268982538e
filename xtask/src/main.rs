//! `cargo xtask`: the gosync workspace's verification and benchmark driver.
//!
//! A plain binary with no dependencies, reached through the alias in `.cargo/config.toml`
//! (`xtask = "run --quiet --package xtask --"`). `cargo xtask verify` runs exactly what CI runs,
//! step by step, and ends with a table of each step's result and time; every step also runs
//! alone (`cargo xtask fmt`, `cargo xtask loom gosync-mutex`, ...). `cargo xtask --help` lists
//! the commands and the exact cargo invocations behind them.

mod bench;
mod jobs;
mod loom;
mod miri;
mod tsan;

use std::env;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Instant;

const USAGE: &str = "\
Usage: cargo xtask <COMMAND> [ARGS]

Commands:
  verify [--skip STEP]...  run every step below in order, then print a table of results and
                           times; exits non-zero if any step failed (--skip may repeat)
  fmt                      cargo fmt --all --check
  clippy                   cargo clippy --workspace --all-targets --all-features -- -D warnings
  test                     cargo test --workspace --all-features --no-fail-fast
  loom [CRATE]...          for each crate with tests/loom.rs (default: all of them), as
                           jobs run XTASK_JOBS at a time:
                           cargo test -p CRATE --test loom --release
                           with RUSTFLAGS=\"--cfg gosync_loom -C debug-assertions\"
  miri [CRATE]...          for each crate under crates/ (default: all of them), each test
                           target (TARGET: --lib, or --test NAME unless its #![cfg] rules
                           out miri, as loom.rs does) as its own job,
                           XTASK_JOBS at a time:
                           cargo +nightly miri test -p CRATE --all-features TARGET
                           (installs nightly's miri and rust-src through rustup when missing)
  doc                      cargo doc --workspace --no-deps --all-features, RUSTDOCFLAGS=\"-D warnings\"
  tsan                     the library crates' tests under ThreadSanitizer:
                           cargo +nightly test -Zbuild-std --target HOST --workspace
                           --exclude gosync --exclude gosync-benches --exclude xtask
                           --all-features --tests --no-fail-fast,
                           RUSTFLAGS=\"-Zsanitizer=thread\", RUST_BACKTRACE=0,
                           GOSYNC_TESTKIT_SLOW=1 (a 300 s hang limit); installs nightly's
                           rust-src through rustup when missing; passes with a note on a
                           host without ThreadSanitizer
  bench [ARGS]...          the benchmark driver (see `cargo xtask bench --help`)
  help, --help, -h         print this message

Steps (for --skip): fmt, clippy, test, loom, miri, tsan, doc

Environment:
  LOOM_MAX_PREEMPTIONS  loom's bound on preemptions per execution (default 3)
  XTASK_JOBS            loom and miri jobs at once (default: one per core, at most 4);
                        each job's output is printed whole when it ends
  MIRIFLAGS             miri's flags (default -Zmiri-disable-isolation: tests read the clock);
                        crates on crossbeam-epoch add -Zmiri-tree-borrows -Zmiri-ignore-leaks
  CARGO_TARGET_DIR      the build directory (default target/); loom, miri and tsan build in its
                        loom/, miri/ and tsan/ subdirectories so their flags do not invalidate
                        the main build
  RUSTFLAGS, RUSTDOCFLAGS  kept; the loom, tsan and doc steps append their flags
";

/// Where the workspace's library crates live; the loom and miri steps go over these.
const CRATES_DIR: &str = "crates";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}\n");
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Parses the command line and runs the command; `Err` is a usage error.
fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err("no command given".to_owned());
    };
    let asks_help = |arg: &String| arg == "--help" || arg == "-h";
    let plan = match command.as_str() {
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        name if name != "bench" && rest.iter().any(asks_help) => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        "bench" => {
            return Ok(match bench::run(rest) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: cargo xtask bench: {message}");
                    ExitCode::FAILURE
                }
            });
        }
        "verify" => verify_plan(rest)?,
        "loom" => vec![Planned::Run(Step::Loom, rest.to_vec())],
        "miri" => vec![Planned::Run(Step::Miri, rest.to_vec())],
        name => match Step::parse(name) {
            Some(step) if rest.is_empty() => vec![Planned::Run(step, Vec::new())],
            Some(step) => return Err(format!("`{}` takes no arguments", step.name())),
            None => return Err(format!("unknown command `{name}`")),
        },
    };
    Ok(run_plan(&Workspace::locate()?, &plan))
}

/// The steps of `verify`, minus those named by `--skip`.
fn verify_plan(args: &[String]) -> Result<Vec<Planned>, String> {
    let mut skipped = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let name = if arg == "--skip" {
            args.next().ok_or("`--skip` needs a step name")?.as_str()
        } else if let Some(name) = arg.strip_prefix("--skip=") {
            name
        } else {
            return Err(format!("unknown argument `{arg}` to verify"));
        };
        let step = Step::parse(name).ok_or_else(|| {
            format!(
                "unknown step `{name}` (steps: {})",
                Step::names().join(", ")
            )
        })?;
        skipped.push(step);
    }
    Ok(Step::ALL
        .into_iter()
        .map(|step| {
            if skipped.contains(&step) {
                Planned::Skip(step)
            } else {
                Planned::Run(step, Vec::new())
            }
        })
        .collect())
}

/// One step of verification.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Fmt,
    Clippy,
    Test,
    Loom,
    Miri,
    Tsan,
    Doc,
}

impl Step {
    /// The order `verify` runs them in: cheap checks first, the slow model checkers late.
    const ALL: [Step; 7] = [
        Step::Fmt,
        Step::Clippy,
        Step::Test,
        Step::Loom,
        Step::Miri,
        Step::Tsan,
        Step::Doc,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Test => "test",
            Step::Loom => "loom",
            Step::Miri => "miri",
            Step::Tsan => "tsan",
            Step::Doc => "doc",
        }
    }

    fn names() -> Vec<&'static str> {
        Step::ALL.iter().map(|step| step.name()).collect()
    }

    fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.name() == name)
    }

    /// Runs the step: `Ok` carries a note for the summary, `Err` the reason it failed.
    fn run(self, ws: &Workspace, args: &[String]) -> Result<String, String> {
        match self {
            Step::Fmt => {
                ensure_cargo_subcommand(ws, "fmt", "rustfmt")?;
                Cmd::cargo(&["fmt", "--all", "--check"]).run(ws)?;
                Ok(String::new())
            }
            Step::Clippy => {
                ensure_cargo_subcommand(ws, "clippy", "clippy")?;
                Cmd::cargo(&["clippy", "--workspace", "--all-targets", "--all-features"])
                    .args(&["--", "-D", "warnings"])
                    .run(ws)?;
                Ok(String::new())
            }
            Step::Test => {
                Cmd::cargo(&["test", "--workspace", "--all-features", "--no-fail-fast"]).run(ws)?;
                Ok(String::new())
            }
            Step::Loom => loom::loom(ws, args),
            Step::Miri => miri::miri(ws, args),
            Step::Tsan => tsan::tsan(ws),
            Step::Doc => {
                Cmd::cargo(&["doc", "--workspace", "--no-deps", "--all-features"])
                    .env("RUSTDOCFLAGS", append_flags("RUSTDOCFLAGS", "-D warnings"))
                    .run(ws)?;
                Ok(String::new())
            }
        }
    }
}

/// A step as planned: run it (with its arguments) or show it as skipped.
#[derive(Debug)]
enum Planned {
    Run(Step, Vec<String>),
    Skip(Step),
}

/// How a step ended.
#[derive(Debug)]
enum Outcome {
    Passed(String),
    Failed(String),
    Skipped,
}

/// Runs the planned steps, each timed, then prints the summary table. Fails if any step failed.
fn run_plan(ws: &Workspace, plan: &[Planned]) -> ExitCode {
    let started = Instant::now();
    let mut rows = Vec::new();
    for (index, planned) in plan.iter().enumerate() {
        let (step, args) = match planned {
            Planned::Skip(step) => {
                println!(
                    "==> [{}/{}] {}: skipped",
                    index + 1,
                    plan.len(),
                    step.name()
                );
                rows.push((*step, Outcome::Skipped, 0.0));
                continue;
            }
            Planned::Run(step, args) => (*step, args),
        };
        let github = env::var_os("GITHUB_ACTIONS").is_some();
        if github {
            println!("::group::{}", step.name());
        }
        println!("==> [{}/{}] {}", index + 1, plan.len(), step.name());
        let step_started = Instant::now();
        let outcome = match step.run(ws, args) {
            Ok(note) => Outcome::Passed(note),
            Err(reason) => Outcome::Failed(reason),
        };
        let seconds = step_started.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Failed(reason) => {
                println!("==> {}: FAILED after {seconds:.1} s: {reason}", step.name());
            }
            _ => println!("==> {}: ok after {seconds:.1} s", step.name()),
        }
        if github {
            println!("::endgroup::");
        }
        rows.push((step, outcome, seconds));
    }
    let total = started.elapsed().as_secs_f64();
    print_summary(&rows, total);
    if rows
        .iter()
        .any(|(_, outcome, _)| matches!(outcome, Outcome::Failed(_)))
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_summary(rows: &[(Step, Outcome, f64)], total: f64) {
    println!();
    println!("{:<8} {:<8} {:>9}  note", "step", "result", "seconds");
    println!("{:-<8} {:-<8} {:->9}  {:-<4}", "", "", "", "");
    for (step, outcome, seconds) in rows {
        let (result, note) = match outcome {
            Outcome::Passed(note) => ("ok", note.as_str()),
            Outcome::Failed(reason) => ("FAILED", reason.as_str()),
            Outcome::Skipped => ("skipped", "--skip"),
        };
        let row = format!("{:<8} {result:<8} {seconds:>9.1}  {note}", step.name());
        println!("{}", row.trim_end());
    }
    let failed = rows
        .iter()
        .filter(|(_, outcome, _)| matches!(outcome, Outcome::Failed(_)))
        .count();
    let verdict = if failed == 0 {
        "ok".to_owned()
    } else {
        format!("{failed} FAILED")
    };
    println!("{:<8} {verdict:<8} {total:>9.1}", "total");
    // Nothing useful to do if stdout is gone.
    let _ = std::io::stdout().flush();
}

/// Makes `cargo <subcommand>` available, adding its rustup component when it is missing.
fn ensure_cargo_subcommand(
    ws: &Workspace,
    subcommand: &str,
    component: &str,
) -> Result<(), String> {
    if Cmd::cargo(&[subcommand, "--version"]).succeeds_quietly(ws) {
        return Ok(());
    }
    println!("--- `cargo {subcommand}` is missing: adding the {component} component");
    if !Cmd::rustup(&["--version"]).succeeds_quietly(ws) {
        return Err(format!(
            "`cargo {subcommand}` is not installed and rustup is not available to add {component}"
        ));
    }
    Cmd::rustup(&["component", "add", component]).run(ws)?;
    if Cmd::cargo(&[subcommand, "--version"]).succeeds_quietly(ws) {
        Ok(())
    } else {
        Err(format!(
            "`cargo {subcommand}` still does not run after adding {component}"
        ))
    }
}

/// Adds `components` to nightly through rustup, installing nightly (minimal profile) with them
/// when it is not installed.
fn add_nightly_components(ws: &Workspace, components: &[&str]) -> Result<(), String> {
    let list = Command::new("rustup")
        .args(["toolchain", "list"])
        .current_dir(&ws.root)
        .output()
        .map_err(|error| format!("rustup could not start: {error}"))?;
    if lists_nightly(&String::from_utf8_lossy(&list.stdout)) {
        Cmd::rustup(&["component", "add", "--toolchain", "nightly"])
            .args(components)
            .run(ws)
    } else {
        Cmd::rustup(&["toolchain", "install", "nightly", "--profile", "minimal"])
            .args(&["--component", &components.join(",")])
            .run(ws)
    }
}

/// Whether `rustup toolchain list` output names the toolchain `+nightly` selects: `nightly` or
/// `nightly-<host>`, not a dated `nightly-YYYY-MM-DD-<host>`.
fn lists_nightly(list: &str) -> bool {
    list.lines().any(|line| {
        let name = line.split_whitespace().next().unwrap_or("");
        name == "nightly"
            || name
                .strip_prefix("nightly-")
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// `$name` from the environment with `extra` appended.
fn append_flags(name: &str, extra: &str) -> String {
    match env::var(name) {
        Ok(existing) if !existing.trim().is_empty() => format!("{} {extra}", existing.trim()),
        _ => extra.to_owned(),
    }
}

/// The workspace: its root and build directory.
#[derive(Debug)]
struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
}

/// A crate under `crates/`.
#[derive(Debug)]
struct Crate {
    name: String,
    dir: PathBuf,
}

impl Workspace {
    fn locate() -> Result<Workspace, String> {
        // `cargo run` sets CARGO_MANIFEST_DIR at run time too; the build-time value is the
        // fallback for running the binary directly.
        let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .parent()
            .ok_or("the xtask directory has no parent")?
            .to_path_buf();
        if !root.join(CRATES_DIR).is_dir() {
            return Err(format!("no {CRATES_DIR}/ under {}", root.display()));
        }
        let target_dir = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        Ok(Workspace { root, target_dir })
    }

    /// Every crate under `crates/`, sorted by name.
    fn crates(&self) -> Result<Vec<Crate>, String> {
        let dir = self.root.join(CRATES_DIR);
        let entries = fs::read_dir(&dir)
            .map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
        let mut crates = Vec::new();
        for entry in entries {
            let dir = entry
                .map_err(|error| format!("cannot list {CRATES_DIR}/: {error}"))?
                .path();
            let manifest = dir.join("Cargo.toml");
            if let Ok(text) = fs::read_to_string(&manifest) {
                let name = package_name(&text)
                    .ok_or_else(|| format!("no package name in {}", manifest.display()))?;
                crates.push(Crate { name, dir });
            }
        }
        crates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(crates)
    }

    /// The named crates, or all of them when none is named.
    fn select_crates(&self, names: &[String]) -> Result<Vec<Crate>, String> {
        let mut crates = self.crates()?;
        if names.is_empty() {
            return Ok(crates);
        }
        let mut selected = Vec::new();
        for name in names {
            let index = crates
                .iter()
                .position(|krate| &krate.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = crates.iter().map(|k| k.name.as_str()).collect();
                    format!(
                        "no crate `{name}` under {CRATES_DIR}/ (crates: {})",
                        known.join(", ")
                    )
                })?;
            selected.push(crates.remove(index));
        }
        Ok(selected)
    }

    /// `path` relative to the root when it lies inside it (shorter to print, same meaning for
    /// commands run from the root).
    fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// The `name` of the `[package]` table in a manifest.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("name") {
                let value = value.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// A command line to run from the workspace root, printed as a shell would take it.
#[derive(Clone, Debug)]
struct Cmd {
    program: &'static str,
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
}

impl Cmd {
    fn new(program: &'static str, args: &[&str]) -> Cmd {
        Cmd {
            program,
            args: Vec::new(),
            envs: Vec::new(),
        }
        .args(args)
    }

    /// `cargo` from `PATH`: rustup's proxy, so `+nightly` works and the toolchain that runs
    /// xtask (passed down in `RUSTUP_TOOLCHAIN`) runs the steps.
    fn cargo(args: &[&str]) -> Cmd {
        Cmd::new("cargo", args)
    }

    fn rustup(args: &[&str]) -> Cmd {
        Cmd::new("rustup", args)
    }

    fn args(mut self, args: &[&str]) -> Cmd {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    fn env(mut self, name: &'static str, value: String) -> Cmd {
        self.envs.push((name, value));
        self
    }

    fn command(&self, ws: &Workspace) -> Command {
        let mut command = Command::new(self.program);
        command.args(&self.args).current_dir(&ws.root);
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        command
    }

    /// Runs the command with the terminal as its stdout and stderr, printing it first and its
    /// time after.
    fn run(&self, ws: &Workspace) -> Result<(), String> {
        println!("$ {self}");
        let started = Instant::now();
        let status = self.command(ws).status();
        let (line, result) = self.ending(status, started.elapsed().as_secs_f64());
        println!("{line}");
        result
    }

    /// Runs the command with its stdout and stderr (together, in order) going to the file
    /// `log`, then prints the command, the log and its time in one piece: for commands run
    /// side by side, whose output must not interleave.
    fn run_logged(&self, ws: &Workspace, log: &Path) -> Result<(), String> {
        let open = |path: &Path| {
            fs::File::create(path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))
        };
        let files = open(log).and_then(|out| {
            let err = out
                .try_clone()
                .map_err(|error| format!("cannot share {}: {error}", log.display()))?;
            Ok((out, err))
        });
        let (out, err) = files.inspect_err(|error| println!("--- FAILED: {self}: {error}"))?;
        let started = Instant::now();
        let status = self
            .command(ws)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status();
        let seconds = started.elapsed().as_secs_f64();
        let output = fs::read(log).unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        // Nothing useful to do if stdout is gone.
        let _ = writeln!(stdout, "$ {self}");
        let _ = stdout.write_all(&output);
        let (line, result) = self.ending(status, seconds);
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
        result
    }

    /// The line printed after the command ran for `seconds`, and its result.
    fn ending(&self, status: io::Result<ExitStatus>, seconds: f64) -> (String, Result<(), String>) {
        match status {
            Ok(status) if status.success() => (format!("--- {seconds:.1} s: {self}"), Ok(())),
            Ok(status) => (
                format!("--- FAILED ({status}) after {seconds:.1} s: {self}"),
                Err(format!("`{self}` failed ({status})")),
            ),
            Err(error) => (
                format!("--- could not start: {self}: {error}"),
                Err(format!("could not start `{}`: {error}", self.program)),
            ),
        }
    }

    /// Whether the command runs and succeeds, its output discarded.
    fn succeeds_quietly(&self, ws: &Workspace) -> bool {
        self.command(ws)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.envs {
            write!(f, "{name}={} ", shell_quote(value))?;
        }
        f.write_str(self.program)?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// `word` as a POSIX shell would need it written.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+=./,:@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_is_found_in_the_toolchain_list() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n";
        assert!(lists_nightly(list));
        assert!(!lists_nightly(
            "stable-x86_64-unknown-linux-gnu (default)\n"
        ));
        assert!(!lists_nightly(
            "nightly-2025-01-01-x86_64-unknown-linux-gnu\n"
        ));
    }

    #[test]
    fn package_name_reads_the_package_table() {
        let manifest = "[workspace]\nname = \"no\"\n[package]\nname = \"gosync-park\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("gosync-park"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn skip_marks_steps_skipped() {
        let args = [
            "--skip".to_owned(),
            "miri".to_owned(),
            "--skip=loom".to_owned(),
        ];
        let plan = verify_plan(&args).unwrap();
        let skipped: Vec<Step> = plan
            .iter()
            .filter_map(|planned| match planned {
                Planned::Skip(step) => Some(*step),
                Planned::Run(..) => None,
            })
            .collect();
        assert_eq!(skipped, [Step::Loom, Step::Miri]);
        assert_eq!(plan.len(), Step::ALL.len());
        assert!(verify_plan(&["--skip".to_owned(), "nope".to_owned()]).is_err());
        assert!(verify_plan(&["--skip".to_owned()]).is_err());
    }

    #[test]
    fn commands_print_as_shell_lines() {
        let cmd = Cmd::cargo(&["test", "-p", "gosync-park"])
            .env("RUSTFLAGS", "--cfg gosync_loom".to_owned());
        assert_eq!(
            cmd.to_string(),
            "RUSTFLAGS='--cfg gosync_loom' cargo test -p gosync-park"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
