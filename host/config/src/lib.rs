//! Configuration: an existing `fly.toml`, read as is, plus cutover's own options.
//!
//! cutover's options live in a `[cutover]` table of fly.toml or, to leave fly.toml untouched for
//! flyctl, in a `cutover.toml` beside it (the same keys, at top level). Errors name the file, the key and
//! what was expected; keys neither Fly nor cutover knows are warnings, since fly.toml gains keys over time.

pub use cutover_core::duration;

use cutover_core::contract::{MaxUnavailable, ParamKind, ParamSpec, ParamValue};
use cutover_core::{CheckKind, CheckSpec};
use cutover_core::{Grants, Limits};
use duration::Dur;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fly's defaults, from flyctl.
pub const DEFAULT_MAX_UNAVAILABLE: f64 = 0.33;
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_KILL_SIGNAL: &str = "SIGINT";
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// flyctl changes up to 8 machines at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A configuration problem, with the file and key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: `{key}` = {value}: expected {expected}", path.display())]
    Invalid { path: PathBuf, key: String, value: String, expected: String },
    #[error("{}: {message}", path.display())]
    Other { path: PathBuf, message: String },
}

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

/// The resolved configuration of one app.
#[derive(Debug, Clone)]
pub struct Config {
    /// The fly.toml this came from.
    pub path: PathBuf,
    pub app: String,
    /// `[build] image`.
    pub image: Option<String>,
    /// `[deploy] strategy`: a built-in name or a path to a `.wasm` (resolved against the config's folder).
    pub strategy: StrategyRef,
    pub max_unavailable: MaxUnavailable,
    pub wait_timeout: Duration,
    pub release_command: Option<String>,
    pub release_command_timeout: Duration,
    pub kill_signal: String,
    pub kill_timeout: Duration,
    pub checks: Vec<CheckSpec>,
    /// Process groups from `[processes]` (`app` when there are none).
    pub process_groups: Vec<String>,
    /// `[mounts]` is present: machines have volumes.
    pub has_volumes: bool,
    pub cutover: CutoverOptions,
    /// Where each cutover option came from, for error messages (`fly.toml [cutover]` or `cutover.toml`).
    pub cutover_source: PathBuf,
    /// Keys that were not understood.
    pub warnings: Vec<String>,
}

/// A strategy as named in config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyRef {
    BuiltIn(String),
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

/// The `[cutover]` table.
#[derive(Debug, Clone)]
pub struct CutoverOptions {
    pub platform: PlatformKind,
    pub concurrency: usize,
    pub limits: Limits,
    /// `[[cutover.sandbox]]`: limits and grants for particular strategies (the first that matches).
    pub sandbox: Vec<SandboxPolicy>,
    /// Strategy parameters, checked against the strategy's `describe()` before the deploy.
    pub params: BTreeMap<String, toml::Value>,
    /// `[cutover.sim] scenario`, resolved against the config's folder.
    pub scenario: Option<PathBuf>,
    /// `[cutover.local]`: how the local platform runs the app.
    pub local: LocalOptions,
    /// `[cutover.fly]`: where the Fly Machines API is.
    pub fly: FlyConfig,
    /// `lease_ttl`: how long each machine lease of a deploy lasts between refreshes (flyctl's 13 s).
    pub lease_ttl: Duration,
}

/// `[cutover.fly]`. The token is deliberately not a key: it comes from `FLY_API_TOKEN` or
/// `--access-token`, never from a file that may be committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlyConfig {
    /// The Machines API's base URL (`FLY_FLAPS_BASE_URL` overrides it; default
    /// `https://api.machines.dev/v1`).
    pub api_url: Option<String>,
}

/// One `[[cutover.sandbox]]` entry: how a strategy is confined.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPolicy {
    /// The strategy it applies to (as `[deploy] strategy` names it); `None`: every strategy.
    pub strategy: Option<StrategyRef>,
    /// `[cutover.limits]` with this entry's own limits on top.
    pub limits: Limits,
    pub grants: Grants,
}

impl CutoverOptions {
    /// The limits and grants a run of `strategy` gets: those of the first `[[cutover.sandbox]]` entry
    /// naming it (or naming none), else `[cutover.limits]` and every grant.
    pub fn sandbox_for(&self, strategy: &StrategyRef) -> (Limits, Grants) {
        let same = |a: &StrategyRef| match (a, strategy) {
            (StrategyRef::File(x), StrategyRef::File(y)) => {
                x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(x), Ok(y)) if x == y)
            }
            (a, b) => a == b,
        };
        self.sandbox
            .iter()
            .find(|p| p.strategy.as_ref().is_none_or(same))
            .map(|p| (p.limits, p.grants.clone()))
            .unwrap_or((self.limits, Grants::default()))
    }
}

/// `[cutover.local]`: the app's command and how many machines a first deploy launches.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalOptions {
    /// The command and its arguments (`{image}` is replaced by the release's image); relative program
    /// paths are resolved against the config's folder.
    pub command: Vec<String>,
    /// Working directory of the app's processes (the config's folder by default).
    pub cwd: PathBuf,
    /// Extra environment for every machine.
    pub env: BTreeMap<String, String>,
    /// The proxy's public port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Plain TCP service instead of HTTP.
    pub tcp: bool,
    /// Machines a first deploy launches when the app has none.
    pub machines: usize,
    /// Regions those machines are spread over (labels only: every machine runs here).
    pub regions: Vec<String>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            command: vec![],
            cwd: PathBuf::from("."),
            env: BTreeMap::new(),
            port: 0,
            tcp: false,
            machines: 3,
            regions: vec!["local".into()],
        }
    }
}

impl Default for CutoverOptions {
    fn default() -> Self {
        Self {
            platform: PlatformKind::Sim,
            concurrency: DEFAULT_CONCURRENCY,
            limits: Limits::default(),
            sandbox: Vec::new(),
            params: BTreeMap::new(),
            scenario: None,
            local: LocalOptions::default(),
            fly: FlyConfig::default(),
            lease_ttl: Duration::from_secs(13),
        }
    }
}

// ---- raw file shapes -------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct RawFly {
    app: Option<String>,
    kill_signal: Option<String>,
    kill_timeout: Option<Dur>,
    build: Option<RawBuild>,
    deploy: Option<RawDeploy>,
    http_service: Option<RawHttpService>,
    #[serde(default)]
    services: Vec<RawService>,
    checks: Option<BTreeMap<String, RawCheck>>,
    processes: Option<BTreeMap<String, toml::Value>>,
    mounts: Option<toml::Value>,
    cutover: Option<RawCutover>,
}

#[derive(Deserialize, Default)]
struct RawBuild {
    image: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawDeploy {
    strategy: Option<String>,
    max_unavailable: Option<toml::Value>,
    wait_timeout: Option<Dur>,
    release_command: Option<String>,
    release_command_timeout: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawHttpService {
    internal_port: Option<u16>,
    #[serde(default)]
    checks: Vec<RawCheck>,
}

#[derive(Deserialize, Default)]
struct RawService {
    internal_port: Option<u16>,
    #[serde(default)]
    http_checks: Vec<RawCheck>,
    #[serde(default)]
    tcp_checks: Vec<RawCheck>,
}

/// Every form of check fly.toml has (`[[http_service.checks]]`, `[[services.http_checks]]`,
/// `[[services.tcp_checks]]`, `[checks.NAME]`) shares these keys; which apply depends on the form.
#[derive(Deserialize, Default)]
struct RawCheck {
    /// Only in `[checks.NAME]`: "http" or "tcp".
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Only in `[checks.NAME]`; elsewhere the service's `internal_port`.
    port: Option<u16>,
    grace_period: Option<Dur>,
    interval: Option<Dur>,
    timeout: Option<Dur>,
    method: Option<String>,
    path: Option<String>,
    protocol: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    tls_skip_verify: Option<bool>,
}

impl RawCheck {
    fn http_kind(&self) -> CheckKind {
        CheckKind::Http {
            method: self.method.as_deref().unwrap_or("GET").to_uppercase(),
            path: self.path.clone().unwrap_or_else(|| "/".into()),
            protocol: self.protocol.clone().unwrap_or_else(|| "http".into()),
            headers: self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            tls_skip_verify: self.tls_skip_verify.unwrap_or(false),
        }
    }

    /// The check as platforms run it, with Fly's default timings (grace 1s, interval 15s, timeout 2s).
    fn spec(&self, name: String, kind: CheckKind, port: Option<u16>) -> CheckSpec {
        CheckSpec {
            name,
            kind,
            grace_period: self.grace_period.map(|d| d.0).unwrap_or(Duration::from_secs(1)),
            interval: self.interval.map(|d| d.0).unwrap_or(Duration::from_secs(15)),
            timeout: self.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(2)),
            port: self.port.or(port),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawCutover {
    platform: Option<PlatformKind>,
    concurrency: Option<usize>,
    limits: Option<RawLimits>,
    sandbox: Option<Vec<RawSandbox>>,
    params: Option<BTreeMap<String, toml::Value>>,
    sim: Option<RawSim>,
    local: Option<RawLocal>,
    fly: Option<RawFlyOptions>,
    lease_ttl: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawFlyOptions {
    api_url: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawLocal {
    command: Option<toml::Value>,
    cwd: Option<PathBuf>,
    env: Option<BTreeMap<String, String>>,
    port: Option<u16>,
    tcp: Option<bool>,
    machines: Option<usize>,
    regions: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawLimits {
    memory_mb: Option<u64>,
    cpu_budget: Option<Dur>,
    deadline: Option<Dur>,
}

#[derive(Deserialize, Default)]
struct RawSandbox {
    strategy: Option<String>,
    #[serde(flatten)]
    limits: RawLimits,
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
    process_groups: Option<Vec<String>>,
    regions: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawSim {
    scenario: Option<PathBuf>,
}

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
    "deploy.release_command_vm",
    "deploy.max_concurrent",
];

/// Whether `path` (dotted, without array indices) is one of the silently accepted Fly keys.
fn known_unused(path: &str) -> bool {
    FLY_KEYS_UNUSED.iter().any(|k| path == *k || path.starts_with(&format!("{k}.")))
}

/// Parse TOML text into `T`, collecting the paths of keys `T` does not have.
fn parse_collecting<T: for<'de> Deserialize<'de>>(
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

impl Config {
    /// Apply the command line's `--strategy` (a built-in name, or a `.wasm` path relative to `cwd`)
    /// and `--image` over what the files say: from here on the config is what the deploy uses.
    pub fn with_overrides(mut self, strategy: Option<&str>, image: Option<String>, cwd: &Path) -> Self {
        if let Some(s) = strategy {
            self.strategy = StrategyRef::parse(s, cwd);
        }
        if image.is_some() {
            self.image = image;
        }
        self
    }

    /// Read `fly.toml` (and `cutover.toml` beside it, if present).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let (raw, unknown): (RawFly, Vec<String>) = parse_collecting(path, &text)?;
        let mut warnings: Vec<String> = unknown
            .into_iter()
            .filter(|k| !known_unused(k))
            .map(|k| format!("{}: unknown key `{k}` (ignored)", path.display()))
            .collect();

        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let side = base.join("cutover.toml");
        let (cutover_raw, cutover_source) = match (raw.cutover, side.exists()) {
            (Some(_), true) => {
                return Err(ConfigError::Other {
                    path: side,
                    message: format!(
                        "cutover options are set both here and in the [cutover] table of {}; keep one of them",
                        path.display()
                    ),
                });
            }
            (Some(c), false) => (c, path.to_path_buf()),
            (None, true) => {
                let text = std::fs::read_to_string(&side)
                    .map_err(|source| ConfigError::Read { path: side.clone(), source })?;
                let (c, unknown): (RawCutover, Vec<String>) = parse_collecting(&side, &text)?;
                warnings.extend(
                    unknown.into_iter().map(|k| format!("{}: unknown key `{k}` (ignored)", side.display())),
                );
                (c, side)
            }
            (None, false) => (RawCutover::default(), path.to_path_buf()),
        };

        let app = raw.app.filter(|a| !a.trim().is_empty()).ok_or_else(|| ConfigError::Other {
            path: path.into(),
            message: "`app` is missing: set `app = \"your-app-name\"` at the top of the file".into(),
        })?;
        let deploy = raw.deploy.unwrap_or_default();
        let max_unavailable = match deploy.max_unavailable {
            None => MaxUnavailable::Fraction(DEFAULT_MAX_UNAVAILABLE),
            Some(v) => parse_max_unavailable(&v).ok_or_else(|| ConfigError::Invalid {
                path: path.into(),
                key: "deploy.max_unavailable".into(),
                value: v.to_string(),
                expected: ParamKind::CountOrFraction.expected().into(),
            })?,
        };
        let kill_timeout = raw.kill_timeout.map(|d| d.0).unwrap_or(DEFAULT_KILL_TIMEOUT);
        if kill_timeout > Duration::from_secs(300) {
            return Err(ConfigError::Invalid {
                path: path.into(),
                key: "kill_timeout".into(),
                value: format!("{:?}", duration::display(kill_timeout)),
                expected: "at most 5m (Fly's maximum)".into(),
            });
        }

        let mut checks = Vec::new();
        if let Some(svc) = &raw.http_service {
            for (i, c) in svc.checks.iter().enumerate() {
                checks.push(c.spec(format!("http_service.checks[{i}]"), c.http_kind(), svc.internal_port));
            }
        }
        for (s, svc) in raw.services.iter().enumerate() {
            for (i, c) in svc.http_checks.iter().enumerate() {
                checks.push(c.spec(
                    format!("services[{s}].http_checks[{i}]"),
                    c.http_kind(),
                    svc.internal_port,
                ));
            }
            for (i, c) in svc.tcp_checks.iter().enumerate() {
                checks.push(c.spec(
                    format!("services[{s}].tcp_checks[{i}]"),
                    CheckKind::Tcp,
                    svc.internal_port,
                ));
            }
        }
        for (name, c) in raw.checks.iter().flatten() {
            let kind = match c.kind.as_deref().unwrap_or("tcp") {
                "tcp" => CheckKind::Tcp,
                "http" => c.http_kind(),
                other => {
                    return Err(ConfigError::Invalid {
                        path: path.into(),
                        key: format!("checks.{name}.type"),
                        value: format!("{other:?}"),
                        expected: "\"http\" or \"tcp\"".into(),
                    });
                }
            };
            checks.push(c.spec(name.clone(), kind, None));
        }

        let mut process_groups: Vec<String> =
            raw.processes.map(|p| p.into_keys().collect()).unwrap_or_default();
        if process_groups.is_empty() {
            process_groups.push("app".into());
        }

        let cutover = cutover_options(cutover_raw, &cutover_source, &base)?;
        let strategy = StrategyRef::parse(deploy.strategy.as_deref().unwrap_or("rolling"), &base);

        Ok(Self {
            path: path.to_path_buf(),
            app,
            image: raw.build.and_then(|b| b.image),
            strategy,
            max_unavailable,
            wait_timeout: deploy.wait_timeout.map(|d| d.0).unwrap_or(DEFAULT_WAIT_TIMEOUT),
            release_command: deploy.release_command,
            release_command_timeout: deploy
                .release_command_timeout
                .map(|d| d.0)
                .unwrap_or(DEFAULT_WAIT_TIMEOUT),
            kill_signal: raw.kill_signal.unwrap_or_else(|| DEFAULT_KILL_SIGNAL.into()),
            kill_timeout,
            checks,
            process_groups,
            has_volumes: raw.mounts.is_some(),
            cutover,
            cutover_source,
            warnings,
        })
    }

    /// Check `[cutover.params]` against a strategy's declared parameters and fill in defaults.
    ///
    /// Unknown parameters become warnings; a value of the wrong kind, or a required parameter that is
    /// missing, is an error naming the key.
    pub fn strategy_params(
        &self,
        specs: &[ParamSpec],
        strategy: &str,
    ) -> Result<(BTreeMap<String, ParamValue>, Vec<String>), ConfigError> {
        let src = &self.cutover_source;
        let mut values = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, raw) in &self.cutover.params {
            let Some(spec) = specs.iter().find(|s| &s.name == name) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                warnings.push(format!(
                    "{}: `cutover.params.{name}`: strategy {strategy} has no such parameter (ignored; it has: {})",
                    src.display(),
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ));
                continue;
            };
            let value = param_value(spec.kind, raw).ok_or_else(|| ConfigError::Invalid {
                path: src.clone(),
                key: format!("cutover.params.{name}"),
                value: raw.to_string(),
                expected: spec.kind.expected().into(),
            })?;
            values.insert(name.clone(), value);
        }
        for spec in specs {
            if values.contains_key(&spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    values.insert(spec.name.clone(), d.clone());
                }
                None => {
                    return Err(ConfigError::Other {
                        path: src.clone(),
                        message: format!(
                            "strategy {strategy} requires `cutover.params.{}` ({}): {}",
                            spec.name,
                            spec.kind.expected(),
                            spec.summary
                        ),
                    });
                }
            }
        }
        Ok((values, warnings))
    }
}

/// `limits` with the ones a `[cutover.limits]`-shaped table (at `key`) sets.
fn apply_limits(mut limits: Limits, l: RawLimits, key: &str, src: &Path) -> Result<Limits, ConfigError> {
    if let Some(mb) = l.memory_mb {
        if mb == 0 || mb > 4096 {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: format!("{key}.memory_mb"),
                value: mb.to_string(),
                expected: "between 1 and 4096 (MiB)".into(),
            });
        }
        limits.memory_bytes = mb << 20;
    }
    if let Some(d) = l.cpu_budget {
        limits.cpu_budget = d.0;
    }
    if let Some(d) = l.deadline {
        limits.deadline = d.0;
    }
    Ok(limits)
}

fn cutover_options(raw: RawCutover, src: &Path, base: &Path) -> Result<CutoverOptions, ConfigError> {
    let mut o = CutoverOptions::default();
    if let Some(p) = raw.platform {
        o.platform = p;
    }
    if let Some(c) = raw.concurrency {
        if c == 0 {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: "cutover.concurrency".into(),
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        o.concurrency = c;
    }
    if let Some(l) = raw.limits {
        o.limits = apply_limits(o.limits, l, "cutover.limits", src)?;
    }
    for (i, entry) in raw.sandbox.unwrap_or_default().into_iter().enumerate() {
        let key = format!("cutover.sandbox[{i}]");
        let grants =
            Grants::from_lists(entry.allow.as_deref(), &entry.deny, entry.process_groups, entry.regions)
                .map_err(|message| ConfigError::Other {
                    path: src.into(),
                    message: format!("`{key}`: {message}"),
                })?;
        o.sandbox.push(SandboxPolicy {
            strategy: entry.strategy.map(|s| StrategyRef::parse(&s, base)),
            limits: apply_limits(o.limits, entry.limits, &key, src)?,
            grants,
        });
    }
    o.params = raw.params.unwrap_or_default();
    if let Some(fly) = raw.fly {
        if let Some(url) = &fly.api_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: "cutover.fly.api_url".into(),
                value: format!("{url:?}"),
                expected: "an http(s) URL such as \"https://api.machines.dev/v1\"".into(),
            });
        }
        o.fly.api_url = fly.api_url;
    }
    if let Some(ttl) = raw.lease_ttl {
        if ttl.0 < Duration::from_secs(2) || ttl.0 > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid {
                path: src.into(),
                key: "cutover.lease_ttl".into(),
                value: format!("{:?}", duration::display(ttl.0)),
                expected: "between 2s and 1h (leases are whole seconds, refreshed at half their TTL)".into(),
            });
        }
        o.lease_ttl = ttl.0;
    }
    o.scenario = raw.sim.and_then(|s| s.scenario).map(|p| if p.is_absolute() { p } else { base.join(p) });
    // Absolute: the daemon that runs the app may have been started from another folder.
    let base = std::path::absolute(if base.as_os_str().is_empty() { Path::new(".") } else { base })
        .unwrap_or_else(|_| base.to_path_buf());
    let base = base.as_path();
    o.local.cwd = base.to_path_buf();
    if let Some(l) = raw.local {
        let invalid = |key: &str, value: String, expected: &str| ConfigError::Invalid {
            path: src.into(),
            key: format!("cutover.local.{key}"),
            value,
            expected: expected.into(),
        };
        if let Some(c) = l.command {
            let words: Option<Vec<String>> = match &c {
                toml::Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
                toml::Value::Array(a) => a.iter().map(|v| v.as_str().map(str::to_string)).collect(),
                _ => None,
            };
            let mut words = words.filter(|w| !w.is_empty()).ok_or_else(|| {
                invalid("command", c.to_string(), "a command: a string or an array of strings")
            })?;
            // A program given as a relative path is the app's own: resolve it against the config.
            if words[0].contains('/') && !Path::new(&words[0]).is_absolute() {
                words[0] = base.join(&words[0]).display().to_string();
            }
            o.local.command = words;
        }
        if let Some(cwd) = l.cwd {
            o.local.cwd = if cwd.is_absolute() { cwd } else { base.join(cwd) };
        }
        o.local.env = l.env.unwrap_or_default();
        o.local.port = l.port.unwrap_or(0);
        o.local.tcp = l.tcp.unwrap_or(false);
        if let Some(n) = l.machines {
            if n == 0 || n > 64 {
                return Err(invalid("machines", n.to_string(), "between 1 and 64"));
            }
            o.local.machines = n;
        }
        if let Some(r) = l.regions {
            if r.is_empty() {
                return Err(invalid("regions", "[]".into(), "at least one region label"));
            }
            o.local.regions = r;
        }
    }
    Ok(o)
}

/// `max_unavailable`: an integer ≥ 1 is a count; a number in (0, 1) a fraction; 1.0 means one machine.
pub fn parse_max_unavailable(v: &toml::Value) -> Option<MaxUnavailable> {
    match v {
        toml::Value::Integer(n) if *n >= 1 => u32::try_from(*n).ok().map(MaxUnavailable::Count),
        toml::Value::Float(f) if *f > 0.0 && *f < 1.0 => Some(MaxUnavailable::Fraction(*f)),
        toml::Value::Float(f) if *f >= 1.0 && f.fract() == 0.0 && *f <= u32::MAX as f64 => {
            Some(MaxUnavailable::Count(*f as u32))
        }
        _ => None,
    }
}

/// Convert a TOML value to a parameter of `kind`, if it has that kind.
fn param_value(kind: ParamKind, v: &toml::Value) -> Option<ParamValue> {
    use toml::Value as V;
    Some(match (kind, v) {
        (ParamKind::Boolean, V::Boolean(b)) => ParamValue::Boolean(*b),
        (ParamKind::Integer, V::Integer(i)) => ParamValue::Integer(*i),
        (ParamKind::Float, V::Float(f)) => ParamValue::Float(*f),
        (ParamKind::Float, V::Integer(i)) => ParamValue::Float(*i as f64),
        (ParamKind::Text, V::String(s)) => ParamValue::Text(s.clone()),
        (ParamKind::Duration, V::String(s)) => {
            ParamValue::DurationMs(duration::parse(s).ok()?.as_millis() as u64)
        }
        (ParamKind::Duration, V::Integer(ms)) if *ms >= 0 => ParamValue::DurationMs(*ms as u64),
        (ParamKind::Integers, V::Array(items)) => {
            ParamValue::Integers(items.iter().map(|i| i.as_integer()).collect::<Option<Vec<_>>>()?)
        }
        (ParamKind::CountOrFraction, v) => match parse_max_unavailable(v)? {
            MaxUnavailable::Count(n) => ParamValue::Integer(i64::from(n)),
            MaxUnavailable::Fraction(f) => ParamValue::Float(f),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
