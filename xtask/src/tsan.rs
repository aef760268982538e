//! The `tsan` step: the library crates' tests under ThreadSanitizer.
//!
//! What it adds to loom and miri: the real atomics, futexes and OS scheduling, at the tests'
//! full thread counts, checked for data races by the compiler's instrumentation. The standard
//! library is rebuilt with the sanitizer (`-Zbuild-std`, hence nightly and its `rust-src`, the
//! ones the miri step installs); the whole step takes about five minutes on two cores.
//!
//! Left out: the umbrella crate (its example tests build the examples with a nested
//! `cargo build`, which does not take the sanitizer's `-Zbuild-std`), the benches and xtask.

use std::process::Command;

use crate::miri::ensure_nightly;
use crate::{append_flags, Cmd, Workspace};

/// The hosts on which rustc's ThreadSanitizer runs (its documentation's list, desktop and
/// server targets only); elsewhere the step passes with a note saying it did not run.
const SUPPORTED_HOSTS: [&str; 5] = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
];

/// Runs every test target of the library crates under ThreadSanitizer.
pub(crate) fn tsan(ws: &Workspace) -> Result<String, String> {
    ensure_nightly(ws)?;
    let host = nightly_host(ws)?;
    if !SUPPORTED_HOSTS.contains(&host.as_str()) {
        return Ok(format!("not run: rustc has no ThreadSanitizer for {host}"));
    }
    let target_dir = ws.target_dir.join("tsan");
    Cmd::cargo(&["+nightly", "test", "-Zbuild-std", "--target", &host])
        .args(&[
            "--workspace",
            "--exclude",
            "gosync",
            "--exclude",
            "gosync-benches",
        ])
        .args(&[
            "--exclude",
            "xtask",
            "--all-features",
            "--tests",
            "--no-fail-fast",
        ])
        .env("RUSTFLAGS", append_flags("RUSTFLAGS", "-Zsanitizer=thread"))
        .env("CARGO_TARGET_DIR", target_dir.display().to_string())
        // A backtrace per panic takes seconds under the sanitizer, and several tests panic
        // thousands of times on purpose.
        .env("RUST_BACKTRACE", "0".to_owned())
        // Read by gosync-testkit when it is built: a hang limit of 300 s, not 20 (the
        // sanitizer slows a stress test several times over).
        .env("GOSYNC_TESTKIT_SLOW", "1".to_owned())
        .run(ws)?;
    Ok(format!("target {host}"))
}

/// The host's target triple as nightly's rustc names it (`-Zbuild-std` needs `--target`).
fn nightly_host(ws: &Workspace) -> Result<String, String> {
    let output = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .current_dir(&ws.root)
        .output()
        .map_err(|error| format!("cannot run `rustc +nightly -vV`: {error}"))?;
    host_triple(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| "`rustc +nightly -vV` names no host".to_owned())
}

/// The `host:` line of `rustc -vV`.
fn host_triple(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
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
}
