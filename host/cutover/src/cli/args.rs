//! The command line's shape: every command, argument and help text, and nothing that runs them.

use clap::{Args, Parser, Subcommand};
use cutover_config::PlatformKind;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cutover",
    version,
    about = "Zero-downtime deploys whose strategies are sandboxed WebAssembly components",
    long_about = "Zero-downtime deploys whose strategies are sandboxed WebAssembly components.\n\n\
        cutover reads your fly.toml as is. `[deploy] strategy` picks a built-in strategy by name or \
        your own by a path to its .wasm; cutover runs it in a sandbox that can reach nothing but the \
        fleet operations the host hands it.\n\n\
        Exit codes: 0 deployed, 1 deploy failed, 2 bad input (nothing changed), 3 platform unreachable, 4 \
        cutover could not start.",
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
        cutover abort -c examples/app/fly.toml                    fail that gate: the canary is undone\n  \
        cutover dashboard -c examples/app/fly.toml                the same on a web page, live\n  \
        cutover strategies                                        what is built in\n  \
        cutover inspect my-strategy.wasm                          what a component is\n  \
        cutover new my-strategy --lang rust                       start a strategy of your own\n  \
        cutover build my-strategy                                 build it into a component\n  \
        cutover verify my-strategy.wasm                           conformance scenarios and invariants"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Where compiled components are cached [default: ~/.cache/cutover/components].
    #[arg(long, global = true, env = "CUTOVER_CACHE_DIR", value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// The app's state: journal of releases, the simulator's fleet [default: .cutover/ beside fly.toml].
    #[arg(long, global = true, env = "CUTOVER_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// How long compiling one strategy component may take before the compiler is stopped (e.g. 30s)
    /// [default: `[cutover.limits] compile_timeout`, else 120s]. A cached component compiles nothing.
    #[arg(long, global = true, env = "CUTOVER_COMPILE_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    pub(crate) compile_timeout: Option<std::time::Duration>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Take up a deploy whose `cutover` process died (killed, crashed, CI job cancelled), or finish
    /// the leftovers of a deploy that succeeded.
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
    ///
    /// With no interrupted deploy, it finishes the leftovers: machines a deploy tagged
    /// `cutover_leftover` because the platform refused to clean them up (stopped, destroyed as each
    /// tag says; the journal's record cleared). Exit 1 when some are still left.
    Resume(ResumeArgs),
    /// List the app's releases: version, strategy, outcome and duration, from the journal.
    Releases {
        #[command(flatten)]
        app: AppArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Draw one release's timeline from the journal: a lane per machine by release and state, the
    /// phases, the traffic split, and the traffic readings the deploy took.
    ///
    /// RELEASE is its number as `cutover releases` shows it (`7` or `#7`) or its version (`v3`); by
    /// default the app's latest release. The file's name says what to write: `.svg` a picture, `.html`
    /// the picture in a page with the release's facts. Past 60 machines the lanes become counts per
    /// release and state. Exit codes: 0 written; 2 no such release, a name ending in neither, or a file
    /// that cannot be written.
    Report {
        /// The release [default: the latest].
        release: Option<String>,
        /// Where to write it: FILE.svg or FILE.html.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        app: AppArgs,
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
    Status(StatusArgs),
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
    /// Stop a deploy waiting at a manual gate: the gate fails, so the strategy undoes what it did.
    ///
    /// Run it from another terminal while `cutover deploy` waits (canary's `manual_gates`): the canary
    /// machines are removed and the fleet stays on the release it ran, and the deploy ends as failed. A
    /// deploy that is not waiting at a gate is not aborted (stop its process, then `cutover rollback`).
    Abort {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Serve a web page of the app's releases and its running deploy, with Promote, Abort and Roll back.
    ///
    /// Listens on 127.0.0.1 and prints the page's address with a random token (`?token=…`): only who
    /// holds it may look or act, and only from the page itself. The page shows what the journal
    /// holds, live; its buttons do what `cutover promote`, `cutover abort` and `cutover rollback` do.
    /// Ctrl-C stops it.
    Dashboard(DashboardArgs),
    /// The local platform: your app's machines as real processes behind a proxy on this computer.
    #[command(subcommand)]
    Local(LocalCommand),
    /// The journal itself: move it to a PostgreSQL database the team shares.
    #[command(subcommand)]
    Journal(JournalCommand),
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
    /// (not a component, another contract version, a parameter without default); 4 cutover could not
    /// start its runtime.
    Verify(VerifyArgs),
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
    /// Internal: compile the component in INPUT to an artifact in OUTPUT. cutover runs itself with
    /// this in a child process, so the compile deadline can stop a compile by killing it.
    #[command(name = "compile-component", hide = true)]
    CompileComponent {
        /// The component.
        input: PathBuf,
        /// Where the compiled artifact goes.
        output: PathBuf,
    },
}

/// A duration as fly.toml writes one ("30s", "2m", "500ms"), and above zero.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    let d = cutover_core::duration::parse(text)?;
    if d.is_zero() {
        return Err("expected a duration above zero, such as \"120s\"".into());
    }
    Ok(d)
}

/// Which app: its config.
#[derive(Args)]
pub(crate) struct AppArgs {
    /// The app's fly.toml (cutover options in its [cutover] table or in cutover.toml beside it).
    #[arg(long, short = 'c', default_value = "fly.toml", value_name = "PATH")]
    pub(crate) config: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum JournalCommand {
    /// Copy the SQLite journal of the state directory into an empty PostgreSQL journal, keeping
    /// release numbers, events and promotions (one transaction: all or nothing).
    ///
    /// Then point every runner at it with `[cutover] journal` or `CUTOVER_JOURNAL_URL`. The file is
    /// left as it was.
    Migrate {
        /// The PostgreSQL journal, postgres://user:password@host:port/database (its password is never
        /// printed; from the environment it stays out of `ps`).
        #[arg(long, value_name = "URL", env = "CUTOVER_JOURNAL_URL", hide_env_values = true)]
        to: String,
        #[command(flatten)]
        app: AppArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum LocalCommand {
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
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Image to deploy [default: [build] image of the config].
    #[arg(long, value_name = "IMAGE")]
    pub(crate) image: Option<String>,
    /// Do not run `[deploy] release_command` before the deploy (the journal records that it was skipped).
    #[arg(long)]
    pub(crate) skip_release_command: bool,
}

#[derive(Args)]
pub(crate) struct DashboardArgs {
    #[command(flatten)]
    pub(crate) app: AppArgs,
    /// The port on 127.0.0.1 [default: any free one].
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) app: AppArgs,
    /// Strategy: a built-in name (see `cutover strategies`) or a path to a .wasm component.
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) strategy: Option<String>,
    /// Requests per second through the proxy during the deploy.
    #[arg(long, default_value_t = 200)]
    pub(crate) rate: u32,
    /// Leave the daemon and the app running afterwards (`cutover local down` stops them).
    #[arg(long)]
    pub(crate) keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct ResumeArgs {
    #[command(flatten)]
    pub(crate) app: AppArgs,
    /// Print one JSON event per line instead of human progress.
    #[arg(long)]
    pub(crate) json: bool,
    /// Fly.io API token (`fly tokens create deploy`) [default: $FLY_API_TOKEN]. Never printed.
    #[arg(long, env = "FLY_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) access_token: Option<String>,
}

#[derive(Args)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// The release to return to, e.g. `--to 3` (or `v3`) [default: the one the current release replaced].
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    pub(crate) to: Option<u64>,
}

/// What deploy and rollback share.
#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) app: AppArgs,
    /// Strategy: a built-in name (see `cutover strategies`) or a path to a .wasm component.
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) strategy: Option<String>,
    /// Where the machines live [default: [cutover] platform, else sim].
    #[arg(long, value_enum)]
    pub(crate) platform: Option<PlatformKind>,
    /// Simulator scenario file: starting fleet, latencies, faults [default: [cutover.sim] scenario].
    #[arg(long, value_name = "PATH")]
    pub(crate) scenario: Option<PathBuf>,
    /// Print one JSON event per line instead of human progress.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print what the deploy would do (machines, releases, strategy, missing capabilities) and change
    /// nothing: only read-only calls reach the platform.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Fly.io API token (`fly tokens create deploy`) [default: $FLY_API_TOKEN]. Never printed.
    #[arg(long, env = "FLY_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) access_token: Option<String>,
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) app: AppArgs,
    /// Where the machines live [default: where the app's latest release ran, else [cutover] platform,
    /// else sim].
    #[arg(long, value_enum)]
    pub(crate) platform: Option<PlatformKind>,
    /// Simulator scenario file, as you deploy with it [default: [cutover.sim] scenario]: the simulated
    /// fleet kept between runs belongs to one scenario's fleet and seed.
    #[arg(long, value_name = "PATH")]
    pub(crate) scenario: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Fly.io API token (`fly tokens create deploy`) [default: $FLY_API_TOKEN]. Never printed.
    #[arg(long, env = "FLY_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) access_token: Option<String>,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The strategy: a path to its .wasm component, or a built-in name.
    pub(crate) strategy: String,
    /// The strategy does not promise availability (like `immediate`): skip the capacity invariant and
    /// accept success for a release that cannot pass its checks.
    #[arg(long)]
    pub(crate) allow_downtime: bool,
    /// The strategy keeps the release it replaces as stopped machines, so that `cutover rollback` is a
    /// switch (like bluegreen's `retain_blue`): stopped machines of that release left at the end are
    /// standbys, not leftovers.
    #[arg(long)]
    pub(crate) allow_standby: bool,
    /// Instead of the conformance scenarios, run these scenario files: a simulator scenario (as
    /// `cutover deploy --scenario` takes) with a `[verify]` table: `expect = "fail"` or `"succeed"`,
    /// and `params = { ... }` set on top of the strategy's defaults (e.g. the canary's metric gate and
    /// the `[[metrics]]` it judges; see examples/app/scenarios/canary-metrics-*.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "sweep")]
    pub(crate) scenario: Vec<PathBuf>,
    /// Instead of the conformance scenarios, run the fixed flaky-platform sweep (seeds 1-24 x fleets of
    /// 1-30 machines x 10-40% API errors, 2% of calls hanging 30 s) and report the share of runs that
    /// end clean: one release, all serving, nothing cordoned, stopped or left over.
    #[arg(long)]
    pub(crate) sweep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--version 3` or `--version v3`.
pub(crate) fn parse_version(s: &str) -> Result<u64, String> {
    s.trim_start_matches('v')
        .parse()
        .map_err(|_| format!("`{s}` is not a release version; expected a number such as 3 or v3"))
}
