//! A journal that fails closed: when the journal's filesystem fills up mid-deploy, the deploy stops at
//! the next change with an error naming the journal, and the platform never receives a change the
//! journal lacks.

use crate::support::{self, APP, V1, V2};

use cutover::core::contract::{DeployPlan, MaxUnavailable};
use cutover::core::events::{Event, EventKind, EventSink, HostCall, SinkError, Tee};
use cutover::core::{
    Capabilities, Check, Lease, Machine, MachineState, OpError, Platform, Release, ReleaseWeight, StopSpec,
    TrafficStats,
};
use cutover::journal::{Journal, JournalSink, NewRelease, ReleaseKind};
use cutover::runtime::{HostClock, Limits, Recorder, RunContext, RuntimeError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A platform that notes every change it receives, as (operation, machine), then passes it on.
struct Witness {
    inner: Arc<dyn Platform>,
    changes: Mutex<Vec<(&'static str, String)>>,
}

impl Witness {
    fn saw(&self, op: &'static str, id: &str) {
        self.changes.lock().unwrap().push((op, id.to_string()));
    }
}

#[async_trait::async_trait]
impl Platform for Witness {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn app(&self) -> &str {
        self.inner.app()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn list(&self) -> Result<Vec<Machine>, OpError> {
        self.inner.list().await
    }
    async fn get(&self, id: &str) -> Result<Machine, OpError> {
        self.inner.get(id).await
    }
    async fn clone_from(&self, source: &str, target: &Release, routable: bool) -> Result<Machine, OpError> {
        self.saw("machines.clone-from", source);
        Platform::clone_from(&*self.inner, source, target, routable).await
    }
    async fn update(&self, id: &str, target: &Release) -> Result<(), OpError> {
        self.saw("machines.update", id);
        self.inner.update(id, target).await
    }
    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.saw("machines.start", id);
        self.inner.start(id).await
    }
    async fn stop(&self, id: &str, how: &StopSpec) -> Result<(), OpError> {
        self.saw("machines.stop", id);
        self.inner.stop(id, how).await
    }
    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.saw("machines.destroy", id);
        self.inner.destroy(id).await
    }
    async fn wait_state(&self, id: &str, state: MachineState, timeout: Duration) -> Result<(), OpError> {
        self.inner.wait_state(id, state, timeout).await
    }
    async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), OpError> {
        self.saw("machines.set-metadata", id);
        self.inner.set_metadata(id, key, value).await
    }
    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), OpError> {
        self.inner.wait_healthy(id, timeout).await
    }
    async fn checks(&self, id: &str) -> Result<Vec<Check>, OpError> {
        self.inner.checks(id).await
    }
    async fn cordon(&self, id: &str) -> Result<(), OpError> {
        self.saw("traffic.cordon", id);
        self.inner.cordon(id).await
    }
    async fn uncordon(&self, id: &str) -> Result<(), OpError> {
        self.saw("traffic.uncordon", id);
        self.inner.uncordon(id).await
    }
    async fn connections(&self, id: &str) -> Result<u32, OpError> {
        self.inner.connections(id).await
    }
    async fn set_weights(&self, weights: &[ReleaseWeight]) -> Result<(), OpError> {
        self.saw("traffic.set-weights", "");
        self.inner.set_weights(weights).await
    }
    async fn weights(&self) -> Result<Vec<ReleaseWeight>, OpError> {
        self.inner.weights().await
    }
    async fn stats(&self, version: u64, window: Duration) -> Result<TrafficStats, OpError> {
        self.inner.stats(version, window).await
    }
    fn has_leases(&self) -> bool {
        self.inner.has_leases()
    }
    async fn acquire_lease(&self, id: &str, ttl: Duration) -> Result<Lease, OpError> {
        self.inner.acquire_lease(id, ttl).await
    }
    async fn refresh_lease(&self, id: &str) -> Result<Lease, OpError> {
        self.inner.refresh_lease(id).await
    }
    async fn release_lease(&self, id: &str) -> Result<(), OpError> {
        self.inner.release_lease(id).await
    }
    fn held_leases(&self) -> Vec<String> {
        self.inner.held_leases()
    }
}

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    /// Mount `size` of tmpfs on a fresh directory; why not, when it cannot be.
    fn mount(size: &str) -> Result<Self, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, so no small filesystem can be mounted".into());
        }
        let dir = std::env::temp_dir().join(format!("cutover-smallfs-{}-{size}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Self(dir))
    }

    /// Fill it to the last byte.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the filesystem just before event `at` goes to the journal behind it.
struct FillAt {
    at: u64,
    fs: Arc<SmallFs>,
}

impl EventSink for FillAt {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        if event.seq == self.at {
            self.fs.fill();
        }
        Ok(())
    }
}

fn journal_in(dir: &Path, plan: &DeployPlan) -> (Journal, i64) {
    let journal = Journal::open(dir).unwrap();
    let id = journal
        .begin(&NewRelease {
            app: APP,
            kind: ReleaseKind::Deploy,
            target: &plan.target,
            previous: plan.previous.as_ref(),
            strategy: "canary",
            strategy_hash: "test",
            params: serde_json::json!({}),
            platform: "sim",
            plan: Some(plan),
            strategy_ref: Some("canary"),
        })
        .unwrap();
    (journal, id)
}

#[test]
fn a_journal_that_fills_up_mid_deploy_stops_it_before_the_next_change() {
    let fs = match SmallFs::mount("2m") {
        Ok(fs) => Arc::new(fs),
        Err(why) => {
            eprintln!("SKIPPED a_journal_that_fills_up_mid_deploy_stops_it_before_the_next_change: {why}");
            return;
        }
    };
    let rt = support::paused_runtime();
    rt.block_on(async {
        let runtime = support::runtime();
        // Canary: many calls that change the fleet, one after the other (rolling moves a group in one call).
        let strategy = runtime.load(support::builtin("canary")).unwrap();
        let info = runtime.describe(&strategy).await.unwrap();
        let params = info.params.into_iter().filter_map(|p| Some((p.name, p.default?))).collect();
        let plan = DeployPlan {
            app: APP.into(),
            target: Release { version: 2, image: V2.into() },
            previous: Some(Release { version: 1, image: V1.into() }),
            process_groups: vec!["app".into()],
            max_unavailable: MaxUnavailable::Count(1),
            wait_timeout_ms: 300_000,
            kill_signal: "SIGINT".into(),
            kill_timeout_ms: 5000,
            params,
        };
        let (journal, release) = journal_in(&fs.0, &plan);
        let world = support::world("[fleet]\nmachines = 10\n");
        let witness = Arc::new(Witness { inner: Arc::new(world.platform(APP)), changes: Mutex::default() });
        // Well into the deploy: after some changes, before the last.
        let sink = Tee(vec![
            Arc::new(FillAt { at: 40, fs: fs.clone() }),
            Arc::new(JournalSink::new(journal.clone(), release, 1 << 30)),
        ]);
        let clock = HostClock::simulated();
        let ctx = RunContext {
            platform: witness.clone(),
            limits: Limits::default(),
            concurrency: 8,
            clock,
            recorder: Recorder::new(Arc::new(sink), clock),
            seed: 2,
            promotions: None,
            replay: None,
            grants: Default::default(),
            metrics: None,
            creation_bound: Limits::default().creation_bound(10, 1),
        };
        let result = runtime.deploy(&strategy, &plan, ctx).await;

        // Stopped, with an error that says the journal failed and where.
        let err = match result {
            Err(e @ RuntimeError::Journal(SinkError::Failed { .. })) => e,
            other => panic!("expected the journal's failure, got {other:?}"),
        };
        let text = err.to_string();
        let file = fs.0.join("journal.db").display().to_string();
        assert!(text.contains("the journal failed") && text.contains(&file), "{text}");

        // Every change the platform received is on record, as an intent journaled before it.
        let events = journal.events(release).unwrap();
        let intents: Vec<HostCall> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Intent { call } => Some(call.clone()),
                _ => None,
            })
            .collect();
        let changes = witness.changes.lock().unwrap().clone();
        assert!(!changes.is_empty(), "the deploy changed something before the journal filled up");
        for (op, id) in &changes {
            let on_record = intents.iter().any(|c| {
                // A pipeline's intent covers each step it names, on each of its machines.
                let does = match c {
                    HostCall::Pipeline { steps, .. } => steps.iter().any(|s| s.operation() == *op),
                    _ => c.operation() == *op,
                };
                does && (id.is_empty()
                    || c.machine_ids().is_some_and(|ids| ids.contains(id))
                    || matches!(c, HostCall::SetMetadata { id: m, .. } if m == id))
            });
            assert!(on_record, "{op} {id} reached the platform but is not in the journal");
        }
        // And the deploy did not go on: the fleet is not all on v2.
        let fleet = world.snapshot(APP);
        assert!(fleet.iter().any(|m| m.release.version == 1), "the deploy ran to its end regardless");
        assert!(events.len() < 200, "{} events journaled", events.len());
        eprintln!("stopped after {} change(s), {} event(s) journaled: {text}", changes.len(), events.len());
    });
}
