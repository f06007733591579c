//! Every built-in on a flaky platform (10–40% of API calls failing, 2% hanging 30 s) ends clean: one
//! release, every machine serving, nothing cordoned, stopped or left over. The three cases a user of a
//! flaky API met (a "failed" bluegreen with v2 serving and a blue machine left behind, a drain that
//! left blue cordoned beside green, a rollback that left a machine cordoned) as named regressions, and
//! a property test over seeds, fleet sizes 1–30 and error rates, judged by `cutover verify`'s own
//! `clean-end` invariant.

use crate::support;

use cutover::verify::{self, Fault, Invariant, Options, RunOutcome, ScenarioResult, ScenarioSpec, Verdict};
use proptest::prelude::*;

/// Run one built-in through one flaky-platform scenario (on a paused clock).
fn run(strategy: &str, seed: u64, machines: usize, error_pct: u8) -> ScenarioResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    rt.block_on(async {
        let runtime = support::runtime();
        let component = runtime.load(support::builtin(strategy)).unwrap();
        let info = runtime.describe(&component).await.unwrap();
        let opts = Options { allow_downtime: strategy == "immediate", ..Options::default() };
        let spec = ScenarioSpec { fault: Fault::Unreliable { error_pct }, machines, seed };
        let report = verify::verify_scenarios(&runtime, &component, &info, &opts, vec![spec]).await.unwrap();
        report.scenarios.into_iter().next().unwrap()
    })
}

/// The run ended clean and every invariant held; the message says what did not.
fn assert_clean(strategy: &str, r: &ScenarioResult) {
    let broken: Vec<String> = r
        .checks
        .iter()
        .filter_map(|(i, v)| match v {
            Verdict::Fail(v) => Some(format!("{}: {}", i.name(), v.message)),
            _ => None,
        })
        .collect();
    assert!(r.ended_clean() && r.passed(), "{strategy}, {}: {:?}; broken: {broken:#?}", r.name, r.outcome);
    let clean = r.checks.iter().find(|(i, _)| *i == Invariant::CleanEnd).map(|(_, v)| v);
    assert_eq!(clean, Some(&Verdict::Pass), "{strategy}, {}", r.name);
}

/// Was: green took all traffic, destroying one blue machine failed three times, and the deploy was
/// reported failed with v2 serving and a cordoned, stopped v1 machine left "to destroy by hand".
#[test]
fn bluegreen_seed_7_four_machines_succeeds_with_blue_gone() {
    for error_pct in [30, 40] {
        let r = run("bluegreen", 7, 4, error_pct);
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.name);
        assert_clean("bluegreen", &r);
    }
}

/// Was: all four blue machines left cordoned beside green, and the deploy "failed".
#[test]
fn drain_then_destroy_seed_7_four_machines_succeeds_with_blue_gone() {
    for error_pct in [30, 40] {
        let r = run("drain-then-destroy", 7, 4, error_pct);
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.name);
        assert_clean("drain-then-destroy", &r);
    }
}

/// Was: a batch failed on a 503, the rollback "failed too", and one machine stayed cordoned: 21 of 22
/// serving after the deploy ended (rolling, seed 3; canary the same at seed 7).
#[test]
fn rolling_and_canary_twenty_two_machines_end_with_every_machine_serving() {
    for (strategy, seed, error_pct) in [("rolling", 3, 40), ("canary", 7, 30), ("canary", 3, 40)] {
        let r = run(strategy, seed, 22, error_pct);
        assert_clean(strategy, &r);
    }
}

/// The built-ins, as verify runs them.
const BUILTINS: [&str; 5] = ["bluegreen", "drain-then-destroy", "rolling", "canary", "immediate"];

proptest! {
    // Each case runs all five built-ins; the sweep (`cutover verify --sweep`) covers the grid.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_builtin_ends_clean_on_a_flaky_platform(
        seed in 1u64..10_000,
        machines in 1usize..=30,
        error_pct in 0u8..=40,
    ) {
        for strategy in BUILTINS {
            let r = run(strategy, seed, machines, error_pct);
            let clean = r.checks.iter().find(|(i, _)| *i == Invariant::CleanEnd).map(|(_, v)| v.clone());
            prop_assert!(
                r.ended_clean() && r.passed(),
                "{strategy}, {}: {:?}; clean-end: {clean:?}",
                r.name,
                r.outcome
            );
        }
    }
}

/// When the platform stays down for a call past the whole budget (every `destroy` fails), the deploy
/// still succeeds once v2 serves: the blue machines it could not destroy are tagged as leftovers,
/// `cutover status` lists them, and the next deploy finishes them before it does anything else.
#[test]
fn clean_up_the_platform_refuses_is_left_over_and_finished_by_the_next_deploy() {
    use crate::support::{OutputExt, Toml};
    use serde_json::Value;

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("down.toml");
    let config = Toml::example_app()
        .set("deploy.strategy", "bluegreen")
        .set("cutover.sim.scenario", scenario.to_str().unwrap())
        .write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let status =
        || -> Value { support::cutover(["status", "--config", config, "--json"]).state(&state).run().json() };

    std::fs::write(&scenario, "[fleet]\nmachines = 4\n[faults]\ndown_calls = [\"destroy machine\"]\n")
        .unwrap();
    let out = support::cutover(["deploy", "--config", config]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "succeeded although blue could not be destroyed:\n{}", out.text());
    assert!(out.stdout_text().contains("4 blue machine(s) left to destroy"), "{}", out.text());
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    let leftovers = s["fleet"]["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 4, "{s}");
    assert!(leftovers.iter().all(|l| l["todo"] == "destroy by v2"), "{s}");
    // The journal records them with the release, which succeeded.
    assert_eq!(s["latest"]["leftovers"], s["fleet"]["leftovers"], "{s}");
    let text = support::cutover(["status", "--config", config]).state(&state).run().stdout_text();
    assert!(text.contains("Leftover: 4 machine(s) a deploy could not finish cleaning up"), "{text}");

    // The platform is back: the next deploy destroys the leftovers first and ends with 4 machines.
    std::fs::write(&scenario, "[fleet]\nmachines = 4\n").unwrap();
    let out = support::cutover(["deploy", "--config", config]).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout_text().contains("destroyed 4 leftover machine(s) of earlier deploys"),
        "{}",
        out.text()
    );
    let s = status();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    assert_eq!(s["fleet"]["leftovers"], serde_json::json!([]), "{s}");
    assert_eq!(s["fleet"]["machines"], 4, "{s}");
    assert_eq!(s["fleet"]["serving"], 4, "{s}");
    assert_eq!(s["fleet"]["by_version"], serde_json::json!([[3, 4]]), "{s}");
}

/// The second branch of the property: the platform fails *permanently* for one call (`destroy`
/// never succeeds) on top of transient errors and hangs. A strategy cannot end clean then, but it must
/// not end half-changed either: past its point of no return it succeeds with v2 serving everywhere,
/// before it (a clone that kept failing) it fails with v1 serving everywhere as before, and either way
/// every machine it could not clean up is tagged as a leftover; once the platform is back, `cutover
/// resume`'s clean-up (`driver::cleanup::finish`, what it runs) finishes them, and the fleet is one
/// release, all serving, nothing cordoned, stopped or left over.
fn down_then_finished(
    strategy: &str,
    seed: u64,
    machines: usize,
    error_pct: u8,
) -> Result<(), TestCaseError> {
    use cutover::driver::cleanup::{Finishing, finish};
    use cutover::driver::status::leftovers;
    use cutover::sim::{Scenario, SimWorld};

    let faults = format!(
        "seed = {seed}\n[fleet]\nmachines = {machines}\n[faults]\napi_error_rate = {}\napi_timeout_rate = {}\n\
         api_timeout = \"{}s\"\n",
        f64::from(error_pct) / 100.0,
        verify::UNRELIABLE_TIMEOUT_RATE,
        verify::UNRELIABLE_TIMEOUT.as_secs()
    );
    let down = format!("{faults}down_calls = [\"destroy machine\"]\n");
    let case = format!("{strategy}, seed {seed}, {machines} machine(s), {error_pct}% errors, destroy down");
    let rt = support::paused_runtime();
    rt.block_on(async {
        let runtime = support::runtime();
        let world = support::world(&down);
        let opts =
            support::RunOptions { max_unavailable: verify_max_unavailable(strategy), ..Default::default() };
        let run = support::run_on_sim(&runtime, support::builtin(strategy), world, opts).await;
        // A deploy may still fail before its point of no return (transient errors outlasting the
        // retries of a call that is not idempotent, such as a clone); then it is undone, and the fleet
        // is judged against the release it started on. Past that point it must succeed.
        let version = match &run.result {
            Ok(Ok(())) => 2,
            Ok(Err(e))
                if e.message.contains("blue is untouched")
                    || e.message.contains("stable release is untouched") =>
            {
                1
            }
            other => return Err(TestCaseError::fail(format!("{case}: {other:?}"))),
        };
        // Machines the strategy left starting or stopping get there (the platform settles, as the
        // driver's read-back after a deploy waits for).
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let fleet = run.world.snapshot(support::APP);
        let left = leftovers(&fleet);
        // Every machine not serving the release is a listed leftover: nothing unlisted is left behind.
        for m in &fleet {
            let listed = left.iter().any(|l| l.id == m.id);
            prop_assert!(
                listed || (m.release.version == version && m.is_serving()),
                "{case}: {} ({:?}, v{}, cordoned {}) is neither serving v{version} nor a listed leftover",
                m.id,
                m.state,
                m.release.version,
                m.cordoned
            );
        }

        // The platform is back (the world goes on from where it is, without the faults).
        let saved = run.world.save("");
        let back = SimWorld::restore(
            Scenario::parse(&faults).unwrap(),
            saved,
            support::APP,
            vec![support::http_check()],
        );
        let platform = back.platform(support::APP);
        let how = Finishing {
            stop: cutover::core::StopSpec {
                signal: "SIGINT".into(),
                timeout: std::time::Duration::from_secs(5),
            },
            budget: std::time::Duration::from_secs(300),
            concurrency: 8,
        };
        let (finished, remaining) = finish(&platform, &left, &how).await;
        prop_assert!(remaining.is_empty(), "{case}: {remaining:?}");
        prop_assert_eq!(finished.len(), left.len(), "{}", case);
        // Let the last stops settle, then judge the fleet.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let fleet = back.snapshot(support::APP);
        prop_assert!(!fleet.is_empty(), "{case}: no machine left");
        for m in &fleet {
            prop_assert!(
                m.release.version == version && m.is_serving() && !m.cordoned,
                "{case}: after resume, {} is {:?} on v{} (cordoned {})",
                m.id,
                m.state,
                m.release.version,
                m.cordoned
            );
        }
        prop_assert!(leftovers(&fleet).is_empty(), "{case}: still tagged after resume");
        Ok(())
    })
}

/// `immediate` may take the whole fleet down at once, as `verify` lets it.
fn verify_max_unavailable(strategy: &str) -> cutover::core::contract::MaxUnavailable {
    match strategy {
        "immediate" => cutover::core::contract::MaxUnavailable::Fraction(1.0),
        _ => cutover::core::contract::MaxUnavailable::Fraction(0.33),
    }
}

/// Was: bluegreen tagged a blue machine it could not destroy four times over a second, gave up on the
/// tag after three 503s (tagging was retried by count, not by the budget), and left a stopped,
/// cordoned v1 machine that nothing could find again.
#[test]
fn bluegreen_seed_2921_destroy_down_tags_every_blue_machine_left() {
    down_then_finished("bluegreen", 2921, 4, 23).unwrap();
}

/// Was: a clone failed four times before the switch, so bluegreen gave up, and with `destroy` down the
/// green machines it could not remove were left cordoned, untagged, "to destroy by hand".
#[test]
fn bluegreen_seed_3388_failing_before_the_switch_tags_the_green_it_cannot_remove() {
    down_then_finished("bluegreen", 3388, 5, 11).unwrap();
}

/// Was: one machine's wait-healthy step met 503s for longer than its retries lasted, so rolling
/// stopped with 15 of 16 machines on v2 and rolled them all back (a deploy past its point of no
/// return must succeed, not undo itself over a transient error).
#[test]
fn rolling_seed_2045_transient_errors_at_a_wait_do_not_stop_the_roll() {
    down_then_finished("rolling", 2045, 16, 36).unwrap();
}

/// Was: a machine's cordon met 503s past its retries while a roll of 25 went on (seed 8678).
#[test]
fn rolling_seed_8678_a_cordon_failing_for_now_does_not_stop_the_roll() {
    down_then_finished("rolling", 8678, 25, 36).unwrap();
}

proptest! {
    // Each case runs all five built-ins twice over (deploy, then the clean-up), on a paused clock.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn with_destroy_down_every_builtin_succeeds_with_leftovers_that_resume_finishes(
        seed in 1u64..10_000,
        machines in 1usize..=30,
        error_pct in 0u8..=40,
    ) {
        for strategy in BUILTINS {
            down_then_finished(strategy, seed, machines, error_pct)?;
        }
    }
}
