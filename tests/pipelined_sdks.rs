//! Pipelines in the Python and JavaScript SDKs (contract 0.2): `tests/guests/python-pipelined` and
//! `js-pipelined` roll the simulated fleet as one `machines.pipeline` with a window of
//! `max_unavailable`, through the SDKs' `pipeline`, `move_steps`/`moveSteps` and step constructors.
//!
//! Checked on the fleet, not on what the guest says: every machine ends on v2 and serving, and never
//! more than the window is out of service at any change (the simulator's availability tracking). A
//! release failing its checks stops the roll with `stop_on_failure`: the deploy names the failed
//! machines with their step, and the machines never started stay on v1, serving. Transient API errors
//! are retried from the step that failed: later pipeline calls carry only the steps still to take.
//!
//! The components are built as `polyglot_versions` builds its guests (cached by sources).

use crate::examples_polyglot::build;
use crate::support::{self, *};

use cutover::core::ErrorKind;
use cutover::core::contract::{MaxUnavailable, ParamValue};
use cutover::core::events::{EventKind, HostCall};
use cutover::core::pipeline::Step;
use cutover::runtime::Runtime;
use std::path::PathBuf;
use std::sync::OnceLock;

const GUESTS: [(&str, &str); 2] = [("python-pipelined", "python"), ("js-pipelined", "js")];

fn shared_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(runtime)
}

/// A Python or JavaScript test guest under tests/guests, built (or taken from the cache).
fn guest(name: &str, lang: &str) -> PathBuf {
    let root = support::root();
    let dir = root.join("tests/guests").join(name);
    build(&dir, &[dir.clone(), root.join("sdk").join(lang), root.join("wit")])
}

/// Deploy v2 with `name` under `scenario` with a window of `max`, tracking how many machines serve at
/// every change, and check that no more than `max + slack(run)` were ever out of service.
async fn roll(
    name: &str,
    lang: &str,
    scenario: &str,
    max: usize,
    params: &[(&str, bool)],
    slack: impl Fn(&SimRun) -> usize,
) -> SimRun {
    let wasm = std::fs::read(guest(name, lang)).unwrap();
    let w = world(scenario);
    w.track_availability(APP);
    let mut opts = RunOptions { max_unavailable: MaxUnavailable::Count(max as u32), ..Default::default() };
    for (k, v) in params {
        opts.params.insert((*k).into(), ParamValue::Boolean(*v));
    }
    let run = run_on_sim(shared_runtime(), &wasm, w, opts).await;
    let availability = run.world.availability().unwrap();
    assert!(availability.samples.len() > 2, "{name}: tracking saw no changes");
    let allowed = max + slack(&run);
    for &(at_ms, serving) in &availability.samples {
        let out = availability.baseline.saturating_sub(serving);
        assert!(
            out <= allowed,
            "{name}: at {at_ms} ms {out} machines were out of service; {allowed} allowed"
        );
    }
    run
}

/// Every `machines.pipeline` call of the run: its machines and steps.
fn pipelines(run: &SimRun) -> Vec<(Vec<String>, Vec<Step>)> {
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Pipeline { ids, steps, .. }, .. } => {
                Some((ids.clone(), steps.clone()))
            }
            _ => None,
        })
        .collect()
}

fn logged(run: &SimRun, needle: &str) -> Option<String> {
    run.events.iter().map(|e| serde_json::to_string(e).unwrap()).find(|line| line.contains(needle))
}

#[tokio::test(start_paused = true)]
async fn the_sdks_roll_a_fleet_as_one_pipeline_within_the_window() {
    for (name, lang) in GUESTS {
        let run = roll(name, lang, "[fleet]\nmachines = 9", 3, &[], |_| 0).await;
        assert!(matches!(run.result, Ok(Ok(()))), "{name}: {:?}", run.result);
        let fleet = run.world.snapshot(APP);
        assert_eq!(fleet.len(), 9, "{name}: nothing lost, nothing added");
        for m in &fleet {
            assert_eq!(m.release.image, V2, "{name}: {} not moved", m.id);
            assert!(m.is_serving(), "{name}: {} not serving: {m:?}", m.id);
        }
        // One call moved the whole fleet, the window kept full: more than one machine out at once.
        let calls = pipelines(&run);
        assert_eq!(calls.len(), 1, "{name}: {calls:?}");
        assert_eq!(calls[0].0.len(), 9, "{name}");
        assert!(matches!(calls[0].1.first(), Some(Step::Cordon)), "{name}: {:?}", calls[0].1);
        assert!(matches!(calls[0].1.last(), Some(Step::Uncordon)), "{name}: {:?}", calls[0].1);
        assert!(run.world.availability().unwrap().max_unavailable() > 1, "{name}: the window was used");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_stops_the_pipeline_naming_the_failed_step_and_the_machines_not_started() {
    let scenario = format!("[fleet]\nmachines = 9\n[faults]\nunhealthy_images = [\"{V2}\"]");
    for (name, lang) in GUESTS {
        let run = roll(name, lang, &scenario, 2, &[("stop_on_failure", true)], |_| 0).await;
        let err = run.result.as_ref().expect("sandbox fine").as_ref().expect_err("the deploy must fail");
        assert_eq!(err.kind, ErrorKind::Unhealthy, "{name}: {err:?}");
        let line = logged(&run, "unfinished: failed [").unwrap_or_else(|| panic!("{name}: no summary"));
        // cordon, update, wait started, wait healthy (3): the checks fail.
        assert!(line.contains("at step 3"), "{name}: {line}");
        let fleet = run.world.snapshot(APP);
        let on_v1: Vec<&str> =
            fleet.iter().filter(|m| m.release.image == V1).map(|m| m.id.as_str()).collect();
        assert!(!on_v1.is_empty(), "{name}: the roll went on after the failure");
        assert!(err.message.contains(&format!("(not started: {})", on_v1.len())), "{name}: {}", err.message);
        for id in &on_v1 {
            assert!(line.contains(id), "{name}: {id} is not listed as not started: {line}");
        }
        assert!(
            fleet.iter().filter(|m| m.release.image == V1).all(|m| m.is_serving()),
            "{name}: machines never started still serve"
        );
        assert!(fleet.len() - on_v1.len() <= 2, "{name}: at most the window was moved");
    }
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_from_the_step_that_failed() {
    for (name, lang) in GUESTS {
        // A machine whose step failed keeps its place until the call ends, but its retry is a call
        // of its own, after which the machines it kept out start in another: a machine waiting for
        // its retry may be out beside a full window. So each retried machine may add one.
        let scenario = "seed = 7\n[fleet]\nmachines = 12\n[faults]\napi_error_rate = 0.08";
        let retried = |run: &SimRun| {
            let ids: std::collections::BTreeSet<String> =
                pipelines(run).into_iter().skip(1).flat_map(|(ids, _)| ids).collect();
            ids.len()
        };
        let run = roll(name, lang, scenario, 3, &[], retried).await;
        assert!(matches!(run.result, Ok(Ok(()))), "{name}: {:?}", run.result);
        assert!(
            run.world.snapshot(APP).iter().all(|m| m.release.image == V2 && m.is_serving()),
            "{name}: every machine on v2 and serving"
        );
        let calls = pipelines(&run);
        let all = calls[0].1.len();
        assert!(calls.len() > 1, "{name}: the scenario should have made a step fail: {calls:?}");
        assert!(logged(&run, "hit a transient error").is_some(), "{name}: the retry is logged");
        // A retry carries the steps from the failed one on: fewer than the whole sequence, when a later
        // step than the first failed, and always ending with the last one.
        for (ids, steps) in &calls[1..] {
            assert!(!ids.is_empty() && steps.len() <= all, "{name}: {ids:?} {steps:?}");
            assert!(matches!(steps.last(), Some(Step::Uncordon)), "{name}: {steps:?}");
        }
        assert!(
            calls[1..].iter().any(|(_, s)| s.len() < all),
            "{name}: some retry began past step 0: {calls:?}"
        );
    }
}

/// Built against contract 0.1 (no `machines.pipeline`), the same guests load and their deploy fails with
/// the SDK's `unsupported` error saying to rebuild against 0.2, the fleet untouched.
#[tokio::test(start_paused = true)]
async fn built_against_0_1_the_sdks_say_pipelines_need_0_2() {
    let root = support::root();
    for (name, lang) in GUESTS {
        // A copy of the guest whose manifest points at the 0.1 contract (and at the SDK by absolute path).
        let copy = tempfile::tempdir().unwrap();
        for entry in
            std::fs::read_dir(root.join("tests/guests").join(name)).unwrap().map(|e| e.unwrap().path())
        {
            let file = entry.file_name().unwrap().to_string_lossy().into_owned();
            if entry.is_file() && !file.ends_with(".wasm") {
                let mut text = std::fs::read_to_string(&entry).unwrap();
                if file == "cutover-strategy.toml" {
                    text = text
                        .replace(&format!("name = \"{name}\""), &format!("name = \"{name}-0.1\""))
                        .replace("../../../wit/v0.2", root.join("wit").to_str().unwrap())
                        .replace(
                            &format!("../../../sdk/{lang}"),
                            root.join("sdk").join(lang).to_str().unwrap(),
                        );
                }
                std::fs::write(copy.path().join(&file), text).unwrap();
            }
        }
        let wasm =
            build(copy.path(), &[copy.path().to_path_buf(), root.join("sdk").join(lang), root.join("wit")]);
        let run =
            run_on_sim(shared_runtime(), &std::fs::read(wasm).unwrap(), world("[fleet]\nmachines = 3"), {
                RunOptions::default()
            })
            .await;
        let err = run.result.as_ref().expect("sandbox fine").as_ref().expect_err("no pipeline in 0.1");
        assert_eq!(err.kind, ErrorKind::Unsupported, "{name}: {err:?}");
        assert!(
            err.message.contains(
                "pipeline needs contract cutover:strategy@0.2.0, and this strategy was built against 0.1.0"
            ),
            "{name}: {}",
            err.message
        );
        assert!(run.world.snapshot(APP).iter().all(|m| m.release.image == V1 && m.is_serving()), "{name}");
    }
}
