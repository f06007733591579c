//! A deploy's leases: every machine of the app is leased before the first change, kept leased while
//! the strategy runs, and released at the end, whatever the outcome.
//!
//! This is the driver's job rather than a platform's, so every platform with leases (Fly, the local
//! daemon) gets the same behaviour: all-or-nothing acquisition (a second deploy of the same app fails
//! before changing anything, naming the holder and the expiry), a background task refreshing at half
//! the TTL (flyctl: 13 s TTL), and release on the way out. Machines the strategy creates while the
//! deploy holds leases are leased by the client as soon as they exist (`machines_api::Client::create`)
//! and show up in `Platform::held_leases`, so they are refreshed and released with the rest. If the
//! process dies, the leases expire by themselves after one TTL.

use cutover_core::{OpError, Platform};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// flyctl's lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(13);

/// The leases one deploy holds; [`DeployLeases::release`] gives them back.
pub struct DeployLeases {
    platform: Arc<dyn Platform>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl DeployLeases {
    /// Nothing leased (a platform without leases, or a deploy that changes nothing).
    pub fn none(platform: Arc<dyn Platform>) -> Self {
        Self { platform, refresher: None }
    }

    /// Lease every machine of `ids` for `ttl`, `concurrency` at a time, and keep them leased. If any
    /// cannot be leased, the ones taken are released and the first refusal is returned.
    pub async fn acquire(
        platform: Arc<dyn Platform>,
        ids: &[String],
        ttl: Duration,
        concurrency: usize,
    ) -> Result<Self, OpError> {
        if !platform.has_leases() || ids.is_empty() {
            return Ok(Self::none(platform));
        }
        let results: Vec<Result<(), OpError>> = futures::stream::iter(ids)
            .map(|id| {
                let p = platform.clone();
                async move { p.acquire_lease(id, ttl).await.map(drop) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        if let Some(refused) = results.into_iter().find_map(Result::err) {
            Self::none(platform).release().await;
            return Err(refused);
        }
        tracing::info!("leased {} machine(s) for {} s", ids.len(), ttl.as_secs());
        let refresher = tokio::spawn(refresh(platform.clone(), ttl, concurrency));
        Ok(Self { platform, refresher: Some(refresher) })
    }

    /// Stop refreshing and release every lease held; failures are logged (each lease then expires
    /// by itself within its TTL) and counted.
    pub async fn release(mut self) -> usize {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        let held = self.platform.held_leases();
        let platform = self.platform.clone();
        let failed: Vec<OpError> = futures::stream::iter(held)
            .map(|id| {
                let p = platform.clone();
                async move { p.release_lease(&id).await.err() }
            })
            .buffer_unordered(8)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        for e in &failed {
            tracing::warn!("{e} (the lease expires by itself)");
        }
        failed.len()
    }
}

impl Drop for DeployLeases {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
    }
}

/// Refresh every held lease at half its TTL, so one late or failed refresh still leaves time for the
/// next before the lease lapses.
async fn refresh(platform: Arc<dyn Platform>, ttl: Duration, concurrency: usize) {
    let every = (ttl / 2).max(Duration::from_millis(250));
    loop {
        tokio::time::sleep(every).await;
        let held = platform.held_leases();
        futures::stream::iter(held)
            .for_each_concurrent(concurrency.max(1), |id| {
                let p = platform.clone();
                async move {
                    if let Err(e) = p.refresh_lease(&id).await {
                        tracing::warn!("keeping the lease on {id}: {e}");
                    }
                }
            })
            .await;
    }
}
