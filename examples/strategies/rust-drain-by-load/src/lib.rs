//! drain-by-load: bring green up beside blue, then retire blue oldest first, never more than
//! `max_draining` machines draining at once.
//!
//! drain-then-destroy cordons all of blue at the switch, so the whole old fleet drains at the same time
//! and every one of its long-lived connections must find a new home on green at once. Here green joins
//! the rotation beside blue (both serve for a while) and blue leaves it gradually: at most
//! `max_draining` blue machines are cordoned and draining at any moment, each is stopped and destroyed
//! as soon as `traffic.connections` says it is idle (or `drain_timeout` after it was cordoned), and the
//! next one is cordoned in its place. Reconnecting clients land on green a few machines' worth at a time.
//!
//! Oldest first: the contract's machine record has no creation time, so this strategy stamps every
//! machine it creates with a `created_at` metadata key (the host's clock, ms). Blue machines are retired
//! in that order; machines without the key were created before this strategy ever ran and count as the
//! oldest, in the order `machines.list` gives them.
//!
//! Everything up to green serving is the SDK's `green` building block: refusals (volumes, no health
//! checks), clones created cordoned, waits, and green removed again on any failure, blue untouched.

use cutover_sdk::green;
use cutover_sdk::prelude::*;
use cutover_sdk::{describe_error, explain, human, log};

struct DrainByLoad;

/// How many blue machines may drain at once, by default.
const DEFAULT_MAX_DRAINING: i64 = 2;
/// How long a cordoned machine may keep connections before it is stopped anyway, by default (5 min).
const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 5 * 60_000;
/// How often draining machines' connections are counted, by default (1 s).
const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
/// The metadata key holding a machine's creation time (ms on the host's clock).
const CREATED_AT: &str = "created_at";

impl Guest for DrainByLoad {
    fn describe() -> StrategyInfo {
        StrategyInfo {
            name: "drain-by-load".into(),
            summary: "Clone every machine onto the new release and put the clones in rotation beside the \
                      old ones; then cordon old machines oldest first, at most max_draining at a time, \
                      destroying each once its connections reach zero or drain_timeout passes."
                .into(),
            params: vec![
                cutover_sdk::retries_param(),
                params::integer(
                    "max_draining",
                    DEFAULT_MAX_DRAINING,
                    "How many old machines may be cordoned and draining at once (at least 1).",
                ),
                params::duration(
                    "drain_timeout",
                    DEFAULT_DRAIN_TIMEOUT_MS,
                    "How long a cordoned old machine may keep its connections before it is stopped anyway.",
                ),
                params::duration(
                    "poll_interval",
                    DEFAULT_POLL_INTERVAL_MS,
                    "How often the draining machines' connections are counted.",
                ),
            ],
        }
    }

    fn deploy(plan: DeployPlan) -> Result<(), Error> {
        // Idempotent calls are retried for as long as wait_timeout allows.
        let retries = cutover_sdk::Retry::for_plan(&plan);
        let max_draining = params::get_int("max_draining", DEFAULT_MAX_DRAINING);
        let drain_timeout_ms = params::get_duration_ms("drain_timeout", DEFAULT_DRAIN_TIMEOUT_MS);
        let poll_interval_ms = params::get_duration_ms("poll_interval", DEFAULT_POLL_INTERVAL_MS).max(1);
        if max_draining < 1 {
            return Err(Error::Invalid(format!(
                "drain-by-load: `max_draining` = {max_draining}: expected at least 1; nothing was changed"
            )));
        }
        let caps = traffic::capabilities();
        if !caps.cordon {
            return Err(Error::Unsupported(
                "drain-by-load drains old machines by cordoning them, and this platform cannot cordon; \
                 nothing was changed. Use strategy = \"rolling\" instead."
                    .into(),
            ));
        }

        let intro = |n| {
            format!(
                "drain-by-load: {n} old machine(s); cloning them onto v{}, then retiring the old ones oldest \
                 first, {max_draining} at a time, each once idle or after {}",
                plan.target.version,
                human(drain_timeout_ms)
            )
        };
        let Some(ready) = green::prepare("drain-by-load", retries, &plan, intro)? else {
            return Ok(());
        };
        stamp_created(retries, ready.clones());
        log::phase("admit green");
        let serving = ready.admit(retries)?;
        info!(
            "{} green machine(s) on v{} serving beside the old ones",
            serving.blue_ids.len(),
            plan.target.version
        );

        // Greens standing in for stopped machines have proved they boot; they go back to stopped.
        let idle_green = serving.stand_ins_for_stopped();
        cutover_sdk::stop_machines(retries, &idle_green, &plan)
            .map_err(|f| explain(f, "stopping the green machines that stand in for stopped old machines"))?;

        let oldest_first = oldest_first(serving.blue);
        let drain = Drain {
            retries,
            plan: &plan,
            max: max_draining as usize,
            timeout_ms: drain_timeout_ms,
            poll_ms: poll_interval_ms,
            counts: caps.connection_counts,
        };
        let total = oldest_first.len();
        drain.run(oldest_first)?;
        info!("all {total} old machine(s) retired; the app is on v{}", plan.target.version);
        Ok(())
    }
}

/// Record when each new machine was made, so a later deploy can retire the oldest first. Best effort:
/// a machine without the stamp only loses its place in that order.
fn stamp_created(retries: cutover_sdk::Retry, ids: &[String]) {
    let now = runtime::now().to_string();
    for id in ids {
        let set = cutover_sdk::retry(retries, "tagging a new machine", || {
            machines::set_metadata(id, CREATED_AT, &now)
        });
        if let Err(e) = set {
            warn!("could not record when {id} was created ({}); it will count as old", describe_error(&e));
        }
    }
}

/// Blue in retirement order: by the `created_at` stamp, unstamped first, ties in `list` order.
fn oldest_first(mut blue: Vec<Machine>) -> Vec<String> {
    let created = |m: &Machine| {
        m.metadata.iter().find(|(k, _)| k == CREATED_AT).and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0)
    };
    // A stable sort keeps `list` order among equals.
    blue.sort_by_key(created);
    blue.into_iter().map(|m| m.id).collect()
}

/// Blue's retirement: a window of at most `max` cordoned machines moving down the queue.
struct Drain<'a> {
    retries: cutover_sdk::Retry,
    plan: &'a DeployPlan,
    max: usize,
    timeout_ms: u64,
    poll_ms: u64,
    /// Whether the platform counts connections; without counts each machine drains the full timeout.
    counts: bool,
}

impl Drain<'_> {
    /// Cordon up to `max` machines, retire those that are idle or past their timeout, refill, repeat.
    fn run(&self, queue: Vec<String>) -> Result<(), Error> {
        let total = queue.len();
        let mut queue = std::collections::VecDeque::from(queue);
        // (id, when it was cordoned)
        let mut draining: Vec<(String, u64)> = Vec::new();
        let mut retired = 0usize;
        log::phase("drain old machines");
        log::progress(0, total);
        while !queue.is_empty() || !draining.is_empty() {
            let room = self.max - draining.len();
            let next: Vec<String> = (0..room).filter_map(|_| queue.pop_front()).collect();
            if !next.is_empty() {
                cutover_sdk::with_retries(self.retries, &next, traffic::cordon).map_err(|f| {
                    explain(
                        f,
                        &format!(
                            "cordoning old machines failed; {retried} of {total} already retired",
                            retried = retired
                        ),
                    )
                })?;
                let now = runtime::now();
                debug!("cordoned {} old machine(s); {} draining", next.len(), draining.len() + next.len());
                draining.extend(next.into_iter().map(|id| (id, now)));
            }

            let done = self.done(&draining);
            if done.is_empty() {
                self.pause(&draining);
                continue;
            }
            self.retire(&done, retired, total)?;
            retired += done.len();
            draining.retain(|(id, _)| !done.contains(id));
            log::progress(retired, total);
        }
        Ok(())
    }

    /// The draining machines that may go now: idle, gone, or past their timeout (the log says what
    /// that cut).
    fn done(&self, draining: &[(String, u64)]) -> Vec<String> {
        let now = runtime::now();
        let timed_out = |since: u64| now.saturating_sub(since) >= self.timeout_ms;
        if !self.counts {
            return draining
                .iter()
                .filter(|(_, since)| timed_out(*since))
                .map(|(id, _)| id.clone())
                .collect();
        }
        let ids: Vec<String> = draining.iter().map(|(id, _)| id.clone()).collect();
        let mut done = Vec::new();
        for ((id, count), (_, since)) in
            cutover_sdk::count_connections(self.retries, &ids).into_iter().zip(draining)
        {
            match count {
                Ok(0) | Err(Error::NotFound(_)) => done.push(id),
                Ok(open) if timed_out(*since) => {
                    warn!(
                        "{id} still holds {open} connection(s) after {}: stopping it anyway",
                        human(self.timeout_ms)
                    );
                    done.push(id);
                }
                Err(e) if timed_out(*since) => {
                    warn!(
                        "{id}: connections unknown ({}) after {}: stopping it anyway",
                        describe_error(&e),
                        human(self.timeout_ms)
                    );
                    done.push(id);
                }
                _ => {}
            }
        }
        done
    }

    /// Sleep until the next count, or until the first timeout if that is sooner.
    fn pause(&self, draining: &[(String, u64)]) {
        let now = runtime::now();
        let first_timeout = draining
            .iter()
            .map(|(_, since)| (since + self.timeout_ms).saturating_sub(now))
            .min()
            .unwrap_or(0);
        let wait = if self.counts { self.poll_ms.min(first_timeout) } else { first_timeout };
        runtime::sleep(wait.max(1));
    }

    /// Stop (the plan's signal and timeout) and destroy `ids`. Green serves by now, so what the platform
    /// refuses even after the retry budget is left tagged rather than failing the deploy (see
    /// `cutover_sdk::leftover`).
    fn retire(&self, ids: &[String], _retired: usize, _total: usize) -> Result<(), Error> {
        use cutover_sdk::leftover::{Todo, leave};
        let mut stopped = ids.to_vec();
        if let Err(failures) = cutover_sdk::stop_machines(self.retries, ids, self.plan) {
            stopped.retain(|id| !failures.iter().any(|f| f.id == *id));
            leave(self.retries, self.plan, &failures, Todo::StopAndDestroy, "old machine(s)");
        }
        if let Err(failures) = cutover_sdk::with_retries(self.retries, &stopped, machines::destroy) {
            leave(self.retries, self.plan, &failures, Todo::Destroy, "old machine(s)");
        }
        Ok(())
    }
}

cutover_sdk::export!(DrainByLoad);
