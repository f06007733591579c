//! `cutover deploy`, `rollback`, `resume` and `demo`: the commands that change the fleet, and
//! `deploy --dry-run`, which says what a deploy would do.

use super::args::{DemoArgs, DeployArgs, ResumeArgs, RollbackArgs, RunArgs};
use super::exit::{Error, Exit};
use super::out::{out, outln};
use super::render;
use super::run::{Context, cwd, token};
use cutover_core::events::{Discard, EventSink, Outcome};
use cutover_driver::demo::DemoOptions;
use cutover_driver::{Deploy, DeployError, Goal, PlatformFlags, Purpose};
use std::sync::Arc;

/// What a run is asked for (the image of a deploy may come from the config).
enum Ask {
    /// With `--skip-release-command`, or not.
    Deploy(bool),
    Rollback(Option<u64>),
    Resume,
}

pub(crate) fn deploy(ctx: &Context, args: DeployArgs) -> Result<Exit, Error> {
    run(ctx, args.run, args.image, Ask::Deploy(args.skip_release_command))
}

pub(crate) fn rollback(ctx: &Context, args: RollbackArgs) -> Result<Exit, Error> {
    run(ctx, args.run, None, Ask::Rollback(args.to))
}

pub(crate) fn resume(ctx: &Context, args: ResumeArgs) -> Result<Exit, Error> {
    let run_args = RunArgs {
        app: args.app,
        strategy: None,
        platform: None,
        scenario: None,
        json: args.json,
        dry_run: false,
        access_token: args.access_token,
    };
    run(ctx, run_args, None, Ask::Resume)
}

fn run(ctx: &Context, args: RunArgs, image: Option<String>, ask: Ask) -> Result<Exit, Error> {
    let mut config = ctx.config(&args.app)?.with_overrides(args.strategy.as_deref(), image, &cwd());
    config.skip_release_command = matches!(ask, Ask::Deploy(true));
    let purpose = match ask {
        Ask::Deploy(_) => Purpose::Deploy,
        Ask::Rollback(None) => Purpose::Rollback,
        Ask::Rollback(Some(_)) => Purpose::RollbackTo,
        Ask::Resume => Purpose::Resume,
    };
    let flags = PlatformFlags {
        platform: args.platform,
        scenario: args.scenario,
        access_token: token(args.access_token),
        ..Default::default()
    };
    let target = ctx.target(&config, flags, purpose);
    let (json, dry_run) = (args.json, args.dry_run);
    let compile_timeout = ctx.compile_timeout(&config);
    ctx.with_runtime(target.virtual_time(), |runtime| async move {
        runtime.set_compile_timeout(compile_timeout);
        if !dry_run {
            survive_hangup();
        }
        let sink: Arc<dyn EventSink> =
            if json { Arc::new(render::Json) } else { Arc::new(render::Human::new()) };
        let deploy = Deploy { config: &config, target: &target, runtime: &runtime, sink };
        if dry_run {
            let goal = match ask {
                Ask::Rollback(to) => Goal::Rollback { to },
                _ => Goal::Deploy { image: deploy.image()? },
            };
            let plan = deploy.dry_run(goal).await?;
            match json {
                true => outln!("{}", serde_json::to_string_pretty(&plan).unwrap_or_default()),
                false => out!("{}", plan.render()),
            }
            return Ok(Exit::Success);
        }
        let report = match ask {
            Ask::Resume => match deploy.resume().await {
                // Nothing interrupted: a deploy that succeeded may have left machines to finish.
                Err(DeployError::NothingToResume(why)) => match deploy.cleanup().await? {
                    Some(cleanup) => {
                        render::cleanup(&cleanup, json);
                        return Ok(if cleanup.done() { Exit::Success } else { Exit::Failed });
                    }
                    None => return Err(DeployError::NothingToResume(why).into()),
                },
                resumed => resumed?,
            },
            Ask::Deploy(_) => deploy.run().await?,
            Ask::Rollback(to) => deploy.rollback(to).await?,
        };
        if !json {
            render::summary(&report, target.virtual_time());
        }
        Ok(outcome(report.outcome))
    })
}

/// A terminal that hangs up (SIGHUP: the SSH session dropped, the window closed) must not stop a
/// deploy half-way: from here on SIGHUP only stops the output (writes to the gone terminal fail and
/// are dropped, see `out`), and the deploy ends as it would have. tokio's handler replaces the default
/// action (terminate) for the rest of the process, which is the deploy; SIGTERM and SIGINT still stop
/// it, and `cutover resume` finishes it then.
fn survive_hangup() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    if hangups.recv().await.is_some() {
                        super::out::hung_up();
                    }
                    // Later hang-ups are taken by the handler and ignored.
                    while hangups.recv().await.is_some() {}
                });
            }
            Err(e) => tracing::warn!("cannot ignore SIGHUP ({e}); a terminal hang-up would stop the deploy"),
        }
    }
}

/// The exit code of a deploy that ran.
fn outcome(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Succeeded => Exit::Success,
        Outcome::Failed => Exit::Failed,
    }
}

pub(crate) fn demo(ctx: &Context, args: DemoArgs) -> Result<Exit, Error> {
    let config = ctx.config(&args.app)?.with_overrides(args.strategy.as_deref(), None, &cwd());
    let target = ctx.target(&config, PlatformFlags::default(), Purpose::Local);
    let opts = DemoOptions { rate: args.rate, settle: std::time::Duration::from_secs(1), keep: args.keep };
    let json = args.json;
    let compile_timeout = ctx.compile_timeout(&config);
    ctx.with_runtime(target.virtual_time(), |runtime| async move {
        runtime.set_compile_timeout(compile_timeout);
        let sink: Arc<dyn EventSink> = if json { Arc::new(Discard) } else { Arc::new(render::Human::new()) };
        let report = cutover_driver::demo::run(&config, &target, &runtime, sink, &opts).await?;
        // The picture is drawn from the journal the deploy just wrote, after the deploy ended.
        let picture = report.deploy.release_id.and_then(|id| super::report::demo_picture(ctx, &config, id));
        render::demo(&report, picture.as_deref(), json);
        Ok(outcome(report.deploy.outcome))
    })
}
