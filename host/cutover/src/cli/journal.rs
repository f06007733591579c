//! `cutover releases`, `cutover promote`, `cutover abort` and `cutover journal migrate`: the commands that read or
//! write the journal alone.

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
        render::releases(&config.app, &records, journal.location());
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

pub(crate) fn abort(ctx: &Context, app: &AppArgs) -> Result<Exit, Error> {
    let config = ctx.config(app)?;
    let journal = ctx.state(&config).journal()?;
    let (release, gate) = journal.abort(&config.app)?;
    outln!(
        "aborting {}'s deploy #{} (v{}, {}) at manual gate `{gate}`: its strategy undoes what it did",
        config.app,
        release.id,
        release.target.version,
        release.strategy
    );
    Ok(Exit::Success)
}

pub(crate) fn migrate(ctx: &Context, app: &AppArgs, to: &str) -> Result<Exit, Error> {
    let config = ctx.config(app)?;
    // The source is always the state directory's file, whatever journal the config names.
    let dir = ctx.state(&config).with_journal(None);
    if !dir.has_journal() {
        return Err(cutover_driver::JournalError::Refused(format!(
            "there is no journal to migrate: {} does not exist (`--state-dir` names another state directory)",
            dir.journal_location()
        ))
        .into());
    }
    let from = dir.journal()?;
    let into = cutover_driver::Journal::connect(to)?;
    let copied = from.migrate_to(&into)?;
    outln!(
        "copied {} release(s), {} event(s) and {} promotion(s) from {} to {}; point every runner at it with \
         [cutover] journal or CUTOVER_JOURNAL_URL",
        copied.releases,
        copied.events,
        copied.promotions,
        from.location(),
        into.location()
    );
    Ok(Exit::Success)
}
