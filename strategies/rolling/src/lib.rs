//! The rolling strategy: replace machines in place, a batch at a time.
//!
//! Per process group, machines not yet on the target release are taken in batches of `max_unavailable`
//! (a count, or a fraction of the group rounded up; Fly's default is 0.33). Each batch is cordoned,
//! updated, waited on until started and then until passing, and uncordoned. The first failure stops the
//! roll: machines of later batches are never touched, so they keep serving the previous release.
//!
//! Machines that were stopped before the deploy are updated but stay stopped, as flyctl does. Machines
//! already on the target release are skipped, so running the same deploy again finishes a partial one.
//!
//! With `rollback` (the default), a failed batch is not left half-way: every machine this deploy moved
//! (the completed batches and the failed one) goes back to the previous release, a batch at a time with
//! the same discipline, and the deploy then fails with the original error. The failed batch goes first,
//! because it is the one out of service; completed batches follow in reverse, each one serving until its
//! turn, so a rollback never takes more than `max_unavailable` out of service either. A stopped
//! machine goes back stopped. A rollback that fails stops where it failed, like a roll does: the
//! error then says how far it got. Without `rollback`, the fleet stays split between the releases, which
//! is what an operator who wants to look at the failed machines asks for.

use kit::runtime::{self, Level};
use kit::types::{
    Machine, MachineError, MachineState, MaxUnavailable, ParamKind, ParamSpec, ParamValue, Release,
};
use kit::{DeployPlan, Error, Guest, StrategyInfo, health, machines, traffic};
use kit::{describe_error, explain, list_machines, should_run, with_note, with_retries};
use std::collections::BTreeMap;

struct Rolling;

/// Whether a failed roll moves the machines it already moved back, by default.
const DEFAULT_ROLLBACK: bool = true;

/// One batch of one process group, as the roll planned it (kept for a rollback).
struct Batch<'a> {
    /// "app batch 2/3", for phases and errors.
    label: String,
    machines: Vec<&'a Machine>,
}

impl Guest for Rolling {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "rolling".into(),
            summary: "Replace machines in place, max_unavailable at a time: cordon, update, wait \
                      started, wait healthy, uncordon. Stops at the first failure and, with `rollback`, \
                      moves what it moved back to the previous release."
                .into(),
            params: vec![
                kit::retries_param(),
                ParamSpec {
                    name: "rollback".into(),
                    kind: ParamKind::Boolean,
                    default: Some(ParamValue::Boolean(DEFAULT_ROLLBACK)),
                    summary: "On a failed batch, move every machine this deploy moved back to the \
                              previous release (same batches, same checks) before failing."
                        .into(),
                },
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        let retries = kit::retries();
        let rollback = kit::param_bool("rollback", DEFAULT_ROLLBACK);
        let can_cordon = traffic::capabilities().cordon;
        let fleet = list_machines(retries)?;

        let mut groups: BTreeMap<String, Vec<Machine>> = BTreeMap::new();
        for m in fleet {
            groups.entry(m.process_group.clone()).or_default().push(m);
        }
        let to_move: usize =
            groups.values().flatten().filter(|m| m.release.version != plan.target.version).count();
        runtime::log(
            Level::Info,
            &format!(
                "rolling {to_move} machine(s) in {} process group(s) to v{} ({})",
                groups.len(),
                plan.target.version,
                plan.target.image
            ),
        );

        let mut moved = 0usize;
        // Every batch that reached the new release, in order: what a rollback has to undo.
        let mut done: Vec<Batch> = Vec::new();
        for (group, members) in &groups {
            let pending: Vec<&Machine> =
                members.iter().filter(|m| m.release.version != plan.target.version).collect();
            if pending.is_empty() {
                continue;
            }
            let size = batch_size(&plan.max_unavailable, members.len());
            let batches = pending.len().div_ceil(size);
            for (index, chunk) in pending.chunks(size).enumerate() {
                let batch = Batch {
                    label: format!("{group} batch {}/{batches}", index + 1),
                    machines: chunk.to_vec(),
                };
                runtime::phase(&format!("{group}: batch {}/{batches}", index + 1));
                if let Err(failures) =
                    move_batch(retries, can_cordon, &batch, &plan.target, plan.wait_timeout_ms)
                {
                    let untouched = to_move - moved - batch.machines.len();
                    let error = explain(
                        failures,
                        &format!(
                            "{} failed ({} machine(s) in it); {moved} machine(s) already on v{}, {untouched} \
                             untouched and still on the previous release",
                            batch.label,
                            batch.machines.len(),
                            plan.target.version
                        ),
                    );
                    return Err(match (rollback, &plan.previous) {
                        (false, _) => error,
                        (true, None) => with_note(error, "; no previous release to roll back to"),
                        (true, Some(previous)) => {
                            // The failed batch first (it is out of service), then the others in reverse.
                            done.push(batch);
                            done.reverse();
                            let note = roll_back(retries, can_cordon, &done, previous, plan.wait_timeout_ms);
                            with_note(error, &note)
                        }
                    });
                }
                moved += batch.machines.len();
                done.push(batch);
                runtime::progress(moved as u32, to_move as u32);
            }
        }
        runtime::log(Level::Info, &format!("all {moved} machine(s) on v{}", plan.target.version));
        Ok(())
    }
}

/// Move one batch to `release`: cordon, update, wait started, wait healthy, uncordon.
///
/// Machines that were serving must come back; stopped ones are updated and stay stopped, so they are
/// neither waited on nor put back in rotation.
fn move_batch(
    retries: u32,
    can_cordon: bool,
    batch: &Batch,
    release: &Release,
    wait_timeout_ms: u64,
) -> Result<(), Vec<MachineError>> {
    let ids: Vec<String> = batch.machines.iter().map(|m| m.id.clone()).collect();
    let serving: Vec<String> =
        batch.machines.iter().filter(|m| should_run(m.state)).map(|m| m.id.clone()).collect();
    if can_cordon {
        with_retries(retries, &ids, traffic::cordon)?;
    }
    with_retries(retries, &ids, |ids| machines::update(ids, release))?;
    with_retries(retries, &serving, |ids| machines::wait_state(ids, MachineState::Started, wait_timeout_ms))?;
    with_retries(retries, &serving, |ids| health::wait_healthy(ids, wait_timeout_ms))?;
    if can_cordon {
        // Every machine of the batch, stopped ones too: a stopped machine keeps its routing as it was.
        with_retries(retries, &ids, traffic::uncordon)?;
    }
    Ok(())
}

/// Move `batches` (in the order given) back to `previous`, stopping at the first failure, and say what
/// happened, as a note for the error of the roll.
///
/// The whole failed batch goes back, even machines whose update the platform may not have accepted:
/// which ones did is not known, and updating a machine to the release it runs is only a restart, where
/// skipping one could leave it cordoned or on the failed release.
fn roll_back(
    retries: u32,
    can_cordon: bool,
    batches: &[Batch],
    previous: &Release,
    wait_timeout_ms: u64,
) -> String {
    let total: usize = batches.iter().map(|b| b.machines.len()).sum();
    runtime::log(
        Level::Warn,
        &format!("rolling {total} machine(s) back to v{} ({})", previous.version, previous.image),
    );
    let mut back = 0usize;
    for batch in batches {
        runtime::phase(&format!("rollback: {}", batch.label));
        if let Err(failures) = move_batch(retries, can_cordon, batch, previous, wait_timeout_ms) {
            let first = &failures[0];
            return format!(
                "; rollback to v{} failed at {} (machine {}: {}; {} machine(s) failed in all): {back} \
                 machine(s) rolled back, the {} of that batch may be out of service, {} still on the new \
                 release",
                previous.version,
                batch.label,
                first.id,
                describe_error(&first.error),
                failures.len(),
                batch.machines.len(),
                total - back - batch.machines.len()
            );
        }
        back += batch.machines.len();
        runtime::progress(back as u32, total as u32);
    }
    runtime::log(Level::Info, &format!("rolled {back} machine(s) back to v{}", previous.version));
    format!("; rolled {back} machine(s) back to v{}", previous.version)
}

/// Machines in one batch: a count as given, or a fraction of the group rounded up; at least one.
fn batch_size(max: &MaxUnavailable, group_len: usize) -> usize {
    let n = match *max {
        MaxUnavailable::Count(n) => n as usize,
        MaxUnavailable::Fraction(f) => (f * group_len as f64).ceil() as usize,
    };
    n.max(1)
}

kit::export!(Rolling with_types_in kit::bindings);
