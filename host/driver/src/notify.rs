//! Notifications: `[[cutover.notify]]` endpoints told of a deploy's start, the manual gate it waits at,
//! its end, a rollback and its leftovers, as JSON with a Slack-compatible `text`.
//!
//! A notification must never slow or fail a deploy, whatever the endpoint does (answer 500, hang,
//! refuse connections). So the deploy only queues (a bounded queue: past [`QUEUE`] waiting
//! notifications the newest is dropped, and that is logged), after the event is journaled (the
//! notifier is the last sink of the deploy's `Tee`). A thread of its own with its own tokio runtime
//! sends them in order, each attempt bounded by [`ATTEMPT`], retried [`ATTEMPTS`] times with backoff. It
//! runs on real time even under the simulator, whose clock is virtual and would otherwise expire
//! every timeout at once. A failing endpoint is logged once per deploy. At the end, the deploy waits
//! at most [`FLUSH`] for what is still queued, then goes on without it: that is the most a
//! notification can add to a deploy.

use cutover_config::NotifyTarget;
use cutover_core::events::{Event, EventKind, EventSink, Outcome, SinkError};
use cutover_journal::Leftover;
use serde_json::{Value, json};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Notifications waiting to be sent, at most.
pub const QUEUE: usize = 64;
/// One attempt to deliver one notification, at most.
pub const ATTEMPT: Duration = Duration::from_secs(2);
/// Attempts per notification and endpoint.
pub const ATTEMPTS: u32 = 3;
/// The most a deploy waits at its end for queued notifications.
pub const FLUSH: Duration = Duration::from_secs(2);

/// What the deploy is, for every notification's fields.
#[derive(Default, Clone)]
struct Facts {
    app: String,
    release: Option<i64>,
    version: u64,
    previous: Option<u64>,
    strategy: String,
    platform: String,
    phase: Option<String>,
    rollback: bool,
}

/// The deploy's notifier: an [`EventSink`] and the gate and leftovers hooks. Cheap to clone; does
/// nothing when the config names no endpoint.
#[derive(Clone, Default)]
pub struct Notifier(Option<Arc<Inner>>);

struct Inner {
    facts: Mutex<Facts>,
    tx: Mutex<Option<SyncSender<Value>>>,
    done: Mutex<Option<Receiver<()>>>,
    dropped: std::sync::atomic::AtomicBool,
}

impl Notifier {
    /// A notifier for `app`'s release `release` sending to `targets` (none: a notifier that does nothing).
    pub fn start(targets: &[NotifyTarget], app: &str, release: Option<i64>) -> Self {
        if targets.is_empty() {
            return Self(None);
        }
        let (tx, rx) = sync_channel::<Value>(QUEUE);
        let (done_tx, done_rx) = sync_channel::<()>(1);
        let targets = targets.to_vec();
        let spawned = std::thread::Builder::new().name("cutover-notify".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(send_all(targets, rx)),
                Err(e) => tracing::warn!("notifications are off for this deploy: no runtime for them: {e}"),
            }
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            tracing::warn!("notifications are off for this deploy: {e}");
            return Self(None);
        }
        let facts = Facts { app: app.to_string(), release, ..Facts::default() };
        Self(Some(Arc::new(Inner {
            facts: Mutex::new(facts),
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
            dropped: Default::default(),
        })))
    }

    /// The facts of a release taken up again (`cutover resume`, `cutover rollback` of an interrupted
    /// deploy), whose log does not start over with `deploy_started`.
    pub fn with_release(self, r: &cutover_journal::ReleaseRecord) -> Self {
        if let Some(inner) = &self.0 {
            let mut f = lock(&inner.facts);
            f.version = r.target.version;
            f.previous = r.previous.as_ref().map(|p| p.version);
            f.strategy = r.strategy.clone();
            f.platform = r.platform.clone();
            f.rollback = r.kind == cutover_journal::ReleaseKind::Rollback;
        }
        self
    }

    /// The deploy waits at manual gate `gate` (until `cutover promote`).
    pub fn gate(&self, gate: &str) {
        self.send("gate", |f| {
            (
                format!("{} waits at manual gate `{gate}`: `cutover promote {gate}` lets it go on", head(f)),
                json!({"gate": gate}),
            )
        });
    }

    /// The deploy succeeded but left `left` to finish.
    pub fn leftovers(&self, left: &[Leftover]) {
        if left.is_empty() {
            return;
        }
        let list: Vec<Value> = left.iter().map(|l| json!({"machine": l.id, "todo": l.todo})).collect();
        self.send("leftovers", |f| {
            (
                format!("{} left {} machine(s) to clean up (see `cutover status`)", head(f), left.len()),
                json!({"leftovers": list}),
            )
        });
    }

    /// Wait at most [`FLUSH`] for what is queued to be sent; what is not is dropped (and logged).
    pub fn finish(&self) {
        let Some(inner) = &self.0 else { return };
        drop(lock(&inner.tx).take());
        if let Some(done) = lock(&inner.done).take()
            && done.recv_timeout(FLUSH).is_err()
        {
            tracing::warn!(
                "notifications still unsent after {} were dropped; the deploy did not wait for them",
                cutover_core::duration::display(FLUSH)
            );
        }
    }

    /// Queue one notification of `event`; `what` gives its text and its own fields from the facts.
    fn send(&self, event: &str, what: impl FnOnce(&Facts) -> (String, Value)) {
        let Some(inner) = &self.0 else { return };
        let facts = lock(&inner.facts).clone();
        let (text, extra) = what(&facts);
        let mut body = json!({
            "text": text,
            "event": event,
            "app": facts.app,
            "release": facts.release,
            "version": facts.version,
            "previous": facts.previous,
            "strategy": facts.strategy,
            "platform": facts.platform,
            "phase": facts.phase,
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let Some(tx) = lock(&inner.tx).clone() else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(body)
            && !inner.dropped.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("{QUEUE} notifications are waiting to be sent: newer ones are dropped");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// "hello-cutover deploy #4 of v4 (canary)": how every text begins.
fn head(f: &Facts) -> String {
    let kind = if f.rollback { "rollback" } else { "deploy" };
    let release = f.release.map(|r| format!(" #{r}")).unwrap_or_default();
    format!("{} {kind}{release} of v{} ({})", f.app, f.version, f.strategy)
}

impl EventSink for Notifier {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        let Some(inner) = &self.0 else { return Ok(()) };
        match &event.kind {
            EventKind::DeployStarted(s) => {
                {
                    let mut f = lock(&inner.facts);
                    f.version = s.target.version;
                    f.previous = s.previous.as_ref().map(|p| p.version);
                    f.strategy = s.strategy.clone();
                    f.platform = s.platform.clone();
                    f.rollback = s.rollback;
                }
                let event = if s.rollback { "rollback" } else { "started" };
                self.send(event, |f| {
                    let from = f.previous.map(|p| format!(" from v{p}")).unwrap_or_default();
                    (
                        format!("{} started on {}{from}, {} machine(s)", head(f), f.platform, s.machines),
                        json!({}),
                    )
                });
            }
            EventKind::Resumed { aborting: true, .. } => {
                self.send("rollback", |f| {
                    (format!("{} is being rolled back (`cutover rollback`)", head(f)), json!({}))
                });
            }
            EventKind::HostCall { call: cutover_core::events::HostCall::Phase { name }, .. } => {
                lock(&inner.facts).phase = Some(name.clone());
            }
            EventKind::DeployFinished { outcome, error, duration_ms, fleet } => {
                let (event, word) = match outcome {
                    Outcome::Succeeded => ("succeeded", "succeeded"),
                    Outcome::Failed => ("failed", "FAILED"),
                };
                let secs = *duration_ms as f64 / 1000.0;
                self.send(event, |f| {
                    let mut text = format!("{} {word} after {secs:.1} s", head(f));
                    if let (Some(p), Outcome::Failed) = (&f.phase, outcome) {
                        text.push_str(&format!(" in phase `{p}`"));
                    }
                    if let Some(e) = error {
                        text.push_str(&format!(": {e}"));
                    }
                    let extra = json!({
                        "outcome": event,
                        "error": error,
                        "duration_ms": duration_ms,
                        "fleet": {"machines": fleet.machines, "serving": fleet.serving, "by_version": fleet.by_version},
                    });
                    (text, extra)
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// The sending thread: every notification, in order, to every endpoint that wants it.
async fn send_all(targets: Vec<NotifyTarget>, rx: Receiver<Value>) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("notifications are off for this deploy: {e}");
            return;
        }
    };
    let mut warned = vec![false; targets.len()];
    // The queue is a std channel (the deploy never waits on it); reading it blocks this thread only,
    // whose runtime has nothing else to do meanwhile.
    while let Ok(body) = rx.recv() {
        let event = body["event"].as_str().unwrap_or_default().to_string();
        for (i, t) in targets.iter().enumerate().filter(|(_, t)| t.wants(&event)) {
            if let Err(e) = deliver(&client, t, &body).await
                && !std::mem::replace(&mut warned[i], true)
            {
                tracing::warn!(
                    "notification `{event}` to {} failed after {ATTEMPTS} attempts: {e}; this endpoint's further \
                     failures in this deploy are not logged, and the deploy goes on",
                    t.url
                );
            }
        }
    }
}

/// POST `body` to `t`, retrying with backoff (250 ms, then 500 ms).
async fn deliver(client: &reqwest::Client, t: &NotifyTarget, body: &Value) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
        }
        let mut req = client.post(&t.url).json(body);
        for (name, var) in &t.headers_from_env {
            if let Ok(v) = std::env::var(var) {
                req = req.header(name.as_str(), v);
            }
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("it answered {}", r.status()),
            Err(e) if e.is_timeout() => {
                last = format!("no answer within {}", cutover_core::duration::display(ATTEMPT))
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
