//! Builds the built-in strategies (`strategies/` at the workspace root, a separate wasm32-wasip2
//! workspace) and embeds them in this crate, so a plain `cargo build` is the only step.
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
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .expect("host/builtins lives two levels below the workspace root")
        .to_path_buf();
    let strategies = root.join("strategies");
    let target_dir = root.join("target").join("wasm-guests");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-changed={}", strategies.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", strategies.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    // The strategies are built with the Rust SDK: a change to it must rebuild them.
    println!("cargo:rerun-if-changed={}", root.join("sdk").join("rust").display());

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
