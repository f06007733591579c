//! The `[cutover]` table (or `cutover.toml`): the options cutover adds to fly.toml, resolved —
//! defaults filled in, ranges checked, paths made absolute — so the driver and the platforms never
//! see a raw value.

use crate::defaults::DEFAULT_CONCURRENCY;
use crate::error::ConfigError;
use crate::platform::PlatformKind;
use crate::raw::RawCutover;
use crate::sandbox::{self, SandboxPolicy};
use crate::strategy::StrategyRef;
use cutover_core::duration;
use cutover_core::proxy_limits::{MAX_STICKY_MAX_AGE, MIN_HEADER_BYTES};
use cutover_core::{Grants, Limits, ProxyLimits, StickySessions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `[cutover]` table.
#[derive(Debug, Clone)]
pub struct CutoverOptions {
    /// `platform`: where a deploy runs unless `--platform` says otherwise (the simulator by default,
    /// so trying cutover touches nothing real).
    pub platform: PlatformKind,
    /// `concurrency`: how many machines one batch call (an update, a lease) works on at once, as
    /// flyctl bounds it.
    pub concurrency: usize,
    /// `[cutover.limits]`: the sandbox's memory, CPU budget and deadline for a strategy no
    /// `[[cutover.sandbox]]` entry names.
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
    /// `journal`: a PostgreSQL journal the team shares (`postgres://…`) instead of the SQLite file in
    /// the state directory; `CUTOVER_JOURNAL_URL` overrides it.
    pub journal: Option<JournalUrl>,
    /// `[[cutover.notify]]`: where the deploy's notifications go, and which events each wants.
    pub notify: Vec<crate::notify::NotifyTarget>,
    /// `[cutover.metrics]`: the Prometheus-compatible server a strategy's metrics queries go to.
    pub metrics: Option<MetricsConfig>,
}

/// `[cutover.metrics]`. The token is not a key: `token_env` names the environment variable holding
/// it, so it stays out of a file that may be committed, and it is never printed or journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// The server's base URL (e.g. `http://127.0.0.1:9090`, or Fly's
    /// `https://api.fly.io/prometheus/<org>`); `/api/v1/query` is appended.
    pub url: String,
    /// The environment variable holding the bearer token, if the server wants one.
    pub token_env: Option<String>,
    /// How long one query may take (default 10 s): past it the query is a `timeout` error.
    pub timeout: Duration,
}

/// A journal URL. It may hold a password, so `Debug` never shows it; messages name the journal by
/// the journal crate's redacted form.
#[derive(Clone, PartialEq)]
pub struct JournalUrl(String);

impl JournalUrl {
    /// Check that `url` names a PostgreSQL database. The error never repeats the URL (it may hold a
    /// password), only its scheme.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self(url.to_string()));
        }
        let scheme = url.split_once("://").map_or("no scheme", |(s, _)| s);
        Err(format!("a URL with {scheme:?}"))
    }

    /// The URL itself, password and all: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for JournalUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalUrl(<hidden>)")
    }
}

/// `[cutover.fly]`. The token is deliberately not a key: it comes from `FLY_API_TOKEN` or
/// `--access-token`, never from a file that may be committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlyConfig {
    /// The Machines API's base URL (`FLY_FLAPS_BASE_URL` overrides it; default
    /// `https://api.machines.dev/v1`).
    pub api_url: Option<String>,
}

impl CutoverOptions {
    /// The limits and grants a run of `strategy` gets: those of the first `[[cutover.sandbox]]` entry
    /// naming it (or naming none), else `[cutover.limits]` and every grant.
    pub fn sandbox_for(&self, strategy: &StrategyRef) -> (Limits, Grants) {
        sandbox::policy_for(&self.sandbox, self.limits, strategy)
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
    /// What the proxy allows one client (`header_timeout`, `max_header_bytes`, `max_headers`,
    /// `max_connections_per_client`, `max_requests_per_connection`), and whether it keeps a client
    /// on one release (`sticky_sessions`).
    pub proxy: ProxyLimits,
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
            proxy: ProxyLimits::default(),
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
            journal: None,
            notify: Vec::new(),
            metrics: None,
        }
    }
}

/// Resolve the `[cutover]` options read from `src`; relative paths are taken from `base`, the
/// config's folder.
pub(crate) fn cutover_options(
    raw: RawCutover,
    src: &Path,
    base: &Path,
) -> Result<CutoverOptions, ConfigError> {
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
        o.limits = sandbox::apply_limits(o.limits, l, "cutover.limits", src)?;
    }
    o.sandbox = sandbox::policies(raw.sandbox.unwrap_or_default(), o.limits, src, base)?;
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
    if let Some(url) = raw.journal {
        o.journal = Some(JournalUrl::parse(&url).map_err(|found| {
            ConfigError::Invalid {
                path: src.into(),
                key: "cutover.journal".into(),
                value: found,
                expected:
                    "a PostgreSQL URL, postgres://user@host:port/database (better: leave the password out \
                       of the file and set CUTOVER_JOURNAL_URL in the environment)"
                        .into(),
            }
        })?);
    }
    o.notify = crate::notify::targets(raw.notify.unwrap_or_default(), src)?;
    if let Some(m) = raw.metrics {
        o.metrics = Some(metrics_config(m, src)?);
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
        if let Some(duration::Dur(t)) = l.header_timeout {
            if t.is_zero() || t > Duration::from_secs(3600) {
                let shown = duration::Dur(t).to_string();
                return Err(invalid("header_timeout", shown, "a duration between 1ms and 1h, e.g. \"10s\""));
            }
            o.local.proxy.header_timeout = t;
        }
        if let Some(n) = l.max_header_bytes {
            if !(MIN_HEADER_BYTES..=1 << 20).contains(&n) {
                return Err(invalid("max_header_bytes", n.to_string(), "between 1024 and 1048576 bytes"));
            }
            o.local.proxy.max_header_bytes = n;
        }
        if let Some(n) = l.max_headers {
            if !(1..=10_000).contains(&n) {
                return Err(invalid("max_headers", n.to_string(), "between 1 and 10000 header lines"));
            }
            o.local.proxy.max_headers = n;
        }
        if let Some(n) = l.max_connections_per_client {
            if n == 0 {
                return Err(invalid("max_connections_per_client", n.to_string(), "at least 1"));
            }
            o.local.proxy.max_connections_per_client = n;
        }
        if let Some(n) = l.max_requests_per_connection {
            if n == 0 {
                return Err(invalid("max_requests_per_connection", n.to_string(), "at least 1"));
            }
            o.local.proxy.max_requests_per_connection = n;
        }
        if let Some(v) = l.sticky_sessions {
            o.local.proxy.sticky = sticky_sessions(&v).map_err(|(key, value, expected)| {
                invalid(&format!("sticky_sessions{key}"), value, expected)
            })?;
            if o.local.proxy.sticky.is_some() && o.local.tcp {
                return Err(invalid(
                    "sticky_sessions",
                    v.to_string(),
                    "false with `tcp = true`: a plain TCP service has no cookie to keep a client on a release",
                ));
            }
        }
    }
    Ok(o)
}

/// `[cutover.local] sticky_sessions`: `true`/`false`, or a table `{ max_age = "1h" }` (on, with that
/// cookie lifetime). `Err`: (the key under `sticky_sessions`, the value found, what was expected).
fn sticky_sessions(v: &toml::Value) -> Result<Option<StickySessions>, (String, String, &'static str)> {
    const WHAT: &str = "true, false, or a table such as { max_age = \"1h\" }";
    const MAX_AGE: &str =
        "a duration string between \"0s\" (until the browser closes) and \"9600h\" (400 days)";
    match v {
        toml::Value::Boolean(on) => Ok(on.then(StickySessions::default)),
        toml::Value::Table(t) => {
            let mut sticky = StickySessions::default();
            for (key, value) in t {
                if key != "max_age" {
                    return Err((format!(".{key}"), value.to_string(), "no other key than max_age"));
                }
                let age = value.as_str().and_then(|s| duration::parse(s).ok());
                match age {
                    Some(age) if age <= MAX_STICKY_MAX_AGE => sticky.max_age = age,
                    _ => return Err((".max_age".into(), value.to_string(), MAX_AGE)),
                }
            }
            Ok(Some(sticky))
        }
        other => Err((String::new(), other.to_string(), WHAT)),
    }
}

/// `[cutover.metrics]`, checked: an http(s) URL, a plausible variable name, a timeout in (0, 5m].
fn metrics_config(raw: crate::raw::RawMetrics, src: &Path) -> Result<MetricsConfig, ConfigError> {
    let invalid = |key: &str, value: String, expected: &str| ConfigError::Invalid {
        path: src.into(),
        key: format!("cutover.metrics.{key}"),
        value,
        expected: expected.into(),
    };
    let url = raw.url.ok_or_else(|| {
        invalid("url", "nothing".into(), "the Prometheus server's URL, e.g. \"http://127.0.0.1:9090\"")
    })?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("url", format!("{url:?}"), "an http(s) URL such as \"http://127.0.0.1:9090\""));
    }
    if let Some(var) = &raw.token_env
        && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(invalid(
            "token_env",
            format!("{var:?}"),
            "the name of an environment variable (letters, digits, _), not the token itself",
        ));
    }
    let timeout = raw.timeout.map_or(Duration::from_secs(10), |d| d.0);
    if timeout.is_zero() || timeout > Duration::from_secs(300) {
        return Err(invalid("timeout", format!("{:?}", duration::display(timeout)), "between 1ms and 5m"));
    }
    Ok(MetricsConfig { url: url.trim_end_matches('/').to_string(), token_env: raw.token_env, timeout })
}
