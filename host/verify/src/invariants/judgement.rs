//! What judging an invariant says: it held, it was broken (and where), or it could not be judged.

use serde::Serialize;

/// A broken promise: what, when, and which machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// What was broken, in a sentence that names the numbers (counts, versions, weights) involved.
    pub message: String,
    /// Virtual ms since the deploy started, when the breach has a moment.
    pub at_ms: Option<u64>,
    /// The host call that broke it (its `seq` in the deploy's event log and what it was), if one did.
    pub call: Option<(u64, String)>,
    /// The machines involved (at most a handful are named).
    pub machines: Vec<String>,
}

impl Violation {
    /// A violation with no moment, call or machines yet; the builders below add what is known.
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), at_ms: None, call: None, machines: vec![] }
    }
    pub(super) fn at(mut self, at_ms: u64) -> Self {
        self.at_ms = Some(at_ms);
        self
    }
    pub(super) fn machines<'a>(mut self, ids: impl IntoIterator<Item = &'a str>) -> Self {
        self.machines = ids.into_iter().take(5).map(str::to_string).collect();
        self
    }
    pub(super) fn call(mut self, call: Option<(u64, String)>) -> Self {
        self.call = call;
        self
    }
}

/// How one invariant fared in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The promise held.
    Pass,
    /// The promise was broken.
    Fail(Violation),
    /// It cannot be judged in this run; the reason says why.
    NotApplicable {
        /// Why, e.g. the strategy has no `drain_timeout` parameter.
        reason: String,
    },
}

/// An invariant this run cannot judge, and why.
pub(super) fn na(reason: impl Into<String>) -> Verdict {
    Verdict::NotApplicable { reason: reason.into() }
}

/// A broken invariant.
pub(super) fn fail(v: Violation) -> Verdict {
    Verdict::Fail(v)
}
