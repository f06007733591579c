//! The `cutover` command line: arguments in, output and an exit code out.
//!
//! [`try_main`] parses the arguments and runs one command; each command reads the config, resolves
//! where it runs ([`cutover_driver::Target`], decided once), builds the runtimes that target needs
//! and calls the driver. It never opens a platform itself. Whatever goes wrong comes back as an
//! [`exit::Error`], which [`exit::report`] prints and maps to the documented exit code.
//!
//! - `args`: every command and flag (clap). `exit`: exit codes and the one error report.
//! - `run`: the tokio and component runtimes, the config and the target of a command.
//! - `deploy`, `journal`, `local`, `strategy`, `status`, `dashboard`, `report`: the commands. `render`: what people read.
//! - `out`: writes to stdout and stderr that survive either going away (a closed pipe, a hang-up).

mod args;
mod dashboard;
mod deploy;
pub mod exit;
mod journal;
mod local;
mod out;
mod render;
mod report;
mod run;
mod status;
mod strategy;

use args::{Cli, Command};
use clap::Parser;
use exit::{Error, Exit};

/// Run the command line: `Ok` is how the command ended, `Err` why it could not do its work (the
/// caller prints it with [`exit::report`]).
pub fn try_main() -> Result<Exit, Error> {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let ctx = run::Context {
        cache_dir: cli.cache_dir,
        state_dir: cli.state_dir,
        compile_timeout: cli.compile_timeout,
    };
    match cli.command {
        Command::Deploy(args) => deploy::deploy(&ctx, args),
        Command::Rollback(args) => deploy::rollback(&ctx, args),
        Command::Resume(args) => deploy::resume(&ctx, args),
        Command::Demo(args) => deploy::demo(&ctx, args),
        Command::Releases { app, json } => journal::releases(&ctx, &app, json),
        Command::Promote { gate, app } => journal::promote(&ctx, &app, gate.as_deref()),
        Command::Abort { app } => journal::abort(&ctx, &app),
        Command::Dashboard(args) => dashboard::dashboard(&ctx, args),
        Command::Status(args) => status::status(&ctx, args),
        Command::Report { release, out, app } => report::report(&ctx, &app, release.as_deref(), &out),
        Command::Local(cmd) => local::local(&ctx, cmd),
        Command::Journal(args::JournalCommand::Migrate { to, app }) => journal::migrate(&ctx, &app, &to),
        Command::Logs { app, machine, tail } => local::logs(&ctx, &app, machine.as_deref(), tail),
        Command::Strategies { json } => strategy::strategies(&ctx, json),
        Command::Verify(args) => strategy::verify(&ctx, args),
        Command::Inspect { file, json } => strategy::inspect(&ctx, &file, json),
        Command::New { name, lang, dir } => {
            strategy::new_project(cutover_scaffold::NewProject { name, lang, dir })
        }
        Command::Build { dir } => strategy::build_project(&dir),
        Command::CompileComponent { input, output } => strategy::compile_component(&input, &output),
    }
}

/// `-v` and `CUTOVER_LOG` set how much cutover logs, on stderr.
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

#[cfg(test)]
mod tests {
    use super::args::Cli;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
