//! The promises every built-in strategy keeps on any fleet and under any fault the property tests draw:
//! `cutover::verify::invariants`, the same checks `cutover verify` runs, fed from a property-test run.

use super::{Faults, SimRun, V1, V2};
use cutover::core::contract::MaxUnavailable;
use cutover::core::events::{EventKind, HostCall};
use cutover::core::{Machine, Release};
use cutover::verify::invariants::{self as shared, Observed, Verdict};
use std::time::Duration;

/// The fleet as it was before the deploy, and the deploy's parameters that the promises depend on.
pub struct Setup {
    pub strategy: &'static str,
    /// The starting fleet, as `SimWorld::snapshot` gave it before the run.
    pub fleet: Vec<Machine>,
    pub faults: Faults,
    pub max_unavailable: MaxUnavailable,
}

impl Setup {
    /// The id of the machine the scenario crashes, if it crashes one (faults name it by its index in the
    /// starting fleet, which its name ends with).
    pub fn crashed(&self) -> Option<&str> {
        let (index, _) = self.faults.crash?;
        let index = index.to_string();
        self.fleet.iter().find(|m| m.name.rsplit('-').next() == Some(index.as_str())).map(|m| m.id.as_str())
    }

    /// The shared checker's view of this setup. `immediate` promises no availability; the drain
    /// timeout is drain-then-destroy's default (the property tests run every strategy on defaults).
    fn shared(&self) -> shared::Setup {
        shared::Setup {
            fleet: self.fleet.clone(),
            previous: Release { version: 1, image: V1.into() },
            target: Release { version: 2, image: V2.into() },
            max_unavailable: self.max_unavailable,
            faults: shared::Faults {
                api_error_rate: self.faults.error_rate,
                unhealthy: false,
                slow: self.faults.slow_v2.is_some(),
                crash: self.crashed().zip(self.faults.crash).map(|(id, (_, at))| (id.to_string(), at)),
                regression: false,
            },
            drain_timeout: (self.strategy == "drain-then-destroy").then_some(Duration::from_secs(300)),
            allow_downtime: self.strategy == "immediate",
            allow_standby: false,
        }
    }
}

/// Check the run against the promises, returning the first broken one. Call after the deploy has
/// returned; `settle` is awaited before the end state is read (immediate returns while machines boot).
pub async fn check(setup: &Setup, run: &SimRun, settle: Duration) -> Result<(), String> {
    tokio::time::sleep(settle).await;
    let end = run.world.snapshot(super::APP);
    let availability = run.world.availability().ok_or("availability was not tracked")?;
    let cuts = run.world.cuts();
    let result = run.result.as_ref().map(Clone::clone).map_err(|e| format!("{e:?}"));
    let seen = Observed {
        result: &result,
        events: &run.events,
        availability: &availability,
        cuts: &cuts,
        end: &end,
    };
    for (invariant, verdict) in shared::check(&setup.shared(), &seen) {
        if let Verdict::Fail(v) = verdict {
            return Err(format!(
                "{}: {} broken: {} (at {:?} ms, call {:?}, machines {:?})",
                setup.strategy,
                invariant.name(),
                v.message,
                v.at_ms,
                v.call,
                v.machines
            ));
        }
    }
    Ok(())
}

/// When the first phase whose name starts with `prefix` began, in virtual ms.
pub fn phase_at(run: &SimRun, prefix: &str) -> Option<u64> {
    run.events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::HostCall { call: HostCall::Phase { name }, .. } if name.starts_with(prefix)))
        .map(|e| e.at_ms)
}

/// One draw of faults, before it is fitted to a fleet of some size.
#[derive(Debug, Clone)]
pub struct FaultDraw {
    error_rate: f64,
    /// A machine (any index; taken modulo the fleet size) crashes this many seconds in.
    crash: Option<(usize, u64)>,
    /// The new release boots in twice `wait_timeout`, so every wait on it times out.
    slow_v2: bool,
    wait_timeout: Duration,
}

impl FaultDraw {
    /// The faults for a fleet of `machines`, and the `wait_timeout` to deploy with.
    pub fn for_fleet(&self, machines: usize) -> (Faults, Duration) {
        let faults = Faults {
            error_rate: self.error_rate,
            crash: self.crash.map(|(i, at)| (i % machines.max(1), Duration::from_secs(at))),
            slow_v2: self.slow_v2.then_some(self.wait_timeout * 2),
        };
        (faults, self.wait_timeout)
    }
}

/// Faults for the property tests: transient API errors (none or 3%), half the time a crash of one
/// machine within the first 150 s (mid-deploy for every strategy: bluegreen takes about 30 s, canary
/// four minutes), a quarter of the time a new release slower than `wait_timeout`, which is 5 minutes
/// (the default) or 1 minute.
pub fn random_faults() -> impl proptest::strategy::Strategy<Value = FaultDraw> {
    use proptest::prelude::*;
    (
        prop_oneof![Just(0.0), Just(0.03)],
        proptest::option::weighted(0.5, (0usize..64, 1u64..150)),
        proptest::bool::weighted(0.25),
        prop_oneof![Just(60u64), Just(300)],
    )
        .prop_map(|(error_rate, crash, slow_v2, timeout)| FaultDraw {
            error_rate,
            crash,
            slow_v2,
            wait_timeout: Duration::from_secs(timeout),
        })
}

/// How long to let the fleet settle after the deploy before reading its end state: long enough for a
/// slow release to finish booting and pass its checks (immediate does not wait for it).
pub fn settle(faults: &Faults) -> Duration {
    faults.slow_v2.unwrap_or_default() + Duration::from_secs(600)
}
