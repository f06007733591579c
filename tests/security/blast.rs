//! A bounded blast radius: a guest that clones every machine 50 times is held to the machines a deploy
//! may create (the fleet it started with plus one per process group, or `new_machines`): past it, each
//! clone is `denied`, the platform never holds more machines than the bound at any recorded event, and
//! `cutover verify` reports it.

use crate::support::{self, APP, OutputExt, Toml, V1, V2};

use cutover::core::contract::{DeployPlan, MaxUnavailable};
use cutover::core::events::{Event, EventKind, EventSink, HostCall, HostReply, SinkError};
use cutover::core::{MachineState, Release};
use cutover::runtime::{HostClock, Limits, Recorder, RunContext};
use cutover::sim::SimWorld;
use cutover::verify::{self, Invariant, Options};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn cloner() -> PathBuf {
    support::guest("cloner");
    support::guest_target().join("wasm32-wasip2/release/cloner.wasm")
}

/// Counts the simulator's machines (all but destroyed ones) as each event is recorded.
struct Census {
    world: Arc<SimWorld>,
    /// The most machines seen at any event, and the events seen.
    most: Mutex<usize>,
    events: Mutex<Vec<Event>>,
}

impl EventSink for Census {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        let alive = self.world.snapshot(APP).iter().filter(|m| m.state != MachineState::Destroyed).count();
        let mut most = self.most.lock().unwrap();
        *most = (*most).max(alive);
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// What the cloner's verdict says: (clones made, clones denied).
fn tally(verdict: &str) -> (u32, u32) {
    let words: Vec<&str> = verdict.split_whitespace().collect();
    let at = |word: &str| {
        let i = words.iter().rposition(|w| w.starts_with(word)).unwrap_or_else(|| panic!("{verdict}"));
        words[i - 1].parse::<u32>().unwrap_or_else(|_| panic!("{verdict}"))
    };
    (at("clones"), at("denied"))
}

/// Run the cloner on a simulated fleet of 10 machines in one process group, with `limits`.
fn clone_on_sim(limits: Limits) -> (String, usize, Vec<Event>) {
    support::paused_runtime().block_on(async {
        let runtime = support::runtime();
        let strategy = runtime.load(&support::guest("cloner")).unwrap();
        let world = support::world("[fleet]\nmachines = 10\n");
        let plan = DeployPlan {
            app: APP.into(),
            target: Release { version: 2, image: V2.into() },
            previous: Some(Release { version: 1, image: V1.into() }),
            process_groups: vec!["app".into()],
            max_unavailable: MaxUnavailable::Fraction(0.33),
            wait_timeout_ms: 300_000,
            kill_signal: "SIGINT".into(),
            kill_timeout_ms: 5000,
            params: Default::default(),
        };
        let census = Arc::new(Census { world: world.clone(), most: Mutex::new(0), events: Mutex::default() });
        let clock = HostClock::simulated();
        let ctx = RunContext {
            platform: Arc::new(world.platform(APP)),
            limits,
            concurrency: 8,
            clock,
            recorder: Recorder::new(census.clone(), clock),
            seed: 2,
            promotions: None,
            replay: None,
            grants: Default::default(),
            creation_bound: limits.creation_bound(10, plan.process_groups.len()),
            metrics: None,
        };
        let verdict = runtime.deploy(&strategy, &plan, ctx).await.expect("the sandbox lets it return");
        let message = verdict.expect_err("the cloner always reports").message;
        let most = *census.most.lock().unwrap();
        let events = census.events.lock().unwrap().clone();
        (message, most, events)
    })
}

/// The refusals at the bound the journaled replies hold.
fn denials(events: &[Event]) -> usize {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::CloneFrom { .. }, reply: HostReply::Cloned(r), .. } => {
                Some(
                    r.iter()
                        .filter(|r| r.as_ref().is_err_and(|e| e.message.starts_with("blast radius:")))
                        .count(),
                )
            }
            _ => None,
        })
        .sum()
}

#[test]
fn a_cloning_loop_is_held_at_the_fleet_plus_one_per_group() {
    let (verdict, most, events) = clone_on_sim(Limits::default());
    // 10 machines and 1 process group: 11 clones, then every other of the 500 asked for is denied.
    assert_eq!(tally(&verdict), (11, 489), "{verdict}");
    assert!(most <= 21, "the simulator held {most} machines at one event; the bound is 10 + 11");
    assert_eq!(most, 21, "the bound itself is reachable");
    assert_eq!(denials(&events), 489, "every denial is on record");
    // Once nothing is left, a clone is refused whole, before its intent is journaled: nothing is
    // announced that will not be sent.
    let intents = events.iter().filter(|e| matches!(e.kind, EventKind::Intent { .. })).count();
    assert_eq!(intents, 2, "the first call (10 clones) and the second (1 clone, 9 denied)");
}

#[test]
fn new_machines_sets_another_bound() {
    let (verdict, most, _) = clone_on_sim(Limits { new_machines: Some(3), ..Limits::default() });
    assert_eq!(tally(&verdict), (3, 497), "{verdict}");
    assert_eq!(most, 13);
    let (verdict, most, events) = clone_on_sim(Limits { new_machines: Some(0), ..Limits::default() });
    assert_eq!(tally(&verdict), (0, 500), "{verdict}");
    assert_eq!(most, 10);
    assert!(!events.iter().any(|e| matches!(e.kind, EventKind::Intent { .. })));
}

/// Deploy the cloner with the CLI on the simulator (10 machines); (exit code, closing event).
fn deploy_cloner(extra: &str) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = Toml::example_app().write(dir.path().join("fly.toml"));
    std::fs::OpenOptions::new().append(true).open(&config).unwrap().write_all(extra.as_bytes()).unwrap();
    let out = support::cutover(["deploy", "--json", "--strategy"])
        .arg(cloner())
        .config(config)
        .state(dir.path().join("state"))
        .run();
    let end = out
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "deploy_finished")
        .unwrap_or_else(|| panic!("no closing event: {}", out.text()));
    (out.status.code(), end)
}

#[test]
fn a_deploy_is_held_at_the_bound_and_a_sandbox_entry_narrows_it() {
    let (code, end) = deploy_cloner("");
    assert_eq!(code, Some(1), "{end:#}");
    let error = end["error"].as_str().unwrap();
    assert_eq!(tally(error), (11, 489), "{error}");
    assert_eq!(end["fleet"]["machines"], 21, "{end:#}");

    let path = cloner().display().to_string();
    let (code, end) =
        deploy_cloner(&format!("\n[[cutover.sandbox]]\nstrategy = {path:?}\nnew_machines = 2\n"));
    assert_eq!(code, Some(1), "{end:#}");
    assert_eq!(tally(end["error"].as_str().unwrap()), (2, 498), "{end:#}");
    assert_eq!(end["fleet"]["machines"], 12, "{end:#}");
}

/// `cutover verify` reports a strategy that asks for more than the bound as a sandbox breach, naming
/// the bound, in every scenario.
#[tokio::test(start_paused = true)]
async fn verify_reports_creations_past_the_bound() {
    let runtime = support::runtime();
    let cloner = runtime.load(&support::guest("cloner")).unwrap();
    let info = runtime.describe(&cloner).await.unwrap();
    let report = verify::verify(&runtime, &cloner, &info, &Options::default()).await.unwrap();
    assert!(!report.passed());
    assert!(report.broken().contains(&Invariant::Sandbox), "{:?}", report.broken());
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("past the deploy's blast radius"), "{text}");
}
