//! The release command on the local platform: a real process of the app's own command
//! (`[cutover.local] command`) with the release command's arguments after it, run from the client
//! because it belongs to no machine. It gets the environment the new release's machines get
//! (`[cutover.local] env` and the `FLY_*` variables, naming the new image and version) with
//! `RELEASE_COMMAND=1`, and its stdout and stderr are read line by line as they come. Past its timeout
//! its whole process group is killed; it dies with cutover too, so a killed deploy leaves no stray
//! migration behind (`cutover resume` runs it again).

use crate::daemon::fleet::AppSpec;
use cutover_core::release_command::{MAX_LINE, RELEASE_COMMAND_ENV, RELEASE_COMMAND_GROUP, clean_line};
use cutover_core::{ErrorKind, OpError, ReleaseCommand, ReleaseCommandError, ReleaseLog};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// How long output still arriving after the process ended is waited for (a grandchild that kept the
/// pipe open must not hold the deploy).
const DRAIN: Duration = Duration::from_secs(2);

/// Run `cmd` as the app's command would run on the new release; see the module's comment.
pub(crate) async fn run(
    spec: &AppSpec,
    app: &str,
    cmd: &ReleaseCommand,
    log: &dyn ReleaseLog,
) -> Result<(), ReleaseCommandError> {
    let image = &cmd.release.image;
    let mut argv: Vec<String> = spec.command.iter().map(|a| a.replace("{image}", image)).collect();
    argv.extend(cmd.args.iter().cloned());
    if argv.is_empty() {
        return Err(ReleaseCommandError::Platform(OpError::new(
            ErrorKind::Invalid,
            "the release command is empty and `[cutover.local] command` names no program",
        )));
    }
    let version = cmd.release.version.to_string();
    let mut c = tokio::process::Command::new(&argv[0]);
    c.args(&argv[1..])
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        .env("FLY_APP_NAME", app)
        .env("FLY_MACHINE_ID", "release_command")
        .env("FLY_REGION", "local")
        .env("FLY_IMAGE_REF", image)
        .env("FLY_RELEASE_VERSION", &version)
        .env("FLY_PROCESS_GROUP", RELEASE_COMMAND_GROUP)
        .envs(&cmd.env)
        .env(RELEASE_COMMAND_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0);
    #[cfg(target_os = "linux")]
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn().map_err(|e| {
        ReleaseCommandError::Platform(OpError::new(
            ErrorKind::Invalid,
            format!(
                "cannot run `{}` (in {}): {e}; the local platform runs the release command with \
                 `[cutover.local] command` in front of it: check both in fly.toml",
                argv.join(" "),
                spec.cwd.display()
            ),
        ))
    })?;
    let pid = child.id().unwrap_or(0);
    log.note(format!("running the release command `{}` as process {pid}", argv.join(" ")));
    let (tx, mut rx) = mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(lines(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(lines(err, tx.clone()));
    }
    drop(tx);

    let deadline = tokio::time::sleep(cmd.timeout);
    tokio::pin!(deadline);
    let status = loop {
        tokio::select! {
            Some(line) = rx.recv() => log.line(&line),
            status = child.wait() => break status,
            _ = &mut deadline => {
                kill_group(pid);
                let _ = child.wait().await;
                drain(&mut rx, log).await;
                return Err(ReleaseCommandError::TimedOut(cmd.timeout));
            }
        }
    };
    // It may have left a child behind in its group; the command is over either way.
    kill_group(pid);
    drain(&mut rx, log).await;
    let status = status.map_err(|e| {
        ReleaseCommandError::Platform(OpError::new(
            ErrorKind::Platform,
            format!("waiting for process {pid}: {e}"),
        ))
    })?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(ReleaseCommandError::Exited(code)),
        None => {
            use std::os::unix::process::ExitStatusExt;
            let signal = status.signal().unwrap_or(0);
            Err(ReleaseCommandError::Crashed(format!("process {pid} was killed by signal {signal}")))
        }
    }
}

/// The lines still in the pipes, for a short while.
async fn drain(rx: &mut mpsc::UnboundedReceiver<String>, log: &dyn ReleaseLog) {
    let until = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(line)) = tokio::time::timeout_at(until, rx.recv()).await {
        log.line(&line);
    }
}

/// SIGKILL to the process group `pid` leads (it was made its own group's leader).
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Send each line of `r` (cut at `MAX_LINE` bytes, so one endless line cannot fill memory).
async fn lines(mut r: impl AsyncRead + Unpin, tx: mpsc::UnboundedSender<String>) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                let _ = tx.send(clean_line(&line));
                line.clear();
            } else {
                line.push(b);
                if line.len() >= MAX_LINE {
                    let _ = tx.send(clean_line(&line));
                    line.clear();
                }
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(clean_line(&line));
    }
}
