//! The driver's own traffic readings while a strategy runs: on a platform with `traffic.stats` and a
//! real clock, each release's requests, errors and p99 over the last [`WINDOW`] are journaled every
//! [`INTERVAL`] as
//! [`EventKind::TrafficSampled`], so a deploy's picture has its traffic charts whatever the strategy
//! asked (a blue/green or rolling strategy reads no stats itself).
//!
//! The readings are the deploy's bystanders: they run on a task of their own, a reading that fails or
//! takes longer than the interval is skipped, a journal that refuses one does not stop the run
//! ([`Recorder::record_aside`]), and there are at most [`MAX_READINGS`] rounds of them. They are not
//! host calls, so a resumed strategy's replay never sees them.

use cutover_core::Platform;
use cutover_core::events::EventKind;
use cutover_runtime::{HostClock, Recorder};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

/// How often the releases' traffic is read, in real time: twice a second, so even a blue/green deploy
/// of a few seconds draws a line rather than a dot.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The window each reading covers (ending when it is read): a second, so a rate is not one request's
/// noise.
pub const WINDOW: Duration = Duration::from_secs(1);

/// At most this many rounds of readings per run (half an hour at two a second): a deploy that waits at
/// a gate for a day does not fill its journal with them.
pub const MAX_READINGS: u32 = 3600;

/// Readings under way; [`Sampler::stop`] ends them before the deploy's last event.
pub(crate) struct Sampler(Option<JoinHandle<()>>);

impl Sampler {
    /// Start reading `versions`' traffic on `platform`, if it can tell it and time is real (under the
    /// simulator a deploy takes no real time, and readings at real intervals would mean nothing).
    pub(crate) fn start(
        platform: Arc<dyn Platform>,
        clock: HostClock,
        recorder: Recorder,
        versions: Vec<u64>,
    ) -> Self {
        if clock.is_simulated() || !platform.capabilities().stats || versions.is_empty() {
            return Self(None);
        }
        Self(Some(tokio::spawn(read(platform, recorder, versions))))
    }

    /// Stop reading, and wait until no reading is being recorded, so none follows what comes next.
    pub(crate) async fn stop(self) {
        if let Some(task) = self.0 {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Every [`INTERVAL`], one reading per version, until [`MAX_READINGS`] rounds or the run's record has
/// failed (the run is stopping).
async fn read(platform: Arc<dyn Platform>, recorder: Recorder, versions: Vec<u64>) {
    let mut tick = interval(INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // The first tick is immediate: the first reading is the traffic just before the deploy began.
    for _ in 0..MAX_READINGS {
        tick.tick().await;
        if recorder.failure().is_some() {
            return;
        }
        for &version in &versions {
            match timeout(INTERVAL, platform.stats(version, WINDOW)).await {
                Ok(Ok(stats)) => {
                    let window_ms = WINDOW.as_millis() as u64;
                    if let Err(e) =
                        recorder.record_aside(EventKind::TrafficSampled { version, window_ms, stats })
                    {
                        tracing::debug!("a traffic reading of v{version} was not recorded: {e}");
                    }
                }
                Ok(Err(e)) => tracing::debug!("traffic reading of v{version} skipped: {e}"),
                Err(_) => {
                    tracing::debug!("traffic reading of v{version} skipped: no answer within {INTERVAL:?}")
                }
            }
        }
    }
}
