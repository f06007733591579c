//! An open journal: one of the two backends behind [`Store`], and what both share above it — when a
//! running release counts as alive, and the heartbeat a deploy renews in a shared journal.

use crate::error::JournalError;
use crate::pg::PgStore;
use crate::record::{Runner, Running};
use crate::sqlite::SqliteStore;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable naming a PostgreSQL journal (`postgres://…`); it wins over
/// `[cutover] journal`.
pub const JOURNAL_URL_ENV: &str = "CUTOVER_JOURNAL_URL";

/// How often a running deploy renews its heartbeat in a shared journal.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// A running deploy whose heartbeat is older than this is taken for dead: several missed beats, so a
/// busy database or a slow runner is not mistaken for a vanished one.
pub(crate) const HEARTBEAT_STALE_MS: i64 = 15_000;

/// A release whose heartbeat this process renews, and the flag that stops it.
type Heartbeat = (i64, Arc<AtomicBool>);

/// An open journal. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Journal {
    pub(crate) store: Arc<dyn Store>,
    /// The SQLite file, when that is the backend.
    file: Option<PathBuf>,
    /// This process, as the journal records who runs a deploy.
    pub(crate) me: Arc<Runner>,
    /// Stops the heartbeat of each release this process runs, once it ends.
    heartbeats: Arc<Mutex<Vec<Heartbeat>>>,
}

impl Journal {
    /// Open (creating if needed) the SQLite journal in `dir`.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        let store = SqliteStore::open(dir)?;
        let file = Some(store.path().to_path_buf());
        Ok(Self::with(Arc::new(store), file))
    }

    /// Connect to the PostgreSQL journal at `url` (`postgres://user:password@host:port/db`), creating
    /// or migrating its tables. Messages name it with its password hidden.
    pub fn connect(url: &str) -> Result<Self, JournalError> {
        Ok(Self::with(Arc::new(PgStore::connect(url)?), None))
    }

    /// The journal at `url` when one is given (a shared PostgreSQL journal), else the SQLite journal
    /// in `dir`.
    pub fn open_at(dir: &Path, url: Option<&str>) -> Result<Self, JournalError> {
        match url {
            Some(url) => Self::connect(url),
            None => Self::open(dir),
        }
    }

    fn with(store: Arc<dyn Store>, file: Option<PathBuf>) -> Self {
        Self { store, file, me: Arc::new(Runner::this()), heartbeats: Arc::default() }
    }

    /// Where the journal is, for messages: its file, or its URL with the password hidden.
    pub fn location(&self) -> &str {
        self.store.location()
    }

    /// The SQLite file, when the journal is one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether runners on other machines share this journal (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.store.shared()
    }

    /// Whether the runner of a running release is alive.
    ///
    /// In a local file, it is alive while its process is. In a shared journal, while it renews its
    /// heartbeat — on this machine also only while its process exists, which notices a killed deploy
    /// at once instead of after the heartbeat goes stale.
    pub(crate) fn alive(&self, r: &Running) -> bool {
        match (&r.host, r.heartbeat_at_ms) {
            (Some(host), Some(beat)) => {
                let fresh = now_ms() - beat < HEARTBEAT_STALE_MS;
                fresh && (*host != self.me.host || cutover_core::os::process_alive(r.pid))
            }
            _ => cutover_core::os::process_alive(r.pid),
        }
    }

    /// Whether a running release belongs to this very process (which may take it over again).
    pub(crate) fn mine(&self, r: &Running) -> bool {
        r.pid == self.me.pid && r.host.as_ref().is_none_or(|h| *h == self.me.host)
    }

    /// Renew `release_id`'s heartbeat from a thread of its own until the release ends (a no-op for a
    /// local journal). The thread dies with the process: that is how a vanished runner shows.
    pub(crate) fn start_heartbeat(&self, release_id: i64) {
        if !self.store.shared() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        self.heartbeats.lock().unwrap_or_else(|e| e.into_inner()).push((release_id, stop.clone()));
        let store = self.store.clone();
        let spawned = std::thread::Builder::new().name(format!("heartbeat-{release_id}")).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(HEARTBEAT_EVERY);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = store.heartbeat(release_id) {
                    tracing::warn!("heartbeat of release #{release_id} not renewed: {e}");
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("no heartbeat for release #{release_id}: {e}");
        }
    }

    /// Stop renewing `release_id`'s heartbeat.
    pub(crate) fn stop_heartbeat(&self, release_id: i64) {
        self.heartbeats.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, stop)| {
            if *id == release_id {
                stop.store(true, Ordering::Relaxed);
            }
            *id != release_id
        });
    }
}

/// Wall-clock now, in milliseconds since the Unix epoch (what the journal stamps rows with).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
