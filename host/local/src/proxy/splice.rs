//! Upgraded streams: once a machine has answered an `Upgrade` request (a WebSocket) with `101`, the
//! client's connection and the machine's are no longer HTTP but two byte streams, copied both ways
//! until either side closes. The stream counts as an active connection on its machine all along, so
//! a cordoned machine is not reported drained while a WebSocket is still open on it.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::counters::{ActiveGuard, ClientSlot, TaskGuard};

/// Waits for both sides to finish upgrading, then copies between them until either closes or `stop`
/// (the proxy shutting down) fires. `_slot` keeps the client's connection counted against its
/// address (its HTTP connection task has ended by then).
pub(super) async fn splice(
    client: OnUpgrade,
    backend: OnUpgrade,
    guard: ActiveGuard,
    stop: impl Future<Output = ()>,
    _slot: Arc<ClientSlot>,
    _task: TaskGuard,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "proxy: upgrade failed");
            return;
        }
    };
    tokio::select! {
        () = pipe_with_linger(TokioIo::new(client), TokioIo::new(backend), UPGRADE_LINGER) => {}
        () = stop => {}
    }
    drop(guard);
}

/// After one side of an upgraded stream has closed, how long the other direction may still run.
const UPGRADE_LINGER: Duration = Duration::from_secs(5);

/// Copies both ways; once one direction ends (its writer shut down in turn), the other gets
/// `linger` to finish, so a peer that never closes its half cannot keep the machine busy forever.
async fn pipe_with_linger<A, B>(a: A, b: B, linger: Duration)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncWriteExt;
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut a_to_b = pin!(async move {
        let r = tokio::io::copy(&mut ar, &mut bw).await;
        let _ = bw.shutdown().await;
        r
    });
    let mut b_to_a = pin!(async move {
        let r = tokio::io::copy(&mut br, &mut aw).await;
        let _ = aw.shutdown().await;
        r
    });
    let first = tokio::select! {
        r = a_to_b.as_mut() => { (r, tokio::time::timeout(linger, b_to_a).await) }
        r = b_to_a.as_mut() => { (r, tokio::time::timeout(linger, a_to_b).await) }
    };
    tracing::trace!(result = ?first, "proxy: upgraded stream ended");
}
