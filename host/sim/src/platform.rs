//! The simulated platform as a strategy sees it: [`SimPlatform`], a handle on the world scoped to one
//! app, and its [`Platform`] implementation.
//!
//! Every call is one simulated API round trip first ([`SimPlatform::api`]: a seeded latency, and
//! perhaps an injected timeout or error), then a change to the world under its lock, then a capacity
//! sample and a line in the kept fleet's log. Waits poll the machine on the virtual clock, sleeping
//! until the next instant anything about it can change.

use crate::SimError;
use crate::draw::{api_key, machine_id, unit};
use crate::kept::{Keep, KeptFleet};
use crate::persist::SavedWorld;
use crate::scenario::Scenario;
use crate::world::{SimMachine, SimWorld};
use async_trait::async_trait;
use cutover_core::{
    Capabilities, CheckSpec, CheckStatus, ErrorKind, Machine, MachineState, OpError, Platform, Release,
    ReleaseCommand, ReleaseCommandError, ReleaseLog, ReleaseWeight, StopSpec, TrafficStats,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl SimWorld {
    /// A platform handle scoped to one app.
    pub fn platform(self: &Arc<Self>, app: &str) -> SimPlatform {
        SimPlatform { app: app.to_string(), world: self.clone(), keep: None }
    }
}

/// A handle on the simulated platform, scoped to one app.
pub struct SimPlatform {
    app: String,
    world: Arc<SimWorld>,
    /// Where the fleet is kept between runs, when it is (see [`crate::kept`]).
    keep: Option<Keep>,
}

impl SimPlatform {
    /// A platform for `app` on `scenario`'s world, continuing from the fleet kept at `keep` when an
    /// earlier run of the same scenario fleet left one there, else from the scenario's starting fleet
    /// (every machine on `v{fleet.version}` of `registry.fly.io/APP`). A kept fleet that cannot be
    /// read is an error naming the file.
    pub fn open_kept(
        scenario: Scenario,
        app: &str,
        checks: Vec<CheckSpec>,
        keep: KeptFleet,
    ) -> Result<Self, SimError> {
        let image = format!("registry.fly.io/{app}:v{}", scenario.fleet.version);
        let fingerprint = scenario.fingerprint(app, &image);
        let saved = SavedWorld::read(&keep.path)?.filter(|saved| saved.fingerprint == fingerprint);
        let restored = saved.is_some();
        let world = match saved {
            Some(saved) => {
                tracing::info!(
                    "continuing the simulated fleet of {app} ({} machine(s)) from {}",
                    saved.machines_of(app),
                    keep.path.display()
                );
                SimWorld::restore(scenario, saved, app, checks)
            }
            None => SimWorld::new(scenario, app, &image, checks),
        };
        let mut platform = world.platform(app);
        platform.keep = Some(Keep { path: keep.path, fingerprint, restored });
        Ok(platform)
    }

    /// The world this handle belongs to.
    pub fn world(&self) -> &Arc<SimWorld> {
        &self.world
    }

    /// One simulated API round trip, with its seeded latency and injected faults.
    async fn api(&self, id: Option<&str>, what: &'static str) -> Result<(), OpError> {
        let (latency, fault) = {
            let mut st = self.world.lock();
            let (key, n) = match id.and_then(|id| st.machines.get_mut(id)) {
                Some(m) => {
                    let n = m.ops.entry(what.to_string()).or_default();
                    *n += 1;
                    (api_key(&m.id, what), *n)
                }
                None => {
                    let n = st.global_ops.entry(what).or_default();
                    *n += 1;
                    (api_key(&self.app, what), *n)
                }
            };
            let w = &self.world;
            let latency = w.latency(w.scenario.latency.api, &key, 2 * n);
            let roll = unit(w.scenario.seed, &key, 2 * n + 1);
            let faults = &w.scenario.faults;
            let fault = if faults.down_calls.iter().any(|c| c == what) {
                Some(ErrorKind::Platform)
            } else if roll < faults.api_timeout_rate {
                Some(ErrorKind::Timeout)
            } else if roll < faults.api_timeout_rate + faults.api_error_rate {
                Some(ErrorKind::Platform)
            } else {
                None
            };
            (latency, fault)
        };
        tokio::time::sleep(latency).await;
        match fault {
            Some(ErrorKind::Timeout) => {
                let wait = self.world.scenario.faults.api_timeout.0;
                tokio::time::sleep(wait).await;
                Err(OpError::new(
                    ErrorKind::Platform,
                    format!(
                        "{what}: the API did not answer within {}",
                        cutover_core::duration::display(wait)
                    ),
                ))
            }
            Some(_) => {
                Err(OpError::new(ErrorKind::Platform, format!("{what}: 503 Service Unavailable (injected)")))
            }
            None => Ok(()),
        }
    }

    /// Look up a machine of this app, settled to now, and run `f` on it; then sample capacity (`f` may
    /// have changed the machine).
    fn with_machine<R>(
        &self,
        id: &str,
        f: impl FnOnce(&SimWorld, &mut SimMachine, Instant) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let r = self.read_machine(id, f);
        self.world.sample(&mut self.world.lock());
        r
    }

    /// Like [`Self::with_machine`] for a look that changes nothing: no capacity sample. Capacity only
    /// drops at a change (or a crash, which the next change's sample sees), and sampling the whole
    /// fleet on every poll of every wait would make tracking quadratic in the fleet's size.
    fn read_machine<R>(
        &self,
        id: &str,
        f: impl FnOnce(&SimWorld, &mut SimMachine, Instant) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let mut st = self.world.lock();
        let now = Instant::now();
        match st.machines.get_mut(id) {
            Some(m) if m.app == self.app => {
                self.world.settle(m, now);
                f(&self.world, m, now)
            }
            _ => Err(OpError::not_found(format!("machine {id} is not part of app {}", self.app))),
        }
    }

    /// Poll a machine on the virtual clock until `done` decides, waking only when something can change.
    async fn wait_until(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&SimWorld, &SimMachine, Instant) -> Option<Result<(), OpError>>,
    ) -> Result<(), OpError> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.read_machine(id, |w, m, now| {
                if let Some(verdict) = done(w, m, now) {
                    return Ok(Err(verdict));
                }
                if now >= deadline {
                    return Ok(Err(Err(OpError::new(
                        ErrorKind::Timeout,
                        format!(
                            "machine {id} was not {what} within {} (it is {})",
                            cutover_core::duration::display(timeout),
                            m.state.as_str()
                        ),
                    ))));
                }
                let wake = [
                    m.timeline.front().map(|t| t.0),
                    m.crash_at,
                    w.first_check_at(m),
                    w.unhealthy_at(m),
                    Some(deadline),
                ]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .min()
                .unwrap_or(deadline);
                Ok(Ok(wake))
            })?;
            match next {
                Ok(wake) => tokio::time::sleep_until(wake).await,
                Err(verdict) => return verdict,
            }
        }
    }
}

#[async_trait]
impl Platform for SimPlatform {
    fn name(&self) -> &str {
        "sim"
    }

    fn begin_changes(&self) -> Result<(), OpError> {
        self.keep.as_ref().map_or(Ok(()), |k| k.write_through(&self.world))
    }

    fn end_run(&self) -> Result<(), OpError> {
        self.keep.as_ref().map_or(Ok(()), |k| k.save(&self.world))
    }

    fn fleet_note(&self) -> Option<String> {
        self.keep.as_ref().and_then(Keep::note)
    }

    fn app(&self) -> &str {
        &self.app
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { cordon: true, connection_counts: true, weights: true, stats: true }
    }

    async fn list(&self) -> Result<Vec<Machine>, OpError> {
        self.api(None, "list machines").await?;
        Ok(self.world.snapshot(&self.app))
    }

    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        self.api(Some(id), "get machine").await?;
        self.read_machine(id, |w, m, now| Ok(w.view(m, now)))
    }

    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        self.api(Some(source), "create machine").await?;
        let template = self.read_machine(source, |_, m, _| Ok(m.clone()))?;
        let mut st = self.world.lock();
        let now = Instant::now();
        let index = st.next_index;
        st.next_index += 1;
        let mut m = SimMachine {
            id: machine_id(self.world.scenario.seed, &self.app, index),
            name: format!("{}-{}-{index}", self.app, template.group),
            release: target.clone(),
            state: MachineState::Created,
            timeline: VecDeque::new(),
            started_at: None,
            cordoned: !routable,
            cordoned_at: None,
            unweighted_at: crate::traffic::weighted_out(st.weights.get(&self.app), target.version)
                .then_some(now),
            took: false,
            volumes: vec![],
            desired_running: true,
            crash_at: None,
            ops: BTreeMap::new(),
            boots: 0,
            stops: 0,
            ..template
        };
        m.metadata.insert("fly_release_version".into(), target.version.to_string());
        m.timeline = self.world.boot_timeline(&mut m, now).into();
        self.world.settle(&mut m, now);
        let view = self.world.view(&m, now);
        st.machines.insert(m.id.clone(), m);
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(Some(&view.id));
        Ok(view)
    }

    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        self.api(Some(id), "update machine").await?;
        let out = crate::traffic::weighted_out(self.world.lock().weights.get(&self.app), target.version);
        let r = self.with_machine(id, |w, m, now| {
            if m.release.version != target.version {
                m.unweighted_at = out.then_some(now);
            }
            m.release = target.clone();
            m.metadata.insert("fly_release_version".into(), target.version.to_string());
            m.timeline.clear();
            if m.desired_running || m.state == MachineState::Failed {
                let stop = w.next_stop(m);
                m.desired_running = true;
                let mut t = vec![(now, MachineState::Stopping)];
                t.extend(w.boot_timeline(m, now + stop));
                m.timeline = t.into();
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "start machine").await?;
        let r = self.with_machine(id, |w, m, now| {
            m.desired_running = true;
            if matches!(
                m.state,
                MachineState::Stopped
                    | MachineState::Created
                    | MachineState::Failed
                    | MachineState::Suspended
            ) {
                m.timeline = w.boot_timeline(m, now).into();
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError> {
        self.api(Some(id), "stop machine").await?;
        let mut cuts = Vec::new();
        let r = self.with_machine(id, |w, m, now| {
            w.cut(&mut cuts, m, now);
            m.desired_running = false;
            if !matches!(m.state, MachineState::Stopped | MachineState::Created) {
                let stop = w.next_stop(m).min(how.timeout);
                m.timeline =
                    VecDeque::from([(now, MachineState::Stopping), (now + stop, MachineState::Stopped)]);
                w.settle(m, now);
            }
            Ok(())
        });
        self.world.lock().cuts.extend(cuts);
        self.world.changed(Some(id));
        r
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        if self.world.lock().destroyed.get(id).is_some_and(|app| *app == self.app) {
            return Ok(());
        }
        self.api(Some(id), "destroy machine").await?;
        let mut cuts = Vec::new();
        self.read_machine(id, |w, m, now| {
            w.cut(&mut cuts, m, now);
            Ok(())
        })?;
        let mut st = self.world.lock();
        st.cuts.extend(cuts);
        self.world.note_removal(&mut st, id, Instant::now());
        st.machines.remove(id);
        st.destroyed.insert(id.to_string(), self.app.clone());
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(Some(id));
        Ok(())
    }

    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError> {
        if state == MachineState::Destroyed && self.world.lock().destroyed.contains_key(id) {
            return Ok(());
        }
        self.api(Some(id), "wait for machine").await?;
        self.wait_until(id, timeout, state.as_str(), |_, m, _| {
            if m.state == state {
                Some(Ok(()))
            } else if state == MachineState::Started && m.state == MachineState::Failed {
                Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} failed: its process exited", m.id),
                )))
            } else {
                None
            }
        })
        .await
    }

    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        self.api(Some(id), "set metadata").await?;
        let r = self.with_machine(id, |_, m, _| {
            m.metadata.insert(key.to_string(), value.to_string());
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError> {
        self.api(Some(id), "get machine checks").await?;
        self.wait_until(id, timeout, "passing its checks", |w, m, now| {
            if m.state == MachineState::Failed {
                return Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} failed: its process exited", m.id),
                )));
            }
            if m.state != MachineState::Started {
                return None;
            }
            let checks = w.checks_of(m, now);
            if checks.iter().all(|c| c.status == CheckStatus::Passing) {
                return Some(Ok(()));
            }
            if w.unhealthy_at(m).is_some_and(|t| now >= t) {
                let failing: Vec<String> = checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Critical)
                    .map(|c| format!("check '{}' is critical: {}", c.name, c.output))
                    .collect();
                return Some(Err(OpError::new(
                    ErrorKind::Unhealthy,
                    format!("machine {} on {}: {}", m.id, m.release.image, failing.join("; ")),
                )));
            }
            None
        })
        .await
    }

    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "cordon machine").await?;
        let r = self.with_machine(id, |_, m, now| {
            if !m.cordoned {
                m.cordoned_at = Some(now);
            }
            m.cordoned = true;
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.api(Some(id), "uncordon machine").await?;
        let r = self.with_machine(id, |_, m, _| {
            m.cordoned = false;
            m.cordoned_at = None;
            m.note_taking();
            Ok(())
        });
        self.world.changed(Some(id));
        r
    }

    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        self.api(Some(id), "count connections").await?;
        self.read_machine(id, |w, m, now| Ok(w.connections_of(m, now)))
    }

    /// One API call for every machine, as a proxy's or a metrics system's table answers it.
    fn counts_together(&self) -> bool {
        true
    }

    async fn connections_of(&self, ids: &[String]) -> Result<Vec<Result<u32, OpError>>, OpError> {
        self.api(None, "count connections").await?;
        Ok(ids.iter().map(|id| self.read_machine(id, |w, m, now| Ok(w.connections_of(m, now)))).collect())
    }

    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        self.api(None, "set traffic weights").await?;
        let mut st = self.world.lock();
        if weights.is_empty() {
            st.weights.remove(&self.app);
        } else {
            st.weights.insert(self.app.clone(), weights.to_vec());
        }
        let now = Instant::now();
        let weights = st.weights.get(&self.app).cloned();
        for m in st.machines.values_mut().filter(|m| m.app == self.app) {
            self.world.settle(m, now);
            let out = crate::traffic::weighted_out(weights.as_ref(), m.release.version);
            m.unweighted_at = if out { m.unweighted_at.or(Some(now)) } else { None };
            m.note_taking();
        }
        self.world.sample(&mut st);
        drop(st);
        self.world.changed(None);
        Ok(())
    }

    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        self.api(None, "get traffic weights").await?;
        Ok(self.world.lock().weights.get(&self.app).cloned().unwrap_or_default())
    }

    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        self.api(None, "get traffic stats").await?;
        let w = &self.world;
        let mut st = w.lock();
        let now = Instant::now();
        let share = w
            .shares(&mut st, &self.app, now)
            .into_iter()
            .find(|(v, _)| *v == version)
            .map_or(0.0, |(_, p)| p);
        let image = st
            .machines
            .values()
            .find(|m| m.app == self.app && m.release.version == version)
            .map(|m| m.release.image.clone());
        let traffic = &w.scenario.traffic;
        let bad = image.as_ref().and_then(|i| w.scenario.faults.error_images.get(i)).copied();
        let requests = (traffic.rps * window.as_secs_f64() * share / 100.0).round() as u64;
        let errors = (requests as f64 * bad.unwrap_or(traffic.error_rate)).round() as u64;
        let slow = if bad.is_some() { 1.5 } else { 1.0 };
        Ok(TrafficStats {
            requests,
            errors,
            p50_ms: traffic.latency_ms[0] * slow,
            p99_ms: traffic.latency_ms[1] * slow,
        })
    }

    /// The scenario's `[release_command]`: its lines spread over its duration on the virtual clock,
    /// then its exit code; stopped at the command's timeout. No machine of the app changes.
    async fn run_release_command(
        &self,
        cmd: &ReleaseCommand,
        log: &dyn ReleaseLog,
    ) -> Result<(), ReleaseCommandError> {
        let spec = &self.world.scenario.release_command;
        let lines: Vec<String> = spec
            .output
            .iter()
            .map(|l| {
                l.replace("{version}", &cmd.release.version.to_string())
                    .replace("{image}", &cmd.release.image)
                    .replace("{command}", &cmd.command)
            })
            .collect();
        log.note(format!("simulated release command `{}` on v{}", cmd.command, cmd.release.version));
        // Durations from files may be absurd ("99999999999d"): a century is as good as forever here.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let step = spec.duration.0.min(century) / (lines.len().min(u32::MAX as usize - 1) as u32 + 1);
        let deadline = Instant::now() + cmd.timeout.min(century);
        for line in &lines {
            if Instant::now() + step > deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(ReleaseCommandError::TimedOut(cmd.timeout));
            }
            tokio::time::sleep(step).await;
            log.line(line);
        }
        let end = Instant::now() + step;
        if end > deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(ReleaseCommandError::TimedOut(cmd.timeout));
        }
        tokio::time::sleep_until(end).await;
        match (spec.crash, spec.exit_code) {
            (true, _) => Err(ReleaseCommandError::Crashed("its simulated machine failed".into())),
            (false, 0) => Ok(()),
            (false, code) => Err(ReleaseCommandError::Exited(code)),
        }
    }

    async fn await_promotion(&self, gate: &str, timeout: Duration) -> Result<(), OpError> {
        match self.world.scenario.promote_after {
            Some(after) if after.0 <= timeout => {
                tokio::time::sleep(after.0).await;
                Ok(())
            }
            Some(after) => {
                tokio::time::sleep(timeout).await;
                Err(OpError::new(
                    ErrorKind::Timeout,
                    format!(
                        "manual gate `{gate}` was not promoted within {} (the scenario's operator promotes \
                         after {})",
                        cutover_core::duration::display(timeout),
                        cutover_core::duration::display(after.0)
                    ),
                ))
            }
            // No simulated operator: a real one answers through `cutover promote` (the journal).
            None => Err(OpError::new(
                ErrorKind::Unsupported,
                format!(
                    "manual gate `{gate}`: nobody can promote it (under the simulator, set `promote_after` \
                     in the scenario to play the operator, or run the deploy with a journal and use \
                     `cutover promote`)"
                ),
            )),
        }
    }
}
