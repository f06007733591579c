//! The simulator's scenario file: the starting fleet, the latency model and the faults to inject.
//!
//! ```toml
//! seed = 7
//! [fleet]
//! machines = 10
//! regions = ["ams", "iad"]
//! [latency]          # uniform [min, max] in milliseconds
//! boot = [1500, 4000]
//! [faults]
//! api_error_rate = 0.05
//! unhealthy_images = ["registry.example/app:broken"]
//! [[faults.crash]]
//! machine = 3        # index into the starting fleet
//! at = "20s"         # virtual time since the deploy started
//! [[metrics]]        # series answering metrics queries (see `metrics`)
//! match = 'version="2"'
//! values = [0.01, 0.02]
//! ```

use crate::SimError;
use cutover_core::duration::Dur;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// A whole scenario. Every field has a default, so an empty file is a healthy 10-machine fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Seed of every random draw (latencies, faults): the same seed gives the same run.
    pub seed: u64,
    /// The fleet before the deploy: what the world starts with (and what a kept fleet grew from).
    pub fleet: FleetSpec,
    /// How long API calls, boots and stops take.
    pub latency: LatencySpec,
    /// What goes wrong, and when.
    pub faults: FaultSpec,
    /// The client traffic the platform's stats and connection counts report.
    pub traffic: TrafficSpec,
    /// Bound on concurrent operations per batch call (overrides `[cutover] concurrency`).
    pub concurrency: Option<usize>,
    /// The simulated operator runs `cutover promote` for every manual gate this long after the gate
    /// opens. Without it, manual gates time out (virtual time does not wait for a person).
    pub promote_after: Option<Dur>,
    /// How `[deploy] release_command` runs here (only when the app's config has one).
    pub release_command: ReleaseCommandSim,
    /// Metric series answering the strategy's metrics queries (see [`crate::metrics`]).
    pub metrics: Vec<crate::metrics::MetricSeries>,
}

/// `[release_command]`: how the simulated release command behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseCommandSim {
    /// How long it runs, in virtual time (past `release_command_timeout`, it is stopped).
    pub duration: Dur,
    /// Its exit code (0: success; anything else aborts the deploy).
    pub exit_code: i32,
    /// It dies without an exit code (its machine fails) at the end of `duration`.
    pub crash: bool,
    /// The lines it prints, spread evenly over `duration`; `{version}`, `{image}` and `{command}` are
    /// replaced by the release's and the command's.
    pub output: Vec<String>,
}

impl Default for ReleaseCommandSim {
    fn default() -> Self {
        Self {
            duration: Dur(Duration::from_secs(2)),
            exit_code: 0,
            crash: false,
            output: vec!["running `{command}` on v{version} ({image})".into(), "done".into()],
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: 1,
            fleet: FleetSpec::default(),
            latency: LatencySpec::default(),
            faults: FaultSpec::default(),
            traffic: TrafficSpec::default(),
            concurrency: None,
            promote_after: None,
            release_command: ReleaseCommandSim::default(),
            metrics: Vec::new(),
        }
    }
}

/// The fleet before the deploy.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSpec {
    /// Machines of the app being deployed.
    pub machines: usize,
    /// Machines are spread round-robin over regions, then over process groups.
    pub regions: Vec<String>,
    /// Process groups (`[processes]`); each machine's `fly_process_group` metadata names its own.
    pub groups: Vec<String>,
    /// The release the fleet runs. `image` defaults to the config's `[build] image` with `:previous`.
    pub image: Option<String>,
    /// The release version the fleet runs; the deploy's release is the next one.
    pub version: u64,
    /// How many of the machines start out stopped.
    pub stopped: usize,
    /// Machines of another app on the same platform: a strategy must never be able to touch them.
    pub neighbours: usize,
    /// Give every machine a volume (`[mounts]`), named `data_<index>`.
    pub volumes: bool,
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            machines: 10,
            regions: vec!["ams".into(), "iad".into()],
            groups: vec!["app".into()],
            image: None,
            version: 1,
            stopped: 0,
            neighbours: 1,
            volumes: false,
        }
    }
}

/// Uniform latency ranges `[min, max]` in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySpec {
    /// Any Machines API call.
    pub api: [u64; 2],
    /// From start (or update) to `started`.
    pub boot: [u64; 2],
    /// From the stop signal to `stopped`.
    pub stop: [u64; 2],
}

impl Default for LatencySpec {
    fn default() -> Self {
        Self { api: [20, 150], boot: [1_000, 4_000], stop: [200, 1_500] }
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Share of API calls that fail with a transient platform error (0.0–1.0).
    pub api_error_rate: f64,
    /// Share of API calls that hang until `api_timeout`, then fail with `timeout`.
    pub api_timeout_rate: f64,
    /// How long a hanging API call hangs before it fails.
    pub api_timeout: Dur,
    /// Releases on these images boot but fail their health checks.
    pub unhealthy_images: Vec<String>,
    /// Releases on these images exit right after boot (state `failed`).
    pub crashing_images: Vec<String>,
    /// Individual machines that crash at a given time.
    pub crash: Vec<CrashSpec>,
    /// Releases on these images pass their checks but answer this share of requests with a 5xx.
    pub error_images: std::collections::BTreeMap<String, f64>,
    /// Releases on these images take this long to boot (e.g. to outlast `wait_timeout`).
    pub slow_images: std::collections::BTreeMap<String, Dur>,
    /// API calls that always fail with a 503, by the name the simulator gives them in its errors
    /// (`"destroy machine"`, `"stop machine"`, …): a platform that stays down for them past any retry.
    pub down_calls: Vec<String>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            api_error_rate: 0.0,
            api_timeout_rate: 0.0,
            api_timeout: Dur(Duration::from_secs(30)),
            unhealthy_images: vec![],
            crashing_images: vec![],
            crash: vec![],
            error_images: Default::default(),
            slow_images: Default::default(),
            down_calls: vec![],
        }
    }
}

/// Simulated client traffic: what `traffic.stats` and `traffic.connections` report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficSpec {
    /// Requests per second across the app, spread over serving machines by release weight.
    pub rps: f64,
    /// Share of requests a healthy release answers with an error.
    pub error_rate: f64,
    /// p50 and p99 latency of a healthy release, in milliseconds.
    pub latency_ms: [f64; 2],
    /// Long-lived connections (WebSockets, TCP) each serving machine holds.
    pub connections: u32,
    /// How long each of those connections lasts once its machine stops taking new ones, `[min, max]` ms.
    pub connection_lifetime: [u64; 2],
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            rps: 100.0,
            error_rate: 0.001,
            latency_ms: [20.0, 120.0],
            connections: 4,
            connection_lifetime: [2_000, 90_000],
        }
    }
}

/// One machine crash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// Index of the machine in the starting fleet (0-based).
    pub machine: usize,
    /// Virtual time since the deploy started.
    pub at: Dur,
}

impl Scenario {
    /// Read a scenario file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(SimError::io("cannot read scenario file", path))?;
        Self::parse(&text).map_err(|e| SimError::InScenario { path: path.into(), source: Box::new(e) })
    }

    /// Parse and validate scenario text.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| SimError::Scenario(e.to_string()))?;
        scenario.validate().map_err(SimError::Scenario)?;
        Ok(scenario)
    }

    /// The first value out of range, as a message naming its key.
    fn validate(&self) -> Result<(), String> {
        for (i, series) in self.metrics.iter().enumerate() {
            series.check(i + 1)?;
        }
        for (key, rate) in [
            ("faults.api_error_rate", self.faults.api_error_rate),
            ("faults.api_timeout_rate", self.faults.api_timeout_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`{key}` = {rate}: expected a share between 0.0 and 1.0"));
            }
        }
        for (key, [lo, hi]) in [
            ("latency.api", self.latency.api),
            ("latency.boot", self.latency.boot),
            ("latency.stop", self.latency.stop),
        ] {
            if lo > hi {
                return Err(format!("`{key}` = [{lo}, {hi}]: expected [min, max] with min <= max"));
            }
        }
        if self.fleet.regions.is_empty() || self.fleet.groups.is_empty() {
            return Err("`fleet.regions` and `fleet.groups` need at least one entry each".into());
        }
        if self.fleet.stopped > self.fleet.machines {
            return Err(format!(
                "`fleet.stopped` = {} exceeds `fleet.machines` = {}",
                self.fleet.stopped, self.fleet.machines
            ));
        }
        for c in &self.faults.crash {
            if c.machine >= self.fleet.machines {
                return Err(format!(
                    "`faults.crash` names machine {} but the fleet has {} (indices start at 0)",
                    c.machine, self.fleet.machines
                ));
            }
        }
        for (image, rate) in &self.faults.error_images {
            if !(0.0..=1.0).contains(rate) {
                return Err(format!(
                    "`faults.error_images.\"{image}\"` = {rate}: expected a share between 0.0 and 1.0"
                ));
            }
        }
        let [lo, hi] = self.traffic.connection_lifetime;
        if lo > hi {
            return Err(format!(
                "`traffic.connection_lifetime` = [{lo}, {hi}]: expected [min, max] with min <= max"
            ));
        }
        if self.traffic.rps < 0.0 || !(0.0..=1.0).contains(&self.traffic.error_rate) {
            return Err(
                "`traffic.rps` must be >= 0 and `traffic.error_rate` a share between 0.0 and 1.0".into()
            );
        }
        if !(0..=255).contains(&self.release_command.exit_code) {
            return Err(format!(
                "`release_command.exit_code` = {}: expected an exit code from 0 to 255",
                self.release_command.exit_code
            ));
        }
        if self.concurrency == Some(0) {
            return Err("`concurrency` = 0: expected at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_scenario_is_a_healthy_ten_machine_fleet() {
        let s = Scenario::parse("").unwrap();
        assert_eq!(s.fleet.machines, 10);
        assert_eq!(s.faults.api_error_rate, 0.0);
    }

    #[test]
    fn bad_rate_names_the_key() {
        let e = Scenario::parse("[faults]\napi_error_rate = 2.0").unwrap_err();
        assert!(format!("{e:#}").contains("faults.api_error_rate"), "{e:#}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = Scenario::parse("[fleet]\nmachine = 3").unwrap_err();
        assert!(format!("{e:#}").contains("machine"), "{e:#}");
    }

    #[test]
    fn crash_of_missing_machine_is_rejected() {
        let e =
            Scenario::parse("[fleet]\nmachines = 2\n[[faults.crash]]\nmachine = 5\nat = \"1s\"").unwrap_err();
        assert!(format!("{e:#}").contains("machine 5"), "{e:#}");
    }
}
