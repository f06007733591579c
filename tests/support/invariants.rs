//! What every built-in strategy promises on any fleet and under any fault the property tests draw,
//! checked at every change the simulator recorded and at the end.

use super::{Faults, SimRun, V1, V2};
use cutover::contract::MaxUnavailable;
use cutover::events::{EventKind, HostCall};
use cutover::platform::{ErrorKind, Machine, MachineState, OpError};
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

    /// Whether the deploy must fail: the new release outlasts `wait_timeout` (and the strategy waits
    /// for it; immediate does not).
    pub fn must_fail(&self) -> bool {
        self.faults.slow_v2.is_some() && self.strategy != "immediate"
    }

    /// Whether the drawn faults can explain this failure: the new release outlasting `wait_timeout`, a
    /// crash of a machine a rolling batch was waiting on (the error names it), or a transient API error
    /// that outlasted the retries (the error is a platform error).
    fn explains(&self, error: &OpError) -> bool {
        let crash = self.crashed().is_some_and(|id| error.message.contains(&format!("machine {id}")));
        self.must_fail()
            || (crash && matches!(self.strategy, "rolling" | "canary"))
            || (self.faults.error_rate > 0.0 && error.kind == ErrorKind::Platform)
    }

    /// The most machines this strategy may take out of service at once, or none for immediate (which
    /// takes them all). A crash takes one more out, whatever the strategy.
    fn capacity_allowance(&self) -> Option<usize> {
        let crash = usize::from(self.faults.crash.is_some());
        match self.strategy {
            "bluegreen" | "drain-then-destroy" => Some(crash),
            "rolling" | "canary" => {
                // Per process group; the largest group's allowance bounds the whole fleet's shortfall,
                // since batches of different groups never overlap.
                let allowed = ["app", "worker"]
                    .iter()
                    .map(|g| self.fleet.iter().filter(|m| m.process_group == *g).count())
                    .filter(|&n| n > 0)
                    .map(|n| self.max_unavailable.allowed(n))
                    .max()
                    .unwrap_or(0);
                Some(allowed + crash)
            }
            _ => None,
        }
    }
}

/// Check the run against the promises, returning the first broken one. Call after the deploy has
/// returned; `settle` is awaited before the end state is read (immediate returns while machines boot).
pub async fn check(setup: &Setup, run: &SimRun, settle: Duration) -> Result<(), String> {
    let strategy = setup.strategy;
    let result = match &run.result {
        Ok(r) => r,
        Err(e) => return Err(format!("{strategy}: the sandbox stopped the strategy: {e:?}")),
    };
    match result {
        Ok(()) if setup.must_fail() => {
            return Err(format!("{strategy}: succeeded although v2 outlasts wait_timeout"));
        }
        Err(e) if !setup.explains(e) => return Err(format!("{strategy}: failed without cause: {e}")),
        _ => {}
    }
    // A rollback stops at its first failure (a crash while it waits, a 503 outlasting the retries),
    // saying how far it got: the fleet is then split between the releases, as the error says.
    let rollback_failed = matches!(result, Err(e) if e.message.contains("rollback to v1 failed"));

    let availability = run.world.availability().ok_or("availability was not tracked")?;
    if let Some(allowed) = setup.capacity_allowance() {
        for &(at, serving) in &availability.samples {
            let out = availability.baseline.saturating_sub(serving);
            if out > allowed {
                return Err(format!(
                    "{strategy}: {out} machine(s) out of service at {at} ms, at most {allowed} allowed"
                ));
            }
        }
    }
    if strategy == "canary" {
        // Before the promotion, the canary never has more than the last step's weight (50%) while the
        // stable release serves. (Once a crash has taken the last stable machine down, whatever still
        // serves takes every request: no split can say otherwise.)
        let promotion = phase_at(run, "promote").unwrap_or(u64::MAX);
        for (at, shares) in &availability.traffic {
            let v2 = shares.iter().find(|(v, _)| *v == 2).map_or(0.0, |(_, p)| *p);
            let stable_down = !shares.iter().any(|(v, _)| *v == 1) && setup.faults.crash.is_some();
            if *at < promotion && v2 > 50.0 + 1e-9 && !stable_down {
                return Err(format!("canary: v2 had {v2}% of new requests at {at} ms, before the promotion"));
            }
        }
    }
    if strategy == "drain-then-destroy" {
        // drain_timeout (5m) outlasts every connection (at most 90 s): nothing is cut.
        let cuts = run.world.cut_connections();
        if !cuts.is_empty() {
            return Err(format!("drain-then-destroy: connections cut: {cuts:?}"));
        }
    }

    // Let stragglers finish (immediate returns while machines boot), then look at the end state.
    tokio::time::sleep(settle).await;
    let fleet = run.world.snapshot(super::APP);
    if matches!(result, Err(e) if e.kind == ErrorKind::Platform) {
        // Transient errors outlasted the retries: the strategy gave up where it was and its error says
        // what is left (blue not yet destroyed, a batch still cordoned). Nothing may be lost, and no
        // more capacity than the strategy may take out at once may stay out.
        if fleet.len() < setup.fleet.len() {
            return Err(format!(
                "{strategy}: gave up with {} machine(s) of {}: machines lost",
                fleet.len(),
                setup.fleet.len()
            ));
        }
        let serving = fleet.iter().filter(|m| m.is_serving()).count();
        if let Some(allowed) = setup.capacity_allowance()
            && serving + allowed < availability.baseline
        {
            return Err(format!(
                "{strategy}: gave up with {serving} machine(s) serving of {}",
                availability.baseline
            ));
        }
        return Ok(());
    }
    if fleet.len() != setup.fleet.len() {
        return Err(format!(
            "{strategy}: {} machine(s) at the end, {} before: machines lost or left over",
            fleet.len(),
            setup.fleet.len()
        ));
    }
    let image = if matches!(result, Ok(())) { V2 } else { V1 };
    for m in &fleet {
        if m.release.image != image && !(rollback_failed && m.release.image == V2) {
            return Err(format!(
                "{strategy}: {} is on {}, the fleet should be on {image}",
                m.id, m.release.image
            ));
        }
        if m.is_serving() {
            continue;
        }
        // A machine that crashed after the deploy last changed it stays down: nothing restarts it. It
        // stays cordoned only if the deploy stopped at it.
        let excused = setup.crashed() == Some(m.id.as_str())
            && m.state == MachineState::Failed
            && (!m.cordoned || result.is_err())
            && !updated_after_crash(setup, run, &m.id);
        if !excused {
            return Err(format!("{strategy}: {} is not serving at the end: {m:?}", m.id));
        }
    }
    Ok(())
}

/// Whether a `machines.update` naming `id` started after the scenario's crash: such an update restarts
/// the crashed machine, so it has to come back.
fn updated_after_crash(setup: &Setup, run: &SimRun, id: &str) -> bool {
    let Some((_, at)) = setup.faults.crash else { return false };
    let crash_ms = at.as_millis() as u64;
    run.events.iter().any(|e| match &e.kind {
        EventKind::HostCall { call: HostCall::Update { ids, .. }, took_ms, .. } => {
            e.at_ms - took_ms >= crash_ms && ids.iter().any(|i| i == id)
        }
        _ => false,
    })
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
