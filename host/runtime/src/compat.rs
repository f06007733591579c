//! Does a component fit this host? Checked before linking, so the user gets a sentence about
//! versions instead of a linker error about a missing instance.

use super::error::RuntimeError;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract package this host implements.
pub const PACKAGE: &str = "cutover:strategy";
/// The contract version this host implements; guests built for any `0.1.x` link.
pub const VERSION: &str = "0.1.0";
/// The interfaces of the contract a strategy may import.
const INTERFACES: &[&str] = &["types", "machines", "health", "traffic", "runtime"];
/// The functions a strategy must export.
pub const EXPORTS: &[&str] = &["describe", "deploy"];

/// What a compatible component declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldInfo {
    /// The contract version the component was built against, when it imports any of it.
    pub contract_version: Option<String>,
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

    let mut contract_version = None;
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
            if !compatible(version) {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy targets {PACKAGE}@{version}; this host implements {}. Rebuild the strategy \
                     against the `wit/` of this cutover release, or use a cutover that implements {version}",
                    supported_range()
                )));
            }
            if !INTERFACES.contains(&iface) {
                return Err(RuntimeError::Incompatible(format!(
                    "this strategy imports `{name}`, but {PACKAGE}@{VERSION} has no interface `{iface}` \
                     (it has: {})",
                    INTERFACES.join(", ")
                )));
            }
            contract_version = Some(version.to_string());
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
    Ok(WorldInfo { contract_version, imports, exports })
}

/// Same major, and for 0.x the same minor: the component model links such versions by semver.
fn compatible(version: &str) -> bool {
    let ours: Vec<&str> = VERSION.split('.').collect();
    let theirs: Vec<&str> = version.split(['.', '-', '+']).collect();
    if theirs.len() < 3 || theirs[0] != ours[0] {
        return false;
    }
    ours[0] != "0" || theirs[1] == ours[1]
}

fn supported_range() -> String {
    let mut parts = VERSION.split('.');
    format!("{}.{}.x", parts.next().unwrap_or("0"), parts.next().unwrap_or("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_rules() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.0.0"));
        assert!(!compatible("0.1"));
    }
}
