//! The component runtime: loads strategy components and runs them in a sandbox.
//!
//! This is the only crate that knows wasmtime. What it enforces comes from `cutover-core` (sandbox
//! limits and capability grants, as the config sets them) and what strategies reach goes through the
//! core `Platform` trait, so no platform and no config code depends on the engine.
//!
//! - `cache`: compiled artifacts on disk, keyed by content and engine.
//! - `compile`: compiling a component in a child process killed at the compile deadline.
//! - `compat`: does a component implement a contract version this host supports?
//! - `sandbox`: the store's data (an empty WASI context, limits, the dispatch point).
//! - `limits`: memory, deadline and CPU budget, and the typed error for each.
//! - `dispatch`: the one place host calls are executed and recorded (with the bounds on one call's
//!   size, the log budget and the event [`Recorder`] in submodules of their own).
//! - `replay`: feeding a resumed strategy the journaled answers of the run that died.
//! - `v0_2`: bindings and the host side of the latest contract, `cutover:strategy@0.2.x`.
//! - `v0_1`: bindings of `cutover:strategy@0.1.x`, its imports converted to `v0_2`'s host side.
//! - `clock`: the host clock strategies see (virtual under the simulator).
//! - `toolchain`: which language and tools built a component (`cutover inspect`).

pub mod cache;
pub mod clock;
pub mod compat;
pub mod compile;
pub mod dispatch;
pub mod error;
pub mod limits;
pub mod replay;
pub mod sandbox;
pub mod toolchain;
pub mod v0_1;
pub mod v0_2;

pub use cache::{ComponentCache, Origin};
pub use clock::HostClock;
pub use compat::WorldInfo;
pub use compile::Compiler;
pub use cutover_core::Grants;
pub use dispatch::{Dispatcher, PromotionGate, Recorder};
pub use error::RuntimeError;
pub use limits::{LimitExceeded, Limits};
pub use replay::{Replay, ReplayDiverged};

/// The largest component file `deploy`, `verify` and `inspect` compile: well above the largest real
/// strategies (Python components, about 18 MB), well below what would hold a shared CI runner.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

use cutover_core::contract::{DeployPlan, StrategyInfo};
use cutover_core::metrics::MetricsSource;
use cutover_core::{OpError, Platform};
use limits::Guard;
use sandbox::HostState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

/// A wasmtime engine configured for strategies, its linker, and the component cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ComponentCache,
    loaded: Mutex<HashMap<[u8; 32], Arc<StrategyComponent>>>,
    ticker_stop: Arc<AtomicBool>,
    /// Where components are compiled: a child process killed at the deadline, or (`None`) in-process.
    compiler: Option<Compiler>,
    /// How long a compile may take (see [`compile`]).
    compile_timeout: Mutex<std::time::Duration>,
}

/// A loaded, checked and pre-linked strategy, ready to instantiate cheaply.
pub struct StrategyComponent {
    pre: Pre,
    /// What the component imports and exports.
    pub world: WorldInfo,
    /// Whether this load compiled the component or found it cached.
    pub origin: Origin,
    /// BLAKE3 hash of the component bytes.
    pub hash: [u8; 32],
    /// Size of the component in bytes.
    pub size: usize,
}

/// A component pre-linked against the contract version it was built for.
enum Pre {
    V0_1(v0_1::StrategyPre<HostState>),
    V0_2(v0_2::StrategyPre<HostState>),
}

/// An instance of either contract version. Their exports take and return the same Rust types (0.1's
/// bindings reuse 0.2's `types`), so only the call differs.
enum Instance {
    V0_1(v0_1::Strategy),
    V0_2(v0_2::Strategy),
}

/// Everything a deploy run needs besides the component.
pub struct RunContext {
    /// The platform the strategy's calls reach, through the dispatcher.
    pub platform: Arc<dyn Platform>,
    /// Memory, deadline and CPU budget of the run.
    pub limits: Limits,
    /// Bound on concurrent platform operations within one batch call.
    pub concurrency: usize,
    /// The clock the strategy sees (virtual under the simulator).
    pub clock: HostClock,
    /// Where the run's events go, numbered.
    pub recorder: Recorder,
    /// Seed for the guest's WASI randomness.
    pub seed: u64,
    /// Where `cutover promote` reaches a manual gate, when the platform has no promotion model of its
    /// own (the simulator's scenario may play the operator; otherwise the journal carries it).
    pub promotions: Option<Arc<dyn PromotionGate>>,
    /// What the strategy may call and change (everything by default).
    pub grants: Grants,
    /// Under `cutover resume`: the journaled calls to answer before going live.
    pub replay: Option<Arc<Replay>>,
    /// Who answers `metrics.query` and `metrics.query-range`; `None`: they fail with `unsupported`.
    pub metrics: Option<Arc<dyn MetricsSource>>,
    /// Machines the run may create, its blast radius ([`Limits::creation_bound`] of the fleet the
    /// deploy started with; a resumed run counts what its journal shows made).
    pub creation_bound: u64,
}

impl Runtime {
    /// Build the engine and linker, and start the epoch ticker that enforces time limits.
    pub fn new(cache: ComponentCache) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&compile::engine_config())
            .map_err(|e| RuntimeError::Other(anyhow::anyhow!("{e:?}")))?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| v0_2::Strategy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s))
            .and_then(|()| v0_1::Strategy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s))
            // 0.1's `types` are 0.2's, linked under 0.2's name; a 0.1 component imports them as 0.1.
            .and_then(|()| linker.instance(v0_1::TYPES_INSTANCE).map(drop))
            .map_err(|e| RuntimeError::Other(anyhow::anyhow!("linking the host interfaces: {e:?}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("cutover-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(limits::TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Other(anyhow::anyhow!("starting the epoch ticker: {e}")))?;
        }
        Ok(Self {
            engine,
            linker,
            cache,
            loaded: Mutex::new(HashMap::new()),
            ticker_stop,
            compiler: None,
            compile_timeout: Mutex::new(cutover_core::limits::DEFAULT_COMPILE_TIMEOUT),
        })
    }

    /// Compile in a child run by `compiler`, killed at the compile deadline (see [`compile`]).
    pub fn with_compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = Some(compiler);
        self
    }

    /// How long compiling one component may take from now on (`[cutover.limits] compile_timeout`).
    pub fn set_compile_timeout(&self, timeout: std::time::Duration) {
        *self.compile_timeout.lock().unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// The engine strategies run on (the benchmarks run a bare component on the same one, to measure
    /// what the dispatch point costs over a plain wasmtime call).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a component: check it is a component, compile it (or fetch it from the cache), check its
    /// world against this host, and pre-link it. Loading the same bytes twice in one process returns
    /// the same pre-linked component.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<StrategyComponent>, RuntimeError> {
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(RuntimeError::TooLarge {
                subject: "the component".into(),
                bytes: bytes.len() as u64,
                limit: MAX_COMPONENT_BYTES,
            });
        }
        let hash = ComponentCache::content_hash(bytes);
        if let Some(c) = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            return Ok(c.clone());
        }
        check_header(bytes)?;
        let timeout = *self.compile_timeout.lock().unwrap_or_else(|e| e.into_inner());
        let compile = || match &self.compiler {
            Some(compiler) => compile::in_child(compiler, &self.engine, bytes, timeout),
            None => wasmtime::component::Component::new(&self.engine, bytes).map_err(anyhow::Error::from),
        };
        let (component, origin) = self.cache.load(&self.engine, &hash, compile).map_err(|e| {
            match e.downcast_ref::<compile::DeadlinePassed>() {
                Some(passed) => {
                    RuntimeError::CompileTimeout { subject: "the component".into(), timeout: passed.0 }
                }
                None => RuntimeError::NotAComponent(format!("{e:#}")),
            }
        })?;
        let world = compat::check(&self.engine, &component)?;
        let linked = self.linker.instantiate_pre(&component).and_then(|pre| match world.contract {
            compat::Contract::V0_1 => v0_1::StrategyPre::new(pre).map(Pre::V0_1),
            compat::Contract::V0_2 => v0_2::StrategyPre::new(pre).map(Pre::V0_2),
        });
        let pre = linked.map_err(|e| {
            RuntimeError::Incompatible(format!(
                "the strategy does not link against this host ({}@{}): {e:?}",
                compat::PACKAGE,
                world.contract.version()
            ))
        })?;
        let loaded = Arc::new(StrategyComponent { pre, world, origin, hash, size: bytes.len() });
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).insert(hash, loaded.clone());
        Ok(loaded)
    }

    /// Forget the pre-linked components this process loaded, so the next load goes to the disk cache
    /// (what a new `cutover` process does; used by the warm-start benchmark).
    pub fn forget_loaded(&self) {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Ask a strategy for its name, summary and parameters. Runs in the same sandbox, with no access
    /// to any platform.
    pub async fn describe(&self, strategy: &StrategyComponent) -> Result<StrategyInfo, RuntimeError> {
        let (_tx, rx) = watch::channel(false);
        let state = HostState::new(HostClock::simulated(), 0, Guard::new(Limits::default()), None, rx);
        let mut store = self.store(state);
        let info = match instantiate(strategy, &mut store).await? {
            Instance::V0_1(bindings) => bindings.call_describe(&mut store).await,
            Instance::V0_2(bindings) => bindings.call_describe(&mut store).await,
        };
        let info = info.map_err(|e| RuntimeError::from_guest(e, store.data().output()))?;
        let info = v0_2::info_from_wit(info);
        check_info(&info)?;
        Ok(info)
    }

    /// Run one deploy. The outer error is the sandbox's (a limit, a crash); the inner one is the
    /// strategy's own verdict (`deploy` returned an error).
    pub async fn deploy(
        &self,
        strategy: &StrategyComponent,
        plan: &DeployPlan,
        ctx: RunContext,
    ) -> Result<Result<(), OpError>, RuntimeError> {
        let guard = Guard::new(ctx.limits);
        let (deadline_hit, _watchdog) = watchdog(guard.deadline_at());
        let dispatcher =
            Dispatcher::new(ctx.platform, plan.params.clone(), ctx.concurrency, ctx.clock, ctx.recorder)
                .with_promotions(ctx.promotions)
                .with_grants(ctx.grants)
                .with_creation_bound(ctx.creation_bound)
                .with_replay(ctx.replay)
                .with_metrics(ctx.metrics);
        let state = HostState::new(ctx.clock, ctx.seed, guard, Some(dispatcher), deadline_hit);
        let deadline_passed = state.deadline_passed();
        let deadline = state.guard.deadline_exceeded();
        let mut store = self.store(state);
        let run = async {
            let instance = instantiate(strategy, &mut store).await?;
            store.data_mut().guard.restart_budget();
            let plan = v0_2::plan_to_wit(plan);
            let verdict = match instance {
                Instance::V0_1(bindings) => bindings.call_deploy(&mut store, &plan).await,
                Instance::V0_2(bindings) => bindings.call_deploy(&mut store, &plan).await,
            };
            verdict.map_err(|e| RuntimeError::from_guest(e, store.data().output()))
        };
        // The whole run races the deadline too: a guest blocked in WASI (`std::thread::sleep` polls a
        // WASI clock) is in no cutover call and computes nothing, so neither the race of each host call
        // nor the epoch ticks would end it. Dropping the run unwinds the guest where it waits.
        let verdict = tokio::select! {
            biased;
            verdict = run => verdict,
            () = deadline_passed => Err(RuntimeError::Limit(deadline)),
        };
        store.data().finish();
        Ok(verdict?.map_err(v0_2::error_from_wit))
    }

    fn store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.guard);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| cx.data_mut().guard.on_tick());
        store
    }
}

/// What `describe` may return: it is printed by `cutover strategies`, `inspect` and `--help`-like
/// output and shapes the config, so a strategy must not be able to make it unbounded.
const MAX_PARAMS: usize = 128;
const MAX_NAME: usize = 64;
const MAX_SUMMARY: usize = 2048;

fn check_info(info: &StrategyInfo) -> Result<(), RuntimeError> {
    let refuse = |what: String| Err(RuntimeError::NotAStrategy(format!("describe() returned {what}")));
    if info.name.len() > MAX_NAME || info.name.trim().is_empty() {
        return refuse(format!("a name of {} bytes; expected 1 to {MAX_NAME}", info.name.len()));
    }
    if info.summary.len() > MAX_SUMMARY {
        return refuse(format!(
            "a summary of {} bytes; at most {MAX_SUMMARY} are allowed",
            info.summary.len()
        ));
    }
    if info.params.len() > MAX_PARAMS {
        return refuse(format!("{} parameters; at most {MAX_PARAMS} are allowed", info.params.len()));
    }
    for p in &info.params {
        if p.name.len() > MAX_NAME || p.summary.len() > MAX_SUMMARY {
            let name: String = p.name.chars().take(MAX_NAME).collect();
            return refuse(format!(
                "parameter `{name}` with a name of {} bytes and a summary of {} (at most {MAX_NAME} and {MAX_SUMMARY})",
                p.name.len(),
                p.summary.len()
            ));
        }
    }
    Ok(())
}

/// Instantiate from the reused `InstancePre`; a failure (e.g. memory over the limit) is the guest's.
async fn instantiate(
    strategy: &StrategyComponent,
    store: &mut Store<HostState>,
) -> Result<Instance, RuntimeError> {
    let instance = match &strategy.pre {
        Pre::V0_1(pre) => pre.instantiate_async(&mut *store).await.map(Instance::V0_1),
        Pre::V0_2(pre) => pre.instantiate_async(&mut *store).await.map(Instance::V0_2),
    };
    instance.map_err(|e| RuntimeError::from_guest(e, store.data().output()))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Tell components from core modules and from things that are not wasm at all.
fn check_header(bytes: &[u8]) -> Result<(), RuntimeError> {
    const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    if bytes.first() == Some(&b'(') {
        return Ok(()); // WebAssembly text; the compiler will say if it is not a component
    }
    if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
        return Err(RuntimeError::NotAComponent(
            "the file does not start with the WebAssembly magic number `\\0asm`".into(),
        ));
    }
    if bytes[4..8] != COMPONENT_LAYER {
        return Err(RuntimeError::NotAComponent(
            "it is a core WebAssembly module, not a component; build it with \
             `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
                .into(),
        ));
    }
    Ok(())
}

/// Keeps the deadline watchdog thread alive; dropping it ends the thread.
struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// A thread that flips the returned flag when `at` passes. It works on real time even when tokio's
/// clock is paused (the simulator), which is the point: the deadline bounds real time.
fn watchdog(at: std::time::Instant) -> (watch::Receiver<bool>, Watchdog) {
    let (tx, rx) = watch::channel(false);
    let (cancel_tx, cancel_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let wait = at.saturating_duration_since(std::time::Instant::now());
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancel_rx.recv_timeout(wait) {
            let _ = tx.send(true);
        }
    });
    (rx, Watchdog(cancel_tx))
}
