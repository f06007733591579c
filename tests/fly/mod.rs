//! The Fly.io platform against a fake Machines API (`support/fake_fly/`) that implements the
//! documented shapes, leases and failure modes; and the same client against the local platform's
//! daemon where the two overlap (leases, destroy of a missing machine, waits past the server's cap).
//! By concern:
//!
//! - `deploy`: whole deploys through the driver — every built-in through 5xx bursts, a failing
//!   release, a second deployer, leases refreshed and released.
//! - `client`: the Machines API client on its own — retries, idempotent creates, tokens, health, and
//!   waits longer than the server's cap.
//! - `lag`: an API whose reads lag updates (the old instance still `started` and passing): waits name
//!   the new instance, and no strategy puts a machine in rotation before its new instance passed.
//! - `conformance`: Fly's own shapes (fly-go's `machine_types.go`): a machine on an unreachable host
//!   (`config: null`) is listed, named in the plan, and stops the deploy before any change.
//! - `contract`: the same lease / wait / destroy contract against the fake and the local daemon.
//! - `metrics`: the canary's metric gate against a fake Prometheus: worse metrics stop the canary
//!   though every check passes, metrics like stable's let it through, a refused query fails it safely.
//! - `release_command`: `[deploy] release_command` on a temporary machine, as flyctl runs it.
//! - `binary`: the `cutover` binary on the fake — `--dry-run` only reads, and the token appears in no
//!   output, log, error, event or journal.

mod binary;
mod client;
mod conformance;
mod contract;
mod deploy;
mod lag;
mod metrics;
mod release_command;

use crate::support::{self, Toml, fake_fly};

use cutover::config::Config;
use cutover::core::events::Collect;
use cutover::driver::{Deploy, DeployError, PlatformFlags, Purpose, StateDir, Target};
use cutover::fly::{FlyOptions, FlyPlatform};
use cutover::machines_api::{RetryPolicy, Token};
use fake_fly::{FakeFly, FakeOptions};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const APP: &str = "flyapp";
pub(crate) const V1: &str = "registry.fly.io/flyapp:deployment-1";
pub(crate) const V2: &str = "registry.fly.io/flyapp:deployment-2";
/// A token distinctive enough to find anywhere it leaks.
pub(crate) const TOKEN: &str = "fo1_ZZtokenNEVERprintedZZ";

/// Fast retries for tests: the policy's shape, not its pauses, is what is under test.
fn quick_retry() -> RetryPolicy {
    RetryPolicy { attempts: 5, base_delay: Duration::from_millis(20), max_delay: Duration::from_secs(2) }
}

fn fly_platform(url: &str, token: &str) -> FlyPlatform {
    let mut opts = FlyOptions::new(Token::new(token).unwrap());
    opts.api_url = url.to_string();
    opts.retry = quick_retry();
    opts.health_poll = Duration::from_millis(50);
    opts.strategy = Some("test".into());
    FlyPlatform::new(APP, opts)
}

/// A fake with `n` machines of APP on v1, spread over two regions.
pub(crate) async fn fake_with_fleet(n: usize) -> FakeFly {
    let fake = FakeFly::start(FakeOptions { token: TOKEN.into(), ..FakeOptions::default() }).await;
    for i in 0..n {
        fake.state.seed(APP, V1, 1, if i % 2 == 0 { "ams" } else { "iad" }, "app");
    }
    // A machine of another app, which no deploy of APP may touch.
    fake.state.seed("neighbour", V1, 1, "ams", "app");
    fake
}

/// APP's fly.toml but for its name, image, strategy and API URL.
const FLY: &str = r#"kill_timeout = "1s"

[build]

[deploy]

[cutover]
platform = "fly"
lease_ttl = "4s"

[cutover.fly]

[cutover.params]
steps = [50]
step_pause = "200ms"
drain_timeout = "300ms"
poll_interval = "100ms"
"#;

/// APP's fly.toml deploying `strategy` on the fake at `url`.
pub(crate) fn app(url: &str, strategy: &str) -> Toml {
    Toml::parse(FLY)
        .set("app", APP)
        .set("build.image", V2)
        .set("deploy.strategy", strategy)
        .set("cutover.fly.api_url", url)
}

/// An app directory holding `fly`.
fn app_dir(fly: Toml) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fly.write(dir.path().join("fly.toml"));
    dir
}

/// Deploy with the library's driver; the events it recorded come back with the result.
async fn deploy(
    dir: &tempfile::TempDir,
) -> (Result<cutover::driver::DeployReport, DeployError>, Arc<Collect>) {
    let config = Config::load(&dir.path().join("fly.toml")).unwrap();
    let flags = PlatformFlags { access_token: Token::new(TOKEN), ..Default::default() };
    let state = StateDir::at(dir.path().join("state"));
    let target = Target::resolve(&config, flags, Some(state), Purpose::Deploy);
    let runtime = support::runtime();
    let sink = Arc::new(Collect::default());
    let d = Deploy { config: &config, target: &target, runtime: &runtime, sink: sink.clone() };
    (d.run().await, sink)
}

pub(crate) fn machines_of(fake: &FakeFly, app: &str) -> Vec<fake_fly::FakeMachine> {
    fake.state.machines().into_iter().filter(|m| m.app == app).collect()
}
