//! 0.1's imports, each handed to the latest contract's host side (`v0_2::host`). Most arguments and
//! results are 0.2's types already (see the module's `with`); the four types 0.1 declares inside its
//! `traffic` and `runtime` interfaces are converted here.

use super::cutover::strategy::{health, machines, runtime, traffic};
use crate::sandbox::HostState;
use crate::v0_2::cutover::strategy as latest;
use latest::types::{self, Check, Machine, MachineError, MachineState, ParamValue, Release};
use wasmtime::Result;

type BatchResult = std::result::Result<(), Vec<MachineError>>;
type Wit<T> = std::result::Result<T, types::Error>;

impl machines::Host for HostState {
    async fn list(&mut self) -> Result<Wit<Vec<Machine>>> {
        latest::machines::Host::list(self).await
    }

    async fn get(&mut self, id: String) -> Result<Wit<Machine>> {
        latest::machines::Host::get(self, id).await
    }

    async fn clone_from(
        &mut self,
        sources: Vec<String>,
        target: Release,
        routable: bool,
    ) -> Result<Vec<Wit<String>>> {
        latest::machines::Host::clone_from(self, sources, target, routable).await
    }

    async fn update(&mut self, ids: Vec<String>, target: Release) -> Result<BatchResult> {
        latest::machines::Host::update(self, ids, target).await
    }

    async fn start(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        latest::machines::Host::start(self, ids).await
    }

    async fn stop(&mut self, ids: Vec<String>, signal: String, timeout_ms: u64) -> Result<BatchResult> {
        latest::machines::Host::stop(self, ids, signal, timeout_ms).await
    }

    async fn destroy(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        latest::machines::Host::destroy(self, ids).await
    }

    async fn wait_state(
        &mut self,
        ids: Vec<String>,
        state: MachineState,
        timeout_ms: u64,
    ) -> Result<BatchResult> {
        latest::machines::Host::wait_state(self, ids, state, timeout_ms).await
    }

    async fn set_metadata(&mut self, id: String, key: String, value: String) -> Result<Wit<()>> {
        latest::machines::Host::set_metadata(self, id, key, value).await
    }
}

impl health::Host for HostState {
    async fn wait_healthy(&mut self, ids: Vec<String>, timeout_ms: u64) -> Result<BatchResult> {
        latest::health::Host::wait_healthy(self, ids, timeout_ms).await
    }

    async fn checks(&mut self, id: String) -> Result<Wit<Vec<Check>>> {
        latest::health::Host::checks(self, id).await
    }
}

impl traffic::Host for HostState {
    fn capabilities(&mut self) -> Result<traffic::TrafficCapabilities> {
        let c = latest::traffic::Host::capabilities(self)?;
        Ok(traffic::TrafficCapabilities {
            cordon: c.cordon,
            connection_counts: c.connection_counts,
            weights: c.weights,
            stats: c.stats,
        })
    }

    async fn cordon(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        latest::traffic::Host::cordon(self, ids).await
    }

    async fn uncordon(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        latest::traffic::Host::uncordon(self, ids).await
    }

    async fn connections(&mut self, ids: Vec<String>) -> Result<Vec<Wit<u32>>> {
        latest::traffic::Host::connections(self, ids).await
    }

    async fn set_weights(&mut self, weights: Vec<traffic::ReleaseWeight>) -> Result<Wit<()>> {
        let weights = weights
            .into_iter()
            .map(|w| latest::traffic::ReleaseWeight { version: w.version, percent: w.percent })
            .collect();
        latest::traffic::Host::set_weights(self, weights).await
    }

    async fn weights(&mut self) -> Result<Wit<Vec<traffic::ReleaseWeight>>> {
        let weights = latest::traffic::Host::weights(self).await?;
        Ok(weights.map(|ws| {
            ws.into_iter()
                .map(|w| traffic::ReleaseWeight { version: w.version, percent: w.percent })
                .collect()
        }))
    }

    async fn stats(&mut self, version: u64, window_ms: u64) -> Result<Wit<traffic::TrafficStats>> {
        let stats = latest::traffic::Host::stats(self, version, window_ms).await?;
        Ok(stats.map(|s| traffic::TrafficStats {
            requests: s.requests,
            errors: s.errors,
            p50_ms: s.p50_ms,
            p99_ms: s.p99_ms,
        }))
    }
}

impl runtime::Host for HostState {
    fn log(&mut self, level: runtime::Level, message: String) -> Result<()> {
        let level = match level {
            runtime::Level::Debug => latest::runtime::Level::Debug,
            runtime::Level::Info => latest::runtime::Level::Info,
            runtime::Level::Warn => latest::runtime::Level::Warn,
            runtime::Level::Error => latest::runtime::Level::Error,
        };
        latest::runtime::Host::log(self, level, message)
    }

    fn phase(&mut self, name: String) -> Result<()> {
        latest::runtime::Host::phase(self, name)
    }

    fn progress(&mut self, done: u32, total: u32) -> Result<()> {
        latest::runtime::Host::progress(self, done, total)
    }

    fn now(&mut self) -> Result<u64> {
        latest::runtime::Host::now(self)
    }

    async fn sleep(&mut self, ms: u64) -> Result<()> {
        latest::runtime::Host::sleep(self, ms).await
    }

    fn param(&mut self, name: String) -> Result<Option<ParamValue>> {
        latest::runtime::Host::param(self, name)
    }

    async fn await_promotion(&mut self, gate: String, timeout_ms: u64) -> Result<Wit<()>> {
        latest::runtime::Host::await_promotion(self, gate, timeout_ms).await
    }
}
