//! Strategy projects: `cutover new` writes one from a language's template, `cutover build` turns one
//! into a component.
//!
//! The mechanism knows no language. A language is offered when the build embedded its template
//! (`sdk/<lang>/template/`, see `build.rs`); a project is the template with its placeholders filled,
//! the contract (`wit/`, the files this host implements) and the language's SDK (`vendor/cutover-sdk/`),
//! so it builds without this repository. Every template carries a `cutover-strategy.toml` that says how
//! to build it and where the component lands; `cutover build` only follows it.
//!
//! - [`embedded`]: the files the binary carries.
//! - [`name`]: project names and the placeholders they fill.
//! - [`create`](mod@create): writing a new project.
//! - [`manifest`]: the project manifest, `cutover-strategy.toml`.
//! - [`builder`]: running the build and checking its output.

pub mod builder;
pub mod create;
pub mod embedded;
pub mod manifest;
pub mod name;

pub use builder::{Built, build};
pub use create::{Created, NewProject, create};
pub use embedded::languages;
pub use manifest::{MANIFEST, Manifest};

use std::path::PathBuf;

/// Why a project could not be created or built. Each says which file or value and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The project name is not kebab-case.
    #[error(
        "`{0}` is not a valid strategy name: use lower-case letters, digits and dashes, starting with a \
         letter (e.g. `drain-slowly`)"
    )]
    BadName(String),
    /// No template for this language in this build.
    #[error("no template for language `{lang}`; this cutover offers: {}", available.join(", "))]
    UnknownLanguage {
        /// What was asked for.
        lang: String,
        /// What this build embeds.
        available: Vec<String>,
    },
    /// The target directory exists and is not empty.
    #[error("{} already exists and is not empty; choose another name or --dir", .0.display())]
    NotEmpty(PathBuf),
    /// The manifest is missing.
    #[error(
        "{} not found: `cutover build` builds a strategy project made by `cutover new` (pass its \
         directory, or run it there)",
        .0.display()
    )]
    NoManifest(PathBuf),
    /// The manifest cannot be parsed or lacks a key.
    #[error("{}: {message}", path.display())]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The build tool is not installed.
    #[error("`{program}` was not found on PATH: {hint}")]
    MissingTool {
        /// The program the manifest's `build` runs.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// The build ran and failed.
    #[error("the build (`{command}`) failed ({status}){hint}")]
    BuildFailed {
        /// The command, as run.
        command: String,
        /// Its exit status.
        status: String,
        /// What the output suggests to do, if anything (starts with "; ").
        hint: String,
    },
    /// The build succeeded but its output is missing or not a component.
    #[error("{}: {message}", path.display())]
    BadOutput {
        /// The `output` of the manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ScaffoldError {
    /// Whether the input was at fault (exit code 2) rather than the build (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::BuildFailed { .. } | Self::BadOutput { .. })
    }
}
