//! `cutover status`: the wiring (arguments, the tokio runtime, exit codes) and the human rendering of
//! [`cutover_driver::status::Status`].

use super::args::StatusArgs;
use super::exit::{Error, Exit};
use super::out::{out, outln};
use super::run::{Context, token, tokio_runtime};
use cutover_core::duration::display;
use cutover_driver::status::{self, Status};
use cutover_driver::{PlatformFlags, Purpose, ReleaseStatus};
use std::time::Duration;

pub(crate) fn status(ctx: &Context, args: StatusArgs) -> Result<Exit, Error> {
    let config = ctx.config(&args.app)?;
    let flags = PlatformFlags {
        platform: args.platform,
        scenario: args.scenario,
        access_token: token(args.access_token),
        ..Default::default()
    };
    let target = ctx.target(&config, flags, Purpose::Status);
    // The simulator's clock is paused (its API latencies are virtual); the others talk to real servers.
    let status = tokio_runtime(target.virtual_time())?.block_on(status::read(&config, &target))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        out!("{}", render(&status));
    }
    // What the journal says was shown whatever the fleet did; the code says whether the fleet was read.
    Ok(match &status.fleet_error {
        None => Exit::Success,
        Some(e) if e.is_bad_input() => Exit::BadInput,
        Some(_) => Exit::Platform,
    })
}

/// The human form: one labelled line per fact, continuation lines indented under the label.
fn render(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: &str| {
        for (i, l) in text.lines().enumerate() {
            let label = if i == 0 { label } else { "" };
            out.push_str(&format!("{label:<10}{l}\n"));
        }
    };
    line("App:", &s.app);
    line("Platform:", &s.platform);

    let r = &s.latest;
    let status = match r.status {
        ReleaseStatus::Running => format!("running (process {})", r.pid),
        other => other.as_str().to_string(),
    };
    let started = std::time::UNIX_EPOCH + Duration::from_millis(r.started_at_ms.max(0) as u64);
    let started =
        humantime::format_rfc3339_seconds(started).to_string().replace('T', " ").replace('Z', " UTC");
    // Whole seconds, as `cutover releases` shows them.
    let secs = |ms: i64| display(Duration::from_secs(ms.max(0) as u64 / 1000));
    let took = match (r.duration_ms, r.platform.as_str()) {
        (Some(ms), "sim") => format!(", took {} of simulated time", secs(ms)),
        (Some(ms), _) => format!(", took {}", secs(ms)),
        (None, _) => String::new(),
    };
    let from = match &r.previous {
        Some(p) => format!(" from v{}", p.version),
        None => String::new(),
    };
    line(
        "Latest:",
        &format!(
            "#{} v{} ({}), {}{from} with {}: {status}\nstarted {started}{took}",
            r.id,
            r.target.version,
            r.target.image,
            r.kind.as_str(),
            r.strategy,
        ),
    );
    // A gate is waited at only while the deploy runs; an interrupted one waits for nothing.
    if let (Some(gate), ReleaseStatus::Running) = (&r.waiting_gate, r.status) {
        line("Waiting:", &format!("at manual gate `{gate}`: `cutover promote` lets it go on"));
    }
    if let Some(e) = &r.error {
        line("Error:", e);
    }

    match (&s.fleet, &s.fleet_error) {
        (Some(f), _) => {
            let by_version: Vec<String> =
                f.summary.by_version.iter().map(|(v, n)| format!("{n} on v{v}")).collect();
            let current = match &f.current {
                Some(c) => format!("; most run v{} ({})", c.version, c.image),
                None => String::new(),
            };
            line(
                "Fleet:",
                &format!(
                    "{} machine(s){}{current}\n{} serving, {} cordoned, {} stopped",
                    f.summary.machines,
                    if by_version.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", by_version.join(", "))
                    },
                    f.summary.serving,
                    f.summary.cordoned,
                    f.stopped
                ),
            );
            if !f.weights.is_empty() {
                let split: Vec<String> =
                    f.weights.iter().map(|w| format!("v{} {}%", w.version, w.percent)).collect();
                line(
                    "Traffic:",
                    &format!(
                        "new connections split by release: {} (a release at 0% or not listed takes none, \
                         and its machines are not counted serving); the deploy that set it clears it \
                         when it ends, `cutover resume` or `cutover rollback` when it was interrupted",
                        split.join(", ")
                    ),
                );
            }
            if !f.leftovers.is_empty() {
                let each: Vec<String> =
                    f.leftovers.iter().map(|l| format!("{} ({})", l.id, l.todo)).collect();
                line(
                    "Leftover:",
                    &format!(
                        "{} machine(s) a deploy could not finish cleaning up: {}
`cutover resume` \
                         finishes them, as does the next `cutover deploy` first (they are tagged {} on the \
                         platform)",
                        f.leftovers.len(),
                        each.join(", "),
                        cutover_driver::status::LEFTOVER_KEY
                    ),
                );
            }
        }
        (None, Some(e)) => line("Fleet:", &format!("not read: {e}")),
        (None, None) => line("Fleet:", "not read"),
    }
    if let Some(note) = &s.fleet_note {
        line("Note:", note);
    }
    if let Some(advice) = &s.advice {
        line("Next:", advice);
    }
    out
}
