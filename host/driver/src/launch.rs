//! An app's first launch: its first machines created from nothing on the local platform.
//!
//! A strategy replaces machines by cloning or updating them, so it has nothing to work on in an empty
//! app. The first deploy therefore creates `[cutover.local] machines` per process group directly, spread
//! over the configured regions, and waits until each is started and passing its checks. If any does
//! not come up, every machine it created is destroyed again: a failed launch leaves the app as empty
//! as it found it.

use cutover_config::Config;
use cutover_core::events::{EventKind, HostCall, HostReply, LogLevel};
use cutover_local::LocalPlatform;
use cutover_core::{MachineState, Platform, Release};
use cutover_runtime::Recorder;

/// The name a launch is recorded under, in place of a strategy's.
pub const NAME: &str = "launch";

fn note(recorder: &Recorder, call: HostCall) {
    recorder.record(EventKind::HostCall { call, reply: HostReply::Done, took_ms: 0 });
}

fn log(recorder: &Recorder, level: LogLevel, message: String) {
    note(recorder, HostCall::Log { level, message });
}

/// Launch the app's first machines on `target`; the error says what failed and that nothing is left.
pub async fn run(
    local: &LocalPlatform,
    config: &Config,
    target: &Release,
    recorder: &Recorder,
) -> Result<(), String> {
    let opts = &config.cutover.local;
    let mut plan = Vec::new();
    for group in &config.process_groups {
        for i in 0..opts.machines {
            plan.push((opts.regions[i % opts.regions.len()].clone(), group.clone()));
        }
    }
    let n = plan.len();
    note(recorder, HostCall::Phase { name: "launch".into() });
    log(
        recorder,
        LogLevel::Info,
        format!(
            "{} has no machines yet: launching {n} on v{} ({}), reachable at http://{}",
            config.app,
            target.version,
            target.image,
            local.proxy_addr()
        ),
    );
    let created =
        futures::future::join_all(plan.iter().map(|(region, group)| local.launch(target, region, group)))
            .await;
    let mut ids = Vec::new();
    let mut failure = None;
    for r in created {
        match r {
            Ok(m) => ids.push(m.id),
            Err(e) => failure = failure.or(Some(e.to_string())),
        }
    }
    if failure.is_none() {
        let timeout = config.wait_timeout;
        let waits = ids.iter().map(|id| async move {
            local.wait_state(id, MachineState::Started, timeout).await?;
            local.wait_healthy(id, timeout).await
        });
        for (id, r) in ids.iter().zip(futures::future::join_all(waits).await) {
            if let Err(e) = r {
                failure = failure.or(Some(format!("machine {id}: {e}")));
            }
        }
    }
    match failure {
        None => {
            note(recorder, HostCall::Progress { done: n as u32, total: n as u32 });
            log(recorder, LogLevel::Info, format!("{n} machine(s) on v{} serving", target.version));
            Ok(())
        }
        Some(cause) => {
            let destroyed = futures::future::join_all(ids.iter().map(|id| local.destroy(id))).await;
            let left = destroyed.iter().filter(|r| r.is_err()).count();
            let cleanup = if left == 0 {
                format!("the {} machine(s) created were destroyed; the app is empty again", ids.len())
            } else {
                format!(
                    "{left} of the {} machine(s) created could not be destroyed: remove them by hand",
                    ids.len()
                )
            };
            Err(format!("launching {} failed: {cause}; {cleanup}", config.app))
        }
    }
}
