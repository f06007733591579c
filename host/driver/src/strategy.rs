//! A strategy, from how the config (or `--strategy`) names it to a loaded component that has said
//! what it is.

use crate::DeployError;
use cutover_config::StrategyRef;
use cutover_core::contract::StrategyInfo;
use cutover_runtime::{Runtime, RuntimeError, StrategyComponent};
use std::sync::Arc;

/// A strategy ready to run: its component and what it says about itself.
pub struct ResolvedStrategy {
    /// How the config (or `--strategy`) named it.
    pub reference: StrategyRef,
    /// How messages name it: the built-in name, or the component's path.
    pub label: String,
    /// The loaded, checked component.
    pub component: Arc<StrategyComponent>,
    /// What `describe()` returned.
    pub info: StrategyInfo,
}

/// Load a strategy by built-in name or `.wasm` path, and ask it to describe itself.
pub async fn resolve_strategy(
    runtime: &Runtime,
    strategy: &StrategyRef,
) -> Result<ResolvedStrategy, DeployError> {
    let (label, bytes): (String, std::borrow::Cow<'static, [u8]>) = match strategy {
        StrategyRef::BuiltIn(name) => match cutover_builtins::builtin(name) {
            Some(bytes) => (name.clone(), bytes.into()),
            None => {
                return Err(DeployError::UnknownStrategy {
                    name: name.clone(),
                    builtins: cutover_builtins::names(),
                });
            }
        },
        StrategyRef::File(path) => {
            // Measured before it is read: an oversized file is neither loaded nor compiled.
            let size = std::fs::metadata(path)
                .map_err(|source| DeployError::StrategyFile { path: path.clone(), source })?
                .len();
            if size > cutover_runtime::MAX_COMPONENT_BYTES {
                return Err(DeployError::Strategy(RuntimeError::TooLarge {
                    subject: path.display().to_string(),
                    bytes: size,
                    limit: cutover_runtime::MAX_COMPONENT_BYTES,
                }));
            }
            let bytes = std::fs::read(path)
                .map_err(|source| DeployError::StrategyFile { path: path.clone(), source })?;
            (path.display().to_string(), bytes.into())
        }
    };
    let component = runtime.load(&bytes).map_err(|e| DeployError::Strategy(with_subject(&label, e)))?;
    let info =
        runtime.describe(&component).await.map_err(|e| DeployError::Strategy(with_subject(&label, e)))?;
    Ok(ResolvedStrategy { reference: strategy.clone(), label, component, info })
}

/// Name the component in the errors that are about the component itself.
fn with_subject(label: &str, e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::NotAComponent(m) => RuntimeError::NotAComponent(format!("{label}: {m}")),
        RuntimeError::NotAStrategy(m) => RuntimeError::NotAStrategy(format!("{label}: {m}")),
        RuntimeError::Incompatible(m) => RuntimeError::Incompatible(format!("{label}: {m}")),
        RuntimeError::CompileTimeout { timeout, .. } => {
            RuntimeError::CompileTimeout { subject: label.to_string(), timeout }
        }
        other => other,
    }
}
