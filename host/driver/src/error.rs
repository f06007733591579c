//! The driver's one error: why a deploy (or a resume, a rollback, a dry run) could not start, or
//! could not be taken up. Each variant keeps what failed, so the command line can say whose fault it
//! is ([`DeployError::is_bad_input`]) and map it to an exit code in one place.

use cutover_config::ConfigError;
use cutover_core::{ErrorKind, OpError};
use cutover_journal::JournalError;
use cutover_runtime::RuntimeError;
use std::path::PathBuf;

/// Why a deploy could not run, or did not finish; in every case nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The configuration or the command line is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// No built-in strategy has this name.
    #[error(
        "unknown strategy `{name}`: the built-in strategies are {}; to use your own, give the path to its \
         .wasm (e.g. `strategy = \"./my-strategy.wasm\"`)",
        builtins.join(", ")
    )]
    UnknownStrategy {
        /// The name asked for.
        name: String,
        /// The names there are.
        builtins: Vec<&'static str>,
    },
    /// The strategy's component file cannot be read.
    #[error("cannot read strategy component {}: {source}", path.display())]
    StrategyFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The strategy component cannot be used with this host.
    #[error("{0}")]
    Strategy(RuntimeError),
    /// Neither `--image` nor the config says what to deploy.
    #[error("no image to deploy: pass `--image IMAGE` or set `image` under [build] in {}", config.display())]
    NoImage {
        /// The config that has no `[build] image`.
        config: PathBuf,
    },
    /// The Fly platform has no API token.
    #[error(
        "the fly platform needs an API token, and none is set: create a deploy token for the app with `fly \
         tokens create deploy -a {app}` and put it in FLY_API_TOKEN (or pass --access-token)"
    )]
    NoToken {
        /// The app a token is needed for.
        app: String,
    },
    /// The simulator's scenario, or the fleet it kept between runs, cannot be read.
    #[error("{0}")]
    Simulator(#[from] cutover_sim::SimError),
    /// There is no release to roll back to; the message says why and what to do.
    #[error("{0}")]
    NoRollbackTarget(String),
    /// The platform does not deploy to an app with no machines; the message says what to do instead.
    #[error("{0}")]
    NotLaunched(String),
    /// An operation on the platform failed before anything changed (`Invalid`: the input's fault).
    #[error("{message}")]
    Platform {
        /// The operation's error kind.
        kind: ErrorKind,
        /// What failed, for people.
        message: String,
    },
    /// The platform cannot be set up from here (no state directory, no `cutover` binary).
    #[error("{0}")]
    Setup(String),
    /// The local platform's daemon is not running, and the command only reads from it.
    #[error("no local daemon is running for {}; `cutover local up` starts one", state.display())]
    NoDaemon {
        /// The state directory it would run in.
        state: PathBuf,
    },
    /// The local platform's daemon failed (`cutover local serve`).
    #[error("{0}")]
    Daemon(#[from] cutover_local::daemon::DaemonError),
    /// The journal could not be read or written, so nothing was started.
    #[error("{0}")]
    Journal(JournalError),
    /// Another deploy of the app is running (it holds the journal's lock or a machine's lease).
    #[error("{0}")]
    Busy(String),
    /// There is no interrupted deploy to resume; the message says what there is.
    #[error("{0}")]
    NothingToResume(String),
    /// `cutover resume` cannot take the interrupted deploy up again (the message says why and what
    /// state the fleet is in); the resume changed nothing.
    #[error("{0}")]
    CannotResume(String),
}

impl DeployError {
    /// A platform operation's failure, in its own words.
    pub fn platform(e: OpError) -> Self {
        Self::Platform { kind: e.kind, message: e.message }
    }

    /// A platform operation's failure, after what the driver was doing (`listing machines of app: …`).
    pub fn platform_in(context: impl std::fmt::Display, e: &OpError) -> Self {
        Self::Platform { kind: e.kind, message: format!("{context}: {e}") }
    }

    /// Input errors (exit code 2) as opposed to the platform or the journal failing (exit code 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Platform { kind, .. } => *kind == ErrorKind::Invalid,
            Self::Setup(_) | Self::NoDaemon { .. } | Self::Daemon(_) | Self::Journal(_) | Self::Busy(_) => {
                false
            }
            _ => true,
        }
    }
}

impl From<JournalError> for DeployError {
    /// Another deploy holding the journal's lock is `Busy`, like one holding a machine's lease.
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Busy(holder) => Self::Busy(holder),
            e => Self::Journal(e),
        }
    }
}
