//! The bluegreen and immediate strategies on the simulator, with their invariants checked after every
//! change to the fleet and in the order of the host calls they made.

use crate::support;

use cutover::core::events::{EventKind, HostCall, HostReply};
use cutover::core::pipeline::Step;
use cutover::core::{ErrorKind, ReleaseWeight};
use cutover::runtime::Runtime;
use std::collections::HashSet;
use std::sync::OnceLock;
use support::*;

fn shared_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(runtime)
}

async fn deploy(strategy: &str, scenario: &str) -> SimRun {
    let w = world(scenario);
    w.track_availability(APP);
    run_on_sim(shared_runtime(), builtin(strategy), w, RunOptions::default()).await
}

/// Ids of the starting fleet (blue).
fn blue_ids(run: &SimRun) -> HashSet<String> {
    run.events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::List, reply: HostReply::Machines(ms), .. } => {
                Some(ms.iter().map(|m| m.id.clone()).collect())
            }
            _ => None,
        })
        .expect("the strategy listed the fleet")
}

/// Index of the first event whose call (of the given name) touches any of `ids`, and whether it succeeded.
fn first_call_on(run: &SimRun, name: &str, ids: &HashSet<String>) -> Option<(usize, bool)> {
    run.events.iter().enumerate().find_map(|(i, e)| match &e.kind {
        // A pipeline stands for the batch calls of its steps (each machine as far as it got).
        EventKind::HostCall { call: HostCall::Pipeline { ids: all, steps, .. }, reply, .. } => {
            let HostReply::Pipeline(outcome) = reply else { return None };
            cutover::core::pipeline::as_batch_calls(all, steps, outcome)
                .iter()
                .any(|c| {
                    c.operation() == name
                        && c.machine_ids().is_some_and(|m| m.iter().any(|id| ids.contains(id)))
                })
                .then_some((i, outcome.is_ok()))
        }
        EventKind::HostCall { call, reply, .. } => {
            let v = serde_json::to_value(call).unwrap();
            let touched =
                v["ids"].as_array().is_some_and(|a| a.iter().any(|id| ids.contains(id.as_str().unwrap())));
            (v["call"] == name && touched)
                .then_some((i, matches!(reply, HostReply::Batch(f) if f.is_empty())))
        }
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn bluegreen_switches_without_losing_capacity() {
    let run = deploy("bluegreen", "[fleet]\nmachines = 10").await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 10, "no blue left over, nothing lost");
    assert!(fleet.iter().all(|m| m.release.image == V2 && m.is_serving()));
    let blue = blue_ids(&run);
    assert!(fleet.iter().all(|m| !blue.contains(&m.id)), "every machine is green");

    // Routable healthy capacity never dipped below the original count, at any change.
    let availability = run.world.availability().unwrap();
    assert_eq!(availability.max_unavailable(), 0, "{:?}", availability.samples);

    // Blue was destroyed only after green passed its checks.
    let green: HashSet<String> = fleet.iter().map(|m| m.id.clone()).collect();
    let (healthy_at, ok) =
        first_call_on(&run, "health.wait-healthy", &green).expect("green was health-checked");
    assert!(ok, "green passed");
    let (destroyed_at, _) = first_call_on(&run, "machines.destroy", &blue).expect("blue destroyed");
    assert!(
        destroyed_at > healthy_at,
        "blue destroyed (event {destroyed_at}) before green passed (event {healthy_at})"
    );
    // The simulator splits traffic by weight: once green was created (cordoned), v1 was pinned at 100%
    // and v2 at 0% and green uncordoned while it booted; the switch is one call giving v2 100% once
    // green passed, and routing goes back to machine count once blue is gone. Blue was never cordoned.
    let weights = weight_calls(&run);
    let v = |version: u64, percent: u8| ReleaseWeight { version, percent };
    let (pin_at, pin) = &weights[0];
    assert_eq!(pin, &[v(1, 100), v(2, 0)], "{weights:?}");
    let cloned_at = run
        .events
        .iter()
        .position(|e| {
            matches!(&e.kind, EventKind::HostCall { call: HostCall::CloneFrom { routable: false, .. }, .. })
        })
        .expect("green cloned cordoned");
    let (uncordon_at, _) = first_call_on(&run, "traffic.uncordon", &green).expect("green put in rotation");
    assert!(
        cloned_at < *pin_at && *pin_at < uncordon_at,
        "pinned before green went in rotation: {weights:?}"
    );
    let (switch_at, switch) = &weights[1];
    assert_eq!(switch, &[v(2, 100)], "{weights:?}");
    assert!(
        *switch_at > healthy_at && *switch_at < destroyed_at,
        "switched between green passing and blue going"
    );
    // Cleared once every blue machine was asked to stop (a stopping machine takes no traffic whatever
    // its weight), while they stop and before they are destroyed.
    let (cleared_at, cleared) = weights.last().expect("weights set");
    assert!(cleared.is_empty(), "weights cleared: {weights:?}");
    let (stopped_at, _) = first_call_on(&run, "machines.stop", &blue).expect("blue stopped");
    assert!(
        stopped_at < *cleared_at && *cleared_at < destroyed_at,
        "cleared (event {cleared_at}) after blue's stops (event {stopped_at}), before its destroys \
         (event {destroyed_at})"
    );
    assert!(first_call_on(&run, "traffic.cordon", &blue).is_none(), "blue left rotation by its weight");
}

/// With `stop` down for good past the switch, blue cannot be retired: the deploy still succeeds (v2
/// serves), and blue, kept out of traffic by its weight until then, is cordoned before the weights
/// are cleared, so nothing routes to v1 again; every blue machine is tagged as a leftover.
#[tokio::test(start_paused = true)]
async fn bluegreen_cordons_blue_it_cannot_stop_before_clearing_the_weights() {
    let run = deploy("bluegreen", "[fleet]\nmachines = 6\n[faults]\ndown_calls = [\"stop machine\"]").await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let blue = blue_ids(&run);
    let weights = weight_calls(&run);
    let (cleared_at, cleared) = weights.last().expect("weights set");
    assert!(cleared.is_empty(), "weights cleared once blue was cordoned: {weights:?}");
    let (cordoned_at, ok) = first_call_on(&run, "traffic.cordon", &blue).expect("blue cordoned");
    assert!(ok && cordoned_at < *cleared_at, "blue cordoned (event {cordoned_at}) before the clear");
    let fleet = run.world.snapshot(APP);
    let left = cutover::driver::status::leftovers(&fleet);
    for m in &fleet {
        if blue.contains(&m.id) {
            assert!(m.cordoned && !m.is_serving(), "{} still takes traffic: {m:?}", m.id);
            assert!(left.iter().any(|l| l.id == m.id), "{} is not a listed leftover", m.id);
        } else {
            assert!(m.release.image == V2 && m.is_serving(), "{m:?}");
        }
    }
    assert_eq!(fleet.len(), 12, "six green serving, six blue kept out of traffic");
}

/// Every `traffic.set-weights` call of a run: its event's index and the weights.
fn weight_calls(run: &SimRun) -> Vec<(usize, Vec<ReleaseWeight>)> {
    run.events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            EventKind::HostCall { call: HostCall::SetWeights { weights }, .. } => Some((i, weights.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn bluegreen_failing_release_removes_green_and_leaves_blue_serving() {
    let run =
        deploy("bluegreen", &format!("[fleet]\nmachines = 8\n[faults]\nunhealthy_images = [\"{V2}\"]")).await;
    let err = run.result.as_ref().expect("sandbox fine").as_ref().expect_err("must fail").clone();
    assert_eq!(err.kind, ErrorKind::Unhealthy);
    assert!(err.message.contains("blue is untouched and still serving"), "{}", err.message);
    let fleet = run.world.snapshot(APP);
    let blue = blue_ids(&run);
    assert_eq!(fleet.len(), 8, "every green destroyed");
    assert!(fleet.iter().all(|m| blue.contains(&m.id) && m.release.image == V1 && m.is_serving()));
    assert_eq!(run.world.availability().unwrap().max_unavailable(), 0, "blue never lost capacity");
    assert!(first_call_on(&run, "machines.destroy", &blue).is_none(), "blue never destroyed");
}

#[tokio::test(start_paused = true)]
async fn bluegreen_survives_transient_api_errors() {
    let run = deploy("bluegreen", "seed = 4\n[fleet]\nmachines = 20\n[faults]\napi_error_rate = 0.05").await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 20);
    assert!(fleet.iter().all(|m| m.release.image == V2 && m.is_serving()));
}

#[tokio::test(start_paused = true)]
async fn bluegreen_refuses_volumes_before_changing_anything() {
    let w = world("[fleet]\nmachines = 4\nvolumes = true");
    let before = w.snapshot(APP);
    let run = run_on_sim(shared_runtime(), builtin("bluegreen"), w, RunOptions::default()).await;
    let err = run.result.expect("sandbox fine").expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("volume") && err.message.contains("rolling"), "{}", err.message);
    assert_eq!(run.world.snapshot(APP), before, "nothing changed");
    assert!(
        run.events.iter().all(|e| !matches!(&e.kind, EventKind::HostCall { call, .. } if call.mutates()))
    );
}

#[tokio::test(start_paused = true)]
async fn bluegreen_refuses_an_app_without_health_checks() {
    let w = world_with_checks("[fleet]\nmachines = 3", vec![]);
    let before = w.snapshot(APP);
    let run = run_on_sim(shared_runtime(), builtin("bluegreen"), w, RunOptions::default()).await;
    let err = run.result.expect("sandbox fine").expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("http_service.checks"), "{}", err.message);
    assert_eq!(run.world.snapshot(APP), before);
}

#[tokio::test(start_paused = true)]
async fn bluegreen_can_retain_blue_for_a_switch_back() {
    let w = world("[fleet]\nmachines = 3");
    let mut opts = RunOptions::default();
    opts.params.insert("retain_blue".into(), cutover::core::contract::ParamValue::Boolean(true));
    let run = run_on_sim(shared_runtime(), builtin("bluegreen"), w, opts).await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let fleet = run.world.snapshot(APP);
    let blue = blue_ids(&run);
    let kept: Vec<_> = fleet.iter().filter(|m| blue.contains(&m.id)).collect();
    assert_eq!(kept.len(), 3, "blue kept");
    assert!(kept.iter().all(|m| m.cordoned && m.state == cutover::core::MachineState::Stopped));
    assert_eq!(fleet.iter().filter(|m| m.is_serving()).count(), 3, "green serves");
}

#[tokio::test(start_paused = true)]
async fn immediate_updates_everything_at_once_and_drops_capacity() {
    let run = deploy("immediate", "[fleet]\nmachines = 6").await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let updates: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Update { ids, .. }, .. } => Some(ids.len()),
            _ => None,
        })
        .collect();
    assert_eq!(updates, [6], "one call for the whole fleet");
    // The control case: every machine was out of service at once.
    let availability = run.world.availability().unwrap();
    assert_eq!(availability.max_unavailable(), 6);
    // Once the machines have booted, the fleet is on v2 and serving.
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    assert!(run.world.snapshot(APP).iter().all(|m| m.release.image == V2 && m.is_serving()));
}

/// Regression (found by `every_strategy_keeps_its_invariants`): a blue machine that crashes while it
/// stops ends `failed`, not `stopped`; retiring blue must count it as stopped rather than fail the
/// deploy after the wait for `stopped` times out.
#[tokio::test(start_paused = true)]
async fn bluegreen_retires_a_blue_machine_that_crashes_while_stopping() {
    let scenario = "seed = 54\n[fleet]\nmachines = 23\nregions = [\"ams\"]\n[faults]\napi_error_rate = 0.03\n\
                    [[faults.crash]]\nmachine = 0\nat = \"19500ms\"";
    let w = world(scenario);
    w.track_availability(APP);
    let opts = RunOptions { wait_timeout: std::time::Duration::from_secs(60), ..Default::default() };
    let run = run_on_sim(shared_runtime(), builtin("bluegreen"), w, opts).await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let counted = run.events.iter().any(|e| {
        matches!(&e.kind, EventKind::HostCall { call: HostCall::Log { message, .. }, .. }
            if message.contains("failed while stopping"))
    });
    assert!(counted, "the crash no longer lands while blue stops");
    let fleet = run.world.snapshot(APP);
    let blue = blue_ids(&run);
    assert_eq!(fleet.len(), 23, "the crashed blue machine was destroyed with the others");
    assert!(fleet.iter().all(|m| !blue.contains(&m.id) && m.release.image == V2 && m.is_serving()));
}

/// The scenarios every strategy is run through, with whether the deploy should succeed.
fn scenarios() -> Vec<(&'static str, String, bool)> {
    vec![
        ("happy path", "[fleet]\nmachines = 12\nregions = [\"ams\", \"iad\"]".into(), true),
        (
            "release fails its checks",
            format!("[fleet]\nmachines = 12\n[faults]\nunhealthy_images = [\"{V2}\"]"),
            false,
        ),
        (
            "5% transient API errors",
            "seed = 8\n[fleet]\nmachines = 12\n[faults]\napi_error_rate = 0.05".into(),
            true,
        ),
        (
            "a machine crashes mid-deploy",
            "[fleet]\nmachines = 12\n[[faults.crash]]\nmachine = 11\nat = \"8s\"".into(),
            true,
        ),
        (
            "the wait timeout expires",
            format!("[fleet]\nmachines = 12\n[faults]\nslow_images = {{ \"{V2}\" = \"20m\" }}"),
            false,
        ),
    ]
}

/// Run `strategy` through every scenario and check, after every change to the fleet and at the end:
/// capacity stays within what the strategy promises, and the fleet ends on exactly one release (the new
/// one on success, the old one on failure), every machine serving, none lost and none left over.
async fn check_strategy(strategy: &str, capacity_floor: impl Fn(usize) -> usize) {
    for (name, scenario, succeeds) in scenarios() {
        let w = world(&scenario);
        w.track_availability(APP);
        let before = w.snapshot(APP).len();
        let run = run_on_sim(shared_runtime(), builtin(strategy), w, RunOptions::default()).await;
        let ok = matches!(run.result, Ok(Ok(())));
        assert_eq!(ok, succeeds, "{strategy}, {name}: {:?}", run.result);
        let availability = run.world.availability().unwrap();
        let floor = capacity_floor(availability.baseline);
        for &(at, serving) in &availability.samples {
            assert!(serving >= floor, "{strategy}, {name}: {serving} serving at {at} ms, promised {floor}");
        }
        let fleet = run.world.snapshot(APP);
        assert_eq!(fleet.len(), before, "{strategy}, {name}: machines lost or left over");
        let image = if succeeds { V2 } else { V1 };
        for m in &fleet {
            assert_eq!(m.release.image, image, "{strategy}, {name}: {} on the wrong release", m.id);
            assert!(m.is_serving(), "{strategy}, {name}: {} not serving: {m:?}", m.id);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rolling_across_scenarios() {
    // max_unavailable 0.33 of 12: 4 out at most; a crash takes one more.
    check_strategy("rolling", |baseline| baseline.saturating_sub(5)).await;
}

#[tokio::test(start_paused = true)]
async fn bluegreen_across_scenarios() {
    // Never below the original capacity, but for the machine that crashes.
    check_strategy("bluegreen", |baseline| baseline.saturating_sub(1)).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Over random strategies, fleets, regions, process groups and faults (transient API errors, a
    /// machine crashing part-way through, a new release that outlasts `wait_timeout`), each strategy
    /// keeps its promises at every change of the fleet (see `support::invariants`), and every deploy
    /// ends with the fleet on one release (the new one if it succeeded, the old one if not), every
    /// machine serving but one that crashed after the deploy last touched it, none lost or left over.
    #[test]
    fn every_strategy_keeps_its_invariants(
        strategy in proptest::sample::select(vec!["bluegreen", "canary", "drain-then-destroy", "immediate", "rolling"]),
        machines in 1usize..40,
        regions in 1usize..4,
        groups in 1usize..3,
        seed in 0u64..1000,
        faults in invariants::random_faults(),
    ) {
        let (faults, wait_timeout) = faults.for_fleet(machines);
        let scenario = random_fleet(seed, machines, regions, groups, &faults);
        let rt = paused_runtime();
        rt.block_on(async {
            let w = world(&scenario);
            w.track_availability(APP);
            let opts = RunOptions { wait_timeout, ..Default::default() };
            let setup = invariants::Setup {
                strategy,
                fleet: w.snapshot(APP),
                faults: faults.clone(),
                max_unavailable: opts.max_unavailable,
            };
            let run = run_on_sim(shared_runtime(), builtin(strategy), w, opts).await;
            invariants::check(&setup, &run, invariants::settle(&faults)).await
        })
        .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}\nscenario:\n{scenario}")))?;
    }
}

#[tokio::test(start_paused = true)]
async fn canary_and_drain_across_scenarios() {
    // Canary promotes like rolling (4 of 12 out at most, one more for the crash); drain keeps capacity
    // like bluegreen.
    check_strategy("canary", |baseline| baseline.saturating_sub(5)).await;
    check_strategy("drain-then-destroy", |baseline| baseline.saturating_sub(1)).await;
}

/// The weights the canary set for v2, in order.
fn canary_weights(run: &SimRun) -> Vec<u8> {
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::SetWeights { weights }, .. } => {
                Some(weights.iter().find(|w| w.version == 2).map_or(0, |w| w.percent))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn canary_steps_traffic_and_never_gives_the_canary_more_than_the_step() {
    let run = deploy("canary", "[fleet]\nmachines = 10").await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let weights = canary_weights(&run);
    assert_eq!(weights, [10, 25, 50, 0], "the steps in order, then cleared once: {weights:?}");
    // Cleared before the promotion moves any machine: routing by machine count during the roll.
    let at = |found: &dyn Fn(&HostCall) -> bool| {
        run.events.iter().position(|e| matches!(&e.kind, EventKind::HostCall { call, .. } if found(call)))
    };
    let cleared = at(&|c| matches!(c, HostCall::SetWeights { weights } if weights.is_empty())).unwrap();
    let first_update = at(&|c| c.updates().is_some()).expect("the promotion moved machines");
    assert!(cleared < first_update, "the weights were cleared after the promotion began");
    // At every change before the promotion, v2 gets at most the weight of the step in force.
    let steps: Vec<(u64, u8)> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::SetWeights { weights }, .. } => {
                Some((e.at_ms, weights.iter().find(|w| w.version == 2).map_or(0, |w| w.percent)))
            }
            _ => None,
        })
        .collect();
    let availability = run.world.availability().unwrap();
    let promotion = invariants::phase_at(&run, "promote").unwrap_or(u64::MAX);
    for (at, shares) in availability.traffic.iter().filter(|(at, _)| *at < promotion) {
        let v2 = shares.iter().find(|(v, _)| *v == 2).map_or(0.0, |(_, p)| *p);
        let step = steps.iter().rev().find(|(t, _)| t <= at).map_or(0, |(_, p)| *p);
        assert!(v2 <= f64::from(step) + 1e-9, "v2 had {v2}% at {at} ms while the step allowed {step}%");
    }
    assert_eq!(run.world.snapshot(APP).len(), 10, "the canary was removed");
}

#[tokio::test(start_paused = true)]
async fn a_canary_failing_its_error_gate_restores_stable() {
    let scenario = format!("[fleet]\nmachines = 10\n[faults]\nerror_images = {{ \"{V2}\" = 0.2 }}");
    let run = deploy("canary", &scenario).await;
    let err = run.result.as_ref().expect("sandbox fine").as_ref().expect_err("the gate must fail").clone();
    assert!(err.message.contains("gate failed at step 1/3 (10%)"), "{}", err.message);
    let weights = canary_weights(&run);
    assert_eq!(weights, [10, 0, 0], "10% step (set before the canary existed), back to 0%, then cleared");
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 10);
    assert!(fleet.iter().all(|m| m.release.image == V1 && m.is_serving()));
    let (_, last) = run.world.availability().unwrap().traffic.last().cloned().unwrap();
    assert_eq!(last, vec![(1, 100.0)], "all new requests go to the stable release");
}

#[tokio::test(start_paused = true)]
async fn drain_destroys_no_machine_with_open_connections_before_the_timeout() {
    for (drain_timeout, expect_cuts) in [("5m", false), ("10s", true)] {
        let w =
            world("[fleet]\nmachines = 6\n[traffic]\nconnections = 5\nconnection_lifetime = [2000, 90000]");
        let mut opts = RunOptions::default();
        opts.params.insert(
            "drain_timeout".into(),
            cutover::core::contract::ParamValue::DurationMs(
                cutover::config::duration::parse(drain_timeout).unwrap().as_millis() as u64,
            ),
        );
        let run = run_on_sim(shared_runtime(), builtin("drain-then-destroy"), w, opts).await;
        assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
        let blue = blue_ids(&run);
        // The switch: blue cordoned, or (the simulator splits by weight) v2 given 100%.
        let switch_at = run
            .events
            .iter()
            .find(|e| match &e.kind {
                EventKind::HostCall { call: HostCall::Cordon { ids }, .. } => {
                    ids.iter().any(|id| blue.contains(id))
                }
                EventKind::HostCall { call: HostCall::SetWeights { weights }, .. } => {
                    weights.iter().any(|w| w.version == 2 && w.percent == 100)
                }
                _ => false,
            })
            .map(|e| e.at_ms)
            .expect("traffic was switched");
        let cuts = run.world.cut_connections();
        let limit = cutover::config::duration::parse(drain_timeout).unwrap().as_millis() as u64;
        for (at, id, open) in &cuts {
            assert!(
                at - switch_at >= limit,
                "{id} cut with {open} open connection(s) {} ms after the switch",
                at - switch_at
            );
        }
        assert_eq!(!cuts.is_empty(), expect_cuts, "drain_timeout {drain_timeout}: cuts {cuts:?}");
        let fleet = run.world.snapshot(APP);
        assert_eq!(fleet.len(), 6);
        assert!(fleet.iter().all(|m| m.release.image == V2 && m.is_serving()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_on_green_times_out_once_for_the_whole_call() {
    // 12 machines with concurrency 8: whether the wait is a batch call (its waves share one deadline,
    // `dispatch::pipeline_tests`) or a pipeline (its waits hold no slot), it ends at its one timeout.
    let scenario = format!("[fleet]\nmachines = 12\n[faults]\nslow_images = {{ \"{V2}\" = \"20m\" }}");
    let run = deploy("bluegreen", &scenario).await;
    assert!(run.result.as_ref().is_ok_and(|r| r.is_err()), "{:?}", run.result);
    let waits = |call: &HostCall| match call {
        HostCall::WaitState { .. } => true,
        HostCall::Pipeline { steps, .. } => steps.iter().any(|s| matches!(s, Step::WaitState { .. })),
        _ => false,
    };
    let waited = run
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::HostCall { call, took_ms, .. } if waits(call) => Some(*took_ms),
            _ => None,
        })
        .expect("bluegreen waits on green");
    assert!(waited <= 300_000 + 1_000, "waited {waited} ms for a 5 minute timeout");
}

/// The lower bounds the strategies benchmark reports (`support::bounds`, BENCHMARKS.md) are lower
/// bounds: no built-in strategy beats one, on fleets, seeds and concurrencies that stress each term
/// (several waves per call, batches of different sizes, two process groups).
#[tokio::test(start_paused = true)]
async fn no_strategy_beats_its_lower_bound() {
    use support::bounds::{Model, canary_shape, duration_param, update_calls};
    let runtime = shared_runtime();
    for (seed, machines, groups, concurrency) in [(1, 40, 1, 4), (2, 25, 2, 8), (3, 9, 1, 64)] {
        let names = if groups == 1 { "\"app\"" } else { "\"app\", \"worker\"" };
        let scenario = format!(
            "seed = {seed}\n[fleet]\nmachines = {machines}\nregions = [\"ams\", \"iad\", \"sin\"]\ngroups = [{names}]"
        );
        for strategy in ["immediate", "rolling", "bluegreen", "canary", "drain-then-destroy"] {
            let w = world(&scenario);
            let blue: Vec<String> = w.snapshot(APP).into_iter().map(|m| m.id).collect();
            let lifetimes: Vec<_> = blue.iter().map(|id| w.connection_lifetimes(id)).collect();
            let model = Model::new(&w, concurrency);
            let started = tokio::time::Instant::now();
            let opts = RunOptions { concurrency, ..Default::default() };
            let run = run_on_sim(runtime, builtin(strategy), w.clone(), opts).await;
            let took = started.elapsed();
            assert!(matches!(run.result, Ok(Ok(()))), "{strategy}: {:?}", run.result);
            let bound = match strategy {
                "immediate" => model.immediate(&blue),
                "rolling" => model.rolling(&update_calls(&run)),
                "bluegreen" => model.bluegreen(&blue),
                "canary" => model.canary(&canary_shape(runtime, groups).await, &blue, &update_calls(&run)),
                _ => model.drain(&blue, &lifetimes, duration_param(runtime, strategy, "drain_timeout").await),
            };
            assert!(
                took >= bound,
                "{strategy}, {machines} machines, concurrency {concurrency}: took {took:?}, bound {bound:?}"
            );
        }
    }
}
