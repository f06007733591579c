//! Leftovers finished by `cutover resume`: a deploy that got the new release serving but could not
//! clean up (the platform refused past its whole retry budget) succeeded with its leftovers listed;
//! once the platform is back, `cutover resume` destroys or stops each as recorded, clears the record
//! (in the SQLite journal and the PostgreSQL one), and `cutover status` lists none. Leftovers of
//! earlier deploys are also found by their tag on the platform alone: on the simulator, on the local
//! platform's real processes and on the fake Fly Machines API.

use crate::support::{self, OutputExt, Toml};

use cutover::config::Config;
use cutover::core::events::Discard;
use cutover::driver::{Deploy, PlatformFlags, Purpose, StateDir, Target};
use cutover::journal::JOURNAL_URL_ENV;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The sim app of [`succeeded_with_leftovers_then_resumed`], on bluegreen, with its scenario file.
fn sim_app(dir: &Path) -> (String, std::path::PathBuf) {
    let scenario = dir.join("down.toml");
    let config = Toml::example_app()
        .set("deploy.strategy", "bluegreen")
        .set("cutover.sim.scenario", scenario.to_str().unwrap())
        .write(dir.join("fly.toml"));
    (config.to_str().unwrap().to_string(), scenario)
}

/// Destroy down for good: bluegreen succeeds with four blue leftovers; `resume` while the platform
/// is still down finishes none and says so (exit 1); once it is back, `resume` destroys all four,
/// clears the journal's record, and the fleet is four machines on v2, all serving.
fn succeeded_with_leftovers_then_resumed(journal: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let (config, scenario) = sim_app(dir.path());
    let state = dir.path().join("state");
    let cutover = |args: &[&str]| {
        let c = support::cutover(args).config(&config).state(&state);
        match journal {
            Some(url) => c.env(JOURNAL_URL_ENV, url),
            None => c,
        }
    };
    let status = || -> Value { cutover(&["status", "--json"]).run().json() };

    std::fs::write(&scenario, "[fleet]\nmachines = 4\n[faults]\ndown_calls = [\"destroy machine\"]\n")
        .unwrap();
    let out = cutover(&["deploy"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    assert_eq!(s["latest"]["leftovers"].as_array().map(Vec::len), Some(4), "{s}");
    let text = cutover(&["status"]).run().stdout_text();
    assert!(text.contains("`cutover resume` finishes them"), "{text}");

    // Still down: nothing finished, every leftover named with the platform's answer, still recorded.
    let out = cutover(&["resume"]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stdout_text().contains("4 leftover machine(s) still to finish"), "{}", out.text());
    assert!(out.stdout_text().contains("destroying"), "{}", out.text());
    assert_eq!(status()["latest"]["leftovers"].as_array().map(Vec::len), Some(4));

    // Back: resume finishes them, and the record is cleared.
    std::fs::write(&scenario, "[fleet]\nmachines = 4\n").unwrap();
    let out = cutover(&["resume", "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let report: Value = out.json();
    assert_eq!(report["finished"].as_array().map(Vec::len), Some(4), "{report}");
    assert!(report["finished"].as_array().unwrap().iter().all(|l| l["todo"] == "destroy by v2"), "{report}");
    assert_eq!(report["remaining"], json!([]), "{report}");
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    assert_eq!(s["latest"]["leftovers"], json!([]), "the journal's record is cleared: {s}");
    assert_eq!(s["fleet"]["leftovers"], json!([]), "{s}");
    assert_eq!(s["fleet"]["machines"], 4, "{s}");
    assert_eq!(s["fleet"]["serving"], 4, "{s}");
    assert_eq!(s["fleet"]["cordoned"], 0, "{s}");
    assert_eq!(s["fleet"]["stopped"], 0, "{s}");
    assert_eq!(s["fleet"]["by_version"], json!([[2, 4]]), "{s}");

    // Nothing left: resume says there is nothing to do, as before.
    let out = cutover(&["resume"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.text().contains("there is nothing to resume"), "{}", out.text());
}

#[test]
fn resume_finishes_a_succeeded_deploys_leftovers_on_the_simulator() {
    succeeded_with_leftovers_then_resumed(None);
}

#[test]
fn resume_finishes_leftovers_recorded_in_a_postgres_journal() {
    let Some(journal) = cutover::journal::testing::database("leftovers::postgres") else { return };
    succeeded_with_leftovers_then_resumed(Some(&journal));
}

/// Destroy down for good and the metadata API with it: bluegreen still succeeds, and the four blue
/// machines it could neither destroy nor tag are recorded with the release from its tagging calls
/// (the host saw them made), so `cutover resume` finishes them from the record once the platform is
/// back, though no machine carries a tag.
#[test]
fn resume_finishes_leftovers_the_platform_would_not_tag_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let (config, scenario) = sim_app(dir.path());
    let state = dir.path().join("state");
    let cutover = |args: &[&str]| support::cutover(args).config(&config).state(&state);
    let status = || -> Value { cutover(&["status", "--json"]).run().json() };

    std::fs::write(
        &scenario,
        "[fleet]\nmachines = 4\n[faults]\ndown_calls = [\"destroy machine\", \"set metadata\"]\n",
    )
    .unwrap();
    let out = cutover(&["deploy"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(out.text().contains("tagging failed for 4"), "{}", out.text());
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    assert_eq!(s["fleet"]["leftovers"], json!([]), "no tag landed: {s}");
    let recorded = s["latest"]["leftovers"].as_array().unwrap();
    assert_eq!(recorded.len(), 4, "{s}");
    assert!(recorded.iter().all(|l| l["todo"] == "destroy by v2"), "{s}");

    // Back: resume finishes them from the record, and clears it.
    std::fs::write(&scenario, "[fleet]\nmachines = 4\n").unwrap();
    let out = cutover(&["resume", "--json"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let report: Value = out.json();
    assert_eq!(report["finished"].as_array().map(Vec::len), Some(4), "{report}");
    assert_eq!(report["remaining"], json!([]), "{report}");
    let s = status();
    assert_eq!(s["latest"]["leftovers"], json!([]), "the journal's record is cleared: {s}");
    assert_eq!(s["fleet"]["machines"], 4, "{s}");
    assert_eq!(s["fleet"]["serving"], 4, "{s}");
    assert_eq!(s["fleet"]["stopped"], 0, "{s}");
    assert_eq!(s["fleet"]["by_version"], json!([[2, 4]]), "{s}");
}

/// A machine tagged by an earlier deploy, which no journal lists (the tag is all there is): found on
/// the local platform's real processes by its tag, and destroyed; the rest keep serving.
#[tokio::test(flavor = "multi_thread")]
async fn resume_finds_a_tagged_leftover_on_the_local_platform_by_its_tag() {
    let dir = tempfile::tempdir().unwrap();
    let config = Toml::example_app()
        .set("cutover.local.command", support::example_app_binary())
        .write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap().to_string();
    let state = dir.path().join("state");
    let (c, s) = (config.clone(), state.clone());
    let run = move |args: &'static [&'static str]| {
        let (c, s) = (c.clone(), s.clone());
        async move {
            tokio::task::spawn_blocking(move || support::cutover(args).config(c).state(s).run())
                .await
                .unwrap()
        }
    };
    let out = run(&["deploy", "--platform", "local"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());

    // Tag one machine as an earlier deploy would have, through the daemon's Machines API.
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("local/daemon.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap().to_string();
    let token = std::fs::read_to_string(state.join("local/daemon.token")).unwrap();
    let http = reqwest::Client::new();
    let machines = format!("{url}/v1/apps/hello-cutover/machines");
    let listed: Vec<Value> =
        http.get(&machines).bearer_auth(token.trim()).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{machines}/{id}/metadata/cutover_leftover"))
        .bearer_auth(token.trim())
        .json(&json!({"value": "stop-destroy by v7"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let out = run(&["resume"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout_text().contains(&format!("Finished 1 leftover machine(s) of hello-cutover: {id}")),
        "{}",
        out.text()
    );
    let s: Value = run(&["status", "--json"]).await.json();
    assert_eq!(s["fleet"]["machines"], 2, "{s}");
    assert_eq!(s["fleet"]["serving"], 2, "{s}");
    assert_eq!(s["fleet"]["leftovers"], json!([]), "{s}");
    let out = run(&["local", "down"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
}

/// On the fake Fly Machines API: a machine tagged `stop` (a standby an earlier deploy could not
/// stop) is stopped and untagged, one tagged `destroy` is destroyed, the untagged ones are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn resume_finishes_tagged_leftovers_on_fly() {
    use crate::fly::{APP, TOKEN, app, fake_with_fleet, machines_of};
    let fake = fake_with_fleet(4).await;
    let ids: Vec<String> = machines_of(&fake, APP).into_iter().map(|m| m.api.id).collect();
    fake.state.set_metadata(&ids[0], "cutover_leftover", "destroy by v3");
    fake.state.set_metadata(&ids[1], "cutover_leftover", "stop by v3");

    let dir = tempfile::tempdir().unwrap();
    app(&fake.url, "rolling").write(dir.path().join("fly.toml"));
    let config = Config::load(&dir.path().join("fly.toml")).unwrap();
    let flags =
        PlatformFlags { access_token: cutover::machines_api::Token::new(TOKEN), ..Default::default() };
    let target =
        Target::resolve(&config, flags, Some(StateDir::at(dir.path().join("state"))), Purpose::Resume);
    let runtime = support::runtime();
    let d = Deploy { config: &config, target: &target, runtime: &runtime, sink: Arc::new(Discard) };
    let report = d.cleanup().await.unwrap().expect("two leftovers found by their tag");
    assert!(report.done(), "{report:?}");
    let finished: Vec<&str> = report.finished.iter().map(|l| l.id.as_str()).collect();
    let mut want = vec![ids[0].as_str(), ids[1].as_str()];
    want.sort();
    assert_eq!(finished, want, "{report:?}");

    let after = machines_of(&fake, APP);
    let state_of = |id: &str| after.iter().find(|m| m.api.id == id).map(|m| m.api.state.clone());
    assert_eq!(state_of(&ids[0]), None, "destroyed");
    assert_eq!(state_of(&ids[1]).as_deref(), Some("stopped"));
    let standby = after.iter().find(|m| m.api.id == ids[1]).unwrap();
    assert_eq!(standby.api.config.metadata.get("cutover_leftover").map(String::as_str).unwrap_or(""), "");
    for id in &ids[2..] {
        assert_eq!(state_of(id).as_deref(), Some("started"), "{id} was not a leftover");
    }
    assert!(fake.state.live_leases().is_empty(), "the leases are released");
    // Nothing left: a second look finds nothing to do.
    assert!(d.cleanup().await.unwrap().is_none());
}
