//! `[deploy] release_command`, `release_command_timeout` and `release_command_vm`, checked as they are
//! read, so a deploy never starts with a command it cannot run.

use crate::error::ConfigError;
use crate::raw::RawVm;
use cutover_core::ReleaseVm;
use std::path::Path;

/// Fly's machine presets: (name, cpu kind, cpus, MiB), as fly-go's `MachinePresets` lists them.
const PRESETS: &[(&str, &str, u32, u32)] = &[
    ("shared-cpu-1x", "shared", 1, 256),
    ("shared-cpu-2x", "shared", 2, 512),
    ("shared-cpu-4x", "shared", 4, 1024),
    ("shared-cpu-8x", "shared", 8, 2048),
    ("performance-1x", "performance", 1, 2048),
    ("performance-2x", "performance", 2, 4096),
    ("performance-4x", "performance", 4, 8192),
    ("performance-8x", "performance", 8, 16384),
    ("performance-16x", "performance", 16, 32768),
];

/// A preset's (cpu kind, cpus, MiB), if `size` names one.
pub fn preset(size: &str) -> Option<(&'static str, u32, u32)> {
    PRESETS.iter().find(|p| p.0 == size).map(|p| (p.1, p.2, p.3))
}

/// The release command split into arguments as a shell would; an empty command or unbalanced quotes
/// are errors naming the key.
pub(crate) fn split(path: &Path, command: &str) -> Result<Vec<String>, ConfigError> {
    let invalid = |expected: &str| ConfigError::Invalid {
        path: path.into(),
        key: "deploy.release_command".into(),
        value: format!("{command:?}"),
        expected: expected.into(),
    };
    match shlex::split(command) {
        None => Err(invalid("a command line with balanced quotes (it is split as a shell would)")),
        Some(args) if args.is_empty() => {
            Err(invalid("a command to run, e.g. \"bin/migrate\" (remove the key to run none)"))
        }
        Some(args) => Ok(args),
    }
}

/// `[deploy.release_command_vm]`, checked: a known preset, a known cpu kind, at least one cpu, and a
/// memory size that reads as MiB.
pub(crate) fn vm(path: &Path, raw: RawVm) -> Result<ReleaseVm, ConfigError> {
    let invalid = |key: &str, value: String, expected: String| ConfigError::Invalid {
        path: path.into(),
        key: format!("deploy.release_command_vm.{key}"),
        value,
        expected,
    };
    if let Some(size) = &raw.size
        && preset(size).is_none()
    {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
        return Err(invalid("size", format!("{size:?}"), format!("one of {}", names.join(", "))));
    }
    if let Some(kind) = &raw.cpu_kind
        && !matches!(kind.as_str(), "shared" | "performance")
    {
        return Err(invalid("cpu_kind", format!("{kind:?}"), "\"shared\" or \"performance\"".into()));
    }
    if raw.cpus == Some(0) {
        return Err(invalid("cpus", "0".into(), "at least 1".into()));
    }
    if raw.memory_mb == Some(0) {
        return Err(invalid("memory_mb", "0".into(), "at least 1".into()));
    }
    let memory = match &raw.memory {
        None => None,
        Some(v) => Some(memory_mb(v).ok_or_else(|| {
            invalid("memory", v.to_string(), "a size such as \"512mb\", \"1gb\" or a number of MiB".into())
        })?),
    };
    // A preset fills what the other keys leave out, as flyctl's `computeToGuest` does.
    let preset = raw.size.as_deref().and_then(preset);
    Ok(ReleaseVm {
        cpu_kind: raw.cpu_kind.or(preset.map(|p| p.0.to_string())),
        cpus: raw.cpus.or(preset.map(|p| p.1)),
        memory_mb: raw.memory_mb.or(memory).or(preset.map(|p| p.2)),
        size: raw.size,
    })
}

/// "512mb", "1gb", "2g", "256" (MiB) → MiB; anything else (or 0) → `None`.
fn memory_mb(v: &toml::Value) -> Option<u32> {
    let mb = match v {
        toml::Value::Integer(n) => u32::try_from(*n).ok()?,
        toml::Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let n: u32 = s[..digits].parse().ok()?;
            match s[digits..].trim() {
                "" | "m" | "mb" | "mib" => n,
                "g" | "gb" | "gib" => n.checked_mul(1024)?,
                _ => return None,
            }
        }
        _ => return None,
    };
    (mb > 0).then_some(mb)
}
