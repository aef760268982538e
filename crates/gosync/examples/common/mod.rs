//! What the example programs share: how they end. Each checks its invariants at the end, prints
//! every check and a verdict, and exits with the verdict; a bad command line exits with 2.

use std::process::ExitCode;

/// The invariants an example checks at its end, each printed as it is checked
/// (`check: <what>: ok` or `FAILED`).
pub(crate) struct Invariants {
    all_held: bool,
}

impl Default for Invariants {
    fn default() -> Self {
        Self { all_held: true }
    }
}

impl Invariants {
    /// Prints whether the invariant `what` `held`, and remembers a failure.
    pub(crate) fn check(&mut self, what: &str, held: bool) {
        println!("check: {what}: {}", if held { "ok" } else { "FAILED" });
        self.all_held &= held;
    }

    /// Prints `invariants: ok` (or `FAILED`) and gives the matching exit code.
    pub(crate) fn verdict(self) -> ExitCode {
        println!(
            "invariants: {}",
            if self.all_held { "ok" } else { "FAILED" }
        );
        if self.all_held {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Reports a bad command line, prefixed with the example's name; exit code 2.
pub(crate) fn usage(problem: &str) -> ExitCode {
    eprintln!("{}: {problem}", env!("CARGO_CRATE_NAME"));
    ExitCode::from(2)
}
