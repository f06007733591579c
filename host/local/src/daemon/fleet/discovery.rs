//! The app's machines for Prometheus: a file-based service discovery file (`file_sd_configs`) in the
//! daemon's state directory, rewritten atomically on every fleet change, so a Prometheus scraping the
//! local platform follows a deploy as Fly's managed Prometheus follows an app's machines.
//!
//! One target group per machine whose process runs (cordoned and not-yet-passing machines included: a
//! canary's metrics matter most while it is being judged), target `127.0.0.1:PORT`, labels:
//!
//! - `app`: the app's name;
//! - `instance`: the machine id (the label Fly's Prometheus uses for it; it replaces the default
//!   `host:port`, which says nothing once a port is reused);
//! - `version`: the release version the machine runs (`fly_release_version`; `0` when it has none);
//! - `region`, `process_group`: as Fly sets them.
//!
//! Prometheus rereads the file when it changes (inotify, and every `refresh_interval` besides). The file
//! is replaced by rename, never written in place, so it never reads half a file.

use super::State;
use cutover_machines_api::{PROCESS_GROUP_KEY, RELEASE_VERSION_KEY};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The discovery file's name in the daemon's state directory.
pub const TARGETS_FILE: &str = "prometheus-targets.json";

/// One target group of the file, as Prometheus reads it.
#[derive(Debug, Serialize, PartialEq)]
struct TargetGroup {
    targets: Vec<String>,
    labels: BTreeMap<&'static str, String>,
}

/// Writes the discovery file when what it would say changes.
pub(super) struct Discovery {
    path: PathBuf,
    /// What the file says now, so an unchanged fleet (a passing check reported again) rewrites nothing.
    last: Mutex<Option<Vec<u8>>>,
}

impl Discovery {
    pub(super) fn new(path: PathBuf) -> Self {
        Discovery { path, last: Mutex::new(None) }
    }

    /// Rewrites the file if the fleet's scrape targets changed. A write that fails is logged and
    /// retried on the next change: metrics are an observer, never a reason to refuse a fleet change.
    pub(super) fn update(&self, st: &State) {
        let groups = targets_of(st);
        // Strings and maps only: serializing them cannot fail.
        let mut bytes = serde_json::to_vec_pretty(&groups).unwrap_or_default();
        bytes.push(b'\n');
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(&bytes[..]) {
            return;
        }
        match cutover_core::os::write_atomically(&self.path, &bytes) {
            Ok(()) => *last = Some(bytes),
            Err(e) => tracing::warn!("writing Prometheus targets {}: {e}", self.path.display()),
        }
    }
}

/// Every running machine of every app, one group each, in machine-id order.
fn targets_of(st: &State) -> Vec<TargetGroup> {
    st.machines
        .values()
        .filter(|m| m.pid.is_some())
        .map(|m| {
            let meta = &m.api.config.metadata;
            let labels = BTreeMap::from([
                ("app", m.app.clone()),
                ("instance", m.api.id.clone()),
                ("version", meta.get(RELEASE_VERSION_KEY).cloned().unwrap_or_else(|| "0".into())),
                ("region", m.api.region.clone()),
                ("process_group", meta.get(PROCESS_GROUP_KEY).cloned().unwrap_or_default()),
            ]);
            TargetGroup { targets: vec![format!("127.0.0.1:{}", m.port)], labels }
        })
        .collect()
}
