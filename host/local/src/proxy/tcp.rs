//! TCP mode: each accepted connection goes to one machine, picked as a request would be, and bytes
//! are copied both ways until either side closes. A machine that refuses the connection is tried no
//! further: the next attempt goes to another routable machine, so a machine stopping between the
//! pick and the connect costs no client its connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::Inner;
use super::counters::{ClientSlot, TaskGuard};
use super::table::Entry;

impl Inner {
    /// Serves one client connection, from the pick to the end of the stream; `_slot` counts it
    /// against the client's address until then.
    pub(super) async fn serve_tcp(
        self: Arc<Self>,
        mut client: TcpStream,
        _slot: ClientSlot,
        _task: TaskGuard,
    ) {
        let _ = client.set_nodelay(true);
        let start = Instant::now();
        let mut tried: Vec<Arc<Entry>> = Vec::new();
        for attempt in 0..self.opts.max_attempts.max(1) {
            let Some((entry, guard)) = self.pick(&tried, None).await else { break };
            if attempt > 0 && tried.iter().any(|t| t.machine_id == entry.machine_id) {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(entry.addr)).await {
                Ok(Ok(mut backend)) => {
                    let _ = backend.set_nodelay(true);
                    entry.recorder.record(Instant::now(), Some(start.elapsed()), false);
                    tokio::select! {
                        r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                            if let Err(e) = r {
                                tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: tcp stream ended");
                            }
                        }
                        () = self.shutdown_signal() => {}
                    }
                    drop(guard);
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(machine = %entry.machine_id, error = %e, "proxy: tcp connect failed")
                }
                Err(_) => tracing::debug!(machine = %entry.machine_id, "proxy: tcp connect timed out"),
            }
            drop(guard);
            tried.push(entry);
        }
        if let Some(entry) = tried.last() {
            entry.recorder.record(Instant::now(), None, true);
        }
    }
}
