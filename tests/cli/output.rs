//! Output that goes away mid-deploy: stdout closed by its reader (`cutover deploy --json | head -1`) and
//! a terminal hang-up (SIGHUP). Neither stops the deploy: output stops, one warning goes where it
//! still can, the journal keeps every event, and the release ends succeeded with the fleet on it.
//!
//! Each deploy is a canary waiting at a manual gate (the simulator's operator is off), so the test
//! closes the pipe or hangs up while the deploy is certainly running, then promotes it.

use super::canary_with_a_manual_gate;
use crate::support::{self, OutputExt};

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

/// Start a deploy with `--json`, read its events until it waits at the manual gate, and hand back the
/// child with its stdout reader (still open).
#[allow(clippy::zombie_processes, reason = "the child is handed back to the caller, which waits for it")]
fn deploy_to_the_gate(config: &str, state: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = support::cutover(["deploy", "--config", config, "--json"])
        .state(state)
        .spawn(Stdio::piped(), Stdio::piped());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the deploy never reached its manual gate");
        }
        if line.contains("waiting at manual gate") {
            return (child, stdout);
        }
    }
}

/// Let the deploy go on, wait for it, and check it ended as it would have: exit 0, no panic, the
/// release succeeded in the journal and every machine on v2 and serving.
fn promote_and_check(mut child: Child, config: &str, state: &Path, warning: &str) {
    let promoted = support::cutover(["promote", "--config", config]).state(state).run();
    assert_eq!(promoted.status.code(), Some(0), "{}", promoted.text());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "the deploy ended as it would have:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches(warning).count(), 1, "one warning `{warning}`:\n{stderr}");

    let s: Value = support::cutover(["status", "--config", config, "--json"]).state(state).run().json();
    assert_eq!(s["latest"]["status"], "succeeded", "{s}");
    assert_eq!(s["fleet"]["by_version"], serde_json::json!([[2, 10]]), "{s}");
    assert_eq!(s["fleet"]["serving"], 10, "{s}");
    // The journal kept every event, the ones after the output went away included.
    let out = support::cutover(["releases", "--config", config, "--json"]).state(state).run();
    assert!(out.stdout_text().contains("succeeded"), "{}", out.text());
}

#[test]
fn a_closed_stdout_does_not_stop_a_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let config = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let (child, stdout) = deploy_to_the_gate(config, &state);
    // `| head -1`: the reader goes away; every later event written is a broken pipe.
    drop(stdout);
    promote_and_check(child, config, &state, "warning: standard output went away");
}

#[test]
fn a_terminal_hang_up_does_not_stop_a_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let config = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let (child, mut stdout) = deploy_to_the_gate(config, &state);
    // SAFETY: kill(2) on the id of a child this test spawned and has not waited for.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(sent, 0, "SIGHUP sent");
    // Keep reading so the deploy is never blocked on a full pipe.
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    promote_and_check(child, config, &state, "warning: the terminal hung up (SIGHUP)");
    let rest = drain.join().unwrap();
    assert!(rest.contains("deploy_finished"), "stdout was still there and got the rest: {rest}");
}
