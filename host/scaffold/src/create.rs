//! `cutover new`: a project from a language's template, with the contract and the SDK beside it.

use super::{ScaffoldError, embedded, name};
use std::path::{Path, PathBuf};

/// Where the SDK goes in a project: the Rust template's `Cargo.toml` depends on it by this path, and
/// the Rust SDK finds the contract at `../../wit` from here (0.1 in `wit/`, 0.2 in `wit/v0.2/`: the
/// whole tree is written, so an SDK reading either finds it).
pub const VENDOR_DIR: &str = "vendor/cutover-sdk";

/// What `cutover new` was asked for.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The strategy's name, kebab-case.
    pub name: String,
    /// A language with a template in this build (see [`embedded::languages`]).
    pub lang: String,
    /// Where to create the project [default: `./NAME`].
    pub dir: Option<PathBuf>,
}

/// The project that was written.
#[derive(Debug)]
pub struct Created {
    /// Its directory.
    pub dir: PathBuf,
    /// How many files were written.
    pub files: usize,
}

/// Write a new project: the template with `{{name}}` / `{{name_snake}}` filled (in paths and text),
/// `wit/`, and the SDK under [`VENDOR_DIR`]. Refuses a directory that exists and is not empty, so
/// nobody's work is overwritten; if writing fails half-way, the directory it created is removed.
pub fn create(req: &NewProject) -> Result<Created, ScaffoldError> {
    name::validate(&req.name)?;
    let available = embedded::languages();
    if !available.contains(&req.lang.as_str()) {
        return Err(ScaffoldError::UnknownLanguage {
            lang: req.lang.clone(),
            available: available.iter().map(|s| s.to_string()).collect(),
        });
    }
    let dir = req.dir.clone().unwrap_or_else(|| PathBuf::from(&req.name));
    let existed = dir.exists();
    if existed && !is_empty_dir(&dir)? {
        return Err(ScaffoldError::NotEmpty(dir));
    }
    match write_all(req, &dir) {
        Ok(files) => Ok(Created { dir, files }),
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e)
        }
    }
}

/// Whether `dir` is a directory with nothing in it (a file in its place counts as not empty).
fn is_empty_dir(dir: &Path) -> Result<bool, ScaffoldError> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut entries = std::fs::read_dir(dir).map_err(|source| io(dir, source))?;
    Ok(entries.next().is_none())
}

/// Write every file of the project; returns how many.
fn write_all(req: &NewProject, dir: &Path) -> Result<usize, ScaffoldError> {
    let mut files = 0;
    for (path, bytes) in embedded::template(&req.lang) {
        let path = name::fill(path, &req.name);
        // Binary files (none today) are copied as they are.
        let contents = match std::str::from_utf8(bytes) {
            Ok(text) => name::fill(text, &req.name).into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        write(&dir.join(path), &contents)?;
        files += 1;
    }
    for (path, bytes) in embedded::wit() {
        write(&dir.join("wit").join(path), bytes)?;
        files += 1;
    }
    for (path, bytes) in embedded::sdk(&req.lang) {
        write(&dir.join(VENDOR_DIR).join(path), bytes)?;
        files += 1;
    }
    Ok(files)
}

/// Write one file, creating its directory.
fn write(path: &Path, contents: &[u8]) -> Result<(), ScaffoldError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| io(parent, source))?;
    }
    std::fs::write(path, contents).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> ScaffoldError {
    ScaffoldError::Io { path: path.to_path_buf(), source }
}
