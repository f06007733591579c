//! `cutover dashboard`: a web page, served on loopback, of an app's releases and its running deploy,
//! with the buttons a person at a manual gate needs — Promote, Abort, Roll back.
//!
//! Everything it shows comes from the journal (SQLite beside the app or the team's PostgreSQL), polled
//! and pushed to the page as server-sent events; everything it does is what the `cutover` command does:
//! Promote and Abort write the journal as `cutover promote` and `cutover abort` do, and Roll back runs
//! `cutover rollback` as a process of its own. The page is plain HTML and one small script, compiled
//! into the binary: nothing to build, nothing fetched from elsewhere.
//!
//! - `auth`: the token, and refusing other hosts, origins and sites.
//! - `live`: the page's state, rebuilt from the journal's events.
//! - `server`: the routes, the event stream and the actions.

mod auth;
pub mod live;
mod server;

pub use auth::{COOKIE, HEADER, new_token};
pub use server::serve;

use cutover_journal::Journal;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

/// Draws a release's timeline picture (SVG) from the journal: `(journal, release id)`.
pub type Picture = Arc<dyn Fn(&Journal, i64) -> Result<String, String> + Send + Sync>;

/// What one dashboard serves.
#[derive(Clone)]
pub struct Dashboard {
    /// The app, as its config names it.
    pub app: String,
    /// The app's journal.
    pub journal: Journal,
    /// How to run `cutover rollback` for the app.
    pub rollback: Command,
    /// The timeline picture of a release, when this build can draw one.
    pub picture: Option<Picture>,
}

/// A command to run (the `cutover` binary with its arguments), and where its output goes.
#[derive(Debug, Clone)]
pub struct Command {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The directory its output (stdout and stderr) is written to, one file per run.
    pub log_dir: PathBuf,
}

/// The address `cutover dashboard` prints: the page, with its token.
pub fn url(port: u16, token: &str) -> String {
    format!("http://127.0.0.1:{port}/?token={token}")
}
