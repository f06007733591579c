//! The `cutover` binary: the command line lives in the library (`cutover::cli`); this is only where
//! its outcome becomes the process's exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match cutover::cli::try_main() {
        Ok(exit) => exit.into(),
        Err(error) => cutover::cli::exit::report(&error),
    }
}
