//! Runtime benchmarks: the price of the sandbox and of the dispatch point.
//!
//! - `host_call/cutover`: one `runtime.now` call from a Rust guest through cutover's dispatch point
//!   (recorded as an event), against `host_call/bare`: the same guest loop calling a bare wasmtime
//!   import that only returns a number. Same engine, same run. cutover's `now` is a sync host
//!   function, so the baseline is one too (the same path through wasmtime); `host_call/bare_async` is
//!   the same import declared async (a boxed future polled on the fiber), for comparison only.
//! - `start/warm`: cached artifact on disk → deserialized, checked, pre-linked, instantiated, first
//!   call (`describe`) returned: what a new `cutover` process pays for a strategy it has seen before.
//! - `start/instantiate`: instantiate from the reused `InstancePre` and call `describe`.
//! - `start/cold`: compile the component from scratch (no cache).
//! - `deploy/sim_rolling_10000`: real time for a 10,000-machine rolling deploy on the simulator.
//!
//! Run: `cargo bench -p cutover --bench runtime`. Results go in BENCHMARKS.md.

#[path = "../../../tests/support/mod.rs"]
mod support;

use criterion::{Criterion, criterion_group};
use cutover::core::contract::ParamValue;
use cutover::runtime::{ComponentCache, Runtime};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The baseline: a sync import, as cutover's `runtime.now` is.
mod bare {
    wasmtime::component::bindgen!({
        path: "../../tests/guests/bare/wit",
        world: "bare",
        exports: { default: async },
    });
}

/// The same import declared async (what the baseline was before issue 20: it costs more than a sync
/// one, so it flattered cutover's ratio).
mod bare_async {
    wasmtime::component::bindgen!({
        path: "../../tests/guests/bare/wit",
        world: "bare",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The bare host: WASI (the guest imports it) and a `now` that returns a constant.
struct BareHost {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bare::BareImports for BareHost {
    fn now(&mut self) -> u64 {
        42
    }
}

impl bare_async::BareImports for BareHost {
    async fn now(&mut self) -> u64 {
        42
    }
}

/// Both sides of the host-call comparison, set up once.
struct HostCallBench {
    rt: tokio::runtime::Runtime,
    runtime: Runtime,
    calls_guest: Vec<u8>,
    engine: wasmtime::Engine,
    bare: bare::BarePre<BareHost>,
    bare_async: bare_async::BarePre<BareHost>,
}

impl HostCallBench {
    fn new() -> Self {
        let runtime = support::runtime();
        // The bare baseline runs on the same engine (epoch interruption on), with the same guest loop.
        let engine = runtime.engine().clone();
        let component = wasmtime::component::Component::new(&engine, support::guest("bare")).unwrap();
        let mut linker: Linker<BareHost> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        bare::Bare::add_to_linker::<BareHost, HasSelf<BareHost>>(&mut linker, |s| s).unwrap();
        let bare = bare::BarePre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let mut linker: Linker<BareHost> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        bare_async::Bare::add_to_linker::<BareHost, HasSelf<BareHost>>(&mut linker, |s| s).unwrap();
        let bare_async = bare_async::BarePre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let calls_guest = support::guest("calls");
        Self { rt: support::paused_runtime(), runtime, calls_guest, engine, bare, bare_async }
    }

    /// `n` calls of `runtime.now` through cutover's dispatch point (events built, sent to a sink that
    /// keeps nothing).
    fn cutover(&self, n: u64) -> Duration {
        self.rt.block_on(async {
            let world = support::world("[fleet]\nmachines = 1");
            let mut opts = support::RunOptions { collect_events: false, ..Default::default() };
            // Criterion's warm-up asks for more calls than a run may make by default.
            opts.limits.host_calls = u64::MAX;
            opts.params.insert("calls".into(), ParamValue::Integer(n as i64));
            let start = Instant::now();
            let run = support::run_on_sim(&self.runtime, &self.calls_guest, world, opts).await;
            let took = start.elapsed();
            assert!(matches!(run.result, Ok(Ok(()))), "{:?}", run.result);
            took
        })
    }

    /// A store for one bare run.
    fn bare_store(&self) -> Store<BareHost> {
        let host = BareHost { wasi: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, host);
        store.set_epoch_deadline(u64::MAX / 2);
        store
    }

    /// `n` calls of a bare sync import that returns a constant.
    fn bare(&self, n: u64) -> Duration {
        self.rt.block_on(async {
            let mut store = self.bare_store();
            let start = Instant::now();
            let bindings = self.bare.instantiate_async(&mut store).await.unwrap();
            bindings.call_run(&mut store, n as u32).await.unwrap();
            start.elapsed()
        })
    }

    /// `n` calls of the same import declared async.
    fn bare_async(&self, n: u64) -> Duration {
        self.rt.block_on(async {
            let mut store = self.bare_store();
            let start = Instant::now();
            let bindings = self.bare_async.instantiate_async(&mut store).await.unwrap();
            bindings.call_run(&mut store, n as u32).await.unwrap();
            start.elapsed()
        })
    }
}

fn host_calls(c: &mut Criterion) {
    let bench = HostCallBench::new();
    let mut group = c.benchmark_group("host_call");
    group.bench_function("cutover", |b| b.iter_custom(|iters| bench.cutover(iters)));
    group.bench_function("bare", |b| b.iter_custom(|iters| bench.bare(iters)));
    group.bench_function("bare_async", |b| b.iter_custom(|iters| bench.bare_async(iters)));
    group.finish();

    // The machine is shared and noisy, so the ratio is taken from interleaved rounds in one run: each
    // round measures both sides back to back, and the median of each side is compared.
    const ROUNDS: usize = 21;
    const CALLS: u64 = 500_000;
    let per_call = |took: Duration| took.as_nanos() as f64 / CALLS as f64;
    let (mut ours, mut base, mut base_async) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(per_call(bench.cutover(CALLS)));
        base.push(per_call(bench.bare(CALLS)));
        base_async.push(per_call(bench.bare_async(CALLS)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (ours, base, base_async) = (median(&mut ours), median(&mut base), median(&mut base_async));
    println!(
        "host_call/ratio         cutover {ours:.1} ns, bare {base:.1} ns per call: {:.2}x \
         (median of {ROUNDS} interleaved rounds of {CALLS} calls); bare async import {base_async:.1} ns \
         ({:.2}x)",
        ours / base,
        ours / base_async
    );
}

fn start(c: &mut Criterion) {
    let rt = support::paused_runtime();
    let rolling = support::builtin("rolling");
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(ComponentCache::at(dir.path())).unwrap();
    runtime.load(rolling).unwrap(); // fill the disk cache
    let mut group = c.benchmark_group("start");

    group.bench_function("warm", |b| {
        b.iter(|| {
            runtime.forget_loaded();
            let s = runtime.load(rolling).unwrap();
            assert_eq!(s.origin, cutover::runtime::Origin::DiskCache);
            rt.block_on(runtime.describe(&s)).unwrap()
        })
    });

    let loaded = runtime.load(rolling).unwrap();
    group.bench_function("instantiate", |b| b.iter(|| rt.block_on(runtime.describe(&loaded)).unwrap()));

    let uncached = Runtime::new(ComponentCache::disabled()).unwrap();
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter(|| {
            uncached.forget_loaded();
            uncached.load(rolling).unwrap()
        })
    });
    group.finish();
}

fn deploy(c: &mut Criterion) {
    let runtime = support::runtime();
    let mut group = c.benchmark_group("deploy");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("sim_rolling_10000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rt = support::paused_runtime();
                total += rt.block_on(async {
                    let world = support::world(
                        "[fleet]\nmachines = 10000\nregions = [\"ams\", \"iad\", \"sin\", \"syd\"]",
                    );
                    let opts = support::RunOptions { concurrency: 64, ..Default::default() };
                    let start = Instant::now();
                    let run = support::run_on_sim(&runtime, support::builtin("rolling"), world, opts).await;
                    let took = start.elapsed();
                    assert!(matches!(run.result, Ok(Ok(()))));
                    took
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, host_calls, start, deploy);

fn main() {
    // `CUTOVER_PROFILE_HOST_CALL=cutover|bare|bare_async N` runs one side of the host-call comparison once, for an
    // instruction count under `valgrind --tool=callgrind` (exact and repeatable, unlike timings here).
    if let Ok(side) = std::env::var("CUTOVER_PROFILE_HOST_CALL") {
        let n: u64 =
            std::env::var("CUTOVER_PROFILE_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let bench = HostCallBench::new();
        let took = match side.as_str() {
            "bare" => bench.bare(n),
            "bare_async" => bench.bare_async(n),
            _ => bench.cutover(n),
        };
        println!("{side}: {n} calls in {took:?}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
