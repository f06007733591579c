//! Moving machines in place, a window or a batch at a time, and back again: what rolling does to the
//! whole fleet and canary does to the stable machines once its gates have passed ([`roll_groups`]).

use crate::batch::batch_size;
use crate::runtime::{self, Level};
use crate::types::{Machine, MachineError, MaxUnavailable, Release};
use crate::{NotServing, Retry, describe_error, health, should_run, traffic, wait_serving, with_retries};
use std::collections::BTreeMap;

pub use crate::batch::by_group;

/// One batch of one process group, as the roll planned it (kept for a rollback).
pub struct Batch<'a> {
    /// "app batch 2/3", for phases and errors.
    pub label: String,
    /// The machines of the batch, in the order `list` gave them.
    pub machines: Vec<&'a Machine>,
}

/// The batches of a roll onto `target_version`, group by group: each group's machines not yet on it, in
/// batches of `max` (see [`crate::batch::batch_size`]). Each comes with its step, "app: batch 2/3", for phases.
pub fn plan_batches<'a>(
    groups: &'a BTreeMap<String, Vec<Machine>>,
    target_version: u64,
    max: &MaxUnavailable,
) -> Vec<(String, Batch<'a>)> {
    let mut planned = Vec::new();
    for (group, members) in groups {
        let pending: Vec<&Machine> = members.iter().filter(|m| m.release.version != target_version).collect();
        if pending.is_empty() {
            continue;
        }
        let size = batch_size(max, members.len());
        let batches = pending.len().div_ceil(size);
        for (index, chunk) in pending.chunks(size).enumerate() {
            let batch =
                Batch { label: format!("{group} batch {}/{batches}", index + 1), machines: chunk.to_vec() };
            planned.push((format!("{group}: batch {}/{batches}", index + 1), batch));
        }
    }
    planned
}

/// Move one batch to `release`: cordon, update, wait started, wait healthy, uncordon.
///
/// Machines that were serving must come back; stopped ones are updated and stay stopped, so they are
/// neither waited on nor put back in rotation.
pub fn move_batch(
    retries: impl Into<Retry>,
    can_cordon: bool,
    batch: &Batch,
    release: &Release,
    wait_timeout_ms: u64,
) -> Result<(), Vec<MachineError>> {
    let retries: Retry = retries.into();
    #[cfg(not(feature = "contract-0-1"))]
    return move_batch_pipelined(retries, can_cordon, batch, release, wait_timeout_ms);
    #[cfg(feature = "contract-0-1")]
    move_batch_in_calls(retries, can_cordon, batch, release, wait_timeout_ms)
}

/// [`move_batch`] as one pipeline per kind of machine (contract 0.2): each machine is updated as soon
/// as it is cordoned and back in rotation as soon as it passes, instead of every step waiting for the
/// slowest machine of the batch. The stopped machines go first: they take two round trips, and a
/// failure there stops the batch before anything serving leaves rotation.
#[cfg(not(feature = "contract-0-1"))]
fn move_batch_pipelined(
    retries: Retry,
    can_cordon: bool,
    batch: &Batch,
    release: &Release,
    wait_timeout_ms: u64,
) -> Result<(), Vec<MachineError>> {
    use crate::pipeline::{every_machine, move_steps, pipeline};
    let (serving, stopped): (Vec<&Machine>, Vec<&Machine>) =
        batch.machines.iter().partition(|m| should_run(m.state));
    for (machines, serves) in [(stopped, false), (serving, true)] {
        let ids = crate::ids(&machines);
        let steps = move_steps(release, serves, can_cordon, wait_timeout_ms);
        pipeline(retries, &ids, &steps, every_machine()).map_err(|u| u.errors())?;
    }
    Ok(())
}

/// [`move_batch`] in one call per step (contract 0.1, which has no pipelines).
#[cfg(feature = "contract-0-1")]
fn move_batch_in_calls(
    retries: Retry,
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
    with_retries(retries, &ids, |ids| crate::machines::update(ids, release))?;
    wait_serving(retries, &serving, wait_timeout_ms).map_err(NotServing::failures)?;
    if can_cordon {
        // Every machine of the batch, stopped ones too: a stopped machine keeps its routing as it was.
        with_retries(retries, &ids, traffic::uncordon)?;
    }
    Ok(())
}

/// Where a windowed roll of one process group ([`roll_window`]) stopped.
pub struct Stopped<'a> {
    /// Machines that took every step: on the new release, and serving again if they were.
    pub moved: Vec<&'a Machine>,
    /// Machines that failed a step, each with its error: out of service if they were serving.
    pub failed: Vec<MachineError>,
    /// Machines never started: untouched, still on the release they had.
    pub untouched: Vec<&'a Machine>,
}

/// Move the machines of one process group to `release` in place with at most `window` of them out of
/// service at once: cordon, update, wait started, wait healthy, uncordon, each machine on its own, one
/// machine back in service letting the next one in (contract 0.2's pipeline with a window, which is
/// what flyctl's rolling pool does one API call at a time). Batches of `window` would wait for their
/// slowest machine before the next batch starts; at thousands of machines that is most of a roll.
///
/// Stopped machines go first, all at once: they serve nobody, are updated and stay stopped. The first
/// failure other than a transient one stops the roll: no further machine starts, the machines under
/// way finish their steps, and [`Stopped`] says which machines are where.
#[cfg(not(feature = "contract-0-1"))]
pub fn roll_window<'a>(
    retries: impl Into<Retry>,
    can_cordon: bool,
    machines: &[&'a Machine],
    release: &Release,
    window: usize,
    wait_timeout_ms: u64,
) -> Result<(), Stopped<'a>> {
    use crate::pipeline::{PipelineOptions, move_steps, pipeline};
    let retries: Retry = retries.into();
    let (serving, stopped): (Vec<&'a Machine>, Vec<&'a Machine>) =
        machines.iter().partition(|m| should_run(m.state));
    let mut moved: Vec<&'a Machine> = Vec::new();
    let mut passes = [(stopped, false, 0), (serving, true, window.max(1) as u32)].into_iter();
    while let Some((list, serves, window)) = passes.next() {
        let ids = crate::ids(&list);
        let steps = move_steps(release, serves, can_cordon, wait_timeout_ms);
        let options = PipelineOptions { window, stop_on_failure: true };
        let Err(unfinished) = pipeline(retries, &ids, &steps, options) else {
            moved.extend(list);
            continue;
        };
        let failed = unfinished.errors();
        // Sets: a roll of thousands may stop with thousands not started.
        let not_started: std::collections::HashSet<&str> =
            unfinished.not_started.iter().map(String::as_str).collect();
        let failed_ids: std::collections::HashSet<&str> = failed.iter().map(|f| f.id.as_str()).collect();
        let (untouched, rest): (Vec<&'a Machine>, Vec<&'a Machine>) =
            list.into_iter().partition(|m| not_started.contains(m.id.as_str()));
        moved.extend(rest.into_iter().filter(|m| !failed_ids.contains(m.id.as_str())));
        let untouched = untouched.into_iter().chain(passes.flat_map(|(list, _, _)| list)).collect();
        return Err(Stopped { moved, failed, untouched });
    }
    Ok(())
}

/// A roll of every process group onto one release, a window at a time ([`roll_groups`]).
#[cfg(not(feature = "contract-0-1"))]
pub struct RollPlan<'a> {
    /// The release the machines move to.
    pub release: &'a Release,
    /// At most this many of a group's machines out of service at once (a count, or a fraction of the
    /// group rounded up).
    pub max_unavailable: &'a MaxUnavailable,
    /// Whether the platform can cordon: a machine leaves rotation before its update and comes back once
    /// it passes.
    pub can_cordon: bool,
    /// The bound of each wait for a machine to start and pass.
    pub wait_timeout_ms: u64,
    /// Whether a failed roll moves the machines it moved back before failing (`rollback`).
    pub rollback: bool,
    /// The release to move back to; none on an app's first deploy.
    pub previous: Option<&'a Release>,
    /// Before each group's phase and error ("promote " for canary's promotion; empty for rolling).
    pub label: &'a str,
}

/// Move every machine of `groups` not yet on `plan.release` onto it: per process group, a window of
/// `max_unavailable` ([`roll_window`]), one machine back in service letting the next one in. Returns
/// how many moved. The first failure stops the roll (no further machine is touched) and becomes the
/// deploy's error: which group, how many failed, how many moved and how many are untouched; with
/// `rollback`, every machine moved goes back first (the failed ones first, then the last moved first,
/// a window at a time), and the error says how far that got.
#[cfg(not(feature = "contract-0-1"))]
pub fn roll_groups(
    retries: impl Into<Retry>,
    groups: &BTreeMap<String, Vec<Machine>>,
    plan: &RollPlan,
) -> Result<usize, crate::Error> {
    let retries: Retry = retries.into();
    let target = plan.release.version;
    let to_move: usize = groups.values().flatten().filter(|m| m.release.version != target).count();
    let mut moved = 0usize;
    // Per process group, the machines that reached the new release and the group's window: what a
    // rollback has to undo, in the order they were moved.
    let mut done: Vec<(&str, usize, Vec<&Machine>)> = Vec::new();
    for (group, members) in groups {
        let pending: Vec<&Machine> = members.iter().filter(|m| m.release.version != target).collect();
        if pending.is_empty() {
            continue;
        }
        let window = batch_size(plan.max_unavailable, members.len());
        runtime::phase(&format!("{}{group}: {} machine(s), {window} at a time", plan.label, pending.len()));
        let rolled =
            roll_window(retries, plan.can_cordon, &pending, plan.release, window, plan.wait_timeout_ms);
        let Err(Stopped { moved: got_there, failed, .. }) = rolled else {
            moved += pending.len();
            done.push((group, window, pending));
            runtime::progress(moved as u32, to_move as u32);
            continue;
        };
        moved += got_there.len();
        let untouched = to_move - moved - failed.len();
        let failed_ids: Vec<String> = failed.iter().map(|f| f.id.clone()).collect();
        let error = crate::explain(
            failed,
            &format!(
                "{}{group}: {} of {} machine(s) failed ({window} at a time); {moved} machine(s) already on \
                 v{target}, {untouched} untouched and still on the previous release",
                plan.label,
                failed_ids.len(),
                pending.len(),
            ),
        );
        done.push((group, window, got_there));
        return Err(match (plan.rollback, plan.previous) {
            (false, _) => crate::with_note(error, &kept_note(&failed_ids, "; rollback is off")),
            (true, None) => {
                crate::with_note(error, &kept_note(&failed_ids, "; no previous release to roll back to"))
            }
            (true, Some(previous)) => {
                let back = rollback_batches(group, window, &pending, &failed_ids, &done);
                let note =
                    roll_back(retries, plan.can_cordon, &back, previous, plan.wait_timeout_ms, &mut ());
                crate::with_note(error, &note)
            }
        });
    }
    Ok(moved)
}

/// "; rollback is off: nothing was moved back; the 2 machine(s) that failed (a, b) are left as they
/// failed", naming at most five.
#[cfg(not(feature = "contract-0-1"))]
fn kept_note(failed: &[String], why: &str) -> String {
    let named = match failed.len() {
        0..=5 => failed.join(", "),
        n => format!("{}, and {} more", failed[..5].join(", "), n - 5),
    };
    format!(
        "{why}: nothing was moved back; the {} machine(s) that failed ({named}) are left as they failed",
        failed.len()
    )
}

/// What a failed roll moves back, in order: the failed machines of `group` first (they are out of
/// service), then every machine moved, the last moved first, in batches of its group's window.
#[cfg(not(feature = "contract-0-1"))]
fn rollback_batches<'a>(
    group: &str,
    window: usize,
    pending: &[&'a Machine],
    failed: &[String],
    done: &[(&str, usize, Vec<&'a Machine>)],
) -> Vec<Batch<'a>> {
    let failed: std::collections::HashSet<&str> = failed.iter().map(String::as_str).collect();
    let failed: Vec<&Machine> = pending.iter().copied().filter(|m| failed.contains(m.id.as_str())).collect();
    let mut back = Vec::new();
    for chunk in failed.chunks(window.max(1)) {
        back.push(Batch { label: format!("{group}: the machines that failed"), machines: chunk.to_vec() });
    }
    for (group, window, moved) in done.iter().rev() {
        let last_first: Vec<&Machine> = moved.iter().rev().copied().collect();
        let batches = last_first.len().div_ceil((*window).max(1));
        for (i, chunk) in last_first.chunks((*window).max(1)).enumerate() {
            back.push(Batch {
                label: format!("{group} batch {}/{batches}", i + 1),
                machines: chunk.to_vec(),
            });
        }
    }
    back
}

/// After `batch` failed to move (the machines in `failed` did not make it): put the others back in
/// rotation once they serve again, so a batch that failed on some machines does not keep the healthy
/// others out of service for good. Those that were serving are waited on as a batch is (they may still
/// be booting), at most `wait_timeout_ms` for each wait, and uncordoned if they pass; stopped ones get
/// their routing back as a completed batch leaves it. Returns how many serving machines went back.
pub fn put_back_passing(
    retries: impl Into<Retry>,
    can_cordon: bool,
    batch: &Batch,
    failed: &[String],
    wait_timeout_ms: u64,
) -> usize {
    put_back(retries, can_cordon, batch, failed, wait_timeout_ms).back
}

/// What [`put_back`] did: how many serving machines are back in rotation, and the machines of the
/// batch that are not, each with why.
pub struct PutBack {
    /// Machines that were serving before and serve again.
    pub back: usize,
    /// Machines left out of rotation (the failed ones included), each with the error that keeps it out.
    pub out: Vec<MachineError>,
}

impl PutBack {
    /// "; machines a, b are out of service (a: unhealthy: …)", or nothing when every machine is back.
    pub fn note(&self) -> String {
        let Some(first) = self.out.first() else { return String::new() };
        let ids: Vec<&str> = self.out.iter().map(|f| f.id.as_str()).collect();
        format!(
            "; {} machine(s) of that batch are out of service: {} (machine {}: {})",
            ids.len(),
            ids.join(", "),
            first.id,
            describe_error(&first.error)
        )
    }
}

/// [`put_back_passing`], saying which machines are not back and why. The machines in `failed` are not
/// looked at again: the caller has their errors.
pub fn put_back(
    retries: impl Into<Retry>,
    can_cordon: bool,
    batch: &Batch,
    failed: &[String],
    wait_timeout_ms: u64,
) -> PutBack {
    let retries: Retry = retries.into();
    if !can_cordon {
        return PutBack { back: 0, out: vec![] };
    }
    let others: Vec<&Machine> = batch.machines.iter().copied().filter(|m| !failed.contains(&m.id)).collect();
    let serving: Vec<String> = others.iter().filter(|m| should_run(m.state)).map(|m| m.id.clone()).collect();
    // Those that do not start are not waited on for their checks; the rest are.
    let down: Vec<MachineError> = match wait_serving(retries, &serving, wait_timeout_ms) {
        Ok(()) => vec![],
        Err(NotServing::Unhealthy(f)) => f,
        Err(NotServing::NotStarted(f)) => {
            let mut down = f;
            let started: Vec<String> =
                serving.iter().filter(|id| !down.iter().any(|d| d.id == **id)).cloned().collect();
            if let Err(f) = with_retries(retries, &started, |ids| health::wait_healthy(ids, wait_timeout_ms))
            {
                down.extend(f);
            }
            down
        }
    };
    let is_down = |id: &str| down.iter().any(|d| d.id == id);
    let back: Vec<String> = others.iter().map(|m| m.id.clone()).filter(|id| !is_down(id)).collect();
    let refused = with_retries(retries, &back, traffic::uncordon).err().unwrap_or_default();
    let n = serving.iter().filter(|id| !is_down(id) && !refused.iter().any(|f| f.id == **id)).count();
    let mut out = down;
    out.extend(refused);
    PutBack { back: n, out }
}

/// What a rollback does around each batch it moves back (canary re-points the traffic weights); `()`
/// does nothing.
pub trait RollbackHook {
    /// Called before `batch` leaves rotation to move back.
    fn before(&mut self, _batch: &Batch) {}
    /// Called once `batch` is back on `previous`.
    fn after(&mut self, _batch: &Batch, _previous: &Release) {}
}

impl RollbackHook for () {}

/// Move `batches` (in the order given) back to `previous`, stopping at the first failure, and say what
/// happened, as a note for the error of the roll. `hook` is called before and after each batch.
///
/// The whole failed batch goes back, even machines whose update the platform may not have accepted:
/// which ones did is not known, and updating a machine to the release it runs is only a restart, where
/// skipping one could leave it cordoned or on the failed release.
pub fn roll_back(
    retries: impl Into<Retry>,
    can_cordon: bool,
    batches: &[Batch],
    previous: &Release,
    wait_timeout_ms: u64,
    hook: &mut impl RollbackHook,
) -> String {
    let retries: Retry = retries.into();
    let total: usize = batches.iter().map(|b| b.machines.len()).sum();
    runtime::log(
        Level::Warn,
        &format!("rolling {total} machine(s) back to v{} ({})", previous.version, previous.image),
    );
    let mut back = 0usize;
    for batch in batches {
        runtime::phase(&format!("rollback: {}", batch.label));
        hook.before(batch);
        if let Err(failures) = move_batch(retries, can_cordon, batch, previous, wait_timeout_ms) {
            let first = &failures[0];
            let failed: Vec<String> = failures.iter().map(|f| f.id.clone()).collect();
            let restored = put_back(retries, can_cordon, batch, &failed, wait_timeout_ms);
            let mut out = failures.clone();
            out.extend(restored.out.iter().cloned());
            let out = PutBack { back: restored.back, out };
            return format!(
                "; rollback to v{} failed at {} (machine {}: {}; {} machine(s) failed in all): {back} \
                 machine(s) rolled back; of the {} of that batch, {} pass their checks and are back in \
                 rotation{}; {} still on the new release",
                previous.version,
                batch.label,
                first.id,
                describe_error(&first.error),
                failures.len(),
                batch.machines.len(),
                out.back,
                out.note(),
                total - back - batch.machines.len()
            );
        }
        hook.after(batch, previous);
        back += batch.machines.len();
        runtime::progress(back as u32, total as u32);
    }
    runtime::log(Level::Info, &format!("rolled {back} machine(s) back to v{}", previous.version));
    format!("; rolled {back} machine(s) back to v{}", previous.version)
}
