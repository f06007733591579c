//! `cutover verify`: resolve the strategy, run the conformance scenarios, print the report.

use super::exit;
use cutover_config::StrategyRef;
use cutover_driver as driver;
use cutover_runtime::Runtime;
use clap::Args;

#[derive(Args)]
pub struct VerifyArgs {
    /// The strategy: a path to its .wasm component, or a built-in name.
    strategy: String,
    /// The strategy does not promise availability (like `immediate`): skip the capacity invariant and
    /// accept success for a release that cannot pass its checks.
    #[arg(long)]
    allow_downtime: bool,
    /// The strategy keeps the release it replaces as stopped machines, so that `cutover rollback` is a
    /// switch (like bluegreen's `retain_blue`): stopped machines of that release left at the end are
    /// standbys, not leftovers.
    #[arg(long)]
    allow_standby: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Run verify on a paused clock and return the exit code.
pub async fn run(runtime: &Runtime, args: VerifyArgs) -> u8 {
    let strategy = StrategyRef::parse(&args.strategy, &std::env::current_dir().unwrap_or_default());
    let resolved = match driver::resolve_strategy(runtime, &strategy).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let opts = cutover_verify::Options {
        allow_downtime: args.allow_downtime,
        allow_standby: args.allow_standby,
        ..Default::default()
    };
    let report = match cutover_verify::verify(runtime, &resolved.component, &resolved.info, &opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.text());
    }
    if report.passed() { exit::SUCCESS } else { exit::DEPLOY_FAILED }
}
