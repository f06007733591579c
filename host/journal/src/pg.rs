//! The PostgreSQL backend: a journal a team shares, so every runner (a laptop, any CI job) sees the
//! same releases, the same running deploy and the same events.
//!
//! The sync `postgres` client drives a small tokio runtime of its own, which must not run inside the
//! deploy's runtime; so the connection lives on a thread of its own and each call is sent to it and
//! waited for — the same blocking call the SQLite backend makes.
//!
//! One deploy per app: `begin` and `adopt` take a transaction-scoped advisory lock on the app, so the
//! check for a running deploy and the insert are atomic across every machine. Running deploys renew a
//! heartbeat; whether one is alive is judged above the store ([`crate::Journal`]).

use crate::error::JournalError;
use crate::journal::now_ms;
use crate::record::{NewRelease, ReleaseKind, ReleaseRecord, ReleaseStatus, Runner, Running};
use crate::redact::{redact, scrub};
use crate::schema::{PG_MIGRATIONS, PG_SAMPLES, PG_SCHEMA, SCHEMA_VERSION};
use crate::store::{Adopt, Alive, Dump, ResumeRow, Store};
use cutover_core::Release;
use postgres::{Client, NoTls, Row};
use std::sync::Mutex;
use std::sync::mpsc;

/// First key of every advisory lock cutover takes (the second is the app's hash), so its locks do not
/// collide with another program's in the same database.
const LOCK_SPACE: i32 = 0x6375_7476; // "cutv"

/// A key of [`LOCK_SPACE`] for creating and migrating the schema.
const SCHEMA_LOCK: i32 = 0;

/// Columns a [`ReleaseRecord`] is read from, in [`record`]'s order.
const RECORD_COLUMNS: &str = "id, app, kind, version, image, previous_version, previous_image, strategy,
    strategy_hash, params, platform, status, error, started_at_ms, duration_ms, pid, waiting_gate, host,
    ci_job, heartbeat_at_ms, leftovers";

/// Columns a [`Running`] is read from, in [`running`]'s order.
const RUNNING_COLUMNS: &str = "id, version, strategy, pid, host, ci_job, started_at_ms, heartbeat_at_ms";

/// A call to run on the connection's thread.
type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// A PostgreSQL journal.
pub(crate) struct PgStore {
    location: String,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PgStore {
    /// Connect to `url`, creating or migrating the schema.
    pub(crate) fn connect(url: &str) -> Result<Self, JournalError> {
        let location = redact(url);
        let config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
            JournalError::Url(format!(
                "the journal URL {location} cannot be used: {} (expected postgres://user:password@host:port/database)",
                scrub(&e.to_string(), url)
            ))
        })?;
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel::<Result<(), postgres::Error>>(1);
        std::thread::Builder::new()
            .name("journal-postgres".into())
            .spawn(move || {
                let mut client = match config.connect(NoTls) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                // As SQLite's `synchronous = NORMAL`: an event is on the server once its write returns, so a
                // killed cutover loses nothing; only a crash of the server itself may lose the last
                // events. Waiting for the disk on every event made a 1,000-machine deploy 2–3× slower
                // (BENCHMARKS.md); claiming and taking over a deploy still wait (see `begin`, `adopt`).
                if let Err(e) = client.batch_execute("SET synchronous_commit = off") {
                    let _ = ready.send(Err(e));
                    return;
                }
                let _ = ready.send(Ok(()));
                for job in inbox {
                    job(&mut client);
                }
            })
            .map_err(|e| {
                JournalError::Connection(format!("journal {location}: cannot start its connection: {e}"))
            })?;
        let store = Self { location: location.clone(), jobs: Mutex::new(jobs) };
        match connected.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(JournalError::Postgres { location, source }),
            Err(_) => {
                return Err(JournalError::Connection(format!("journal {location}: its connection ended")));
            }
        }
        match store.run(migrate)? {
            Ok(()) => Ok(store),
            Err(found) => Err(JournalError::Schema { location: store.location.clone(), found }),
        }
    }

    /// Run `f` on the connection's thread and wait for its answer.
    fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, JournalError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = answer.send(f(client));
        });
        let gone = || JournalError::Connection(format!("journal {}: its connection ended", self.location));
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).map_err(|_| gone())?;
        answered
            .recv()
            .map_err(|_| gone())?
            .map_err(|source| JournalError::Postgres { location: self.location.clone(), source })
    }
}

/// Create the schema in an empty database, or bring an older one up to date, under a lock so two
/// runners connecting at once do not both create it. `Err(version)`: written by a newer cutover.
fn migrate(c: &mut Client) -> Result<Result<(), i64>, postgres::Error> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_SPACE, &SCHEMA_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS cutover_schema (version BIGINT NOT NULL)")?;
    let found: Option<i64> =
        tx.query_opt("SELECT MAX(version) FROM cutover_schema", &[])?.and_then(|r| r.get(0));
    match found {
        None => {
            tx.batch_execute(&[PG_SCHEMA, PG_SAMPLES].concat())?;
            tx.execute("INSERT INTO cutover_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(v) if (1..SCHEMA_VERSION).contains(&v) => {
            tx.batch_execute(&PG_MIGRATIONS[v as usize - 1..].concat())?;
            tx.execute("UPDATE cutover_schema SET version = $1", &[&SCHEMA_VERSION])?;
        }
        Some(v) => return Ok(Err(v)),
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// A release row, read from [`RECORD_COLUMNS`].
fn record(row: &Row) -> ReleaseRecord {
    let previous = match (row.get::<_, Option<i64>>(5), row.get::<_, Option<String>>(6)) {
        (Some(version), Some(image)) => Some(Release { version: version as u64, image }),
        _ => None,
    };
    ReleaseRecord {
        id: row.get(0),
        app: row.get(1),
        kind: ReleaseKind::parse(row.get(2)),
        target: Release { version: row.get::<_, i64>(3) as u64, image: row.get(4) },
        previous,
        strategy: row.get(7),
        strategy_hash: row.get(8),
        params: serde_json::from_str(row.get(9)).unwrap_or_default(),
        platform: row.get(10),
        status: ReleaseStatus::parse(row.get(11)),
        error: row.get(12),
        started_at_ms: row.get(13),
        duration_ms: row.get(14),
        pid: row.get::<_, i64>(15) as u32,
        waiting_gate: row.get(16),
        host: row.get(17),
        ci_job: row.get(18),
        heartbeat_at_ms: row.get(19),
        leftovers: crate::record::leftovers_from(row.get::<_, Option<String>>(20).as_deref()),
    }
}

/// A running release, read from [`RUNNING_COLUMNS`].
fn running(row: &Row) -> Running {
    Running {
        id: row.get(0),
        version: row.get(1),
        strategy: row.get(2),
        pid: row.get::<_, i64>(3) as u32,
        host: row.get(4),
        ci_job: row.get(5),
        started_at_ms: row.get(6),
        heartbeat_at_ms: row.get(7),
    }
}

/// An owned copy of a new release, to send to the connection's thread.
struct Insert {
    app: String,
    kind: &'static str,
    version: i64,
    image: String,
    previous_version: Option<i64>,
    previous_image: Option<String>,
    strategy: String,
    strategy_hash: String,
    params: String,
    platform: String,
    plan: Option<String>,
    strategy_ref: Option<String>,
}

impl Store for PgStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn shared(&self) -> bool {
        true
    }

    fn begin(
        &self,
        r: &NewRelease<'_>,
        me: &Runner,
        alive: Alive<'_>,
    ) -> Result<Result<i64, Running>, JournalError> {
        let new = Insert {
            app: r.app.to_string(),
            kind: r.kind.as_str(),
            version: r.target.version as i64,
            image: r.target.image.clone(),
            previous_version: r.previous.map(|p| p.version as i64),
            previous_image: r.previous.map(|p| p.image.clone()),
            strategy: r.strategy.to_string(),
            strategy_hash: r.strategy_hash.to_string(),
            params: r.params.to_string(),
            platform: r.platform.to_string(),
            plan: r.plan.map(|p| serde_json::to_string(p).unwrap_or_default()),
            strategy_ref: r.strategy_ref.map(str::to_string),
        };
        let me = me.clone();
        // The liveness judgement runs on this thread; the connection's thread waits for it, holding the
        // app's lock, through a pair of channels.
        let (ask, asked) = mpsc::sync_channel::<Vec<Running>>(1);
        let (tell, told) = mpsc::sync_channel::<Option<Running>>(1);
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let result = (|| -> Result<Result<i64, Running>, postgres::Error> {
                let mut tx = c.transaction()?;
                // The claim is durable before the deploy goes ahead.
                tx.batch_execute("SET LOCAL synchronous_commit = on")?;
                tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LOCK_SPACE, &new.app])?;
                let rows = tx.query(
                    &format!(
                        "SELECT {RUNNING_COLUMNS} FROM releases WHERE app = $1 AND status = 'running' ORDER BY id"
                    ),
                    &[&new.app],
                )?;
                let _ = ask.send(rows.iter().map(running).collect());
                if let Some(holder) = told.recv().ok().flatten() {
                    return Ok(Err(holder));
                }
                let now = now_ms();
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO releases (app, kind, version, image, previous_version, previous_image,
                            strategy, strategy_hash, params, platform, status, started_at_ms, pid, plan,
                            strategy_ref, host, ci_job, heartbeat_at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', $11, $12, $13, $14, $15,
                            $16, $11)
                         RETURNING id",
                        &[
                            &new.app,
                            &new.kind,
                            &new.version,
                            &new.image,
                            &new.previous_version,
                            &new.previous_image,
                            &new.strategy,
                            &new.strategy_hash,
                            &new.params,
                            &new.platform,
                            &now,
                            &(me.pid as i64),
                            &new.plan,
                            &new.strategy_ref,
                            &me.host,
                            &me.ci_job,
                        ],
                    )?
                    .get(0);
                tx.commit()?;
                Ok(Ok(id))
            })();
            let _ = answer.send(result);
        });
        let gone = || JournalError::Connection(format!("journal {}: its connection ended", self.location));
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).map_err(|_| gone())?;
        if let Ok(candidates) = asked.recv() {
            let _ = tell.send(candidates.into_iter().find(|r| alive(r)));
        }
        answered
            .recv()
            .map_err(|_| gone())?
            .map_err(|source| JournalError::Postgres { location: self.location.clone(), source })
    }

    fn adopt(&self, id: i64, me: &Runner, alive: Alive<'_>) -> Result<Adopt, JournalError> {
        // As `begin`: the judgement on this thread, the transaction on the connection's.
        let me = me.clone();
        let (ask, asked) = mpsc::sync_channel::<Running>(1);
        let (tell, told) = mpsc::sync_channel::<bool>(1);
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let result = (|| -> Result<Adopt, postgres::Error> {
                let mut tx = c.transaction()?;
                tx.batch_execute("SET LOCAL synchronous_commit = on")?;
                let Some(app) = tx.query_opt("SELECT app FROM releases WHERE id = $1", &[&id])? else {
                    return Ok(Adopt::Missing);
                };
                let app: String = app.get(0);
                tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LOCK_SPACE, &app])?;
                let row = tx.query_one(
                    &format!("SELECT status, {RUNNING_COLUMNS} FROM releases WHERE id = $1 FOR UPDATE"),
                    &[&id],
                )?;
                let status: String = row.get(0);
                if status != "running" {
                    return Ok(Adopt::Ended(status));
                }
                let holder = Running {
                    id: row.get(1),
                    version: row.get(2),
                    strategy: row.get(3),
                    pid: row.get::<_, i64>(4) as u32,
                    host: row.get(5),
                    ci_job: row.get(6),
                    started_at_ms: row.get(7),
                    heartbeat_at_ms: row.get(8),
                };
                let _ = ask.send(holder.clone());
                if told.recv().unwrap_or(true) {
                    return Ok(Adopt::Alive(holder));
                }
                tx.execute(
                    "UPDATE releases SET pid = $2, host = $3, ci_job = $4, heartbeat_at_ms = $5,
                        waiting_gate = NULL WHERE id = $1",
                    &[&id, &(me.pid as i64), &me.host, &me.ci_job, &now_ms()],
                )?;
                tx.commit()?;
                Ok(Adopt::Adopted)
            })();
            let _ = answer.send(result);
        });
        let gone = || JournalError::Connection(format!("journal {}: its connection ended", self.location));
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).map_err(|_| gone())?;
        if let Ok(holder) = asked.recv() {
            let _ = tell.send(alive(&holder));
        }
        answered
            .recv()
            .map_err(|_| gone())?
            .map_err(|source| JournalError::Postgres { location: self.location.clone(), source })
    }

    fn finish(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        duration_ms: i64,
    ) -> Result<(), JournalError> {
        let (status, error) = (status.to_string(), error.map(str::to_string));
        self.run(move |c| {
            c.execute(
                "UPDATE releases SET status = $2, error = $3, duration_ms = $4, waiting_gate = NULL WHERE id = $1",
                &[&id, &status, &error, &duration_ms],
            )
            .map(drop)
        })
    }

    fn append(&self, release_id: i64, seq: i64, at_ms: i64, json: &str) -> Result<(), JournalError> {
        let json = json.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO events (release_id, seq, at_ms, event) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (release_id, seq) DO UPDATE SET at_ms = EXCLUDED.at_ms, event = EXCLUDED.event",
                &[&release_id, &seq, &at_ms, &json],
            )
            .map(drop)
        })
    }

    fn append_sample(
        &self,
        release_id: i64,
        after_seq: i64,
        at_ms: i64,
        json: &str,
    ) -> Result<(), JournalError> {
        let json = json.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO samples (release_id, after_seq, at_ms, event) VALUES ($1, $2, $3, $4)",
                &[&release_id, &after_seq, &at_ms, &json],
            )
            .map(drop)
        })
    }

    fn samples(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError> {
        self.run(move |c| {
            let rows = c.query(
                "SELECT after_seq, event FROM samples WHERE release_id = $1 ORDER BY id",
                &[&release_id],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn heartbeat(&self, release_id: i64) -> Result<(), JournalError> {
        self.run(move |c| {
            c.execute(
                "UPDATE releases SET heartbeat_at_ms = $2 WHERE id = $1 AND status = 'running'",
                &[&release_id, &now_ms()],
            )
            .map(drop)
        })
    }

    fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, JournalError> {
        let app = app.to_string();
        self.run(move |c| {
            let rows = c.query(
                &format!("SELECT {RECORD_COLUMNS} FROM releases WHERE app = $1 ORDER BY id"),
                &[&app],
            )?;
            Ok(rows.iter().map(record).collect())
        })
    }

    fn max_version(&self, app: &str) -> Result<u64, JournalError> {
        let app = app.to_string();
        self.run(move |c| {
            let v: Option<i64> = c
                .query_one(
                    "SELECT GREATEST(MAX(version), COALESCE(MAX(previous_version), 0)) FROM releases WHERE app = $1",
                    &[&app],
                )?
                .get(0);
            Ok(v.unwrap_or(0).max(0) as u64)
        })
    }

    fn events(&self, release_id: i64) -> Result<Vec<(i64, String)>, JournalError> {
        self.run(move |c| {
            let rows =
                c.query("SELECT seq, event FROM events WHERE release_id = $1 ORDER BY seq", &[&release_id])?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn event_count(&self, release_id: i64) -> Result<u64, JournalError> {
        self.run(move |c| {
            let n: i64 =
                c.query_one("SELECT COUNT(*) FROM events WHERE release_id = $1", &[&release_id])?.get(0);
            Ok(n as u64)
        })
    }

    fn resume_row(&self, id: i64) -> Result<Option<ResumeRow>, JournalError> {
        self.run(move |c| {
            let row = c.query_opt("SELECT plan, strategy_ref FROM releases WHERE id = $1", &[&id])?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn add_promotion(&self, release_id: i64, gate: &str) -> Result<(), JournalError> {
        let gate = gate.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO promotions (release_id, gate, at_ms) VALUES ($1, $2, $3)",
                &[&release_id, &gate, &now_ms()],
            )
            .map(drop)
        })
    }

    fn set_leftovers(&self, release_id: i64, json: &str) -> Result<(), JournalError> {
        let json = json.to_string();
        self.run(move |c| {
            c.execute("UPDATE releases SET leftovers = $2 WHERE id = $1", &[&release_id, &json]).map(drop)
        })
    }

    fn set_waiting(&self, release_id: i64, gate: Option<&str>) -> Result<(), JournalError> {
        let gate = gate.map(str::to_string);
        self.run(move |c| {
            c.execute("UPDATE releases SET waiting_gate = $2 WHERE id = $1", &[&release_id, &gate]).map(drop)
        })
    }

    fn take_promotion(&self, release_id: i64, gate: &str) -> Result<bool, JournalError> {
        let gate = gate.to_string();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE promotions SET taken = TRUE
                 WHERE id = (SELECT id FROM promotions WHERE release_id = $1 AND gate = $2 AND NOT taken
                             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)",
                &[&release_id, &gate],
            )?;
            Ok(n > 0)
        })
    }

    fn dump(&self) -> Result<Dump, JournalError> {
        self.run(|c| {
            let releases = c
                .query(
                    &format!("SELECT {RECORD_COLUMNS}, plan, strategy_ref FROM releases ORDER BY id"),
                    &[],
                )?
                .iter()
                .map(|r| (record(r), r.get(20), r.get(21)))
                .collect();
            let events = c
                .query("SELECT release_id, seq, at_ms, event FROM events ORDER BY release_id, seq", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            let promotions = c
                .query("SELECT id, release_id, gate, at_ms, taken FROM promotions ORDER BY id", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect();
            let samples = c
                .query("SELECT release_id, after_seq, at_ms, event FROM samples ORDER BY id", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            Ok(Dump { releases, events, promotions, samples })
        })
    }

    fn load(&self, dump: &Dump) -> Result<(), JournalError> {
        let releases: Vec<_> = dump
            .releases
            .iter()
            .map(|(r, plan, strategy_ref)| {
                let status = match r.status {
                    ReleaseStatus::Succeeded => "succeeded",
                    ReleaseStatus::Failed => "failed",
                    ReleaseStatus::Running | ReleaseStatus::Interrupted => "running",
                };
                (r.clone(), status, plan.clone(), strategy_ref.clone())
            })
            .collect();
        let events = dump.events.clone();
        let promotions = dump.promotions.clone();
        let samples = dump.samples.clone();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("LOCK TABLE releases IN EXCLUSIVE MODE", &[])?;
            for (r, status, plan, strategy_ref) in &releases {
                tx.execute(
                    "INSERT INTO releases (id, app, kind, version, image, previous_version, previous_image,
                        strategy, strategy_hash, params, platform, status, error, started_at_ms, duration_ms,
                        pid, waiting_gate, plan, strategy_ref, host, ci_job, heartbeat_at_ms, leftovers)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                        $19, $20, $21, $22, $23)",
                    &[
                        &r.id,
                        &r.app,
                        &r.kind.as_str(),
                        &(r.target.version as i64),
                        &r.target.image,
                        &r.previous.as_ref().map(|p| p.version as i64),
                        &r.previous.as_ref().map(|p| p.image.clone()),
                        &r.strategy,
                        &r.strategy_hash,
                        &r.params.to_string(),
                        &r.platform,
                        status,
                        &r.error,
                        &r.started_at_ms,
                        &r.duration_ms,
                        &(r.pid as i64),
                        &r.waiting_gate,
                        plan,
                        strategy_ref,
                        &r.host,
                        &r.ci_job,
                        &r.heartbeat_at_ms,
                        &crate::record::leftovers_json(&r.leftovers),
                    ],
                )?;
            }
            let insert = tx.prepare("INSERT INTO events (release_id, seq, at_ms, event) VALUES ($1, $2, $3, $4)")?;
            for (release_id, seq, at_ms, event) in &events {
                tx.execute(&insert, &[release_id, seq, at_ms, event])?;
            }
            for (id, release_id, gate, at_ms, taken) in &promotions {
                tx.execute(
                    "INSERT INTO promotions (id, release_id, gate, at_ms, taken) VALUES ($1, $2, $3, $4, $5)",
                    &[id, release_id, gate, at_ms, taken],
                )?;
            }
            // In the order they were written, which is the order they are read in.
            let insert =
                tx.prepare("INSERT INTO samples (release_id, after_seq, at_ms, event) VALUES ($1, $2, $3, $4)")?;
            for (release_id, after_seq, at_ms, event) in &samples {
                tx.execute(&insert, &[release_id, after_seq, at_ms, event])?;
            }
            // New releases and promotions continue after the copied ones.
            tx.batch_execute(
                "SELECT setval(pg_get_serial_sequence('releases', 'id'), COALESCE((SELECT MAX(id) FROM releases), 0) + 1, false);
                 SELECT setval(pg_get_serial_sequence('promotions', 'id'), COALESCE((SELECT MAX(id) FROM promotions), 0) + 1, false);",
            )?;
            tx.commit()
        })
    }

    fn is_empty(&self) -> Result<bool, JournalError> {
        self.run(|c| Ok(c.query_one("SELECT COUNT(*) FROM releases", &[])?.get::<_, i64>(0) == 0))
    }

    #[cfg(test)]
    fn execute_for_test(&self, sql: &str) {
        let sql = sql.to_string();
        self.run(move |c| c.batch_execute(&sql)).unwrap();
    }

    #[cfg(test)]
    fn schema_version(&self) -> i64 {
        self.run(|c| Ok(c.query_one("SELECT MAX(version) FROM cutover_schema", &[])?.get(0))).unwrap()
    }
}
