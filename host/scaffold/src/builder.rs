//! `cutover build`: run a project's build command as its manifest gives it, stream what it prints, and
//! check that what it produced is a component the host can load.

use super::{Manifest, ScaffoldError};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How many lines of the build's error output are kept to look for a known cause.
const KEPT_LINES: usize = 400;

/// A built component.
#[derive(Debug)]
pub struct Built {
    /// The manifest's `name`.
    pub name: String,
    /// Where the component is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Build the project in `dir`: read its manifest, run `build` there (its output goes to this
/// process's stdout and stderr as it comes), then check `output`.
pub fn build(dir: &Path) -> Result<Built, ScaffoldError> {
    let manifest = Manifest::load(dir)?;
    run(dir, &manifest)?;
    let path = manifest.output_path(dir);
    let size = check_component(&path)?;
    Ok(Built { name: manifest.name, path, size })
}

/// Run the build command in `dir`, teeing its stderr so a failure can be explained.
fn run(dir: &Path, manifest: &Manifest) -> Result<(), ScaffoldError> {
    let program = &manifest.build[0];
    // A relative path to a script is relative to the project, wherever cutover runs from.
    let exe = if program.contains('/') && Path::new(program).is_relative() {
        dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let command = manifest.build.join(" ");
    let mut child = match Command::new(&exe)
        .args(&manifest.build[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ScaffoldError::MissingTool {
                program: program.clone(),
                hint: manifest.install.clone().unwrap_or_else(|| install_hint(program)),
            });
        }
        Err(source) => return Err(ScaffoldError::Io { path: exe, source }),
    };
    let mut kept: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut out = std::io::stderr();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(out, "{line}");
            if kept.len() == KEPT_LINES {
                kept.remove(0);
            }
            kept.push(line);
        }
    }
    let status = child.wait().map_err(|source| ScaffoldError::Io { path: exe.clone(), source })?;
    if status.success() {
        return Ok(());
    }
    let hint = failure_hint(&kept.join("\n")).map(|h| format!("; {h}")).unwrap_or_default();
    Err(ScaffoldError::BuildFailed { command, status: status.to_string(), hint })
}

/// How to install a build tool the manifest does not say how to install.
fn install_hint(program: &str) -> String {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    match name {
        "cargo" | "rustup" => {
            "install Rust from https://rustup.rs, then run `rustup target add wasm32-wasip2`".into()
        }
        "componentize-py" => "install it with `pip install componentize-py`".into(),
        "jco" => {
            "install it with `npm install -g @bytecodealliance/jco @bytecodealliance/componentize-js`".into()
        }
        "npm" | "npx" | "node" => "install Node.js from https://nodejs.org".into(),
        "python" | "python3" | "pip" => "install Python 3 from https://www.python.org".into(),
        _ => format!("install `{name}` or put it on PATH"),
    }
}

/// What a failed build's error output suggests doing, when it is a cause seen before.
fn failure_hint(output: &str) -> Option<&'static str> {
    let missing_target = output.contains("wasm32-wasip2")
        && (output.contains("target may not be installed") || output.contains("can't find crate for `core`"));
    if missing_target {
        return Some("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
    }
    if output.contains("No module named") && output.contains("componentize") {
        return Some("componentize-py is missing: run `pip install componentize-py`");
    }
    None
}

/// Check that `path` is a WebAssembly component (not a core module); returns its size.
fn check_component(path: &Path) -> Result<u64, ScaffoldError> {
    let bad = |message: String| ScaffoldError::BadOutput { path: path.to_path_buf(), message };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "the build succeeded but wrote no component here: check `output` in {}",
                super::MANIFEST
            )));
        }
        Err(e) => return Err(bad(format!("cannot read the component: {e}"))),
    };
    match kind(&bytes) {
        WasmKind::Component => Ok(bytes.len() as u64),
        WasmKind::Module => Err(bad(
            "is a core WebAssembly module, not a component: build for wasm32-wasip2 (not wasm32-wasip1 or \
             wasm32-unknown-unknown), or wrap it with `wasm-tools component new`"
                .into(),
        )),
        WasmKind::Other => Err(bad("is not a WebAssembly file".into())),
    }
}

/// What a file's header says it is.
#[derive(Debug, PartialEq)]
enum WasmKind {
    Component,
    Module,
    Other,
}

/// A component's header is `\0asm` then version 0x0d and layer 1; a core module's is version 1, layer 0.
fn kind(bytes: &[u8]) -> WasmKind {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => WasmKind::Module,
        _ => WasmKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules() {
        assert_eq!(kind(b"\0asm\x0d\0\x01\0rest"), WasmKind::Component);
        assert_eq!(kind(b"\0asm\x01\0\0\0"), WasmKind::Module);
        assert_eq!(kind(b"hello world"), WasmKind::Other);
        assert_eq!(kind(b""), WasmKind::Other);
    }

    #[test]
    fn a_missing_rust_target_is_explained() {
        let out = "error[E0463]: can't find crate for `core`\n  = note: the `wasm32-wasip2` target may not be installed";
        assert!(failure_hint(out).unwrap().contains("rustup target add wasm32-wasip2"));
        assert_eq!(failure_hint("error: mismatched types"), None);
    }
}
