//! Each built-in strategy's virtual deploy time on the simulator against its theoretical lower bound.
//!
//! The run: a 1,000-machine fleet in three regions (ams, iad, sin), one process group, seed 5,
//! concurrency 64, the default latency model (API 20–150 ms, boot 1–4 s, stop 0.2–1.5 s, connections
//! lasting 2–90 s once cordoned, 4 per machine), one HTTP check with the example app's grace period
//! (5 s) and interval (10 s), `max_unavailable = 0.33`, `wait_timeout = 5m`, `kill_timeout = 5s`, every
//! strategy parameter at its default. `CUTOVER_BENCH_MACHINES` and `CUTOVER_BENCH_SEED` change the
//! fleet size and the seed.
//!
//! The time is the virtual time from the strategy's first host call to its return (what the CLI reports
//! as the deploy's duration, less the driver's own `list` before and after, about 0.15 s).
//!
//! The bound is the shortest time any strategy with the same semantics and parameters could take on
//! this run's latency model. It takes every draw that depends on the calls a strategy makes (API round
//! trips, stop and boot times) at the minimum of its range, and every draw fixed by the seed and the
//! machine (when a machine's checks first report after a boot: grace period plus its phase within an
//! interval; how long each connection lasts once its machine is cordoned) as the simulator draws it.
//! It counts the host's constraints: one call at a time, `⌈n/64⌉` waves of round trips for a call on n
//! machines. Per strategy, with `a` = 20 ms, `s` = 200 ms, `b` = 1 s and `h_i` the time from machine
//! i's start to its first passing check:
//!
//! - immediate: `a + ⌈n/64⌉·a` (list, one update of every machine).
//! - rolling: `a + Σ_batches max(max_k [2a·(⌊k/64⌋+1) + s + b + h_k] + a, ⌈3n_b/64⌉·a)`: each batch
//!   (as planned from `max_unavailable`, 330 machines here) starts once the previous one is back, its
//!   machines are cordoned and updated in waves (the slowest-to-check first), stop, boot, pass their
//!   first check, and the last is uncordoned.
//! - bluegreen: green up, `a + max_k [a·(⌊k/64⌋+1) + b + h_k]` over the clones, then the switch and
//!   retirement, five operations per machine (green in, blue out, stop, seen stopped, destroy):
//!   `max(⌈5n/64⌉·a, ⌈n/64⌉·a + 3a + s)`.
//! - canary: green up for the canary, its weight pinned to 0 and the canary in rotation, then per step
//!   the weight, the pause (1 min) and the gate (the canary's checks and two stats calls), then the
//!   promotion (rolling's bound per batch, plus setting the weights before each), then the canary out
//!   (weights, cordon, stop, `s`, destroy) and the weights cleared.
//! - drain-then-destroy: green up and switched as bluegreen; each blue machine is idle no earlier than
//!   its cordon plus its longest connection's lifetime (or `drain_timeout`), connection counts are one
//!   machine per call, so the k-th idle count, machines in order of when they drain, ends no earlier
//!   than `t_k = max(t_{k-1} + a, L_k)`; the last machine is then stopped and destroyed (`a + s + a`).
//!
//! `tests/support/bounds.rs` has the arithmetic, BENCHMARKS.md the derivation and the results.
//!
//! Run: `cargo bench -p cutover --bench strategies`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::bounds::{Model, canary_shape, duration_param, update_batches};
use support::*;

const STRATEGIES: [&str; 5] = ["immediate", "rolling", "bluegreen", "canary", "drain-then-destroy"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let machines: usize = env_or("CUTOVER_BENCH_MACHINES", 1000);
    let seed: u64 = env_or("CUTOVER_BENCH_SEED", 5);
    let concurrency = 64;
    let scenario = format!(
        "seed = {seed}\nconcurrency = {concurrency}\n[fleet]\nmachines = {machines}\nregions = [\"ams\", \"iad\", \
         \"sin\"]"
    );
    let runtime = runtime();
    println!(
        "{machines} machines, 3 regions, seed {seed}, concurrency {concurrency}, checks grace 5 s / interval 10 s"
    );
    println!("{:<20} {:>12} {:>10} {:>7} {:>12}", "strategy", "virtual time", "bound", "ratio", "real time");
    for strategy in STRATEGIES {
        let rt = paused_runtime();
        let (took, bound, real) = rt.block_on(async {
            let world = world(&scenario);
            // Read before the run: blue's connections and the ids clones will get belong to the fleet
            // as it starts.
            let blue: Vec<String> = world.snapshot(APP).into_iter().map(|m| m.id).collect();
            let lifetimes: Vec<Vec<Duration>> =
                blue.iter().map(|id| world.connection_lifetimes(id)).collect();
            let opts = RunOptions { concurrency, ..Default::default() };
            let (virtual_start, real_start) = (tokio::time::Instant::now(), Instant::now());
            let run = run_on_sim(&runtime, builtin(strategy), world.clone(), opts).await;
            let (took, real) = (virtual_start.elapsed(), real_start.elapsed());
            assert!(matches!(run.result, Ok(Ok(()))), "{strategy}: {:?}", run.result);

            let model = Model::new(&world, concurrency);
            let bound = match strategy {
                "immediate" => model.immediate(blue.len()),
                "rolling" => model.rolling(&update_batches(&run)),
                "bluegreen" => model.bluegreen(blue.len()),
                "canary" => {
                    let shape = canary_shape(&runtime, 1).await;
                    model.canary(&shape, &update_batches(&run))
                }
                "drain-then-destroy" => {
                    let timeout = duration_param(&runtime, strategy, "drain_timeout").await;
                    model.drain(&blue, &lifetimes, timeout)
                }
                _ => unreachable!(),
            };
            (took, bound, real)
        });
        println!(
            "{strategy:<20} {:>12} {:>10} {:>6.2}x {:>9.0} ms",
            secs(took),
            secs(bound),
            took.as_secs_f64() / bound.as_secs_f64(),
            real.as_secs_f64() * 1000.0
        );
        assert!(
            took >= bound,
            "{strategy} took {took:?}, below its lower bound {bound:?}: the bound is wrong"
        );
    }
}
