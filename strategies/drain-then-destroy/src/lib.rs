//! The drain-then-destroy strategy: bluegreen, except that an old machine is retired only once its
//! connections have drained.
//!
//! Up to the switch it is bluegreen. Blue is every machine not yet on the target release. Each blue
//! machine gets a green clone on the target release, kept out of traffic while it boots. Once every
//! green machine is started and passing its checks, traffic switches in one step: where the platform
//! splits traffic by weight, one call gives the target release 100% (green was put in rotation at 0%
//! while it booted); elsewhere green is uncordoned first and blue cordoned second, so there is never an
//! instant with nothing in rotation (see `cutover_sdk::green`). Any failure up to the switch is undone
//! by destroying green: blue was never touched and keeps serving exactly as before.
//!
//! The difference is what happens to blue. Out of rotation (cordoned, or its release at 0%), a machine
//! takes no new connections but keeps the ones it has: WebSockets, streams, long polls, database-style
//! TCP sessions. Bluegreen stops blue right away and cuts them all; this strategy polls every blue machine's open connections each
//! `poll_interval` and stops and destroys a machine as soon as it has none, so clients of long-lived
//! connections finish their work (or reconnect on their own time, to green). A machine still holding
//! connections when `drain_timeout` has passed since the switch is stopped anyway, with the plan's kill
//! signal and timeout, and the log says how many connections that cut. The price over bluegreen is
//! running both fleets for up to `drain_timeout` longer.
//!
//! On a platform that cannot count connections, there is nothing to poll: the strategy says so, waits
//! the whole `drain_timeout` once (existing connections keep being served meanwhile) and then stops and
//! destroys all of blue, saying the number of connections cut is unknown.
//!
//! It refuses, before changing anything, what it cannot do safely: machines with volumes (a volume
//! attaches to one machine only, so a green clone could not get the data), a fleet without health
//! checks (nothing would tell a working green from a broken one; Fly refuses this too), and platforms
//! that cannot cordon (nothing would keep green out of traffic until it is ready, nor drain blue).
//!
//! A blue machine that was stopped holds no connections and is destroyed at the first poll; its green,
//! once it has proved it boots and passes its checks, is stopped right after the switch, so the fleet
//! keeps its shape. Machines already on the target release are skipped, so a deploy run again does not
//! clone them twice.

use cutover_sdk::leftover::{Todo, leave};
use cutover_sdk::pipeline::{DrainWait, StateWait, Step, StepError, StopSpec, Unfinished};
use cutover_sdk::pipeline::{every_machine, pipeline};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::{MachineState, ParamKind, ParamSpec, ParamValue};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, traffic};
use cutover_sdk::{Retry, describe_error, human};

struct DrainThenDestroy;

/// How long blue may keep connections after the switch before it is stopped anyway, by default (5 min).
const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 5 * 60_000;

/// How often blue's connections are counted, by default (1 s).
const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;

/// How many machines a log line names one by one.
const LISTED: usize = 10;

impl Guest for DrainThenDestroy {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "drain-then-destroy".into(),
            summary: "Clone every machine onto the new release, out of traffic; once all clones are \
                      started and healthy, switch traffic to them; then retire each old machine as soon \
                      as its open connections reach zero, or when drain_timeout has passed."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                ParamSpec {
                    name: "drain_timeout".into(),
                    kind: ParamKind::Duration,
                    default: Some(ParamValue::DurationMs(DEFAULT_DRAIN_TIMEOUT_MS)),
                    summary: "How long after the switch an old machine may keep its connections before it \
                              is stopped anyway."
                        .into(),
                },
                ParamSpec {
                    name: "poll_interval".into(),
                    kind: ParamKind::Duration,
                    default: Some(ParamValue::DurationMs(DEFAULT_POLL_INTERVAL_MS)),
                    summary: "How often the old machines' open connections are counted while they drain."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = Retry::for_plan(&plan);
        let drain_timeout_ms =
            cutover_sdk::params::get_duration_ms("drain_timeout", DEFAULT_DRAIN_TIMEOUT_MS);
        let poll_interval_ms =
            cutover_sdk::params::get_duration_ms("poll_interval", DEFAULT_POLL_INTERVAL_MS);
        if poll_interval_ms == 0 {
            return Err(Error::Invalid(
                "drain-then-destroy: `poll_interval` = 0: expected a duration such as \"1s\"; nothing was \
                 changed"
                    .into(),
            ));
        }
        let caps = traffic::capabilities();
        if !caps.cordon {
            return Err(Error::Unsupported(
                "drain-then-destroy keeps green out of traffic by cordoning it until it is healthy, and \
                 drains blue by cordoning it, and this platform cannot cordon machines; nothing was \
                 changed. Use strategy = \"rolling\" instead."
                    .into(),
            ));
        }
        let Some(switched) = cutover_sdk::green::bring_up("drain-then-destroy", retries, &plan, |n| {
            format!(
                "drain-then-destroy: {n} blue machine(s); creating {n} green machine(s) on v{} ({}), \
                 out of traffic until they pass their checks; blue then drains for up to {}",
                plan.target.version,
                plan.target.image,
                human(drain_timeout_ms)
            )
        })?
        else {
            return Ok(());
        };
        let blue_ids = &switched.blue_ids;
        let n = blue_ids.len();
        // The drain is measured from here: blue takes no new connection from this instant on.
        let switched_at = runtime::now();
        runtime::log(
            Level::Info,
            &format!("traffic switched: {n} green machine(s) on v{} serving", plan.target.version),
        );

        // A green standing in for a machine that was stopped goes back to stopped, now that it has proved
        // it boots and passes its checks: the fleet keeps its shape.
        let idle_green = switched.stand_ins_for_stopped();
        // Past the switch nothing fails the deploy: v2 serves, and the rest is idempotent clean-up,
        // retried for the whole budget; what the platform still refuses is left tagged.
        if let Err(failures) = cutover_sdk::stop_machines(retries, &idle_green, &plan) {
            leave(retries, &plan, &failures, Todo::Stop, "green machine(s) standing in for stopped ones");
        }

        runtime::phase("drain blue");
        let drain = Drain { retries, plan: &plan, total: n, destroyed: 0, kept: Vec::new() };
        let kept = if caps.connection_counts {
            drain.poll(blue_ids, switched_at, drain_timeout_ms, poll_interval_ms)?
        } else {
            drain.wait_out(blue_ids, drain_timeout_ms)?
        };
        switched.finish(retries, &kept);
        runtime::log(Level::Info, &format!("all {n} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// Blue's retirement after the switch: what it needs of the plan, and how far it got.
struct Drain<'a> {
    retries: Retry,
    plan: &'a DeployPlan,
    /// Blue machines in all.
    total: usize,
    /// Blue machines destroyed so far.
    destroyed: usize,
    /// Blue machines the platform would not stop or destroy: still there, left tagged.
    kept: Vec<String>,
}

impl Drain<'_> {
    /// Count every remaining blue machine's connections each `poll_interval_ms`; retire the idle ones
    /// as they are found, and every one left once `drain_timeout_ms` has passed since `switched_at`.
    /// Returns the machines still there (see [`Drain::kept`]).
    fn poll(
        mut self,
        blue: &[String],
        switched_at: u64,
        drain_timeout_ms: u64,
        poll_interval_ms: u64,
    ) -> Result<Vec<String>, Error> {
        runtime::log(
            Level::Info,
            &format!(
                "draining {} blue machine(s): each is stopped and destroyed once its connections reach 0, \
                 or after {} ({} between counts)",
                blue.len(),
                human(drain_timeout_ms),
                human(poll_interval_ms)
            ),
        );
        runtime::progress(0, self.total as u32);
        // One pipeline: each machine is counted every `poll_interval` and stopped and destroyed as
        // soon as it is idle, whatever the others do; the drain's end is the same instant for all.
        let left_ms = drain_timeout_ms.saturating_sub(runtime::now().saturating_sub(switched_at));
        let steps = [
            Step::WaitDrained(DrainWait { poll_ms: poll_interval_ms, timeout_ms: left_ms }),
            Step::Stop(StopSpec {
                signal: self.plan.kill_signal.clone(),
                timeout_ms: self.plan.kill_timeout_ms,
            }),
            Step::WaitState(StateWait {
                state: MachineState::Stopped,
                timeout_ms: self.plan.wait_timeout_ms,
            }),
            Step::Destroy,
        ];
        let unfinished = match pipeline(self.retries, blue, &steps, every_machine()) {
            Ok(()) => Unfinished::default(),
            Err(u) => u,
        };
        // Still holding connections at the drain's end (or never counted): to be cut.
        let (cut, stuck): (Vec<StepError>, Vec<StepError>) =
            unfinished.failed.into_iter().partition(|f| f.step == 0);
        let drained = blue.len() - cut.len() - stuck.len();
        self.destroyed += drained;
        runtime::progress(self.destroyed as u32, self.total as u32);
        let elapsed = runtime::now().saturating_sub(switched_at);
        runtime::log(
            Level::Info,
            &format!(
                "{drained} blue machine(s) drained within {}: stopped and destroyed (0 connections cut)",
                human(elapsed)
            ),
        );
        if !stuck.is_empty() {
            // Drained, but their stop or destroy failed past its retries: once more, then left tagged.
            let ids: Vec<String> = stuck.iter().map(|f| f.id.clone()).collect();
            self.retire(&ids, "drained")?;
        }
        if cut.is_empty() {
            return Ok(self.kept);
        }
        for f in cut.iter().filter(|f| !matches!(f.error, Error::Timeout(_))) {
            runtime::log(
                Level::Warn,
                &format!("counting the connections of {} failed: {}", f.id, describe_error(&f.error)),
            );
        }
        let ids: Vec<String> = cut.iter().map(|f| f.id.clone()).collect();
        // Counted once more, for the log: how much the stop is about to cut.
        let counts = cutover_sdk::fleet::count_connections(self.retries, &ids);
        let counted: u32 = counts.iter().filter_map(|(_, n)| n.as_ref().ok()).sum();
        let unknown = counts.iter().filter(|(_, n)| n.is_err()).count();
        // Machine by machine, the first few: a log line is no place for thousands.
        let mut each = counts
            .iter()
            .take(LISTED)
            .map(|(id, n)| match n {
                Ok(n) => format!("{id}: {n}"),
                Err(_) => format!("{id}: unknown"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if counts.len() > LISTED {
            each += &format!(", and {} more", counts.len() - LISTED);
        }
        let unknown = if unknown > 0 {
            format!(" (and the unknown count of {unknown} machine(s))")
        } else {
            String::new()
        };
        runtime::log(
            Level::Warn,
            &format!(
                "drain_timeout ({}) passed: stopping the {} blue machine(s) still holding connections, \
                 cutting {counted} connection(s){unknown} ({each})",
                human(drain_timeout_ms),
                ids.len()
            ),
        );
        self.retire(&ids, "drain_timeout passed")?;
        Ok(self.kept)
    }

    /// Without connection counts: wait the whole `drain_timeout_ms`, then retire all of blue. Returns
    /// the machines still there.
    fn wait_out(mut self, blue: &[String], drain_timeout_ms: u64) -> Result<Vec<String>, Error> {
        runtime::log(
            Level::Warn,
            &format!(
                "connection counts are unavailable on this platform: blue ({} machine(s), out of rotation) keeps \
                 its open connections for the whole drain_timeout ({}), then is stopped and destroyed",
                blue.len(),
                human(drain_timeout_ms)
            ),
        );
        runtime::progress(0, self.total as u32);
        runtime::sleep(drain_timeout_ms);
        self.retire(blue, "drain_timeout passed")?;
        runtime::log(
            Level::Info,
            &format!(
                "drain_timeout ({}) passed: stopped and destroyed {} blue machine(s); how many connections \
                 that cut is unknown (this platform cannot count them)",
                human(drain_timeout_ms),
                blue.len()
            ),
        );
        Ok(self.kept)
    }

    /// Stop `ids` with the plan's signal and timeout, wait until they are stopped, destroy them. What the
    /// platform refuses past the budget is left tagged (see `cutover_sdk::leftover`): v2 serves, so the
    /// deploy goes on.
    fn retire(&mut self, ids: &[String], why: &str) -> Result<(), Error> {
        let (retries, plan) = (self.retries, self.plan);
        let mut gone = ids.len();
        // Each machine stopped, seen down and destroyed on its own: one pipeline, not three calls
        // that each wait for the slowest machine.
        if let Err(left) = cutover_sdk::pipeline::retire(retries, ids, plan, true) {
            let what = format!("blue machine(s) ({why})");
            if !left.not_stopped.is_empty() {
                leave(retries, plan, &left.not_stopped, Todo::StopAndDestroy, &what);
            }
            if !left.not_destroyed.is_empty() {
                leave(retries, plan, &left.not_destroyed, Todo::Destroy, &what);
            }
            gone -= left.not_stopped.len() + left.not_destroyed.len();
            self.kept.extend(left.not_stopped.iter().chain(&left.not_destroyed).map(|f| f.id.clone()));
        }
        self.destroyed += gone;
        runtime::progress(self.destroyed as u32, self.total as u32);
        Ok(())
    }
}

cutover_sdk::export!(DrainThenDestroy);
