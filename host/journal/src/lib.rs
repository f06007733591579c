//! The journal: every release and every event of every deploy, in an SQLite database (WAL) in the
//! app's state directory, or in a PostgreSQL database the team shares (`[cutover] journal`,
//! `CUTOVER_JOURNAL_URL`) — two backends behind one trait, `store::Store`.
//!
//! It is what `cutover releases` lists, what `cutover rollback` picks its target from, and how
//! `cutover promote`, run from another terminal, reaches a deploy waiting at a manual gate (SQLite in
//! WAL mode lets one process write while others read, so no daemon is needed for that).
//!
//! A release row is written before the strategy starts and completed when it ends, so a deploy whose
//! process died is still listed (as `interrupted`, once its process is gone). The row keeps the plan
//! the strategy was given and how the strategy was named, and the events keep every call with its
//! answer (a change is on record as an intent before it reaches the platform): that is what
//! `cutover resume` replays.
//!
//! Modules:
//!
//! - `schema`: the tables of both backends, the schema version, and the migrations from older versions;
//! - `store`: the trait both backends implement; `sqlite` and `pg`: the backends; `redact`: a
//!   PostgreSQL URL without its password ([`redact_url`]);
//! - `journal`: an open [`Journal`] (one backend; when a running release is alive; the heartbeat);
//! - `migrate`: copying a journal into PostgreSQL, keeping release numbers ([`Migrated`]);
//! - [`testing`]: the PostgreSQL server the tests share;
//! - `record`: what a release is to the journal ([`ReleaseRecord`], [`NewRelease`], [`ResumeRecord`]);
//! - `write`: recording a release (begin, adopt, finish), its events and its traffic readings (kept
//!   beside the events, numbered apart: see `schema`);
//! - `read`: the releases of an app, the events of one (with or without its readings), what a resume
//!   needs;
//! - `promote`: manual gates, promoted from another process through the journal;
//! - `sink`: [`JournalSink`], the journal as the deploy's event sink;
//! - `kill`: [`KILL_AT_EVENT_ENV`], the crash tests' way to stop a deploy at any step;
//! - `error`: [`JournalError`].

mod error;
mod journal;
mod kill;
mod migrate;
mod pg;
mod promote;
mod read;
mod record;
mod redact;
mod schema;
mod sink;
mod sqlite;
mod store;
pub mod testing;
mod write;

#[cfg(test)]
mod tests;

pub use error::JournalError;
pub use journal::{JOURNAL_URL_ENV, Journal};
pub use kill::KILL_AT_EVENT_ENV;
pub use migrate::Migrated;
pub use promote::ABORT_GATE;
pub use record::{Leftover, NewRelease, ReleaseKind, ReleaseRecord, ReleaseStatus, ResumeRecord, Runner};
pub use redact::redact as redact_url;
pub use sink::JournalSink;
pub use sqlite::FILE;
