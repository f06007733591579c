//! Trust, then verify: after a strategy reports success, the driver reads the fleet itself and checks
//! that every machine of the target release that should run is started with every check passing.
//!
//! A strategy's success is only as good as the reads it trusted: on an API whose reads lag an update
//! (Fly's can), a strategy may see the old instance started and passing and return while the new
//! release is not up. So the deploy's own last word is a read of its own: polled until
//! `wait_timeout`, and a release that still has machines that should run but are not serving fails,
//! naming them.

use cutover_core::{CheckStatus, Machine, MachineState, Platform, Release};
use std::collections::BTreeSet;
use std::time::Duration;

/// How often the fleet is read again while machines are still coming up.
const POLL: Duration = Duration::from_millis(250);

/// Whether `m` should be running on `target` at the end of a deploy: it is on the target release and
/// not stopped, suspended or never started (as a strategy's `should_run` reads it), unless it was
/// running before the deploy (a deploy that leaves a serving machine down has not succeeded).
pub fn should_run(m: &Machine, target: &Release, running_before: &BTreeSet<String>) -> bool {
    if m.release.version != target.version {
        return false;
    }
    match m.state {
        MachineState::Destroyed | MachineState::Destroying => false,
        MachineState::Stopped | MachineState::Suspended | MachineState::Created => {
            running_before.contains(&m.id)
        }
        _ => true,
    }
}

/// Started and every check passing (cordon aside: whether a machine takes traffic is the strategy's
/// choice; whether the release runs is not).
fn up(m: &Machine) -> bool {
    m.state == MachineState::Started && m.checks.iter().all(|c| c.status == CheckStatus::Passing)
}

/// "id (state; check: status output, …)" for a message.
fn describe(m: &Machine) -> String {
    let failing: Vec<String> = m
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Passing)
        .map(|c| {
            format!("{}: {:?} {}", c.name, c.status, c.output.trim()).to_lowercase().trim_end().to_string()
        })
        .collect();
    match failing.is_empty() {
        true => format!("{} ({})", m.id, m.state.as_str()),
        false => format!("{} ({}; {})", m.id, m.state.as_str(), failing.join(", ")),
    }
}

/// The machines of `target` that should run but are not up, in `fleet`.
pub fn not_up<'a>(
    fleet: &'a [Machine],
    target: &Release,
    running_before: &BTreeSet<String>,
) -> Vec<&'a Machine> {
    fleet.iter().filter(|m| should_run(m, target, running_before) && !up(m)).collect()
}

/// Read the fleet until every machine of `target` that should run is up, or `timeout` passes; a
/// machine that has `failed` ends the wait at once. `Ok` with the last read, or why not (naming the
/// machines). A read that fails is retried like every other read of the driver's; if none succeeds,
/// the check cannot be made and the deploy is not failed for it.
pub async fn verify(
    platform: &dyn Platform,
    target: &Release,
    running_before: &BTreeSet<String>,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Ok(fleet) = cutover_core::list_with_retries(platform).await else {
            tracing::warn!("the fleet could not be read to verify the release; trusting the strategy");
            return Ok(());
        };
        let down = not_up(&fleet, target, running_before);
        if down.is_empty() {
            return Ok(());
        }
        let failed = down.iter().any(|m| m.state == MachineState::Failed);
        if failed || tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = down.iter().map(|m| describe(m)).collect();
            return Err(format!(
                "the strategy reported success, but {} machine(s) of v{} that should run {} not started and \
                 passing{}: {}",
                down.len(),
                target.version,
                if down.len() == 1 { "is" } else { "are" },
                if failed {
                    String::new()
                } else {
                    format!(" within wait_timeout ({})", cutover_core::duration::display(timeout))
                },
                names.join("; ")
            ));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(POLL.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::Check;

    fn m(id: &str, version: u64, state: MachineState, check: Option<CheckStatus>) -> Machine {
        Machine {
            id: id.into(),
            name: String::new(),
            region: "ams".into(),
            process_group: "app".into(),
            state,
            release: Release { version, image: format!("img:{version}") },
            cordoned: false,
            checks: check
                .map(|status| vec![Check { name: "http".into(), status, output: String::new() }])
                .unwrap_or_default(),
            volumes: vec![],
            metadata: vec![],
        }
    }

    #[test]
    fn only_target_machines_that_should_run_count() {
        let target = Release { version: 2, image: "img:2".into() };
        let before: BTreeSet<String> = ["was-up".to_string()].into();
        let fleet = vec![
            m("blue", 1, MachineState::Stopped, None),
            m("blue-up", 1, MachineState::Started, Some(CheckStatus::Critical)),
            m("green", 2, MachineState::Started, Some(CheckStatus::Passing)),
            m("idle", 2, MachineState::Stopped, None),
            m("was-up", 2, MachineState::Stopped, None),
            m("booting", 2, MachineState::Replacing, None),
            m("warning", 2, MachineState::Started, Some(CheckStatus::Warning)),
            m("gone", 2, MachineState::Destroyed, None),
        ];
        let down: Vec<&str> = not_up(&fleet, &target, &before).iter().map(|m| m.id.as_str()).collect();
        assert_eq!(down, ["was-up", "booting", "warning"]);
        assert_eq!(describe(&fleet[6]), "warning (started; http: warning)");
    }
}
