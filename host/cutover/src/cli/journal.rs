//! `cutover releases` and `cutover promote`: the commands that read or write the journal alone.

use super::args::AppArgs;
use super::exit::{Error, Exit};
use super::out::outln;
use super::render;
use super::run::Context;

pub(crate) fn releases(ctx: &Context, app: &AppArgs, json: bool) -> Result<Exit, Error> {
    let config = ctx.config(app)?;
    let journal = ctx.state(&config).journal()?;
    let records = journal.releases(&config.app)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&records).unwrap_or_default());
    } else {
        render::releases(&config.app, &records, journal.path());
    }
    Ok(Exit::Success)
}

pub(crate) fn promote(ctx: &Context, app: &AppArgs, gate: Option<&str>) -> Result<Exit, Error> {
    let config = ctx.config(app)?;
    let journal = ctx.state(&config).journal()?;
    let (release, gate) = journal.promote(&config.app, gate)?;
    outln!(
        "promoted gate `{gate}` of {}'s deploy #{} (v{}, {})",
        config.app,
        release.id,
        release.target.version,
        release.strategy
    );
    Ok(Exit::Success)
}
