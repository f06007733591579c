//! The driver's traffic readings in the journal, on both backends: they sit beside the events (the
//! events' numbers, which the crash tests kill at and a resume goes on from, are the same with or
//! without them), come back in the order taken and placed among the events, travel with a migrated
//! journal, and a process killed while writing them leaves its events whole.

use super::{Backend, begin};
use crate::{Journal, JournalSink};
use cutover_core::events::{Event, EventKind, EventSink, HostCall};
use cutover_core::platform::TrafficStats;
use std::time::{Duration, Instant};

/// A reading of `version` with `requests` requests, taken before event `next_seq`.
fn reading(next_seq: u64, at_ms: u64, version: u64, requests: u64) -> Event {
    let stats = TrafficStats { requests, errors: 1, p50_ms: 2.0, p99_ms: 9.5 };
    Event { seq: next_seq, at_ms, kind: EventKind::TrafficSampled { version, window_ms: 1000, stats } }
}

fn intent(seq: u64, at_ms: u64) -> Event {
    Event { seq, at_ms, kind: EventKind::Intent { call: HostCall::List } }
}

fn json(events: &[Event]) -> serde_json::Value {
    serde_json::to_value(events).unwrap()
}

pub(super) fn traffic_readings_sit_beside_the_events(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    let sink = JournalSink::new(j.clone(), id, 1 << 20);
    // Readings before the first event, between events (two at once: both releases), and after the last.
    let (e0, e1, e2) = (intent(0, 10), intent(1, 700), intent(2, 1500));
    let (r0, r1a, r1b, r3) =
        (reading(0, 0, 2, 5), reading(1, 500, 2, 7), reading(1, 500, 1, 3), reading(3, 2000, 2, 11));
    sink.aside(&r0).unwrap();
    sink.event(&e0).unwrap();
    sink.aside(&r1a).unwrap();
    sink.aside(&r1b).unwrap();
    sink.event(&e1).unwrap();
    sink.event(&e2).unwrap();
    sink.aside(&r3).unwrap();

    let other = b.open().unwrap();
    // The log holds the events alone, numbered 0, 1, 2 as if no reading had been taken: what a
    // resume replays and goes on numbering from, and what the crash tests count.
    assert_eq!(json(&other.events(id).unwrap()), json(&[e0.clone(), e1.clone(), e2.clone()]));
    assert_eq!(other.event_count(id).unwrap(), 3);
    assert_eq!(json(&other.samples(id).unwrap()), json(&[r0.clone(), r1a.clone(), r1b.clone(), r3.clone()]));
    // A picture gets both, each reading before the event that followed it.
    assert_eq!(json(&other.events_with_samples(id).unwrap()), json(&[r0, e0, r1a, r1b, e1, e2, r3]));
    // Another release's readings are its own.
    let next = begin(&j, 3);
    assert!(j.samples(next).unwrap().is_empty());
}

pub(super) fn a_reading_that_cannot_be_read_is_an_error_naming_it(b: &Backend) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    j.store.append_sample(id, 4, 10, "{\"event\": \"from_the_future\"}").unwrap();
    let e = j.samples(id).unwrap_err().to_string();
    assert!(e.contains("(before event #4) of release #") && e.contains("cannot be read"), "{e}");
    assert!(j.events(id).unwrap().is_empty(), "the log itself still reads");
}

/// An SQLite journal with readings copied into PostgreSQL keeps them, in order.
#[test]
fn postgres_a_migrated_journal_keeps_its_readings() {
    let Some(b) = Backend::postgres("a_migrated_journal_keeps_its_readings") else { return };
    let local = Backend::sqlite();
    let from = local.open().unwrap();
    let id = begin(&from, 2);
    let sink = JournalSink::new(from.clone(), id, 1 << 20);
    for (i, r) in [reading(0, 0, 2, 4), reading(0, 0, 1, 6), reading(1, 1000, 2, 8)].iter().enumerate() {
        sink.aside(r).unwrap();
        if i == 1 {
            sink.event(&intent(0, 500)).unwrap();
        }
    }
    let to = b.open().unwrap();
    from.migrate_to(&to).unwrap();
    assert_eq!(json(&to.samples(id).unwrap()), json(&from.samples(id).unwrap()));
    assert_eq!(json(&to.events_with_samples(id).unwrap()), json(&from.events_with_samples(id).unwrap()));
}

/// Set in the child process of the kill tests: the backend to write readings into, and the release.
const WRITER_ENV: &str = "CUTOVER_TEST_READINGS_WRITER";

/// A process SIGKILLed while it writes readings as fast as it can, mid-row for all it knows, leaves
/// the release's events exactly as they were and every reading it did write whole.
fn killed_while_writing_readings(test: &str, b: &Backend, location: &str) {
    let j = b.open().unwrap();
    let id = begin(&j, 2);
    let events: Vec<Event> = (0..5).map(|s| intent(s, s * 10)).collect();
    for e in &events {
        j.append(id, e).unwrap();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, format!("{location}\n{id}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until it has written a good many; bounded by counting rows, not by a clock reading's value.
    let mut polls = 0;
    while j.samples(id).unwrap().len() < 200 {
        assert!(child.try_wait().unwrap().is_none(), "the writer stopped by itself");
        std::thread::sleep(Duration::from_millis(20));
        polls += 1;
        assert!(polls < 3000, "the writer wrote too few readings in a minute");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let after = b.open().unwrap();
    assert_eq!(json(&after.events(id).unwrap()), json(&events), "the events are untouched");
    let readings = after.samples(id).unwrap();
    assert!(readings.len() >= 200, "{} readings", readings.len());
    for (n, r) in readings.iter().enumerate() {
        assert_eq!(r.at_ms, n as u64, "reading {n} is whole and in order");
    }
    // The journal takes the next event as usual.
    after.append(id, &intent(5, 99)).unwrap();
    assert_eq!(after.event_count(id).unwrap(), 6);
    if let Backend::Sqlite(dir) = b {
        let conn = rusqlite::Connection::open(dir.path().join(crate::FILE)).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
}

/// In the child of a kill test: write readings into the journal at `WRITER_ENV` until killed.
fn write_readings_until_killed(spec: &str) -> ! {
    let (location, id) = spec.split_once('\n').unwrap();
    let j = if location.starts_with("postgres") {
        Journal::connect(location).unwrap()
    } else {
        Journal::open(std::path::Path::new(location)).unwrap()
    };
    let sink = JournalSink::new(j, id.parse().unwrap(), 1 << 20);
    let started = Instant::now();
    for n in 0.. {
        sink.aside(&reading(5, n, 2, n)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(120), "the writer was never killed");
    }
    unreachable!()
}

#[test]
fn sqlite_a_process_killed_while_writing_readings_leaves_its_events_whole() {
    if let Ok(spec) = std::env::var(WRITER_ENV) {
        write_readings_until_killed(&spec);
    }
    let b = Backend::sqlite();
    let Backend::Sqlite(dir) = &b else { unreachable!() };
    let location = dir.path().display().to_string();
    killed_while_writing_readings(
        "tests::samples::sqlite_a_process_killed_while_writing_readings_leaves_its_events_whole",
        &b,
        &location,
    );
}

#[test]
fn postgres_a_process_killed_while_writing_readings_leaves_its_events_whole() {
    if let Ok(spec) = std::env::var(WRITER_ENV) {
        write_readings_until_killed(&spec);
    }
    let Some(b) = Backend::postgres("a_process_killed_while_writing_readings") else { return };
    let Backend::Postgres(url) = &b else { unreachable!() };
    let url = url.clone();
    killed_while_writing_readings(
        "tests::samples::postgres_a_process_killed_while_writing_readings_leaves_its_events_whole",
        &b,
        &url,
    );
}
