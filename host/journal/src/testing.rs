//! A PostgreSQL server for tests: the journal's contract tests and the end-to-end tests share it.
//!
//! Once per test process, `.ci/postgres serve` starts a private cluster from the installed binaries
//! (`/usr/lib/postgresql/*/bin`) in `target/pg-test/`, on a loopback port of its own; it stops when the
//! test process ends, however it ends (the script waits on a pipe only this process holds). Each test
//! gets a database of its own. `CUTOVER_TEST_POSTGRES_URL` points the tests at a server instead.
//!
//! Without PostgreSQL a test says, on the terminal, that it is skipped — unless `CI` is set: CI runs
//! the PostgreSQL tests, so there a missing server fails the test.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A server to use instead of starting one (`postgres://user@host:port/db`; databases are created on it).
pub const TEST_POSTGRES_URL_ENV: &str = "CUTOVER_TEST_POSTGRES_URL";

/// The server this process uses: its URL (any database), and the script keeping it up.
struct Server {
    url: String,
    _keeper: Option<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A new, empty database for `test` on the test server, as a URL. `None` (after telling the terminal
/// the test is skipped) when this machine has no PostgreSQL; in CI that is a failure instead.
pub fn database(test: &str) -> Option<String> {
    let server = match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: PostgreSQL is needed and CI is set: {why}")
        }
        Err(why) => {
            // Straight to the terminal: the test harness would swallow a skipped test's output.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
            return None;
        }
    };
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        test.chars().filter(|c| c.is_ascii_alphanumeric()).take(30).collect::<String>().to_lowercase()
    );
    let admin = server.url.clone();
    let create = format!("CREATE DATABASE {name}");
    // On a thread of its own: the sync client must not run inside a test's async runtime.
    std::thread::spawn(move || -> Result<(), String> {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&create).map_err(|e| e.to_string())
    })
    .join()
    .expect("creating a test database panicked")
    .unwrap_or_else(|e| panic!("{test}: cannot create a test database: {e}"));
    let base = server.url.rsplit_once('/').map_or(server.url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// The repository's root (where `.ci/` and `target/` are).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Start the private cluster (or take the one `CUTOVER_TEST_POSTGRES_URL` names).
fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var(TEST_POSTGRES_URL_ENV) {
        return Ok(Server { url, _keeper: None });
    }
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|v| v.path().join("bin/postgres").exists()))
        .unwrap_or(false);
    if !installed {
        return Err(format!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): `.ci/postgres install` \
             installs Debian's postgresql, or set {TEST_POSTGRES_URL_ENV}"
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let dir = root().join("target/pg-test").join(format!("{}", std::process::id()));
    let script = root().join(".ci/postgres");
    let port = port.to_string();
    let (url, child) = serve_script(&script, &[dir.as_os_str(), OsStr::new(&port)], "postgres://")
        .map_err(|e| format!("the test cluster did not start ({}): {e}", script.display()))?;
    Ok(Server { url, _keeper: Some(child) })
}

/// Runs a `.ci/<server> serve ARGS…` script and reads the URL it prints once its server is ready
/// (starting with `scheme`). The child keeps the server up until its stdin closes; the error is the
/// script's stderr.
pub fn serve_script(script: &Path, args: &[&OsStr], scheme: &str) -> Result<(String, Child), String> {
    let mut child = Command::new(script)
        .arg("serve")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
    if read.is_err() || !line.starts_with(scheme) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = child.wait();
        return Err(err.trim().to_string());
    }
    Ok((line.trim().to_string(), child))
}
