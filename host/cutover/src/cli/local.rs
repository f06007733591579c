//! `cutover local up|down|serve` and `cutover logs`: the local platform's daemon and its machines'
//! output.

use super::args::{AppArgs, LocalCommand};
use super::exit::{Error, Exit};
use super::out::{out, outln};
use super::run::{Context, tokio_runtime};
use cutover_driver::{PlatformFlags, Purpose, local};

pub(crate) fn local(ctx: &Context, cmd: LocalCommand) -> Result<Exit, Error> {
    let rt = tokio_runtime(false)?;
    match cmd {
        LocalCommand::Serve { dir } => rt.block_on(local::serve_daemon(&dir)).map_err(Error::local)?,
        LocalCommand::Up { app } => {
            let config = ctx.config(&app)?;
            let target = ctx.target(&config, PlatformFlags::default(), Purpose::Local);
            let info = rt.block_on(local::start_daemon(&target)).map_err(Error::local)?;
            outln!("local daemon running at {} (pid {}); `cutover local down` stops it", info.url, info.pid);
            let targets = local::targets_file(&target).map_err(Error::local)?;
            outln!("Prometheus scrape targets (file_sd_configs): {}", targets.display());
        }
        LocalCommand::Down { app } => {
            let config = ctx.config(&app)?;
            let target = ctx.target(&config, PlatformFlags::default(), Purpose::Local);
            match rt.block_on(local::stop_daemon(&target)).map_err(Error::local)? {
                true => outln!("local daemon stopped, and every machine with it"),
                false => outln!("no local daemon was running for {}", ctx.state(&config).path().display()),
            }
        }
    }
    Ok(Exit::Success)
}

pub(crate) fn logs(
    ctx: &Context,
    app: &AppArgs,
    machine: Option<&str>,
    tail: Option<u64>,
) -> Result<Exit, Error> {
    let config = ctx.config(app)?;
    let target = ctx.target(&config, PlatformFlags::default(), Purpose::Local);
    let logs =
        tokio_runtime(false)?.block_on(local::logs(&config, &target, machine, tail)).map_err(Error::local)?;
    let mut unread = Vec::new();
    for log in logs {
        match log.text {
            Ok(text) => {
                if machine.is_none() {
                    outln!("==> machine {}", log.id);
                }
                out!("{text}");
            }
            Err(e) => unread.push(e.to_string()),
        }
    }
    if unread.is_empty() { Ok(Exit::Success) } else { Err(Error::Logs(unread)) }
}
