//! Output: human progress (phases, per-batch bars, strategy logs) or one JSON event per line.

use super::out::{errln, outln};
use cutover_core::contract::StrategyInfo;
use cutover_core::duration::display;
use cutover_core::events::{
    DeployStart, Event, EventKind, EventSink, HostCall, HostReply, LogLevel, Outcome, SinkError,
};
use cutover_driver::{DeployReport, ResolvedStrategy};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// `--json`: every event as one line on stdout.
pub struct Json;

impl EventSink for Json {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        match serde_json::to_string(event) {
            Ok(line) => outln!("{line}"),
            Err(e) => errln!("warning: could not encode event {}: {e}", event.seq),
        }
        Ok(())
    }

    /// The driver's traffic readings are printed too, as they come (their `seq` is the next event's).
    fn aside(&self, event: &Event) -> Result<(), SinkError> {
        self.event(event)
    }
}

/// Human output: a line per phase, a progress bar of machines done (on a terminal), strategy logs.
pub struct Human {
    bar: Mutex<Option<ProgressBar>>,
    tty: bool,
}

impl Human {
    pub fn new() -> Self {
        Self { bar: Mutex::new(None), tty: std::io::stderr().is_terminal() }
    }

    fn line(&self, text: String) {
        match self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bar) => bar.suspend(|| outln!("{text}")),
            None => outln!("{text}"),
        }
    }

    fn finish_bar(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Host-clock time since the deploy started, as `[  16.6s]` or `[ 2m05s]`.
fn stamp(ms: u64) -> String {
    let t = if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    };
    format!("[{t:>7}]")
}

impl EventSink for Human {
    /// The display never stops a deploy.
    fn event(&self, e: &Event) -> Result<(), SinkError> {
        self.show(e);
        Ok(())
    }
}

impl Human {
    fn show(&self, e: &Event) {
        match &e.kind {
            EventKind::DeployStarted(start) => {
                let DeployStart { app, platform, strategy, target, previous, machines, rollback } = &**start;
                let from =
                    previous.as_ref().map(|p| format!("v{}", p.version)).unwrap_or_else(|| "nothing".into());
                let verb = if *rollback { "Rolling back" } else { "Deploying" };
                self.line(format!(
                    "==> {verb} {app} {from} -> v{} ({}) with strategy `{strategy}` on {platform}: {machines} machine(s)",
                    target.version, target.image
                ));
            }
            EventKind::HostCall { call, reply, .. } => match (call, reply) {
                // The bar tracks the whole deploy and stays at the bottom; phases print above it.
                (HostCall::Phase { name }, _) => self.line(format!("{} --> {name}", stamp(e.at_ms))),
                (HostCall::Progress { done, total }, _) => {
                    if !self.tty {
                        return;
                    }
                    let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
                    let bar = slot.get_or_insert_with(|| {
                        let b = ProgressBar::with_draw_target(
                            Some(u64::from(*total)),
                            ProgressDrawTarget::stderr(),
                        );
                        b.set_style(
                            ProgressStyle::with_template("     {bar:40.cyan/blue} {pos}/{len} machines")
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        b
                    });
                    bar.set_length(u64::from(*total));
                    bar.set_position(u64::from(*done));
                }
                (HostCall::Log { level, message }, _) => {
                    let tag = match level {
                        LogLevel::Debug => "debug",
                        LogLevel::Info => "info",
                        LogLevel::Warn => "warn",
                        LogLevel::Error => "error",
                    };
                    if *level != LogLevel::Debug {
                        self.line(format!("{} {tag:>5}: {message}", stamp(e.at_ms)));
                    }
                }
                (call, HostReply::Batch(failed)) if !failed.is_empty() => {
                    let (id, err) = &failed[0];
                    let name = call.operation();
                    self.line(format!(
                        "{}     ! {name}: {} machine(s) failed, first {id}: {err}",
                        stamp(e.at_ms),
                        failed.len()
                    ));
                }
                _ => {}
            },
            EventKind::Resumed { replayed, reconciled, aborting, .. } => {
                let tail = match reconciled {
                    Some(call) => format!("; reconciled `{call}`, which was under way when it stopped"),
                    None => String::new(),
                };
                let then = if *aborting { "; aborting it, so the strategy undoes what it did" } else { "" };
                self.line(format!(
                    "==> Resumed at {}: replayed {replayed} journaled call(s) without touching the fleet{tail}{then}",
                    stamp(e.at_ms)
                ));
            }
            EventKind::ReleaseCommandStarted { command, release, timeout_ms, rerun } => {
                let again = match rerun {
                    true => " again: the previous process died while it ran, before its end was recorded",
                    false => "",
                };
                self.line(format!(
                    "{} --> release command `{command}` on v{} (timeout {}){again}",
                    stamp(e.at_ms),
                    release.version,
                    display(Duration::from_millis(*timeout_ms))
                ));
            }
            EventKind::ReleaseCommandNote { message } => {
                self.line(format!("{}  info: {message}", stamp(e.at_ms)));
            }
            EventKind::ReleaseCommandOutput { line } => self.line(format!("{}     | {line}", stamp(e.at_ms))),
            EventKind::ReleaseCommandFinished { error: None, took_ms, .. } => self.line(format!(
                "{}  info: release command exited with code 0 after {:.1}s",
                stamp(e.at_ms),
                *took_ms as f64 / 1000.0
            )),
            EventKind::ReleaseCommandFinished { error: Some(error), .. } => {
                // The headline only: the summary prints the whole error with the output's tail.
                let first = error.lines().next().unwrap_or_default().split(';').next().unwrap_or_default();
                self.line(format!("{} error: {first}", stamp(e.at_ms)));
            }
            EventKind::ReleaseCommandSkipped { command, why } => {
                self.line(format!("{}  info: release command `{command}` not run: {why}", stamp(e.at_ms)));
            }
            // Intents show as their calls; traffic readings are for the picture.
            EventKind::Intent { .. } | EventKind::TrafficSampled { .. } => {}
            EventKind::DeployFinished { .. } => self.finish_bar(),
        }
    }
}

/// The closing lines of a human deploy.
pub fn summary(r: &DeployReport, simulated: bool) {
    let took = if simulated {
        format!("{} of simulated time ({:.2}s real)", display(round(r.duration)), r.wall.as_secs_f64())
    } else if r.duration < Duration::from_secs(60) {
        format!("{:.1}s", r.duration.as_secs_f64())
    } else {
        display(round(r.duration))
    };
    let fleet: Vec<String> = r.fleet.by_version.iter().rev().map(|(v, n)| format!("{n} on v{v}")).collect();
    match r.outcome {
        Outcome::Succeeded => outln!(
            "==> {} v{} in {took}: {}; {}/{} serving",
            if r.rollback { "Rolled back to" } else { "Deployed" },
            r.target.version,
            fleet.join(", "),
            r.fleet.serving,
            r.fleet.machines
        ),
        Outcome::Failed => {
            let what = if r.rollback { "Rollback to" } else { "Deploy of" };
            outln!("==> {what} v{} FAILED after {took}", r.target.version);
            if let Some(e) = &r.error {
                outln!("    {}", e.replace('\n', "\n    "));
            }
            outln!(
                "    fleet now: {}; {}/{} serving, {} cordoned",
                fleet.join(", "),
                r.fleet.serving,
                r.fleet.machines,
                r.fleet.cordoned
            );
        }
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// One strategy's description.
pub fn strategy_info(info: &StrategyInfo) {
    outln!("{}\n    {}", info.name, info.summary);
    if info.params.is_empty() {
        outln!("    parameters: none");
    }
    for p in &info.params {
        let default =
            p.default.as_ref().map(|d| format!(" (default {d})")).unwrap_or_else(|| " (required)".into());
        outln!("    {} — {}{default}\n        {}", p.name, p.kind.expected(), p.summary);
    }
    outln!();
}

/// What `cutover inspect` prints.
pub fn inspect(
    file: &std::path::Path,
    s: &ResolvedStrategy,
    toolchain: &cutover_runtime::toolchain::Toolchain,
) {
    let c = &s.component;
    outln!("file:      {}", file.display());
    outln!("size:      {} bytes ({:.1} KiB)", c.size, c.size as f64 / 1024.0);
    outln!("built by:  {}", toolchain.summary());
    outln!("blake3:    {}", hex::encode(c.hash));
    outln!(
        "contract:  {}",
        c.world
            .contract_version
            .as_ref()
            .map(|v| format!("cutover:strategy@{v}"))
            .unwrap_or_else(|| "imports no host interface".into())
    );
    outln!("imports:   {}", c.world.imports.join("\n           "));
    outln!("exports:   {}", c.world.exports.join(", "));
    outln!();
    strategy_info(&s.info);
}

/// What `cutover releases` prints: one row per release, oldest first.
pub fn releases(app: &str, records: &[cutover_driver::ReleaseRecord], journal: &str) {
    if records.is_empty() {
        outln!("{app} has no releases recorded in {journal} yet; `cutover deploy` makes the first");
        return;
    }
    outln!(
        "{:>4}  {:<8}  {:<8}  {:<20}  {:<11}  {:<20}  {:>9}  IMAGE",
        "#",
        "RELEASE",
        "KIND",
        "STRATEGY",
        "OUTCOME",
        "STARTED (UTC)",
        "DURATION"
    );
    for r in records {
        let started = std::time::UNIX_EPOCH + Duration::from_millis(r.started_at_ms.max(0) as u64);
        let started =
            humantime::format_rfc3339_seconds(started).to_string().replace('T', " ").replace('Z', "");
        let duration = match (r.duration_ms, r.platform.as_str()) {
            (Some(ms), "sim") => format!("{} sim", display(round(Duration::from_millis(ms as u64)))),
            (Some(ms), _) => display(round(Duration::from_millis(ms as u64))),
            (None, _) => "-".into(),
        };
        let outcome = match (&r.waiting_gate, r.status) {
            (Some(_), cutover_driver::ReleaseStatus::Running) => "waiting".to_string(),
            (_, s) => s.as_str().to_string(),
        };
        let kind = r.kind.as_str();
        outln!(
            "{:>4}  {:<8}  {:<8}  {:<20}  {:<11}  {:<20}  {:>9}  {}",
            r.id,
            format!("v{}", r.target.version),
            kind,
            r.strategy,
            outcome,
            started,
            duration,
            r.target.image
        );
        if let Some(gate) = &r.waiting_gate {
            outln!("      waiting at manual gate `{gate}`: `cutover promote` lets it go on");
        }
        if let Some(e) = &r.error {
            let first = e.lines().next().unwrap_or_default();
            let short: String = first.chars().take(160).collect();
            outln!("      {short}{}", if short.len() < first.len() { "…" } else { "" });
        }
    }
}

/// What `cutover demo` prints at the end.
pub fn demo(r: &cutover_driver::demo::DemoReport, picture: Option<&std::path::Path>, json: bool) {
    if json {
        let v = serde_json::json!({
            "proxy": r.proxy,
            "launched": r.launch.as_ref().map(|l| l.target.version),
            "deployed": r.deploy.target.version,
            "outcome": r.deploy.outcome,
            "error": r.deploy.error,
            "deploy_seconds": r.deploy.duration.as_secs_f64(),
            "during_deploy": r.during,
            "overall": r.overall,
            "phases": r.phases,
            "picture": picture,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    summary(&r.deploy, false);
    if r.launch.as_ref().is_some_and(|l| l.error.is_some()) {
        // The app never came up: there was no deploy under load to report.
        return;
    }
    let d = &r.during;
    outln!();
    outln!(
        "Traffic through the proxy at {} from the deploy's start until every machine served again:",
        r.proxy
    );
    outln!(
        "    requests {}   failed {}   p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        d.requests,
        d.failed,
        d.p50_ms,
        d.p90_ms,
        d.p99_ms,
        d.max_ms
    );
    let by: Vec<String> = d.by_version.iter().map(|(v, n)| format!("v{v}: {n}")).collect();
    outln!("    answered by {}", if by.is_empty() { "nobody".into() } else { by.join(", ") });
    for (e, n) in &d.errors {
        outln!("    {n} × {e}");
    }
    let o = &r.overall;
    outln!("Before, during and after: {} requests, {} failed, p99 {:.1} ms", o.requests, o.failed, o.p99_ms);
    if !r.phases.is_empty() {
        outln!("Phases:");
        for (name, secs) in &r.phases {
            outln!("    {name:<32} {secs:>8.3} s");
        }
    }
    if r.stopped {
        outln!("(the local daemon and the app's machines were stopped; --keep leaves them running)");
    }
    if let Some(p) = picture {
        outln!("Timeline: {}", p.display());
    }
}

/// What `cutover resume` did about a succeeded deploy's leftovers: one JSON object with `--json`,
/// else a line per outcome.
pub fn cleanup(r: &cutover_driver::cleanup::CleanupReport, json: bool) {
    if json {
        outln!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    let each = |l: &cutover_journal::Leftover| format!("{} ({})", l.id, l.todo);
    if !r.finished.is_empty() {
        let ids: Vec<String> = r.finished.iter().map(each).collect();
        outln!("==> Finished {} leftover machine(s) of {}: {}", r.finished.len(), r.app, ids.join(", "));
    }
    if !r.gone.is_empty() {
        let ids: Vec<String> = r.gone.iter().map(each).collect();
        outln!("    no longer on {}, cleared from the journal: {}", r.platform, ids.join(", "));
    }
    if r.done() {
        outln!("==> Nothing is left over on {}", r.platform);
    } else {
        outln!("==> {} leftover machine(s) still to finish; run `cutover resume` again:", r.remaining.len());
        for u in &r.remaining {
            outln!("    {}: {}", each(&u.leftover), u.error);
        }
    }
}
