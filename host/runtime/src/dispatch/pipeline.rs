//! `machines.pipeline`: every machine takes the steps in turn, going on as soon as its own step is
//! done (see [`cutover_core::pipeline`]).
//!
//! Two bounds, kept apart on purpose. `concurrency` bounds the operations in flight (a cordon, an
//! update, a count of connections: each one API round trip), as it does for a batch call; a wait is
//! not an operation and holds no slot, or machines booting would keep the others from being changed.
//! The `window` bounds machines between their first step and the end of their last, in the order
//! listed: what keeps a roll within `max_unavailable`. [`Slots`] decides who gets a slot that frees
//! up: with a window, the machine furthest along, so machines out of service come back before others
//! are taken out.

use super::counts::Counts;
use super::slots::{Slots, rank};
use super::{Dispatcher, HostReply};
use cutover_core::pipeline::{PipelineOptions, PipelineOutcome, Step, StepFailure};
use cutover_core::{ErrorKind, OpError, StopSpec};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What a resumed run skips of a pipeline the interrupted run had under way (see
/// [`Dispatcher::reconcile`]): a machine already gone when the steps destroy it, or an update already
/// made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skip {
    /// The machine took its steps already: it is gone, and the steps end by destroying it.
    Whole,
    /// The machine is on the update's release already: every other step is taken again.
    Update,
}

/// How one machine ended.
enum Ended {
    Done,
    Failed(StepFailure),
    NotStarted,
}

impl Dispatcher {
    /// Take `steps` on every machine of `ids` (see the module's introduction); `skip` says what a
    /// resumed run leaves out.
    pub(super) async fn pipeline(
        &self,
        ids: &[String],
        steps: &[Step],
        options: PipelineOptions,
        skip: &HashMap<String, Skip>,
    ) -> HostReply {
        let slots = Slots::new(self.concurrency);
        let counts = Counts::new(&*self.platform);
        let window = (options.window > 0).then(|| Semaphore::new(options.window as usize));
        let stopped = AtomicBool::new(false);
        let failed_places = AtomicUsize::new(0);
        let w_size = options.window as usize;
        let (slots, counts, window) = (&slots, &counts, window.as_ref());
        let (stopped, failed_places) = (&stopped, &failed_places);
        let mut seen = HashSet::with_capacity(ids.len());
        let mut running: FuturesUnordered<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let duplicate = !seen.insert(id.as_str());
                async move {
                    if duplicate {
                        let error = super::listed_twice(id);
                        return (i, Ended::Failed(StepFailure { id: id.clone(), step: 0, error }), None);
                    }
                    // Held until the machine's last step is done: the window counts machines under way.
                    // A machine that failed a step may be out of service still (cordoned, booting): it
                    // keeps its place until the call ends, so the next one does not take it.
                    let entered = match window {
                        Some(w) => match w.acquire().await {
                            Ok(place) => Some(place),
                            // Every place is held by a failed machine: none can start.
                            Err(_) => return (i, Ended::NotStarted, None),
                        },
                        None => None,
                    };
                    let ended = self
                        .one_machine(
                            id,
                            steps,
                            skip.get(id).copied(),
                            (slots, counts),
                            window.is_some(),
                            || options.stop_on_failure && stopped.load(Ordering::Relaxed),
                        )
                        .await;
                    // A transient (`platform`) failure is the strategy's to retry, not a reason to stop.
                    if options.stop_on_failure
                        && matches!(&ended, Ended::Failed(f) if f.error.kind != ErrorKind::Platform)
                    {
                        stopped.store(true, Ordering::Relaxed);
                    }
                    let kept = if matches!(ended, Ended::Failed(_)) { entered } else { None };
                    if let (Some(w), Some(_)) = (window, &kept)
                        && failed_places.fetch_add(1, Ordering::Relaxed) + 1 >= w_size
                    {
                        w.close();
                    }
                    (i, ended, kept)
                }
            })
            .collect();
        let mut ended: Vec<(usize, Ended)> = Vec::with_capacity(ids.len());
        // The places of failed machines, given back only once every machine is done.
        let mut held = Vec::new();
        while let Some((i, e, kept)) = running.next().await {
            ended.push((i, e));
            held.extend(kept);
        }
        drop(held);
        ended.sort_by_key(|(i, _)| *i);
        let mut outcome = PipelineOutcome::default();
        for (i, e) in ended {
            match e {
                Ended::Done => {}
                Ended::Failed(f) => outcome.failed.push(f),
                Ended::NotStarted => outcome.not_started.push(ids[i].clone()),
            }
        }
        HostReply::Pipeline(outcome)
    }

    /// One machine's way through `steps`. `halted` says whether a failure elsewhere keeps a machine
    /// that has not begun from beginning.
    async fn one_machine(
        &self,
        id: &str,
        steps: &[Step],
        skip: Option<Skip>,
        (slots, counts): (&Slots, &Counts<'_>),
        windowed: bool,
        halted: impl Fn() -> bool,
    ) -> Ended {
        if skip == Some(Skip::Whole) {
            return Ended::Done;
        }
        let fail = |step: usize, error: OpError| {
            Ended::Failed(StepFailure { id: id.to_string(), step: step as u32, error })
        };
        for (k, step) in steps.iter().enumerate() {
            if skip == Some(Skip::Update) && matches!(step, Step::Update { .. }) {
                continue;
            }
            // A withheld step is this machine's `denied`, as a batch call's refusal is per machine.
            if let Some(denied) = self.grants.refuse_step(step) {
                if k == 0 && halted() {
                    return Ended::NotStarted;
                }
                return fail(k, denied);
            }
            let result = if step.waits() {
                if k == 0 && halted() {
                    return Ended::NotStarted;
                }
                self.wait_step(id, step, counts, slots).await
            } else {
                let _slot = slots.acquire(rank(windowed, k, false)).await;
                // Checked once the slot is held: a failure may have come while this machine queued.
                if k == 0 && halted() {
                    return Ended::NotStarted;
                }
                self.operation_step(id, step).await
            };
            if let Err(e) = result {
                return fail(k, e);
            }
        }
        Ended::Done
    }

    /// A step that changes the machine: held to the grants' scope, then one platform call.
    async fn operation_step(&self, id: &str, step: &Step) -> Result<(), OpError> {
        self.in_scope(id).await?;
        let p = &*self.platform;
        match step {
            Step::Cordon => p.cordon(id).await,
            Step::Uncordon => p.uncordon(id).await,
            Step::Update { target } => p.update(id, target).await,
            Step::Start => p.start(id).await,
            Step::Stop { signal, timeout_ms } => {
                let how = StopSpec { signal: signal.clone(), timeout: Duration::from_millis(*timeout_ms) };
                p.stop(id, &how).await
            }
            Step::Destroy => p.destroy(id).await,
            Step::WaitState { .. } | Step::WaitHealthy { .. } | Step::WaitDrained { .. } => {
                Err(OpError::new(ErrorKind::Invalid, "internal: a wait taken as an operation"))
            }
        }
    }

    /// A step that waits: no slot, but a drain's counts take one (see [`Counts`]).
    async fn wait_step(
        &self,
        id: &str,
        step: &Step,
        counts: &Counts<'_>,
        slots: &Slots,
    ) -> Result<(), OpError> {
        let p = &*self.platform;
        match step {
            Step::WaitState { state, timeout_ms } => {
                p.wait_state(id, *state, Duration::from_millis(*timeout_ms)).await
            }
            Step::WaitHealthy { timeout_ms } => p.wait_healthy(id, Duration::from_millis(*timeout_ms)).await,
            Step::WaitDrained { poll_ms, timeout_ms } => {
                let until = super::deadline_in(*timeout_ms);
                // A poll of 0 would spin; a millisecond is the contract's unit.
                let poll = Duration::from_millis((*poll_ms).max(1));
                // Where machines are counted together, the first count waits for the grid too.
                if p.counts_together() {
                    tokio::time::sleep_until(counts.next_poll(poll).min(until)).await;
                }
                loop {
                    let counted = counts.count(id, slots).await;
                    let open = match counted {
                        Ok(open) => Some(open),
                        // Gone: nothing left to drain.
                        Err(e) if e.kind == ErrorKind::NotFound => Some(0),
                        // A count that failed for now is retried by the next poll; unknown is not idle.
                        Err(e) if e.kind == ErrorKind::Platform => None,
                        Err(e) => return Err(e),
                    };
                    if open == Some(0) {
                        return Ok(());
                    }
                    let next = counts.next_poll(poll);
                    if next > until {
                        tokio::time::sleep_until(until).await;
                        let open = open.map_or("an unknown number of".to_string(), |n| n.to_string());
                        return Err(OpError::new(
                            ErrorKind::Timeout,
                            format!("machine {id} still had {open} open connection(s) after {timeout_ms} ms"),
                        ));
                    }
                    tokio::time::sleep_until(next).await;
                }
            }
            _ => Err(OpError::new(ErrorKind::Invalid, "internal: an operation taken as a wait")),
        }
    }
}
