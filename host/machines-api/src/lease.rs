//! Machine leases: the API's shapes and the nonces one client holds.
//!
//! A lease makes a machine ours for a TTL: every mutating call must carry its nonce in the
//! `fly-machine-lease-nonce` header, and anyone else's mutation, or attempt to lease it, is refused
//! (409) until it expires or is released. The client keeps the nonce of every lease it holds in a
//! [`LeaseBook`] and adds the header to every mutating call of a leased machine by itself, so no call
//! site can forget it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The lease nonce header of the Machines API.
pub const NONCE_HEADER: &str = "fly-machine-lease-nonce";
/// Who is asking, for servers that record it (the local daemon; Fly takes the owner from the token).
pub const OWNER_HEADER: &str = "fly-machine-lease-owner";

/// A lease as the API describes it (`data` of a lease answer): the host's own [`cutover_core::Lease`].
pub use cutover_core::Lease as LeaseData;

/// The envelope of every lease answer: `{status, data: {nonce, expires_at, owner, version}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseResponse {
    /// `success` when the lease was taken (or read).
    #[serde(default)]
    pub status: String,
    /// The lease, when the answer holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<LeaseData>,
    /// Why a lease was refused, when it was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// A machine-readable reason, when the server gives one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
}

/// The body of `POST …/lease` as the documentation gives it (fly-go sends `?ttl=` instead; we send
/// both, and servers read either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// How long the lease lasts, in whole seconds.
    pub ttl: u64,
}

/// The leases one client holds: machine id → nonce, and the TTL they were taken with.
#[derive(Debug, Default)]
pub struct LeaseBook {
    nonces: Mutex<BTreeMap<String, String>>,
    ttl: Mutex<Option<Duration>>,
}

impl LeaseBook {
    fn nonces(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nonce of our lease on `id`, if we hold one.
    pub fn nonce(&self, id: &str) -> Option<String> {
        self.nonces().get(id).cloned()
    }

    /// Record our lease on `id`; every lease is taken with the same `ttl`, the last one kept.
    pub fn insert(&self, id: &str, nonce: String, ttl: Duration) {
        self.nonces().insert(id.to_string(), nonce);
        *self.ttl.lock().unwrap_or_else(|e| e.into_inner()) = Some(ttl);
    }

    /// Forget our lease on `id` (released, or the machine is gone); its nonce, if we held one.
    pub fn remove(&self, id: &str) -> Option<String> {
        self.nonces().remove(id)
    }

    /// Ids of every machine we hold a lease on.
    pub fn held(&self) -> Vec<String> {
        self.nonces().keys().cloned().collect()
    }

    /// The TTL of our leases, once we have taken one (machines created from then on are leased too).
    pub fn ttl(&self) -> Option<Duration> {
        *self.ttl.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// "in 12 s (2026-11-22T10:00:00Z)" for a lease's `expires_at`.
pub fn describe_expiry(expires_at: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let at = std::time::UNIX_EPOCH + Duration::from_secs(expires_at.max(0) as u64);
    let when = humantime::format_rfc3339_seconds(at);
    if expires_at >= now {
        format!("{when} (in {} s)", expires_at - now)
    } else {
        format!("{when} (expired)")
    }
}
