//! The local platform's client: [`LocalPlatform`] implements the `Platform` trait over the daemon's
//! HTTP API.
//!
//! What the daemon shares with Fly goes through the Machines API client (`cutover_machines_api`),
//! so both platforms are driven by the same code; what Fly lacks (app registration, weights,
//! connection counts, per-release stats, waiting for health, logs) goes to the daemon's own endpoints
//! under `/cutover/v1`. An app's first launch, which Fly leaves to `fly launch`, is in `launch`.

mod launch;
mod release_command;

use crate::daemon::DaemonInfo;
use crate::daemon::api::AppInfo;
use crate::daemon::fleet::AppSpec;
use async_trait::async_trait;
use cutover_core::{
    Capabilities, Check, EmptyApp, ErrorKind, LaunchLog, LaunchPlan, Lease, Machine, MachineState, OpError,
    Platform, Release, ReleaseCommand, ReleaseCommandError, ReleaseLog, ReleaseWeight, StopSpec,
    TrafficStats,
};
use cutover_machines_api::{
    self as machines_api, ApiMachine, Client, CreateRequest, StopRequest, on_release,
};
use std::time::Duration;

/// What the local platform's proxy can do: everything the contract's traffic calls ask for.
pub const CAPABILITIES: Capabilities =
    Capabilities { cordon: true, connection_counts: true, weights: true, stats: true };

/// One app on the local daemon.
pub struct LocalPlatform {
    client: Client,
    app: String,
    /// Where the app's proxy listens.
    proxy: String,
    /// What the app runs, when this handle registered it (a read-only handle runs nothing).
    spec: Option<AppSpec>,
}

impl LocalPlatform {
    /// A Machines API client of `app` at `daemon`, with its token.
    fn api_client(daemon: &DaemonInfo, app: &str) -> Client {
        let client = Client::new(&format!("{}/v1", daemon.url), app, "local");
        match &daemon.token {
            Some(t) => client.with_token(t.clone()),
            None => client,
        }
    }

    /// Register `app` (its command, checks and proxy port) with `daemon` and connect to it.
    pub async fn connect(daemon: &DaemonInfo, app: &str, spec: &AppSpec) -> Result<Self, OpError> {
        let url = &daemon.url;
        let client = Self::api_client(daemon, app);
        let req = client.http().put(format!("{url}/cutover/v1/apps/{app}")).json(spec);
        let info: AppInfo = client
            .send(&format!("registering {app} with the local daemon"), req)
            .await?
            .json()
            .await
            .map_err(|e| {
                OpError::new(ErrorKind::Platform, format!("registering {app}: bad response: {e}"))
            })?;
        Ok(Self { client, app: app.to_string(), proxy: info.proxy, spec: Some(spec.clone()) })
    }

    /// A read-only handle on `app` at `daemon`, without registering it (a dry run must change
    /// nothing).
    pub fn attach(daemon: &DaemonInfo, app: &str) -> Self {
        Self { client: Self::api_client(daemon, app), app: app.to_string(), proxy: String::new(), spec: None }
    }

    /// The shared Machines API client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The app's public address (the proxy), e.g. `127.0.0.1:4280`.
    pub fn proxy_addr(&self) -> &str {
        &self.proxy
    }

    /// `{daemon}/cutover/v1/apps/{app}{path}`.
    fn extra(&self, path: &str) -> String {
        let root = self.client.base().trim_end_matches("/v1");
        format!("{root}/cutover/v1/apps/{}{path}", self.app)
    }

    /// The last `tail_bytes` of a machine's output.
    pub async fn logs(&self, id: &str, tail_bytes: Option<u64>) -> Result<String, OpError> {
        let mut req = self.client.http().get(self.extra(&format!("/machines/{id}/logs")));
        if let Some(n) = tail_bytes {
            req = req.query(&[("tail_bytes", n)]);
        }
        let resp = self.client.send(&format!("logs of {id}"), req).await?;
        resp.text().await.map_err(|e| OpError::new(ErrorKind::Platform, e.to_string()))
    }

    async fn api_machine(&self, id: &str) -> Result<ApiMachine, OpError> {
        self.client.get(id).await
    }

    /// Create a machine of `release` from nothing, in `region` and process `group` (an app's first
    /// machines; see [`Platform::launch`]).
    pub async fn create_machine(
        &self,
        release: &Release,
        region: &str,
        group: &str,
    ) -> Result<Machine, OpError> {
        let mut config = machines_api::MachineConfig { image: release.image.clone(), ..Default::default() };
        config.metadata.insert(machines_api::RELEASE_VERSION_KEY.into(), release.version.to_string());
        config.metadata.insert(machines_api::PROCESS_GROUP_KEY.into(), group.to_string());
        let req = CreateRequest { config, region: region.to_string(), ..Default::default() };
        Ok(self.client.create(&req).await?.to_machine())
    }
}

#[async_trait]
impl Platform for LocalPlatform {
    fn name(&self) -> &str {
        "local"
    }

    fn empty_app(&self) -> EmptyApp {
        EmptyApp::Launch
    }

    async fn launch(&self, plan: &LaunchPlan, log: &dyn LaunchLog) -> Result<(), OpError> {
        launch::run(self, plan, log).await
    }

    async fn run_release_command(
        &self,
        cmd: &ReleaseCommand,
        log: &dyn ReleaseLog,
    ) -> Result<(), ReleaseCommandError> {
        let Some(spec) = &self.spec else {
            return Err(ReleaseCommandError::Platform(OpError::new(
                ErrorKind::Invalid,
                format!("a read-only handle on {} cannot run the release command", self.app),
            )));
        };
        release_command::run(spec, &self.app, cmd, log).await
    }

    fn app(&self) -> &str {
        &self.app
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list(&self) -> Result<Vec<Machine>, OpError> {
        Ok(self.client.list().await?.iter().map(ApiMachine::to_machine).collect())
    }

    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        Ok(self.api_machine(id).await?.to_machine())
    }

    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        let src = self.api_machine(source).await?;
        let req = CreateRequest {
            config: on_release(src.config, target, None),
            region: src.region,
            skip_service_registration: !routable,
            ..Default::default()
        };
        Ok(self.client.create(&req).await?.to_machine())
    }

    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        let m = self.api_machine(id).await?;
        let req = CreateRequest {
            config: on_release(m.config, target, None),
            region: m.region,
            ..Default::default()
        };
        self.client.update(id, &req).await.map(drop)
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.client.start(id).await
    }

    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError> {
        self.client.stop(id, &StopRequest::from(how)).await
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.client.destroy(id).await
    }

    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError> {
        self.client.wait(id, state.as_str(), timeout).await
    }

    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        self.client.set_metadata(id, key, value).await
    }

    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError> {
        let req = self
            .client
            .http()
            .get(self.extra(&format!("/machines/{id}/wait-healthy")))
            .query(&[("timeout_ms", timeout.as_millis() as u64)])
            .timeout(timeout + Duration::from_secs(10));
        self.client.send(&format!("wait for {id} to be healthy"), req).await.map(drop)
    }

    async fn checks(&self, id: &str) -> Result<Vec<Check>, OpError> {
        Ok(self.get(id).await?.checks)
    }

    fn has_leases(&self) -> bool {
        true
    }

    async fn acquire_lease(&self, id: &str, ttl: Duration) -> Result<Lease, OpError> {
        self.client.acquire_lease(id, ttl).await
    }

    async fn refresh_lease(&self, id: &str) -> Result<Lease, OpError> {
        self.client.refresh_lease(id).await
    }

    async fn release_lease(&self, id: &str) -> Result<(), OpError> {
        self.client.release_lease(id).await
    }

    fn held_leases(&self) -> Vec<String> {
        self.client.leases().held()
    }

    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.client.cordon(id).await
    }

    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.client.uncordon(id).await
    }

    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        #[derive(serde::Deserialize)]
        struct Count {
            connections: u32,
        }
        let req = self.client.http().get(self.extra(&format!("/machines/{id}/connections")));
        let c: Count = self
            .client
            .send(&format!("connections of {id}"), req)
            .await?
            .json()
            .await
            .map_err(|e| OpError::new(ErrorKind::Platform, e.to_string()))?;
        Ok(c.connections)
    }

    /// The daemon answers for every machine of the app in one request, from its proxy's table.
    fn counts_together(&self) -> bool {
        true
    }

    async fn connections_of(&self, ids: &[String]) -> Result<Vec<Result<u32, OpError>>, OpError> {
        #[derive(serde::Deserialize)]
        struct Counts {
            connections: std::collections::BTreeMap<String, u32>,
        }
        let req = self.client.http().get(self.extra("/connections"));
        let resp = match self.client.send("connections of the app's machines", req).await {
            // A daemon started by an older cutover has no such route: one machine after the other.
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Ok(cutover_core::platform::connections_one_by_one(self, ids).await);
            }
            other => other?,
        };
        let c: Counts = resp.json().await.map_err(|e| OpError::new(ErrorKind::Platform, e.to_string()))?;
        Ok(ids
            .iter()
            .map(|id| {
                c.connections.get(id).copied().ok_or_else(|| {
                    OpError::not_found(format!("machine {id} is not part of app {}", self.app))
                })
            })
            .collect())
    }

    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        let req = self.client.http().put(self.extra("/weights")).json(weights);
        self.client.send("set traffic weights", req).await.map(drop)
    }

    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        let req = self.client.http().get(self.extra("/weights"));
        self.client
            .send("read traffic weights", req)
            .await?
            .json()
            .await
            .map_err(|e| OpError::new(ErrorKind::Platform, e.to_string()))
    }

    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        let req = self
            .client
            .http()
            .get(self.extra("/stats"))
            .query(&[("version", version), ("window_ms", window.as_millis() as u64)]);
        self.client
            .send(&format!("traffic stats of v{version}"), req)
            .await?
            .json()
            .await
            .map_err(|e| OpError::new(ErrorKind::Platform, e.to_string()))
    }
}
