//! The Fly Machines API: its JSON shapes and one HTTP client (reqwest) for them.
//!
//! The local platform's daemon serves these same shapes for what it shares with Fly, so this one
//! client drives both: the Fly platform gives it a token and a retry policy, the local platform
//! neither (its daemon is on loopback).
//!
//! - `types`: the API's shapes ([`ApiMachine`], [`CreateRequest`], …), the metadata keys a deploy
//!   writes, and how an API machine reads as a platform [`Machine`](cutover_core::Machine).
//! - `client`: the [`Client`], which carries the token, retries, idempotent creates and leases.
//! - [`lease`]: the lease shapes and the [`LeaseBook`] of nonces a client holds.
//! - [`retry`]: which failures are transient, and the backoff between tries.
//! - [`token`]: the API token, which never prints.
//!
//! Everything a user needs is re-exported here, at the crate root.

mod client;
pub mod lease;
pub mod retry;
pub mod token;
mod types;

pub use client::{Client, SERVER_WAIT_CAP, error_kind};
pub use lease::{
    LeaseBook, LeaseData, LeaseRequest, LeaseResponse, NONCE_HEADER, OWNER_HEADER, describe_expiry,
};
pub use retry::RetryPolicy;
pub use token::Token;
pub use types::{
    ApiCheck, ApiMachine, CreateRequest, ErrorBody, EventRequest, ExitEvent, LAUNCH_ID_KEY, MachineConfig,
    MachineEvent, MetadataValue, MonitorEvent, Mount, PROCESS_GROUP_KEY, RELEASE_IMAGE_KEY,
    RELEASE_VERSION_KEY, STRATEGY_KEY, StopRequest, go_duration, on_release, parse_state,
};
