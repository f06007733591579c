//! The one error of a platform operation, which is also what a strategy receives.

use serde::{Deserialize, Serialize};

/// The kinds of failure a strategy can tell apart (mirrors the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Timeout,
    Unhealthy,
    Platform,
    Denied,
    Invalid,
    Unsupported,
}

/// Why one platform operation failed. This is also what a strategy receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", kind_label(*kind))]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
}

fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Timeout => "timed out",
        ErrorKind::Unhealthy => "unhealthy",
        ErrorKind::Platform => "platform error",
        ErrorKind::Denied => "denied",
        ErrorKind::Invalid => "invalid",
        ErrorKind::Unsupported => "unsupported",
    }
}

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn unsupported(what: &str, platform: &str) -> Self {
        Self::new(ErrorKind::Unsupported, format!("the {platform} platform cannot {what}"))
    }
}
