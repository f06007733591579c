//! A release's timeline as a picture, drawn from its journal alone: one lane per machine coloured by
//! release and state, the phases as bands, the traffic split over time, the traffic readings the deploy
//! took (request rate, error rate, p99 per release), and where and why a failed release failed. Past
//! [`Options::max_lanes`] machines the lanes become counts per release and state, stacked.
//!
//! Drawn with plotters' SVG backend; [`html`] wraps the SVG in a small self-contained page with the
//! release's facts. The journal is the only input, so a picture can be drawn of any release, on any
//! machine, long after the deploy (and the same code serves `cutover report`, `cutover demo` and the
//! dashboard).

pub mod timeline;

mod draw;
mod html;

use cutover_core::events::Event;
use cutover_journal::ReleaseRecord;
use std::path::Path;

pub use timeline::{Timeline, build as timeline};

/// How a picture is drawn.
#[derive(Debug, Clone)]
pub struct Options {
    /// Width of the picture in pixels (its height follows from what it shows).
    pub width: u32,
    /// Most machines drawn as a lane each; past it, counts per release and state are stacked.
    pub max_lanes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { width: 1200, max_lanes: 60 }
    }
}

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The drawing library failed (it writes into memory, so this is a bug rather than the disk).
    #[error("drawing the timeline failed: {0}")]
    Draw(String),
    /// The output file's name ends in neither `.svg` nor `.html`.
    #[error(
        "{path}: cannot tell the picture's format from the name: expected a name ending in .svg or .html"
    )]
    UnknownFormat {
        /// The file named.
        path: String,
    },
    /// The release asked for is not in the journal.
    #[error("{app} has no release {asked} in the journal{known}")]
    NoRelease {
        /// The app.
        app: String,
        /// What was asked for, as given (`7`, `#7`, `v3`), or `yet` when the app has none at all.
        asked: String,
        /// What there is instead, as a sentence tail ("; its releases are #1 to #4, run `cutover releases`").
        known: String,
    },
    /// A release was named in a way that names none (`seven`).
    #[error(
        "cannot read release `{0}`: expected its number as `cutover releases` shows it (`7` or `#7`) or its version (`v3`)"
    )]
    BadRelease(String),
    /// The picture could not be written.
    #[error("cannot write the picture to {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why, as the system said.
        message: String,
    },
}

impl ReportError {
    /// Whether the error is the user's input (a release, a file name) rather than cutover's.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Draw(_))
    }
}

/// The release `asked` names among `records` (an app's releases, oldest first): its number (`7`, `#7`),
/// its version (`v3`: the latest release of that version), or without `asked` the latest release.
pub fn pick<'a>(
    app: &str,
    records: &'a [ReleaseRecord],
    asked: Option<&str>,
) -> Result<&'a ReleaseRecord, ReportError> {
    let known = match (records.first(), records.last()) {
        (Some(a), Some(b)) => format!("; its releases are #{} to #{} (see `cutover releases`)", a.id, b.id),
        _ => String::new(),
    };
    let missing =
        |asked: &str| ReportError::NoRelease { app: app.into(), asked: asked.into(), known: known.clone() };
    let Some(asked) = asked.map(str::trim) else {
        return records.last().ok_or_else(|| missing("yet"));
    };
    let found = if let Some(v) = asked.strip_prefix(['v', 'V']) {
        let v: u64 = v.parse().map_err(|_| ReportError::BadRelease(asked.into()))?;
        records.iter().rev().find(|r| r.target.version == v)
    } else {
        let id: i64 =
            asked.trim_start_matches('#').parse().map_err(|_| ReportError::BadRelease(asked.into()))?;
        records.iter().find(|r| r.id == id)
    };
    found.ok_or_else(|| missing(asked))
}

/// Draw `release` in the format `path` names and write it there; the machines it shows.
pub fn write(
    path: &Path,
    release: &ReleaseRecord,
    events: &[Event],
    opts: &Options,
) -> Result<usize, ReportError> {
    let format = Format::of(path)?;
    let t = timeline::build(events);
    let svg = draw::svg(release, &t, opts)?;
    let picture = match format {
        Format::Svg => svg,
        Format::Html => html::page(release, &t, &svg),
    };
    std::fs::write(path, &picture)
        .map_err(|e| ReportError::Write { path: path.display().to_string(), message: e.to_string() })?;
    Ok(t.lanes.len())
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>> for ReportError {
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        Self::Draw(e.to_string())
    }
}

/// What kind of file a picture is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A standalone SVG document.
    Svg,
    /// The SVG inside a small HTML page with the release's facts.
    Html,
}

impl Format {
    /// The format a file's extension names (`.svg`, `.html` or `.htm`, any case).
    pub fn of(path: &Path) -> Result<Self, ReportError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Self::Svg),
            Some("html" | "htm") => Ok(Self::Html),
            _ => Err(ReportError::UnknownFormat { path: path.display().to_string() }),
        }
    }
}

/// The timeline of `release` (whose journaled events are `events`) as an SVG document.
pub fn svg(release: &ReleaseRecord, events: &[Event], opts: &Options) -> Result<String, ReportError> {
    draw::svg(release, &timeline::build(events), opts)
}

/// The timeline of `release` as a self-contained HTML page: the SVG and the release's facts.
pub fn html(release: &ReleaseRecord, events: &[Event], opts: &Options) -> Result<String, ReportError> {
    let t = timeline::build(events);
    let picture = draw::svg(release, &t, opts)?;
    Ok(html::page(release, &t, &picture))
}

/// The picture in `format`.
pub fn render(
    release: &ReleaseRecord,
    events: &[Event],
    opts: &Options,
    format: Format,
) -> Result<String, ReportError> {
    match format {
        Format::Svg => svg(release, events, opts),
        Format::Html => html(release, events, opts),
    }
}

#[cfg(test)]
mod tests;
