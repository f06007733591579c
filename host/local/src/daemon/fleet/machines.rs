//! The machine records' lifecycle: create, update, destroy, cordon and metadata — the Machines
//! API's calls that change what a machine is, as opposed to whether its process runs (`process`).

use super::{Fleet, LocalMachine, err, find, find_mut, now_rfc3339};
use cutover_core::{ErrorKind, OpError};
use cutover_machines_api::{ApiMachine, CreateRequest, PROCESS_GROUP_KEY, RELEASE_VERSION_KEY};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

impl Fleet {
    /// Create a machine; it starts unless `skip_launch`. A command that cannot be spawned is an error,
    /// and the machine is not kept.
    pub fn create(self: &Arc<Self>, app: &str, req: CreateRequest) -> Result<ApiMachine, OpError> {
        let port = free_port().map_err(|e| err(ErrorKind::Platform, format!("no free port: {e}")))?;
        let id = {
            let mut st = self.lock();
            if !st.apps.contains_key(app) {
                return Err(err(
                    ErrorKind::NotFound,
                    format!("app {app} is not registered with this daemon (cutover registers it on deploy)"),
                ));
            }
            st.next += 1;
            let id =
                format!("{:014x}", (u64::from(std::process::id()) << 24) ^ st.next.wrapping_mul(0x9e37_79b9));
            let mut config = req.config;
            config.metadata.entry(PROCESS_GROUP_KEY.into()).or_insert_with(|| "app".into());
            let region = if req.region.is_empty() { "local".to_string() } else { req.region };
            let name = if req.name.is_empty() { format!("{app}-{}", &id[id.len() - 6..]) } else { req.name };
            let now = now_rfc3339();
            let api = ApiMachine {
                id: id.clone(),
                name,
                state: "created".into(),
                region,
                instance_id: format!("{:x}", st.next),
                private_ip: "127.0.0.1".into(),
                config,
                checks: vec![],
                cordoned: req.skip_service_registration,
                created_at: now.clone(),
                updated_at: now,
                events: vec![],
            };
            st.machines.insert(
                id.clone(),
                LocalMachine {
                    app: app.to_string(),
                    api,
                    port,
                    pid: None,
                    run: 0,
                    stopping: false,
                    last_exit: None,
                    start_error: None,
                    failures: BTreeMap::new(),
                    lease: None,
                },
            );
            self.changed(&st, app);
            id
        };
        if !req.skip_launch
            && let Err(e) = self.start(app, &id)
        {
            self.lock().machines.remove(&id);
            return Err(e);
        }
        self.get(app, &id)
    }

    /// Replace a machine's config (image, metadata, env): a running machine is stopped (its app's
    /// signal and timeout) and started again on the new config, in the background.
    pub fn update(self: &Arc<Self>, app: &str, id: &str, req: CreateRequest) -> Result<ApiMachine, OpError> {
        let (was_running, spec) = {
            let mut st = self.lock();
            let spec = st.apps.get(app).cloned();
            // A new instance id per version of the machine, as Fly gives.
            st.next += 1;
            let instance = format!("{:x}", st.next);
            let m = find_mut(&mut st, app, id)?;
            let mut config = req.config;
            for key in [PROCESS_GROUP_KEY, RELEASE_VERSION_KEY] {
                if !config.metadata.contains_key(key)
                    && let Some(v) = m.api.config.metadata.get(key)
                {
                    config.metadata.insert(key.into(), v.clone());
                }
            }
            m.api.config = config;
            m.api.instance_id = instance;
            let running = m.pid.is_some();
            if running {
                m.api.state = "replacing".into();
            }
            m.api.updated_at = now_rfc3339();
            self.changed(&st, app);
            (running, spec)
        };
        let spec = spec.ok_or_else(|| err(ErrorKind::NotFound, format!("app {app} is not registered")))?;
        if was_running {
            let fleet = self.clone();
            let (app, id) = (app.to_string(), id.to_string());
            tokio::spawn(async move {
                let timeout = Duration::from_millis(spec.kill_timeout_ms);
                fleet.stop_and_wait(&app, &id, &spec.kill_signal, timeout).await;
                if let Err(e) = fleet.start(&app, &id) {
                    // Failed, not stopped: whoever waits for it to start hears at once.
                    tracing::warn!("update of {id}: {e}");
                    fleet.mark_failed(&app, &id, &e.message);
                }
            });
        } else if !req.skip_launch {
            self.start(app, id)?;
        }
        self.get(app, id)
    }

    /// Destroy a machine; a running one only with `kill`.
    pub async fn destroy(self: &Arc<Self>, app: &str, id: &str, kill: bool) -> Result<(), OpError> {
        let running = {
            let st = self.lock();
            find(&st, app, id)?.pid.is_some()
        };
        if running {
            if !kill {
                return Err(err(
                    ErrorKind::Conflict,
                    format!("machine {id} is running: stop it first or destroy with kill=true"),
                ));
            }
            self.stop_and_wait(app, id, "SIGKILL", Duration::from_secs(5)).await;
        }
        let mut st = self.lock();
        st.machines.remove(id);
        self.changed(&st, app);
        Ok(())
    }

    /// Take a machine out of the proxy's rotation (`true`) or put it back; its process runs on.
    pub fn set_cordoned(&self, app: &str, id: &str, cordoned: bool) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        m.api.cordoned = cordoned;
        m.api.updated_at = now_rfc3339();
        self.changed(&st, app);
        Ok(())
    }

    /// Set a metadata key (`Some`) or remove it (`None`).
    pub fn set_metadata(&self, app: &str, id: &str, key: &str, value: Option<&str>) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        match value {
            Some(v) => m.api.config.metadata.insert(key.to_string(), v.to_string()),
            None => m.api.config.metadata.remove(key),
        };
        self.changed(&st, app);
        Ok(())
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
