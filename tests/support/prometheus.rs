//! A real Prometheus for a test: `.ci/prometheus serve` starts Debian's `prometheus` on a loopback port
//! of its own, scraping every second the targets of one service discovery file (the local daemon's),
//! and stops it when the [`Prometheus`] is dropped or the test process ends, however it ends (the
//! script waits on a pipe only this process holds).
//!
//! Without Prometheus a test says, on the terminal, that it is skipped — unless `CI` is set: CI runs the
//! metrics tests, so there a missing Prometheus fails the test.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::Child;

/// A running Prometheus; stopped (and its storage removed) when dropped.
pub struct Prometheus {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    keeper: Child,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Closing the script's stdin is its signal to stop Prometheus and clean up.
        drop(self.keeper.stdin.take());
        let _ = self.keeper.wait();
    }
}

/// A Prometheus scraping the targets `targets` lists, for `test`. `None` (after telling the terminal
/// the test is skipped) when this machine has no Prometheus; in CI that is a failure instead.
pub fn serve(test: &str, targets: &Path) -> Option<Prometheus> {
    match start(test, targets) {
        Ok(p) => Some(p),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: Prometheus is needed and CI is set: {why}")
        }
        Err(why) => {
            // Straight to the terminal: the test harness would swallow a skipped test's output.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
            None
        }
    }
}

fn start(test: &str, targets: &Path) -> Result<Prometheus, String> {
    let installed = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("prometheus").is_file()));
    if !installed {
        return Err("Prometheus is not installed (no `prometheus` on PATH): `.ci/prometheus install` installs Debian's prometheus".into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let dir = super::root().join("target/prometheus-test").join(format!("{}-{test}", std::process::id()));
    let script = super::root().join(".ci/prometheus");
    let port = port.to_string();
    let args = [dir.as_os_str(), OsStr::new(&port), targets.as_os_str()];
    let (url, keeper) = cutover::journal::testing::serve_script(&script, &args, "http://")
        .map_err(|e| format!("Prometheus did not start ({}): {e}", script.display()))?;
    Ok(Prometheus { url, keeper })
}
