//! Lower bounds on a deploy's virtual time under the simulator's latency model: the shortest time any
//! strategy with the same semantics and parameters could take on this run's draws. `host/cutover/
//! benches/strategies.rs` prints them beside the built-ins' times; `tests/strategies.rs` checks that no run
//! ever beats one. BENCHMARKS.md explains each bound in prose; this is the arithmetic.
//!
//! Every bound rests on three facts of the host and the simulator:
//!
//! - A strategy makes one host call at a time (the contract's calls block), and the host runs a call
//!   on n machines at most `C` (concurrency) at once. Every machine operation starts with one API
//!   round trip and its effect happens when that round trip ends. So a call whose n round trips take
//!   `l_1..l_n` lasts at least `max(max_i l_i, Σ_i l_i / C)` ([`Model::batch`]), and work that must
//!   happen in turn on one machine adds up along it.
//! - Every draw is fixed by the seed and what it is a draw of (`cutover::sim::model`): the
//!   first `update machine` of machine i, its first stop and boot, the phase of its checks, its
//!   connections' lifetimes. Each operation the semantics require is priced at the time this run drew
//!   for it: any strategy with the same semantics makes that operation and gets that draw. Calls on no
//!   machine are numbered per app: the strategy's first `list` is the world's first (the test harness
//!   calls the platform only through the strategy), and the others (traffic weights and stats, which
//!   a strategy may make more of than it needs) are priced at the minimum of `latency.api` (`a`).
//! - A machine passes its checks at its first check result after it started: `h = grace + φ·interval`,
//!   `φ ∈ [0, 1)` its phase (then every interval; a healthy release passes the first one).
//!
//! Clones get their ids in the order their creations complete, so the k-th id of
//! [`SimWorld::next_ids`] belongs to a machine created no earlier than the k-th shortest of the create
//! calls' round trips.
//!
//! The bounds are for a deploy that succeeds without faults, of a fleet whose machines are all running
//! (no stopped machines, which no strategy waits on), on one stable release, with a kill timeout no
//! shorter than the longest stop the model draws.

use super::{SimRun, builtin};
use cutover::core::contract::ParamValue;
use cutover::core::events::{EventKind, HostCall};
use cutover::runtime::Runtime;
use cutover::sim::SimWorld;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// The app the bounds' machines belong to.
const APP: &str = super::APP;

/// The latency model of one world, its draws, and the host's concurrency.
pub struct Model<'w> {
    world: &'w SimWorld,
    /// An API round trip on no machine, at least (the minimum of `latency.api`).
    pub a: Duration,
    /// Machines one call changes at once.
    pub c: usize,
    /// The ids the world's next machines will get, read before the deploy (clones take them).
    next_ids: Vec<String>,
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

impl<'w> Model<'w> {
    /// The model of `world` with the host running `concurrency` operations per call. Build it before
    /// the deploy: it reads the ids the deploy's clones will get.
    pub fn new(world: &'w SimWorld, concurrency: usize) -> Self {
        let a = Duration::from_millis(world.scenario().latency.api[0]);
        let next_ids = world.next_ids(APP, world.snapshot(APP).len());
        Self { world, a, c: concurrency.max(1), next_ids }
    }

    /// The ids of the first `n` machines the deploy creates, in creation order.
    fn clones(&self, n: usize) -> &[String] {
        &self.next_ids[..n.min(self.next_ids.len())]
    }

    /// The strategy's first `list`: the world's first.
    fn list(&self) -> Duration {
        self.world.api_latency(APP, "list machines", 1)
    }

    /// The first API call `what` on machine `id`, as drawn.
    fn op(&self, id: &str, what: &str) -> Duration {
        self.world.api_latency(id, what, 1)
    }

    /// The first call `what` on each of `ids`, as drawn.
    fn ops(&self, ids: &[String], what: &str) -> Vec<Duration> {
        ids.iter().map(|id| self.op(id, what)).collect()
    }

    /// Round trips of these lengths, at most `C` at once: no sooner than the longest, nor than their
    /// sum shared by `C`.
    pub fn batch(&self, trips: &[Duration]) -> Duration {
        let longest = trips.iter().copied().max().unwrap_or_default();
        longest.max(trips.iter().sum::<Duration>() / self.c as u32)
    }

    /// From its first start to its first passing check: machine `id`'s first boot and check phase.
    fn boot_to_healthy(&self, id: &str) -> Duration {
        self.world.boot_time(id, 1) + self.world.check_delay(id, 1)
    }

    /// immediate: `list`, then one update of every machine, no waits.
    ///
    /// `list + batch(update_i)`.
    pub fn immediate(&self, blue: &[String]) -> Duration {
        self.list() + self.batch(&self.ops(blue, "update machine"))
    }

    /// One call that moves machines in place and waits on them (a rolling batch, or a windowed
    /// pipeline over a whole process group), measured from the moment the previous one returned (the
    /// calls block): the bound for any order ([`Model::rolling_call_any_order`]), and with a window
    /// (rolling's semantics: the machines in the order listed, `max_unavailable` at a time) the
    /// machines entering its lanes in turn ([`Model::in_order`]). A batch has no order to keep.
    pub fn rolling_call(&self, call: &UpdateCall) -> Duration {
        let any_order = self.rolling_call_any_order(call);
        if call.window >= call.ids.len() {
            return any_order;
        }
        any_order.max(self.in_order(&call.ids, call.window))
    }

    /// The same call for a strategy that knew every machine's durations beforehand and could pick
    /// the order.
    ///
    /// Each machine is cordoned then updated, stops, boots, passes its first check and is uncordoned,
    /// in turn; the call's 3n round trips share the `C` slots; and a machine is out of service from
    /// the end of its cordon to the end of its uncordon, at most `window` at once (`max_unavailable`),
    /// so those stretches, added up, fill `window` lanes after the first cordon.
    ///
    /// `max( max_i [cordon_i + out_i],  batch(all 3n),  min_i cordon_i + Σ_i out_i / window )`, with
    /// `out_i = update_i + stop_i + boot_i + h_i + uncordon_i`. With `window = n` (a batch), the last
    /// term never exceeds the first.
    pub fn rolling_call_any_order(&self, call: &UpdateCall) -> Duration {
        let ids = &call.ids;
        let out = |id: &String| self.out_of_service(id);
        let chain = ids.iter().map(|id| self.op(id, "cordon machine") + out(id)).max().unwrap_or_default();
        let first_cordon = ids.iter().map(|id| self.op(id, "cordon machine")).min().unwrap_or_default();
        let lanes = first_cordon + ids.iter().map(out).sum::<Duration>() / call.window.max(1) as u32;
        let mut trips = self.ops(ids, "cordon machine");
        trips.extend(self.ops(ids, "update machine"));
        trips.extend(self.ops(ids, "uncordon machine"));
        chain.max(self.batch(&trips)).max(lanes)
    }

    /// `out_i`: machine `id` out of service at least, from its cordon's answer to its uncordon's.
    fn out_of_service(&self, id: &str) -> Duration {
        self.op(id, "update machine")
            + self.world.stop_time(id, 1)
            + self.boot_to_healthy(id)
            + self.op(id, "uncordon machine")
    }

    /// Machines entering `window` lanes in the order listed, each next one as soon as a lane frees,
    /// and their round trips sharing the `C` slots: when the last leaves its lane.
    ///
    /// A strategy that keeps at most `window` machines out of service without knowing when the
    /// platform applies a cordon or an uncordon within its round trip counts a machine from asking for
    /// its cordon to the answer of its uncordon: machine k holds a lane for at least `cordon_k + out_k`
    /// from its entry `t_k`. One that takes the machines in the order listed (rolling's semantics, as
    /// flyctl's and Kamal's) and learns each machine's boot and check phase only as they happen lets
    /// machine k enter no sooner than
    ///
    /// - machine k − 1 entered;
    /// - a lane is free: `k − window` of the machines before it have left (the (k − window)-th earliest
    ///   exit among them);
    /// - the slots allow it: with at most `C` round trips in flight, `k − C` of the earlier cordons are
    ///   answered when k's is asked, and every machine that left made its three round trips, so
    ///   `t_k ≥ (Σ of the k − window smallest triples + Σ of the rest of the k − C smallest cordons) /
    ///   C` over the machines before k (`triple_j = cordon_j + update_j + uncordon_j`).
    ///
    /// Each constraint grows with the ones before, so entering each machine as early as they allow
    /// gives every machine its earliest entry at once: a lower bound for any such strategy.
    fn in_order(&self, ids: &[String], window: usize) -> Duration {
        let window = window.max(1);
        let mut leaving = BinaryHeap::with_capacity(window);
        let (mut cordons, mut triples) = (Smallest::default(), Smallest::default());
        let (mut enter, mut last) = (Duration::ZERO, Duration::ZERO);
        for (k, id) in ids.iter().enumerate() {
            if leaving.len() >= window
                && let Some(Reverse(free)) = leaving.pop()
            {
                enter = enter.max(free);
            }
            let left = k.saturating_sub(window);
            let answered = k.saturating_sub(self.c).saturating_sub(left);
            enter = enter.max((triples.sum(left) + cordons.sum(answered)) / self.c as u32);
            let cordon = self.op(id, "cordon machine");
            let leave = enter + cordon + self.out_of_service(id);
            last = last.max(leave);
            leaving.push(Reverse(leave));
            cordons.insert(cordon);
            triples.insert(cordon + self.op(id, "update machine") + self.op(id, "uncordon machine"));
        }
        last
    }

    /// rolling: `list`, then its calls one after the other, as the strategy made them.
    pub fn rolling(&self, calls: &[UpdateCall]) -> Duration {
        self.list() + calls.iter().map(|c| self.rolling_call(c)).sum::<Duration>()
    }

    /// rolling's bound for a strategy that knew every duration beforehand and could pick the order.
    pub fn rolling_any_order(&self, calls: &[UpdateCall]) -> Duration {
        self.list() + calls.iter().map(|c| self.rolling_call_any_order(c)).sum::<Duration>()
    }

    /// Green up: `list`, then one clone of each of `sources`; the k-th clone id is created no earlier
    /// than the k-th shortest create round trip, nor before k create round trips went through the `C`
    /// slots (at least the k shortest of them, shared by `C`), then boots and passes its first check.
    /// Traffic may switch only once every green machine passes.
    ///
    /// `list + max( max_k [max(create_(k), Σ_{j≤k} create_(j) / C) + boot_k + h_k],  batch(create_i) )`.
    fn green_passes(&self, creates: &[Duration]) -> Duration {
        let green = self.clones(creates.len());
        let mut sorted = creates.to_vec();
        sorted.sort();
        let mut through = Duration::ZERO;
        let last = sorted
            .iter()
            .zip(green)
            .map(|(create, id)| {
                through += *create;
                (*create).max(through / self.c as u32) + self.boot_to_healthy(id)
            })
            .max();
        self.list() + last.unwrap_or_default().max(self.batch(creates))
    }

    /// The switch: one call giving the target release 100% of new connections. The simulator splits
    /// traffic by weight, so green can be put in rotation at 0% while it boots (those calls are not
    /// counted: they may all fit in the boot), and blue, out of new traffic from that answer on, needs
    /// no cordon before it drains or stops (the switch by cordons, green uncordoned then blue
    /// cordoned after green passed, makes 2n round trips more).
    fn switch(&self) -> Duration {
        self.a
    }

    /// bluegreen: green up (every blue machine cloned), the switch, then per blue machine: stop, see it
    /// stopped (that call's round trip overlaps the stop), destroy. Seeing it stopped is a wait, which
    /// in a pipeline holds no slot: only the other 2n round trips share them.
    ///
    /// `green_passes + switch + max( max_j [stop_j + max(s_j, wait_j) + destroy_j],
    ///  batch(the 2n operations) )`.
    pub fn bluegreen(&self, blue: &[String]) -> Duration {
        let green = self.green_passes(&self.ops(blue, "create machine"));
        let retire = blue
            .iter()
            .map(|id| {
                self.op(id, "stop machine")
                    + self.world.stop_time(id, 1).max(self.op(id, "wait for machine"))
                    + self.op(id, "destroy machine")
            })
            .max()
            .unwrap_or_default();
        let mut trips = self.ops(blue, "stop machine");
        trips.extend(self.ops(blue, "destroy machine"));
        green + self.switch() + retire.max(self.batch(&trips))
    }

    /// drain-then-destroy: green up and the switch (as bluegreen), from which blue takes no new
    /// connection; then each blue machine's connections are counted until a count finds it idle, and
    /// only then is it stopped and destroyed.
    ///
    /// Blue machine j stops taking connections at `c = green_passes + switch` and is idle no earlier
    /// than `L_j = c + min(longest connection lifetime of j, drain_timeout)`; the count that finds it
    /// so ends no earlier than `max(L_j, c + a)` (a count may be one request for many machines, at
    /// least the API's shortest round trip); then it is stopped (`stop_j + s_j`) and destroyed. Nor
    /// can the stops and destroys of every machine take less than `batch(all)` after the switch.
    ///
    /// `green_passes + switch + max( max_j [max(L_j − c, a) + stop_j + s_j + destroy_j],
    ///  batch(all) )`.
    pub fn drain(&self, blue: &[String], lifetimes: &[Vec<Duration>], drain_timeout: Duration) -> Duration {
        let green = self.green_passes(&self.ops(blue, "create machine"));
        let last = blue
            .iter()
            .zip(lifetimes)
            .map(|(id, lives)| {
                let idle = lives.iter().copied().max().unwrap_or_default().min(drain_timeout);
                idle.max(self.a)
                    + self.op(id, "stop machine")
                    + self.world.stop_time(id, 1)
                    + self.op(id, "destroy machine")
            })
            .max()
            .unwrap_or_default();
        let mut trips = self.ops(blue, "stop machine");
        trips.extend(self.ops(blue, "destroy machine"));
        green + self.switch() + last.max(self.batch(&trips))
    }

    /// canary: `list`; clone the canaries (at best from the stable machines with the shortest create
    /// round trips), which boot and take traffic from their first passing check (the first step's
    /// weights and the uncordon are set while they boot); per
    /// step, the weight (from the second step on), `pause`, and the gate (each canary's checks, one call
    /// per canary, and the stats of the canary's release and of each stable one); then the weights
    /// cleared and the promotion, rolling's window per process group; then the canaries out (cordon,
    /// stop, stopped, destroy).
    ///
    /// `green_passes(c) + steps·(pause + (c + 1 + v)·a) + (steps − 1)·a
    ///  + a + Σ_calls rolling_call + max(⌈4c/C⌉·a, 3a + s)`, the canaries' own later calls (their
    /// n-th, not their first) at `a`, and their stop at the range's minimum `s`.
    pub fn canary(&self, shape: &CanaryShape, blue: &[String], calls: &[UpdateCall]) -> Duration {
        let c = shape.canaries;
        let mut creates = self.ops(blue, "create machine");
        creates.sort();
        creates.truncate(c);
        let up = self.green_passes(&creates);
        let gate = self.a * (c + 1 + shape.stable_versions) as u32;
        let steps = (shape.pause + gate) * shape.steps as u32 + self.a * shape.steps.saturating_sub(1) as u32;
        let promotion: Duration = self.a + calls.iter().map(|b| self.rolling_call(b)).sum::<Duration>();
        let s = Duration::from_millis(self.world.scenario().latency.stop[0]);
        let removal = (self.a * c.div_ceil(self.c) as u32 * 4).max(self.a * 3 + s);
        up + steps + promotion + removal
    }
}

/// One call of a run that updated machines in place.
pub struct UpdateCall {
    /// Its machines, in the order given.
    pub ids: Vec<String>,
    /// How many of them could be under way at once: a pipeline's window, or all of them.
    pub window: usize,
}

/// The calls of a run that update machines in place (`machines.update`, or a pipeline with an update
/// step), in order: rolling's windowed pipelines, and canary's.
pub fn update_calls(run: &SimRun) -> Vec<UpdateCall> {
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call, .. } => call.updates().map(|(ids, _)| {
                let window = match call {
                    HostCall::Pipeline { options, .. } if options.window > 0 => options.window as usize,
                    _ => ids.len(),
                };
                UpdateCall { ids: ids.to_vec(), window: window.min(ids.len()) }
            }),
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

/// The sum of the `m` smallest of a growing set of durations, for `m` that moves by a little between
/// reads: the `m` smallest kept in a max-heap, the others in a min-heap.
#[derive(Default)]
struct Smallest {
    low: BinaryHeap<Duration>,
    high: BinaryHeap<Reverse<Duration>>,
    low_sum: Duration,
}

impl Smallest {
    fn insert(&mut self, d: Duration) {
        match self.low.peek() {
            Some(&top) if d < top => {
                self.low.push(d);
                self.low_sum += d;
                let moved = self.low.pop().expect("just pushed");
                self.low_sum -= moved;
                self.high.push(Reverse(moved));
            }
            _ => self.high.push(Reverse(d)),
        }
    }

    /// The sum of the `m` smallest (of all of them, if fewer).
    fn sum(&mut self, m: usize) -> Duration {
        while self.low.len() > m {
            let d = self.low.pop().expect("not empty");
            self.low_sum -= d;
            self.high.push(Reverse(d));
        }
        while self.low.len() < m
            && let Some(Reverse(d)) = self.high.pop()
        {
            self.low.push(d);
            self.low_sum += d;
        }
        self.low_sum
    }
}

#[test]
fn smallest_sums_the_m_smallest_of_what_was_inserted() {
    let mut smallest = Smallest::default();
    let mut all = Vec::new();
    // A fixed scramble of 0..97 ms, read back at sizes that grow, stay and shrink.
    for (i, m) in (0..97u64).zip([0, 1, 1, 2, 5, 3, 3, 8, 20, 19].into_iter().cycle()) {
        let d = Duration::from_millis((i * 37) % 97);
        smallest.insert(d);
        all.push(d);
        all.sort();
        let m = (m + i as usize / 2).min(all.len() + 2);
        let want: Duration = all.iter().take(m).sum();
        assert_eq!(smallest.sum(m), want, "after {} inserts, the {m} smallest", i + 1);
    }
}
