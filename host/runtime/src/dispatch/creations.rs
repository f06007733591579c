//! The blast radius: how many machines one deploy may create.
//!
//! Every other bound limits what a strategy costs the host; this one limits what it costs the owner of
//! the fleet. Without it a strategy that clones every machine in a loop turns ten billed machines into
//! hundreds. Creations are counted here, in the one dispatch point, so the simulator, the local
//! platform and Fly all hold a strategy to the same bound.
//!
//! A creation counts once the platform reports the machine made. A clone the platform refused made
//! nothing (the simulator fails before it creates; Fly answers a create with the machine or with an
//! error and no machine), so a strategy that retries transient failures is not charged twice for one
//! machine. Before a call is sent, its first sources (in the order the strategy gave them) are held
//! against what is left; the rest are `denied` without reaching the platform, and a held creation that
//! failed is given back. Under `cutover resume` the journaled replies are counted the same way, so a
//! resumed deploy has exactly what the interrupted one had left, neither more nor less.

use cutover_core::events::{HostCall, HostReply};
use cutover_core::{ErrorKind, OpError};
use std::collections::HashSet;
use std::sync::Mutex;

/// The words every refusal at the bound starts with, so a report (`cutover verify`) can tell it from
/// the other refusals.
pub const REFUSAL: &str = "blast radius:";

/// Machines one run may still create.
#[derive(Debug)]
pub struct Creations {
    /// The bound (see [`cutover_core::Limits::creation_bound`]).
    bound: u64,
    /// Creations made or held so far.
    used: Mutex<u64>,
}

impl Creations {
    /// A run that may create `bound` machines.
    pub fn new(bound: u64) -> Self {
        Self { bound, used: Mutex::new(0) }
    }

    /// The bound.
    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// Creations counted so far.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hold creations for as many of `sources` (distinct, in order) as the bound has room for; the
    /// returned set is the sources that may go to the platform.
    pub fn hold(&self, sources: &[String]) -> HashSet<String> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = HashSet::new();
        for source in sources {
            if *used >= self.bound {
                break;
            }
            if held.insert(source.clone()) {
                *used += 1;
            }
        }
        held
    }

    /// Give back the creations held for calls that made no machine (`failed` of them).
    pub fn give_back(&self, failed: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(failed);
    }

    /// Count the machines a journaled reply shows made (a resumed run, or clones adopted from the
    /// platform after a crash).
    pub fn count(&self, call: &HostCall, reply: &HostReply) {
        if let (HostCall::CloneFrom { .. }, HostReply::Cloned(results)) = (call, reply) {
            let made = results.iter().filter(|r| r.is_ok()).count() as u64;
            *self.used.lock().unwrap_or_else(|e| e.into_inner()) += made;
        }
    }

    /// Count `n` machines made without a held creation (clones adopted after a crash: the run that
    /// died held them).
    pub fn adopt(&self, n: u64) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) += n;
    }

    /// Whether nothing is left to create.
    pub fn exhausted(&self) -> bool {
        self.used() >= self.bound
    }

    /// The refusal of a creation past the bound.
    pub fn refusal(&self) -> OpError {
        OpError::new(
            ErrorKind::Denied,
            format!(
                "{REFUSAL} the machine was not cloned: this deploy may create at most {} machine(s) and \
                 has used them all (`[cutover.limits] new_machines`; by default as many as the app had \
                 when the deploy started, plus one per process group)",
                self.bound
            ),
        )
    }
}

/// Whether `error` is a refusal at the blast radius.
pub fn is_refusal(error: &OpError) -> bool {
    error.kind == ErrorKind::Denied && error.message.starts_with(REFUSAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::Release;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn holds_the_first_sources_up_to_the_bound() {
        let c = Creations::new(3);
        let held = c.hold(&ids(&["a", "b"]));
        assert_eq!(held.len(), 2);
        let held = c.hold(&ids(&["c", "d", "e"]));
        assert_eq!(held, HashSet::from(["c".to_string()]));
        assert_eq!(c.used(), 3);
        assert!(c.hold(&ids(&["f"])).is_empty());
        assert!(c.exhausted() && is_refusal(&c.refusal()));
    }

    #[test]
    fn failures_are_given_back_and_replies_counted() {
        let c = Creations::new(2);
        c.hold(&ids(&["a", "b"]));
        c.give_back(1);
        assert_eq!(c.used(), 1);
        let call = HostCall::CloneFrom {
            sources: ids(&["a", "b"]),
            target: Release { version: 2, image: "x".into() },
            routable: false,
        };
        let reply = HostReply::Cloned(vec![Ok("m9".into()), Err(OpError::new(ErrorKind::Platform, "x"))]);
        c.count(&call, &reply);
        assert_eq!(c.used(), 2);
        assert!(c.hold(&ids(&["c"])).is_empty());
    }

    #[test]
    fn a_source_named_twice_holds_once() {
        let c = Creations::new(5);
        assert_eq!(c.hold(&ids(&["a", "a"])).len(), 1);
        assert_eq!(c.used(), 1);
    }
}
