//! Each built-in strategy's virtual deploy time on the simulator against its theoretical lower bound.
//!
//! The run: a 1,000-machine fleet in three regions (ams, iad, sin), one process group, seed 5,
//! concurrency 64, the default latency model (API 20–150 ms, boot 1–4 s, stop 0.2–1.5 s, connections
//! lasting 2–90 s once cordoned, 4 per machine), one HTTP check with the example app's grace period
//! (5 s) and interval (10 s), `max_unavailable = 0.33`, `wait_timeout = 5m`, `kill_timeout = 5s`, every
//! strategy parameter at its default. `CUTOVER_BENCH_MACHINES` and `CUTOVER_BENCH_SEED` change the
//! fleet size and the seed; `CUTOVER_BENCH_CONCURRENCY` the host's operation slots (the bounds follow),
//! to see how much of a gap the slots make.
//!
//! The time is the virtual time from the strategy's first host call to its return (what the CLI reports
//! as the deploy's duration, less the driver's own `list` before and after, about 0.15 s).
//!
//! The bound is the shortest time any strategy with the same semantics and parameters could take on
//! this run's draws. The simulator keys every draw by what it is a draw of (machine i's first update,
//! its first stop and boot, its check phase, its connections' lifetimes), so any such strategy makes
//! the operations its semantics require and gets the same draws for them; the bound prices each at
//! that draw. It counts the host's constraints: one call at a time, at most 64 round trips of a call at
//! once, so a call lasts at least `batch(l) = max(max l_i, Σ l_i / 64)`. Per strategy, with `h_i` the
//! time from machine i's start to its first passing check:
//!
//! - immediate: `list + batch(update_i)`.
//! - rolling: `list`, then per process group one window of `max_unavailable` (330 machines here):
//!   the machines enter it in the order listed, each as soon as a lane frees and the slots allow its
//!   cordon, and hold their lane for `cordon_i + update_i + stop_i + boot_i + h_i + uncordon_i`. Printed
//!   beside it, the bound for a strategy that knew every duration beforehand and picked the order
//!   (the lanes filled exactly), which no strategy learning the draws as they happen can expect to reach.
//! - bluegreen: green up, `list + max(max_k [create_(k) + boot_k + h_k], batch(create))` over the
//!   clones (the k-th clone id is created no earlier than the k-th shortest create), then the switch
//!   (one call giving the new release 100% of new connections), and per blue machine stop, seen
//!   stopped, destroy.
//! - canary: green up for the canary (it takes its share from its first passing check; the weights
//!   and its uncordon are set while it boots), then per step
//!   the weight, the pause (1 min) and the gate, then the weights cleared and the promotion (rolling's
//!   bound for its window), then the canary out; calls on no machine at the minimum of `latency.api`.
//! - drain-then-destroy: green up and the switch as bluegreen; each blue machine is idle no earlier
//!   than the switch plus its longest connection's lifetime (or `drain_timeout`), then it is counted (a count
//!   may be one request for many machines), stopped and destroyed.
//!
//! `tests/support/bounds.rs` has the arithmetic, BENCHMARKS.md the derivation and the results.
//!
//! Run: `cargo bench -p cutover --bench strategies`.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::bounds::{Model, canary_shape, duration_param, update_calls};
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
    let concurrency: usize = env_or("CUTOVER_BENCH_CONCURRENCY", 64);
    let scenario = format!(
        "seed = {seed}\nconcurrency = {concurrency}\n[fleet]\nmachines = {machines}\nregions = [\"ams\", \"iad\", \
         \"sin\"]"
    );
    let runtime = runtime();
    println!(
        "{machines} machines, 3 regions, seed {seed}, concurrency {concurrency}, checks grace 5 s / interval 10 s"
    );
    println!("{:<20} {:>12} {:>10} {:>7} {:>12}", "strategy", "virtual time", "bound", "ratio", "real time");
    let only = std::env::var("CUTOVER_BENCH_ONLY").ok();
    for strategy in
        STRATEGIES.into_iter().filter(|s| only.as_deref().is_none_or(|o| o.split(',').any(|o| o == *s)))
    {
        let rt = paused_runtime();
        let (took, bound, any_order, real) = rt.block_on(async {
            let world = world(&scenario);
            // Read before the run: blue's connections and the ids clones will get belong to the fleet
            // as it starts.
            let blue: Vec<String> = world.snapshot(APP).into_iter().map(|m| m.id).collect();
            let lifetimes: Vec<Vec<Duration>> =
                blue.iter().map(|id| world.connection_lifetimes(id)).collect();
            let model = Model::new(&world, concurrency);
            let opts = RunOptions { concurrency, ..Default::default() };
            let (virtual_start, real_start) = (tokio::time::Instant::now(), Instant::now());
            let run = run_on_sim(&runtime, builtin(strategy), world.clone(), opts).await;
            let (took, real) = (virtual_start.elapsed(), real_start.elapsed());
            assert!(matches!(run.result, Ok(Ok(()))), "{strategy}: {:?}", run.result);

            // Rolling's bound is for a strategy taking the machines in the order listed; printed
            // beside it, the one for a strategy that knew every duration beforehand.
            let any_order = (strategy == "rolling").then(|| model.rolling_any_order(&update_calls(&run)));
            let bound = match strategy {
                "immediate" => model.immediate(&blue),
                "rolling" => model.rolling(&update_calls(&run)),
                "bluegreen" => model.bluegreen(&blue),
                "canary" => {
                    let shape = canary_shape(&runtime, 1).await;
                    model.canary(&shape, &blue, &update_calls(&run))
                }
                "drain-then-destroy" => {
                    let timeout = duration_param(&runtime, strategy, "drain_timeout").await;
                    model.drain(&blue, &lifetimes, timeout)
                }
                _ => unreachable!(),
            };
            (took, bound, any_order, real)
        });
        println!(
            "{strategy:<20} {:>12} {:>10} {:>6.2}x {:>9.0} ms",
            secs(took),
            secs(bound),
            took.as_secs_f64() / bound.as_secs_f64(),
            real.as_secs_f64() * 1000.0
        );
        if let Some(any_order) = any_order {
            println!(
                "{:<20} {:>12} {:>10} {:>6.2}x   (any order, every duration known beforehand)",
                "",
                "",
                secs(any_order),
                took.as_secs_f64() / any_order.as_secs_f64()
            );
        }
        assert!(
            took >= bound,
            "{strategy} took {took:?}, below its lower bound {bound:?}: the bound is wrong"
        );
    }
}
