//! `cutover-strategy.toml`: what a strategy project is and how to build it, so `cutover build` needs to
//! know nothing about any language.
//!
//! ```toml
//! name = "my-strategy"
//! language = "rust"
//! build = ["cargo", "build", "--release", "--target", "wasm32-wasip2"]
//! output = "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/my_strategy.wasm"
//! install = "install Rust from https://rustup.rs"    # optional: shown when `build[0]` is missing
//! ```

use super::ScaffoldError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The manifest's file name, at the root of a project.
pub const MANIFEST: &str = "cutover-strategy.toml";

/// A project's manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The strategy's name.
    pub name: String,
    /// The language of its template (informational).
    pub language: String,
    /// The build command, as an argument vector run in the project's directory.
    pub build: Vec<String>,
    /// The component's path, relative to the project; `${VAR:-default}` is replaced from the
    /// environment (build tools move their output when told to, e.g. `CARGO_TARGET_DIR`).
    pub output: String,
    /// How to install the build tool, for the error when it is missing.
    #[serde(default)]
    pub install: Option<String>,
}

impl Manifest {
    /// Read `dir/cutover-strategy.toml`.
    pub fn load(dir: &Path) -> Result<Self, ScaffoldError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ScaffoldError::NoManifest(path));
            }
            Err(source) => return Err(ScaffoldError::Io { path, source }),
        };
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| ScaffoldError::BadManifest { path: path.clone(), message: e.to_string() })?;
        if manifest.build.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(ScaffoldError::BadManifest {
                path,
                message:
                    "`build` is empty: expected the build command as a list, e.g. [\"cargo\", \"build\"]"
                        .into(),
            });
        }
        if manifest.output.trim().is_empty() {
            return Err(ScaffoldError::BadManifest {
                path,
                message: "`output` is empty: expected the path of the built .wasm, relative to the project"
                    .into(),
            });
        }
        Ok(manifest)
    }

    /// Where the component lands, with `${VAR:-default}` expanded, relative paths taken from `dir`.
    pub fn output_path(&self, dir: &Path) -> PathBuf {
        let expanded = expand(&self.output, |var| std::env::var(var).ok().filter(|v| !v.is_empty()));
        let path = PathBuf::from(expanded);
        if path.is_absolute() { path } else { dir.join(path) }
    }
}

/// Replace each `${VAR:-default}` (or `${VAR}`, empty when unset) in `text` using `lookup`.
fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + len];
        let (var, default) = inner.split_once(":-").unwrap_or((inner, ""));
        out.push_str(&lookup(var).unwrap_or_else(|| default.to_string()));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_with_defaults() {
        let env = |v: &str| (v == "SET").then(|| "/t".to_string());
        assert_eq!(expand("${SET:-target}/x.wasm", env), "/t/x.wasm");
        assert_eq!(expand("${UNSET:-target}/x.wasm", env), "target/x.wasm");
        assert_eq!(expand("a/${UNSET}b", env), "a/b");
        assert_eq!(expand("plain/${open", env), "plain/${open");
    }
}
