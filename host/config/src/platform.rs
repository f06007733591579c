//! Which platform a deploy runs on, as `[cutover] platform`, `--platform` and the journal name it.

use serde::Deserialize;
use std::fmt;

/// Which platform a deploy runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// In-process simulated fleet on a virtual clock.
    Sim,
    /// Real processes on this machine behind a local proxy.
    Local,
    /// Fly.io Machines.
    Fly,
}

impl PlatformKind {
    /// The platform a journal names (`sim`, `local`, `fly`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sim" => Some(Self::Sim),
            "local" => Some(Self::Local),
            "fly" => Some(Self::Fly),
            _ => None,
        }
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sim => "sim",
            Self::Local => "local",
            Self::Fly => "fly",
        })
    }
}
