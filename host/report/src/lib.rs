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
