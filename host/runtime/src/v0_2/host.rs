//! The host side of the latest contract's imports (0.2; 0.1's reach these through `v0_1`): translate arguments, hand the call to the dispatch point
//! (`HostState::call`), translate the reply back.

use super::convert::*;
use super::cutover::strategy::{health, machines, metrics, runtime, traffic, types};
use crate::dispatch::truncate_log;
use crate::sandbox::HostState;
use cutover_core::events::{HostCall, HostReply, LogLevel};
use wasmtime::Result;

type BatchResult = std::result::Result<(), Vec<types::MachineError>>;
type Wit<T> = std::result::Result<T, types::Error>;

/// A reply of a kind the call cannot produce: a host bug, reported as a trap rather than a wrong answer.
fn mismatch(call: &str, reply: &HostReply) -> wasmtime::Error {
    wasmtime::format_err!("internal error: host call {call} got an unexpected reply {reply:?}")
}

fn batch(call: &str, reply: HostReply) -> Result<BatchResult> {
    match reply {
        HostReply::Batch(failed) if failed.is_empty() => Ok(Ok(())),
        HostReply::Batch(failed) => Ok(Err(failed
            .into_iter()
            .map(|(id, e)| types::MachineError { id, error: error_to_wit(e) })
            .collect())),
        other => Err(mismatch(call, &other)),
    }
}

fn done(call: &str, reply: HostReply) -> Result<Wit<()>> {
    match reply {
        HostReply::Done => Ok(Ok(())),
        HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
        other => Err(mismatch(call, &other)),
    }
}

impl types::Host for HostState {}

impl machines::Host for HostState {
    async fn list(&mut self) -> Result<Wit<Vec<types::Machine>>> {
        match self.call(HostCall::List).await? {
            HostReply::Machines(ms) => Ok(Ok(ms.into_iter().map(machine_to_wit).collect())),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("machines.list", &other)),
        }
    }

    async fn get(&mut self, id: String) -> Result<Wit<types::Machine>> {
        match self.call(HostCall::Get { id }).await? {
            HostReply::Machine(m) => Ok(Ok(machine_to_wit(*m))),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("machines.get", &other)),
        }
    }

    async fn clone_from(
        &mut self,
        sources: Vec<String>,
        target: types::Release,
        routable: bool,
    ) -> Result<Vec<Wit<String>>> {
        let call = HostCall::CloneFrom { sources, target: release_from_wit(target), routable };
        match self.call(call).await? {
            HostReply::Cloned(results) => Ok(results.into_iter().map(|r| r.map_err(error_to_wit)).collect()),
            other => Err(mismatch("machines.clone-from", &other)),
        }
    }

    async fn update(&mut self, ids: Vec<String>, target: types::Release) -> Result<BatchResult> {
        let reply = self.call(HostCall::Update { ids, target: release_from_wit(target) }).await?;
        batch("machines.update", reply)
    }

    async fn start(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        batch("machines.start", self.call(HostCall::Start { ids }).await?)
    }

    async fn stop(&mut self, ids: Vec<String>, signal: String, timeout_ms: u64) -> Result<BatchResult> {
        batch("machines.stop", self.call(HostCall::Stop { ids, signal, timeout_ms }).await?)
    }

    async fn destroy(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        batch("machines.destroy", self.call(HostCall::Destroy { ids }).await?)
    }

    async fn wait_state(
        &mut self,
        ids: Vec<String>,
        state: types::MachineState,
        timeout_ms: u64,
    ) -> Result<BatchResult> {
        let call = HostCall::WaitState { ids, state: state_from_wit(state), timeout_ms };
        batch("machines.wait-state", self.call(call).await?)
    }

    async fn set_metadata(&mut self, id: String, key: String, value: String) -> Result<Wit<()>> {
        done("machines.set-metadata", self.call(HostCall::SetMetadata { id, key, value }).await?)
    }

    async fn pipeline(
        &mut self,
        ids: Vec<String>,
        steps: Vec<machines::Step>,
        options: machines::PipelineOptions,
    ) -> Result<std::result::Result<(), machines::PipelineFailure>> {
        let steps = steps.into_iter().map(step_from_wit).collect();
        let call = HostCall::Pipeline { ids, steps, options: pipeline_options_from_wit(options) };
        match self.call(call).await? {
            HostReply::Pipeline(outcome) if outcome.is_ok() => Ok(Ok(())),
            HostReply::Pipeline(outcome) => Ok(Err(pipeline_outcome_to_wit(outcome))),
            other => Err(mismatch("machines.pipeline", &other)),
        }
    }
}

impl health::Host for HostState {
    async fn wait_healthy(&mut self, ids: Vec<String>, timeout_ms: u64) -> Result<BatchResult> {
        batch("health.wait-healthy", self.call(HostCall::WaitHealthy { ids, timeout_ms }).await?)
    }

    async fn checks(&mut self, id: String) -> Result<Wit<Vec<types::Check>>> {
        match self.call(HostCall::Checks { id }).await? {
            HostReply::Checks(cs) => Ok(Ok(cs.into_iter().map(check_to_wit).collect())),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("health.checks", &other)),
        }
    }
}

impl traffic::Host for HostState {
    fn capabilities(&mut self) -> Result<traffic::TrafficCapabilities> {
        match self.call_instant(HostCall::Capabilities)? {
            HostReply::Capabilities(c) => Ok(traffic::TrafficCapabilities {
                cordon: c.cordon,
                connection_counts: c.connection_counts,
                weights: c.weights,
                stats: c.stats,
            }),
            other => Err(mismatch("traffic.capabilities", &other)),
        }
    }

    async fn cordon(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        batch("traffic.cordon", self.call(HostCall::Cordon { ids }).await?)
    }

    async fn uncordon(&mut self, ids: Vec<String>) -> Result<BatchResult> {
        batch("traffic.uncordon", self.call(HostCall::Uncordon { ids }).await?)
    }

    async fn connections(&mut self, ids: Vec<String>) -> Result<Vec<Wit<u32>>> {
        match self.call(HostCall::Connections { ids }).await? {
            HostReply::Counts(counts) => Ok(counts.into_iter().map(|c| c.map_err(error_to_wit)).collect()),
            other => Err(mismatch("traffic.connections", &other)),
        }
    }

    async fn set_weights(&mut self, weights: Vec<traffic::ReleaseWeight>) -> Result<Wit<()>> {
        let weights = weights.into_iter().map(weight_from_wit).collect();
        done("traffic.set-weights", self.call(HostCall::SetWeights { weights }).await?)
    }

    async fn weights(&mut self) -> Result<Wit<Vec<traffic::ReleaseWeight>>> {
        match self.call(HostCall::Weights).await? {
            HostReply::Weights(ws) => Ok(Ok(ws.into_iter().map(weight_to_wit).collect())),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("traffic.weights", &other)),
        }
    }

    async fn stats(&mut self, version: u64, window_ms: u64) -> Result<Wit<traffic::TrafficStats>> {
        match self.call(HostCall::Stats { version, window_ms }).await? {
            HostReply::Stats(s) => Ok(Ok(traffic::TrafficStats {
                requests: s.requests,
                errors: s.errors,
                p50_ms: s.p50_ms,
                p99_ms: s.p99_ms,
            })),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("traffic.stats", &other)),
        }
    }
}

impl runtime::Host for HostState {
    fn log(&mut self, level: runtime::Level, message: String) -> Result<()> {
        let level = match level {
            runtime::Level::Debug => LogLevel::Debug,
            runtime::Level::Info => LogLevel::Info,
            runtime::Level::Warn => LogLevel::Warn,
            runtime::Level::Error => LogLevel::Error,
        };
        self.call_instant(HostCall::Log { level, message: truncate_log(message) })?;
        Ok(())
    }

    fn phase(&mut self, name: String) -> Result<()> {
        self.call_instant(HostCall::Phase { name: truncate_log(name) })?;
        Ok(())
    }

    fn progress(&mut self, done: u32, total: u32) -> Result<()> {
        self.call_instant(HostCall::Progress { done, total })?;
        Ok(())
    }

    fn now(&mut self) -> Result<u64> {
        self.call_now()?.map_err(|other| mismatch("runtime.now", &other))
    }

    async fn sleep(&mut self, ms: u64) -> Result<()> {
        self.call(HostCall::Sleep { ms }).await?;
        Ok(())
    }

    fn param(&mut self, name: String) -> Result<Option<types::ParamValue>> {
        match self.call_instant(HostCall::Param { name })? {
            HostReply::Param(v) => Ok(v.as_ref().map(value_to_wit)),
            other => Err(mismatch("runtime.param", &other)),
        }
    }

    async fn await_promotion(&mut self, gate: String, timeout_ms: u64) -> Result<Wit<()>> {
        done("runtime.await-promotion", self.call(HostCall::AwaitPromotion { gate, timeout_ms }).await?)
    }
}

impl metrics::Host for HostState {
    async fn query(&mut self, promql: String, time_ms: Option<u64>) -> Result<Wit<Vec<metrics::Series>>> {
        series("metrics.query", self.call(HostCall::MetricsQuery { promql, time_ms }).await?)
    }

    async fn query_range(
        &mut self,
        promql: String,
        start_ms: u64,
        end_ms: u64,
        step_ms: u64,
    ) -> Result<Wit<Vec<metrics::Series>>> {
        let call = HostCall::MetricsRange { promql, start_ms, end_ms, step_ms };
        series("metrics.query-range", self.call(call).await?)
    }

    async fn judge(
        &mut self,
        canary: Vec<f64>,
        baseline: Vec<f64>,
        options: metrics::JudgeOptions,
    ) -> Result<Wit<metrics::Judgment>> {
        // NaN and infinities are refused before the call is made: the journal (JSON) could not hold
        // them, and no judgment of them means anything.
        if let Some(v) = canary.iter().chain(&baseline).find(|v| !v.is_finite()) {
            return Ok(Err(types::Error::Invalid(format!(
                "the judge was given {v}; every value must be a finite number"
            ))));
        }
        let options = judge_options_from_wit(options);
        if !(options.confidence.is_finite()
            && options.tolerance.is_finite()
            && options.min_effect.is_finite())
        {
            return Ok(Err(types::Error::Invalid(
                "confidence, tolerance and min-effect must be finite numbers".into(),
            )));
        }
        match self.call(HostCall::Judge { canary, baseline, options }).await? {
            HostReply::Judgment(j) => Ok(Ok(judgment_to_wit(j))),
            HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
            other => Err(mismatch("metrics.judge", &other)),
        }
    }
}

fn series(call: &str, reply: HostReply) -> Result<Wit<Vec<metrics::Series>>> {
    match reply {
        HostReply::Series(s) => Ok(Ok(s.into_iter().map(series_to_wit).collect())),
        HostReply::Failed(e) => Ok(Err(error_to_wit(e))),
        other => Err(mismatch(call, &other)),
    }
}
