//! A strategy as configuration names it. One setting covers both kinds, so a user moves from a
//! built-in to their own component by changing a name into a path.

use std::fmt;
use std::path::{Path, PathBuf};

/// A strategy as named in config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyRef {
    /// One of the strategies built into the binary, by name (`rolling`, `canary`, …).
    BuiltIn(String),
    /// A component on disk, its path already resolved against the config's folder (or the working
    /// directory, for `--strategy`).
    File(PathBuf),
}

impl StrategyRef {
    /// Interpret a strategy setting: a `.wasm` path (relative to `base`) or a built-in name.
    pub fn parse(value: &str, base: &Path) -> Self {
        if value.ends_with(".wasm") || value.contains('/') {
            let p = Path::new(value);
            Self::File(if p.is_absolute() { p.to_path_buf() } else { base.join(p) })
        } else {
            Self::BuiltIn(value.to_string())
        }
    }
}

impl fmt::Display for StrategyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn(n) => f.write_str(n),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}
