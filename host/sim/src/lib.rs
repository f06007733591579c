//! The simulator: an in-process fleet on a virtual clock.
//!
//! Time is tokio's clock. The CLI runs the simulator on a current-thread runtime with time paused, so
//! tokio jumps straight to the next timer whenever every task is waiting: a deploy that would take an
//! hour of boots and health checks runs in milliseconds, and the same seed gives the same run.
//!
//! Each machine keeps a *timeline* of future state changes (stopping → starting → started) that is
//! applied lazily whenever the machine is looked at, so 10,000 machines cost no timers of their own.
//! Every random draw (latency, fault) is a pure function of the seed, the machine (or the app, for
//! calls on no machine), the kind of operation and how many of that kind the machine has seen: the
//! second `update` of a machine takes the same time whatever else a strategy did to it, and
//! concurrency does not change the outcome. That is also what lets a lower bound price the operations
//! a strategy's semantics require at the times this run drew for them ([`model`]).
//!
//! Modules, from the bottom up:
//!
//! - [`scenario`]: the scenario file (fleet, latencies, faults, traffic); [`SimError`]: what is wrong
//!   with a scenario or a kept fleet;
//! - `draw`: the seeded draws every latency, fault and machine id comes from;
//! - `availability`: the records a verifier reads ([`Availability`], [`Removal`], [`Cut`]);
//! - `world`: the world's state ([`SimWorld`]), each machine's timeline and checks;
//! - `traffic`: how requests split between releases, and each machine's long-lived connections;
//! - `tracking`: recording availability and cut connections as the world changes;
//! - `persist`: a world saved between runs ([`SavedWorld`]), written through change by change;
//! - [`metrics`]: the scenario's `[[metrics]]` series, answering a strategy's metrics queries;
//! - [`kept`]: where one app's fleet is kept between runs ([`KeptFleet`]);
//! - `platform`: [`SimPlatform`], the handle a strategy drives, and its `Platform` implementation;
//! - [`model`]: the latency model read back for lower bounds.

mod availability;
mod draw;
mod error;
pub mod kept;
pub mod metrics;
pub mod model;
mod persist;
mod platform;
pub mod scenario;
mod tracking;
mod traffic;
mod world;

#[cfg(test)]
mod tests;

pub use availability::{Availability, Cut, Removal};
pub use error::SimError;
pub use kept::KeptFleet;
pub use metrics::ScenarioMetrics;
pub use persist::SavedWorld;
pub use platform::SimPlatform;
pub use scenario::{ReleaseCommandSim, Scenario};
pub use world::SimWorld;
