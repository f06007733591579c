//! Embeds what `cutover new` writes: each language's template and SDK (`sdk/<lang>/` at the workspace
//! root) and the contract (`wit/`), so the binary can scaffold a project anywhere.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root =
        manifest_dir.ancestors().nth(2).expect("host/scaffold lives two levels below the workspace root");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // Cargo scans a directory recursively, so a new language's folder counts too.
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    embed_scaffold(root, &out_dir);
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
