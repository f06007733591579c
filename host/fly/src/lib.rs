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
    Capabilities, Check, CheckStatus, EmptyApp, ErrorKind, Lease, Machine, MachineState, OpError, Platform,
    Release, ReleaseCommand, ReleaseCommandError, ReleaseLog, StopSpec,
};
use cutover_machines_api::{
    self as machines_api, ApiMachine, Client, CreateRequest, RetryPolicy, StopRequest, Token,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

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
    /// The instance each machine this deploy created or updated must be on, by machine id.
    instances: Mutex<HashMap<String, Instance>>,
}

/// The instance of a machine a create or update made: waits name it, and reads of the machine count
/// only once the API reports it (see [`FlyPlatform::view`]).
#[derive(Debug, Clone)]
struct Instance {
    /// What the change returned as the machine's version ([`ApiMachine::wait_version`]).
    version: String,
    /// When the API says it made that instance (the returned `updated_at`): checks reported before
    /// it are the old instance's.
    since: Option<SystemTime>,
    /// The release the change put it on (what a read lagging behind the change does not show yet).
    release: Release,
}

impl FlyPlatform {
    /// A handle on `app` (nothing is sent until the first call).
    pub fn new(app: &str, opts: FlyOptions) -> Self {
        let client = Client::new(&normalize_api_url(&opts.api_url), app, "fly")
            .with_token(opts.token)
            .with_retry(opts.retry);
        Self {
            client,
            app: app.to_string(),
            health_poll: opts.health_poll,
            strategy: opts.strategy,
            instances: Mutex::default(),
        }
    }

    /// The shared Machines API client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn stamped(&self, config: machines_api::MachineConfig, target: &Release) -> machines_api::MachineConfig {
        machines_api::on_release(config, target, self.strategy.as_deref())
    }

    fn instances(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instance>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember the instance a create or update onto `release` returned.
    fn expect(&self, m: &ApiMachine, release: &Release) {
        let version = m.wait_version();
        if !version.is_empty() {
            let since = humantime::parse_rfc3339_weak(&m.updated_at).ok();
            let instance = Instance { version: version.to_string(), since, release: release.clone() };
            self.instances().insert(m.id.clone(), instance);
        }
    }

    /// The instance this deploy expects `id` on, if it changed it.
    fn expected(&self, id: &str) -> Option<Instance> {
        self.instances().get(id).cloned()
    }

    /// A machine as the platform layer sees it. After an update the API may for a while still report
    /// the old instance, started and passing (its reads lag the change); so until the API reports the
    /// instance the update returned, the machine reads as `replacing` onto the release the update
    /// named, with no check results, and of
    /// the new instance only checks reported since it was made count. A machine this deploy has not
    /// changed reads as the API reports it.
    fn view(&self, api: &ApiMachine) -> Machine {
        let mut m = api.to_machine();
        let Some(expected) = self.expected(&api.id) else { return m };
        if api.wait_version() != expected.version {
            m.state = MachineState::Replacing;
            m.release = expected.release;
            m.checks.clear();
            return m;
        }
        // A new instance has no check results until its first probe: its configured checks are not
        // passing yet (flyctl counts them from the config for the same reason).
        let (named, services) = configured_checks(&api.config);
        let reported_services = m.checks.iter().filter(|c| c.name.starts_with("servicecheck-")).count();
        let missing: Vec<String> = named
            .into_iter()
            .filter(|name| !m.checks.iter().any(|c| &c.name == name))
            .chain((reported_services..services).map(|i| format!("servicecheck-{i}")))
            .collect();
        for name in missing {
            m.checks.push(Check {
                name,
                status: CheckStatus::Critical,
                output: "no result from the new instance yet".into(),
            });
        }
        if let Some(since) = expected.since {
            let stale: Vec<String> = api
                .checks
                .iter()
                .filter(|c| humantime::parse_rfc3339_weak(&c.updated_at).is_ok_and(|at| at < since))
                .map(|c| c.name.clone())
                .collect();
            for c in m.checks.iter_mut().filter(|c| stale.contains(&c.name)) {
                c.status = CheckStatus::Critical;
                c.output = "no result from the new instance yet".into();
            }
        }
        m
    }
}

/// A machine that is part of the app's deploys: not destroyed, not one of flyctl's own.
fn deployable(m: &ApiMachine) -> bool {
    let group = m.config.metadata.get(machines_api::PROCESS_GROUP_KEY).map(String::as_str).unwrap_or("app");
    !matches!(m.state.as_str(), "destroyed" | "destroying") && !RESERVED_GROUPS.contains(&group)
}

/// The checks a machine's config defines: the names of its top-level `checks` (a map by name, which
/// Fly reports under those names), and how many its services define (which Fly reports as
/// `servicecheck-…`).
fn configured_checks(config: &machines_api::MachineConfig) -> (Vec<String>, usize) {
    let named: Vec<String> = match config.rest.get("checks") {
        Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => vec![],
    };
    let services = match config.rest.get("services") {
        Some(serde_json::Value::Array(services)) => {
            services.iter().map(|svc| svc.get("checks").and_then(|c| c.as_array()).map_or(0, Vec::len)).sum()
        }
        _ => 0,
    };
    (named, services)
}

/// A change refused because the machine's host cannot be reached: the API has only a partial config
/// for it, which must not be written back as the machine's whole config.
fn unreachable_host(m: &ApiMachine) -> OpError {
    OpError::new(
        ErrorKind::Platform,
        format!(
            "machine {} is on a host Fly cannot reach (host_status {}): it cannot be updated; wait for \
             the host to come back, or destroy the machine (`fly machine destroy --force {}`) and deploy again",
            m.id, m.host_status, m.id
        ),
    )
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
        Ok(self.client.list().await?.iter().filter(|m| deployable(m)).map(|m| self.view(m)).collect())
    }

    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        Ok(self.view(&self.client.get(id).await?))
    }

    /// Green machines are created with `skip_service_registration` (Fly's proxy sends them nothing
    /// until uncordoned), in the source's region, with the source's config on the target release.
    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        let src = self.client.get(source).await?;
        if !src.is_reachable() {
            return Err(unreachable_host(&src));
        }
        let req = CreateRequest {
            config: self.stamped(src.config, target),
            region: src.region,
            skip_service_registration: !routable,
            ..Default::default()
        };
        let created = self.client.create(&req).await?;
        self.expect(&created, target);
        Ok(self.view(&created))
    }

    /// A machine that is not running is updated with `skip_launch`, so it stays stopped (as flyctl
    /// does); a running one is replaced and restarts on the new image.
    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        let m = self.client.get(id).await?;
        if !m.is_reachable() {
            return Err(unreachable_host(&m));
        }
        let running = matches!(m.state.as_str(), "started" | "starting" | "replacing" | "updating");
        let req = CreateRequest {
            config: self.stamped(m.config, target),
            region: m.region,
            skip_launch: !running,
            ..Default::default()
        };
        let updated = self.client.update(id, &req).await?;
        self.expect(&updated, target);
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.client.start(id).await
    }

    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError> {
        self.client.stop(id, &StopRequest::from(how)).await
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.client.destroy(id).await?;
        self.instances().remove(id);
        Ok(())
    }

    /// A wait on a machine this deploy created or updated names the instance the change returned,
    /// as flyctl does, so the old instance, still reported `started` for a moment after an update,
    /// cannot answer it. A wait for `destroyed` is for whichever instance.
    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError> {
        let version = match state {
            MachineState::Destroyed => None,
            _ => self.expected(id).map(|i| i.version),
        };
        self.client.wait_for(id, state.as_str(), version.as_deref(), timeout).await
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

    fn api(instance: &str, checks: &[(&str, &str, &str)]) -> ApiMachine {
        let mut config = machines_api::MachineConfig { image: "img:1".into(), ..Default::default() };
        config.metadata.insert(machines_api::RELEASE_VERSION_KEY.into(), "1".into());
        config
            .rest
            .insert("checks".into(), serde_json::json!({"http": {"type": "http"}, "tcp": {"type": "tcp"}}));
        ApiMachine {
            id: "m1".into(),
            state: "started".into(),
            instance_id: instance.into(),
            config,
            checks: checks
                .iter()
                .map(|(name, status, at)| machines_api::ApiCheck {
                    name: (*name).into(),
                    status: (*status).into(),
                    output: String::new(),
                    updated_at: (*at).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_changed_machine_reads_as_its_new_instance_or_as_replacing() {
        let p = FlyPlatform::new("app", FlyOptions::new(Token::new("t").unwrap()));
        let v2 = Release { version: 2, image: "img:2".into() };
        let passing =
            [("http", "passing", "2026-12-01T10:00:00Z"), ("tcp", "passing", "2026-12-01T10:00:00Z")];
        // Not changed by this deploy: as the API says.
        assert!(p.view(&api("old", &passing)).is_serving());
        let mut returned = api("new", &[]);
        returned.updated_at = "2026-12-01T10:00:05Z".into();
        p.expect(&returned, &v2);
        // The API still reports the old instance: replacing onto v2, no checks.
        let m = p.view(&api("old", &passing));
        assert_eq!((m.state, m.release.version, m.checks.len()), (MachineState::Replacing, 2, 0));
        // The new instance, before any result, and with one result older than the update.
        let m = p.view(&api("new", &[]));
        assert_eq!(m.state, MachineState::Started);
        assert!(m.checks.len() == 2 && m.checks.iter().all(|c| c.status == CheckStatus::Critical), "{m:?}");
        let m = p.view(&api("new", &[("http", "passing", "2026-12-01T10:00:09Z"), passing[1]]));
        let tcp = m.checks.iter().find(|c| c.name == "tcp").unwrap();
        assert_eq!(
            tcp.status,
            CheckStatus::Critical,
            "a result from before the update is the old instance's"
        );
        assert!(!m.is_serving());
        let fresh = [("http", "passing", "2026-12-01T10:00:09Z"), ("tcp", "passing", "2026-12-01T10:00:08Z")];
        assert!(p.view(&api("new", &fresh)).is_serving());
    }
}
