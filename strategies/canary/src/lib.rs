//! The canary strategy: try the new release on a few machines with a growing share of traffic, and only
//! then roll the fleet onto it.
//!
//! The stable release is every machine not yet on the target release. Per process group, `canary_count`
//! stable machines (serving ones first) are cloned onto the target release, cordoned, so the canaries
//! take no traffic while they boot. Once they are started and passing their checks, they go into
//! rotation and receive, step by step, the percentages of new connections listed in `steps` (10, 25,
//! 50 by default), each for `step_pause`. After each pause a gate decides whether to go on: every check
//! of every canary must be passing; where the platform reports per-release statistics, the canary's
//! error rate over the pause may exceed the stable release's by at most `max_error_rate_increase`
//! (0.05 is five percentage points); and a step listed in `manual_gates` waits for `cutover promote
//! step-<percent>` (at most `wait_timeout`; a timeout fails the gate).
//!
//! A failed gate, or any failure before the last step, is undone without touching a stable machine: new
//! connections go back to the stable release, the canaries are cordoned, stopped and destroyed, and the
//! deploy fails with the step and the measured numbers. That is what this strategy buys over rolling: a
//! bad release is seen by a small, chosen share of users, and judged on real traffic, before a single
//! stable machine is taken out of service. The price is the time of the steps and a few extra machines.
//!
//! After the last step the stable machines are moved onto the target release in place, exactly as the
//! rolling strategy does it (per process group, batches of `max_unavailable`: cordon, update, wait
//! started, wait healthy, uncordon; with `rollback`, a failed batch moves every machine it moved back
//! before failing; the batch a roll or rollback stops at keeps only its failed machines out of
//! rotation). The canaries are then cordoned, stopped and destroyed, so the fleet has the shape it
//! had before the deploy. Machines already on the target release are neither cloned nor moved.
//!
//! Traffic is split with `traffic.set-weights` where the platform can. The canaries' weight is set to 0
//! before they go into rotation, so they take nothing until the first step. During the promotion the
//! weights follow the count of serving machines of each release (recomputed before and after each
//! batch), as routing without weights would: a fixed split would pile the stable share onto the last
//! stable machines. Once the canaries are gone, the weights are cleared (`set-weights([])`), so routing
//! goes back to machine count and the next deploy starts from the default. On a platform without weights
//! the canaries get the share their number gives them among the serving machines, which the log states,
//! and the steps are only pauses with gates.
//!
//! It refuses, before changing anything, stable machines with volumes (a volume attaches to one machine
//! only, so a canary clone could not get the data; rolling updates in place and keeps them) and
//! platforms that cannot cordon (nothing would keep the canaries out of traffic until they are healthy).

use cutover_sdk::rollout::{
    Batch, RollbackHook, by_group, move_batch, plan_batches, put_back_passing, roll_back,
};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::traffic::{ReleaseWeight, TrafficCapabilities, TrafficStats};
use cutover_sdk::types::{CheckStatus, Machine, ParamKind, ParamSpec, ParamValue, Release};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, health, machines, traffic};
use cutover_sdk::{NotServing, should_run, wait_serving, with_context, with_note, with_retries};
use cutover_sdk::{clone_machines, describe_error, explain, human, list_machines, refuse_volumes, retry};
use std::collections::BTreeMap;

struct Canary;

/// Canary machines per process group, by default.
const DEFAULT_CANARY_COUNT: i64 = 1;

/// Percent of new connections sent to the canaries at each step, by default.
const DEFAULT_STEPS: [i64; 3] = [10, 25, 50];

/// How long each step lasts before its gate, by default (one minute).
const DEFAULT_STEP_PAUSE_MS: u64 = 60_000;

/// How much higher (absolute, 0.05 = five percentage points) the canary's error rate may be, by default.
const DEFAULT_MAX_ERROR_RATE_INCREASE: f64 = 0.05;

/// Whether a failed promotion moves the machines it already moved back, by default.
const DEFAULT_ROLLBACK: bool = true;

/// The parameters of one deploy, read and checked before anything changes.
struct Params {
    retries: u32,
    canary_count: usize,
    steps: Vec<u8>,
    step_pause_ms: u64,
    max_error_rate_increase: f64,
    manual_gates: Vec<u8>,
    rollback: bool,
}

/// What the canary steps need to know about the fleet: the release they deploy, and how many machines
/// of each stable release there are (the stable share is split between them in proportion).
struct Fleet<'a> {
    target: &'a Release,
    stable: BTreeMap<u64, usize>,
    stable_machines: usize,
}

/// The serving machines and their releases, while the promotion runs, so that the traffic weights can
/// follow the machine count as routing without weights does.
struct Route {
    serving: BTreeMap<String, u64>,
}

/// A rollback's hook when weights are set: the traffic weights follow each batch back.
struct Follow<'r> {
    route: Option<&'r mut Route>,
    retries: u32,
}

impl RollbackHook for Follow<'_> {
    fn before(&mut self, batch: &Batch) {
        if let Some(route) = self.route.as_mut() {
            route.take(batch);
            route.apply(self.retries);
        }
    }

    fn after(&mut self, batch: &Batch, previous: &Release) {
        if let Some(route) = self.route.as_mut() {
            route.put(batch, previous.version);
        }
    }
}

impl Guest for Canary {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "canary".into(),
            summary: "Clone a few machines onto the new release and give them a growing share of traffic, \
                      step by step, with health, error-rate and manual gates; then roll the fleet onto \
                      it in place and remove the canaries. A failed gate removes the canaries and \
                      leaves the fleet untouched."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                ParamSpec {
                    name: "canary_count".into(),
                    kind: ParamKind::Integer,
                    default: Some(ParamValue::Integer(DEFAULT_CANARY_COUNT)),
                    summary: "Canary machines per process group (at least 1; at most the group's size)."
                        .into(),
                },
                ParamSpec {
                    name: "steps".into(),
                    kind: ParamKind::Integers,
                    default: Some(ParamValue::Integers(DEFAULT_STEPS.to_vec())),
                    summary: "Percent of new connections sent to the canaries at each step (1 to 100)."
                        .into(),
                },
                ParamSpec {
                    name: "step_pause".into(),
                    kind: ParamKind::Duration,
                    default: Some(ParamValue::DurationMs(DEFAULT_STEP_PAUSE_MS)),
                    summary: "How long each step lasts; its gate judges this window.".into(),
                },
                ParamSpec {
                    name: "max_error_rate_increase".into(),
                    kind: ParamKind::Float,
                    default: Some(ParamValue::Float(DEFAULT_MAX_ERROR_RATE_INCREASE)),
                    summary: "How much the canary's error rate may exceed the stable release's over a \
                              step (0.05 = five percentage points), where the platform reports stats."
                        .into(),
                },
                ParamSpec {
                    name: "manual_gates".into(),
                    kind: ParamKind::Integers,
                    default: Some(ParamValue::Integers(vec![])),
                    summary: "Steps (by percent) after which the deploy waits for `cutover promote \
                              step-<percent>`, at most wait_timeout."
                        .into(),
                },
                ParamSpec {
                    name: "rollback".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_ROLLBACK)),
                    summary: "On a failed promotion batch, move every machine this deploy moved back to \
                              the previous release (same batches, same checks) before failing."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let params = read_params()?;
        let retries = params.retries;
        let caps = traffic::capabilities();
        if !caps.cordon {
            return Err(Error::Unsupported(
                "canary keeps the canaries out of traffic by cordoning them until they are healthy, and \
                 this platform cannot cordon machines; nothing was changed. Use strategy = \"rolling\" \
                 instead."
                    .into(),
            ));
        }
        let fleet = list_machines(retries)?;

        let groups = by_group(fleet);
        let stable: Vec<&Machine> =
            groups.values().flatten().filter(|m| m.release.version != plan.target.version).collect();
        if stable.is_empty() {
            runtime::log(Level::Info, &format!("every machine is already on v{}", plan.target.version));
            return Ok(());
        }
        refuse_volumes("canary", "canary", &stable)?;
        let mut stable_versions: BTreeMap<u64, usize> = BTreeMap::new();
        for m in &stable {
            *stable_versions.entry(m.release.version).or_default() += 1;
        }
        let view = Fleet { target: &plan.target, stable: stable_versions, stable_machines: stable.len() };

        // Per process group, the first `canary_count` stable machines, serving ones first: the clone
        // takes its region, size and services from its source.
        let mut sources: Vec<String> = Vec::new();
        for members in groups.values() {
            let mut candidates: Vec<&Machine> =
                members.iter().filter(|m| m.release.version != plan.target.version).collect();
            candidates.sort_by_key(|m| !should_run(m.state));
            sources.extend(candidates.iter().take(params.canary_count).map(|m| m.id.clone()));
        }
        let c = sources.len();
        runtime::log(
            Level::Info,
            &format!(
                "canary: {c} canary machine(s) on v{} ({}) beside {} stable machine(s) on {}; steps {} of \
                 new connections, {} each",
                plan.target.version,
                plan.target.image,
                view.stable_machines,
                releases(&view.stable),
                params.steps.iter().map(|p| format!("{p}%")).collect::<Vec<_>>().join(" → "),
                human(params.step_pause_ms)
            ),
        );
        if !caps.stats && stable.iter().all(|m| m.checks.is_empty()) {
            runtime::log(
                Level::Warn,
                "the machines have no health checks and this platform reports no traffic statistics: the \
                 gates can only see that the canaries keep running",
            );
        }

        runtime::phase("start canary");
        runtime::progress(0, c as u32);
        let mut canary_of: BTreeMap<String, String> = BTreeMap::new();
        let cloned = with_retries(retries, &sources, |ids| clone_machines(ids, &plan.target, &mut canary_of));
        // In the sources' order, so errors and logs list machines the way `list` did.
        let canaries: Vec<String> = sources.iter().filter_map(|s| canary_of.get(s).cloned()).collect();
        if let Err(failures) = cloned {
            let context =
                format!("start canary: cloning failed for {} of {c} source machine(s)", failures.len());
            return Err(abandon(retries, &plan, None, &view, &canaries, false, explain(failures, &context)));
        }
        if let Err(stalled) = wait_serving(retries, &canaries, plan.wait_timeout_ms) {
            let (context, failures) = match stalled {
                NotServing::NotStarted(f) => {
                    (format!("start canary: {} of {c} canary machine(s) did not start", f.len()), f)
                }
                NotServing::Unhealthy(f) => (
                    format!(
                        "start canary: {} of {c} canary machine(s) did not pass their checks on v{}",
                        f.len(),
                        plan.target.version
                    ),
                    f,
                ),
            };
            return Err(abandon(retries, &plan, None, &view, &canaries, false, explain(failures, &context)));
        }
        runtime::progress(c as u32, c as u32);

        // With weights, the canaries get 0% before they go into rotation, so nothing reaches them before
        // the first step. Without, their share is their number among the serving machines.
        let weighted = caps.weights;
        if weighted {
            let pinned = retry(retries, "setting traffic weights", || traffic::set_weights(&split(&view, 0)));
            if let Err(e) = pinned {
                let e = with_context(
                    e,
                    "start canary: could not send every new connection to the stable release before \
                     putting the canary in rotation",
                );
                return Err(abandon(retries, &plan, None, &view, &canaries, false, e));
            }
        }
        if let Err(failures) = with_retries(retries, &canaries, traffic::uncordon) {
            let context =
                format!("start canary: putting {} canary machine(s) in rotation failed", failures.len());
            let e = explain(failures, &context);
            return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, true, e));
        }
        if !weighted {
            let others = stable.iter().filter(|m| should_run(m.state) && !m.cordoned).count()
                + groups
                    .values()
                    .flatten()
                    .filter(|m| m.release.version == plan.target.version)
                    .filter(|m| should_run(m.state) && !m.cordoned)
                    .count();
            let m = others + c;
            runtime::log(
                Level::Warn,
                &format!(
                    "this platform cannot split traffic by weight; falling back to machine-count weighting \
                     ({c} canary of {m} machines ≈ {}%): the steps are pauses with gates, the share does \
                     not grow",
                    (100 * c + m / 2) / m.max(1)
                ),
            );
        }

        let n = params.steps.len();
        for (index, &percent) in params.steps.iter().enumerate() {
            let label = format!("step {}/{n} ({percent}%)", index + 1);
            runtime::phase(&format!("canary {label}"));
            if weighted {
                let set = retry(retries, "setting traffic weights", || {
                    traffic::set_weights(&split(&view, percent))
                });
                if let Err(e) = set {
                    let e = with_context(e, &format!("canary {label}: setting the traffic weights failed"));
                    return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, true, e));
                }
                runtime::log(
                    Level::Info,
                    &format!(
                        "{label}: {percent}% of new connections to v{} ({}), watching for {}",
                        plan.target.version,
                        shares(&split(&view, percent)),
                        human(params.step_pause_ms)
                    ),
                );
            } else {
                runtime::log(
                    Level::Info,
                    &format!(
                        "{label}: {percent}% asked for, machine-count share unchanged; watching for {}",
                        human(params.step_pause_ms)
                    ),
                );
            }
            runtime::sleep(params.step_pause_ms);
            if let Err(e) = gate(&params, &caps, &plan, &view, &canaries, &label, percent) {
                return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, true, e));
            }
            runtime::log(Level::Info, &format!("{label}: gate passed"));
            runtime::progress((index + 1) as u32, n as u32);
        }

        // The promotion: rolling's batches, with the weights following the serving machines.
        let mut route = weighted.then(|| Route::new(&groups, &canaries, plan.target.version));
        let to_move = stable.len();
        runtime::log(
            Level::Info,
            &format!(
                "every gate passed: promoting {to_move} stable machine(s) in {} process group(s) to v{}",
                groups.len(),
                plan.target.version
            ),
        );
        let mut moved = 0usize;
        // Every batch that reached the new release, in order: what a rollback has to undo.
        let mut done: Vec<Batch> = Vec::new();
        for (step, batch) in plan_batches(&groups, plan.target.version, &plan.max_unavailable) {
            runtime::phase(&format!("promote {step}"));
            if let Some(route) = route.as_mut() {
                route.take(&batch);
                route.apply(retries);
            }
            if let Err(failures) =
                move_batch(retries, caps.cordon, &batch, &plan.target, plan.wait_timeout_ms)
            {
                let failed: Vec<String> = failures.iter().map(|f| f.id.clone()).collect();
                let untouched = to_move - moved - batch.machines.len();
                let error = explain(
                    failures,
                    &format!(
                        "promotion: {} failed ({} machine(s) in it); {moved} machine(s) already on v{}, \
                         {untouched} untouched and still on the previous release",
                        batch.label,
                        batch.machines.len(),
                        plan.target.version
                    ),
                );
                // Without a rollback, the batch's machines that did come up go back in rotation.
                let kept = |error: Error, why: &str| {
                    let back = put_back_passing(retries, caps.cordon, &batch, &failed, plan.wait_timeout_ms);
                    with_note(
                        error,
                        &format!("{why}{back} of that batch pass their checks and are back in rotation"),
                    )
                };
                let error = match (params.rollback, &plan.previous) {
                    (false, _) => kept(error, "; rollback is off: "),
                    (true, None) => kept(error, "; no previous release to roll back to: "),
                    (true, Some(previous)) => {
                        // The failed batch first (it is out of service), then the others in reverse.
                        done.push(batch);
                        done.reverse();
                        let mut follow = Follow { route: route.as_mut(), retries };
                        let note = roll_back(
                            retries,
                            caps.cordon,
                            &done,
                            previous,
                            plan.wait_timeout_ms,
                            &mut follow,
                        );
                        with_note(error, &note)
                    }
                };
                // The canaries were only ever there to be removed: the fleet keeps its size.
                if let Some(route) = route.as_mut() {
                    route.remove(&canaries);
                    route.apply(retries);
                }
                let removed = remove_canaries(retries, &plan, &canaries, true).unwrap_or_else(|left| left);
                return Err(with_note(error, &format!("; {removed}")));
            }
            moved += batch.machines.len();
            if let Some(route) = route.as_mut() {
                route.put(&batch, plan.target.version);
            }
            done.push(batch);
            runtime::progress(moved as u32, to_move as u32);
        }

        runtime::phase("remove canary");
        if let Some(route) = route.as_mut() {
            route.remove(&canaries);
            route.apply(retries);
        }
        match remove_canaries(retries, &plan, &canaries, true) {
            Ok(removed) => runtime::log(Level::Info, &removed),
            Err(left) => {
                return Err(Error::Platform(format!(
                    "all {moved} stable machine(s) are on v{} and serving, but {left}",
                    plan.target.version
                )));
            }
        }
        if weighted {
            clear_weights(retries);
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// Go back to routing by machine count once the canaries are gone, so no release stays pinned and the
/// next deploy starts from the default. A failure here is only logged: the fleet itself is fine.
fn clear_weights(retries: u32) {
    match retry(retries, "clearing traffic weights", || traffic::set_weights(&[])) {
        Ok(()) => runtime::log(Level::Info, "traffic weights cleared: new connections follow machine count"),
        Err(e) => runtime::log(
            Level::Warn,
            &format!("clearing traffic weights failed ({}); check `traffic.weights`", describe_error(&e)),
        ),
    }
}

/// Read the parameters and check them, so that a mistake fails the deploy before anything changes.
fn read_params() -> Result<Params, Error> {
    let retries = cutover_sdk::retries();
    let canary_count = match runtime::param("canary_count") {
        Some(ParamValue::Integer(n)) => n,
        _ => DEFAULT_CANARY_COUNT,
    };
    let steps = match runtime::param("steps") {
        Some(ParamValue::Integers(v)) => v,
        _ => DEFAULT_STEPS.to_vec(),
    };
    let step_pause_ms = cutover_sdk::params::get_duration_ms("step_pause", DEFAULT_STEP_PAUSE_MS);
    let max_error_rate_increase = match runtime::param("max_error_rate_increase") {
        Some(ParamValue::Float(f)) => f,
        _ => DEFAULT_MAX_ERROR_RATE_INCREASE,
    };
    let manual_gates = match runtime::param("manual_gates") {
        Some(ParamValue::Integers(v)) => v,
        _ => vec![],
    };
    let rollback = cutover_sdk::params::get_bool("rollback", DEFAULT_ROLLBACK);

    let invalid = |what: String| Err(Error::Invalid(format!("canary: {what}; nothing was changed")));
    if canary_count < 1 {
        return invalid(format!("`canary_count` = {canary_count}: expected at least 1"));
    }
    if steps.is_empty() {
        return invalid(
            "`steps` is empty: a canary needs at least one step (use strategy = \"rolling\" to move the \
             fleet without one)"
                .into(),
        );
    }
    if let Some(bad) = steps.iter().find(|p| !(1..=100).contains(*p)) {
        return invalid(format!("`steps` = {steps:?}: {bad} is not a percent between 1 and 100"));
    }
    if !max_error_rate_increase.is_finite() || max_error_rate_increase < 0.0 {
        return invalid(format!(
            "`max_error_rate_increase` = {max_error_rate_increase}: expected a share of requests, 0 or \
             more (0.05 = five percentage points)"
        ));
    }
    if let Some(bad) = manual_gates.iter().find(|g| !steps.contains(g)) {
        return invalid(format!(
            "`manual_gates` = {manual_gates:?}: {bad} is not one of the steps {steps:?}, so that gate would \
             never open"
        ));
    }
    Ok(Params {
        retries,
        canary_count: usize::try_from(canary_count).unwrap_or(usize::MAX),
        // Checked above: every step and gate is in 1..=100.
        steps: steps.iter().map(|&p| p as u8).collect(),
        step_pause_ms,
        max_error_rate_increase,
        manual_gates: manual_gates.iter().map(|&p| p as u8).collect(),
        rollback,
    })
}

/// The gate after a step: every canary check passing, the error rate within bounds (where the platform
/// reports stats), and, for a step in `manual_gates`, a promotion. The error names the step and what
/// was measured.
fn gate(
    params: &Params,
    caps: &TrafficCapabilities,
    plan: &DeployPlan,
    view: &Fleet,
    canaries: &[String],
    label: &str,
    percent: u8,
) -> Result<(), Error> {
    let retries = params.retries;
    let failed = format!("canary gate failed at {label}");
    for id in canaries {
        let checks = retry(retries, "reading canary checks", || health::checks(id))
            .map_err(|e| with_context(e, &format!("{failed}: reading the checks of canary {id}")))?;
        if let Some(c) = checks.iter().find(|c| c.status != CheckStatus::Passing) {
            let status = if c.status == CheckStatus::Warning { "warning" } else { "critical" };
            return Err(Error::Unhealthy(format!(
                "{failed}: canary {id} check `{}` is {status} ({}) after {} on v{}",
                c.name,
                c.output,
                human(params.step_pause_ms),
                plan.target.version
            )));
        }
    }
    if caps.stats {
        let window = params.step_pause_ms;
        let canary = retry(retries, "reading traffic stats", || traffic::stats(plan.target.version, window))
            .map_err(|e| {
                with_context(e, &format!("{failed}: reading the traffic stats of v{}", plan.target.version))
            })?;
        let mut stable = TrafficStats { requests: 0, errors: 0, p50_ms: 0.0, p99_ms: 0.0 };
        for &version in view.stable.keys() {
            let s =
                retry(retries, "reading traffic stats", || traffic::stats(version, window)).map_err(|e| {
                    with_context(e, &format!("{failed}: reading the traffic stats of v{version}"))
                })?;
            stable.requests += s.requests;
            stable.errors += s.errors;
            stable.p50_ms = stable.p50_ms.max(s.p50_ms);
            stable.p99_ms = stable.p99_ms.max(s.p99_ms);
        }
        let (canary_rate, stable_rate) = (error_rate(&canary), error_rate(&stable));
        let increase = canary_rate - stable_rate;
        let measured = format!(
            "canary error rate {:.2}% ({} errors in {} requests) vs stable {:.2}% ({} in {}) over {}, {:+.2} \
             points; p99 {:.0} ms vs {:.0} ms",
            canary_rate * 100.0,
            canary.errors,
            canary.requests,
            stable_rate * 100.0,
            stable.errors,
            stable.requests,
            human(window),
            increase * 100.0,
            canary.p99_ms,
            stable.p99_ms
        );
        runtime::log(Level::Info, &format!("{label}: {measured}"));
        if canary.requests == 0 {
            runtime::log(
                Level::Warn,
                &format!(
                    "{label}: the canary received no requests in the window: its error rate is unmeasured"
                ),
            );
        }
        if increase > params.max_error_rate_increase {
            return Err(Error::Unhealthy(format!(
                "{failed}: {measured}: above max_error_rate_increase {} ({:.2} points)",
                params.max_error_rate_increase,
                params.max_error_rate_increase * 100.0
            )));
        }
    }
    if params.manual_gates.contains(&percent) {
        let name = format!("step-{percent}");
        runtime::log(
            Level::Info,
            &format!(
                "{label}: waiting at manual gate `{name}`: run `cutover promote {name}` to go on (times out \
                 after {})",
                human(plan.wait_timeout_ms)
            ),
        );
        runtime::await_promotion(&name, plan.wait_timeout_ms).map_err(|e| with_context(e, &failed))?;
        runtime::log(Level::Info, &format!("{label}: manual gate `{name}` promoted"));
    }
    Ok(())
}

/// Errors per request; no requests is no evidence of errors.
fn error_rate(s: &TrafficStats) -> f64 {
    if s.requests == 0 { 0.0 } else { s.errors as f64 / s.requests as f64 }
}

/// Give up before the promotion: every new connection back to the stable release (when `weighted` is
/// known, i.e. weights may have moved), the canaries removed, and `cause` turned into the deploy's error.
/// No stable machine was touched, so that is all it takes to be back where the deploy started.
fn abandon(
    retries: u32,
    plan: &DeployPlan,
    weighted: Option<bool>,
    view: &Fleet,
    canaries: &[String],
    in_rotation: bool,
    cause: Error,
) -> Error {
    runtime::phase("remove canary");
    let mut notes = Vec::new();
    if weighted == Some(true) {
        match retry(retries, "setting traffic weights", || traffic::set_weights(&split(view, 0))) {
            Ok(()) => notes.push(format!(
                "new connections go to the stable release again ({})",
                shares(&split(view, 0))
            )),
            Err(e) => notes.push(format!(
                "sending every new connection back to the stable release failed ({}): the canaries may take \
                 their share until they are gone; check `traffic.weights`",
                describe_error(&e)
            )),
        }
    }
    notes.push(remove_canaries(retries, plan, canaries, in_rotation).unwrap_or_else(|left| left));
    if weighted == Some(true) {
        clear_weights(retries);
    }
    let notes = notes.join("; ");
    runtime::log(Level::Warn, &format!("canary abandoned; {notes}"));
    // The cause first, then what the fleet is left with.
    with_note(
        cause,
        &format!(
            "; the stable release is untouched and serving ({} machine(s)); {notes}",
            view.stable_machines
        ),
    )
}

/// Remove the canaries: cordon, stop (the plan's signal and timeout) and destroy them when they took
/// traffic, destroy them at once when they never did. Says what happened (`Err` when canaries are
/// left), for the log or an error.
fn remove_canaries(
    retries: u32,
    plan: &DeployPlan,
    canaries: &[String],
    in_rotation: bool,
) -> Result<String, String> {
    if canaries.is_empty() {
        return Ok("no canary machine was created".into());
    }
    if in_rotation {
        // Best effort: a canary that fails to cordon or stop is still destroyed below, which kills it.
        if let Err(failures) = with_retries(retries, canaries, traffic::cordon) {
            runtime::log(
                Level::Warn,
                &format!(
                    "cordoning {} canary machine(s) failed: {}",
                    failures.len(),
                    describe_error(&failures[0].error)
                ),
            );
        }
        if let Err(failures) = cutover_sdk::stop_machines(retries, canaries, plan) {
            runtime::log(
                Level::Warn,
                &format!(
                    "stopping {} canary machine(s) failed ({}); destroying them anyway",
                    failures.len(),
                    describe_error(&failures[0].error)
                ),
            );
        }
    }
    match with_retries(retries, canaries, machines::destroy) {
        Ok(()) => Ok(format!("the canary was removed ({} machine(s) destroyed)", canaries.len())),
        Err(left) => Err(format!(
            "removing the canary failed for {} of {} machine(s) (machine {}: {}), which {}: destroy them by \
             hand",
            left.len(),
            canaries.len(),
            left[0].id,
            describe_error(&left[0].error),
            if in_rotation { "may still be running" } else { "are cordoned and take no traffic" }
        )),
    }
}

/// The weights of one step: `percent` to the target release, the rest to the stable releases in
/// proportion to their machines.
fn split(view: &Fleet, percent: u8) -> Vec<ReleaseWeight> {
    let parts: Vec<(u64, usize)> = view.stable.iter().map(|(v, n)| (*v, *n)).collect();
    let mut weights = apportion(&parts, 100 - percent);
    weights.push(ReleaseWeight { version: view.target.version, percent });
    weights
}

/// Share `total` percent between releases in proportion to their counts, in whole percents that add up
/// to `total` (largest remainder). Nothing when no release has a machine.
fn apportion(parts: &[(u64, usize)], total: u8) -> Vec<ReleaseWeight> {
    let sum: usize = parts.iter().map(|(_, n)| n).sum();
    if sum == 0 {
        return vec![];
    }
    let total = usize::from(total);
    let mut weights: Vec<ReleaseWeight> = parts
        .iter()
        .map(|&(version, n)| ReleaseWeight { version, percent: (total * n / sum) as u8 })
        .collect();
    let given: usize = weights.iter().map(|w| usize::from(w.percent)).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total * parts[i].1 % sum));
    for &i in order.iter().take(total - given) {
        weights[i].percent += 1;
    }
    weights
}

/// "v1 90% / v2 10%", for logs.
fn shares(weights: &[ReleaseWeight]) -> String {
    weights.iter().map(|w| format!("v{} {}%", w.version, w.percent)).collect::<Vec<_>>().join(" / ")
}

/// "v1" or "v1 (8), v2 (2)", for logs.
fn releases(counts: &BTreeMap<u64, usize>) -> String {
    if counts.len() == 1 {
        return counts.keys().map(|v| format!("v{v}")).collect();
    }
    counts.iter().map(|(v, n)| format!("v{v} ({n})")).collect::<Vec<_>>().join(", ")
}

impl Route {
    /// Every machine serving now: the fleet as listed, plus the canaries.
    fn new(groups: &BTreeMap<String, Vec<Machine>>, canaries: &[String], target: u64) -> Self {
        let mut serving: BTreeMap<String, u64> = groups
            .values()
            .flatten()
            .filter(|m| should_run(m.state) && !m.cordoned)
            .map(|m| (m.id.clone(), m.release.version))
            .collect();
        serving.extend(canaries.iter().map(|id| (id.clone(), target)));
        Self { serving }
    }

    /// A batch leaves rotation.
    fn take(&mut self, batch: &Batch) {
        for m in &batch.machines {
            self.serving.remove(&m.id);
        }
    }

    /// A batch is back in rotation on `version` (the machines that were serving before the deploy).
    fn put(&mut self, batch: &Batch, version: u64) {
        for m in batch.machines.iter().filter(|m| should_run(m.state)) {
            self.serving.insert(m.id.clone(), version);
        }
    }

    /// Machines leave for good.
    fn remove(&mut self, ids: &[String]) {
        for id in ids {
            self.serving.remove(id);
        }
    }

    /// Set the weights to the serving machine count of each release. Best effort: a failure is logged,
    /// and the batches go on, since a stale split overloads machines but takes none out of service.
    fn apply(&self, retries: u32) {
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for version in self.serving.values() {
            *counts.entry(*version).or_default() += 1;
        }
        let parts: Vec<(u64, usize)> = counts.into_iter().collect();
        let weights = apportion(&parts, 100);
        if weights.is_empty() {
            return;
        }
        match retry(retries, "setting traffic weights", || traffic::set_weights(&weights)) {
            Ok(()) => {
                runtime::log(Level::Debug, &format!("traffic weights by machine count: {}", shares(&weights)))
            }
            Err(e) => runtime::log(
                Level::Warn,
                &format!(
                    "setting traffic weights to {} failed ({}): the previous split stays",
                    shares(&weights),
                    describe_error(&e)
                ),
            ),
        }
    }
}

cutover_sdk::export!(Canary);
