//! The rolling strategy on the simulator: it replaces the fleet, never takes more machines out of
//! service than `max_unavailable` allows (checked after every change to the fleet, not just at the end),
//! and stops at the first failure leaving untouched machines on the old release.

use crate::support;

use cutover::core::contract::MaxUnavailable;
use cutover::core::events::{EventKind, HostCall};
use cutover::core::{ErrorKind, MachineState};
use cutover::runtime::Runtime;
use proptest::prelude::*;
use std::sync::OnceLock;
use support::*;

fn shared_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(runtime)
}

/// Deploy v2 with rolling and check the capacity invariant at every recorded instant.
async fn roll(scenario: &str, max: MaxUnavailable) -> SimRun {
    let w = world(scenario);
    w.track_availability(APP);
    let opts = RunOptions { max_unavailable: max, ..Default::default() };
    let run = run_on_sim(shared_runtime(), builtin("rolling"), w, opts).await;
    let availability = run.world.availability().unwrap();
    let allowed = max.allowed(availability.baseline);
    assert!(availability.samples.len() > 2, "tracking saw no changes");
    for &(at_ms, serving) in &availability.samples {
        let unavailable = availability.baseline.saturating_sub(serving);
        assert!(
            unavailable <= allowed,
            "at {at_ms} ms {unavailable} machines were out of service; max_unavailable {max} allows {allowed}"
        );
    }
    run
}

#[tokio::test(start_paused = true)]
async fn ten_machines_end_on_the_new_release_all_passing() {
    let run = roll("[fleet]\nmachines = 10", MaxUnavailable::Fraction(0.33)).await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 10);
    for m in &fleet {
        assert_eq!(m.release.image, V2, "{} not moved", m.id);
        assert!(m.is_serving(), "{} not serving: {:?}", m.id, m);
    }
}

#[tokio::test(start_paused = true)]
async fn a_count_bounds_the_window() {
    let run = roll("[fleet]\nmachines = 9", MaxUnavailable::Count(2)).await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let windows: Vec<u32> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Pipeline { options, .. }, .. } if call_updates(e) => {
                Some(options.window)
            }
            _ => None,
        })
        .collect();
    assert_eq!(windows, [2], "9 machines in one pipeline, 2 at a time");
    let availability = run.world.availability().unwrap();
    assert_eq!(availability.max_unavailable(), 2, "the roll should use the whole allowance");
}

/// Whether an event is a host call that updates machines in place.
fn call_updates(e: &cutover::core::events::Event) -> bool {
    matches!(&e.kind, EventKind::HostCall { call, .. } if call.updates().is_some())
}

#[tokio::test(start_paused = true)]
async fn stopped_machines_are_updated_and_stay_stopped() {
    let run = roll("[fleet]\nmachines = 6\nstopped = 2", MaxUnavailable::Count(1)).await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    let fleet = run.world.snapshot(APP);
    assert!(fleet.iter().all(|m| m.release.image == V2));
    assert_eq!(fleet.iter().filter(|m| m.state == MachineState::Stopped).count(), 2);
    assert!(fleet.iter().all(|m| !m.cordoned), "stopped machines keep their routing too");
}

/// Deploy v2 (which fails its checks) with rolling, `rollback` as given.
async fn failing_roll(rollback: bool) -> SimRun {
    let w = world(&format!("[fleet]\nmachines = 10\n[faults]\nunhealthy_images = [\"{V2}\"]"));
    w.track_availability(APP);
    let mut opts = RunOptions::default();
    opts.params.insert("rollback".into(), cutover::core::contract::ParamValue::Boolean(rollback));
    let run = run_on_sim(shared_runtime(), builtin("rolling"), w, opts).await;
    let availability = run.world.availability().unwrap();
    assert!(
        availability.max_unavailable() <= 4,
        "never more than max_unavailable (4 of 10) out, rollback included"
    );
    run
}

#[tokio::test(start_paused = true)]
async fn a_release_failing_its_checks_stops_the_roll() {
    let run = failing_roll(false).await;
    let err = run.result.expect("sandbox fine").expect_err("the deploy must fail");
    assert_eq!(err.kind, ErrorKind::Unhealthy);
    assert!(err.message.contains("app: 4 of 10 machine(s) failed (4 at a time)"), "{}", err.message);
    assert!(err.message.contains("500 Internal Server Error"), "{}", err.message);
    assert!(err.message.contains("6 untouched and still on the previous release"), "{}", err.message);
    let fleet = run.world.snapshot(APP);
    let on_v1 = fleet.iter().filter(|m| m.release.image == V1).count();
    assert_eq!(on_v1, 6, "untouched machines stay on v1");
    assert!(fleet.iter().filter(|m| m.release.image == V1).all(|m| m.is_serving()));
    // The roll was one call, and nothing started after the first failure.
    let updates = run
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::HostCall { call, .. } if call.updates().is_some()))
        .count();
    assert_eq!(updates, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_roll_is_rolled_back_by_default() {
    let run = failing_roll(true).await;
    let err = run.result.expect("sandbox fine").expect_err("the deploy must fail");
    assert_eq!(err.kind, ErrorKind::Unhealthy, "the original error is kept");
    assert!(err.message.contains("rolled 4 machine(s) back to v1"), "{}", err.message);
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 10, "nothing lost, nothing orphaned");
    assert!(fleet.iter().all(|m| m.release.image == V1 && m.is_serving()), "one release, all serving");
}

#[tokio::test(start_paused = true)]
async fn transient_api_errors_are_retried() {
    let run = roll(
        "seed = 5\n[fleet]\nmachines = 30\n[faults]\napi_error_rate = 0.05\napi_timeout_rate = 0.01",
        MaxUnavailable::Fraction(0.33),
    )
    .await;
    assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
    assert!(run.world.snapshot(APP).iter().all(|m| m.release.image == V2 && m.is_serving()));
    let retried = run.events.iter().any(|e| serde_json::to_string(e).unwrap().contains("injected"));
    assert!(retried, "the scenario should have injected at least one error");
}

#[tokio::test(start_paused = true)]
async fn every_host_call_is_recorded_in_order_on_the_virtual_clock() {
    let run = roll("[fleet]\nmachines = 4", MaxUnavailable::Count(1)).await;
    assert!(matches!(run.result, Ok(Ok(()))));
    for (i, e) in run.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "events are numbered without gaps");
    }
    let times: Vec<u64> = run.events.iter().map(|e| e.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "event times never go back");
    assert!(*times.last().unwrap() > 10_000, "virtual time passed (boots, grace periods)");
    // The roll is one pipeline taking each machine in this order: cordon → update → wait started →
    // wait healthy → uncordon, one machine at a time.
    let roll = run
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Pipeline { ids, steps, options }, .. } => {
                Some((ids, steps, options))
            }
            _ => None,
        })
        .expect("the roll is one pipeline");
    let steps: Vec<String> = roll
        .1
        .iter()
        .map(|s| serde_json::to_value(s).unwrap()["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((roll.0.len(), roll.2.window), (4, 1), "four machines, one at a time");
    assert_eq!(steps, ["cordon", "update", "wait-state", "wait-healthy", "uncordon"]);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_run() {
    let a =
        roll("seed = 99\n[fleet]\nmachines = 12\n[faults]\napi_error_rate = 0.05", MaxUnavailable::Count(3))
            .await;
    let b =
        roll("seed = 99\n[fleet]\nmachines = 12\n[faults]\napi_error_rate = 0.05", MaxUnavailable::Count(3))
            .await;
    assert_eq!(a.events, b.events);
}

/// Regression (found by `rolling_keeps_its_invariants`): v2 outlasts `wait_timeout`, so the first
/// batch is rolled back; a machine of that batch crashes while the rollback waits on it, which stops
/// the rollback. The batch's other machines, back on v1 and passing, must not be left cordoned.
#[tokio::test(start_paused = true)]
async fn a_failed_rollback_puts_the_healthy_machines_of_its_batch_back_in_rotation() {
    let scenario = format!(
        "seed = 275\n[fleet]\nmachines = 6\nregions = [\"ams\"]\n[faults]\nslow_images = {{ \"{V2}\" = \"2m\" }}\n\
         [[faults.crash]]\nmachine = 5\nat = \"61s\""
    );
    let w = world(&scenario);
    let crashed = w.snapshot(APP).into_iter().find(|m| m.name.ends_with("-5")).unwrap().id;
    let opts = RunOptions {
        max_unavailable: MaxUnavailable::Count(3),
        wait_timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let run = run_on_sim(shared_runtime(), builtin("rolling"), w, opts).await;
    let err = run.result.expect("sandbox fine").expect_err("v2 outlasts wait_timeout");
    assert!(err.message.contains("rollback to v1 failed"), "{}", err.message);
    assert!(err.message.contains(&format!("machine {crashed}")), "{}", err.message);
    assert!(err.message.contains("2 pass their checks and are back in rotation"), "{}", err.message);
    let fleet = run.world.snapshot(APP);
    assert_eq!(fleet.len(), 6);
    for m in &fleet {
        assert_eq!(m.release.image, V1, "{} was rolled back or never moved", m.id);
        if m.id == crashed {
            assert_eq!(m.state, MachineState::Failed);
        } else {
            assert!(m.is_serving(), "{} is not serving: {m:?}", m.id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Over random fleets, groups, regions, batch sizes and faults (transient API errors, a crash, a
    /// release outlasting `wait_timeout`): no more than `max_unavailable` out of service at any change
    /// (one more for a crashed machine), and the fleet ends on one release, serving, nothing lost.
    #[test]
    fn rolling_keeps_its_invariants(
        machines in 1usize..60,
        regions in 1usize..4,
        groups in 1usize..3,
        max in prop_oneof![(1u32..5).prop_map(MaxUnavailable::Count), (0.05f64..0.9).prop_map(MaxUnavailable::Fraction)],
        seed in 0u64..1000,
        faults in invariants::random_faults(),
    ) {
        let (faults, wait_timeout) = faults.for_fleet(machines);
        let scenario = random_fleet(seed, machines, regions, groups, &faults);
        let rt = paused_runtime();
        rt.block_on(async {
            let w = world(&scenario);
            w.track_availability(APP);
            let setup = invariants::Setup {
                strategy: "rolling",
                fleet: w.snapshot(APP),
                faults: faults.clone(),
                max_unavailable: max,
            };
            let opts = RunOptions { max_unavailable: max, wait_timeout, ..Default::default() };
            let run = run_on_sim(shared_runtime(), builtin("rolling"), w, opts).await;
            invariants::check(&setup, &run, invariants::settle(&faults)).await
        })
        .map_err(|e| TestCaseError::fail(format!("{e}\nscenario:\n{scenario}")))?;
    }
}

/// Regression (found by `rolling_keeps_its_invariants`): a machine that crashes while its batch waits
/// fails the batch; when another machine of that batch hit a transient API error in the same call, the
/// deploy's error must be the crash (`unhealthy`, naming the machine), not the transient error.
#[tokio::test(start_paused = true)]
async fn a_crash_is_reported_over_a_transient_error_in_the_same_batch() {
    // Which seed puts the crash and a transient error into one call depends on how the host schedules
    // a batch; the first seed that does is the regression case (the search is bounded and must find one).
    let mut found = None;
    for seed in 1..=60 {
        let scenario = format!(
            "seed = {seed}\n[fleet]\nmachines = 21\nregions = [\"ams\"]\n[faults]\napi_error_rate = 0.05\n\
             [[faults.crash]]\nmachine = 1\nat = \"23s\""
        );
        let w = world(&scenario);
        let crashed = w.snapshot(APP).into_iter().find(|m| m.name.ends_with("-1")).unwrap().id;
        let opts = RunOptions {
            max_unavailable: MaxUnavailable::Fraction(0.58),
            wait_timeout: std::time::Duration::from_secs(60),
            ..Default::default()
        };
        let run = run_on_sim(shared_runtime(), builtin("rolling"), w, opts).await;
        let shared = run.events.iter().any(|e| match &e.kind {
            EventKind::HostCall { reply: cutover::core::events::HostReply::Pipeline(outcome), .. } => {
                outcome.failed.iter().any(|f| f.id == crashed && f.error.kind == ErrorKind::Unhealthy)
                    && outcome.failed.iter().any(|f| f.id != crashed && f.error.kind == ErrorKind::Platform)
            }
            _ => false,
        });
        if shared {
            found = Some((run, crashed));
            break;
        }
    }
    let (run, crashed) = found.expect("no seed of 1..=60 has the crash meet a transient error in one call");
    let err = run.result.expect("sandbox fine").expect_err("the crash fails its batch");
    assert_eq!(err.kind, ErrorKind::Unhealthy, "{}", err.message);
    assert!(err.message.contains(&format!("machine {crashed}")), "{}", err.message);
    assert!(err.message.contains("back to v1"), "{}", err.message);
    let fleet = run.world.snapshot(APP);
    assert!(fleet.iter().all(|m| m.release.image == V1 && m.is_serving()), "rolled back and serving");
}
