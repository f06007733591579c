//! The Fly.io platform: an app's Fly Machines, driven through the Machines API.
//!
//! A thin adapter over the Machines API client it shares with the local platform
//! (`machines_api::Client`), which carries the token, retries transient failures, makes creates
//! idempotent and adds the lease nonce to every mutating call of a leased machine. What is Fly's own
//! here: which machines belong to the deploy, the release metadata written on every machine, health
//! read from the machine's `checks`, and the capabilities Fly's proxy lacks (weights, connection
//! counts, per-release stats), which strategies fall back from.

use async_trait::async_trait;
use cutover_core::{
    Capabilities, CheckStatus, EmptyApp, ErrorKind, Lease, Machine, MachineState, OpError, Platform, Release,
    ReleaseCommand, ReleaseCommandError, ReleaseLog, StopSpec,
};
use cutover_machines_api::{
    self as machines_api, ApiMachine, Client, CreateRequest, RetryPolicy, StopRequest, Token,
};
use std::time::Duration;

mod release_command;

/// The Machines API of Fly.io.
pub const DEFAULT_API_URL: &str = "https://api.machines.dev/v1";

/// Process groups flyctl reserves for its own short-lived machines: never part of a deploy.
const RESERVED_GROUPS: &[&str] = &["fly_app_release_command", "fly_app_console"];

/// How to reach Fly.
#[derive(Debug, Clone)]
pub struct FlyOptions {
    /// The API's base, ending in `/v1`.
    pub api_url: String,
    /// The API token (`FLY_API_TOKEN` or `--access-token`); it never prints.
    pub token: Token,
    /// How transient API failures (429, 5xx, timeouts) are retried.
    pub retry: RetryPolicy,
    /// How often a health wait reads the machine's checks (flyctl polls every 1–2 s).
    pub health_poll: Duration,
    /// The strategy, written into the metadata of every machine it creates or updates.
    pub strategy: Option<String>,
}

impl FlyOptions {
    /// Fly's defaults for `token`: the public API, the client's default retries, a 1 s health poll.
    pub fn new(token: Token) -> Self {
        Self {
            api_url: DEFAULT_API_URL.into(),
            token,
            retry: RetryPolicy::default(),
            health_poll: Duration::from_secs(1),
            strategy: None,
        }
    }
}

/// `https://host` or `https://host/v1` → `https://host/v1` (flyctl's `FLY_FLAPS_BASE_URL` has no
/// `/v1`; the API's documentation writes it with one).
pub fn normalize_api_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.ends_with("/v1") { url.to_string() } else { format!("{url}/v1") }
}

/// One app's machines on Fly.io.
#[derive(Debug)]
pub struct FlyPlatform {
    client: Client,
    app: String,
    health_poll: Duration,
    strategy: Option<String>,
}

impl FlyPlatform {
    /// A handle on `app` (nothing is sent until the first call).
    pub fn new(app: &str, opts: FlyOptions) -> Self {
        let client = Client::new(&normalize_api_url(&opts.api_url), app, "fly")
            .with_token(opts.token)
            .with_retry(opts.retry);
        Self { client, app: app.to_string(), health_poll: opts.health_poll, strategy: opts.strategy }
    }

    /// The shared Machines API client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn stamped(&self, config: machines_api::MachineConfig, target: &Release) -> machines_api::MachineConfig {
        machines_api::on_release(config, target, self.strategy.as_deref())
    }
}

/// A machine that is part of the app's deploys: not destroyed, not one of flyctl's own.
fn deployable(m: &ApiMachine) -> bool {
    let group = m.config.metadata.get(machines_api::PROCESS_GROUP_KEY).map(String::as_str).unwrap_or("app");
    !matches!(m.state.as_str(), "destroyed" | "destroying") && !RESERVED_GROUPS.contains(&group)
}

/// "name: status (output)" of every check that is not passing, joined.
fn not_passing(m: &Machine) -> String {
    let v: Vec<String> = m
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Passing)
        .map(|c| format!("{}: {:?} {}", c.name, c.status, c.output.trim()).to_lowercase())
        .collect();
    if v.is_empty() { "no check result yet".into() } else { v.join("; ") }
}

#[async_trait]
impl Platform for FlyPlatform {
    fn name(&self) -> &str {
        "fly"
    }

    fn empty_app(&self) -> EmptyApp {
        EmptyApp::Refuse(format!(
            "{} has no machines on Fly.io yet: cutover replaces a running fleet; launch the app first \
             (`fly launch` or `fly deploy`), then deploy its next releases with cutover",
            self.app
        ))
    }

    fn app(&self) -> &str {
        &self.app
    }

    /// Fly's proxy routes by machine, not by release: cordon is all its traffic layer offers.
    fn capabilities(&self) -> Capabilities {
        Capabilities { cordon: true, connection_counts: false, weights: false, stats: false }
    }

    async fn list(&self) -> Result<Vec<Machine>, OpError> {
        Ok(self.client.list().await?.iter().filter(|m| deployable(m)).map(ApiMachine::to_machine).collect())
    }

    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        Ok(self.client.get(id).await?.to_machine())
    }

    /// Green machines are created with `skip_service_registration` (Fly's proxy sends them nothing
    /// until uncordoned), in the source's region, with the source's config on the target release.
    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        let src = self.client.get(source).await?;
        let req = CreateRequest {
            config: self.stamped(src.config, target),
            region: src.region,
            skip_service_registration: !routable,
            ..Default::default()
        };
        Ok(self.client.create(&req).await?.to_machine())
    }

    /// A machine that is not running is updated with `skip_launch`, so it stays stopped (as flyctl
    /// does); a running one is replaced and restarts on the new image.
    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        let m = self.client.get(id).await?;
        let running = matches!(m.state.as_str(), "started" | "starting" | "replacing" | "updating");
        let req = CreateRequest {
            config: self.stamped(m.config, target),
            region: m.region,
            skip_launch: !running,
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

    /// Poll the machine until it is started with every check `passing` (a `warning` is not), as
    /// flyctl does. A machine that failed or was destroyed is `Unhealthy` at once; one still not
    /// passing at the deadline is a `Timeout` naming the checks that were not passing.
    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = self.get(id).await?;
            match m.state {
                MachineState::Failed | MachineState::Destroyed | MachineState::Destroying => {
                    return Err(OpError::new(
                        ErrorKind::Unhealthy,
                        format!("machine {id} is {} while waiting for its checks", m.state.as_str()),
                    ));
                }
                MachineState::Started if m.checks.iter().all(|c| c.status == CheckStatus::Passing) => {
                    return Ok(());
                }
                _ => {}
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(OpError::new(
                    ErrorKind::Timeout,
                    format!(
                        "machine {id} did not pass its checks within {} (it is {}; {})",
                        cutover_core::duration::display(timeout),
                        m.state.as_str(),
                        not_passing(&m)
                    ),
                ));
            }
            tokio::time::sleep(self.health_poll.min(left)).await;
        }
    }

    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.client.cordon(id).await
    }

    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.client.uncordon(id).await
    }

    fn has_leases(&self) -> bool {
        true
    }

    async fn run_release_command(
        &self,
        cmd: &ReleaseCommand,
        log: &dyn ReleaseLog,
    ) -> Result<(), ReleaseCommandError> {
        self.release_command(cmd, log).await
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_normalize_and_the_platform_never_prints_its_token() {
        assert_eq!(normalize_api_url("https://api.machines.dev"), "https://api.machines.dev/v1");
        assert_eq!(normalize_api_url("http://127.0.0.1:4280/v1/"), "http://127.0.0.1:4280/v1");
        let opts = FlyOptions::new(Token::new("fo1_distinctive").unwrap());
        let p = FlyPlatform::new("app", opts.clone());
        let printed = format!("{opts:?} {p:?}");
        assert!(!printed.contains("fo1_distinctive"), "{printed}");
        assert!(printed.contains("redacted"));
    }
}
