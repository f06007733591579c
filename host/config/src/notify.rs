//! `[[cutover.notify]]`: where a deploy's notifications go (a URL each) and which events each wants.
//!
//! Checked when the config is read, so a typo in an event's name or a URL without a scheme is an
//! error naming the entry and the key before anything is deployed, never a notification silently lost.

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The events a `[[cutover.notify]]` entry can ask for, as it spells them.
pub const NOTIFY_EVENTS: [&str; 6] = ["started", "gate", "succeeded", "failed", "rollback", "leftovers"];

/// One `[[cutover.notify]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyTarget {
    /// Where to POST (http or https).
    pub url: String,
    /// The events it wants, from [`NOTIFY_EVENTS`] (every one when the entry names none).
    pub events: Vec<String>,
    /// Headers to send, each valued from an environment variable (header name → variable name), so a
    /// secret stays out of the file.
    pub headers_from_env: BTreeMap<String, String>,
}

impl NotifyTarget {
    /// Whether this entry wants `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// `[[cutover.notify]]` as written.
#[derive(Deserialize)]
pub(crate) struct RawNotify {
    pub(crate) url: String,
    pub(crate) events: Option<Vec<String>>,
    pub(crate) headers_from_env: Option<BTreeMap<String, String>>,
}

/// Check the entries read from `src`.
pub(crate) fn targets(raw: Vec<RawNotify>, src: &Path) -> Result<Vec<NotifyTarget>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let invalid = |key: &str, value: String, expected: String| ConfigError::Invalid {
                path: src.into(),
                key: format!("cutover.notify[{i}].{key}"),
                value,
                expected,
            };
            let url = r.url.trim().to_string();
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return Err(invalid("url", format!("{url:?}"), "an http(s) URL such as \"https://hooks.slack.com/services/…\"".into()));
            }
            let events = r.events.unwrap_or_else(|| NOTIFY_EVENTS.iter().map(|e| e.to_string()).collect());
            if let Some(bad) = events.iter().find(|e| !NOTIFY_EVENTS.contains(&e.as_str())) {
                return Err(invalid("events", format!("{bad:?}"), format!("some of {}", NOTIFY_EVENTS.join(", "))));
            }
            let headers_from_env = r.headers_from_env.unwrap_or_default();
            for (name, var) in &headers_from_env {
                let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !token(name) || !token(var) {
                    return Err(invalid(
                        "headers_from_env",
                        format!("{name:?} = {var:?}"),
                        "a header name and the environment variable that holds its value, e.g. Authorization = \"NOTIFY_TOKEN\"".into(),
                    ));
                }
            }
            Ok(NotifyTarget { url, events, headers_from_env })
        })
        .collect()
}
