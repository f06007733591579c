//! The journal's contract, run against both backends: releases round-trip, events come back in order
//! (intents among them), a dead runner's release reads as interrupted, one deploy of an app at a time,
//! old schemas migrate and newer ones are refused, promotions reach a waiting gate, the driver's
//! traffic readings sit beside the events ([`samples`]). Each test runs once
//! on SQLite (`sqlite::…`) and once on PostgreSQL (`postgres::…`, a database of its own on the test
//! server; see [`crate::testing`]).

use crate::journal::now_ms;
use crate::schema::{PG_SCHEMA, SCHEMA, SCHEMA_VERSION};
use crate::{FILE, Journal, JournalError, NewRelease, ReleaseKind, ReleaseStatus};
use cutover_core::events::{Event, EventKind, HostCall};
use cutover_core::{ErrorKind, Release};
use std::time::Duration;

/// Where a test's journal lives; `open` is another connection to the same journal.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Option<Self> {
        crate::testing::database(&format!("cutover-journal postgres::{test}")).map(Self::Postgres)
    }

    fn open(&self) -> Result<Journal, JournalError> {
        match self {
            Self::Sqlite(dir) => Journal::open(dir.path()),
            Self::Postgres(url) => Journal::connect(url),
        }
    }

    /// Write the schema as version 1 had it (no plan, no strategy reference; no runner columns), with
    /// one succeeded release.
    fn write_version_1(&self) {
        let insert =
            "INSERT INTO releases (app, kind, version, image, strategy, strategy_hash, params, platform,
            status, started_at_ms, pid) VALUES ('app', 'deploy', 2, 'img:v2', 'rolling', 'abc', '{}', 'sim',
            'succeeded', 0, 1)";
        match self {
            Self::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join(FILE)).unwrap();
                let v1 = SCHEMA.replace(
                    ",\n    plan             TEXT,\n    strategy_ref     TEXT,\n    leftovers        TEXT",
                    "",
                );
                assert_ne!(v1, SCHEMA, "the version 1 schema is derived from this one");
                conn.execute_batch(&v1).unwrap();
                conn.pragma_update(None, "user_version", 1).unwrap();
                conn.execute(insert, []).unwrap();
            }
            Self::Postgres(url) => {
                let v1 = PG_SCHEMA.replace(
                    ",\n    plan             TEXT,\n    strategy_ref     TEXT,\n    host             TEXT,\n    ci_job           TEXT,\n    heartbeat_at_ms  BIGINT,\n    leftovers        TEXT",
                    "",
                );
                assert_ne!(v1, PG_SCHEMA, "the version 1 schema is derived from this one");
                let (url, insert) = (url.clone(), insert.to_string());
                std::thread::spawn(move || {
                    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
                    c.batch_execute(&v1).unwrap();
                    c.batch_execute(
                        "CREATE TABLE cutover_schema (version BIGINT NOT NULL);
                         INSERT INTO cutover_schema VALUES (1);",
                    )
                    .unwrap();
                    c.batch_execute(&insert).unwrap();
                })
                .join()
                .unwrap();
            }
        }
    }

    /// Mark the journal as written by a much newer cutover.
    fn set_version_99(&self, j: &Journal) {
        match self {
            Self::Sqlite(_) => j.store.execute_for_test("PRAGMA user_version = 99"),
            Self::Postgres(_) => j.store.execute_for_test("UPDATE cutover_schema SET version = 99"),
        }
    }
}

/// Each named contract test, once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Backend::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(b) = super::Backend::postgres(stringify!($name)) { super::$name(&b) }
            } )*
        }
    };
}

contract!(
    releases_round_trip_and_versions_only_grow,
    events_come_back_in_order_whatever_their_kind,
    a_running_release_whose_process_is_gone_is_interrupted,
    a_second_deploy_of_the_app_is_refused_while_one_runs,
    a_resume_takes_over_only_an_interrupted_release,
    a_version_1_journal_is_brought_up_to_date,
    a_newer_schema_is_refused,
    promotion_reaches_a_waiting_gate,
    abort_fails_a_waiting_gate,
    traffic_readings_sit_beside_the_events,
    a_reading_that_cannot_be_read_is_an_error_naming_it,
);

mod samples;
use samples::{a_reading_that_cannot_be_read_is_an_error_naming_it, traffic_readings_sit_beside_the_events};

fn rel(v: u64) -> Release {
    Release { version: v, image: format!("img:v{v}") }
}

fn new_release(release: &Release) -> NewRelease<'_> {
    NewRelease {
        app: "app",
        kind: ReleaseKind::Deploy,
        target: release,
        previous: None,
        strategy: "rolling",
        strategy_hash: "00",
        params: serde_json::Value::Null,
        platform: "sim",
        plan: None,
        strategy_ref: None,
    }
}

fn begin(j: &Journal, v: u64) -> i64 {
    j.begin(&NewRelease {
        app: "app",
        kind: ReleaseKind::Deploy,
        target: &rel(v),
        previous: Some(&rel(v - 1)),
        strategy: "rolling",
        strategy_hash: "abc",
        params: serde_json::json!({"retries": 3}),
        platform: "sim",
        plan: None,
        strategy_ref: None,
    })
    .unwrap()
}

fn releases_round_trip_and_versions_only_grow(b: &Backend) {
    let j = b.open().unwrap();
    let a = begin(&j, 2);
    j.finish(a, true, None, Duration::from_secs(3)).unwrap();
    let c = begin(&j, 3);
    j.finish(c, false, Some("boom"), Duration::from_secs(1)).unwrap();
    let rs = b.open().unwrap().releases("app").unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(
        (rs[0].status, rs[0].target.version, rs[0].duration_ms),
        (ReleaseStatus::Succeeded, 2, Some(3000))
    );
    assert_eq!(rs[0].params, serde_json::json!({"retries": 3}));
    assert_eq!(rs[1].status, ReleaseStatus::Failed);
    assert_eq!(rs[1].error.as_deref(), Some("boom"));
    assert_eq!(rs[1].previous, Some(rel(2)));
    assert_eq!(j.max_version("app").unwrap(), 3);
    assert_eq!(j.max_version("other").unwrap(), 0);
    assert!(j.releases("other").unwrap().is_empty());
}

fn events_come_back_in_order_whatever_their_kind(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    let update = HostCall::Update { ids: vec!["m1".into()], target: rel(2) };
    let events = [
        Event { seq: 0, at_ms: 0, kind: EventKind::Intent { call: update.clone() } },
        Event {
            seq: 1,
            at_ms: 5,
            kind: EventKind::Resumed { replayed: 3, reconciled: None, pid: 7, aborting: false },
        },
        Event { seq: 2, at_ms: 9, kind: EventKind::Intent { call: HostCall::List } },
    ];
    // Written out of order, and one written twice (a resume rewrites the event it died before).
    for e in [&events[2], &events[0], &events[1], &events[0]] {
        j.append(id, e).unwrap();
    }
    let read = b.open().unwrap().events(id).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), serde_json::to_value(&events).unwrap());
    assert_eq!(j.event_count(id).unwrap(), 3);
    // An event this cutover cannot read is an error naming it, not a gap.
    let e = j.store.append(id, 3, 10, "{\"event\": \"from_the_future\"}");
    e.unwrap();
    let e = j.events(id).unwrap_err().to_string();
    assert!(e.contains("event #3 of release") && e.contains("cannot be read"), "{e}");
}

fn a_running_release_whose_process_is_gone_is_interrupted(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Running);
    // A pid that cannot exist (above Linux's pid_max).
    j.store.execute_for_test(&format!("UPDATE releases SET pid = 99999999 WHERE id = {id}"));
    assert_eq!(b.open().unwrap().releases("app").unwrap()[0].status, ReleaseStatus::Interrupted);
}

fn a_second_deploy_of_the_app_is_refused_while_one_runs(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    // The running deploy belongs to another live process (this test's parent).
    let other = std::os::unix::process::parent_id();
    j.store.execute_for_test(&format!("UPDATE releases SET pid = {other} WHERE id = {id}"));
    let release = rel(3);
    let again = new_release(&release);
    let e = b.open().unwrap().begin(&again).unwrap_err();
    assert!(matches!(e, JournalError::Busy(_)), "{e}");
    let e = e.to_string();
    assert!(e.contains(&format!("deploy #{id} (v2")) && e.contains(&format!("process {other}")), "{e}");
    assert_eq!(j.releases("app").unwrap().len(), 1, "nothing recorded for the refused deploy");
    // Another app is not held up, and once the holder's process is gone the app is free again.
    assert!(j.begin(&NewRelease { app: "other", ..again }).is_ok());
    j.store.execute_for_test(&format!("UPDATE releases SET pid = 99999999 WHERE id = {id}"));
    begin(&j, 3);
}

fn a_resume_takes_over_only_an_interrupted_release(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    let other = std::os::unix::process::parent_id();
    j.store.execute_for_test(&format!("UPDATE releases SET pid = {other} WHERE id = {id}"));
    let e = b.open().unwrap().adopt(id).unwrap_err();
    assert!(matches!(e, JournalError::Busy(_)) && e.to_string().contains("still running"), "{e}");
    j.store.execute_for_test(&format!("UPDATE releases SET pid = 99999999 WHERE id = {id}"));
    let taker = b.open().unwrap();
    taker.adopt(id).unwrap();
    let r = &taker.releases("app").unwrap()[0];
    assert_eq!((r.status, r.pid), (ReleaseStatus::Running, std::process::id()));
    taker.finish(id, true, None, Duration::ZERO).unwrap();
    let e = taker.adopt(id).unwrap_err().to_string();
    assert!(e.contains("not interrupted: it succeeded"), "{e}");
    assert!(taker.adopt(id + 100).unwrap_err().to_string().contains("has no release"));
}

fn a_version_1_journal_is_brought_up_to_date(b: &Backend) {
    b.write_version_1();
    let j = b.open().unwrap();
    let rs = j.releases("app").unwrap();
    assert_eq!((rs.len(), rs[0].target.version), (1, 2), "the old release is still there");
    assert!(j.resume_record(rs[0].id).unwrap().is_none(), "it has no plan to resume from");
    let id = begin(&j, 3);
    assert_eq!(j.releases("app").unwrap()[1].id, id);
    assert_eq!(j.store.schema_version(), SCHEMA_VERSION);
    // The columns the migrations added are there to write and read.
    assert!(rs[0].leftovers.is_empty());
    let left = [crate::Leftover { id: "m1".into(), todo: "destroy by v3".into() }];
    j.leftovers(id, &left).unwrap();
    assert_eq!(j.releases("app").unwrap()[1].leftovers, left);
    // And the table of traffic readings (version 4).
    let stats = Default::default();
    let reading =
        Event { seq: 0, at_ms: 3, kind: EventKind::TrafficSampled { version: 3, window_ms: 1000, stats } };
    j.append_sample(id, &reading).unwrap();
    assert_eq!(j.samples(id).unwrap(), [reading]);
}

fn a_newer_schema_is_refused(b: &Backend) {
    let j = b.open().unwrap();
    b.set_version_99(&j);
    let e = b.open().err().unwrap().to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

fn promotion_reaches_a_waiting_gate(b: &Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let j = b.open().unwrap();
        let e = j.promote("app", None).unwrap_err().to_string();
        assert!(e.contains("no deploy of app is running"), "{e}");
        let id = begin(&j, 2);
        let e = j.promote("app", None).unwrap_err().to_string();
        assert!(e.contains("not waiting at a manual gate"), "{e}");

        let waiter = {
            let j = j.clone();
            tokio::spawn(async move { j.await_promotion(id, "step-10", Duration::from_secs(30)).await })
        };
        // The gate shows up as waiting; promote it from "another process" (a second connection).
        let other = b.open().unwrap();
        let mut promoted = None;
        for _ in 0..100 {
            if other.releases("app").unwrap()[0].waiting_gate.is_some() {
                promoted = Some(other.promote("app", None).unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (release, gate) = promoted.expect("the gate was marked waiting");
        assert_eq!((release.id, gate.as_str()), (id, "step-10"));
        waiter.await.unwrap().unwrap();
        assert_eq!(j.releases("app").unwrap()[0].waiting_gate, None);

        let e = j.await_promotion(id, "step-25", Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("cutover promote step-25"), "{e}");
    });
}

fn abort_fails_a_waiting_gate(b: &Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let j = b.open().unwrap();
        let e = j.abort("app").unwrap_err().to_string();
        assert!(e.contains("no deploy of app is running, so there is no gate to abort"), "{e}");
        let id = begin(&j, 2);
        // Not at a gate: refused, and nothing is recorded for a later gate to find.
        let e = j.abort("app").unwrap_err().to_string();
        assert!(e.contains("not waiting at a manual gate"), "{e}");

        let waiter = {
            let j = j.clone();
            tokio::spawn(async move { j.await_promotion(id, "step-10", Duration::from_secs(30)).await })
        };
        let other = b.open().unwrap();
        let mut aborted = None;
        for _ in 0..100 {
            if other.releases("app").unwrap()[0].waiting_gate.is_some() {
                aborted = Some(other.abort("app").unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (release, gate) = aborted.expect("the gate was marked waiting");
        assert_eq!((release.id, gate.as_str()), (id, "step-10"));
        let e = waiter.await.unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.message.contains("aborted at manual gate `step-10`"), "{e}");
        assert_eq!(j.releases("app").unwrap()[0].waiting_gate, None);
        // The abort was taken: the next gate waits (and times out) as usual.
        let e = j.await_promotion(id, "step-25", Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
    });
}

/// In a shared journal a runner on another machine is judged by its heartbeat, and named with its
/// machine and CI job when it holds the app.
#[test]
fn postgres_a_runner_elsewhere_holds_the_app_while_its_heartbeat_is_fresh() {
    let Some(b) = Backend::postgres("a_runner_elsewhere_holds_the_app_while_its_heartbeat_is_fresh") else {
        return;
    };
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    // Elsewhere: another host, a pid that means nothing here, a heartbeat renewed just now.
    j.store.execute_for_test(&format!(
        "UPDATE releases SET host = 'runner-b', ci_job = 'GITHUB_RUN_ID=42', pid = 99999999,
            heartbeat_at_ms = {} WHERE id = {id}",
        now_ms()
    ));
    let release = rel(3);
    let e = b.open().unwrap().begin(&new_release(&release)).unwrap_err().to_string();
    assert!(
        e.contains(&format!("deploy #{id} (v2"))
            && e.contains("process 99999999 on runner-b (CI job GITHUB_RUN_ID=42)")
            && e.contains("started 0 s ago"),
        "{e}"
    );
    assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Running);
    // Its heartbeat stopped a minute ago: the runner vanished, the deploy is interrupted.
    j.store.execute_for_test(&format!(
        "UPDATE releases SET heartbeat_at_ms = {} WHERE id = {id}",
        now_ms() - 60_000
    ));
    assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Interrupted);
    let next = b.open().unwrap().begin(&new_release(&release)).unwrap();
    assert!(next > id);
}

/// A running deploy renews its heartbeat while it runs, and stops once it finished.
#[test]
fn postgres_a_running_deploy_renews_its_heartbeat() {
    let Some(b) = Backend::postgres("a_running_deploy_renews_its_heartbeat") else { return };
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    j.store.execute_for_test(&format!("UPDATE releases SET heartbeat_at_ms = 1 WHERE id = {id}"));
    let beat = || j.releases("app").unwrap()[0].heartbeat_at_ms.unwrap();
    // Polled, not timed: the beat comes every couple of seconds; a minute means it never came.
    let renewed = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        beat() > 1
    });
    assert!(renewed, "the heartbeat was never renewed");
    j.finish(id, true, None, Duration::ZERO).unwrap();
    j.store.execute_for_test(&format!("UPDATE releases SET heartbeat_at_ms = 1 WHERE id = {id}"));
    std::thread::sleep(crate::journal::HEARTBEAT_EVERY * 2);
    assert_eq!(beat(), 1, "a finished release's heartbeat is not renewed");
}

/// An SQLite journal copied into PostgreSQL keeps its release numbers, events and promotions, and new
/// releases are numbered after the copied ones.
#[test]
fn postgres_a_sqlite_journal_migrates_keeping_release_numbers() {
    let Some(b) = Backend::postgres("a_sqlite_journal_migrates_keeping_release_numbers") else { return };
    let local = Backend::sqlite();
    let from = local.open().unwrap();
    // Release numbers with a gap, as another app's deploys leave them.
    let first = begin(&from, 2);
    from.finish(first, true, None, Duration::from_secs(1)).unwrap();
    from.begin(&NewRelease { app: "other", ..new_release(&rel(7)) }).unwrap();
    let second = begin(&from, 3);
    from.append(second, &Event { seq: 0, at_ms: 1, kind: EventKind::Intent { call: HostCall::List } })
        .unwrap();
    from.store.add_promotion(second, "step-10").unwrap();
    from.finish(second, false, Some("boom"), Duration::from_secs(2)).unwrap();

    let to = b.open().unwrap();
    let copied = from.migrate_to(&to).unwrap();
    assert_eq!((copied.releases, copied.events, copied.promotions), (3, 1, 1));
    let ids = |j: &Journal| j.releases("app").unwrap().iter().map(|r| (r.id, r.status)).collect::<Vec<_>>();
    assert_eq!(ids(&to), ids(&from));
    assert_eq!(to.events(second).unwrap().len(), 1);
    assert!(to.store.take_promotion(second, "step-10").unwrap());
    let next = begin(&to, 4);
    assert_eq!(next, second + 1, "numbering goes on after the copied releases");
    let e = from.migrate_to(&to).unwrap_err().to_string();
    assert!(e.contains("already holds releases"), "{e}");
}

#[test]
fn a_journal_url_never_shows_its_password() {
    use crate::redact_url;
    assert_eq!(
        redact_url("postgres://deployer:s3cret@db.internal:5432/cutover"),
        "postgres://deployer:***@db.internal:5432/cutover"
    );
    assert_eq!(
        redact_url("postgresql://db/cutover?user=me&password=s3cret&x=1"),
        "postgresql://db/cutover?user=me&password=***&x=1"
    );
    assert_eq!(redact_url("host=db password=s3cret user=me"), "host=db password=*** user=me");
    assert_eq!(redact_url("postgres://me@db/cutover"), "postgres://me@db/cutover");
    // A URL the parser refuses: the error names it without the password.
    let e = Journal::connect("postgres://me:s3cret@db:notaport/x").err().unwrap().to_string();
    assert!(!e.contains("s3cret") && e.contains("postgres://me:***@db:notaport/x"), "{e}");
    // A server that is not there: refused, the password still hidden.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = Journal::connect(&format!("postgres://me:s3cret@127.0.0.1:{port}/x")).err().unwrap().to_string();
    assert!(!e.contains("s3cret") && e.contains("postgres://me:***@127.0.0.1:"), "{e}");
}

#[test]
fn the_sink_stops_at_its_byte_bound_but_still_closes_the_deploy() {
    use crate::JournalSink;
    use cutover_core::events::{
        Event, EventKind, EventSink, FleetSummary, HostCall, HostReply, Outcome, SinkError,
    };
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let id = begin(&j, 2);
    let sink = JournalSink::new(j.clone(), id, 4096);
    let call = |seq| Event {
        seq,
        at_ms: 0,
        kind: EventKind::HostCall { call: HostCall::Now, reply: HostReply::Time(1), took_ms: 0 },
    };
    let mut seq = 0;
    let full = loop {
        match sink.event(&call(seq)) {
            Ok(()) => seq += 1,
            Err(e) => break e,
        }
        assert!(seq < 1000, "the bound never held");
    };
    assert_eq!(full, SinkError::Full { limit_bytes: 4096 });
    assert!(seq > 5, "{seq} events fit in 4 KiB");
    assert_eq!(j.event_count(id).unwrap(), seq, "the event over the bound was not written");
    let end = Event {
        seq: seq + 1,
        at_ms: 0,
        kind: EventKind::DeployFinished {
            outcome: Outcome::Failed,
            error: Some("stopped".into()),
            duration_ms: 0,
            fleet: FleetSummary::default(),
        },
    };
    sink.event(&end).unwrap();
    assert_eq!(j.event_count(id).unwrap(), seq + 1);
}

#[test]
fn a_journal_that_cannot_be_written_is_an_error_naming_it() {
    use crate::JournalSink;
    use cutover_core::events::{Event, EventKind, EventSink, HostCall, SinkError};
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let id = begin(&j, 2);
    // Gone from under the sink: the table the events go to.
    rusqlite::Connection::open(dir.path().join(FILE)).unwrap().execute_batch("DROP TABLE events").unwrap();
    let sink = JournalSink::new(j.clone(), id, 1 << 20);
    let intent = Event { seq: 7, at_ms: 0, kind: EventKind::Intent { call: HostCall::List } };
    match sink.event(&intent) {
        Err(SinkError::Failed { place, seq, .. }) => {
            assert_eq!((place.as_str(), seq), (j.location(), 7));
            assert!(place.contains(&dir.path().join(FILE).display().to_string()), "{place}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
