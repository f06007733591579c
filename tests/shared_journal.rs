//! The journal in PostgreSQL, shared by runners that share nothing else: each "runner" here is a
//! working copy of its own (a temporary directory with its config) and a state directory of its own,
//! and the only thing they have in common is `CUTOVER_JOURNAL_URL`.
//!
//! - two deploys of one app started at once: exactly one runs, the other is refused naming it;
//! - a deploy killed mid-way in one copy is resumed from another, to one release, all serving;
//! - the same crash, then `cutover rollback` from the other copy, returns to the earlier release.
//!
//! The crash tests deploy to Fly (the fake Machines API): the simulator keeps its fleet in the state
//! directory and the local platform's daemon belongs to one, so neither is a fleet a second runner
//! sees — a real platform's machines are, and so are the fake's.
//!
//! PostgreSQL is a private test cluster (see `cutover::journal::testing`), a database per test.

use crate::fly::{APP, TOKEN, V1, V2, app, fake_with_fleet, machines_of};
use crate::support::{self, Cutover, OutputExt, Toml};

use cutover::journal::JOURNAL_URL_ENV;
use serde_json::Value;
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A working copy: its own folder with the app's config, and its own state directory.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new(config: &Toml) -> Self {
        let dir = tempfile::tempdir().unwrap();
        config.clone().write(dir.path().join("fly.toml"));
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("fly.toml")
    }

    /// `cutover ARGS` in this copy, on the shared journal.
    fn cutover(&self, args: &[&str], journal: &str) -> Cutover {
        support::cutover(args)
            .config(self.config())
            .state(self.dir.path().join("state"))
            .cwd(self.dir.path())
            .env(JOURNAL_URL_ENV, journal)
            .env("FLY_API_TOKEN", TOKEN)
            .env_remove("FLY_FLAPS_BASE_URL")
    }
}

fn releases(copy: &Copy, journal: &str) -> Vec<Value> {
    let out = copy.cutover(&["releases", "--json"], journal).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    out.json()
}

#[test]
fn two_deploys_of_one_app_at_once_from_two_runners_exactly_one_runs() {
    let Some(journal) = cutover::journal::testing::database("shared_journal::two_deploys_at_once") else {
        return;
    };
    // A canary that waits at a manual gate: the winner is still running when the loser asks.
    let config = Toml::example_app()
        .set("deploy.strategy", "canary")
        .set("cutover.params.steps", [10, 50])
        .set("cutover.params.manual_gates", [10]);
    let (a, b) = (Copy::new(&config), Copy::new(&config));
    let mut children: Vec<_> = [&a, &b]
        .iter()
        .map(|c| c.cutover(&["deploy", "--json"], &journal).spawn(Stdio::piped(), Stdio::piped()))
        .collect();
    // The loser is refused at once; the winner waits at its gate.
    let deadline = Instant::now() + Duration::from_secs(120);
    let loser = loop {
        if let Some(i) = (0..2).find(|&i| children[i].try_wait().unwrap().is_some()) {
            break i;
        }
        assert!(Instant::now() < deadline, "neither deploy was refused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let winner = 1 - loser;
    let refused = children.remove(loser).wait_with_output().unwrap();
    let mut running = children.pop().unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", refused.text());
    let err = refused.stderr_text();
    assert!(
        err.contains("another deploy of hello-cutover is running: deploy #1 (v")
            && err.contains(&format!("in process {} on ", running.id()))
            && err.contains("s ago"),
        "the refusal names the running deploy and where it runs: {err}"
    );
    // The winner reaches its gate; promoted from a third runner, it finishes.
    let stdout = running.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let reached = lines.by_ref().map_while(Result::ok).any(|l| l.contains("waiting at manual gate"));
    assert!(reached, "the winning deploy never reached its gate");
    let listed = releases([&a, &b][winner], &journal);
    assert_eq!(listed.len(), 1, "exactly one deploy is recorded: {listed:?}");
    assert_eq!(listed[0]["status"], "running");
    assert_eq!(listed[0]["pid"], running.id());
    let third = Copy::new(&config);
    let out = third.cutover(&["promote"], &journal).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let status = running.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let listed = releases(&third, &journal);
    assert_eq!((listed.len(), &listed[0]["status"]), (1, &Value::from("succeeded")), "{listed:?}");
}

/// Deploy v2 with rolling in `first`, killed just before event `k`; the process must have died.
fn crash(first: &Copy, journal: &str, k: u64) {
    let out = first.cutover(&["deploy"], journal).kill_at_event(Some(k)).run();
    assert_eq!(out.status.signal(), Some(9), "killed at event {k}: {}", out.text());
    let listed = releases(first, journal);
    assert_eq!(listed.last().unwrap()["status"], "interrupted", "{listed:?}");
}

/// Every machine of the app on `image` and started, none orphaned.
fn assert_fleet(fake: &crate::support::fake_fly::FakeFly, n: usize, image: &str) {
    let machines = machines_of(fake, APP);
    assert_eq!(machines.len(), n, "machines orphaned or lost: {machines:#?}");
    for m in &machines {
        assert_eq!(m.api.config.image, image, "{}", m.api.id);
        assert_eq!(m.api.state, "started", "{}", m.api.id);
        assert!(!m.api.cordoned, "{} is out of rotation", m.api.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_killed_on_one_runner_is_resumed_from_another() {
    let Some(journal) = cutover::journal::testing::database("shared_journal::resumed_from_another") else {
        return;
    };
    let fake = fake_with_fleet(3).await;
    let config = app(&fake.url, "rolling");
    let (first, second) = (Copy::new(&config), Copy::new(&config));
    let j = journal.clone();
    let (second, fake) = tokio::task::spawn_blocking(move || {
        crash(&first, &j, 6);
        drop(first); // The first runner is gone, checkout, state and all.
        let out = second.cutover(&["resume"], &j).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        (second, fake)
    })
    .await
    .unwrap();
    assert_fleet(&fake, 3, V2);
    let listed = releases(&second, &journal);
    assert_eq!(listed.len(), 1, "resumed, not deployed again: {listed:?}");
    assert_eq!((&listed[0]["status"], &listed[0]["target"]["version"]), (&"succeeded".into(), &2.into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_killed_on_one_runner_is_rolled_back_from_another() {
    let Some(journal) = cutover::journal::testing::database("shared_journal::rolled_back_from_another")
    else {
        return;
    };
    let fake = fake_with_fleet(3).await;
    let config = app(&fake.url, "rolling");
    let (first, second) = (Copy::new(&config), Copy::new(&config));
    let j = journal.clone();
    let (second, fake) = tokio::task::spawn_blocking(move || {
        crash(&first, &j, 6);
        drop(first);
        let out = second.cutover(&["rollback"], &j).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        (second, fake)
    })
    .await
    .unwrap();
    assert_fleet(&fake, 3, V1);
    // The interrupted deploy was taken up and undone (it ends failed, saying so); had that not put the
    // fleet wholly back, a rollback release would follow it.
    let listed = releases(&second, &journal);
    assert_eq!(listed[0]["target"]["version"], 2, "{listed:?}");
    assert_eq!(listed[0]["status"], "failed", "{listed:?}");
    assert!(
        listed[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`cutover rollback` is returning the app to v1")
    );
    assert!(listed.iter().all(|r| r["status"] != "interrupted" && r["status"] != "running"), "{listed:?}");
}

/// The shared journal's URL never shows its password, in any output of a deploy that uses it.
#[test]
fn the_journal_password_never_shows() {
    let Some(journal) = cutover::journal::testing::database("shared_journal::password_never_shows") else {
        return;
    };
    // The test cluster trusts loopback, so any password is accepted — and must not be printed.
    let secret = "ZZjournalSECRETzz";
    let with_password = journal.replacen("postgres://cutover@", &format!("postgres://cutover:{secret}@"), 1);
    let copy = Copy::new(&Toml::example_app());
    for args in [&["deploy", "-vv"][..], &["releases"], &["status"], &["releases", "--json"]] {
        let out = copy.cutover(args, &with_password).run();
        assert!(!out.text().contains(secret), "{args:?} printed the password:\n{}", out.text());
    }
    // A server that is not there: the error names the journal, password hidden.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = format!("postgres://cutover:{secret}@127.0.0.1:{port}/x");
    let out = copy.cutover(&["deploy"], &gone).run();
    assert_ne!(out.status.code(), Some(0));
    assert!(!out.text().contains(secret) && out.text().contains("cutover:***@127.0.0.1"), "{}", out.text());
}

#[test]
fn journal_migrate_copies_a_local_journal_keeping_release_numbers() {
    let Some(journal) = cutover::journal::testing::database("shared_journal::migrate") else { return };
    let copy = Copy::new(&Toml::example_app());
    let local = |args: &[&str]| copy.cutover(args, "").env_remove(JOURNAL_URL_ENV);
    for _ in 0..2 {
        let out = local(&["deploy"]).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
    }
    let before: Vec<Value> = local(&["releases", "--json"]).run().json();
    let out = local(&["journal", "migrate"]).env(JOURNAL_URL_ENV, &journal).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("copied 2 release(s)"), "{}", out.text());
    let after = releases(&copy, &journal);
    let key = |rs: &[Value]| {
        rs.iter().map(|r| (r["id"].clone(), r["target"].clone(), r["status"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(key(&after), key(&before));
    // A third deploy, on the shared journal, is numbered after them; migrating again is refused.
    let out = copy.cutover(&["deploy"], &journal).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(releases(&copy, &journal).last().unwrap()["id"], 3);
    let out = local(&["journal", "migrate", "--to", &journal]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr_text().contains("already holds releases"), "{}", out.text());
}
