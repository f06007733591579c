//! The one error of a platform operation, which is also what a strategy receives.

use serde::{Deserialize, Serialize};

/// The kinds of failure a strategy can tell apart (mirrors the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The machine (or release) does not exist in this app.
    NotFound,
    /// The operation conflicts with the machine's current state or a lease.
    Conflict,
    /// A wait ran out of time.
    Timeout,
    /// The machine's checks are failing (the message includes the failing checks' output).
    Unhealthy,
    /// The platform failed (API error, network); often transient, worth a retry.
    Platform,
    /// The host's policy forbids this call (see [`Grants`](crate::Grants)).
    Denied,
    /// The arguments are invalid (e.g. a weight above 100).
    Invalid,
    /// This platform cannot do this (see [`Capabilities`](crate::Capabilities)).
    Unsupported,
}

/// Why one platform operation failed. This is also what a strategy receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", kind_label(*kind))]
pub struct OpError {
    /// What a strategy (or the host) branches on.
    pub kind: ErrorKind,
    /// What a user reads; it names the machine or operation, since the kind alone does not.
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
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    /// A [`ErrorKind::NotFound`] error: the commonest one a platform builds.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// The [`ErrorKind::Unsupported`] error of `platform` (its short name) for an operation it lacks,
    /// worded the same on every platform: "the fly platform cannot split traffic by weight".
    pub fn unsupported(what: &str, platform: &str) -> Self {
        Self::new(ErrorKind::Unsupported, format!("the {platform} platform cannot {what}"))
    }
}
