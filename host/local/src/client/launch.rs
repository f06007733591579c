//! An app's first launch: its first machines created from nothing.
//!
//! A strategy replaces machines by cloning or updating them, so it has nothing to work on in an empty
//! app. The local platform therefore creates the first machines itself (as `fly launch` does on Fly),
//! spread over the configured regions, and waits until each is started and passing its checks. If any
//! does not come up, every machine it created is destroyed again: a failed launch leaves the app as
//! empty as it found it.

use super::LocalPlatform;
use cutover_core::{ErrorKind, LaunchLog, LaunchPlan, MachineState, OpError, Platform};

/// Launch the app's first machines; the error says what failed and that nothing is left.
pub(crate) async fn run(
    local: &LocalPlatform,
    plan: &LaunchPlan,
    log: &dyn LaunchLog,
) -> Result<(), OpError> {
    let machines = plan.machines();
    let n = machines.len();
    let target = &plan.release;
    log.phase("launch");
    log.info(format!(
        "{} has no machines yet: launching {n} on v{} ({}), reachable at http://{}",
        plan.app,
        target.version,
        target.image,
        local.proxy_addr()
    ));
    let created = futures::future::join_all(
        machines.iter().map(|(region, group)| local.create_machine(target, region, group)),
    )
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
        let timeout = plan.wait_timeout;
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
    let Some(cause) = failure else {
        log.progress(n as u32, n as u32);
        log.info(format!("{n} machine(s) on v{} serving", target.version));
        return Ok(());
    };
    let destroyed = futures::future::join_all(ids.iter().map(|id| local.destroy(id))).await;
    let left = destroyed.iter().filter(|r| r.is_err()).count();
    let cleanup = if left == 0 {
        format!("the {} machine(s) created were destroyed; the app is empty again", ids.len())
    } else {
        format!("{left} of the {} machine(s) created could not be destroyed: remove them by hand", ids.len())
    };
    Err(OpError::new(ErrorKind::Platform, format!("launching {} failed: {cause}; {cleanup}", plan.app)))
}
