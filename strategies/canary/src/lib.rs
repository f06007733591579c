//! The canary strategy: try the new release on a few machines with a growing share of traffic, and only
//! then roll the fleet onto it.
//!
//! The stable release is every machine not yet on the target release. Per process group, `canary_count`
//! stable machines (serving ones first) are cloned onto the target release; like flyctl's canary, each
//! takes traffic from its first passing check (every platform routes only to machines started and
//! passing). They receive, step by step, the percentages of new connections listed
//! in `steps` (10, 25, 50 by default), each for `step_pause` from the moment every canary passes. After
//! each pause a gate decides whether to go on: every check of every canary must be passing; where the platform reports per-release statistics, the canary's
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
//! rolling strategy does it (`cutover_sdk::rollout::roll_groups`: per process group, a window of
//! `max_unavailable`, each machine cordoned, updated, waited on until started and passing, and
//! uncordoned, one back in service letting the next one in; with `rollback`, a failed roll moves every
//! machine it moved back before failing). The canaries are then cordoned, stopped and destroyed, so
//! the fleet has the shape it had before the deploy. Machines already on the target release are
//! neither cloned nor moved.
//!
//! Traffic is split with `traffic.set-weights` where the platform can. There the canaries are created
//! cordoned and the first step's weights set before they go into rotation (while they boot), so they
//! never take more than the first step's share; elsewhere they are created routable. Once the gates
//! have passed, the weights are cleared (`set-weights([])`) before the promotion: routing goes back to
//! machine count, which is the split the serving machines of each release give at every instant of
//! the roll (a split left pinned would pile the stable share onto the last stable machines), and the
//! next deploy starts from the default. On a platform without weights the canaries get the share
//! their number gives them among the serving machines, which the log states, and the steps are only
//! pauses with gates.
//!
//! With `metric_error_query` and/or `metric_latency_query` set (contract 0.2's `metrics`), each step's
//! gate also judges the app's own metrics: the template is asked over the last `metric_window` (default
//! the step's pause) for the canaries (`{version}` = the target, `{machines}` = the canaries) and for
//! the stable machines, and the host's judge (Mann–Whitney U, Hodges–Lehmann effect) decides. `fail`
//! fails the gate like any other, naming the metric and its query; `marginal` is a warning and the
//! canary goes on; a query that fails or finds no samples fails the gate. Without them it is as before.
//!
//! It refuses, before changing anything, stable machines with volumes (a volume attaches to one machine
//! only, so a canary clone could not get the data; rolling updates in place and keeps them) and
//! platforms that cannot cordon (nothing would take the canaries out of traffic before removing them).

mod gate;
mod params;
mod remove;
mod weights;

use gate::gate;
use params::{
    DEFAULT_CANARY_COUNT, DEFAULT_MAX_ERROR_RATE_INCREASE, DEFAULT_METRIC_CONFIDENCE,
    DEFAULT_METRIC_INTERVAL_MS, DEFAULT_METRIC_TOLERANCE, DEFAULT_ROLLBACK, DEFAULT_STEP_PAUSE_MS,
    DEFAULT_STEPS, read_params,
};
use remove::{abandon, remove_canaries};
use weights::{Fleet, releases, shares, split};

use cutover_sdk::pipeline::{StateWait, Step, every_machine, pipeline};
use cutover_sdk::rollout::{RollPlan, by_group, roll_groups};
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::{Machine, MachineState, ParamKind, ParamSpec, ParamValue};
use cutover_sdk::{DeployPlan, Error, Guest, StrategyInfo, traffic};
use cutover_sdk::{clear_weights, clone_machines, explain, human, list_machines, refuse_volumes, retry};
use cutover_sdk::{should_run, with_context, with_note, with_retries};
use std::collections::BTreeMap;

struct Canary;

impl Guest for Canary {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "canary".into(),
            summary: "Clone a few machines onto the new release and give them a growing share of traffic, \
                      step by step, with health, error-rate, metric (judged canary vs stable) and manual \
                      gates; then roll the fleet onto it in place and remove the canaries. A failed gate removes the canaries and \
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
                cutover_sdk::params::text(
                    "metric_error_query",
                    "",
                    "PromQL template of an error ratio judged canary vs stable after each step \
                     ({version}, {machines}: regex alternations, match with =~; {app}), e.g. \
                     sum(rate(http_requests_total{app=\"{app}\",version=~\"{version}\",instance=~\"{machines}\",code=~\"5..\"}[30s]) or vector(0)) \
                     / sum(rate(http_requests_total{app=\"{app}\",version=~\"{version}\",instance=~\"{machines}\"}[30s])). \
                     Empty: no metric gate.",
                ),
                cutover_sdk::params::text(
                    "metric_latency_query",
                    "",
                    "PromQL template of a latency judged like metric_error_query, e.g. \
                     histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app=\"{app}\",version=~\"{version}\",instance=~\"{machines}\"}[30s]))). \
                     Empty: no latency gate.",
                ),
                cutover_sdk::params::float(
                    "metric_confidence",
                    DEFAULT_METRIC_CONFIDENCE,
                    "The judge's confidence (0.5 to 1): a difference fails only when its p-value is below \
                     1 - confidence.",
                ),
                cutover_sdk::params::float(
                    "metric_tolerance",
                    DEFAULT_METRIC_TOLERANCE,
                    "The judge's tolerance band, a fraction of the estimated shift (Kayenta's 0.25); a \
                     significant shift inside it is marginal, logged and let through.",
                ),
                cutover_sdk::params::float(
                    "metric_error_min_effect",
                    0.0,
                    "The smallest error-ratio increase that may fail a step (0.01 = one point); smaller \
                     significant ones are marginal.",
                ),
                cutover_sdk::params::float(
                    "metric_latency_min_effect",
                    0.0,
                    "The smallest latency increase, in the query's unit, that may fail a step.",
                ),
                cutover_sdk::params::duration(
                    "metric_window",
                    0,
                    "How far back each step's metric gate looks (0: the step's own step_pause).",
                ),
                cutover_sdk::params::duration(
                    "metric_interval",
                    DEFAULT_METRIC_INTERVAL_MS,
                    "The interval between the points of the metric gates' range queries.",
                ),
                ParamSpec {
                    name: "rollback".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_ROLLBACK)),
                    summary: "On a failed promotion, move every machine this deploy moved back to the \
                              previous release (same window, same checks) before failing."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let params = read_params(&plan)?;
        let retries = params.retries;
        let caps = traffic::capabilities();
        if !caps.cordon {
            return Err(Error::Unsupported(
                "canary takes the canaries out of traffic by cordoning them before it removes them (after \
                 a failed gate, too), and this platform cannot cordon machines; nothing was changed. Use \
                 strategy = \"rolling\" instead."
                    .into(),
            ));
        }
        // Leftovers of earlier deploys are finished first, and are not machines to move.
        let fleet = cutover_sdk::leftover::finish_earlier(retries, &plan, list_machines(retries)?);

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
        let view = Fleet {
            target: &plan.target,
            stable: stable_versions,
            stable_machines: stable.len(),
            stable_ids: stable.iter().map(|m| m.id.clone()).collect(),
        };

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
        // Every platform routes to a machine only once it is started and passing (Fly's proxy, the
        // local proxy and the simulator alike). Where weights split the traffic, the canaries are
        // created cordoned, the first step's share set, and only then put in rotation, all while they
        // boot: each takes that share, never more, from its first passing check, the two round trips
        // hidden behind its boot. Where they do not (Fly), the canaries are created routable, as
        // flyctl's canary is, with no call between the clone and their first traffic; an uncordon
        // there would name an instance the lagging Machines API may not report yet.
        let weighted = caps.weights;
        let mut canary_of: BTreeMap<String, String> = BTreeMap::new();
        let cloned = with_retries(retries, &sources, |ids| {
            clone_machines(ids, &plan.target, !weighted, &mut canary_of)
        });
        // In the sources' order, so errors and logs list machines the way `list` did.
        let canaries: Vec<String> = sources.iter().filter_map(|s| canary_of.get(s).cloned()).collect();
        // From the moment a canary is routable it may be serving (it passes whenever it is ready), so
        // giving up takes it out of rotation and stops it gracefully before destroying it.
        if let Err(failures) = cloned {
            let context =
                format!("start canary: cloning failed for {} of {c} source machine(s)", failures.len());
            let e = explain(failures, &context);
            // No weights were set yet: none to put back.
            return Err(abandon(retries, &plan, None, &view, &canaries, !weighted, e));
        }
        if weighted {
            let first = params.steps[0];
            let set =
                retry(retries, "setting traffic weights", || traffic::set_weights(&split(&view, first)));
            if let Err(e) = set {
                let e = with_context(
                    e,
                    &format!(
                        "start canary: could not set the first step's traffic weights ({first}% to v{}) \
                         before putting the canary in rotation",
                        plan.target.version
                    ),
                );
                return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, false, e));
            }
            if let Err(failures) = with_retries(retries, &canaries, traffic::uncordon) {
                let context = format!(
                    "start canary: putting {} of {c} canary machine(s) in rotation failed",
                    failures.len()
                );
                let e = explain(failures, &context);
                return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, true, e));
            }
        }
        let serving = [
            Step::WaitState(StateWait { state: MachineState::Started, timeout_ms: plan.wait_timeout_ms }),
            Step::WaitHealthy(plan.wait_timeout_ms),
        ];
        if let Err(unfinished) = pipeline(retries, &canaries, &serving, every_machine()) {
            let at = |step: u32| unfinished.failed.iter().filter(|f| f.step == step).count();
            let context = match (at(0), at(1)) {
                (0, n) => format!(
                    "start canary: {n} of {c} canary machine(s) did not pass their checks on v{}",
                    plan.target.version
                ),
                (n, _) => format!("start canary: {n} of {c} canary machine(s) did not start"),
            };
            let e = explain(unfinished.errors(), &context);
            return Err(abandon(retries, &plan, Some(weighted), &view, &canaries, true, e));
        }
        runtime::progress(c as u32, c as u32);

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
                // The first step's weights were set before the canaries went into rotation.
                let set = if index == 0 {
                    Ok(())
                } else {
                    retry(retries, "setting traffic weights", || traffic::set_weights(&split(&view, percent)))
                };
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

        // The promotion: rolling's window, per process group. Routing goes back to machine count first
        // (the weights cleared), which is the split the serving machines of each release give at
        // every instant of the roll, with no call between one machine's return and the next one's
        // leaving; a split left pinned would pile the stable share onto the last stable machines.
        let to_move = stable.len();
        runtime::log(
            Level::Info,
            &format!(
                "every gate passed: promoting {to_move} stable machine(s) in {} process group(s) to v{}",
                groups.len(),
                plan.target.version
            ),
        );
        let cleared = weighted && clear_weights(retries);
        let roll = RollPlan {
            release: &plan.target,
            max_unavailable: &plan.max_unavailable,
            can_cordon: caps.cordon,
            wait_timeout_ms: plan.wait_timeout_ms,
            rollback: params.rollback,
            previous: plan.previous.as_ref(),
            label: "promote ",
        };
        let moved = match roll_groups(retries, &groups, &roll) {
            Ok(moved) => moved,
            Err(error) => {
                // The canaries were only ever there to be removed: the fleet keeps its size.
                let removed =
                    remove_canaries(retries, &plan, &canaries, true).unwrap_or_else(|(left, _)| left);
                if weighted && !cleared {
                    clear_weights(retries);
                }
                return Err(with_note(error, &format!("; {removed}")));
            }
        };

        runtime::phase("remove canary");
        // Every stable machine is on v2 and serving: removing the canaries is clean-up, retried for the
        // whole budget, and what the platform still refuses is left tagged rather than failing the deploy.
        match remove_canaries(retries, &plan, &canaries, true) {
            Ok(removed) => runtime::log(Level::Info, &removed),
            Err((_, left)) => {
                cutover_sdk::leftover::leave(
                    retries,
                    &plan,
                    &left,
                    cutover_sdk::leftover::Todo::StopAndDestroy,
                    "canary machine(s)",
                );
            }
        }
        // Cleared before the promotion; once more if that failed, so no release stays pinned.
        if weighted && !cleared {
            clear_weights(retries);
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

cutover_sdk::export!(Canary);
