//! The bluegreen strategy: bring up a whole new fleet beside the old one, then switch traffic at once.
//!
//! Blue is every machine not yet on the target release. Each blue machine gets a green clone on the
//! target release, kept out of traffic while it boots. Once every green machine is started and passing
//! its checks, traffic switches in one step: where the platform splits traffic by weight, one call
//! gives the target release 100% (green was put in rotation at 0% while it booted); elsewhere green is
//! uncordoned first and blue cordoned second, so there is never an instant with nothing in rotation
//! (see `cutover_sdk::green`). Blue is then stopped and destroyed, or, with `retain_blue`, kept stopped
//! and cordoned, so that going back is a switch rather than a redeploy: `cutover rollback` runs this
//! strategy with the earlier release as target, and the kept machines stand in as green.
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
//! with blue, so the fleet keeps its shape. Machines already on the target release are not cloned
//! again: serving ones are left as they are, cordoned ones are reused as green.

use cutover_sdk::leftover::{Todo, leave};
use cutover_sdk::pipeline::retire;
use cutover_sdk::runtime::{self, Level};
use cutover_sdk::types::{ParamKind, ParamSpec, ParamValue};
use cutover_sdk::{DeployPlan, Error, Guest, Retry, StrategyInfo, traffic};

struct BlueGreen;

/// Whether blue is kept (stopped, cordoned) after the switch, by default.
const DEFAULT_RETAIN_BLUE: bool = false;

impl Guest for BlueGreen {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "bluegreen".into(),
            summary: "Clone every machine onto the new release, out of traffic; once all clones are \
                      started and healthy, switch traffic to them and retire the old machines. Nothing \
                      old is touched before the switch."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
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
        let retries = Retry::for_plan(&plan);
        let retain_blue = cutover_sdk::params::get_bool("retain_blue", DEFAULT_RETAIN_BLUE);
        if !traffic::capabilities().cordon {
            return Err(Error::Unsupported(
                "bluegreen keeps green out of traffic by cordoning it until it is healthy, and this platform \
                 cannot cordon machines; nothing was changed. Use strategy = \"rolling\" instead."
                    .into(),
            ));
        }
        let Some(mut switched) = cutover_sdk::green::bring_up("bluegreen", retries, &plan, |n| {
            format!(
                "bluegreen: {n} blue machine(s); creating {n} green machine(s) on v{} ({}), out of traffic \
                 until they pass their checks",
                plan.target.version, plan.target.image
            )
        })?
        else {
            return Ok(());
        };
        let blue_ids = switched.blue_ids.clone();
        let n = blue_ids.len();
        runtime::log(
            Level::Info,
            &format!("traffic switched: {n} green machine(s) on v{} serving", plan.target.version),
        );

        runtime::phase("retire blue");
        // Past the switch nothing can fail the deploy: v2 serves, and what is left is idempotent
        // clean-up, retried for the whole budget. What the platform still refuses is left tagged.
        // A green standing in for a machine that was stopped goes back to stopped with blue, now that it
        // has proved it boots and passes its checks: the fleet keeps its shape.
        // Each blue machine is stopped, seen down and destroyed on its own (one pipeline), so the
        // first are gone while the last still stop; weights that kept blue out of traffic are cleared
        // while they stop.
        let stand_ins = switched.stand_ins_for_stopped();
        if let Err(left) = retire(retries, &stand_ins, &plan, false) {
            leave(
                retries,
                &plan,
                &left.not_stopped,
                Todo::Stop,
                "green machine(s) standing in for stopped ones",
            );
        }
        // Blue machines still on the platform once this is done: cordoned before any weights go.
        let mut kept: Vec<String> = if retain_blue { blue_ids.clone() } else { Vec::new() };
        match switched.retire(retries, &plan, !retain_blue) {
            Ok(()) if !retain_blue => {
                runtime::log(Level::Info, &format!("destroyed {n} blue machine(s)"));
            }
            Ok(()) => {}
            Err(left) => {
                if !retain_blue {
                    kept.extend(left.not_stopped.iter().chain(&left.not_destroyed).map(|f| f.id.clone()));
                }
                if !left.not_stopped.is_empty() {
                    leave(retries, &plan, &left.not_stopped, Todo::StopAndDestroy, "blue machine(s)");
                }
                if !left.not_destroyed.is_empty() {
                    leave(retries, &plan, &left.not_destroyed, Todo::Destroy, "blue machine(s)");
                }
                if !retain_blue {
                    let gone = n - left.not_stopped.len() - left.not_destroyed.len();
                    runtime::log(Level::Info, &format!("destroyed {gone} blue machine(s)"));
                }
            }
        }
        switched.finish(retries, &kept);
        if retain_blue {
            runtime::log(
                Level::Info,
                &format!(
                    "kept {n} blue machine(s) stopped and cordoned (retain_blue): `cutover rollback` switches \
                     traffic back to them; destroy them once v{} has proved itself, or the next deploy clones \
                     them as blue",
                    plan.target.version
                ),
            );
        }
        runtime::log(Level::Info, &format!("all {n} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

cutover_sdk::export!(BlueGreen);
