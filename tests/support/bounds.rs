//! Lower bounds on a deploy's virtual time under the simulator's latency model: the shortest time any
//! strategy with the same semantics and parameters could take. `host/benches/strategies.rs` prints them
//! beside the built-ins' times; `tests/strategies.rs` checks that no run ever beats one. BENCHMARKS.md
//! explains each bound in prose; this is the arithmetic.
//!
//! Every bound rests on three facts of the host and the simulator:
//!
//! - A strategy makes one host call at a time (the contract's calls block), and the host runs a call
//!   on n machines at most `C` (concurrency) at once. Every machine operation starts with one API round
//!   trip of at least `a` (the minimum of `latency.api`), and its effect happens when that round trip
//!   ends. So a call on n machines lasts at least `⌈n/C⌉·a`, and when each machine needs `k` calls in
//!   turn (cordon then update), the j-th wave of `C` machines is through no earlier than `k·a·(j+1)`.
//! - Draws that depend on the calls a strategy makes (API, stop and boot times) are taken at the
//!   minimum of their range: `a`, `s` (`latency.stop`) and `b` (`latency.boot`). Draws fixed by the seed
//!   and the machine (when its checks first report after a boot, how long its connections last once
//!   cordoned) are taken as drawn, from `SimWorld::check_delay` and `SimWorld::connection_lifetimes`.
//! - A machine passes its checks at its first check result after it started: `h = grace + φ·interval`,
//!   `φ ∈ [0, 1)` its phase (then every interval; a healthy release passes the first one).
//!
//! Where a step must wait for the slowest of n machines, the bound lets the machines with the longest
//! tail (boot and check delay) go first, which is the order that makes the slowest one finish earliest.
//!
//! The bounds are for a deploy that succeeds without faults, of a fleet whose machines are all running
//! (no stopped machines, which no strategy waits on), on one stable release.

use super::{SimRun, builtin};
use cutover::contract::ParamValue;
use cutover::events::{EventKind, HostCall};
use cutover::platform::sim::SimWorld;
use cutover::runtime::Runtime;
use std::time::Duration;

/// The latency model of one world, at the minimum of each range, and the host's concurrency.
pub struct Model<'w> {
    world: &'w SimWorld,
    /// One API round trip, at least.
    pub a: Duration,
    /// From the stop signal to stopped, at least.
    pub s: Duration,
    /// From start to started, at least.
    pub b: Duration,
    /// Machines one call changes at once.
    pub c: usize,
}

/// The parts of a canary deploy its bound depends on.
pub struct CanaryShape {
    /// Canary machines (`canary_count` per process group).
    pub canaries: usize,
    /// Traffic steps, each held for `pause`.
    pub steps: usize,
    pub pause: Duration,
    /// Stable releases whose stats each gate reads (besides the canary's).
    pub stable_versions: usize,
}

/// Milliseconds as a `Duration`.
fn ms([lo, _]: [u64; 2]) -> Duration {
    Duration::from_millis(lo)
}

impl<'w> Model<'w> {
    /// The model of `world` with the host running `concurrency` operations per call.
    pub fn new(world: &'w SimWorld, concurrency: usize) -> Self {
        let latency = &world.scenario().latency;
        Self { world, a: ms(latency.api), s: ms(latency.stop), b: ms(latency.boot), c: concurrency.max(1) }
    }

    /// `⌈n/C⌉`: the waves of one call on n machines.
    fn waves(&self, n: usize) -> u32 {
        n.div_ceil(self.c) as u32
    }

    /// A call (or calls of one kind) on n machines: `⌈n/C⌉·a`.
    pub fn call(&self, n: usize) -> Duration {
        self.a * self.waves(n)
    }

    /// When the last of some machines is through, each needing `calls` calls in turn before its `tail`
    /// (boot, checks) runs on its own: the machines with the longest tails go in the first waves.
    fn slowest(&self, mut tails: Vec<Duration>, calls: u32) -> Duration {
        tails.sort_by(|x, y| y.cmp(x));
        tails
            .iter()
            .enumerate()
            .map(|(k, tail)| self.a * calls * (k / self.c + 1) as u32 + *tail)
            .max()
            .unwrap_or_default()
    }

    /// From start to first passing check, for the first boot of each of `ids` during the deploy.
    fn healthy_after_boot(&self, ids: &[String]) -> Vec<Duration> {
        ids.iter().map(|id| self.b + self.world.check_delay(id, 1)).collect()
    }

    /// immediate: `list`, then one update of every machine, no waits.
    ///
    /// `a + ⌈n/C⌉·a`.
    pub fn immediate(&self, n: usize) -> Duration {
        self.a + self.call(n)
    }

    /// One rolling batch of machines updated in place and waited on, measured from the moment the
    /// previous batch is back in service (the batch may not start earlier without exceeding
    /// `max_unavailable`).
    ///
    /// Each machine is cordoned then updated (two calls), stops (`s`), boots (`b`) and passes its first
    /// check (`h`); the batch is over once the last one is uncordoned (one more round trip after it
    /// passes: the others can be uncordoned while it is still booting). And the batch's 3n operations
    /// (cordon, update, uncordon) take `⌈3n/C⌉·a` whatever the order.
    ///
    /// `max( max_k [2a·(⌊k/C⌋+1) + s + b + h_k] + a,  ⌈3n/C⌉·a )`, k over the batch by descending h.
    pub fn rolling_batch(&self, ids: &[String]) -> Duration {
        let tails = self.healthy_after_boot(ids).into_iter().map(|t| self.s + t).collect();
        (self.slowest(tails, 2) + self.a).max(self.call(3 * ids.len()))
    }

    /// rolling: `list`, then the batches one after the other (as the strategy planned them from
    /// `max_unavailable`).
    pub fn rolling(&self, batches: &[Vec<String>]) -> Duration {
        self.a + batches.iter().map(|b| self.rolling_batch(b)).sum::<Duration>()
    }

    /// Green up: `list`, then one clone per blue machine; each clone boots (`b`) and passes its first
    /// check (`h`, keyed by the ids clones will get). Traffic may switch only once every green machine
    /// passes.
    ///
    /// `a + max_k [a·(⌊k/C⌋+1) + b + h_k]`, k over the clones by descending h.
    pub fn green_passes(&self, blue: usize) -> Duration {
        let green = self.world.next_ids(super::APP, blue);
        self.a + self.slowest(self.healthy_after_boot(&green), 1)
    }

    /// bluegreen: green up, then per machine: uncordon green (every green before any blue is cordoned,
    /// so traffic switches in one step), cordon blue, stop blue, see it stopped, destroy it: five
    /// operations per machine, and for the last one at least `⌈n/C⌉·a` (green in) `+ 3a + s`.
    ///
    /// `green_passes + max( ⌈5n/C⌉·a,  ⌈n/C⌉·a + 3a + s )`.
    pub fn bluegreen(&self, blue: usize) -> Duration {
        let after = self.call(5 * blue).max(self.call(blue) + self.a * 3 + self.s);
        self.green_passes(blue) + after
    }

    /// drain-then-destroy: green up and switched (as bluegreen: every green in, then every blue out),
    /// then blue's connections are counted (one call counts many machines) until a count finds each
    /// machine idle; only then is it stopped, seen stopped and destroyed.
    ///
    /// Blue machine i is cordoned no earlier than `c₀ = green_passes + ⌈n/C⌉·a + a`, so it is idle no
    /// earlier than `L_i = c₀ + min(longest connection lifetime of i, drain_timeout)`. The count that
    /// finds the last machine idle ends no earlier than `max(t₀ + a, max_i L_i)`, from
    /// `t₀ = green_passes + ⌈2n/C⌉·a` (the switch); that machine then needs a stop, its stop time and a
    /// destroy. Nor can counting every machine once and the 3n retirement operations take less than
    /// `⌈n/C⌉·a + ⌈3n/C⌉·a` after the switch.
    ///
    /// `max( max(t₀ + a, max_i L_i) + a + s + a,  t₀ + ⌈n/C⌉·a + ⌈3n/C⌉·a )`.
    pub fn drain(&self, blue: &[String], lifetimes: &[Vec<Duration>], drain_timeout: Duration) -> Duration {
        let n = blue.len();
        let green = self.green_passes(n);
        let cordoned = green + self.call(n) + self.a;
        let last_idle = lifetimes
            .iter()
            .map(|l| cordoned + l.iter().copied().max().unwrap_or_default().min(drain_timeout))
            .max()
            .unwrap_or(cordoned);
        let switched = green + self.call(2 * n);
        let counted = (switched + self.a).max(last_idle);
        (counted + self.a + self.s + self.a).max(switched + self.call(n) + self.call(3 * n))
    }

    /// canary: `list`; clone the canaries, which boot and pass their checks (as green does); set the
    /// canary's weight to 0 and put the canaries in rotation; per step, set the weight, hold it for
    /// `pause` and read the gate (each canary's checks, one call per canary, and the stats of the
    /// canary's release and of each stable one); then the promotion, rolling's batches with the weights
    /// set before each; then the canaries out (weights, cordon, stop, stopped, destroy) and the weights
    /// cleared.
    ///
    /// `green_passes(c) + a + ⌈c/C⌉·a + steps·(a + pause + (c + 1 + v)·a)
    ///  + Σ_batches (a + rolling_batch) + a + max(⌈4c/C⌉·a, 3a + s) + a`.
    pub fn canary(&self, shape: &CanaryShape, batches: &[Vec<String>]) -> Duration {
        let c = shape.canaries;
        let up = self.green_passes(c) + self.a + self.call(c);
        let gate = self.a * (c + 1 + shape.stable_versions) as u32;
        let steps = (self.a + shape.pause + gate) * shape.steps as u32;
        let promotion: Duration = batches.iter().map(|b| self.a + self.rolling_batch(b)).sum();
        let removal = self.a + self.call(4 * c).max(self.a * 3 + self.s) + self.a;
        up + steps + promotion + removal
    }
}

/// The machines of each `machines.update` call of a run, in order: the batches as the strategy planned
/// them (rolling's, and canary's promotion).
pub fn update_batches(run: &SimRun) -> Vec<Vec<String>> {
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Update { ids, .. }, .. } => Some(ids.clone()),
            _ => None,
        })
        .collect()
}

/// The default of a built-in strategy's parameter, as its `describe()` gives it.
pub async fn default_param(runtime: &Runtime, strategy: &str, name: &str) -> ParamValue {
    let component = runtime.load(builtin(strategy)).expect("load strategy");
    let info = runtime.describe(&component).await.expect("describe");
    info.params
        .into_iter()
        .find(|p| p.name == name)
        .and_then(|p| p.default)
        .expect("a parameter with a default")
}

/// A duration parameter's default.
pub async fn duration_param(runtime: &Runtime, strategy: &str, name: &str) -> Duration {
    match default_param(runtime, strategy, name).await {
        ParamValue::DurationMs(ms) => Duration::from_millis(ms),
        other => panic!("{strategy}: `{name}` is {other:?}, not a duration"),
    }
}

/// The shape of a canary deploy with the strategy's defaults, on a fleet of `groups` process groups on
/// one stable release.
pub async fn canary_shape(runtime: &Runtime, groups: usize) -> CanaryShape {
    let count = match default_param(runtime, "canary", "canary_count").await {
        ParamValue::Integer(n) => n as usize,
        other => panic!("canary_count is {other:?}"),
    };
    let steps = match default_param(runtime, "canary", "steps").await {
        ParamValue::Integers(steps) => steps.len(),
        other => panic!("steps is {other:?}"),
    };
    CanaryShape {
        canaries: count * groups,
        steps,
        pause: duration_param(runtime, "canary", "step_pause").await,
        stable_versions: 1,
    }
}
