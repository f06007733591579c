//! The routes: the page and its script, the app's state as JSON and as a stream of server-sent
//! events, a release's picture, and the three actions.

use crate::auth::{self, COOKIE};
use crate::{Command, Dashboard, live};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the event stream reads the journal: a deploy's steps take seconds, and a read is one
/// query per table.
const POLL: Duration = Duration::from_millis(400);

/// How long Roll back waits for `cutover rollback` to fail at once (bad input, a deploy running)
/// before it answers that the rollback is under way.
const EARLY_EXIT: Duration = Duration::from_secs(3);

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Headers every answer carries: no framing (a page cannot overlay the buttons), nothing but our own
/// script and style, no referrer (the first address holds the token).
const SECURITY: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

struct App {
    dashboard: Dashboard,
    token: String,
    port: u16,
}

/// Serve `dashboard` on `listener` (bound to loopback) until the process ends, admitting `token`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dashboard: Dashboard,
    token: String,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let app = Arc::new(App { dashboard, token, port });
    let router = axum::Router::new()
        .route("/", get(page))
        .route(
            "/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/api/state", get(state))
        .route("/api/events", get(events))
        .route("/api/releases/{id}/timeline.svg", get(picture))
        .route("/api/promote", post(promote))
        .route("/api/abort", post(abort))
        .route("/api/rollback", post(rollback))
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app);
    axum::serve(listener, router).await
}

/// In front of every route: a refused request never reaches a handler.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // Only the page itself takes the token from the address (and trades it for the cookie).
    let query = Query::<PageQuery>::try_from_uri(req.uri()).ok().and_then(|Query(q)| q.token);
    let query_token = query.as_deref().filter(|_| req.uri().path() == "/");
    let mut response = match auth::refusal(req.headers(), req.method(), app.port, &app.token, query_token) {
        Some((status, message)) => {
            tracing::warn!("refused {} {}: {status}", req.method(), req.uri().path());
            (status, Json(json!({ "error": message }))).into_response()
        }
        None => next.run(req).await,
    };
    for (name, value) in SECURITY {
        response.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    response
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
}

/// The page; the first visit (with `?token=`) sets the cookie and comes back without the token.
async fn page(State(app): State<Arc<App>>, Query(q): Query<PageQuery>) -> Response {
    if q.token.is_some() {
        let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", app.token);
        let mut r = Redirect::to("/").into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], PAGE)
        .into_response()
}

/// An error as the page shows it.
fn failed(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

/// Read the app's state off the async threads (both journal clients block).
async fn read(app: &Arc<App>) -> Result<live::Snapshot, String> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || live::snapshot(&app.dashboard.journal, &app.dashboard.app))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn state(State(app): State<Arc<App>>) -> Response {
    match read(&app).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => failed(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// The app's state whenever it changes (and once at the start); `problem` events while the journal
/// cannot be read, so the page says so instead of going quiet.
async fn events(State(app): State<Arc<App>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold((app, None::<String>), |(app, last)| async move {
        loop {
            if last.is_some() {
                tokio::time::sleep(POLL).await;
            }
            let (name, data) = match read(&app).await {
                Ok(s) => ("state", serde_json::to_string(&s).unwrap_or_default()),
                Err(e) => ("problem", json!({ "error": e }).to_string()),
            };
            if last.as_ref() != Some(&data) {
                let event = Event::default().event(name).data(data.clone());
                return Some((Ok(event), (app, Some(data))));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn picture(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    let Some(draw) = app.dashboard.picture.clone() else {
        return failed(StatusCode::NOT_FOUND, "this cutover cannot draw timeline pictures");
    };
    let journal = app.dashboard.journal.clone();
    match tokio::task::spawn_blocking(move || draw(&journal, id)).await {
        Ok(Ok(svg)) => ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg)
            .into_response(),
        Ok(Err(e)) => failed(StatusCode::NOT_FOUND, e),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    gate: Option<String>,
}

/// `cutover promote [GATE]`.
async fn promote(State(app): State<Arc<App>>, body: Option<Json<PromoteBody>>) -> Response {
    let gate = body.and_then(|Json(b)| b.gate).filter(|g| !g.trim().is_empty());
    let a = app.clone();
    let done =
        tokio::task::spawn_blocking(move || a.dashboard.journal.promote(&a.dashboard.app, gate.as_deref()))
            .await;
    match done {
        Ok(Ok((release, gate))) => Json(json!({
            "message": format!("promoted gate `{gate}` of deploy #{} (v{})", release.id, release.target.version)
        }))
        .into_response(),
        Ok(Err(e)) => failed(StatusCode::CONFLICT, e),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `cutover abort`.
async fn abort(State(app): State<Arc<App>>) -> Response {
    let a = app.clone();
    match tokio::task::spawn_blocking(move || a.dashboard.journal.abort(&a.dashboard.app)).await {
        Ok(Ok((release, gate))) => Json(json!({
            "message": format!(
                "aborting deploy #{} (v{}) at manual gate `{gate}`: its strategy undoes what it did",
                release.id, release.target.version
            )
        }))
        .into_response(),
        Ok(Err(e)) => failed(StatusCode::CONFLICT, e),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `cutover rollback`, as a process of its own: it runs as long as the strategy takes, outlives the
/// request and is journaled like any rollback (the page shows it as it goes).
async fn rollback(State(app): State<Arc<App>>) -> Response {
    match run(&app.dashboard.rollback).await {
        Ok(message) => (StatusCode::ACCEPTED, Json(json!({ "message": message }))).into_response(),
        Err(e) => failed(StatusCode::CONFLICT, e),
    }
}

/// Start `cmd` with its output in a file; an exit within [`EARLY_EXIT`] is reported with the output.
async fn run(cmd: &Command) -> Result<String, String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    std::fs::create_dir_all(&cmd.log_dir)
        .map_err(|e| format!("cannot create {}: {e}", cmd.log_dir.display()))?;
    let log = cmd.log_dir.join(format!("dashboard-rollback-{stamp}.log"));
    let file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.program.display()))?;
    let pid = child.id().unwrap_or_default();
    match tokio::time::timeout(EARLY_EXIT, child.wait()).await {
        Ok(Ok(status)) => {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            let output = output.trim();
            match status.success() {
                true => Ok(format!("rolled back: {output}")),
                false => Err(format!("`cutover rollback` failed ({status}): {output}")),
            }
        }
        Ok(Err(e)) => Err(format!("`cutover rollback` (process {pid}): {e}")),
        Err(_) => {
            // Reap it when it ends; the journal tells the page how it went.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Ok(format!("rollback started (process {pid}); its output goes to {}", log.display()))
        }
    }
}
