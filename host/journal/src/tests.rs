//! The journal end to end: releases round-trip, a dead process's release reads as interrupted, one
//! deploy of an app at a time, old schemas migrate and newer ones are refused, promotions reach a
//! waiting gate.

use crate::schema::{SCHEMA, SCHEMA_VERSION};
use crate::{FILE, Journal, JournalError, NewRelease, ReleaseKind, ReleaseStatus};
use cutover_core::{ErrorKind, Release};
use rusqlite::{Connection, params};
use std::time::Duration;

fn rel(v: u64) -> Release {
    Release { version: v, image: format!("img:v{v}") }
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

#[test]
fn releases_round_trip_and_versions_only_grow() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let a = begin(&j, 2);
    j.finish(a, true, None, Duration::from_secs(3)).unwrap();
    let b = begin(&j, 3);
    j.finish(b, false, Some("boom"), Duration::from_secs(1)).unwrap();
    let rs = Journal::open(dir.path()).unwrap().releases("app").unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(
        (rs[0].status, rs[0].target.version, rs[0].duration_ms),
        (ReleaseStatus::Succeeded, 2, Some(3000))
    );
    assert_eq!(rs[1].status, ReleaseStatus::Failed);
    assert_eq!(rs[1].error.as_deref(), Some("boom"));
    assert_eq!(rs[1].previous, Some(rel(2)));
    assert_eq!(j.max_version("app").unwrap(), 3);
    assert_eq!(j.max_version("other").unwrap(), 0);
    assert!(j.releases("other").unwrap().is_empty());
}

#[test]
fn a_running_release_whose_process_is_gone_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let id = begin(&j, 2);
    assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Running);
    // A pid that cannot exist (above Linux's pid_max).
    j.lock().execute("UPDATE releases SET pid = 99999999 WHERE id = ?1", [id]).unwrap();
    assert_eq!(j.releases("app").unwrap()[0].status, ReleaseStatus::Interrupted);
}

#[test]
fn a_second_deploy_of_the_app_is_refused_while_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let id = begin(&j, 2);
    // The running deploy belongs to another live process (this test's parent).
    let other = std::os::unix::process::parent_id();
    j.lock().execute("UPDATE releases SET pid = ?2 WHERE id = ?1", params![id, other]).unwrap();
    let release = rel(3);
    let again = NewRelease {
        app: "app",
        kind: ReleaseKind::Deploy,
        target: &release,
        previous: None,
        strategy: "rolling",
        strategy_hash: "00",
        params: serde_json::Value::Null,
        platform: "sim",
        plan: None,
        strategy_ref: None,
    };
    let e = j.begin(&again).unwrap_err();
    assert!(matches!(e, JournalError::Busy(_)), "{e}");
    let e = e.to_string();
    assert!(e.contains(&format!("deploy #{id} (v2")) && e.contains(&format!("process {other}")), "{e}");
    assert_eq!(j.releases("app").unwrap().len(), 1, "nothing recorded for the refused deploy");
    // Another app is not held up, and once the holder's process is gone the app is free again.
    assert!(j.begin(&NewRelease { app: "other", ..again }).is_ok());
    j.lock().execute("UPDATE releases SET pid = 99999999 WHERE id = ?1", [id]).unwrap();
    begin(&j, 3);
}

#[test]
fn a_version_1_journal_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The schema as version 1 wrote it: no plan, no strategy reference, no leftovers.
        let conn = Connection::open(dir.path().join(FILE)).unwrap();
        let v1 = SCHEMA.replace(
            ",\n    plan             TEXT,\n    strategy_ref     TEXT,\n    leftovers        TEXT",
            "",
        );
        assert_ne!(v1, SCHEMA, "the version 1 schema is derived from this one");
        conn.execute_batch(&v1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO releases (app, kind, version, image, strategy, strategy_hash, params, platform,
                status, started_at_ms, pid) VALUES ('app', 'deploy', 2, 'img:v2', 'rolling', 'abc', '{}',
                'sim', 'succeeded', 0, 1)",
            [],
        )
        .unwrap();
    }
    let j = Journal::open(dir.path()).unwrap();
    let rs = j.releases("app").unwrap();
    assert_eq!((rs.len(), rs[0].target.version), (1, 2), "the old release is still there");
    assert!(j.resume_record(rs[0].id).unwrap().is_none(), "it has no plan to resume from");
    let id = begin(&j, 3);
    assert_eq!(j.releases("app").unwrap()[1].id, id);
    let version: i64 = j.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // The columns the migrations added are there to write and read.
    assert!(rs[0].leftovers.is_empty());
    let left = [crate::Leftover { id: "m1".into(), todo: "destroy by v3".into() }];
    j.leftovers(id, &left).unwrap();
    assert_eq!(j.releases("app").unwrap()[1].leftovers, left);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = Journal::open(dir.path()).err().unwrap().to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

#[tokio::test]
async fn promotion_reaches_a_waiting_gate() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
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
    let other = Journal::open(dir.path()).unwrap();
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
}
