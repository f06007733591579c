//! What the local platform's proxy allows one client, as `[cutover.local]` sets it and the proxy
//! enforces it (`cutover_local::proxy`). Here, between the config and the platform, because both
//! speak it and neither depends on the other.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The bounds a client of the local proxy meets, so that slow or hostile clients cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyLimits {
    /// A client must send a whole request head within this long (and an idle keep-alive connection
    /// is closed after it): slow clients cannot hold connections (slowloris).
    pub header_timeout: Duration,
    /// Bytes of a request head, request line included; more is answered 431.
    pub max_header_bytes: usize,
    /// Header lines of a request head; more is answered 431.
    pub max_headers: usize,
    /// Connections open at once from one client address; more are closed as they are accepted.
    pub max_connections_per_client: u32,
    /// Requests one keep-alive client connection carries; the last is answered with `Connection:
    /// close` (nginx's `keepalive_requests`, Apache's `MaxKeepAliveRequests`). A connection that
    /// lives for ever stays on the proxy thread that accepted it and keeps the machine's scheduler
    /// to the placement it first found; the client's next connection starts afresh (BENCHMARKS.md,
    /// issue 20).
    pub max_requests_per_connection: u32,
    /// Sticky sessions (`[cutover.local] sticky_sessions`): `None`, off (every request is routed by
    /// weight). Kept here, beside the bounds, because it travels the same way to the proxy.
    pub sticky: Option<StickySessions>,
}

/// Sticky sessions in the local proxy: a cookie (`cutover-release`) names the release that served
/// a client, so that a client the weights sent to a canary keeps it, and one that has seen the new
/// release is not sent back to the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StickySessions {
    /// How long a browser keeps the cookie (`Max-Age`); zero: until the browser closes.
    pub max_age: Duration,
}

/// The default of [`StickySessions::max_age`]: a day, as Flagger's `sessionAffinity.maxAge`.
pub const DEFAULT_STICKY_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The longest [`StickySessions::max_age`]: browsers cap a cookie's lifetime at 400 days.
pub const MAX_STICKY_MAX_AGE: Duration = Duration::from_secs(400 * 86_400);

impl Default for StickySessions {
    fn default() -> Self {
        StickySessions { max_age: DEFAULT_STICKY_MAX_AGE }
    }
}

/// The default of [`ProxyLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of [`ProxyLimits::max_header_bytes`]: 32 KiB (Node's bound is 16, nginx's 32).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// The default of [`ProxyLimits::max_headers`]: hyper's and Apache's 100.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// The default of [`ProxyLimits::max_connections_per_client`]. The proxy listens on loopback, so
/// every client has the same address: this is room for the project's own load (the benches' 64
/// connections, `cutover demo`'s workers) several times over, and well inside a default open-file
/// limit of 1024 (each client connection may hold a machine connection too).
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u32 = 256;

/// The default of [`ProxyLimits::max_requests_per_connection`]: nginx's `keepalive_requests`. A
/// reconnect per thousand requests measured within a round's noise at every load the benches run.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u32 = 1000;

/// The smallest head bound accepted: a request line and a few headers.
pub const MIN_HEADER_BYTES: usize = 1024;

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            sticky: None,
        }
    }
}
