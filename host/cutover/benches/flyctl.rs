//! The built-ins against flyctl's own deploy algorithms, on the same simulated fleets.
//!
//! flyctl's rolling, bluegreen and canary are written as a benchmark strategy from flyctl's source
//! (`tests/guests/flyctl`, a component against the same contract, never shipped): each pair runs on the
//! same scenario — 3 regions, seed 5, concurrency 64, the default latency model, the example app's check
//! (grace 5 s, interval 10 s), `max_unavailable = 0.33`, `wait_timeout = 5m` — at 10, 100, 1,000 and
//! 10,000 machines, with a healthy release and with one whose machines boot but fail their checks.
//!
//! Two figures per run, both in virtual time from the strategy's first host call:
//!
//! - **deploy**: until the strategy returns (done, or failed and cleaned up as it cleans up);
//! - **first traffic**: the first instant the new release gets a share of new requests (a machine on
//!   it started, passing, uncordoned, and weighted above 0 when weights are set). A task polls the
//!   simulated proxy's split every 20 ms of virtual time until then (tracking samples only at changes,
//!   and a machine starts passing between them), so it is exact to 20 ms. Not probed for the failing
//!   release, whose machines never pass their checks and so never serve.
//!
//! For flyctl's canary the table also gives its **first new machine**: when its canary machine exists
//! (its `clone-from` returned), the figure the canary target is held to.
//!
//! flyctl runs as its source is written (`baseline = "as-written"`: its checks polled, its pools of
//! `--max-concurrent`; see `tests/guests/flyctl`). `CUTOVER_FLYCTL_BASELINE=at-its-best` runs it with
//! every wait for checks ending the instant they pass and every pool one batch call instead: a bound on
//! how fast flyctl's steps could be, the stricter baseline.
//!
//! `CUTOVER_BENCH_SIZES=10,100` picks the fleet sizes, `CUTOVER_BENCH_SEED` the seed (5),
//! `CUTOVER_FLYCTL_MAX_CONCURRENT=0` lifts flyctl's `--max-concurrent` bound (8) off its pools.
//!
//! Run: `cargo bench -p cutover --bench flyctl` (the times are virtual: a debug build gives the same
//! figures, `--profile dev`).

#[path = "../../../tests/support/mod.rs"]
mod support;

use cutover::core::contract::ParamValue;
use cutover::core::events::{EventKind, HostCall, HostReply};
use std::time::Duration;
use support::*;

/// How often the first-traffic probe looks at the simulated proxy.
const PROBE: Duration = Duration::from_millis(20);

/// The built-in and the flyctl algorithm it is compared with.
const PAIRS: [(&str, &str); 3] = [("rolling", "rolling"), ("bluegreen", "bluegreen"), ("canary", "canary")];

/// What one run measured.
struct Measured {
    deploy: Duration,
    first_traffic: Option<Duration>,
    first_machine: Option<Duration>,
    ok: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("none".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".into(),
    }
}

/// Run `bytes` with `params` on a fresh world built from `scenario`, probing for the new release's first
/// traffic.
///
/// A release whose checks fail never serves in the simulator (a machine serves only while it passes), so
/// `probe = false` skips the probe there: it would read the whole fleet every 20 ms of a run that can
/// last as long as flyctl's one-by-one rollback of 10,000 machines, to find nothing.
fn measure(
    runtime: &cutover::runtime::Runtime,
    bytes: &[u8],
    scenario: &str,
    params: &[(&str, ParamValue)],
    probe: bool,
) -> Measured {
    let rt = paused_runtime();
    rt.block_on(async {
        let world = world(scenario);
        let start = tokio::time::Instant::now();
        let probe = probe.then(|| {
            let world = world.clone();
            tokio::spawn(async move {
                loop {
                    if world.traffic_shares(APP).iter().any(|&(v, share)| v == 2 && share > 0.0) {
                        return start.elapsed();
                    }
                    tokio::time::sleep(PROBE).await;
                }
            })
        });
        let mut opts = RunOptions { concurrency: 64, ..Default::default() };
        // Creating a clone of every machine, then destroying them one by one (flyctl's bluegreen
        // rollback) is a legitimate run of 2n calls and more: no limit of the run is under test here.
        opts.limits.host_calls = u64::MAX;
        for (name, value) in params {
            opts.params.insert((*name).into(), value.clone());
        }
        let run = run_on_sim(runtime, bytes, world.clone(), opts).await;
        let deploy = start.elapsed();
        let first_traffic = match probe {
            Some(probe) if probe.is_finished() => probe.await.ok(),
            Some(probe) => {
                probe.abort();
                None
            }
            None => None,
        };
        let ok = matches!(run.result, Ok(Ok(())));
        assert!(run.result.is_ok(), "the strategy trapped: {:?}", run.result);
        let first_machine =
            run.events.iter().find_map(|e| match &e.kind {
                EventKind::HostCall {
                    call: HostCall::CloneFrom { .. }, reply: HostReply::Cloned(r), ..
                } if r.iter().any(Result::is_ok) => Some(Duration::from_millis(e.at_ms)),
                _ => None,
            });
        Measured { deploy, first_traffic, first_machine, ok }
    })
}

fn main() {
    let sizes: Vec<usize> = std::env::var("CUTOVER_BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CUTOVER_BENCH_SIZES: comma-separated machine counts"))
        .collect();
    let max_concurrent: i64 = env_or("CUTOVER_FLYCTL_MAX_CONCURRENT", 8);
    let seed: u64 = env_or("CUTOVER_BENCH_SEED", 5);
    let baseline: String = env_or("CUTOVER_FLYCTL_BASELINE", "as-written".to_string());
    assert!(
        baseline == "as-written" || baseline == "at-its-best",
        "CUTOVER_FLYCTL_BASELINE: as-written or at-its-best, not {baseline:?}"
    );
    // flyctl reads the check's timings off the machine config; the contract's machine record does not
    // carry them, so the baseline gets the world's check as parameters.
    let check = http_check();
    let runtime = runtime();
    let flyctl = support::guest("flyctl");
    println!(
        "seed {seed}, 3 regions, concurrency 64, checks grace {:?} / interval {:?}, max_unavailable 0.33; \
         flyctl {baseline}, --max-concurrent {max_concurrent}",
        check.grace_period, check.interval
    );
    println!(
        "{:>6} {:<8} {:<10} {:>11} {:>11} {:>6} {:>11} {:>11} {:>6} {:>11}",
        "fleet",
        "release",
        "strategy",
        "cutover",
        "flyctl",
        "ratio",
        "1st cutover",
        "1st flyctl",
        "ratio",
        "fly 1st new"
    );
    for &machines in &sizes {
        for failing in [false, true] {
            let faults =
                if failing { format!("\n[faults]\nunhealthy_images = [\"{V2}\"]") } else { String::new() };
            let scenario = format!(
                "seed = {seed}\nconcurrency = 64\n[fleet]\nmachines = {machines}\nregions = [\"ams\", \"iad\", \
                 \"sin\"]{faults}"
            );
            for (builtin_name, algorithm) in PAIRS {
                let ours = measure(&runtime, builtin(builtin_name), &scenario, &[], !failing);
                let theirs = measure(
                    &runtime,
                    &flyctl,
                    &scenario,
                    &[
                        ("algorithm", ParamValue::Text(algorithm.into())),
                        ("max_concurrent", ParamValue::Integer(max_concurrent)),
                        ("baseline", ParamValue::Text(baseline.clone())),
                        ("check_grace_ms", ParamValue::Integer(check.grace_period.as_millis() as i64)),
                        ("check_interval_ms", ParamValue::Integer(check.interval.as_millis() as i64)),
                    ],
                    !failing,
                );
                // A healthy release must deploy on both sides, a failing one must fail on both: else
                // the two runs are not the same deploy and their times say nothing.
                assert_eq!(ours.ok, !failing, "{builtin_name} on {machines} machines (failing: {failing})");
                assert_eq!(
                    theirs.ok, !failing,
                    "flyctl {algorithm} on {machines} machines (failing: {failing})"
                );
                println!(
                    "{machines:>6} {:<8} {builtin_name:<10} {:>11} {:>11} {:>6} {:>11} {:>11} {:>6} {:>11}",
                    if failing { "failing" } else { "healthy" },
                    secs(Some(ours.deploy)),
                    secs(Some(theirs.deploy)),
                    ratio(Some(ours.deploy), Some(theirs.deploy)),
                    secs(ours.first_traffic),
                    secs(theirs.first_traffic),
                    ratio(ours.first_traffic, theirs.first_traffic),
                    if algorithm == "canary" { secs(theirs.first_machine) } else { "-".into() },
                );
            }
        }
    }
}
