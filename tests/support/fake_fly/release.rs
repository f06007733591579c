//! Release command machines, as Fly runs them: a machine created in process group
//! `fly_app_release_command` boots, runs for [`ReleaseBehaviour::run`], exits with
//! [`ReleaseBehaviour::exit_code`] (an `exit` event after its `start`, as fly-go writes them) and, with
//! `auto_destroy`, is destroyed: gone from the list, a 404 to a wait for `started`, still readable by
//! id with its events (as Fly keeps a destroyed machine for a while). Each one's create request is kept
//! so a test can check its flags.

use super::{Fake, FakeMachine, now_ms};
use cutover::machines_api::{ApiMachine, CreateRequest, EventRequest, ExitEvent, MachineEvent};
use std::sync::Arc;
use std::time::Duration;

/// How release command machines behave.
#[derive(Debug, Clone)]
pub struct ReleaseBehaviour {
    /// How long the command runs once started.
    pub run: Duration,
    /// Its exit code.
    pub exit_code: i32,
    /// It has run and been destroyed before the create is answered (a wait for `started` then gets
    /// a 404, as on Fly when the command is quick).
    pub instant: bool,
}

impl Default for ReleaseBehaviour {
    fn default() -> Self {
        Self { run: Duration::from_millis(100), exit_code: 0, instant: false }
    }
}

/// What the fake saw of release command machines.
#[derive(Debug, Default)]
pub struct ReleaseRecord {
    /// Each create request, in order.
    pub requests: Vec<CreateRequest>,
    /// Destroyed release command machines, as a GET still shows them.
    pub gone: std::collections::BTreeMap<String, ApiMachine>,
}

/// Whether a create is of a release command machine.
pub(super) fn is_release(req: &CreateRequest) -> bool {
    req.config.metadata.get("fly_process_group").map(String::as_str) == Some("fly_app_release_command")
}

fn event(kind: &str, status: &str, exit: Option<i32>) -> MachineEvent {
    MachineEvent {
        kind: kind.into(),
        status: status.into(),
        source: "flyd".into(),
        timestamp: now_ms(),
        request: exit.map(|code| EventRequest {
            exit_event: Some(ExitEvent {
                exit_code: code.into(),
                guest_exit_code: code.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

impl Fake {
    /// Release command machines created so far (their requests), and those destroyed.
    pub fn release_requests(&self) -> Vec<CreateRequest> {
        self.release_record.lock().unwrap().requests.clone()
    }

    /// Destroyed release command machines, as a GET shows them.
    pub fn release_machines_gone(&self) -> Vec<ApiMachine> {
        self.release_record.lock().unwrap().gone.values().cloned().collect()
    }

    /// Give a machine a guest (its size), as `[vm]` in fly.toml would.
    pub fn set_guest(&self, id: &str, guest: serde_json::Value) {
        let mut inner = self.lock();
        if let Some(m) = inner.machines.get_mut(id) {
            m.api.config.rest.insert("guest".into(), guest);
        }
    }

    /// A destroyed release command machine, for GET.
    pub(super) fn gone(&self, id: &str) -> Option<ApiMachine> {
        self.release_record.lock().unwrap().gone.get(id).cloned()
    }

    /// Record the create and run the machine: boot, run, exit, auto-destroy. `false`: it is already
    /// gone (an `instant` run), and the caller must not keep it.
    pub(super) fn run_release(self: &Arc<Self>, req: &CreateRequest, m: &mut FakeMachine) -> bool {
        self.release_record.lock().unwrap().requests.push(req.clone());
        let behaviour = self.release.lock().unwrap().clone();
        if behaviour.instant {
            m.api.state = "destroyed".into();
            m.api.events = vec![
                event("destroy", "destroyed", None),
                event("exit", "stopped", Some(behaviour.exit_code)),
                event("start", "started", None),
                event("launch", "created", None),
            ];
            for (i, e) in m.api.events.iter_mut().enumerate() {
                e.timestamp -= i as i64;
            }
            self.release_record.lock().unwrap().gone.insert(m.api.id.clone(), m.api.clone());
            return false;
        }
        m.generation += 1;
        m.api.state = "starting".into();
        m.api.events = vec![event("launch", "created", None)];
        let generation = m.generation;
        let auto_destroy = req.config.rest.get("auto_destroy").and_then(|v| v.as_bool()) == Some(true);
        let (fake, id, boot) = (self.clone(), m.api.id.clone(), self.opts.boot);
        tokio::spawn(async move {
            tokio::time::sleep(boot).await;
            if !fake.step(&id, generation, |m| {
                m.api.state = "started".into();
                m.api.events.insert(0, event("start", "started", None));
            }) {
                return;
            }
            tokio::time::sleep(behaviour.run).await;
            if !fake.step(&id, generation, |m| {
                m.api.state = "stopped".into();
                m.api.events.insert(0, event("exit", "stopped", Some(behaviour.exit_code)));
            }) {
                return;
            }
            if auto_destroy {
                let mut inner = fake.lock();
                if let Some(mut m) = inner.machines.remove(&id) {
                    m.api.state = "destroyed".into();
                    m.api.events.insert(0, event("destroy", "destroyed", None));
                    inner.destroyed.insert(id.clone());
                    fake.release_record.lock().unwrap().gone.insert(id, m.api);
                }
                drop(inner);
                fake.changed();
            }
        });
        true
    }

    /// Change a machine still on `generation` (not destroyed or changed meanwhile); whether it was.
    fn step(&self, id: &str, generation: u64, f: impl FnOnce(&mut FakeMachine)) -> bool {
        let mut inner = self.lock();
        let Some(m) = inner.machines.get_mut(id).filter(|m| m.generation == generation) else { return false };
        f(m);
        drop(inner);
        self.changed();
        true
    }
}
