//! fly.toml's `[deploy] release_command`: one command run on the new release, once, before any machine
//! changes (the way Fly apps run database migrations). Each platform runs it its own way
//! ([`Platform::run_release_command`](crate::Platform::run_release_command)); this module is what they
//! share: what to run, how it may end, and where its output goes.

use crate::error::OpError;
use crate::machine::Release;
use std::collections::BTreeMap;
use std::time::Duration;

/// The variable every platform sets for the release command, as Fly does, so one binary can tell a
/// migration run from a serving one.
pub const RELEASE_COMMAND_ENV: &str = "RELEASE_COMMAND";

/// The process group Fly gives a release command's temporary machine (never part of a deploy).
pub const RELEASE_COMMAND_GROUP: &str = "fly_app_release_command";

/// How many of the command's last output lines a failure shows and the journal keeps at its end
/// (flyctl prints the last 100 lines of a failed release command).
pub const TAIL_LINES: usize = 100;

/// The size of the machine a release command runs on (`[deploy] release_command_vm`); unset fields
/// are the platform's choice (on Fly: like the app's largest machine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseVm {
    /// `size`: a Fly preset ("shared-cpu-2x", "performance-1x").
    pub size: Option<String>,
    /// `cpu_kind`: "shared" or "performance".
    pub cpu_kind: Option<String>,
    /// `cpus`.
    pub cpus: Option<u32>,
    /// `memory` / `memory_mb`, in MiB.
    pub memory_mb: Option<u32>,
}

/// One run of the release command.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseCommand {
    /// As fly.toml writes it (`bin/migrate --all`).
    pub command: String,
    /// The same, split as a shell would (flyctl splits it the same way).
    pub args: Vec<String>,
    /// The release it runs: its image, and the version its environment names.
    pub release: Release,
    /// Extra environment; every platform adds `RELEASE_COMMAND=1` and its own release variables.
    pub env: BTreeMap<String, String>,
    /// `[deploy] release_command_timeout`: how long it may run before it is stopped.
    pub timeout: Duration,
    /// `[deploy] release_command_vm`, if set.
    pub vm: Option<ReleaseVm>,
}

/// Why a release command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseCommandError {
    /// It ran and exited with a code other than 0.
    #[error("release command exited with code {0}")]
    Exited(i32),
    /// It ended without an exit code: killed by a signal, its machine failed or vanished.
    #[error("release command crashed: {0}")]
    Crashed(String),
    /// It outlived `release_command_timeout` and was stopped.
    #[error("release command did not finish within {} and was stopped", crate::duration::display(*.0))]
    TimedOut(Duration),
    /// The platform could not run it at all (it never started, or could not be followed).
    #[error("release command could not be run: {0}")]
    Platform(OpError),
}

/// Where a running release command's output goes, line by line (the driver streams it into the deploy
/// log and the journal).
pub trait ReleaseLog: Send + Sync {
    /// One line the command wrote (stdout or stderr, without its newline).
    fn line(&self, line: &str);
    /// Something the platform did for the command (its machine was created, it started).
    fn note(&self, message: String);
}

/// The longest output line kept; a longer one is cut (a command may print anything).
pub const MAX_LINE: usize = 4096;

/// `line` cut to [`MAX_LINE`] bytes at a character boundary, with invalid UTF-8 replaced.
pub fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    if text.len() <= MAX_LINE {
        return text.to_string();
    }
    let mut end = MAX_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_exit_code_and_lines_are_bounded() {
        assert_eq!(ReleaseCommandError::Exited(3).to_string(), "release command exited with code 3");
        assert_eq!(
            ReleaseCommandError::TimedOut(Duration::from_secs(2)).to_string(),
            "release command did not finish within 2s and was stopped"
        );
        assert_eq!(clean_line(b"ok\r\n"), "ok");
        let long = "é".repeat(MAX_LINE);
        let cut = clean_line(long.as_bytes());
        assert!(cut.len() <= MAX_LINE + "…".len(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
