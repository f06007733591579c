//! Output that may go away. `cutover deploy --json | head -1` closes stdout after one line, a CI log
//! collector can vanish, a terminal can hang up; `println!` would then panic ("failed printing to
//! stdout"), mid-deploy, inside a host call, leaving the fleet half-way. Here a write that fails stops
//! that stream's output for the rest of the run: one warning goes to the other stream if it still
//! works, and the command goes on as it would have. The journal keeps every event whatever happens
//! to the output (`cutover status`, `cutover releases`).

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed: nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set once a write to stderr failed.
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Write to stdout, unless it went away (then say so once, on stderr).
pub(crate) fn stdout(args: Arguments) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        drop(out);
        if !STDOUT_GONE.swap(true, Ordering::Relaxed) {
            stderr(format_args!(
                "warning: standard output went away ({e}); cutover goes on without it, and the journal keeps \
                 every event (`cutover status`)\n"
            ));
        }
    }
}

/// Write to stderr, unless it went away (then say so once, on stdout).
pub(crate) fn stderr(args: Arguments) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_fmt(args).and_then(|()| err.flush()) {
        drop(err);
        if !STDERR_GONE.swap(true, Ordering::Relaxed) {
            stdout(format_args!(
                "warning: standard error went away ({e}); cutover goes on without it, and the journal keeps \
                 every event (`cutover status`)\n"
            ));
        }
    }
}

/// Say once, where output still goes, that the terminal hung up.
pub(crate) fn hung_up() {
    stderr(format_args!(
        "warning: the terminal hung up (SIGHUP); the deploy goes on, and the journal keeps every event \
         (`cutover status`)\n"
    ));
}

/// `println!` that survives a closed stdout.
macro_rules! outln {
    () => { $crate::cli::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*)) };
}

/// `eprintln!` that survives a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};
