//! Keys a file has that its shape does not. fly.toml gains keys over time and flyctl reads many a
//! deploy never needs, so an unknown key is a warning, not an error; the Fly keys a deploy knows it
//! does not need are accepted without one, so a warning always means a likely typo.

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::Path;

/// Keys of fly.toml that flyctl understands but a deploy does not need; they are accepted silently.
const FLY_KEYS_UNUSED: &[&str] = &[
    "primary_region",
    "swap_size_mb",
    "console_command",
    "env",
    "vm",
    "statics",
    "metrics",
    "experimental",
    "files",
    "restart",
    "http_service.force_https",
    "http_service.auto_stop_machines",
    "http_service.auto_start_machines",
    "http_service.min_machines_running",
    "http_service.processes",
    "http_service.concurrency",
    "http_service.tls_options",
    "http_service.http_options",
    "http_service.checks.headers",
    "services.protocol",
    "services.ports",
    "services.concurrency",
    "services.auto_stop_machines",
    "services.auto_start_machines",
    "services.min_machines_running",
    "services.processes",
    "services.script_checks",
    "build.dockerfile",
    "build.builder",
    "build.buildpacks",
    "build.args",
    "build.build-target",
    "build.ignorefile",
    "build.image_label",
    "deploy.seccomp",
    "deploy.release_command_vm.gpus",
    "deploy.release_command_vm.gpu_kind",
    "deploy.release_command_vm.kernel_args",
    "deploy.release_command_vm.host_dedication_id",
    "deploy.release_command_vm.persist_rootfs",
    "deploy.release_command_vm.processes",
    "deploy.seed_command",
    "deploy.max_concurrent",
];

/// Whether `path` (dotted, without array indices) is one of the silently accepted Fly keys.
pub(crate) fn known_unused(path: &str) -> bool {
    FLY_KEYS_UNUSED.iter().any(|k| path == *k || path.starts_with(&format!("{k}.")))
}

/// Parse TOML text into `T`, collecting the paths of keys `T` does not have.
pub(crate) fn parse_collecting<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
) -> Result<(T, Vec<String>), ConfigError> {
    let mut unknown = Vec::new();
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
    let value: T = serde_ignored::deserialize(de, |p| {
        // Drop array indices and serde_ignored's `?` (an Option) so `services.0.http_checks` reads
        // as `services.http_checks`.
        let dotted: Vec<String> = p
            .to_string()
            .split('.')
            .filter(|s| *s != "?" && s.parse::<usize>().is_err())
            .map(str::to_string)
            .collect();
        unknown.push(dotted.join("."));
    })
    .map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
    Ok((value, unknown))
}
