//! Shared helpers for the end-to-end tests and benchmarks: building the test guest components and
//! the example app, running the `cutover` binary (`run.rs`), editing configs as TOML (`toml_doc.rs`),
//! and running strategies on the simulator.
#![allow(dead_code)] // each benchmark uses a different subset

pub mod bounds;
pub mod fake_fly;
pub mod fake_prometheus;
pub mod invariants;
pub mod prometheus;
mod run;
mod toml_doc;

// The benchmarks include this module too, and use neither.
#[allow(unused_imports)]
pub use run::{Cutover, OutputExt, cutover, script, without_host_build_flags};
#[allow(unused_imports)]
pub use toml_doc::Toml;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    // This crate is host/cutover.
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// Where guest components are built (shared with host/builtins/build.rs).
pub fn guest_target() -> PathBuf {
    root().join("target").join("wasm-guests")
}

/// Build `tests/guests` (once per process) and return the bytes of one guest component.
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root().join("tests/guests/Cargo.toml"))
            .env("CARGO_TARGET_DIR", guest_target());
        without_host_build_flags(&mut cmd);
        let status = cmd.status().expect("run cargo to build tests/guests");
        assert!(status.success(), "building the test guests in tests/guests failed");
    });
    let path = guest_target().join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A component cache directory shared by the tests of one checkout.
pub fn cache_dir() -> PathBuf {
    root().join("target").join("test-component-cache")
}

/// The example app's binary (examples/app/server, a debug build), built once if `cargo test
/// --workspace` has not built it already: what the local platform runs as machines.
pub fn example_app_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = option_env!("CARGO").unwrap_or("cargo");
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "hello-cutover", "--manifest-path"])
                .arg(root().join("Cargo.toml"))
                .status()
                .expect("run cargo");
            assert!(status.success(), "building the example app failed");
            root().join("target/debug/hello-cutover")
        })
        .clone()
}

use cutover::core::contract::{DeployPlan, MaxUnavailable, ParamValue};
use cutover::core::events::{Collect, Discard, Event, EventSink};
use cutover::core::{CheckKind, CheckSpec, OpError, Release};
use cutover::runtime::{
    ComponentCache, Grants, HostClock, Limits, Recorder, RunContext, Runtime, RuntimeError,
};
use cutover::sim::{Scenario, SimWorld};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The app every simulated test deploys.
pub const APP: &str = "app";
/// The image the fleet starts on, and the one deploys move to.
pub const V1: &str = "registry.example/app:v1";
pub const V2: &str = "registry.example/app:v2";

/// A runtime using the shared test cache.
pub fn runtime() -> Runtime {
    Runtime::new(ComponentCache::at(cache_dir())).expect("component runtime")
}

/// One HTTP check, as a typical fly.toml has.
pub fn http_check() -> CheckSpec {
    CheckSpec {
        name: "http".into(),
        kind: CheckKind::Http {
            method: "GET".into(),
            path: "/health".into(),
            protocol: "http".into(),
            headers: vec![],
            tls_skip_verify: false,
        },
        grace_period: Duration::from_secs(5),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        port: Some(8080),
    }
}

/// A simulated world from scenario text, with the fleet on v1 and one HTTP check.
pub fn world(scenario: &str) -> Arc<SimWorld> {
    world_with_checks(scenario, vec![http_check()])
}

/// A simulated world with the given health checks (none: an app without checks).
pub fn world_with_checks(scenario: &str, checks: Vec<CheckSpec>) -> Arc<SimWorld> {
    let scenario = Scenario::parse(scenario).expect("scenario");
    SimWorld::new(scenario, APP, V1, checks)
}

/// Faults a random scenario injects, beyond its healthy fleet (drawn by the property tests).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of API calls that fail with a transient error.
    pub error_rate: f64,
    /// Machine `.0` of the starting fleet crashes `.1` after the deploy starts.
    pub crash: Option<(usize, Duration)>,
    /// The new release (`V2`) takes this long to boot: longer than `wait_timeout` and every wait on it
    /// times out.
    pub slow_v2: Option<Duration>,
}

/// A scenario of `machines` machines spread over the first `regions` of ams/iad/sin/syd and the first
/// `groups` of app/worker, with `faults` (for property tests).
pub fn random_fleet(seed: u64, machines: usize, regions: usize, groups: usize, faults: &Faults) -> String {
    let quoted = |names: &[&str]| names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let mut scenario = format!(
        "seed = {seed}\n[fleet]\nmachines = {machines}\nregions = [{}]\ngroups = [{}]\n[faults]\n\
         api_error_rate = {}\n",
        quoted(&["ams", "iad", "sin", "syd"][..regions]),
        quoted(&["app", "worker"][..groups]),
        faults.error_rate
    );
    if let Some(boot) = faults.slow_v2 {
        scenario += &format!("slow_images = {{ {V2:?} = \"{}ms\" }}\n", boot.as_millis());
    }
    if let Some((machine, at)) = faults.crash {
        scenario += &format!("[[faults.crash]]\nmachine = {machine}\nat = \"{}ms\"\n", at.as_millis());
    }
    scenario
}

/// A current-thread runtime with paused time: the simulator's virtual clock.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
}

/// What a strategy run on the simulator produced.
pub struct SimRun {
    pub result: Result<Result<(), OpError>, RuntimeError>,
    pub world: Arc<SimWorld>,
    pub events: Vec<Event>,
}

/// Options for [`run_on_sim`].
pub struct RunOptions {
    pub max_unavailable: MaxUnavailable,
    pub wait_timeout: Duration,
    pub limits: Limits,
    /// What the strategy may call and change.
    pub grants: Grants,
    pub params: BTreeMap<String, ParamValue>,
    pub concurrency: usize,
    pub target_image: String,
    /// Keep every event (tests assert on them); benchmarks turn this off to price the dispatch point
    /// without an in-memory log behind it.
    pub collect_events: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_unavailable: MaxUnavailable::Fraction(0.33),
            wait_timeout: Duration::from_secs(300),
            limits: Limits::default(),
            grants: Grants::default(),
            params: BTreeMap::new(),
            concurrency: 8,
            target_image: V2.into(),
            collect_events: true,
        }
    }
}

/// Run a strategy component against a simulated world (call on a paused-time runtime).
pub async fn run_on_sim(runtime: &Runtime, bytes: &[u8], world: Arc<SimWorld>, opts: RunOptions) -> SimRun {
    let strategy = runtime.load(bytes).expect("load strategy");
    let info = runtime.describe(&strategy).await.expect("describe");
    let mut params = opts.params;
    for spec in info.params {
        if let Some(d) = spec.default {
            params.entry(spec.name).or_insert(d);
        }
    }
    let plan = DeployPlan {
        app: APP.into(),
        target: Release { version: 2, image: opts.target_image },
        previous: Some(Release { version: 1, image: V1.into() }),
        process_groups: vec!["app".into()],
        max_unavailable: opts.max_unavailable,
        wait_timeout_ms: opts.wait_timeout.as_millis() as u64,
        kill_signal: "SIGINT".into(),
        kill_timeout_ms: 5000,
        params,
    };
    let collect = Arc::new(Collect::default());
    let clock = HostClock::simulated();
    let creation_bound = opts.limits.creation_bound(world.snapshot(APP).len(), plan.process_groups.len());
    let ctx = RunContext {
        platform: Arc::new(world.platform(APP)),
        limits: opts.limits,
        concurrency: opts.concurrency,
        clock,
        recorder: Recorder::new(
            if opts.collect_events { collect.clone() as Arc<dyn EventSink> } else { Arc::new(Discard) },
            clock,
        ),
        seed: 2,
        promotions: None,
        replay: None,
        grants: opts.grants,
        metrics: None,
        creation_bound,
    };
    let result = runtime.deploy(&strategy, &plan, ctx).await;
    SimRun { result, world, events: collect.events() }
}

/// The built-in strategy's bytes.
pub fn builtin(name: &str) -> &'static [u8] {
    cutover::builtins::builtin(name).expect("built-in strategy")
}

/// Waits up to 5 s for `cond` to hold, checking every 10 ms; panics naming `what` otherwise.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
