//! Builds the built-in strategies (`../strategies`, a separate wasm32-wasip2 workspace) and embeds
//! them in the `cutover` binary, so a plain `cargo build` is the only step. Also embeds what
//! `cutover new` writes: each language's template and SDK (`../sdk/<lang>/`) and the contract (`../wit`).
//!
//! The nested cargo uses its own target directory (`target/wasm-guests`), so it never waits on the
//! lock the outer build holds, and it gets a clean environment: flags meant for the host build
//! (`CARGO_ENCODED_RUSTFLAGS`, coverage or sanitizer flags) must not leak into the guest build.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("host/ lives in the workspace root").to_path_buf();
    let strategies = root.join("strategies");
    let target_dir = root.join("target").join("wasm-guests");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-changed={}", strategies.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", strategies.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    // The strategies are built with the Rust SDK, and `cutover new` embeds every SDK: a change to any of
    // them must rebuild. (Cargo scans a directory recursively, so a new language's folder counts too.)
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());

    let members = strategy_crates(&strategies);
    for m in &members {
        println!("cargo:rerun-if-changed={}", strategies.join(m).display());
    }
    // Only component crates are strategies; a library crate in the workspace would be built into them.
    let components: Vec<&String> = members
        .iter()
        .filter(|m| {
            std::fs::read_to_string(strategies.join(m).join("Cargo.toml")).is_ok_and(|t| {
                t.lines().any(|l| l.trim_start().starts_with("crate-type") && l.contains("cdylib"))
            })
        })
        .collect();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(strategies.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the built-in strategies");
    if !status.success() {
        panic!(
            "building the built-in strategies (strategies/) for wasm32-wasip2 failed. If the error above \
             says the target is missing, run `rustup target add wasm32-wasip2`."
        );
    }

    let mut generated = String::from(
        "/// Built-in strategies: (name, component bytes).\npub const BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for m in components {
        let wasm = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", m.replace('-', "_")));
        let name = m.as_str();
        let copy = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", wasm.display()));
        writeln!(generated, "    ({name:?}, include_bytes!({:?})),", copy.display().to_string()).unwrap();
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("builtin_strategies.rs"), generated).unwrap();

    embed_scaffold(&root, &out_dir);
}

/// Folders of an SDK that are not part of it: its template (written separately), build output, caches
/// and installed packages.
const NOT_SDK: &[&str] = &["template", "target", "node_modules", "__pycache__", ".venv", ".pytest_cache"];

/// Generate `scaffold_files.rs`: every file of `sdk/<lang>/template/` (a language is offered only when
/// its template exists), of the language's SDK (`sdk/<lang>/` but [`NOT_SDK`]), and of `wit/`, as
/// `(language, relative path, bytes)` / `(relative path, bytes)` with `include_bytes!`.
fn embed_scaffold(root: &Path, out_dir: &Path) {
    let sdk = root.join("sdk");
    let mut langs: Vec<String> = std::fs::read_dir(&sdk)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("template").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    langs.sort();

    let mut templates = Vec::new();
    let mut sdks = Vec::new();
    for lang in &langs {
        let dir = sdk.join(lang);
        for (rel, path) in files_under(&dir.join("template"), &[]) {
            templates.push((lang.clone(), rel, path));
        }
        for (rel, path) in files_under(&dir, NOT_SDK) {
            sdks.push((lang.clone(), rel, path));
        }
    }
    let wit = files_under(&root.join("wit"), &[]);

    let mut out = String::from("/// Template files: (language, path in the template, bytes).\n");
    out.push_str("pub const TEMPLATE_FILES: &[(&str, &str, &[u8])] = &[\n");
    for (lang, rel, path) in &templates {
        writeln!(out, "    ({lang:?}, {rel:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n/// SDK files: (language, path in the SDK, bytes).\n");
    out.push_str("pub const SDK_FILES: &[(&str, &str, &[u8])] = &[\n");
    for (lang, rel, path) in &sdks {
        writeln!(out, "    ({lang:?}, {rel:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n/// The contract: (path in wit/, bytes).\n");
    out.push_str("pub const WIT_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &wit {
        writeln!(out, "    ({rel:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    std::fs::write(out_dir.join("scaffold_files.rs"), out).unwrap();
}

/// Every file under `dir` (recursively, skipping folders named in `skip` and hidden entries other than
/// `.gitignore`), as ('/'-separated path relative to `dir`, absolute path), sorted.
fn files_under(dir: &Path, skip: &[&str]) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name != ".gitignore" {
                continue;
            }
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let path = entry.path();
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    stack.push((path, rel));
                }
            } else if !name.ends_with(".pyc") {
                found.push((rel, path));
            }
        }
    }
    found.sort();
    found
}

/// The member crates of the strategies workspace (every folder with a Cargo.toml), sorted.
fn strategy_crates(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read strategies/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
