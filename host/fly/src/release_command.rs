//! The release command on Fly, as flyctl runs it (`internal/command/deploy/machines_releasecommand.go`):
//! a temporary machine on the new image in process group `fly_app_release_command`, with restart policy
//! `no`, `auto_destroy`, no service registration, `RELEASE_COMMAND=1`, and the size of the app's largest
//! machine unless `[deploy] release_command_vm` says otherwise. The deploy waits for it to start (a 404
//! there means it already ran and was destroyed), then to be destroyed within the command's timeout,
//! and reads its exit code from the latest `exit` event after its `start`. The Machines API serves no
//! logs, so its output is not streamed here: the notes name the machine for `fly logs -i`.

use crate::{FlyPlatform, RESERVED_GROUPS};
use cutover_core::release_command::{RELEASE_COMMAND_ENV, RELEASE_COMMAND_GROUP};
use cutover_core::{ErrorKind, OpError, ReleaseCommand, ReleaseCommandError, ReleaseLog};
use cutover_machines_api::{
    ApiMachine, CreateRequest, MachineConfig, PROCESS_GROUP_KEY, RELEASE_VERSION_KEY,
};
use serde_json::{Value, json};
use std::time::Duration;

/// How long the temporary machine may take to start (flyctl uses the deploy's wait timeout).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// flyctl's release command machine when the app has none to copy: `shared-cpu-2x`.
fn default_guest() -> Value {
    json!({"cpu_kind": "shared", "cpus": 2, "memory_mb": 512})
}

/// The guest of the app's machine with the most memory (flyctl's `inferReleaseCommandGuest`), with
/// `release_command_vm` over it.
fn guest(machines: &[ApiMachine], cmd: &ReleaseCommand) -> Value {
    let memory = |g: &Value| g.get("memory_mb").and_then(Value::as_u64).unwrap_or(0);
    let mut guest = machines
        .iter()
        .filter(|m| {
            let group = m.config.metadata.get(PROCESS_GROUP_KEY).map(String::as_str).unwrap_or("app");
            !RESERVED_GROUPS.contains(&group)
        })
        .filter_map(|m| m.config.rest.get("guest").cloned())
        .max_by_key(memory)
        .unwrap_or_else(default_guest);
    if let (Some(vm), Some(g)) = (&cmd.vm, guest.as_object_mut()) {
        if let Some(kind) = &vm.cpu_kind {
            g.insert("cpu_kind".into(), json!(kind));
        }
        if let Some(cpus) = vm.cpus {
            g.insert("cpus".into(), json!(cpus));
        }
        if let Some(mb) = vm.memory_mb {
            g.insert("memory_mb".into(), json!(mb));
        }
    }
    guest
}

/// The temporary machine's create request.
fn request(base: Option<&ApiMachine>, machines: &[ApiMachine], cmd: &ReleaseCommand) -> CreateRequest {
    let mut config = MachineConfig { image: cmd.release.image.clone(), ..Default::default() };
    if let Some(b) = base {
        config.env = b.config.env.clone();
    }
    config.env.extend(cmd.env.clone());
    config.env.insert(RELEASE_COMMAND_ENV.into(), "1".into());
    config.env.insert("FLY_PROCESS_GROUP".into(), RELEASE_COMMAND_GROUP.into());
    config.metadata.insert(PROCESS_GROUP_KEY.into(), RELEASE_COMMAND_GROUP.into());
    config.metadata.insert(RELEASE_VERSION_KEY.into(), cmd.release.version.to_string());
    config.metadata.insert("fly_platform_version".into(), "v2".into());
    config.rest.insert("init".into(), json!({"cmd": cmd.args}));
    config.rest.insert("restart".into(), json!({"policy": "no"}));
    config.rest.insert("auto_destroy".into(), json!(true));
    config.rest.insert("guest".into(), guest(machines, cmd));
    CreateRequest {
        config,
        region: base.map(|b| b.region.clone()).unwrap_or_default(),
        skip_service_registration: true,
        ..Default::default()
    }
}

impl FlyPlatform {
    /// See the module's comment.
    pub(crate) async fn release_command(
        &self,
        cmd: &ReleaseCommand,
        log: &dyn ReleaseLog,
    ) -> Result<(), ReleaseCommandError> {
        let platform = ReleaseCommandError::Platform;
        let machines: Vec<ApiMachine> =
            self.client.list().await.map_err(platform)?.into_iter().filter(crate::deployable).collect();
        let req = request(machines.first(), &machines, cmd);
        // Not leased, as flyctl makes it: it destroys itself, perhaps before a lease could be taken.
        let m = self.client.create_unleased(&req).await.map_err(platform)?;
        let id = m.id.clone();
        log.note(format!(
            "release command `{}` on machine {id} (process group {RELEASE_COMMAND_GROUP}); its output: `fly logs -i {id}`",
            cmd.command
        ));
        match self.client.wait(&id, "started", START_TIMEOUT).await {
            Ok(()) => {}
            // It ran and was destroyed before the wait asked.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => {
                let _ = self.client.destroy(&id).await;
                return Err(platform(OpError::new(
                    e.kind,
                    format!("its machine {id} did not start: {}", e.message),
                )));
            }
        }
        match self.client.wait(&id, "destroyed", cmd.timeout).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) if e.kind == ErrorKind::Timeout => {
                let _ = self.client.destroy(&id).await;
                return Err(ReleaseCommandError::TimedOut(cmd.timeout));
            }
            Err(e) => {
                let _ = self.client.destroy(&id).await;
                return Err(platform(e));
            }
        }
        // A destroyed machine is still readable for a while, with its events.
        let done = self.client.get(&id).await.map_err(|e| {
            platform(OpError::new(
                e.kind,
                format!("reading the exit of release command machine {id}: {}", e.message),
            ))
        })?;
        match done.latest_exit_code() {
            Some(0) => Ok(()),
            Some(code) => Err(match i32::try_from(code) {
                Ok(code) => ReleaseCommandError::Exited(code),
                Err(_) => ReleaseCommandError::Crashed(format!("machine {id} exited with code {code}")),
            }),
            None => Err(ReleaseCommandError::Crashed(format!(
                "machine {id} is {} and its events record no exit after its start",
                done.state
            ))),
        }
    }
}
