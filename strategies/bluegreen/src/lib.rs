//! The bluegreen strategy: bring up a whole new fleet beside the old one, then switch traffic at once.
//!
//! Blue is every machine not yet on the target release. Each blue machine gets a green clone on the
//! target release, created cordoned (`routable = false`) so it takes no traffic while it boots. Once
//! every green machine is started and passing its checks, traffic switches in one step: green is
//! uncordoned first and blue cordoned second, so there is never an instant with nothing in rotation.
//! Blue is then stopped and destroyed, or, with `retain_blue`, kept stopped and cordoned, so that going
//! back is a switch rather than a redeploy.
//!
//! Blue is not touched before the switch, so any failure up to it is undone by destroying green: blue
//! keeps serving exactly as before. That is what this strategy buys over rolling (users see one
//! release or the other, never a mix, and a bad release never takes a machine out of service), at the
//! price of running twice the machines for the length of the deploy.
//!
//! It refuses, before changing anything, what it cannot do safely: machines with volumes (a volume
//! attaches to one machine only, so a green clone could not get the data), a fleet without health
//! checks (nothing would tell a working green from a broken one; Fly refuses this too), and platforms
//! that cannot cordon (nothing would keep green out of traffic until it is ready).
//!
//! A blue machine that was stopped gets a green that is checked like every other and then stopped along
//! with blue, so the fleet keeps its shape. Machines already on the target release are skipped, so a
//! deploy run again does not clone them twice.

use kit::runtime::{self, Level};
use kit::types::{Machine, MachineError, MachineState, ParamKind, ParamSpec, ParamValue, Release};
use kit::{DeployPlan, Error, Guest, StrategyInfo, health, machines, traffic};
use kit::{describe_error, explain, list_machines, should_run, with_note, with_retries};
use std::collections::BTreeMap;

struct BlueGreen;

/// Whether blue is kept (stopped, cordoned) after the switch, by default.
const DEFAULT_RETAIN_BLUE: bool = false;

/// The check suggested to a fleet that has none.
const CHECK_EXAMPLE: &str = "[[http_service.checks]]\n  grace_period = \"10s\"\n  interval = \"15s\"\n  \
                             method = \"GET\"\n  path = \"/health\"\n  timeout = \"2s\"";

impl Guest for BlueGreen {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "bluegreen".into(),
            summary: "Clone every machine onto the new release, cordoned; once all clones are started and \
                      healthy, switch traffic to them and retire the old machines. Nothing old is touched \
                      before the switch."
                .into(),
            params: vec![
                kit::retries_param(),
                ParamSpec {
                    name: "retain_blue".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_RETAIN_BLUE)),
                    summary: "Keep blue stopped after the switch so a rollback is a switch, not a redeploy."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = kit::retries();
        let retain_blue = kit::param_bool("retain_blue", DEFAULT_RETAIN_BLUE);
        if !traffic::capabilities().cordon {
            return Err(Error::Unsupported(
                "bluegreen keeps green out of traffic by cordoning it until it is healthy, and this platform \
                 cannot cordon machines; nothing was changed. Use strategy = \"rolling\" instead."
                    .into(),
            ));
        }
        let fleet = list_machines(retries)?;

        let blue: Vec<Machine> =
            fleet.into_iter().filter(|m| m.release.version != plan.target.version).collect();
        if blue.is_empty() {
            runtime::log(Level::Info, &format!("every machine is already on v{}", plan.target.version));
            return Ok(());
        }
        refuse_volumes(&blue)?;
        refuse_without_checks(&blue)?;

        let n = blue.len();
        let blue_ids: Vec<String> = blue.iter().map(|m| m.id.clone()).collect();
        runtime::log(
            Level::Info,
            &format!(
                "bluegreen: {n} blue machine(s); creating {n} green machine(s) on v{} ({}), cordoned until \
                 they pass their checks",
                plan.target.version, plan.target.image
            ),
        );

        runtime::phase("create green");
        runtime::progress(0, n as u32);
        let mut green_of: BTreeMap<String, String> = BTreeMap::new();
        let cloned =
            with_retries(retries, &blue_ids, |sources| clone_green(sources, &plan.target, &mut green_of));
        // In blue's order, so errors and logs list machines the way `list` did.
        let green: Vec<String> = blue_ids.iter().filter_map(|b| green_of.get(b).cloned()).collect();
        if let Err(failures) = cloned {
            let context =
                format!("create green: cloning failed for {} of {n} blue machine(s)", failures.len());
            return Err(abandon(retries, &green, n, failures, &context));
        }

        runtime::phase("wait for green");
        let started = with_retries(retries, &green, |ids| {
            machines::wait_state(ids, MachineState::Started, plan.wait_timeout_ms)
        });
        if let Err(failures) = started {
            let context = format!("wait for green: {} of {n} green machine(s) did not start", failures.len());
            return Err(abandon(retries, &green, n, failures, &context));
        }
        let healthy = with_retries(retries, &green, |ids| health::wait_healthy(ids, plan.wait_timeout_ms));
        if let Err(failures) = healthy {
            let context = format!(
                "wait for green: {} of {n} green machine(s) did not pass their checks on v{}",
                failures.len(),
                plan.target.version
            );
            return Err(abandon(retries, &green, n, failures, &context));
        }
        runtime::progress(n as u32, n as u32);

        runtime::phase("switch traffic");
        // Green in before blue out: at no instant is neither in rotation. Until blue is cordoned this is
        // still undone by removing green, as above.
        if let Err(failures) = with_retries(retries, &green, traffic::uncordon) {
            let context =
                format!("switch traffic: putting {} green machine(s) in rotation failed", failures.len());
            return Err(abandon(retries, &green, n, failures, &context));
        }
        if let Err(failures) = with_retries(retries, &blue_ids, traffic::cordon) {
            let context = format!(
                "switch traffic: taking blue out of rotation failed for {} of {n} machine(s); green ({n} \
                 machine(s) on v{}) is serving, alongside the blue machines that could not be cordoned; \
                 nothing was stopped",
                failures.len(),
                plan.target.version
            );
            return Err(explain(failures, &context));
        }
        runtime::log(
            Level::Info,
            &format!("traffic switched: {n} green machine(s) on v{} serving", plan.target.version),
        );

        runtime::phase("retire blue");
        // A green standing in for a machine that was stopped goes back to stopped with blue, now that it
        // has proved it boots and passes its checks: the fleet keeps its shape.
        let mut to_stop = blue_ids.clone();
        to_stop.extend(
            blue.iter().filter(|m| !should_run(m.state)).filter_map(|m| green_of.get(&m.id).cloned()),
        );
        let stopped = with_retries(retries, &to_stop, |ids| {
            machines::stop(ids, &plan.kill_signal, plan.kill_timeout_ms)
        })
        .and_then(|()| {
            with_retries(retries, &to_stop, |ids| {
                machines::wait_state(ids, MachineState::Stopped, plan.wait_timeout_ms)
            })
        });
        if let Err(failures) = stopped {
            let context = format!(
                "retire blue: stopping failed for {} machine(s); green ({n} machine(s) on v{}) is serving \
                 and blue is cordoned, but the machines that failed may still be running: stop them by hand",
                failures.len(),
                plan.target.version
            );
            return Err(explain(failures, &context));
        }
        if retain_blue {
            runtime::log(
                Level::Info,
                &format!(
                    "kept {n} blue machine(s) stopped and cordoned (retain_blue): to roll back, start and \
                     uncordon them and cordon green; destroy them once v{} has proved itself, or the next \
                     deploy clones them as blue",
                    plan.target.version
                ),
            );
        } else {
            with_retries(retries, &blue_ids, machines::destroy).map_err(|failures| {
                let context = format!(
                    "retire blue: destroying blue failed for {} of {n} machine(s); green ({n} machine(s) on \
                     v{}) is serving, the blue machines left are stopped and cordoned: destroy them by hand",
                    failures.len(),
                    plan.target.version
                );
                explain(failures, &context)
            })?;
            runtime::log(Level::Info, &format!("destroyed {n} blue machine(s)"));
        }
        runtime::log(Level::Info, &format!("all {n} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// Refuse machines with volumes: a volume attaches to one machine only, so a green clone would start
/// without the data (the clone gets no volume at all).
fn refuse_volumes(blue: &[Machine]) -> Result<(), Error> {
    let with_volumes: Vec<&Machine> = blue.iter().filter(|m| !m.volumes.is_empty()).collect();
    let Some(first) = with_volumes.first() else { return Ok(()) };
    Err(Error::Invalid(format!(
        "bluegreen cannot deploy {} of the {} machine(s) because they have volumes (machine {} has {}): a \
         volume attaches to one machine only, so a green clone cannot get its data. Use strategy = \
         \"rolling\", which updates machines in place and keeps their volumes. Nothing was changed.",
        with_volumes.len(),
        blue.len(),
        first.id,
        first.volumes.join(", ")
    )))
}

/// Refuse a fleet without health checks: green's checks are the only evidence it works before it gets
/// traffic, and a machine without checks counts as healthy as soon as it starts.
fn refuse_without_checks(blue: &[Machine]) -> Result<(), Error> {
    if blue.iter().any(|m| !m.checks.is_empty()) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "bluegreen needs at least one health check to know green is healthy before switching traffic to \
         it, as Fly requires, and none of the {} machine(s) has one. Nothing was changed. Add a check to \
         fly.toml, for example:\n\n{CHECK_EXAMPLE}",
        blue.len()
    )))
}

/// One `clone-from` call, shaped like a batch operation so `with_retries` re-clones only the failed
/// sources. Each green created is recorded in `green_of` under its blue source; a failure is reported
/// under the blue source's id.
fn clone_green(
    sources: &[String],
    target: &Release,
    green_of: &mut BTreeMap<String, String>,
) -> Result<(), Vec<MachineError>> {
    let results = machines::clone_from(sources, target, false);
    let mut failures = Vec::new();
    for (source, result) in sources.iter().zip(results) {
        match result {
            Ok(green) => {
                green_of.insert(source.clone(), green);
            }
            Err(error) => failures.push(MachineError { id: source.clone(), error }),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures) }
}

/// Give up before the switch: destroy green and turn `failures` into the deploy's error. Blue was never
/// touched, so removing green is all it takes to be back where the deploy started.
fn abandon(retries: u32, green: &[String], blue: usize, failures: Vec<MachineError>, context: &str) -> Error {
    let removed = if green.is_empty() {
        "no green machine was created".to_string()
    } else {
        runtime::phase("remove green");
        match with_retries(retries, green, machines::destroy) {
            Ok(()) => format!("green was removed ({} machine(s) destroyed)", green.len()),
            Err(left) => format!(
                "removing green failed for {} of {} machine(s) (machine {}: {}), which are cordoned and take \
                 no traffic: destroy them by hand",
                left.len(),
                green.len(),
                left[0].id,
                describe_error(&left[0].error)
            ),
        }
    };
    runtime::log(Level::Warn, &format!("deploy abandoned before the switch; {removed}"));
    // The cause first, then what the fleet is left with.
    let error = explain(failures, context);
    with_note(error, &format!("; blue is untouched and still serving ({blue} machine(s)); {removed}"))
}

kit::export!(BlueGreen with_types_in kit::bindings);
