//! What `cutover verify` found, and how it reads: a scenario × invariant table, then each violation
//! with the invariant, the moment, the host call and the machines. `--json` prints [`Report`] as is.

use super::invariants::{Invariant, Verdict};
use super::{Fault, ScenarioSpec};
use cutover_core::duration::display;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Every scenario's outcome and verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The strategy's name, as `describe()` gives it.
    pub strategy: String,
    /// `--allow-downtime` was given: `capacity` was not judged.
    pub allow_downtime: bool,
    /// `--allow-standby` was given: stopped machines of the replaced release were standbys.
    pub allow_standby: bool,
    /// Every scenario, in [`scenarios`](crate::scenarios) order.
    pub scenarios: Vec<ScenarioResult>,
}

/// How one scenario went.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario's name, e.g. `crash mid-deploy, 500 machines`.
    pub name: String,
    /// What the scenario injected.
    pub fault: Fault,
    /// The size of the starting fleet.
    pub machines: usize,
    /// How the deploy itself ended.
    pub outcome: RunOutcome,
    /// Simulated time the deploy took.
    pub simulated_ms: u64,
    /// Real time the scenario took, deploy and checks.
    pub wall_ms: u64,
    /// Host calls the strategy made (counted even past the limit that stops a looping one).
    pub host_calls: u64,
    /// Each invariant's verdict, in [`Invariant::ALL`] order.
    pub checks: Vec<(Invariant, Verdict)>,
}

/// How the deploy itself ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "error", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The strategy returned success.
    Succeeded,
    /// The strategy returned an error.
    Failed(String),
    /// The sandbox (or verify's own bounds) stopped it.
    Stopped(String),
}

impl RunOutcome {
    /// The outcome of a run as the runtime returned it.
    pub fn of(result: &Result<Result<(), cutover_core::OpError>, String>) -> Self {
        match result {
            Ok(Ok(())) => Self::Succeeded,
            Ok(Err(e)) => Self::Failed(e.to_string()),
            Err(e) => Self::Stopped(e.clone()),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed(_) => "failed",
            Self::Stopped(_) => "STOPPED",
        }
    }
}

impl ScenarioResult {
    /// A scenario verify itself could not set up (a bug in verify, reported rather than panicking).
    pub(super) fn broken(spec: ScenarioSpec, why: String) -> Self {
        Self {
            name: spec.name(),
            fault: spec.fault,
            machines: spec.machines,
            outcome: RunOutcome::Stopped(why.clone()),
            simulated_ms: 0,
            wall_ms: 0,
            host_calls: 0,
            checks: vec![(
                Invariant::Sandbox,
                Verdict::Fail(super::Violation { message: why, at_ms: None, call: None, machines: vec![] }),
            )],
        }
    }

    /// Whether the run returned a verdict and left the fleet clean ([`Invariant::CleanEnd`]).
    pub fn ended_clean(&self) -> bool {
        !matches!(self.outcome, RunOutcome::Stopped(_))
            && self.checks.iter().any(|(i, v)| *i == Invariant::CleanEnd && !matches!(v, Verdict::Fail(_)))
    }

    /// Whether no invariant failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|(_, v)| matches!(v, Verdict::Fail(_)))
    }
}

impl Report {
    /// Whether every scenario kept every invariant.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(ScenarioResult::passed)
    }

    /// The invariants broken in any scenario, each once.
    pub fn broken(&self) -> Vec<Invariant> {
        let mut v: Vec<Invariant> = self
            .scenarios
            .iter()
            .flat_map(|s| s.checks.iter().filter(|(_, v)| matches!(v, Verdict::Fail(_))).map(|(i, _)| *i))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// How many scenarios ended clean (kept [`Invariant::CleanEnd`] and returned a verdict).
    pub fn clean_endings(&self) -> usize {
        self.scenarios.iter().filter(|s| s.ended_clean()).count()
    }

    /// The short report of a sweep ([`crate::sweep`]): the share of clean endings, by error rate and
    /// in all, then every run that did not end clean with why.
    pub fn sweep_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cutover verify --sweep: {} on a flaky platform, {} runs on the simulator\n",
            self.strategy,
            self.scenarios.len()
        );
        let mut by_fault: Vec<(String, usize, usize)> = Vec::new();
        for s in &self.scenarios {
            let label = s.fault.label();
            if by_fault.last().is_none_or(|(l, _, _)| *l != label) {
                by_fault.push((label, 0, 0));
            }
            if let Some(last) = by_fault.last_mut() {
                last.1 += usize::from(s.ended_clean());
                last.2 += 1;
            }
        }
        for (label, clean, all) in &by_fault {
            let _ = writeln!(out, "  {label:<30} {clean:>4} of {all:>4} clean");
        }
        let unclean: Vec<&ScenarioResult> = self.scenarios.iter().filter(|s| !s.ended_clean()).collect();
        if !unclean.is_empty() {
            let _ = writeln!(out, "\nnot clean:");
            for s in &unclean {
                let why = s
                    .checks
                    .iter()
                    .find_map(|(i, v)| match v {
                        Verdict::Fail(v) if matches!(i, Invariant::CleanEnd | Invariant::Sandbox) => {
                            Some(v.message.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let _ = writeln!(out, "  {}: the deploy {}", s.name, outcome_sentence(&s.outcome));
                let _ = writeln!(out, "    {why}");
            }
        }
        let clean = self.clean_endings();
        let failed = self.scenarios.iter().filter(|s| matches!(s.outcome, RunOutcome::Failed(_))).count();
        let _ = writeln!(out, "\ndeploys reported failed: {failed} of {}", self.scenarios.len());
        let _ = writeln!(
            out,
            "clean endings: {clean} of {} ({:.1}%)",
            self.scenarios.len(),
            100.0 * clean as f64 / self.scenarios.len().max(1) as f64
        );
        out
    }

    /// The human report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cutover verify: {} through {} scenarios on the simulator{}{}\n",
            self.strategy,
            self.scenarios.len(),
            if self.allow_downtime { " (--allow-downtime: capacity not checked)" } else { "" },
            if self.allow_standby {
                " (--allow-standby: stopped machines of the replaced release are standbys)"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "invariants:");
        for (n, inv) in Invariant::ALL.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}  {:<18} {}", n + 1, inv.name(), inv.promise());
        }
        let width = self.scenarios.iter().map(|s| s.name.len()).max().unwrap_or(8).max(8);
        let _ = write!(out, "\n{:<width$}  {:<9} {:>9}  ", "scenario", "outcome", "simulated");
        for n in 1..=Invariant::ALL.len() {
            let _ = write!(out, "{n:>4} ");
        }
        out.push('\n');
        for s in &self.scenarios {
            let _ = write!(
                out,
                "{:<width$}  {:<9} {:>9}  ",
                s.name,
                s.outcome.label(),
                display(Duration::from_secs(s.simulated_ms.div_ceil(1000)))
            );
            for inv in Invariant::ALL {
                let mark = match s.checks.iter().find(|(i, _)| *i == inv).map(|(_, v)| v) {
                    Some(Verdict::Pass) => "ok",
                    Some(Verdict::Fail(_)) => "FAIL",
                    Some(Verdict::NotApplicable { .. }) | None => "-",
                };
                let _ = write!(out, "{mark:>4} ");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "(ok: kept; FAIL: broken; -: not applicable to this run)");

        let failing: Vec<&ScenarioResult> = self.scenarios.iter().filter(|s| !s.passed()).collect();
        if !failing.is_empty() {
            let _ = writeln!(out, "\nviolations:");
            for s in &failing {
                let _ = writeln!(out, "  {}: the deploy {}", s.name, outcome_sentence(&s.outcome));
                for (inv, v) in &s.checks {
                    let Verdict::Fail(v) = v else { continue };
                    let _ = writeln!(out, "    {} broken: {}", inv.name(), v.message);
                    let mut whence = Vec::new();
                    if let Some(at) = v.at_ms {
                        whence.push(format!("at {} (simulated)", display_ms(at)));
                    }
                    if let Some((seq, call)) = &v.call {
                        whence.push(format!("during host call #{seq} ({call})"));
                    }
                    if !v.machines.is_empty() {
                        whence.push(format!("machines: {}", v.machines.join(", ")));
                    }
                    if !whence.is_empty() {
                        let _ = writeln!(out, "      {}", whence.join("; "));
                    }
                }
            }
        }
        let broken = self.broken();
        if broken.is_empty() {
            let _ = writeln!(
                out,
                "\nPASS: {} kept every invariant in all {} scenarios",
                self.strategy,
                self.scenarios.len()
            );
        } else {
            let names: Vec<&str> = broken.iter().map(|i| i.name()).collect();
            let _ = writeln!(
                out,
                "\nFAIL: {} broke {} in {} of {} scenarios",
                self.strategy,
                names.join(", "),
                failing.len(),
                self.scenarios.len()
            );
        }
        out
    }
}

fn outcome_sentence(o: &RunOutcome) -> String {
    match o {
        RunOutcome::Succeeded => "succeeded".into(),
        RunOutcome::Failed(e) => format!("failed: {}", first_line(e)),
        RunOutcome::Stopped(e) => format!("was stopped: {}", first_line(e)),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Milliseconds as `1m 12.3s`-style text, keeping tenths of a second.
fn display_ms(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{} {:.1}s", display(Duration::from_secs(ms / 60_000 * 60)), (ms % 60_000) as f64 / 1000.0)
    }
}
