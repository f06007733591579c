//! Conversions between the latest contract's WIT types (0.2, whose `types` 0.1 shares) and the host's
//! own types.

use super::cutover::strategy::types as wit;
use super::cutover::strategy::{machines, metrics};
use cutover_core::contract::{DeployPlan, MaxUnavailable, ParamKind, ParamSpec, ParamValue, StrategyInfo};
use cutover_core::judge::{Direction, JudgeOptions, Outcome, Verdict};
use cutover_core::metrics::Series;
use cutover_core::pipeline::{PipelineOptions, PipelineOutcome, Step};
use cutover_core::{self, Check, CheckStatus, ErrorKind, Machine, MachineState, OpError, Release};

/// The plan `deploy` is given, as the contract spells it (0.1 and 0.2 alike).
pub fn plan_to_wit(plan: &DeployPlan) -> wit::DeployPlan {
    wit::DeployPlan {
        app: plan.app.clone(),
        target: release_to_wit(&plan.target),
        previous: plan.previous.as_ref().map(release_to_wit),
        process_groups: plan.process_groups.clone(),
        max_unavailable: match plan.max_unavailable {
            MaxUnavailable::Count(n) => wit::MaxUnavailable::Count(n),
            MaxUnavailable::Fraction(f) => wit::MaxUnavailable::Fraction(f),
        },
        wait_timeout_ms: plan.wait_timeout_ms,
        kill_signal: plan.kill_signal.clone(),
        kill_timeout_ms: plan.kill_timeout_ms,
        params: plan.params.iter().map(|(k, v)| (k.clone(), value_to_wit(v))).collect(),
    }
}

/// What a strategy's `describe` returned, in the host's terms (checked by the runtime afterwards).
pub fn info_from_wit(info: wit::StrategyInfo) -> StrategyInfo {
    StrategyInfo {
        name: info.name,
        summary: info.summary,
        params: info
            .params
            .into_iter()
            .map(|p| ParamSpec {
                name: p.name,
                kind: kind_from_wit(p.kind),
                default: p.default.map(value_from_wit),
                summary: p.summary,
            })
            .collect(),
    }
}

fn kind_from_wit(k: wit::ParamKind) -> ParamKind {
    match k {
        wit::ParamKind::Boolean => ParamKind::Boolean,
        wit::ParamKind::Integer => ParamKind::Integer,
        wit::ParamKind::Float => ParamKind::Float,
        wit::ParamKind::Text => ParamKind::Text,
        wit::ParamKind::Duration => ParamKind::Duration,
        wit::ParamKind::Integers => ParamKind::Integers,
        wit::ParamKind::CountOrFraction => ParamKind::CountOrFraction,
    }
}

pub fn value_to_wit(v: &ParamValue) -> wit::ParamValue {
    match v {
        ParamValue::Boolean(b) => wit::ParamValue::Boolean(*b),
        ParamValue::Integer(i) => wit::ParamValue::Integer(*i),
        ParamValue::Float(f) => wit::ParamValue::Float(*f),
        ParamValue::Text(s) => wit::ParamValue::Text(s.clone()),
        ParamValue::DurationMs(ms) => wit::ParamValue::DurationMs(*ms),
        ParamValue::Integers(v) => wit::ParamValue::Integers(v.clone()),
    }
}

fn value_from_wit(v: wit::ParamValue) -> ParamValue {
    match v {
        wit::ParamValue::Boolean(b) => ParamValue::Boolean(b),
        wit::ParamValue::Integer(i) => ParamValue::Integer(i),
        wit::ParamValue::Float(f) => ParamValue::Float(f),
        wit::ParamValue::Text(s) => ParamValue::Text(s),
        wit::ParamValue::DurationMs(ms) => ParamValue::DurationMs(ms),
        wit::ParamValue::Integers(v) => ParamValue::Integers(v),
    }
}

pub fn release_to_wit(r: &Release) -> wit::Release {
    wit::Release { version: r.version, image: r.image.clone() }
}

pub fn release_from_wit(r: wit::Release) -> Release {
    Release { version: r.version, image: r.image }
}

pub fn state_to_wit(s: MachineState) -> wit::MachineState {
    match s {
        MachineState::Created => wit::MachineState::Created,
        MachineState::Starting => wit::MachineState::Starting,
        MachineState::Started => wit::MachineState::Started,
        MachineState::Stopping => wit::MachineState::Stopping,
        MachineState::Stopped => wit::MachineState::Stopped,
        MachineState::Suspended => wit::MachineState::Suspended,
        MachineState::Failed => wit::MachineState::Failed,
        MachineState::Replacing => wit::MachineState::Replacing,
        MachineState::Destroying => wit::MachineState::Destroying,
        MachineState::Destroyed => wit::MachineState::Destroyed,
    }
}

pub fn state_from_wit(s: wit::MachineState) -> MachineState {
    match s {
        wit::MachineState::Created => MachineState::Created,
        wit::MachineState::Starting => MachineState::Starting,
        wit::MachineState::Started => MachineState::Started,
        wit::MachineState::Stopping => MachineState::Stopping,
        wit::MachineState::Stopped => MachineState::Stopped,
        wit::MachineState::Suspended => MachineState::Suspended,
        wit::MachineState::Failed => MachineState::Failed,
        wit::MachineState::Replacing => MachineState::Replacing,
        wit::MachineState::Destroying => MachineState::Destroying,
        wit::MachineState::Destroyed => MachineState::Destroyed,
    }
}

pub fn check_to_wit(c: Check) -> wit::Check {
    wit::Check {
        name: c.name,
        status: match c.status {
            CheckStatus::Passing => wit::CheckStatus::Passing,
            CheckStatus::Warning => wit::CheckStatus::Warning,
            CheckStatus::Critical => wit::CheckStatus::Critical,
        },
        output: c.output,
    }
}

pub fn machine_to_wit(m: Machine) -> wit::Machine {
    wit::Machine {
        id: m.id,
        name: m.name,
        region: m.region,
        process_group: m.process_group,
        state: state_to_wit(m.state),
        release: release_to_wit(&m.release),
        cordoned: m.cordoned,
        checks: m.checks.into_iter().map(check_to_wit).collect(),
        volumes: m.volumes,
        metadata: m.metadata,
    }
}

pub fn error_to_wit(e: OpError) -> wit::Error {
    let m = e.message;
    match e.kind {
        ErrorKind::NotFound => wit::Error::NotFound(m),
        ErrorKind::Conflict => wit::Error::Conflict(m),
        ErrorKind::Timeout => wit::Error::Timeout(m),
        ErrorKind::Unhealthy => wit::Error::Unhealthy(m),
        ErrorKind::Platform => wit::Error::Platform(m),
        ErrorKind::Denied => wit::Error::Denied(m),
        ErrorKind::Invalid => wit::Error::Invalid(m),
        ErrorKind::Unsupported => wit::Error::Unsupported(m),
    }
}

/// A strategy's own error message is cut like a log line: it is printed and journaled, and a strategy
/// must not be able to make either unbounded.
pub fn error_from_wit(e: wit::Error) -> OpError {
    let (kind, m) = match e {
        wit::Error::NotFound(m) => (ErrorKind::NotFound, m),
        wit::Error::Conflict(m) => (ErrorKind::Conflict, m),
        wit::Error::Timeout(m) => (ErrorKind::Timeout, m),
        wit::Error::Unhealthy(m) => (ErrorKind::Unhealthy, m),
        wit::Error::Platform(m) => (ErrorKind::Platform, m),
        wit::Error::Denied(m) => (ErrorKind::Denied, m),
        wit::Error::Invalid(m) => (ErrorKind::Invalid, m),
        wit::Error::Unsupported(m) => (ErrorKind::Unsupported, m),
    };
    OpError::new(kind, crate::dispatch::truncate_log(m))
}

pub fn weight_from_wit(w: super::cutover::strategy::traffic::ReleaseWeight) -> cutover_core::ReleaseWeight {
    cutover_core::ReleaseWeight { version: w.version, percent: w.percent }
}

pub fn weight_to_wit(w: cutover_core::ReleaseWeight) -> super::cutover::strategy::traffic::ReleaseWeight {
    super::cutover::strategy::traffic::ReleaseWeight { version: w.version, percent: w.percent }
}

pub fn series_to_wit(s: Series) -> metrics::Series {
    metrics::Series {
        labels: s.labels,
        points: s.points.into_iter().map(|p| metrics::Point { time_ms: p.time_ms, value: p.value }).collect(),
    }
}

pub fn judge_options_from_wit(o: metrics::JudgeOptions) -> JudgeOptions {
    JudgeOptions {
        confidence: o.confidence,
        direction: match o.harm {
            metrics::Harm::Increase => Direction::Increase,
            metrics::Harm::Decrease => Direction::Decrease,
            metrics::Harm::Either => Direction::Either,
        },
        tolerance: o.tolerance,
        min_effect: o.min_effect,
    }
}

pub fn judgment_to_wit(j: Verdict) -> metrics::Judgment {
    metrics::Judgment {
        verdict: match j.outcome {
            Outcome::Pass => metrics::Verdict::Pass,
            Outcome::Marginal => metrics::Verdict::Marginal,
            Outcome::Fail => metrics::Verdict::Fail,
        },
        p_value: j.p_value,
        effect_size: j.effect_size,
        ci_low: j.ci_low,
        ci_high: j.ci_high,
        reason: j.reason,
    }
}

/// A pipeline's step, in the host's terms.
pub fn step_from_wit(s: machines::Step) -> Step {
    match s {
        machines::Step::Cordon => Step::Cordon,
        machines::Step::Uncordon => Step::Uncordon,
        machines::Step::Update(target) => Step::Update { target: release_from_wit(target) },
        machines::Step::Start => Step::Start,
        machines::Step::Stop(s) => Step::Stop { signal: s.signal, timeout_ms: s.timeout_ms },
        machines::Step::Destroy => Step::Destroy,
        machines::Step::WaitState(w) => {
            Step::WaitState { state: state_from_wit(w.state), timeout_ms: w.timeout_ms }
        }
        machines::Step::WaitHealthy(timeout_ms) => Step::WaitHealthy { timeout_ms },
        machines::Step::WaitDrained(d) => Step::WaitDrained { poll_ms: d.poll_ms, timeout_ms: d.timeout_ms },
    }
}

/// A pipeline's options, in the host's terms.
pub fn pipeline_options_from_wit(o: machines::PipelineOptions) -> PipelineOptions {
    PipelineOptions { window: o.window, stop_on_failure: o.stop_on_failure }
}

/// What became of a pipeline's machines, as the contract spells it.
pub fn pipeline_outcome_to_wit(o: PipelineOutcome) -> machines::PipelineFailure {
    machines::PipelineFailure {
        failed: o
            .failed
            .into_iter()
            .map(|f| machines::StepError { id: f.id, step: f.step, error: error_to_wit(f.error) })
            .collect(),
        not_started: o.not_started,
    }
}
