//! The `tsan` step: the library crates' tests under ThreadSanitizer.
//!
//! What it adds to loom and miri: the real atomics, futexes and OS scheduling, at the tests'
//! full thread counts, checked for data races by the compiler's instrumentation. The standard
//! library is rebuilt with the sanitizer (`-Zbuild-std`, hence nightly and its `rust-src`,
//! installed through rustup when missing); the whole step takes about five minutes on two
//! cores. On a host whose rustc has no ThreadSanitizer the step passes with a note saying so.
//!
//! Left out: the umbrella crate (its tests build and run the examples with a nested
//! `cargo build`, which does not take the sanitizer's `-Zbuild-std`; its own code only
//! re-exports), the benches and xtask.

use std::path::PathBuf;
use std::process::Command;

use crate::{add_nightly_components, append_flags, Cmd, Workspace};

/// Runs every test target of the library crates under ThreadSanitizer.
pub(crate) fn tsan(ws: &Workspace) -> Result<String, String> {
    ensure_rust_src(ws)?;
    let host = nightly_host(ws)?;
    if !supports_thread_sanitizer(ws, &host)? {
        return Ok(format!("not run: rustc has no ThreadSanitizer for {host}"));
    }
    let target_dir = ws.target_dir.join("tsan");
    Cmd::cargo(&["+nightly", "test", "-Zbuild-std", "--target", &host])
        .args(&["--workspace", "--all-features", "--tests", "--no-fail-fast"])
        .args(&[
            "--exclude",
            "gosync",
            "--exclude",
            "gosync-benches",
            "--exclude",
            "xtask",
        ])
        .env("RUSTFLAGS", append_flags("RUSTFLAGS", "-Zsanitizer=thread"))
        .env("CARGO_TARGET_DIR", target_dir.display().to_string())
        // Off even where the caller turned it on (CI does, for every step): a backtrace per
        // panic takes seconds under the sanitizer, and several tests panic thousands of times
        // on purpose.
        .env("RUST_BACKTRACE", "0".to_owned())
        // Read by gosync-testkit when it is built: a hang limit of 300 s, not 20 (the
        // sanitizer slows a stress test several times over).
        .env("GOSYNC_TESTKIT_SLOW", "1".to_owned())
        .run(ws)?;
    Ok(format!("target {host}"))
}

/// Makes nightly's standard library sources available for `-Zbuild-std`: installs nightly with
/// rust-src, or adds the component to an installed nightly.
fn ensure_rust_src(ws: &Workspace) -> Result<(), String> {
    if nightly_library_sources(ws).is_some_and(|library| library.is_dir()) {
        return Ok(());
    }
    println!("--- nightly's rust-src is missing: installing it through rustup");
    add_nightly_components(ws, &["rust-src"])?;
    if nightly_library_sources(ws).is_some_and(|library| library.is_dir()) {
        Ok(())
    } else {
        Err("nightly's rust-src is still missing after installing it".to_owned())
    }
}

/// Where nightly's rust-src puts the standard library's sources, if nightly's rustc runs.
fn nightly_library_sources(ws: &Workspace) -> Option<PathBuf> {
    let sysroot = nightly_rustc(ws, &["--print", "sysroot"]).ok()?;
    Some(PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust/library"))
}

/// The host's target triple as nightly's rustc names it (`-Zbuild-std` needs `--target`).
fn nightly_host(ws: &Workspace) -> Result<String, String> {
    host_triple(&nightly_rustc(ws, &["-vV"])?)
        .ok_or_else(|| "`rustc +nightly -vV` names no host".to_owned())
}

/// Whether rustc's target specification for `host` lists the thread sanitizer.
fn supports_thread_sanitizer(ws: &Workspace, host: &str) -> Result<bool, String> {
    let spec = nightly_rustc(
        ws,
        &[
            "-Zunstable-options",
            "--print",
            "target-spec-json",
            "--target",
            host,
        ],
    )?;
    Ok(lists_thread_sanitizer(&spec))
}

/// What `rustc +nightly ARGS` prints, or why it did not run.
fn nightly_rustc(ws: &Workspace, args: &[&str]) -> Result<String, String> {
    let output = Command::new("rustc")
        .arg("+nightly")
        .args(args)
        .current_dir(&ws.root)
        .output()
        .map_err(|error| format!("cannot run `rustc +nightly {}`: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "`rustc +nightly {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `host:` line of `rustc -vV`.
fn host_triple(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
}

/// Whether a target specification (JSON) has `"thread"` in its `supported-sanitizers` list.
fn lists_thread_sanitizer(spec: &str) -> bool {
    let Some(at) = spec.find("\"supported-sanitizers\"") else {
        return false;
    };
    let rest = &spec[at..];
    let list = match (rest.find('['), rest.find(']')) {
        (Some(open), Some(close)) if open < close => &rest[open..close],
        _ => return false,
    };
    list.contains("\"thread\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_comes_from_rustc_verbose_version() {
        let version = "rustc 1.97.0-nightly (abc 2026-11-30)\nbinary: rustc\n\
                       host: x86_64-unknown-linux-gnu\nrelease: 1.97.0-nightly\n";
        assert_eq!(
            host_triple(version).as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert_eq!(host_triple("rustc 1.80.0\n"), None);
    }

    #[test]
    fn the_thread_sanitizer_is_read_from_the_target_spec() {
        let linux = r#"{ "arch": "x86_64", "supported-sanitizers": [ "address", "thread" ] }"#;
        assert!(lists_thread_sanitizer(linux));
        let windows = r#"{ "supported-sanitizers": [ "address" ], "x": ["thread"] }"#;
        assert!(!lists_thread_sanitizer(windows));
        assert!(!lists_thread_sanitizer(r#"{ "arch": "wasm32" }"#));
    }
}
