//! Per-release traffic statistics for the local proxy: request counts, error counts (5xx responses and
//! connection failures) and latency histograms, kept in per-second buckets for the last
//! [`RETENTION_SECS`] seconds so that the canary gates can ask for "the last N seconds" cheaply.
//!
//! Memory is bounded regardless of request rate: one ring of [`RETENTION_SECS`] slots per release, each
//! slot holding two counters and (only once that second saw a latency) a fixed array of
//! [`HIST_BUCKETS`] log-spaced latency buckets of ~5% width.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::shard::{self, Padded, SHARDS};

/// How long per-second buckets are kept (10 minutes).
pub const RETENTION_SECS: u64 = 600;

/// Ratio between consecutive histogram bucket bounds: every latency is known to within ~5%.
const RATIO: f64 = 1.05;
/// Bucket `i` covers `[RATIO^i, RATIO^(i+1))` microseconds (bucket 0 also takes everything below 1 µs);
/// 384 buckets reach ~130 s, and anything slower lands in the last bucket.
pub const HIST_BUCKETS: usize = 384;

/// What [`Stats::release`] reports for one release over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReleaseStats {
    /// Requests (HTTP) or connections (TCP) that finished in the window, failed ones included.
    pub requests: u64,
    /// Of those, the 5xx responses and the requests that no backend could take (connection failures).
    pub errors: u64,
    /// Median latency to the response head (TCP: to the backend connection), in milliseconds; 0 when
    /// the window holds no latency sample. Connection failures carry no latency sample.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds; always `>= p50_ms`.
    pub p99_ms: f64,
}

/// All releases' recorders. The proxy hands each routing-table entry its release's [`Recorder`], so
/// the request path never looks anything up here.
#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    releases: Mutex<HashMap<u64, Arc<Recorder>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// No release yet; every recorder counts seconds from now.
    pub fn new() -> Self {
        Stats { epoch: Instant::now(), releases: Mutex::new(HashMap::new()) }
    }

    /// The recorder for `version`, created on first use.
    pub fn recorder(&self, version: u64) -> Arc<Recorder> {
        lock(&self.releases)
            .entry(version)
            .or_insert_with(|| Arc::new(Recorder::new(version, self.epoch)))
            .clone()
    }

    /// `version`'s figures over the last `window` (whole seconds, rounded up, the current second
    /// included; at most [`RETENTION_SECS`]). A release never seen gives all zeros.
    pub fn release(&self, version: u64, window: Duration) -> ReleaseStats {
        self.release_at(version, window, Instant::now())
    }

    /// [`Stats::release`] as of `now` rather than the present (tests bring their own clock).
    pub fn release_at(&self, version: u64, window: Duration, now: Instant) -> ReleaseStats {
        let rec = lock(&self.releases).get(&version).cloned();
        rec.map(|r| r.summary(window, now)).unwrap_or_default()
    }

    /// Drops the recorders of releases not in `keep` that have recorded nothing for the whole
    /// retention period, so a long-lived daemon does not accumulate old releases.
    pub fn prune(&self, keep: impl Fn(u64) -> bool) {
        let now = Instant::now();
        lock(&self.releases).retain(|&v, rec| keep(v) || rec.active_within(now, RETENTION_SECS));
    }
}

/// One release's rings of per-second buckets, one per proxy thread (see `shard`): recording takes
/// the current thread's lock, which no other thread writes while it works, and a summary adds the
/// rings up.
#[derive(Debug)]
pub struct Recorder {
    version: u64,
    epoch: Instant,
    rings: [Padded<Mutex<Ring>>; SHARDS],
}

#[derive(Debug)]
struct Ring {
    /// Empty until this thread records the release's first request; then [`RETENTION_SECS`] long.
    slots: Vec<Slot>,
    /// The latest second anything was recorded in (`u64::MAX` = never).
    last_sec: u64,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// The second (since the epoch) this slot currently holds.
    sec: u64,
    requests: u64,
    errors: u64,
    /// Empty until the first latency of a second lands here; then `HIST_BUCKETS` long, reused after.
    hist: Vec<u32>,
}

impl Recorder {
    fn new(version: u64, epoch: Instant) -> Self {
        let rings =
            std::array::from_fn(|_| Padded(Mutex::new(Ring { slots: Vec::new(), last_sec: u64::MAX })));
        Recorder { version, epoch, rings }
    }

    /// The release it records.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records one finished request: `latency` is `None` for a connection failure (then it must be
    /// counted as an error).
    pub fn record(&self, now: Instant, latency: Option<Duration>, error: bool) {
        let sec = now.saturating_duration_since(self.epoch).as_secs();
        let bucket = latency.map(bucket_of);
        let mut ring = lock(&self.rings[shard::current()]);
        if ring.slots.is_empty() {
            ring.slots = vec![Slot { sec: u64::MAX, ..Slot::default() }; RETENTION_SECS as usize];
        }
        ring.last_sec = if ring.last_sec == u64::MAX { sec } else { ring.last_sec.max(sec) };
        let slot = &mut ring.slots[(sec % RETENTION_SECS) as usize];
        if slot.sec != sec {
            if sec < slot.sec && slot.sec != u64::MAX {
                // A straggler from a second the ring has already moved past: too old to keep.
                return;
            }
            slot.sec = sec;
            slot.requests = 0;
            slot.errors = 0;
            slot.hist.fill(0);
        }
        slot.requests += 1;
        slot.errors += u64::from(error);
        if let Some(b) = bucket {
            if slot.hist.is_empty() {
                slot.hist = vec![0; HIST_BUCKETS];
            }
            slot.hist[b] = slot.hist[b].saturating_add(1);
        }
    }

    fn active_within(&self, now: Instant, secs: u64) -> bool {
        let now_sec = now.saturating_duration_since(self.epoch).as_secs();
        self.rings.iter().any(|ring| {
            let last_sec = lock(ring).last_sec;
            last_sec != u64::MAX && now_sec.saturating_sub(last_sec) < secs
        })
    }

    /// This release's figures over the last `window` as of `now`.
    pub fn summary(&self, window: Duration, now: Instant) -> ReleaseStats {
        let now_sec = now.saturating_duration_since(self.epoch).as_secs();
        let secs = window_secs(window);
        let oldest = (now_sec + 1).saturating_sub(secs);
        let mut hist = [0u64; HIST_BUCKETS];
        let (mut requests, mut errors) = (0, 0);
        for ring in &self.rings {
            let ring = lock(ring);
            for slot in ring.slots.iter().filter(|s| s.sec != u64::MAX && s.sec >= oldest && s.sec <= now_sec)
            {
                requests += slot.requests;
                errors += slot.errors;
                for (h, &c) in hist.iter_mut().zip(&slot.hist) {
                    *h += u64::from(c);
                }
            }
        }
        ReleaseStats { requests, errors, p50_ms: quantile_ms(&hist, 0.50), p99_ms: quantile_ms(&hist, 0.99) }
    }
}

fn window_secs(window: Duration) -> u64 {
    let secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
    secs.clamp(1, RETENTION_SECS)
}

/// The histogram bucket of a latency.
fn bucket_of(latency: Duration) -> usize {
    let micros = latency.as_nanos() as f64 / 1000.0;
    if micros < RATIO {
        return 0;
    }
    ((micros.ln() / RATIO.ln()) as usize).min(HIST_BUCKETS - 1)
}

/// A bucket's representative value in milliseconds: the geometric middle of its range.
fn bucket_ms(bucket: usize) -> f64 {
    RATIO.powf(bucket as f64 + 0.5) / 1000.0
}

/// The `q` quantile (nearest rank) of a histogram, in milliseconds; 0 when it is empty.
fn quantile_ms(hist: &[u64; HIST_BUCKETS], q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bucket_ms(i);
        }
    }
    bucket_ms(HIST_BUCKETS - 1)
}

/// Locks, ignoring poisoning: the data behind these locks stays consistent at every await-free step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    #[test]
    fn quantiles_are_within_five_percent() {
        let stats = Stats::new();
        let rec = stats.recorder(1);
        let now = Instant::now();
        // 1..=1000 ms, one each: p50 ~ 500 ms, p99 ~ 990 ms.
        for i in 1..=1000 {
            rec.record(now, Some(ms(i as f64)), false);
        }
        let s = stats.release_at(1, Duration::from_secs(60), now);
        assert_eq!(s.requests, 1000);
        assert_eq!(s.errors, 0);
        assert!((s.p50_ms - 500.0).abs() / 500.0 < 0.05, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() / 990.0 < 0.05, "{s:?}");
    }

    #[test]
    fn tiny_and_huge_latencies_stay_in_range() {
        let stats = Stats::new();
        let rec = stats.recorder(1);
        let now = Instant::now();
        rec.record(now, Some(Duration::ZERO), false);
        rec.record(now, Some(Duration::from_secs(3600)), true);
        let s = stats.release_at(1, Duration::from_secs(1), now);
        assert_eq!((s.requests, s.errors), (2, 1));
        assert!(s.p50_ms < 0.01 && s.p99_ms > 100_000.0, "{s:?}");
    }

    #[test]
    fn window_only_counts_recent_seconds_and_old_slots_are_reused() {
        let stats = Stats::new();
        let rec = stats.recorder(7);
        let t0 = stats.epoch;
        for s in 0..10u64 {
            let at = t0 + Duration::from_secs(s);
            rec.record(at, Some(ms(1.0)), s % 2 == 0);
            rec.record(at, None, true);
        }
        let at = t0 + Duration::from_secs(9);
        let last3 = stats.release_at(7, Duration::from_secs(3), at);
        assert_eq!((last3.requests, last3.errors), (6, 4));
        let all = stats.release_at(7, Duration::from_secs(3600), at);
        assert_eq!((all.requests, all.errors), (20, 15));
        // Ten minutes later the ring has wrapped: slot 0 is reused, old seconds are gone.
        let later = t0 + Duration::from_secs(RETENTION_SECS);
        rec.record(later, Some(ms(2.0)), false);
        let s = stats.release_at(7, Duration::from_secs(RETENTION_SECS), later);
        assert_eq!((s.requests, s.errors), (10 * 2 - 2 + 1, 15 - 2));
        assert!(s.p99_ms >= s.p50_ms);
        assert_eq!(stats.release_at(8, Duration::from_secs(60), later), ReleaseStats::default());
    }

    #[test]
    fn threads_record_in_rings_of_their_own_that_add_up() {
        let stats = Arc::new(Stats::new());
        let now = Instant::now();
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let rec = stats.recorder(1);
                std::thread::spawn(move || {
                    shard::set(i);
                    for _ in 0..10 {
                        rec.record(now, Some(ms(2.0)), i == 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let rec = stats.recorder(1);
        assert_eq!(rec.rings.iter().filter(|r| !lock(r).slots.is_empty()).count(), 3);
        let s = stats.release_at(1, Duration::from_secs(60), now);
        assert_eq!((s.requests, s.errors), (30, 10));
        assert!((s.p50_ms - 2.0).abs() / 2.0 < 0.05, "{s:?}");
    }

    #[test]
    fn prune_drops_idle_unkept_releases() {
        let stats = Stats::new();
        stats.recorder(1).record(Instant::now(), Some(ms(1.0)), false);
        let _ = stats.recorder(2); // never recorded anything
        stats.prune(|v| v == 3);
        let kept: Vec<u64> = lock(&stats.releases).keys().copied().collect();
        assert_eq!(kept, vec![1]);
    }
}
