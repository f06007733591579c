//! Compiling a component within a deadline.
//!
//! A component is untrusted input: a pull request can hand `cutover verify` one whose functions take
//! Cranelift minutes (or hours) to compile, holding a shared CI runner meanwhile. Cranelift cannot be
//! interrupted in-process, and a thread left compiling after the caller gave up is not stopped: it
//! keeps the CPU and memory until it finishes. So the compiler runs in a child process (the `cutover`
//! binary itself, with a hidden command that calls [`compile_file`]); at the deadline the child is
//! killed, which really ends the work, and the load fails with its own error. The child writes the
//! compiled artifact, which the parent maps as it would a cached one (and the cache keeps it, so the
//! next load compiles nothing and needs no child).
//!
//! Without a [`Compiler`] (a library user, the benchmarks) the runtime compiles in-process, unbounded.

use anyhow::{Context as _, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How often the parent looks whether the child has finished.
const POLL: Duration = Duration::from_millis(10);

/// The configuration every engine that runs or compiles strategies uses: the parent's engine and
/// the compiling child's must agree, or the child's artifact would not load (wasmtime checks).
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// A program that compiles one component: run as `program args… INPUT OUTPUT`, it reads the
/// component at INPUT and writes the compiled artifact to OUTPUT ([`compile_file`]).
#[derive(Debug, Clone)]
pub struct Compiler {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Compiler {
    /// `program` with `args` before the two paths (e.g. the `cutover` binary and its hidden command).
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Self { program: program.into(), args: args.into_iter().map(Into::into).collect() }
    }
}

/// The compile of a component outlived its deadline; the compiler was killed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the compile outlived its deadline of {0:?}")]
pub(crate) struct DeadlinePassed(pub Duration);

/// What the child runs: compile the component in `input` with [`engine_config`] and write the
/// artifact to `output` (atomically: a reader never maps half a file).
pub fn compile_file(input: &Path, output: &Path) -> Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let engine = Engine::new(&engine_config()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let artifact = engine.precompile_component(&bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cutover_core::os::write_atomically(output, &artifact)
        .with_context(|| format!("writing {}", output.display()))
}

/// Compile `bytes` for `engine` in a child run by `compiler`, killing it once `timeout` passes.
pub(crate) fn in_child(
    compiler: &Compiler,
    engine: &Engine,
    bytes: &[u8],
    timeout: Duration,
) -> Result<Component> {
    let dir =
        tempfile::Builder::new().prefix("cutover-compile-").tempdir().context("a temporary directory")?;
    let (input, output, log) =
        (dir.path().join("in.wasm"), dir.path().join("out.cwasm"), dir.path().join("log"));
    std::fs::write(&input, bytes).context("writing the component for the compiler")?;
    let stderr = std::fs::File::create(&log).context("the compiler's log")?;
    let started = Instant::now();
    let mut child = Command::new(&compiler.program)
        .args(&compiler.args)
        .arg(&input)
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting the compiler {}", compiler.program.display()))?;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the compiler")? {
            break status;
        }
        if started.elapsed() >= timeout {
            // SIGKILL: Cranelift's worker threads go with the process; nothing keeps compiling.
            let _ = child.kill();
            let _ = child.wait();
            return Err(DeadlinePassed(timeout).into());
        }
        std::thread::sleep(POLL);
    };
    if !status.success() {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        // The child is `cutover` itself: its error report starts with `error: `.
        let said = said.trim();
        let said = said.strip_prefix("error: ").unwrap_or(said);
        anyhow::bail!(
            "{}",
            if said.is_empty() { format!("the compiler ended with {status}") } else { said.to_string() }
        );
    }
    // SAFETY: the artifact was written by `Engine::precompile_component` of an engine with the same
    // configuration, into a directory only this process created; wasmtime checks the engine's
    // compatibility hash before using it.
    unsafe { Component::deserialize_file(engine, &output) }.map_err(|e| anyhow::anyhow!("{e:?}"))
}
