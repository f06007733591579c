//! `cutover dashboard`: the app's journal and the three actions on a web page (`cutover-dashboard`),
//! served on loopback until Ctrl-C.

use super::args::DashboardArgs;
use super::exit::{Error, Exit};
use super::out::outln;
use super::run::{Context, tokio_runtime};
use cutover_dashboard::{Command, Dashboard};
use std::ffi::OsString;

pub(crate) fn dashboard(ctx: &Context, args: DashboardArgs) -> Result<Exit, Error> {
    let config = ctx.config(&args.app)?;
    let state = ctx.state(&config);
    let journal = state.journal()?;
    let dashboard = Dashboard {
        app: config.app.clone(),
        journal,
        rollback: rollback_command(ctx, &args, state.path())?,
        picture: Some(timeline_picture(config.app.clone())),
    };
    let rt = tokio_runtime(false)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| Error::Startup(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
        let port = listener.local_addr().map_err(|e| Error::Startup(e.to_string()))?.port();
        let token = cutover_dashboard::new_token();
        outln!("dashboard of {}: {}", config.app, cutover_dashboard::url(port, &token));
        outln!("(the token in the address is what lets you in; Ctrl-C stops the dashboard)");
        tokio::select! {
            served = cutover_dashboard::serve(listener, dashboard, token) => {
                served.map_err(|e| Error::Startup(format!("the dashboard stopped: {e}")))?;
            }
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(Exit::Success)
    })
}

/// What `cutover report` draws, for the release the page asks for.
fn timeline_picture(app: String) -> cutover_dashboard::Picture {
    std::sync::Arc::new(move |journal: &cutover_journal::Journal, id: i64| {
        let releases = journal.releases(&app).map_err(|e| e.to_string())?;
        let release = releases.iter().find(|r| r.id == id).ok_or(format!("{app} has no release #{id}"))?;
        let events = journal.events_with_samples(id).map_err(|e| e.to_string())?;
        cutover_report::svg(release, &events, &cutover_report::Options::default()).map_err(|e| e.to_string())
    })
}

/// `cutover rollback` for the same app, state and caches: what the Roll back button runs.
fn rollback_command(ctx: &Context, args: &DashboardArgs, state: &std::path::Path) -> Result<Command, Error> {
    let program = std::env::current_exe()
        .map_err(|e| Error::Startup(format!("cannot find the cutover executable to run rollbacks: {e}")))?;
    let config = std::path::absolute(&args.app.config).unwrap_or_else(|_| args.app.config.clone());
    let mut argv: Vec<OsString> = vec!["rollback".into(), "--config".into(), config.into_os_string()];
    if let Some(dir) = &ctx.state_dir {
        argv.extend(["--state-dir".into(), std::path::absolute(dir).unwrap_or_else(|_| dir.clone()).into()]);
    }
    if let Some(dir) = &ctx.cache_dir {
        argv.extend(["--cache-dir".into(), std::path::absolute(dir).unwrap_or_else(|_| dir.clone()).into()]);
    }
    let log_dir = std::path::absolute(state).unwrap_or_else(|_| state.to_path_buf());
    Ok(Command { program, args: argv, log_dir })
}
