//! The `cutover` command line: argument parsing, the tokio runtime, and turning results into output
//! and exit codes. It talks to the library's driver and runtime only, never to platform internals.

mod render;
mod status;
mod verify;

use cutover_config::{Config, PlatformKind};
use cutover_driver::{self as driver, Deploy, Journal, JournalError, Overrides, StateDir};
use cutover_core::events::{EventSink, Outcome};
use cutover_local::LocalDaemon;
use cutover_runtime::{ComponentCache, Runtime};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes: scripts and CI can tell a failed deploy from a mistake in the input.
pub mod exit {
    /// The deploy finished and the app is on the new release.
    pub const SUCCESS: u8 = 0;
    /// The deploy ran and failed (the strategy gave up, or the sandbox stopped it).
    pub const DEPLOY_FAILED: u8 = 1;
    /// Bad input: config, flags, strategy component or image. Nothing was changed.
    pub const BAD_INPUT: u8 = 2;
    /// The platform could not be reached or set up. Nothing was changed.
    pub const PLATFORM: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "cutover",
    version,
    about = "Zero-downtime deploys whose strategies are sandboxed WebAssembly components",
    long_about = "Zero-downtime deploys whose strategies are sandboxed WebAssembly components.\n\n\
        cutover reads your fly.toml as is. `[deploy] strategy` picks a built-in strategy by name or \
        your own by a path to its .wasm; cutover runs it in a sandbox that can reach nothing but the \
        fleet operations the host hands it.\n\n\
        Exit codes: 0 deployed, 1 deploy failed, 2 bad input (nothing changed), 3 platform unreachable.",
    after_help = "Examples:\n  \
        cutover demo --config examples/app/fly.toml               the example app, deployed under load\n  \
        cutover deploy --config examples/app/fly.toml             rolling deploy on the simulator\n  \
        cutover deploy --config examples/app/fly.toml --json      one JSON event per line\n  \
        cutover deploy --scenario examples/app/scenarios/failing-release.toml\n  \
        cutover releases -c examples/app/fly.toml                 the app's deploys and their outcomes\n  \
        cutover status -c examples/app/fly.toml                   the latest release and the fleet now\n  \
        cutover rollback -c examples/app/fly.toml                 back to the release before this one\n  \
        cutover resume -c examples/app/fly.toml                   take up a deploy whose process died\n  \
        cutover promote -c examples/app/fly.toml                  open the manual gate a canary waits at\n  \
        cutover strategies                                        what is built in\n  \
        cutover inspect my-strategy.wasm                          what a component is\n  \
        cutover new my-strategy --lang rust                       start a strategy of your own\n  \
        cutover build my-strategy                                 build it into a component\n  \
        cutover verify my-strategy.wasm                           conformance scenarios and invariants"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where compiled components are cached [default: ~/.cache/cutover/components].
    #[arg(long, global = true, env = "CUTOVER_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// The app's state: journal of releases, the simulator's fleet [default: .cutover/ beside fly.toml].
    #[arg(long, global = true, env = "CUTOVER_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a new release with the configured strategy.
    Deploy(DeployArgs),
    /// The main job: deploy the next release of the app on the local platform under load, and report
    /// what the traffic saw.
    ///
    /// Starts the local daemon (and stops it afterwards unless it was already running or --keep),
    /// launches the app if it has no machines, sends steady traffic through its proxy (half keep-alive,
    /// half new connections), deploys the next release with the strategy, and prints requests, failed
    /// requests and latency percentiles during the deploy, and the time each phase took.
    Demo(DemoArgs),
    /// Return the app to an earlier release (by default, the one the current release replaced).
    ///
    /// A strategy that retained the old machines (bluegreen with `retain_blue`) switches traffic back to
    /// them; otherwise the earlier image is deployed with the configured strategy. The rollback is
    /// itself a release in `cutover releases`.
    ///
    /// After a crash (the latest deploy interrupted), it returns to the release that deploy started
    /// from: the deploy is taken up as `cutover resume` would and aborted, so its strategy undoes what
    /// it did (green destroyed, canary removed, touched machines rolled back); if the fleet is not then
    /// wholly back and serving, the strategy rolls it back as a release of its own.
    Rollback(RollbackArgs),
    /// Take up a deploy whose `cutover` process died (killed, crashed, CI job cancelled).
    ///
    /// The journal holds every call the deploy made, with its answer; every change is on record
    /// before it reaches the platform. A fresh instance of the same strategy component (checked by
    /// hash) is replayed through those calls without touching the fleet, the change that was under
    /// way when the process died is compared with the fleet and finished (a clone it already made is
    /// adopted, not made twice), and the deploy goes on live from there, on the platform it ran on.
    ///
    /// If it cannot be resumed (the component changed, the strategy does not repeat its calls), it
    /// says why and what the fleet looks like now, and changes nothing; `cutover rollback` then
    /// returns the app to the release before the interrupted one.
    Resume(ResumeArgs),
    /// List the app's releases: version, strategy, outcome and duration, from the journal.
    Releases {
        #[command(flatten)]
        app: AppArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Say where the app's deploys and fleet stand: the latest release and the machines now.
    ///
    /// From the journal, the latest release: its number, version, image, kind and strategy, and how it
    /// stands (running, succeeded, failed, or interrupted when the process that ran it is gone), its
    /// error and the manual gate it waits at, if any. From the platform, the machines now: how many on
    /// each release, and how many serving, cordoned and stopped. When the latest deploy was
    /// interrupted, it says what to do next. It only reads: nothing is changed or started.
    ///
    /// Pass the same --platform and --scenario as to `cutover deploy` (the simulator keeps one fleet per
    /// scenario). Exit codes: 0 shown; 2 bad input, or no deploy of the app recorded yet; 3 the fleet
    /// could not be read (what the journal says is still shown).
    Status(crate::cli::status::StatusArgs),
    /// Let a deploy waiting at a manual gate go on (canary's `manual_gates`).
    ///
    /// Run it from another terminal while `cutover deploy` waits; without GATE it promotes the gate the
    /// running deploy waits at. Naming a gate ahead of time promotes it when the deploy reaches it.
    Promote {
        /// The gate, as the deploy's log names it (e.g. `step-25`) [default: the one it waits at].
        gate: Option<String>,
        #[command(flatten)]
        app: AppArgs,
    },
    /// The local platform: your app's machines as real processes behind a proxy on this computer.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Show the output of the app's machines on the local platform.
    Logs {
        #[command(flatten)]
        app: AppArgs,
        /// One machine's id [default: every machine, one after the other].
        #[arg(long, value_name = "ID")]
        machine: Option<String>,
        /// Only the last N bytes of each log.
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
    },
    /// List the built-in strategies, their summaries and parameters.
    Strategies {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a strategy through the simulator's conformance scenarios and check its invariants.
    ///
    /// Fleets of 1, 3 and 500 machines in two regions and two process groups; the happy path, a new
    /// release that fails its checks, 5% API errors, a crash mid-deploy and an expired wait timeout.
    /// After every change and at the end: the sandbox, an honest verdict, one release at the end, every
    /// machine serving, nothing lost, capacity within max_unavailable, no old machine destroyed before its
    /// replacement passed, drain (with drain_timeout) and traffic weights (when set). Runs in the default
    /// sandbox with its limits, so it is safe for untrusted components in shared CI.
    ///
    /// Exit codes: 0 every invariant kept; 1 an invariant broken (the report names it); 2 bad input
    /// (not a component, another contract version, a parameter without default); 3 the runtime could
    /// not start.
    Verify(crate::cli::verify::VerifyArgs),
    /// Show what a strategy component is: language toolchain, contract version, imports, exports,
    /// parameters, size.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a strategy project: a template for the language, the contract (wit/) and the SDK.
    New {
        /// The strategy's name, kebab-case (e.g. `drain-slowly`).
        name: String,
        /// The language (`rust`; others as this build offers them).
        #[arg(long, value_name = "LANG")]
        lang: String,
        /// Where to create the project [default: ./NAME].
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
    },
    /// Build a strategy project (its cutover-strategy.toml) into a component.
    Build {
        /// The project's directory.
        #[arg(default_value = ".", value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Which app: its config.
#[derive(Args)]
struct AppArgs {
    /// The app's fly.toml (cutover options in its [cutover] table or in cutover.toml beside it).
    #[arg(long, short = 'c', default_value = "fly.toml", value_name = "PATH")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Start the local daemon in the background (`deploy --platform local` starts it on demand).
    Up {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Stop every machine (each with the app's kill signal and timeout), then the daemon.
    Down {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Run the daemon in the foreground (what `up` starts).
    #[command(hide = true)]
    Serve {
        /// The daemon's directory (STATE_DIR/local).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Args)]
struct DeployArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Image to deploy [default: [build] image of the config].
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Strategy: a built-in name (see `cutover strategies`) or a path to a .wasm component.
    #[arg(long, value_name = "NAME|PATH")]
    strategy: Option<String>,
    /// Requests per second through the proxy during the deploy.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Leave the daemon and the app running afterwards (`cutover local down` stops them).
    #[arg(long)]
    keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ResumeArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Print one JSON event per line instead of human progress.
    #[arg(long)]
    json: bool,
    /// Fly.io API token (`fly tokens create deploy`) [default: $FLY_API_TOKEN]. Never printed.
    #[arg(long, env = "FLY_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    access_token: Option<String>,
}

#[derive(Args)]
struct RollbackArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The release to return to, e.g. `--to 3` (or `v3`) [default: the one the current release replaced].
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    to: Option<u64>,
}

/// What deploy and rollback share.
#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Strategy: a built-in name (see `cutover strategies`) or a path to a .wasm component.
    #[arg(long, value_name = "NAME|PATH")]
    strategy: Option<String>,
    /// Where the machines live [default: [cutover] platform, else sim].
    #[arg(long, value_enum)]
    platform: Option<PlatformKind>,
    /// Simulator scenario file: starting fleet, latencies, faults [default: [cutover.sim] scenario].
    #[arg(long, value_name = "PATH")]
    scenario: Option<PathBuf>,
    /// Print one JSON event per line instead of human progress.
    #[arg(long)]
    json: bool,
    /// Print what the deploy would do (machines, releases, strategy, missing capabilities) and change
    /// nothing: only read-only calls reach the platform.
    #[arg(long)]
    dry_run: bool,
    /// Fly.io API token (`fly tokens create deploy`) [default: $FLY_API_TOKEN]. Never printed.
    #[arg(long, env = "FLY_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    access_token: Option<String>,
}

/// Run the CLI and return the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let cache = match &cli.cache_dir {
        Some(dir) => ComponentCache::at(dir),
        None => ComponentCache::default_location(),
    };
    let state_dir = cli.state_dir;
    let code = match cli.command {
        Command::Deploy(args) => {
            let goal = Goal::Deploy { image: args.image };
            run(args.run, goal, cache, state_dir.as_deref())
        }
        Command::Rollback(args) => run(args.run, Goal::Rollback { to: args.to }, cache, state_dir.as_deref()),
        Command::Resume(args) => {
            let run_args = RunArgs {
                app: args.app,
                strategy: None,
                platform: None,
                scenario: None,
                json: args.json,
                dry_run: false,
                access_token: args.access_token,
            };
            run(run_args, Goal::Resume, cache, state_dir.as_deref())
        }
        Command::Releases { app, json } => releases(&app, state_dir.as_deref(), json),
        Command::Status(args) => status::run(args, state_dir.as_deref()),
        Command::Promote { gate, app } => promote(&app, state_dir.as_deref(), gate.as_deref()),
        Command::Local(cmd) => local(cmd, state_dir.as_deref()),
        Command::Demo(args) => demo(args, cache, state_dir.as_deref()),
        Command::Logs { app, machine, tail } => logs(&app, state_dir.as_deref(), machine.as_deref(), tail),
        Command::Strategies { json } => {
            with_runtime(cache, false, |rt| async move { strategies(&rt, json).await })
        }
        Command::Verify(args) => with_runtime(cache, true, |rt| async move { verify::run(&rt, args).await }),
        Command::Inspect { file, json } => {
            with_runtime(cache, false, |rt| async move { inspect(&rt, &file, json).await })
        }
        Command::New { name, lang, dir } => new_project(cutover_scaffold::NewProject { name, lang, dir }),
        Command::Build { dir } => build_project(&dir),
    };
    ExitCode::from(code)
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("cutover={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A tokio runtime: the simulator's runs on one thread with paused (virtual) time; the others talk to
/// real servers. On failure, says so and returns the exit code.
fn tokio_runtime(paused: bool) -> Result<tokio::runtime::Runtime, u8> {
    let rt = if paused {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    };
    rt.map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::PLATFORM
    })
}

/// Build a tokio runtime (paused time for the simulator) and the component runtime, then run `f`.
fn with_runtime<F, Fut>(cache: ComponentCache, paused: bool, f: F) -> u8
where
    F: FnOnce(Arc<Runtime>) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let rt = match tokio_runtime(paused) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match Runtime::new(cache) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("error: cannot start the component runtime: {e}");
            return exit::PLATFORM;
        }
    };
    rt.block_on(f(engine))
}

/// What the CLI was asked to run (the image of a deploy is optional: the config may give it).
enum Goal {
    Deploy { image: Option<String> },
    Rollback { to: Option<u64> },
    Resume,
}

/// `--version 3` or `--version v3`.
fn parse_version(s: &str) -> Result<u64, String> {
    s.trim_start_matches('v')
        .parse()
        .map_err(|_| format!("`{s}` is not a release version; expected a number such as 3 or v3"))
}

/// Load the config, printing its warnings; on error, print it with a hint and return the exit code.
fn load_config(path: &Path) -> Result<Config, u8> {
    match Config::load(path) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            Ok(c)
        }
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, cutover_config::ConfigError::Read { .. }) {
                eprintln!("hint: run from your app's folder, or pass --config path/to/fly.toml");
            }
            Err(exit::BAD_INPUT)
        }
    }
}

fn run(args: RunArgs, goal: Goal, cache: ComponentCache, state_dir: Option<&Path>) -> u8 {
    let config = match load_config(&args.app.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let state = StateDir::resolve(&config.path, state_dir);
    let (image, goal, resume) = match goal {
        Goal::Deploy { image } => (image, None, false),
        Goal::Rollback { to } => (None, Some(to), false),
        Goal::Resume => (None, None, true),
    };
    let overrides = Overrides {
        strategy: args.strategy,
        image,
        platform: args.platform,
        scenario: args.scenario,
        cutover_exe: std::env::current_exe().ok(),
        access_token: args.access_token.and_then(cutover_machines_api::Token::new),
    };
    // A resume, and a rollback after a crash, run on the platform the interrupted deploy ran on.
    let after_crash =
        (resume || goal == Some(None)).then(|| driver::interrupted_platform(&state, &config.app));
    let platform = after_crash.flatten().unwrap_or(overrides.platform.unwrap_or(config.cutover.platform));
    let simulated = platform == PlatformKind::Sim;
    let (json, dry_run) = (args.json, args.dry_run);
    with_runtime(cache, simulated, |runtime| async move {
        let sink: Arc<dyn EventSink> =
            if json { Arc::new(render::Json) } else { Arc::new(render::Human::new()) };
        let deploy =
            Deploy { config: &config, overrides: &overrides, runtime: &runtime, sink, state: Some(state) };
        if dry_run {
            return dry_run_report(&deploy, goal, json).await;
        }
        let result = match goal {
            _ if resume => deploy.resume().await,
            None => deploy.run().await,
            Some(to) => deploy.rollback(to).await,
        };
        match result {
            Ok(report) => {
                if !json {
                    render::summary(&report, simulated);
                }
                outcome_code(report.outcome)
            }
            Err(e) => not_started(&e),
        }
    })
}

/// `--dry-run`: print the plan (text or JSON) and return the exit code.
async fn dry_run_report(deploy: &Deploy<'_>, rollback: Option<Option<u64>>, json: bool) -> u8 {
    let goal = match rollback {
        Some(to) => driver::Goal::Rollback { to },
        None => match deploy.image() {
            Ok(image) => driver::Goal::Deploy { image },
            Err(e) => return not_started(&e),
        },
    };
    match deploy.dry_run(goal).await {
        Ok(plan) if json => {
            println!("{}", serde_json::to_string_pretty(&plan).unwrap_or_default());
            exit::SUCCESS
        }
        Ok(plan) => {
            print!("{}", plan.render());
            exit::SUCCESS
        }
        Err(e) => not_started(&e),
    }
}

/// The exit code of a deploy that ran.
fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Succeeded => exit::SUCCESS,
        Outcome::Failed => exit::DEPLOY_FAILED,
    }
}

/// Report a deploy that never started (nothing was changed) and return its exit code.
fn not_started(e: &driver::DeployError) -> u8 {
    eprintln!("error: {e}");
    eprintln!("nothing was changed");
    if e.is_bad_input() { exit::BAD_INPUT } else { exit::PLATFORM }
}

fn demo(args: DemoArgs, cache: ComponentCache, state_dir: Option<&Path>) -> u8 {
    let config = match load_config(&args.app.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let state = StateDir::resolve(&config.path, state_dir);
    let overrides = Overrides {
        strategy: args.strategy,
        platform: Some(PlatformKind::Local),
        cutover_exe: std::env::current_exe().ok(),
        ..Default::default()
    };
    let opts = driver::demo::DemoOptions {
        rate: args.rate,
        settle: std::time::Duration::from_secs(1),
        keep: args.keep,
    };
    let json = args.json;
    with_runtime(cache, false, |runtime| async move {
        let sink: Arc<dyn EventSink> =
            if json { Arc::new(cutover_core::events::Discard) } else { Arc::new(render::Human::new()) };
        match driver::demo::run(&config, &overrides, &runtime, sink, state, &opts).await {
            Ok(report) => {
                render::demo(&report, json);
                outcome_code(report.deploy.outcome)
            }
            Err(e) => not_started(&e),
        }
    })
}

/// `cutover new`: write the project and say what to do next.
fn new_project(req: cutover_scaffold::NewProject) -> u8 {
    match cutover_scaffold::create(&req) {
        Ok(created) => {
            let dir = created.dir.display();
            println!("Created {} strategy `{}` in {dir} ({} files)", req.lang, req.name, created.files);
            println!("Next:\n    cutover build {dir}\n    (then see {dir}/README.md to verify and use it)");
            exit::SUCCESS
        }
        Err(e) => scaffold_error(&e),
    }
}

/// `cutover build`: build the project and print where the component is.
fn build_project(dir: &Path) -> u8 {
    match cutover_scaffold::build(dir) {
        Ok(built) => {
            println!("Built {}: {} ({} bytes)", built.name, built.path.display(), built.size);
            exit::SUCCESS
        }
        Err(e) => scaffold_error(&e),
    }
}

/// Report a scaffolding error and return its exit code.
fn scaffold_error(e: &cutover_scaffold::ScaffoldError) -> u8 {
    eprintln!("error: {e}");
    if e.is_bad_input() { exit::BAD_INPUT } else { exit::DEPLOY_FAILED }
}

/// A multi-threaded tokio runtime for commands that talk to the local daemon (or are it).
fn block_on<F: std::future::Future<Output = u8>>(f: F) -> u8 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::PLATFORM
        }
    }
}

fn local(cmd: LocalCommand, state_dir: Option<&Path>) -> u8 {
    match cmd {
        LocalCommand::Serve { dir } => block_on(async move {
            match cutover_local::daemon::serve(&dir, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
            {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    exit::PLATFORM
                }
            }
        }),
        LocalCommand::Up { app } => {
            let state = match app_state(&app, state_dir) {
                Ok((_, state)) => state,
                Err(code) => return code,
            };
            let Ok(exe) = std::env::current_exe() else {
                eprintln!("error: cannot tell where the cutover binary is, to start the daemon");
                return exit::PLATFORM;
            };
            block_on(async move {
                match LocalDaemon::of(state.path()).ensure_running(&exe).await {
                    Ok(info) => {
                        println!(
                            "local daemon running at {} (pid {}); `cutover local down` stops it",
                            info.url, info.pid
                        );
                        exit::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}", e.message);
                        exit::PLATFORM
                    }
                }
            })
        }
        LocalCommand::Down { app } => {
            let state = match app_state(&app, state_dir) {
                Ok((_, state)) => state,
                Err(code) => return code,
            };
            block_on(async move {
                match LocalDaemon::of(state.path()).stop().await {
                    Ok(true) => {
                        println!("local daemon stopped, and every machine with it");
                        exit::SUCCESS
                    }
                    Ok(false) => {
                        println!("no local daemon was running for {}", state.path().display());
                        exit::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}", e.message);
                        exit::PLATFORM
                    }
                }
            })
        }
    }
}

fn logs(app: &AppArgs, state_dir: Option<&Path>, machine: Option<&str>, tail: Option<u64>) -> u8 {
    let (config, state) = match app_state(app, state_dir) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let overrides = Overrides { cutover_exe: std::env::current_exe().ok(), ..Default::default() };
    block_on(async move {
        let daemon = LocalDaemon::of(state.path());
        if daemon.running().await.is_none() {
            eprintln!(
                "error: no local daemon is running for {}; `cutover local up` starts one",
                state.path().display()
            );
            return exit::PLATFORM;
        }
        let platform = match driver::open_local(&config, &overrides, Some(&state)).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::PLATFORM;
            }
        };
        let ids: Vec<String> = match machine {
            Some(id) => vec![id.to_string()],
            None => match cutover_core::Platform::list(&*platform).await {
                Ok(ms) => ms.into_iter().map(|m| m.id).collect(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::PLATFORM;
                }
            },
        };
        let mut code = exit::SUCCESS;
        for id in ids {
            match platform.logs(&id, tail).await {
                Ok(text) => {
                    if machine.is_none() {
                        println!("==> machine {id}");
                    }
                    print!("{text}");
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code = exit::BAD_INPUT;
                }
            }
        }
        code
    })
}

/// The app's config and its state directory, or the exit code after printing why not.
fn app_state(app: &AppArgs, state_dir: Option<&Path>) -> Result<(Config, StateDir), u8> {
    let config = load_config(&app.config)?;
    let state = StateDir::resolve(&config.path, state_dir);
    Ok((config, state))
}

/// Open the journal of the app `app` names, or print why not.
fn open_journal(app: &AppArgs, state_dir: Option<&Path>) -> Result<(Config, Journal), u8> {
    let (config, state) = app_state(app, state_dir)?;
    match state.journal() {
        Ok(j) => Ok((config, j)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::PLATFORM)
        }
    }
}

fn releases(app: &AppArgs, state_dir: Option<&Path>, json: bool) -> u8 {
    let (config, journal) = match open_journal(app, state_dir) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match journal.releases(&config.app) {
        Ok(records) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&records).unwrap_or_default());
            } else {
                render::releases(&config.app, &records, journal.path());
            }
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::PLATFORM
        }
    }
}

fn promote(app: &AppArgs, state_dir: Option<&Path>, gate: Option<&str>) -> u8 {
    let (config, journal) = match open_journal(app, state_dir) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match journal.promote(&config.app, gate) {
        Ok((release, gate)) => {
            println!(
                "promoted gate `{gate}` of {}'s deploy #{} (v{}, {})",
                config.app, release.id, release.target.version, release.strategy
            );
            exit::SUCCESS
        }
        Err(JournalError::Refused(why)) => {
            eprintln!("error: {why}");
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::PLATFORM
        }
    }
}

async fn strategies(runtime: &Runtime, json: bool) -> u8 {
    let mut infos = Vec::new();
    for name in cutover_builtins::names() {
        match driver::resolve_strategy(runtime, &cutover_config::StrategyRef::BuiltIn(name.to_string())).await
        {
            Ok(s) => infos.push(s.info),
            Err(e) => {
                eprintln!("error: built-in strategy {name}: {e}");
                return exit::DEPLOY_FAILED;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&infos).unwrap_or_default());
    } else {
        for info in &infos {
            render::strategy_info(info);
        }
    }
    exit::SUCCESS
}

async fn inspect(runtime: &Runtime, file: &std::path::Path, json: bool) -> u8 {
    let strategy = cutover_config::StrategyRef::File(file.to_path_buf());
    match driver::resolve_strategy(runtime, &strategy).await {
        Ok(s) => {
            // Resolving read the file already; reading it again keeps the toolchain scan off `load`.
            let toolchain = cutover_runtime::toolchain::detect(&std::fs::read(file).unwrap_or_default());
            if json {
                let v = serde_json::json!({
                    "file": file,
                    "size_bytes": s.component.size,
                    "blake3": hex::encode(s.component.hash),
                    "contract_version": s.component.world.contract_version,
                    "toolchain": toolchain,
                    "imports": s.component.world.imports,
                    "exports": s.component.world.exports,
                    "strategy": s.info,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                render::inspect(file, &s, &toolchain);
            }
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
