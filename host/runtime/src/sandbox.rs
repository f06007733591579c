//! The store's data: an empty WASI context plus the host's per-run state.
//!
//! WASI p2 is linked because every wasm32-wasip2 component imports it (std's allocator, panics and
//! clocks go through it), but the context grants nothing: no preopened directories, no sockets, no name
//! lookups, no environment, no arguments, closed stdin. Clocks are the host's [`HostClock`] and
//! randomness comes from a generator seeded by the host, so a run is reproducible. stdout and stderr go
//! to a bounded in-memory pipe whose tail is attached to trap reports (that is where a Rust panic
//! message lands).

use super::clock::HostClock;
use super::dispatch::Dispatcher;
use super::limits::Guard;
use cutover_core::events::{HostCall, HostReply};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Bytes of guest stdout/stderr kept for error reports.
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// Everything a running strategy's store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) guard: Guard,
    output: MemoryOutputPipe,
    /// `None` while `describe` runs: describing a strategy must not touch any fleet.
    dispatcher: Option<Dispatcher>,
    /// Flips to true when the run's deadline passes (set by a watchdog thread).
    deadline_hit: watch::Receiver<bool>,
}

/// The strategy called the host from `describe`, which must be pure.
#[derive(Debug, thiserror::Error)]
#[error("the strategy called the host from describe(), which must only return its name and parameters")]
pub struct DescribeCalledHost;

impl HostState {
    /// The store's data for one run: `dispatcher` is `None` while `describe` runs (no fleet to
    /// reach), and `deadline_hit` flips when the run's real-time deadline passes.
    pub fn new(
        clock: HostClock,
        seed: u64,
        guard: Guard,
        dispatcher: Option<Dispatcher>,
        deadline_hit: watch::Receiver<bool>,
    ) -> Self {
        let output = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .wall_clock(clock)
            .monotonic_clock(clock)
            .secure_random(StdRng::seed_from_u64(seed))
            .insecure_random(StdRng::seed_from_u64(seed.rotate_left(17)))
            .insecure_random_seed(u128::from(seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        Self { wasi, table: ResourceTable::new(), guard, output, dispatcher, deadline_hit }
    }

    /// The run is over: note what the dispatch point still holds back (dropped log lines).
    pub fn finish(&self) {
        if let Some(d) = &self.dispatcher {
            d.flush_log_budget();
        }
    }

    /// What the guest wrote to stdout/stderr (bounded), lossily decoded.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.contents()).into_owned()
    }

    /// The dispatch point for calls that never wait (log, phase, progress, now, param, capabilities).
    ///
    /// These reach no platform, so they are not checked against the deadline here (this is the hot
    /// path, kept free of clock reads; see BENCHMARKS.md): a guest past its deadline is stopped by the
    /// next epoch tick, within [`super::limits::TICK`], or by its first call that could wait.
    #[inline]
    pub fn call_instant(&mut self, call: HostCall) -> wasmtime::Result<HostReply> {
        self.instant(|dispatcher| dispatcher.call_instant(call))
    }

    /// `runtime.now` through the dispatch point (see [`Dispatcher::now`]).
    #[inline]
    pub fn call_now(&mut self) -> wasmtime::Result<Result<u64, Box<HostReply>>> {
        self.instant(Dispatcher::now)
    }

    /// A call that never waits, made by `dispatch` (see [`Self::call_instant`]). Inlined into each
    /// caller, so the call's variant is known there and the moves and drops of the others vanish.
    #[inline(always)]
    fn instant<R>(&mut self, dispatch: impl FnOnce(&Dispatcher) -> R) -> wasmtime::Result<R> {
        let Some(dispatcher) = &self.dispatcher else {
            return Err(DescribeCalledHost.into());
        };
        self.guard.admit_call()?;
        let reply = dispatch(dispatcher);
        if let Some(diverged) = dispatcher.diverged() {
            return Err(diverged.into());
        }
        if let Some(failure) = dispatcher.record_failure() {
            return Err(failure.into());
        }
        self.guard.host_returned();
        Ok(reply)
    }

    /// The dispatch point for calls that may wait on the platform or the clock.
    ///
    /// A call made after the run's deadline is refused before it is dispatched: the guest may get
    /// control back after the deadline (a call that ended just then, or up to one tick before an epoch
    /// check notices), and nothing it asks for then may reach the platform. A call under way is
    /// raced against the deadline (epochs cannot interrupt a host future); a call that finished is
    /// kept (it is recorded, and it happened), but the strategy does not get control back if the
    /// deadline passed meanwhile. The CPU budget restarts when the call returns.
    pub async fn call(&mut self, call: HostCall) -> wasmtime::Result<HostReply> {
        let Some(dispatcher) = &self.dispatcher else {
            return Err(DescribeCalledHost.into());
        };
        if self.guard.past_deadline() {
            return Err(self.guard.deadline_exceeded().into());
        }
        self.guard.admit_call()?;
        let reply = tokio::select! {
            biased;
            reply = dispatcher.call(call) => reply,
            () = self.deadline_passed() => return Err(self.guard.deadline_exceeded().into()),
        };
        if let Some(diverged) = dispatcher.diverged() {
            return Err(diverged.into());
        }
        if let Some(failure) = dispatcher.record_failure() {
            return Err(failure.into());
        }
        if self.guard.past_deadline() {
            return Err(self.guard.deadline_exceeded().into());
        }
        self.guard.host_returned();
        Ok(reply)
    }

    /// Completes when the watchdog says the run's deadline has passed; never, when no deadline can fire
    /// any more (a dropped watchdog). Owns what it needs, so it can race a call that borrows the store.
    pub(crate) fn deadline_passed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut deadline = self.deadline_hit.clone();
        async move {
            if deadline.wait_for(|hit| *hit).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
