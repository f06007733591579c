//! What every command sets up the same way: its config, where it runs, and the runtimes it needs.

use super::args::AppArgs;
use super::exit::Error;
use super::out::errln;
use cutover_config::Config;
use cutover_driver::{PlatformFlags, Purpose, StateDir, Target};
use cutover_runtime::{Compiler, ComponentCache, Runtime};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// The global flags every command shares.
pub(crate) struct Context {
    /// `--cache-dir`: compiled components.
    pub(crate) cache_dir: Option<PathBuf>,
    /// `--state-dir`: the app's journal, simulated fleet and local daemon.
    pub(crate) state_dir: Option<PathBuf>,
    /// `--compile-timeout`: how long compiling one component may take.
    pub(crate) compile_timeout: Option<std::time::Duration>,
}

impl Context {
    /// Load the app's config, printing its warnings.
    pub(crate) fn config(&self, app: &AppArgs) -> Result<Config, Error> {
        let config = Config::load(&app.config)?;
        for w in &config.warnings {
            errln!("warning: {w}");
        }
        Ok(config)
    }

    /// The app's state directory: `--state-dir`, else `.cutover/` beside its config.
    pub(crate) fn state(&self, config: &Config) -> StateDir {
        // The environment wins, so CI can point every job at the team's journal without a file edit.
        let url = std::env::var(cutover_driver::JOURNAL_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| config.cutover.journal.as_ref().map(|u| u.expose().to_string()));
        StateDir::resolve(&config.path, self.state_dir.as_deref()).with_journal(url)
    }

    /// The compile deadline for `config`'s strategy: `--compile-timeout`, else the config's
    /// `compile_timeout` (its `[[cutover.sandbox]]` entry's, else `[cutover.limits]`).
    pub(crate) fn compile_timeout(&self, config: &Config) -> std::time::Duration {
        self.compile_timeout.unwrap_or_else(|| config.cutover.sandbox_for(&config.strategy).0.compile_timeout)
    }

    /// Where a command for `purpose` runs, decided once from the flags, the config and the journal.
    pub(crate) fn target(&self, config: &Config, mut flags: PlatformFlags, purpose: Purpose) -> Target {
        flags.cutover_exe = std::env::current_exe().ok();
        Target::resolve(config, flags, Some(self.state(config)), purpose)
    }

    /// Run `f` on a tokio runtime for `target` (the simulator's is single-threaded with time paused,
    /// so its virtual clock jumps to the next timer) with the component runtime.
    pub(crate) fn with_runtime<F, Fut>(&self, virtual_time: bool, f: F) -> Result<super::exit::Exit, Error>
    where
        F: FnOnce(Arc<Runtime>) -> Fut,
        Fut: Future<Output = Result<super::exit::Exit, Error>>,
    {
        let rt = tokio_runtime(virtual_time)?;
        let cache = match &self.cache_dir {
            Some(dir) => ComponentCache::at(dir),
            None => ComponentCache::default_location(),
        };
        let mut engine = Runtime::new(cache)
            .map_err(|e| Error::Startup(format!("cannot start the component runtime: {e}")))?;
        // Compiles run in a child of this binary, killed at the deadline (see `cutover_runtime::compile`).
        if let Ok(exe) = std::env::current_exe() {
            engine = engine.with_compiler(Compiler::new(exe, ["compile-component"]));
        }
        if let Some(timeout) = self.compile_timeout {
            engine.set_compile_timeout(timeout);
        }
        rt.block_on(f(Arc::new(engine)))
    }
}

/// The one tokio runtime builder of the CLI: virtual time (the simulator) on one thread with time
/// paused; everything else, which talks to real servers, multi-threaded.
pub(crate) fn tokio_runtime(virtual_time: bool) -> Result<tokio::runtime::Runtime, Error> {
    let rt = if virtual_time {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    };
    rt.map_err(|e| Error::Startup(format!("cannot start the async runtime: {e}")))
}

/// The current directory, against which `--strategy PATH` is read.
pub(crate) fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// The token `--access-token` (or `FLY_API_TOKEN`, through clap) gives, if any.
pub(crate) fn token(value: Option<String>) -> Option<cutover_machines_api::Token> {
    value.and_then(cutover_machines_api::Token::new)
}
