//! Exit codes, and the one place an error becomes a message and an exit code.
//!
//! Scripts and CI tell a failed deploy from a mistake in the input by the exit code alone, so every
//! command returns either how it ended ([`Exit`]) or an [`Error`], and [`report`] is the only code that
//! prints an error and picks its code.

use super::out::errln;
use cutover_config::ConfigError;
use cutover_driver::status::StatusError;
use cutover_driver::{DeployError, JournalError};
use cutover_scaffold::ScaffoldError;
use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked (a deploy finished with the app on the new release).
    Success = 0,
    /// The work ran and failed: the strategy gave up or the sandbox stopped it, an invariant broke,
    /// a build failed.
    Failed = 1,
    /// Bad input: config, flags, strategy component or image. Nothing was changed.
    BadInput = 2,
    /// The platform could not be reached or set up, the journal could not be used, or another deploy
    /// of the app is running. Nothing was changed.
    Platform = 3,
    /// cutover itself could not start (its async runtime or its WebAssembly engine). Nothing was
    /// changed.
    Internal = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The app's config cannot be used.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A deploy, rollback, resume, dry run or demo did not start (or could not be taken up).
    #[error("{0}")]
    Deploy(Box<DeployError>),
    /// The local platform's daemon could not be started, stopped or read.
    #[error("{0}")]
    Local(Box<DeployError>),
    /// A strategy named on the command line cannot be used (inspect, verify).
    #[error("{0}")]
    Strategy(Box<DeployError>),
    /// A built-in strategy does not load: this build of cutover is broken.
    #[error("built-in strategy {name}: {error}")]
    BrokenBuiltin {
        /// The strategy.
        name: String,
        /// Why it does not load.
        error: Box<DeployError>,
    },
    /// `cutover verify` could not run its scenarios.
    #[error("{0}")]
    Verify(#[from] cutover_verify::VerifyError),
    /// The journal cannot be read or written, or refused (a promote with no gate to open).
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// `cutover status` has nothing to show.
    #[error("{0}")]
    Status(#[from] StatusError),
    /// `cutover report` could not draw or write its picture.
    #[error("{0}")]
    Report(#[from] cutover_report::ReportError),
    /// `cutover new` or `cutover build` failed.
    #[error("{0}")]
    Scaffold(#[from] ScaffoldError),
    /// Some machines' logs could not be read (the others were printed).
    #[error("{}", .0.join("\nerror: "))]
    Logs(Vec<String>),
    /// The tokio runtime or the WebAssembly engine did not start.
    #[error("{0}")]
    Startup(String),
}

impl From<DeployError> for Error {
    fn from(e: DeployError) -> Self {
        Self::Deploy(Box::new(e))
    }
}

impl Error {
    /// A strategy named on the command line that cannot be used.
    pub fn strategy(e: DeployError) -> Self {
        Self::Strategy(Box::new(e))
    }

    /// The local platform's daemon failing.
    pub fn local(e: DeployError) -> Self {
        Self::Local(Box::new(e))
    }

    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Config(_) | Self::Strategy(_) | Self::Verify(_) | Self::Logs(_) => Exit::BadInput,
            Self::Deploy(e) if e.is_bad_input() => Exit::BadInput,
            Self::Deploy(_) | Self::Local(_) => Exit::Platform,
            Self::BrokenBuiltin { .. } => Exit::Failed,
            Self::Journal(JournalError::Refused(_) | JournalError::Url(_)) => Exit::BadInput,
            Self::Journal(_) => Exit::Platform,
            Self::Status(StatusError::NoReleases { .. } | StatusError::NoState { .. }) => Exit::BadInput,
            Self::Status(_) => Exit::Platform,
            Self::Report(e) if e.is_bad_input() => Exit::BadInput,
            Self::Report(_) => Exit::Failed,
            Self::Scaffold(e) if e.is_bad_input() => Exit::BadInput,
            Self::Scaffold(_) => Exit::Failed,
            Self::Startup(_) => Exit::Internal,
        }
    }

    /// What the user can do about it, when there is something to say beyond the error.
    fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Config(ConfigError::Read { .. }) => {
                Some("hint: run from your app's folder, or pass --config path/to/fly.toml")
            }
            // Whatever stopped a deploy before it began, the fleet is as it was.
            Self::Deploy(_) => Some("nothing was changed"),
            _ => None,
        }
    }
}

/// Print `error` (and what to do about it) on stderr and return its exit code.
pub fn report(error: &Error) -> ExitCode {
    errln!("error: {error}");
    if let Some(hint) = error.hint() {
        errln!("{hint}");
    }
    error.exit().into()
}
