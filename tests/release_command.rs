//! `[deploy] release_command` end to end, on the simulator and on the local platform (the Fly fake's
//! are in `fly::release_command`): it runs once, on the new release, before the first machine changes;
//! a failure, a crash or a timeout aborts the deploy with nothing changed and the output's tail in the
//! error; `--skip-release-command` skips it; a killed deploy's `cutover resume` runs it again only when
//! its end was not recorded.

use crate::support::{self, Cutover, OutputExt, Toml};

use cutover::core::events::{Event, EventKind};
use cutover::driver::{ReleaseStatus, StateDir};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// An app directory: fly.toml (with `migrate` as its release command), a scenario, its state.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn sim(scenario: &str, fly: impl FnOnce(Toml) -> Toml) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("scenario.toml"),
            format!("seed = 3\n[fleet]\nmachines = 4\n{scenario}"),
        )
        .unwrap();
        let toml = Toml::example_app()
            .set("cutover.sim.scenario", dir.path().join("scenario.toml"))
            .set("deploy.release_command", "migrate --all");
        fly(toml).write(dir.path().join("fly.toml"));
        Self { dir }
    }

    fn local(env: &[(&str, &str)], fly: impl FnOnce(Toml) -> Toml) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("migrated.txt");
        let mut vars: std::collections::BTreeMap<String, String> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.insert("HELLO_MIGRATE_MARKER".into(), marker.display().to_string());
        let toml = Toml::example_app()
            .set("cutover.platform", "local")
            .set("cutover.local.command", support::example_app_binary())
            .set("cutover.local.machines", 2)
            .set("cutover.local.env", vars)
            .set("deploy.release_command", "migrate --all");
        fly(toml).write(dir.path().join("fly.toml"));
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("fly.toml")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn marker(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("migrated.txt"))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn cutover(&self, args: &[&str]) -> Cutover {
        support::cutover(args).config(self.config()).state(self.state())
    }

    /// `cutover ARGS --json`: exit code, events, all output.
    fn json(&self, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        let out = self.cutover(args).arg("--json").run();
        (out.status.code(), out.json_lines(), out.text())
    }

    /// The journaled events of the app's latest release, and its status.
    fn journal(&self) -> (Vec<Event>, ReleaseStatus) {
        let journal = StateDir::at(self.state()).journal().unwrap();
        let release = journal.releases("hello-cutover").unwrap().pop().expect("a release");
        (journal.events(release.id).unwrap(), release.status)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.dir.path().join("state/local").exists() {
            let _ = self.cutover(&["local", "down"]).run();
        }
    }
}

fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}

/// Index of the first event of `name`, if any.
fn first(events: &[Value], name: &str) -> Option<usize> {
    events.iter().position(|e| kind(e) == name)
}

/// Index of the first change a deploy made (an intent is journaled before every change).
fn first_change(events: &[Value]) -> Option<usize> {
    events.iter().position(|e| kind(e) == "intent")
}

fn last(events: &[Value]) -> &Value {
    let end = events.last().expect("events");
    assert_eq!(kind(end), "deploy_finished", "{end:#}");
    end
}

fn count(events: &[Event], f: impl Fn(&EventKind) -> bool) -> usize {
    events.iter().filter(|e| f(&e.kind)).count()
}

/// The release command ran once, before the first change, and ended with 0: in the output and in
/// the journal.
fn assert_ran_once_first(events: &[Value], journal: &[Event], context: &str) {
    let started = first(events, "release_command_started").unwrap_or_else(|| panic!("{context}: never ran"));
    let finished = first(events, "release_command_finished").unwrap();
    assert_eq!(events.iter().filter(|e| kind(e) == "release_command_started").count(), 1, "{context}");
    assert_eq!(events[finished]["exit_code"], 0, "{context}: {:#}", events[finished]);
    let change = first_change(events).unwrap_or_else(|| panic!("{context}: the deploy changed nothing"));
    assert!(
        started < finished && finished < change,
        "{context}: started {started}, ended {finished}, first change {change}"
    );
    // The journal holds the same order.
    let j_start =
        journal.iter().position(|e| matches!(e.kind, EventKind::ReleaseCommandStarted { .. })).unwrap();
    let j_end =
        journal.iter().position(|e| matches!(e.kind, EventKind::ReleaseCommandFinished { .. })).unwrap();
    let j_change = journal.iter().position(|e| matches!(e.kind, EventKind::Intent { .. })).unwrap();
    assert!(j_start < j_end && j_end < j_change, "{context}: journal order {j_start} {j_end} {j_change}");
}

#[test]
fn sim_release_command_runs_once_before_the_first_change() {
    let app = App::sim(
        "[release_command]\nduration = \"20s\"\noutput = [\"migrating to v{version}\", \"applied 2\"]\n",
        |t| t,
    );
    let (code, events, text) = app.json(&["deploy"]);
    assert_eq!(code, Some(0), "{text}");
    let (journal, status) = app.journal();
    assert_eq!(status, ReleaseStatus::Succeeded);
    assert_ran_once_first(&events, &journal, "sim");
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| kind(e) == "release_command_output")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert_eq!(lines, ["migrating to v2", "applied 2"], "the new release's output, streamed");
    let end = events.iter().find(|e| kind(e) == "release_command_finished").unwrap();
    assert_eq!(end["tail"], serde_json::json!(["migrating to v2", "applied 2"]));
    assert!(end["took_ms"].as_u64().unwrap() >= 20_000, "virtual time: {end:#}");
    assert_eq!(last(&events)["fleet"]["by_version"], serde_json::json!([[2, 4]]));

    // Human output shows it, and `--dry-run` says what would run.
    let out = app.cutover(&["deploy"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let stdout = out.stdout_text();
    assert!(stdout.contains("--> release command `migrate --all` on v3"), "{stdout}");
    assert!(stdout.contains("| migrating to v3"), "{stdout}");
    let out = app.cutover(&["deploy", "--dry-run"]).run();
    assert!(out.stdout_text().contains("`migrate --all` would run once on v4"), "{}", out.text());
    let out = app.cutover(&["deploy", "--dry-run", "--skip-release-command"]).run();
    assert!(out.stdout_text().contains("would not run (--skip-release-command)"), "{}", out.text());
}

#[test]
fn sim_release_command_failure_aborts_with_the_code_and_the_tail() {
    let output: Vec<String> = (1..=30).map(|i| format!("\"line {i}\"")).collect();
    let app = App::sim(
        &format!(
            "[release_command]\nexit_code = 3\noutput = [{}, \"ERROR: relation exists\"]\n",
            output.join(", ")
        ),
        |t| t,
    );
    let (code, events, text) = app.json(&["deploy"]);
    assert_eq!(code, Some(1), "{text}");
    let end = last(&events);
    let error = end["error"].as_str().unwrap();
    assert!(error.contains("release command exited with code 3"), "{error}");
    assert!(error.contains("ERROR: relation exists") && error.contains("line 30"), "the tail: {error}");
    assert!(!error.contains("line 5\n"), "only the tail: {error}");
    assert!(first_change(&events).is_none(), "nothing changed: {text}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 4]]));
    let (journal, status) = app.journal();
    assert_eq!(status, ReleaseStatus::Failed);
    let kept = journal.iter().find_map(|e| match &e.kind {
        EventKind::ReleaseCommandFinished { exit_code, tail, .. } => Some((*exit_code, tail.len())),
        _ => None,
    });
    assert_eq!(kept, Some((Some(3), 31)), "the journal keeps the code and the tail");

    // Human output: the error is printed with its tail.
    let out = app.cutover(&["deploy"]).run();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.text().contains("release command exited with code 3"), "{}", out.text());

    // A crash aborts the same way.
    let app = App::sim("[release_command]\ncrash = true\n", |t| t);
    let (code, events, _) = app.json(&["deploy"]);
    assert_eq!(code, Some(1));
    assert!(
        last(&events)["error"].as_str().unwrap().contains("release command crashed"),
        "{:#}",
        last(&events)
    );
    assert!(first_change(&events).is_none());
}

#[test]
fn sim_release_command_timeout_and_skip() {
    let app = App::sim("[release_command]\nduration = \"10m\"\n", |t| {
        t.set("deploy.release_command_timeout", "30s")
    });
    let (code, events, text) = app.json(&["deploy"]);
    assert_eq!(code, Some(1), "{text}");
    let end = last(&events);
    assert!(end["error"].as_str().unwrap().contains("did not finish within 30s"), "{end:#}");
    assert!(end["duration_ms"].as_u64().unwrap() < 60_000, "stopped at its timeout: {end:#}");
    assert!(first_change(&events).is_none());

    let (code, events, text) = app.json(&["deploy", "--skip-release-command"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(first(&events, "release_command_started").is_none(), "{text}");
    let skipped = &events[first(&events, "release_command_skipped").expect("skipping is recorded")];
    assert_eq!(skipped["why"], "--skip-release-command");
}

#[test]
fn sim_resume_reruns_the_release_command_only_when_its_end_was_not_recorded() {
    let scenario = "[release_command]\noutput = [\"one\", \"two\"]\n";
    // Where the end is journaled, from a run that is not killed.
    let probe = App::sim(scenario, |t| t);
    let (code, events, _) = probe.json(&["deploy"]);
    assert_eq!(code, Some(0));
    let end = first(&events, "release_command_finished").unwrap() as u64;

    // Killed just before its end was journaled: resume runs it again, and says so.
    let app = App::sim(scenario, |t| t);
    let out = app.cutover(&["deploy"]).kill_at_event(Some(end)).run();
    assert_eq!(out.status.code(), None, "killed: {}", out.text());
    let (journal, status) = app.journal();
    assert_eq!(status, ReleaseStatus::Interrupted);
    assert_eq!(count(&journal, |k| matches!(k, EventKind::ReleaseCommandStarted { .. })), 1);
    assert_eq!(
        count(&journal, |k| matches!(k, EventKind::ReleaseCommandFinished { .. })),
        0,
        "no end on record"
    );
    let out = app.cutover(&["resume"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("again: the previous process died while it ran"), "{}", out.text());
    let (journal, status) = app.journal();
    assert_eq!(status, ReleaseStatus::Succeeded);
    let reruns: Vec<bool> = journal
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReleaseCommandStarted { rerun, .. } => Some(rerun),
            _ => None,
        })
        .collect();
    assert_eq!(reruns, [false, true]);

    // Killed just after its end (exit 0) was journaled: resume does not run it again.
    let app = App::sim(scenario, |t| t);
    let out = app.cutover(&["deploy"]).kill_at_event(Some(end + 1)).run();
    assert_eq!(out.status.code(), None, "killed: {}", out.text());
    let out = app.cutover(&["resume"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.stdout_text().contains("already ran for this release and exited with 0"), "{}", out.text());
    let (journal, _) = app.journal();
    assert_eq!(count(&journal, |k| matches!(k, EventKind::ReleaseCommandStarted { .. })), 1, "ran once");
}

/// Live `hello-cutover migrate` processes of this app (its marker in their environment).
fn migrations_running(exe: &Path, app: &App) -> usize {
    let marker = format!("HELLO_MIGRATE_MARKER={}", app.dir.path().join("migrated.txt").display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            args.first() == Some(&exe.display().to_string().as_bytes())
                && args.get(1) == Some(&&b"migrate"[..])
                && env.split(|b| *b == 0).any(|v| v == marker.as_bytes())
        })
        .count()
}

#[test]
fn local_release_command_is_the_app_binary_on_the_new_release() {
    let app = App::local(&[("HELLO_START_DELAY_MS", "0")], |t| t);
    let (code, _, text) = app.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v1"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, events, text) = app.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v2"]);
    assert_eq!(code, Some(0), "{text}");
    let (journal, _) = app.journal();
    assert_ran_once_first(&events, &journal, "local");
    // The marker: the process really ran, once per deploy, with the new release's environment.
    assert_eq!(
        app.marker(),
        [
            "v1 registry.fly.io/hello-cutover:v1 RELEASE_COMMAND=1 args=--all",
            "v2 registry.fly.io/hello-cutover:v2 RELEASE_COMMAND=1 args=--all"
        ]
    );
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| kind(e) == "release_command_output")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("migrating to v2 (registry.fly.io/hello-cutover:v2)")),
        "{lines:?}"
    );
}

#[test]
fn local_release_command_failure_and_timeout_leave_the_fleet_alone() {
    let app = App::local(&[("HELLO_START_DELAY_MS", "0"), ("HELLO_MIGRATE_FAIL", "1")], |t| t);
    // The first launch skips it (it would fail).
    let (code, events, text) =
        app.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v1", "--skip-release-command"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(first(&events, "release_command_skipped").is_some());
    assert!(app.marker().is_empty(), "skipped: {:?}", app.marker());

    let (code, events, text) = app.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v2"]);
    assert_eq!(code, Some(1), "{text}");
    let end = last(&events);
    let error = end["error"].as_str().unwrap();
    assert!(error.contains("release command exited with code 3"), "{error}");
    assert!(error.contains("relation \"orders\" already exists"), "stderr is in the tail: {error}");
    assert!(first_change(&events).is_none(), "{text}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 2]]));
    assert_eq!(end["fleet"]["serving"], 2);
    assert_eq!(app.marker().len(), 1, "it ran: {:?}", app.marker());

    // One that outlives its timeout is killed, and the deploy aborts.
    let slow = App::local(&[("HELLO_START_DELAY_MS", "0"), ("HELLO_MIGRATE_SLEEP_MS", "60000")], |t| {
        t.set("deploy.release_command_timeout", "1s")
    });
    let (code, _, text) =
        slow.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v1", "--skip-release-command"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, events, text) = slow.json(&["deploy", "--image", "registry.fly.io/hello-cutover:v2"]);
    assert_eq!(code, Some(1), "{text}");
    let end = last(&events);
    assert!(end["error"].as_str().unwrap().contains("did not finish within 1s"), "{end:#}");
    assert!(end["error"].as_str().unwrap().contains("taking 60000ms"), "its output so far: {end:#}");
    assert_eq!(end["fleet"]["by_version"], serde_json::json!([[1, 2]]));
    assert_eq!(
        migrations_running(&support::example_app_binary(), &slow),
        0,
        "the timed-out process was killed"
    );
    assert!(slow.marker().is_empty());
}
