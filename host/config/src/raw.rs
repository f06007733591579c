//! The files' shapes exactly as serde reads them: every key optional, no default filled in, nothing
//! checked. Keeping them apart from the resolved [`Config`](crate::Config) lets serde name a key of the
//! wrong type (with its file and line) while defaults and range checks live in one place, `load`.
//!
//! Keys a shape lacks are not errors: `keys::parse_collecting` turns them into warnings.

use crate::platform::PlatformKind;
use cutover_core::duration::Dur;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole fly.toml: the keys a deploy reads, and `[cutover]`.
#[derive(Deserialize, Default)]
pub(crate) struct RawFly {
    pub(crate) app: Option<String>,
    pub(crate) kill_signal: Option<String>,
    pub(crate) kill_timeout: Option<Dur>,
    pub(crate) build: Option<RawBuild>,
    pub(crate) deploy: Option<RawDeploy>,
    pub(crate) http_service: Option<RawHttpService>,
    #[serde(default)]
    pub(crate) services: Vec<RawService>,
    pub(crate) checks: Option<BTreeMap<String, RawCheck>>,
    pub(crate) processes: Option<BTreeMap<String, toml::Value>>,
    pub(crate) mounts: Option<toml::Value>,
    pub(crate) cutover: Option<RawCutover>,
}

/// `[build]`: only the image; how flyctl builds one is not a deploy's business.
#[derive(Deserialize, Default)]
pub(crate) struct RawBuild {
    pub(crate) image: Option<String>,
}

/// `[deploy]`.
#[derive(Deserialize, Default)]
pub(crate) struct RawDeploy {
    pub(crate) strategy: Option<String>,
    pub(crate) max_unavailable: Option<toml::Value>,
    pub(crate) wait_timeout: Option<Dur>,
    pub(crate) release_command: Option<String>,
    pub(crate) release_command_timeout: Option<Dur>,
    pub(crate) release_command_vm: Option<RawVm>,
}

/// `[deploy.release_command_vm]`: flyctl's `Compute` (a preset `size`, `memory` as "512mb" / "1gb",
/// and the machine guest's `cpu_kind`, `cpus`, `memory_mb`).
#[derive(Deserialize, Default)]
pub(crate) struct RawVm {
    pub(crate) size: Option<String>,
    pub(crate) memory: Option<toml::Value>,
    pub(crate) cpu_kind: Option<String>,
    pub(crate) cpus: Option<u32>,
    pub(crate) memory_mb: Option<u32>,
}

/// `[http_service]`: the port its checks probe, and the checks.
#[derive(Deserialize, Default)]
pub(crate) struct RawHttpService {
    pub(crate) internal_port: Option<u16>,
    #[serde(default)]
    pub(crate) checks: Vec<RawCheck>,
}

/// One `[[services]]` entry: the port its checks probe, and its HTTP and TCP checks.
#[derive(Deserialize, Default)]
pub(crate) struct RawService {
    pub(crate) internal_port: Option<u16>,
    #[serde(default)]
    pub(crate) http_checks: Vec<RawCheck>,
    #[serde(default)]
    pub(crate) tcp_checks: Vec<RawCheck>,
}

/// Every form of check fly.toml has (`[[http_service.checks]]`, `[[services.http_checks]]`,
/// `[[services.tcp_checks]]`, `[checks.NAME]`) shares these keys; which apply depends on the form.
#[derive(Deserialize, Default)]
pub(crate) struct RawCheck {
    /// Only in `[checks.NAME]`: "http" or "tcp".
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// Only in `[checks.NAME]`; elsewhere the service's `internal_port`.
    pub(crate) port: Option<u16>,
    pub(crate) grace_period: Option<Dur>,
    pub(crate) interval: Option<Dur>,
    pub(crate) timeout: Option<Dur>,
    pub(crate) method: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) protocol: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) tls_skip_verify: Option<bool>,
}

/// `[cutover]` in fly.toml, or the whole of `cutover.toml` (the same keys, at top level).
#[derive(Deserialize, Default)]
pub(crate) struct RawCutover {
    pub(crate) platform: Option<PlatformKind>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) sandbox: Option<Vec<RawSandbox>>,
    pub(crate) params: Option<BTreeMap<String, toml::Value>>,
    pub(crate) sim: Option<RawSim>,
    pub(crate) local: Option<RawLocal>,
    pub(crate) fly: Option<RawFlyOptions>,
    pub(crate) lease_ttl: Option<Dur>,
    pub(crate) journal: Option<String>,
    pub(crate) notify: Option<Vec<crate::notify::RawNotify>>,
    pub(crate) metrics: Option<RawMetrics>,
}

/// `[cutover.metrics]`.
#[derive(Deserialize, Default)]
pub(crate) struct RawMetrics {
    pub(crate) url: Option<String>,
    pub(crate) token_env: Option<String>,
    pub(crate) timeout: Option<Dur>,
}

/// `[cutover.fly]`.
#[derive(Deserialize, Default)]
pub(crate) struct RawFlyOptions {
    pub(crate) api_url: Option<String>,
}

/// `[cutover.local]`; `command` is a string or an array, told apart when it is resolved.
#[derive(Deserialize, Default)]
pub(crate) struct RawLocal {
    pub(crate) command: Option<toml::Value>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Option<BTreeMap<String, String>>,
    pub(crate) port: Option<u16>,
    pub(crate) tcp: Option<bool>,
    pub(crate) machines: Option<usize>,
    pub(crate) regions: Option<Vec<String>>,
    pub(crate) header_timeout: Option<Dur>,
    pub(crate) max_header_bytes: Option<usize>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) max_connections_per_client: Option<u32>,
    pub(crate) max_requests_per_connection: Option<u32>,
    /// `true`, `false` or `{ max_age = "1h" }`, told apart when it is resolved.
    pub(crate) sticky_sessions: Option<toml::Value>,
}

/// `[cutover.limits]`, and the limits of a `[[cutover.sandbox]]` entry (flattened into it).
#[derive(Deserialize, Default)]
pub(crate) struct RawLimits {
    pub(crate) memory_mb: Option<u64>,
    pub(crate) cpu_budget: Option<Dur>,
    pub(crate) deadline: Option<Dur>,
    pub(crate) host_calls: Option<u64>,
    pub(crate) journal_mb: Option<u64>,
    pub(crate) new_machines: Option<u64>,
    pub(crate) compile_timeout: Option<Dur>,
}

/// One `[[cutover.sandbox]]` entry.
#[derive(Deserialize, Default)]
pub(crate) struct RawSandbox {
    pub(crate) strategy: Option<String>,
    #[serde(flatten)]
    pub(crate) limits: RawLimits,
    pub(crate) allow: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) deny: Vec<String>,
    pub(crate) process_groups: Option<Vec<String>>,
    pub(crate) regions: Option<Vec<String>>,
}

/// `[cutover.sim]`.
#[derive(Deserialize, Default)]
pub(crate) struct RawSim {
    pub(crate) scenario: Option<PathBuf>,
}
