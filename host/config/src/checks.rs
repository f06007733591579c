//! Health checks. fly.toml declares them four ways — `[[http_service.checks]]`,
//! `[[services.http_checks]]`, `[[services.tcp_checks]]` and `[checks.NAME]` — with Fly's defaults for
//! what each leaves out; a deploy wants one list, each check named after where it was declared so a
//! failing check can be found in the file.

use crate::error::ConfigError;
use crate::raw::{RawCheck, RawFly};
use cutover_core::{CheckKind, CheckSpec};
use std::path::Path;
use std::time::Duration;

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

/// Every check of `raw` (read from `path`), in file order: the HTTP service's, each service's HTTP
/// then TCP checks, then the top-level `[checks]` by name.
pub(crate) fn collect(raw: &RawFly, path: &Path) -> Result<Vec<CheckSpec>, ConfigError> {
    let mut checks = Vec::new();
    if let Some(svc) = &raw.http_service {
        for (i, c) in svc.checks.iter().enumerate() {
            checks.push(c.spec(format!("http_service.checks[{i}]"), c.http_kind(), svc.internal_port));
        }
    }
    for (s, svc) in raw.services.iter().enumerate() {
        for (i, c) in svc.http_checks.iter().enumerate() {
            checks.push(c.spec(format!("services[{s}].http_checks[{i}]"), c.http_kind(), svc.internal_port));
        }
        for (i, c) in svc.tcp_checks.iter().enumerate() {
            checks.push(c.spec(format!("services[{s}].tcp_checks[{i}]"), CheckKind::Tcp, svc.internal_port));
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
    Ok(checks)
}
