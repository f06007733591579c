//! The commands about strategies rather than deploys: `cutover strategies`, `inspect`, `verify`,
//! `new` and `build`.

use super::args::VerifyArgs;
use super::exit::{Error, Exit};
use super::out::{out, outln};
use super::render;
use super::run::{Context, cwd};
use cutover_config::StrategyRef;
use cutover_driver::resolve_strategy;
use std::path::Path;

pub(crate) fn strategies(ctx: &Context, json: bool) -> Result<Exit, Error> {
    ctx.with_runtime(false, |runtime| async move {
        let mut infos = Vec::new();
        for name in cutover_builtins::names() {
            let s = resolve_strategy(&runtime, &StrategyRef::BuiltIn(name.to_string()))
                .await
                .map_err(|error| Error::BrokenBuiltin { name: name.to_string(), error: Box::new(error) })?;
            infos.push(s.info);
        }
        if json {
            outln!("{}", serde_json::to_string_pretty(&infos).unwrap_or_default());
        } else {
            for info in &infos {
                render::strategy_info(info);
            }
        }
        Ok(Exit::Success)
    })
}

pub(crate) fn inspect(ctx: &Context, file: &Path, json: bool) -> Result<Exit, Error> {
    ctx.with_runtime(false, |runtime| async move {
        let s = resolve_strategy(&runtime, &StrategyRef::File(file.to_path_buf()))
            .await
            .map_err(Error::strategy)?;
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
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            render::inspect(file, &s, &toolchain);
        }
        Ok(Exit::Success)
    })
}

/// Run verify on a paused clock: the conformance scenarios run on the simulator.
pub(crate) fn verify(ctx: &Context, args: VerifyArgs) -> Result<Exit, Error> {
    ctx.with_runtime(true, |runtime| async move {
        let strategy = StrategyRef::parse(&args.strategy, &cwd());
        let resolved = resolve_strategy(&runtime, &strategy).await.map_err(Error::strategy)?;
        let opts = cutover_verify::Options {
            allow_downtime: args.allow_downtime,
            allow_standby: args.allow_standby,
            ..Default::default()
        };
        let report = if args.scenario.is_empty() {
            let specs = if args.sweep { cutover_verify::sweep() } else { cutover_verify::scenarios() };
            cutover_verify::verify_scenarios(&runtime, &resolved.component, &resolved.info, &opts, specs)
                .await?
        } else {
            let files = args
                .scenario
                .iter()
                .map(|p| cutover_verify::FileScenario::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let (component, info) = (&resolved.component, &resolved.info);
            cutover_verify::verify_files(&runtime, component, info, &opts, files, cutover_config::param_value)
                .await?
        };
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        } else if args.sweep {
            out!("{}", report.sweep_text());
        } else {
            out!("{}", report.text());
        }
        let ok = if args.sweep { report.clean_endings() == report.scenarios.len() } else { report.passed() };
        Ok(if ok { Exit::Success } else { Exit::Failed })
    })
}

/// `cutover new`: write the project and say what to do next.
pub(crate) fn new_project(req: cutover_scaffold::NewProject) -> Result<Exit, Error> {
    let created = cutover_scaffold::create(&req)?;
    let dir = created.dir.display();
    outln!("Created {} strategy `{}` in {dir} ({} files)", req.lang, req.name, created.files);
    outln!("Next:\n    cutover build {dir}\n    (then see {dir}/README.md to verify and use it)");
    Ok(Exit::Success)
}

/// `cutover build`: build the project and print where the component is.
pub(crate) fn build_project(dir: &Path) -> Result<Exit, Error> {
    let built = cutover_scaffold::build(dir)?;
    outln!("Built {}: {} ({} bytes)", built.name, built.path.display(), built.size);
    Ok(Exit::Success)
}

/// The hidden `compile-component` command: compile one component for the parent process that runs
/// it (see `cutover_runtime::compile`). Its error goes to stderr, which the parent reads.
pub(crate) fn compile_component(input: &Path, output: &Path) -> Result<Exit, Error> {
    cutover_runtime::compile::compile_file(input, output)
        .map(|()| Exit::Success)
        .map_err(|e| Error::Startup(format!("{e:#}")))
}
