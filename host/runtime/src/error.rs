//! The runtime's one error type: why a strategy could not be loaded or did not run to its end.

use super::limits::LimitExceeded;
use super::replay::ReplayDiverged;
use super::sandbox::DescribeCalledHost;
use cutover_core::events::SinkError;

/// Why loading or running a strategy component failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The component is larger than any strategy needs to be; refused before it is compiled.
    #[error(
        "{subject} is {} MiB, over the {} MiB a strategy component may be (the largest real ones, built \
         with componentize-py, are about 18 MB); it was not compiled",
        bytes.div_ceil(1 << 20),
        limit >> 20
    )]
    TooLarge {
        /// The component file, or "the component".
        subject: String,
        /// Its size.
        bytes: u64,
        /// The bound ([`crate::MAX_COMPONENT_BYTES`]).
        limit: u64,
    },
    /// Compiling the component outlived the compile deadline; the compiler was stopped.
    #[error(
        "compiling {subject} took longer than the compile deadline of {}, so the compiler was stopped \
         (a strategy component compiles in seconds; if this one really needs longer, raise \
         `[cutover.limits] compile_timeout`, `--compile-timeout` or CUTOVER_COMPILE_TIMEOUT)",
        cutover_core::duration::display(*timeout)
    )]
    CompileTimeout {
        /// The component file, or "the component".
        subject: String,
        /// The deadline it outlived.
        timeout: std::time::Duration,
    },
    /// The bytes are not a WebAssembly component (a core module, or not wasm at all).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// A component, but not one implementing the strategy world.
    #[error("not a cutover strategy: {0}")]
    NotAStrategy(String),
    /// Built against a contract version (or imports) this host does not provide.
    #[error("{0}")]
    Incompatible(String),
    /// A sandbox limit stopped the strategy.
    #[error("strategy stopped by its {0}")]
    Limit(LimitExceeded),
    /// The guest trapped: a panic, `unreachable`, a stack overflow, an out-of-bounds access.
    #[error(
        "the strategy crashed: {trap}{}{}",
        section("its last output", output),
        section("guest backtrace", backtrace)
    )]
    Trap {
        /// What wasmtime reported.
        trap: String,
        /// The tail of the guest's stdout and stderr (where a Rust panic message lands).
        output: String,
        /// The guest's frames, when the component kept its names.
        backtrace: String,
    },
    /// A resumed strategy did not repeat the journaled run (nothing was changed by the resume).
    #[error("{0}")]
    Diverged(ReplayDiverged),
    /// The run's record (the journal) could not take an event: the run stopped, and the change it
    /// announced was not sent.
    #[error("strategy stopped: {0}")]
    Journal(SinkError),
    /// `describe` tried to call the host.
    #[error("{0}")]
    DescribeCalledHost(#[from] DescribeCalledHost),
    /// Anything else (compiling, instantiating).
    #[error("{0:#}")]
    Other(anyhow::Error),
}

fn section(title: &str, body: &str) -> String {
    let body = body.trim_end();
    if body.is_empty() { String::new() } else { format!("\n{title}:\n{}", indent(body)) }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

impl RuntimeError {
    /// Classify an error that came out of running guest code. `output` is what the guest printed.
    pub fn from_guest(err: wasmtime::Error, output: String) -> Self {
        if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
            return Self::Limit(limit.clone());
        }
        if let Some(d) = err.downcast_ref::<ReplayDiverged>() {
            return Self::Diverged(d.clone());
        }
        if let Some(e) = err.downcast_ref::<SinkError>() {
            return match e {
                SinkError::Full { limit_bytes } => {
                    Self::Limit(LimitExceeded::JournalBytes { limit_bytes: *limit_bytes })
                }
                failed => Self::Journal(failed.clone()),
            };
        }
        if err.downcast_ref::<DescribeCalledHost>().is_some() {
            return Self::DescribeCalledHost(DescribeCalledHost);
        }
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            let backtrace =
                err.downcast_ref::<wasmtime::WasmBacktrace>().map(|b| format!("{b}")).unwrap_or_default();
            let trap = match trap {
                wasmtime::Trap::UnreachableCodeReached if output.contains("panicked") => {
                    "it panicked (wasm `unreachable`)".to_string()
                }
                wasmtime::Trap::StackOverflow => "stack overflow (unbounded recursion?)".to_string(),
                other => other.to_string(),
            };
            return Self::Trap { trap, output: tail(&output, 40), backtrace };
        }
        Self::Other(anyhow::anyhow!("{err:?}"))
    }

    /// Whether the fault is the strategy's own (a limit or a crash) rather than the host's.
    pub fn is_guest_fault(&self) -> bool {
        matches!(self, Self::Limit(_) | Self::Trap { .. } | Self::DescribeCalledHost(_))
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
