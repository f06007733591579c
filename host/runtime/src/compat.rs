//! Does a component fit this host? Checked before linking, so the user gets a sentence about
//! versions instead of a linker error about a missing instance.
//!
//! The host speaks every contract version in [`CONTRACTS`] at once (one module each, `v0_1`, `v0_2`):
//! a component is linked against the one it was built for, found here from its imports.

use super::error::RuntimeError;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract package this host implements.
pub const PACKAGE: &str = "cutover:strategy";
/// The latest contract version this host implements (what new strategies, the SDKs and the built-ins
/// target); guests built for any version in [`CONTRACTS`] link.
pub const VERSION: &str = "0.2.0";
/// The functions a strategy must export.
pub const EXPORTS: &[&str] = &["describe", "deploy"];

/// A contract version this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `cutover:strategy@0.1.x`.
    V0_1,
    /// `cutover:strategy@0.2.x`: 0.1 plus `metrics`.
    V0_2,
}

/// Every contract version this host implements, oldest first.
pub const CONTRACTS: &[Contract] = &[Contract::V0_1, Contract::V0_2];

impl Contract {
    /// `major.minor` of the version: the component model links any patch of it.
    pub fn version(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
        }
    }

    /// The interfaces a strategy of this version may import.
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Self::V0_1 => &["types", "machines", "health", "traffic", "runtime"],
            Self::V0_2 => &["types", "machines", "health", "traffic", "runtime", "metrics"],
        }
    }

    /// The version `version` (e.g. `0.1.3`) is a patch of, if this host implements it.
    fn of(version: &str) -> Option<Self> {
        let mut parts = version.split(['.', '-', '+']);
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
        if major != "0" || patch.parse::<u64>().is_err() {
            return None;
        }
        CONTRACTS.iter().copied().find(|c| c.version().split('.').nth(1) == Some(minor))
    }
}

/// What a compatible component declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldInfo {
    /// The contract version the component was built against, when it imports any of it.
    pub contract_version: Option<String>,
    /// The contract version it is linked against (0.1 for a component that imports none of it: its
    /// exports use no type of the contract, so either would do).
    pub contract: Contract,
    /// Every import name, in order (e.g. `cutover:strategy/machines@0.1.0`, `wasi:io/streams@0.2.6`).
    pub imports: Vec<String>,
    /// Every export name, in order (a strategy exports at least [`EXPORTS`]).
    pub exports: Vec<String>,
}

/// Check a component's imports and exports against this host.
pub fn check(engine: &Engine, component: &Component) -> Result<WorldInfo, RuntimeError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();

    let mut found: Option<(String, Contract)> = None;
    for name in &imports {
        let (package_iface, version) = match name.split_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (name.as_str(), None),
        };
        if let Some(iface) = package_iface.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) {
            let Some(version) = version else {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy imports `{name}` without a version; this host implements {PACKAGE}@{}",
                    supported_range()
                )));
            };
            let Some(contract) = Contract::of(version) else {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy targets {PACKAGE}@{version}; this host implements {}. Rebuild the strategy \
                     against the `wit/` of this cutover release, or use a cutover that implements {version}",
                    supported_range()
                )));
            };
            if let Some((first, c)) = &found
                && *c != contract
            {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy imports both {PACKAGE}@{first} and `{name}`; a strategy is built against \
                     one contract version"
                )));
            }
            if !contract.interfaces().contains(&iface) {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy imports `{name}`, but {PACKAGE}@{version} has no interface `{iface}` \
                     (it has: {})",
                    contract.interfaces().join(", ")
                )));
            }
            found.get_or_insert((version.to_string(), contract));
        } else if !name.starts_with("wasi:") {
            return Err(RuntimeError::Incompatible(format!(
                "this strategy imports `{name}`, which cutover does not provide: strategies may import \
                 only {PACKAGE} and WASI (and get an empty WASI: no files, sockets or environment)"
            )));
        }
    }
    for required in EXPORTS {
        if !exports.iter().any(|e| e == required) {
            return Err(RuntimeError::NotAStrategy(format!(
                "it does not export `{required}` (it exports: {}); a strategy implements the \
                 `{PACKAGE}@{VERSION}` world, which exports `describe` and `deploy`",
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            )));
        }
    }
    let (contract_version, contract) = match found {
        Some((v, c)) => (Some(v), c),
        None => (None, Contract::V0_1),
    };
    Ok(WorldInfo { contract_version, contract, imports, exports })
}

/// "0.1.x and 0.2.x": what an error about versions says this host implements.
fn supported_range() -> String {
    let all: Vec<String> = CONTRACTS.iter().map(|c| format!("{}.x", c.version())).collect();
    all.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_rules() {
        assert_eq!(Contract::of("0.1.0"), Some(Contract::V0_1));
        assert_eq!(Contract::of("0.1.7"), Some(Contract::V0_1));
        assert_eq!(Contract::of("0.2.0"), Some(Contract::V0_2));
        assert_eq!(Contract::of("0.2.1-rc1"), Some(Contract::V0_2));
        assert_eq!(Contract::of("0.3.0"), None);
        assert_eq!(Contract::of("1.0.0"), None);
        assert_eq!(Contract::of("0.1"), None);
        assert_eq!(supported_range(), "0.1.x and 0.2.x");
    }
}
