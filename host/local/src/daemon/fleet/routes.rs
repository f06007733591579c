//! Which machines get traffic: the fleet's side of the proxy.
//!
//! The fleet does not know the proxy: it hands each app's routable machines to a [`RouteSink`] on
//! every change, synchronously, so the proxy has them before the change is acknowledged.

use super::{State, machine_app};
use cutover_machines_api::RELEASE_VERSION_KEY;

/// A routable machine, for the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The machine, under which the proxy counts its connections.
    pub machine_id: String,
    /// The release it runs (its `fly_release_version`; 0 when it has none), for the weights.
    pub version: u64,
    /// Its process's loopback port.
    pub port: u16,
}

/// Receives an app's routable machines whenever they change, before the change is acknowledged.
pub trait RouteSink: Send + Sync {
    /// `routes` is every routable machine of `app` (started, uncordoned, passing): it replaces the last.
    fn set_routes(&self, app: &str, routes: Vec<Route>);
}

/// Started, uncordoned and passing every check.
pub(super) fn routes_of(st: &State, app: &str) -> Vec<Route> {
    st.machines
        .values()
        .filter(|m| machine_app(m) == app)
        .filter(|m| m.pid.is_some() && m.api.state == "started" && !m.api.cordoned)
        .filter(|m| m.api.checks.iter().all(|c| c.status == "passing"))
        .map(|m| Route {
            machine_id: m.api.id.clone(),
            version: m.api.config.metadata.get(RELEASE_VERSION_KEY).and_then(|v| v.parse().ok()).unwrap_or(0),
            port: m.port,
        })
        .collect()
}
