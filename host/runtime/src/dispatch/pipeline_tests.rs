//! `machines.pipeline` against the simulator: every machine takes every step, the window bounds the
//! machines under way, a failure stops the pipeline when asked and names the step, and a drain that
//! runs out of time says so, its counts one request per poll where the platform can. And a batch
//! wait, whose waves share one deadline, and a batch count, one request for every machine.

use super::{Dispatcher, HostCall, HostReply, Recorder};
use crate::clock::HostClock;
use cutover_core::events::Discard;
use cutover_core::pipeline::{PipelineOptions, PipelineOutcome, Step};
use cutover_core::{CheckKind, CheckSpec, ErrorKind, Grants, MachineState, Release};
use cutover_sim::{Scenario, SimWorld};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const APP: &str = "app";

fn world(scenario: &str) -> Arc<SimWorld> {
    let check = CheckSpec {
        name: "health".into(),
        kind: CheckKind::Tcp,
        grace_period: Duration::from_secs(5),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        port: None,
    };
    SimWorld::new(Scenario::parse(scenario).unwrap(), APP, "img:v1", vec![check])
}

fn dispatcher(w: &Arc<SimWorld>, concurrency: usize) -> Dispatcher {
    let clock = HostClock::simulated();
    let recorder = Recorder::new(Arc::new(Discard), clock);
    Dispatcher::new(Arc::new(w.platform(APP)), BTreeMap::new(), concurrency, clock, recorder)
}

fn v2() -> Release {
    Release { version: 2, image: "img:v2".into() }
}

/// What rolling takes each machine through.
fn roll() -> Vec<Step> {
    vec![
        Step::Cordon,
        Step::Update { target: v2() },
        Step::WaitState { state: MachineState::Started, timeout_ms: 60_000 },
        Step::WaitHealthy { timeout_ms: 60_000 },
        Step::Uncordon,
    ]
}

async fn run(d: &Dispatcher, ids: &[String], steps: Vec<Step>, options: PipelineOptions) -> PipelineOutcome {
    match d.call(HostCall::Pipeline { ids: ids.to_vec(), steps, options }).await {
        HostReply::Pipeline(outcome) => outcome,
        other => panic!("a pipeline answers with its outcome, not {other:?}"),
    }
}

fn ids(w: &SimWorld) -> Vec<String> {
    w.snapshot(APP).into_iter().map(|m| m.id).collect()
}

#[tokio::test(start_paused = true)]
async fn every_machine_takes_every_step_within_the_window() {
    let w = world("[fleet]\nmachines = 9");
    w.track_availability(APP);
    let d = dispatcher(&w, 4);
    let options = PipelineOptions { window: 3, stop_on_failure: true };
    let outcome = run(&d, &ids(&w), roll(), options).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let fleet = w.snapshot(APP);
    assert!(fleet.iter().all(|m| m.release == v2() && m.is_serving()), "{fleet:?}");
    let out = w.availability().unwrap().max_unavailable();
    assert!(out <= 3, "the window keeps at most 3 out of service, saw {out}");
    assert!(out >= 2, "the window is used, not one machine at a time (saw {out})");
}

#[tokio::test(start_paused = true)]
async fn a_failure_names_its_step_and_stops_the_machines_not_yet_started() {
    let w = world("[fleet]\nmachines = 6\n[faults]\nunhealthy_images = [\"img:v2\"]");
    let d = dispatcher(&w, 8);
    let all = ids(&w);
    let outcome = run(&d, &all, roll(), PipelineOptions { window: 2, stop_on_failure: true }).await;
    assert_eq!(outcome.failed.len(), 2, "the two machines under way fail: {outcome:?}");
    for f in &outcome.failed {
        assert_eq!(f.step, 3, "at wait-healthy: {f:?}");
        assert_eq!(f.error.kind, ErrorKind::Unhealthy);
    }
    assert_eq!(outcome.not_started, all[2..].to_vec(), "the others never start, in order");
    let untouched = w.snapshot(APP).into_iter().filter(|m| m.release.version == 1 && m.is_serving()).count();
    assert_eq!(untouched, 4);
}

#[tokio::test(start_paused = true)]
async fn without_stop_on_failure_every_machine_is_tried_and_a_duplicate_fails_alone() {
    let w = world("[fleet]\nmachines = 3\n[faults]\nunhealthy_images = [\"img:v2\"]");
    let d = dispatcher(&w, 8);
    let mut all = ids(&w);
    all.push(all[0].clone());
    let outcome = run(&d, &all, roll(), PipelineOptions::default()).await;
    assert_eq!(outcome.failed.len(), 4, "{outcome:?}");
    assert!(outcome.not_started.is_empty());
    let duplicate = outcome.failed.iter().find(|f| f.error.kind == ErrorKind::Invalid).unwrap();
    assert_eq!(duplicate.step, 0);
    assert!(duplicate.error.message.contains("listed twice"), "{}", duplicate.error.message);
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_runs_out_of_time_fails_with_timeout_and_an_idle_one_goes_on() {
    let w = world("[fleet]\nmachines = 2\n[traffic]\nconnections = 2\nconnection_lifetime = [20000, 30000]");
    let d = dispatcher(&w, 8);
    let all = ids(&w);
    let retire = |timeout_ms| {
        vec![
            Step::Cordon,
            Step::WaitDrained { poll_ms: 500, timeout_ms },
            Step::Stop { signal: "SIGINT".into(), timeout_ms: 5_000 },
            Step::WaitState { state: MachineState::Stopped, timeout_ms: 60_000 },
            Step::Destroy,
        ]
    };
    let short = run(&d, &all[..1], retire(5_000), PipelineOptions::default()).await;
    assert_eq!(short.failed.len(), 1, "{short:?}");
    assert_eq!((short.failed[0].step, short.failed[0].error.kind), (1, ErrorKind::Timeout));
    assert!(short.failed[0].error.message.contains("open connection"), "{}", short.failed[0].error.message);
    let long = run(&d, &all[1..], retire(120_000), PipelineOptions::default()).await;
    assert!(long.is_ok(), "drained within the timeout: {long:?}");
    let left: Vec<String> = ids(&w);
    assert_eq!(left, all[..1].to_vec(), "the drained machine is destroyed, the other is not");
}

#[tokio::test(start_paused = true)]
async fn machines_draining_together_are_counted_in_one_request_per_poll() {
    // 40 machines, 2 slots: counted one call each, a round would take 20 round trips of the slots.
    let w = world("[fleet]\nmachines = 40");
    let d = dispatcher(&w, 2);
    let all = ids(&w);
    let longest = all.iter().flat_map(|id| w.connection_lifetimes(id)).max().unwrap();
    let steps = vec![
        Step::Cordon,
        Step::WaitDrained { poll_ms: 1_000, timeout_ms: 300_000 },
        Step::Stop { signal: "SIGINT".into(), timeout_ms: 5_000 },
        Step::Destroy,
    ];
    let start = tokio::time::Instant::now();
    let outcome = run(&d, &all, steps, PipelineOptions::default()).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(ids(&w).is_empty(), "every drained machine is destroyed");
    let requests = w.calls_on_no_machine("count connections");
    let polls = start.elapsed().as_secs() + 1;
    assert!(requests > 0, "the counts went through the platform's request for many machines");
    assert!(
        requests <= polls,
        "{requests} count requests in {polls} polls' time: one per poll, not one per machine"
    );
    // Nothing was destroyed before its last connection could have closed.
    assert!(start.elapsed() >= longest, "{:?} < {longest:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_withheld_step_is_denied_per_machine_after_the_steps_before_it() {
    let w = world("[fleet]\nmachines = 2");
    let grants = Grants::from_lists(None, &["machines.destroy".into()], None, None).unwrap();
    let d = dispatcher(&w, 8).with_grants(grants);
    let all = ids(&w);
    let steps = vec![Step::Cordon, Step::Destroy, Step::Uncordon];
    let outcome = run(&d, &all, steps, PipelineOptions::default()).await;
    assert_eq!(outcome.failed.len(), 2);
    assert!(outcome.failed.iter().all(|f| f.error.kind == ErrorKind::Denied && f.step == 1), "{outcome:?}");
    let fleet = w.snapshot(APP);
    assert_eq!(fleet.len(), 2, "nothing destroyed");
    assert!(fleet.iter().all(|m| m.cordoned), "the step before the withheld one was taken, none after");
}

#[tokio::test(start_paused = true)]
async fn failed_machines_keep_their_places_in_the_window() {
    let w = world("[fleet]\nmachines = 6\n[faults]\nunhealthy_images = [\"img:v2\"]");
    w.track_availability(APP);
    let d = dispatcher(&w, 8);
    let all = ids(&w);
    let outcome = run(&d, &all, roll(), PipelineOptions { window: 2, stop_on_failure: false }).await;
    assert_eq!(outcome.failed.len(), 2, "the first two fail and hold both places: {outcome:?}");
    assert_eq!(outcome.not_started, all[2..].to_vec(), "so no other machine starts");
    let out = w.availability().unwrap().max_unavailable();
    assert!(out <= 2, "never more out of service than the window, saw {out}");
}

/// A batch wait (not a pipeline) shares one deadline across its waves of `concurrency`: 12 machines,
/// 8 at a time, all answered at the call's one timeout, not the second wave at twice it.
#[tokio::test(start_paused = true)]
async fn a_batch_wait_times_out_once_for_the_whole_call() {
    let w = world("[fleet]\nmachines = 12\n[faults]\nslow_images = { \"img:v2\" = \"20m\" }");
    let d = dispatcher(&w, 8);
    let all = ids(&w);
    let updated = d.call(HostCall::Update { ids: all.clone(), target: v2() }).await;
    assert!(matches!(&updated, HostReply::Batch(f) if f.is_empty()), "{updated:?}");
    let started = tokio::time::Instant::now();
    let wait = HostCall::WaitState { ids: all, state: MachineState::Started, timeout_ms: 300_000 };
    let reply = d.call(wait).await;
    let took = started.elapsed();
    let HostReply::Batch(failed) = reply else { panic!("a batch wait answers per machine: {reply:?}") };
    assert_eq!(failed.len(), 12, "v2 takes 20 minutes to start: every wait times out");
    assert!(failed.iter().all(|(_, e)| e.kind == ErrorKind::Timeout), "{failed:?}");
    assert!(took <= Duration::from_secs(301), "waited {took:?} for a 5 minute timeout");
}

#[tokio::test(start_paused = true)]
async fn a_batch_count_is_one_request_refusing_twice_listed_and_unknown_ids() {
    let w = world("[fleet]\nmachines = 3");
    let d = dispatcher(&w, 8);
    let all = ids(&w);
    let asked = vec![all[0].clone(), all[1].clone(), all[0].clone(), "nope".to_string(), all[2].clone()];
    let counts = match d.call(HostCall::Connections { ids: asked }).await {
        HostReply::Counts(counts) => counts,
        other => panic!("a count answers with counts, not {other:?}"),
    };
    assert_eq!(counts.len(), 5, "one result per id asked: {counts:?}");
    // Each serving machine holds the scenario's default of 4 long-lived connections.
    for i in [0, 1, 4] {
        assert_eq!(counts[i].as_ref().ok(), Some(&4), "{i}: {:?}", counts[i]);
    }
    assert_eq!(counts[2].as_ref().unwrap_err().kind, ErrorKind::Invalid, "listed twice: {:?}", counts[2]);
    assert_eq!(counts[3].as_ref().unwrap_err().kind, ErrorKind::NotFound, "{:?}", counts[3]);
    assert_eq!(w.calls_on_no_machine("count connections"), 1, "one request for every machine");
}
