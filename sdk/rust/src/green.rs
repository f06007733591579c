//! A green fleet beside the blue one, up to the traffic switch: what bluegreen and drain-then-destroy
//! share (they differ only in how blue is retired afterwards).
//!
//! Blue is every machine not yet on the target release. Each blue machine gets a green clone on the
//! target release, kept out of traffic while it boots. Once every green machine is started and passing
//! its checks, traffic switches in one step. Blue keeps serving until then, so any failure up to the
//! switch is undone by destroying green. There are two ways to switch ([`Switch`]):
//!
//! - **Weights**, where the platform splits traffic by release and blue serves on one release: green
//!   is created cordoned, then, while it boots, blue's release is pinned at 100% and the target at 0%
//!   and green is uncordoned: in rotation, it still takes nothing; the switch is one call giving the
//!   target 100%. From that instant blue, still uncordoned, takes no new connection (its drain
//!   starts), and nothing else has to happen on every machine before blue can be retired. The weights
//!   are cleared (back to machine count) once no blue machine can take traffic again: as soon as every
//!   one is stopping when blue is destroyed ([`Switched::retire`]), else once blue is stopped, after
//!   cordoning whatever blue machine is kept ([`Switched::finish`]).
//! - **Cordons** everywhere else (Fly): green is created cordoned, and the switch uncordons green first
//!   and cordons blue second, so there is never an instant with nothing in rotation. Two calls on
//!   every machine.
//!
//! Machines already on the target release but cordoned are *standbys*: the blue fleet an earlier
//! bluegreen kept (`retain_blue`), which `cutover rollback` returns to. A standby of the same process
//! group (and, where there is one, the same region) stands in as a blue machine's green instead of a
//! clone: it is started if stopped, checked like a clone and switched to. That is what makes a rollback
//! after `retain_blue` a traffic switch rather than a redeploy. On a failure before the switch, the
//! standbys that were started are stopped again; they are never destroyed.

use crate::fleet::not_failed;
#[cfg(not(feature = "contract-0-1"))]
use crate::pipeline::{self, NotRetired};
use crate::runtime::{self, Level};
use crate::traffic::ReleaseWeight;
use crate::types::{Machine, MachineError};
use crate::{DeployPlan, Error, machines, traffic};
use crate::{NotServing, Retry, retry, wait_serving, with_note, with_retries};
use crate::{clone_machines, describe_error, explain, list_machines, refuse_volumes, should_run};
use std::collections::{BTreeMap, BTreeSet};

/// The check suggested to a fleet that has none.
pub const CHECK_EXAMPLE: &str = "[[http_service.checks]]\n  grace_period = \"10s\"\n  interval = \"15s\"\n  \
                                 method = \"GET\"\n  path = \"/health\"\n  timeout = \"2s\"";

/// How traffic moves from blue to green (see the module's doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Blue's release pinned at 100% and the target's at 0% while green boots, uncordoned; the switch
    /// gives the target 100%. Blue stays uncordoned, out of new traffic by its weight.
    Weights,
    /// Green cordoned while it boots; the switch uncordons green, then cordons blue.
    Cordons,
}

/// The fleet once green serves: blue still running and out of new traffic after [`Ready::switch`]
/// (cordoned, or weighted to 0% by [`Switch::Weights`]), still in rotation after [`Ready::admit`].
pub struct Switched {
    /// The blue machines, as `list` gave them.
    pub blue: Vec<Machine>,
    /// Their ids, in the same order.
    pub blue_ids: Vec<String>,
    /// Each blue machine's green clone, by the blue machine's id.
    pub green_of: BTreeMap<String, String>,
    /// How the switch was made: with [`Switch::Weights`] blue is not cordoned, and the weights stay set
    /// until [`Switched::retire`] or [`Switched::finish`] clears them.
    pub switch: Switch,
    /// Whether weights keep blue out of new traffic still.
    pinned: bool,
}

impl Switched {
    /// Retire blue: each blue machine stopped, seen stopped and, with `destroy`, destroyed
    /// ([`crate::pipeline::retire`]).
    ///
    /// After a switch by weights that destroys blue, the weights are cleared as soon as every blue
    /// machine has been asked to stop, while they stop, instead of after the last destroy: a stopping
    /// machine takes no new connection whatever its release's weight, and the deploy then ends with
    /// its last destroy rather than one call later. A blue machine the platform would not stop is
    /// cordoned first (with one that cannot be, the weights stay, see [`Switched::finish`]).
    #[cfg(not(feature = "contract-0-1"))]
    pub fn retire(
        &mut self,
        retries: impl Into<Retry>,
        plan: &DeployPlan,
        destroy: bool,
    ) -> Result<(), NotRetired> {
        let retries: Retry = retries.into();
        if !(self.pinned && destroy) {
            return pipeline::retire(retries, &self.blue_ids, plan, destroy);
        }
        let asked = with_retries(retries, &self.blue_ids, |ids| {
            machines::stop(ids, &plan.kill_signal, plan.kill_timeout_ms)
        });
        let refused = asked.err().unwrap_or_default();
        let up: Vec<String> = refused.iter().map(|f| f.id.clone()).collect();
        self.pinned = !unpin(retries, &up, "blue");
        let stopping = not_failed(&self.blue_ids, &refused);
        let mut left = pipeline::retire_stopping(retries, &stopping, plan, destroy).err().unwrap_or_default();
        left.not_stopped.splice(0..0, refused);
        if left.is_empty() { Ok(()) } else { Err(left) }
    }

    /// Once blue is retired, after a switch by weights: cordon the blue machines `kept` on the platform
    /// (stopped standbys, or machines that would not stop), then go back to routing by machine count,
    /// so the next deploy starts from the default. A machine that cannot be cordoned keeps the weights
    /// as they are (it would take traffic again otherwise); that is only logged, the deploy is done.
    /// Weights [`Switched::retire`] cleared already are not cleared again. Nothing to do after a switch
    /// by cordons.
    pub fn finish(&self, retries: impl Into<Retry>, kept: &[String]) {
        if self.switch != Switch::Weights {
            return;
        }
        if self.pinned {
            unpin(retries.into(), kept, "blue");
        } else {
            cordon_kept(
                retries.into(),
                kept,
                "blue",
                "; they take traffic if they start again. Destroy or cordon them",
            );
        }
    }

    /// The green machines standing in for blue machines that were stopped before the deploy.
    pub fn stand_ins_for_stopped(&self) -> Vec<String> {
        self.blue
            .iter()
            .filter(|m| !should_run(m.state))
            .filter_map(|m| self.green_of.get(&m.id).cloned())
            .collect()
    }
}

/// Everything up to and including the traffic switch: [`prepare`] green, then [`Ready::switch`].
/// `None` when every machine is already on the target release; `intro` gives the log line announcing
/// the deploy, from the number of blue machines. `strategy` names the strategy in the refusals.
pub fn bring_up(
    strategy: &str,
    retries: impl Into<Retry>,
    plan: &DeployPlan,
    intro: impl FnOnce(usize) -> String,
) -> Result<Option<Switched>, Error> {
    let retries: Retry = retries.into();
    match prepare(strategy, retries, plan, intro)? {
        Some(ready) => ready.switch(retries, plan).map(Some),
        None => Ok(None),
    }
}

/// Green started and passing its checks, still cordoned; blue untouched. From here a strategy either
/// switches all of blue out at once ([`Ready::switch`]) or only admits green ([`Ready::admit`]) and
/// retires blue at its own pace.
pub struct Ready {
    blue: Vec<Machine>,
    blue_ids: Vec<String>,
    green_of: BTreeMap<String, String>,
    /// Green in blue's order.
    green: Vec<String>,
    /// The green machines this deploy created (the others are adopted standbys).
    clones: Vec<String>,
    /// Standbys this deploy started, to stop again if it gives up.
    started_standbys: Vec<String>,
    /// How a green machine that took traffic is stopped before it is removed (the plan's
    /// `kill_signal` and `kill_timeout`): its requests in flight finish first.
    kill: (String, u64),
    /// The target release, which the green machines a give-up could not remove are tagged with.
    version: u64,
    switch: Switch,
}

/// List the fleet, refuse what cannot be done safely, clone blue into a cordoned green (or adopt
/// standbys), and wait until green is started and healthy. On a failure green is removed and blue was
/// never touched. `None` when every machine is already on the target release.
pub fn prepare(
    strategy: &str,
    retries: impl Into<Retry>,
    plan: &DeployPlan,
    intro: impl FnOnce(usize) -> String,
) -> Result<Option<Ready>, Error> {
    let retries: Retry = retries.into();
    let fleet = crate::leftover::finish_earlier(retries, plan, list_machines(retries)?);

    let (on_target, blue): (Vec<Machine>, Vec<Machine>) =
        fleet.into_iter().partition(|m| m.release.version == plan.target.version);
    if blue.is_empty() {
        runtime::log(Level::Info, &format!("every machine is already on v{}", plan.target.version));
        return Ok(None);
    }
    refuse_volumes(strategy, "green", &blue)?;
    refuse_without_checks(strategy, &blue)?;

    let n = blue.len();
    let blue_ids: Vec<String> = blue.iter().map(|m| m.id.clone()).collect();
    runtime::log(Level::Info, &intro(n));

    let mut green_of = pair_standbys(&blue, on_target.iter().filter(|m| m.cordoned).collect());
    let to_clone: Vec<String> = blue_ids.iter().filter(|b| !green_of.contains_key(*b)).cloned().collect();
    // Standbys that are stopped get started; on a failure they go back to stopped.
    let started_standbys: Vec<String> = on_target
        .iter()
        .filter(|m| green_of.values().any(|g| *g == m.id) && !should_run(m.state))
        .map(|m| m.id.clone())
        .collect();
    let adopted = green_of.len();
    if adopted > 0 {
        runtime::log(
            Level::Info,
            &format!(
                "{adopted} standby machine(s) already on v{} (kept by an earlier deploy) stand in as green; \
                 {} to clone",
                plan.target.version,
                to_clone.len()
            ),
        );
    }

    runtime::phase("create green");
    runtime::progress(0, n as u32);
    let cloned =
        // A retried clone after a lost answer could make a second machine: by count only.
        with_retries(retries.count_only(), &to_clone, |sources| clone_machines(sources, &plan.target, false, &mut green_of))
            .and_then(|()| with_retries(retries, &started_standbys, machines::start));
    // In blue's order, so errors and logs list machines the way `list` did.
    let green: Vec<String> = blue_ids.iter().filter_map(|b| green_of.get(b).cloned()).collect();
    let clones: Vec<String> = to_clone.iter().filter_map(|b| green_of.get(b).cloned()).collect();
    let give_up = |switch: Switch, failures: Vec<MachineError>, context: &str| {
        rest_standbys(retries, &started_standbys);
        abandon(retries, &clones, plan.target.version, n, switch, failures, context)
    };
    if let Err(failures) = cloned {
        let context = format!("create green: cloning failed for {} of {n} blue machine(s)", failures.len());
        return Err(give_up(Switch::Cordons, failures, &context));
    }
    // Pinned while green boots (a boot and a grace period are longer than these calls), so neither
    // call sits between green's last passing check and the switch.
    let switch = match weighable(&blue, &on_target, adopted) {
        Some(stable) => match pin(retries, stable, plan.target.version) {
            Ok(()) => Switch::Weights,
            Err(e) => {
                // Cleared as after a pin: an answer lost on the way may have hidden one that took.
                let context = "create green: pinning the traffic weights failed";
                return Err(give_up(Switch::Weights, all_failed(&green, &e), context));
            }
        },
        None => Switch::Cordons,
    };
    if switch == Switch::Weights
        && let Err(failures) = with_retries(retries, &green, traffic::uncordon)
    {
        let context =
            format!("create green: putting {} green machine(s) in rotation at 0% failed", failures.len());
        return Err(give_up(switch, failures, &context));
    }

    runtime::phase("wait for green");
    if let Err(stalled) = wait_serving(retries, &green, plan.wait_timeout_ms) {
        let (context, failures) = match stalled {
            NotServing::NotStarted(f) => {
                (format!("wait for green: {} of {n} green machine(s) did not start", f.len()), f)
            }
            NotServing::Unhealthy(f) => (
                format!(
                    "wait for green: {} of {n} green machine(s) did not pass their checks on v{}",
                    f.len(),
                    plan.target.version
                ),
                f,
            ),
        };
        return Err(give_up(switch, failures, &context));
    }
    runtime::progress(n as u32, n as u32);

    let kill = (plan.kill_signal.clone(), plan.kill_timeout_ms);
    let version = plan.target.version;
    Ok(Some(Ready { blue, blue_ids, green_of, green, clones, started_standbys, kill, version, switch }))
}

/// The release blue serves on, when weights can make the switch one call: the platform splits by
/// release, blue serves on exactly one release (a pin of several would round a small one to 0% and
/// drain it early), no machine on the target already serves (a 0% pin would take it out of traffic)
/// and no standby is adopted (standbys are cordoned: they take the cordon switch).
fn weighable(blue: &[Machine], on_target: &[Machine], adopted: usize) -> Option<u64> {
    let serving = |m: &&Machine| should_run(m.state) && !m.cordoned;
    let releases: BTreeSet<u64> = blue.iter().filter(serving).map(|m| m.release.version).collect();
    let weighs = traffic::capabilities().weights
        && releases.len() == 1
        && adopted == 0
        && !on_target.iter().any(|m| serving(&m));
    releases.first().copied().filter(|_| weighs)
}

/// Pin `stable` at 100% and `target` at 0%, so that green, still cordoned, can be put in rotation.
fn pin(retries: Retry, stable: u64, target: u64) -> Result<(), Error> {
    let pin =
        [ReleaseWeight { version: stable, percent: 100 }, ReleaseWeight { version: target, percent: 0 }];
    retry(retries, "setting traffic weights", || traffic::set_weights(&pin))?;
    runtime::log(
        Level::Info,
        &format!(
            "traffic weights: v{stable} 100%, v{target} 0%: green goes in rotation while it boots and takes \
             no new connection until the switch gives v{target} 100%"
        ),
    );
    Ok(())
}

/// Every one of `ids` failed with `error`: a call on no machine (the weights) that failed for green.
fn all_failed(ids: &[String], error: &Error) -> Vec<MachineError> {
    ids.iter().map(|id| MachineError { id: id.clone(), error: error.clone() }).collect()
}

/// Cordon `kept` (`what` names them in the log), then clear the weights; with any of them still
/// uncordoned, leave the weights as they are. Whether the weights were cleared.
fn unpin(retries: Retry, kept: &[String], what: &str) -> bool {
    let why = ", so the traffic weights stay as they are: they keep those machines' release out of new \
               traffic. Destroy or cordon them, then clear the weights";
    cordon_kept(retries, kept, what, why) && crate::clear_weights(retries)
}

/// Cordon `kept`; whether all of them are. Those that cannot be are logged (`what` names them, `then`
/// says what follows from it).
fn cordon_kept(retries: Retry, kept: &[String], what: &str, then: &str) -> bool {
    let Err(left) = with_retries(retries, kept, traffic::cordon) else { return true };
    runtime::log(
        Level::Warn,
        &format!(
            "{} {what} machine(s) could not be cordoned (machine {}: {}){then}",
            left.len(),
            left[0].id,
            describe_error(&left[0].error)
        ),
    );
    false
}

impl Ready {
    /// The blue machines, as `list` gave them.
    pub fn blue(&self) -> &[Machine] {
        &self.blue
    }

    /// The green machines this deploy created (not the adopted standbys), e.g. to tag them.
    pub fn clones(&self) -> &[String] {
        &self.clones
    }

    /// Put green in rotation beside blue, which keeps serving: the first half of a switch, for
    /// strategies that take blue out gradually. A failure here is still undone by removing green.
    pub fn admit(self, retries: impl Into<Retry>) -> Result<Switched, Error> {
        let retries: Retry = retries.into();
        let n = self.blue.len();
        if self.switch == Switch::Weights {
            // Green is in rotation already: by machine count, it takes its share beside blue.
            return match retry(retries, "clearing traffic weights", || traffic::set_weights(&[])) {
                // Nothing left pinned for [`Switched::finish`] to clear.
                Ok(()) => Ok(self.into_switched(Switch::Cordons)),
                Err(e) => {
                    Err(self.give_up_weighted(retries, e, "putting green in rotation (clearing the weights)"))
                }
            };
        }
        if let Err(failures) = with_retries(retries, &self.green, traffic::uncordon) {
            let context =
                format!("switch traffic: putting {} green machine(s) in rotation failed", failures.len());
            // The green machines that did go in took traffic: out of rotation first, then stopped on
            // their kill signal so the requests they hold finish, and only then removed.
            let admitted = not_failed(&self.green, &failures);
            if !admitted.is_empty() {
                let _ = with_retries(retries, &admitted, traffic::cordon);
                let (signal, timeout_ms) = &self.kill;
                let _ = with_retries(retries, &admitted, |ids| machines::stop(ids, signal, *timeout_ms));
            }
            rest_standbys(retries, &self.started_standbys);
            return Err(abandon(retries, &self.clones, self.version, n, self.switch, failures, &context));
        }
        Ok(self.into_switched(Switch::Cordons))
    }

    fn into_switched(self, switch: Switch) -> Switched {
        let pinned = switch == Switch::Weights;
        Switched { blue: self.blue, blue_ids: self.blue_ids, green_of: self.green_of, switch, pinned }
    }

    /// A switch by weights that failed: nothing but the weights changed, so green is removed.
    fn give_up_weighted(self, retries: Retry, error: Error, doing: &str) -> Error {
        let failures = all_failed(&self.green, &error);
        let context = format!("switch traffic: {doing} failed");
        abandon(retries, &self.clones, self.version, self.blue.len(), self.switch, failures, &context)
    }

    /// Switch traffic in one step: the target given 100% ([`Switch::Weights`]), or green in, then blue
    /// out (cordoned); blue still runs.
    pub fn switch(self, retries: impl Into<Retry>, plan: &DeployPlan) -> Result<Switched, Error> {
        let retries: Retry = retries.into();
        runtime::phase("switch traffic");
        if self.switch == Switch::Weights {
            // One call: from its answer on, new connections go to green only, and blue drains.
            let all_green = [ReleaseWeight { version: self.version, percent: 100 }];
            return match retry(retries, "setting traffic weights", || traffic::set_weights(&all_green)) {
                Ok(()) => Ok(self.into_switched(Switch::Weights)),
                Err(e) => Err(self.give_up_weighted(
                    retries,
                    e,
                    &format!("giving v{} 100% of new connections", plan.target.version),
                )),
            };
        }
        // Green in before blue out: at no instant is neither in rotation. Until blue is cordoned this is
        // still undone by removing green, as above.
        let (green, clones, standbys, version) =
            (self.green.clone(), self.clones.clone(), self.started_standbys.clone(), self.version);
        let switched = self.admit(retries)?;
        let n = switched.blue_ids.len();
        let Err(failures) = with_retries(retries, &switched.blue_ids, traffic::cordon) else {
            return Ok(switched);
        };
        // Half switched: undo it. Blue goes back in rotation first (so something always serves), then
        // green comes out and is removed, and the fleet is where the deploy started.
        let cordoned = not_failed(&switched.blue_ids, &failures);
        if let Err(left) = with_retries(retries, &cordoned, traffic::uncordon) {
            let context = format!(
                "switch traffic: taking blue out of rotation failed for {} of {n} machine(s), and putting \
                 {} of the others back failed too; green ({n} machine(s) on v{}) is serving, alongside \
                 the blue machines still in rotation; nothing was stopped",
                failures.len(),
                left.len(),
                plan.target.version
            );
            return Err(explain(failures, &context));
        }
        let _ = with_retries(retries, &green, traffic::cordon);
        rest_standbys(retries, &standbys);
        let context = format!(
            "switch traffic: taking blue out of rotation failed for {} of {n} machine(s), so the switch \
             was undone",
            failures.len()
        );
        Err(abandon(retries, &clones, version, n, Switch::Cordons, failures, &context))
    }
}

/// Pair blue machines with standbys on the target release: same process group, the same region where
/// possible. Returns green by blue id for the pairs found.
fn pair_standbys(blue: &[Machine], mut standbys: Vec<&Machine>) -> BTreeMap<String, String> {
    let mut green_of = BTreeMap::new();
    for same_region in [true, false] {
        for b in blue {
            if green_of.contains_key(&b.id) {
                continue;
            }
            let found = standbys
                .iter()
                .position(|s| s.process_group == b.process_group && (!same_region || s.region == b.region));
            if let Some(i) = found {
                green_of.insert(b.id.clone(), standbys.swap_remove(i).id.clone());
            }
        }
    }
    green_of
}

/// Put standbys started for a switch that did not happen back to stopped (best effort: they are
/// cordoned, so a standby left running takes no traffic).
fn rest_standbys(retries: impl Into<Retry>, started: &[String]) {
    let retries: Retry = retries.into();
    if started.is_empty() {
        return;
    }
    if let Err(left) = with_retries(retries, started, |ids| machines::stop(ids, "SIGINT", 5_000)) {
        runtime::log(
            Level::Warn,
            &format!(
                "{} standby machine(s) could not be stopped again (machine {}: {}); they are cordoned and \
                 take no traffic",
                left.len(),
                left[0].id,
                describe_error(&left[0].error)
            ),
        );
    }
}

/// Refuse a fleet without health checks: green's checks are the only evidence it works before it gets
/// traffic, and a machine without checks counts as healthy as soon as it starts.
pub fn refuse_without_checks(strategy: &str, blue: &[Machine]) -> Result<(), Error> {
    if blue.iter().any(|m| !m.checks.is_empty()) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{strategy} needs at least one health check to know green is healthy before switching traffic to \
         it, as Fly requires, and none of the {} machine(s) has one. Nothing was changed. Add a check to \
         fly.toml, for example:\n\n{CHECK_EXAMPLE}",
        blue.len()
    )))
}

/// Give up before the switch: destroy green and turn `failures` into the deploy's error. Blue was never
/// touched, so removing green is all it takes to be back where the deploy started.
/// Only `green` machines this deploy created are destroyed (standbys are not theirs to remove). Green
/// machines the platform would not destroy within the budget are tagged as leftovers (`destroy by
/// v<version>`), so `cutover resume` or the next deploy finds and removes them. After a pin of the
/// weights ([`Switch::Weights`]) those are cordoned and the weights cleared.
pub fn abandon(
    retries: impl Into<Retry>,
    green: &[String],
    version: u64,
    blue: usize,
    switch: Switch,
    failures: Vec<MachineError>,
    context: &str,
) -> Error {
    let retries: Retry = retries.into();
    let mut left_over: Vec<String> = Vec::new();
    let removed = if green.is_empty() {
        "no green machine was created".to_string()
    } else {
        runtime::phase("remove green");
        match with_retries(retries, green, machines::destroy) {
            Ok(()) => format!("green was removed ({} machine(s) destroyed)", green.len()),
            Err(left) => {
                let ids: Vec<String> = left.iter().map(|f| f.id.clone()).collect();
                left_over.clone_from(&ids);
                let untagged = crate::leftover::tag(retries, &ids, crate::leftover::Todo::Destroy, version);
                format!(
                    "removing green failed for {} of {} machine(s) (machine {}: {}), which take no \
                     traffic; {}",
                    left.len(),
                    green.len(),
                    left[0].id,
                    describe_error(&left[0].error),
                    if untagged.is_empty() {
                        format!(
                            "they are tagged {}=\"destroy by v{version}\": `cutover resume` or the next \
                                 deploy destroys them",
                            crate::leftover::LEFTOVER_KEY
                        )
                    } else {
                        "tagging them as leftovers failed too: destroy them by hand".to_string()
                    }
                )
            }
        }
    };
    if switch == Switch::Weights {
        // Green was destroyed under the pin: what is left of it is cordoned before the weights go.
        unpin(retries, &left_over, "green");
    }
    runtime::log(Level::Warn, &format!("deploy abandoned before the switch; {removed}"));
    // The cause first, then what the fleet is left with.
    let error = explain(failures, context);
    with_note(error, &format!("; blue is untouched and still serving ({blue} machine(s)); {removed}"))
}
