//! The one trait both backends implement: what the journal asks of a database. SQLite
//! ([`crate::sqlite`]) and PostgreSQL ([`crate::pg`]) each answer it with their own SQL; everything
//! above it (what "interrupted" means, the messages, decoding events) is shared, so the two cannot
//! drift apart in meaning.
//!
//! Events cross it as JSON text, whatever their kind: a new kind of event needs no change here.

use crate::error::JournalError;
use crate::record::{NewRelease, ReleaseRecord, Runner, Running};

/// Whether a running release's runner is alive (decided above the store, the same for both).
pub(crate) type Alive<'a> = &'a dyn Fn(&Running) -> bool;

/// A release's plan and strategy reference, as stored (JSON and the name or path).
pub(crate) type ResumeRow = (Option<String>, Option<String>);

/// What taking over an interrupted release found.
pub(crate) enum Adopt {
    /// Taken over.
    Adopted,
    /// No such release.
    Missing,
    /// It is not running: it ended with this status.
    Ended(String),
    /// Its runner is still alive.
    Alive(Running),
}

/// Every row of a journal, for `cutover journal migrate`.
#[derive(Debug, Default)]
pub(crate) struct Dump {
    /// Releases: the record, its plan and its strategy reference.
    pub releases: Vec<(ReleaseRecord, Option<String>, Option<String>)>,
    /// Events: release, sequence number, time, JSON.
    pub events: Vec<(i64, i64, i64, String)>,
    /// Promotions: id, release, gate, time, taken.
    pub promotions: Vec<(i64, i64, String, i64, bool)>,
    /// Traffic readings, in the order written: release, the event number after, time, JSON.
    pub samples: Vec<(i64, i64, i64, String)>,
}

/// What the journal asks of a database.
pub(crate) trait Store: Send + Sync {
    /// Where it is, for messages: a file, or a URL with its password hidden.
    fn location(&self) -> &str;
    /// Whether runners on other machines share it (then a running deploy renews a heartbeat).
    fn shared(&self) -> bool;
    /// Record a release as running unless a live runner runs the app (then that one is returned);
    /// checking and inserting are one transaction.
    fn begin(
        &self,
        r: &NewRelease<'_>,
        me: &Runner,
        alive: Alive<'_>,
    ) -> Result<Result<i64, Running>, JournalError>;
    /// Take an interrupted release over for `me`, checking and claiming in one transaction.
    fn adopt(&self, id: i64, me: &Runner, alive: Alive<'_>) -> Result<Adopt, JournalError>;
    /// Record how a release ended (`succeeded` or `failed`).
    fn finish(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        duration_ms: i64,
    ) -> Result<(), JournalError>;
    /// Append (or replace) one event of a release.
    fn append(&self, release_id: i64, seq: i64, at_ms: i64, json: &str) -> Result<(), JournalError>;
    /// Append one traffic reading of a release, beside its events (`after_seq`: the next event's
    /// number).
    fn append_sample(
        &self,
        release_id: i64,
        after_seq: i64,
        at_ms: i64,
        json: &str,
    ) -> Result<(), JournalError>;
    /// Every traffic reading of a release as (the next event's number, JSON), in the order written.
    fn samples(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError>;
    /// Renew a running release's heartbeat (a no-op where the journal does not keep one).
    fn heartbeat(&self, release_id: i64) -> Result<(), JournalError>;
    /// Every release of `app`, oldest first; running ones as `Running` (liveness is judged above).
    fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError>;
    /// The highest version recorded for `app`, previous versions included.
    fn max_version(&self, app: &str) -> Result<u64, JournalError>;
    /// Every event of a release as (sequence number, JSON), in order.
    fn events(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError>;
    /// How many events a release has.
    fn event_count(&self, release_id: i64) -> Result<u64, JournalError>;
    /// A release's plan and strategy reference (`None`: no such release).
    fn resume_row(&self, id: i64) -> Result<Option<ResumeRow>, JournalError>;
    /// Record a promotion of `gate`.
    fn add_promotion(&self, release_id: i64, gate: &str) -> Result<(), JournalError>;
    /// Record the machines a release left to finish, as JSON (replacing any list recorded before).
    fn set_leftovers(&self, release_id: i64, json: &str) -> Result<(), JournalError>;
    /// Mark the gate a release waits at.
    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError>;
    /// Consume one promotion of `gate`, if there is one.
    fn take_promotion(&self, release_id: i64, gate: &str) -> Result<bool, JournalError>;
    /// Every row, for copying to another journal.
    fn dump(&self) -> Result<Dump, JournalError>;
    /// Write every row of `dump` into this (empty) journal, keeping ids, in one transaction.
    fn load(&self, dump: &Dump) -> Result<(), JournalError>;
    /// Whether the journal holds no release at all.
    fn is_empty(&self) -> Result<bool, JournalError>;
    /// Run SQL as it is (tests tamper with rows this way).
    #[cfg(test)]
    fn execute_for_test(&self, sql: &str);
    /// The schema version on record.
    #[cfg(test)]
    fn schema_version(&self) -> i64;
}
