//! `cutover report`: one release's timeline picture, from the journal alone; and the picture
//! `cutover demo` ends with.

use super::args::AppArgs;
use super::exit::{Error, Exit};
use super::out::outln;
use super::run::Context;
use cutover_driver::Journal;
use cutover_report::Options;
use std::path::{Path, PathBuf};

pub(crate) fn report(ctx: &Context, app: &AppArgs, release: Option<&str>, out: &Path) -> Result<Exit, Error> {
    // The name is checked before the journal is opened: a typo costs nothing.
    cutover_report::Format::of(out)?;
    let config = ctx.config(app)?;
    let journal = ctx.state(&config).journal()?;
    let (id, machines) = picture(&journal, &config.app, release, out)?;
    outln!("wrote the timeline of {}'s release #{id} ({machines} machines) to {}", config.app, out.display());
    Ok(Exit::Success)
}

/// Draw `release` of `app` (default: the latest) into `out`: the release's number and its machines.
fn picture(journal: &Journal, app: &str, release: Option<&str>, out: &Path) -> Result<(i64, usize), Error> {
    let records = journal.releases(app)?;
    let record = cutover_report::pick(app, &records, release)?;
    let events = journal.events_with_samples(record.id)?;
    let machines = cutover_report::write(out, record, &events, &Options::default())?;
    Ok((record.id, machines))
}

/// The picture of release `id` written into the state directory (`release-<id>.svg`), for `cutover
/// demo` to end with; `None` (and a warning) when it could not be made: the demo's outcome stands.
pub(crate) fn demo_picture(ctx: &Context, config: &cutover_config::Config, id: i64) -> Option<PathBuf> {
    let state = ctx.state(config);
    let out = state.path().join(format!("release-{id}.svg"));
    let made = state
        .journal()
        .map_err(Error::from)
        .and_then(|j| picture(&j, &config.app, Some(&id.to_string()), &out));
    match made {
        Ok(_) => Some(out),
        Err(e) => {
            tracing::warn!("the release's picture could not be drawn: {e}");
            None
        }
    }
}
