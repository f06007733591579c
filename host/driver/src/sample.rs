//! The driver's own traffic readings while a strategy runs: on a platform with `traffic.stats` and a
//! real clock, each release's requests, errors and p99 over the last whole second are recorded every
//! [`INTERVAL`] as [`EventKind::TrafficSampled`], so a deploy's picture has its traffic charts whatever
//! the strategy asked (a blue/green or rolling strategy reads no stats itself).
//!
//! A reading is one whole second and the readings are a second apart, so a steady load draws a flat
//! line. A platform's window ends now, and the local proxy counts whole seconds, the current one
//! included: a one-second window read at an arbitrary moment holds only the part of the current second
//! gone by, so readings at any other pace than whole seconds swing with where in the second they fall
//! (what drew a zig-zag when they were taken twice a second). The last two seconds less the current
//! one is the last whole second, whatever the moment; see [`whole_second`].
//!
//! The readings are the deploy's bystanders: they run on a task of their own, a reading that fails or
//! takes longer than the interval is skipped, a journal that refuses one does not stop the run, and
//! there are at most [`MAX_READINGS`] rounds of them. They are kept beside the log
//! ([`Recorder::record_aside`]): they take no sequence number, so the events' numbers (which the crash
//! tests kill at, and which a resume goes on from) do not depend on when readings fell, and a resumed
//! strategy's replay never sees them; a resumed deploy reads again, as it runs its strategy through
//! the same path.

use cutover_core::events::EventKind;
use cutover_core::platform::TrafficStats;
use cutover_core::{OpError, Platform};
use cutover_runtime::{HostClock, Recorder};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

/// How often the releases' traffic is read, in real time: the length of what each reading covers, so
/// consecutive readings neither overlap nor leave gaps.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// At most this many rounds of readings per run (half an hour at one a second): a deploy that waits at
/// a gate for a day does not fill its journal with them.
pub const MAX_READINGS: u32 = 1800;

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
    // The first tick is immediate: the first reading is the second just before the deploy began.
    for _ in 0..MAX_READINGS {
        tick.tick().await;
        if recorder.failure().is_some() {
            return;
        }
        for &version in &versions {
            match timeout(INTERVAL, whole_second(|w| platform.stats(version, w))).await {
                Ok(Ok(stats)) => {
                    let window_ms = INTERVAL.as_millis() as u64;
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

/// A release's traffic over the last whole second, from `stats` (its traffic over a window ending
/// now): the last two seconds' requests and errors less the current second's, with the two seconds' latencies (a percentile is not a count: it cannot be taken
/// apart, and two seconds of latencies are as good a p99 as one).
///
/// The current second is read before and after the two seconds: if it shrank, a second ended between
/// the readings, and they are taken again (once; a second is long beside three local requests).
async fn whole_second<F, R>(stats: F) -> Result<TrafficStats, OpError>
where
    F: Fn(Duration) -> R,
    R: Future<Output = Result<TrafficStats, OpError>>,
{
    let (one, two) = (Duration::from_secs(1), Duration::from_secs(2));
    let mut attempt = 0;
    loop {
        let current = stats(one).await?;
        let last_two = stats(two).await?;
        let after = stats(one).await?;
        attempt += 1;
        if after.requests < current.requests && attempt < 2 {
            continue;
        }
        return Ok(minus(last_two, current));
    }
}

/// The counts of `last_two` less those of `current`, with `last_two`'s latencies.
fn minus(last_two: TrafficStats, current: TrafficStats) -> TrafficStats {
    TrafficStats {
        requests: last_two.requests.saturating_sub(current.requests),
        errors: last_two.errors.saturating_sub(current.errors),
        ..last_two
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What a proxy with one-second buckets answers: requests in whole seconds, the current one
    /// included, at the "now" the test scripts for each call.
    struct Buckets {
        /// Requests in each second.
        per_second: Vec<u64>,
        /// The second each call falls in, in order.
        nows: Mutex<Vec<usize>>,
    }

    impl Buckets {
        async fn stats(&self, window: Duration) -> Result<TrafficStats, OpError> {
            let now = self.nows.lock().unwrap().remove(0);
            let secs = window.as_secs() as usize;
            let requests: u64 = self.per_second[(now + 1).saturating_sub(secs)..=now].iter().sum();
            Ok(TrafficStats { requests, errors: requests / 10, p50_ms: 1.0, p99_ms: 4.0 })
        }
    }

    #[tokio::test]
    async fn a_reading_is_the_last_whole_second_wherever_in_the_current_one_it_falls() {
        // 100 requests a second; the current second (index 2) has seen 37 so far.
        let p = Buckets { per_second: vec![100, 100, 37], nows: Mutex::new(vec![2, 2, 2]) };
        let s = whole_second(|w| p.stats(w)).await.unwrap();
        assert_eq!((s.requests, s.errors, s.p99_ms), (100, 10, 4.0));
    }

    #[tokio::test]
    async fn a_second_ending_between_the_calls_is_read_again() {
        // The first round straddles the end of second 2 (its current second read as 90, then as 5 of
        // second 3); the second round falls within second 3.
        let p = Buckets { per_second: vec![100, 100, 90, 5], nows: Mutex::new(vec![2, 3, 3, 3, 3, 3]) };
        let s = whole_second(|w| p.stats(w)).await.unwrap();
        assert_eq!(s.requests, 90, "second 2, whole");
        assert!(p.nows.lock().unwrap().is_empty(), "both rounds were read");
    }

    #[tokio::test]
    async fn a_failed_answer_is_no_reading() {
        let fail =
            |_| async { Err::<TrafficStats, _>(OpError::new(cutover_core::ErrorKind::Platform, "down")) };
        assert!(whole_second(fail).await.is_err());
    }
}
