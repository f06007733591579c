//! The daemon's HTTP API: the Fly Machines API's shapes for what the two share (so one client drives
//! both), and cutover's extras under `/cutover/v1` for what Fly lacks (app registration, traffic
//! weights, connection counts, per-release stats, waiting for health, logs, shutdown).

use super::Daemon;
use super::fleet::AppSpec;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cutover_core::{ErrorKind, OpError};
use cutover_machines_api::{CreateRequest, ErrorBody, MetadataValue, StopRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The lease nonce header of the Machines API.
pub const NONCE_HEADER: &str = "fly-machine-lease-nonce";

/// An error as JSON, with the kind a strategy acts on.
pub struct ApiError(OpError);

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unhealthy => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Denied => StatusCode::FORBIDDEN,
            ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Platform => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = ErrorBody { error: self.0.message, kind: Some(self.0.kind) };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;
type S = State<Arc<Daemon>>;

/// Every route.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let machines = "/v1/apps/{app}/machines";
    Router::new()
        .route(machines, get(list).post(create))
        .route(&format!("{machines}/{{id}}"), get(get_machine).post(update).delete(destroy))
        .route(&format!("{machines}/{{id}}/start"), post(start))
        .route(&format!("{machines}/{{id}}/stop"), post(stop))
        .route(&format!("{machines}/{{id}}/wait"), get(wait))
        .route(&format!("{machines}/{{id}}/cordon"), post(cordon))
        .route(&format!("{machines}/{{id}}/uncordon"), post(uncordon))
        .route(&format!("{machines}/{{id}}/metadata"), get(metadata))
        .route(&format!("{machines}/{{id}}/metadata/{{key}}"), post(set_metadata).delete(delete_metadata))
        .route(&format!("{machines}/{{id}}/lease"), get(get_lease).post(take_lease).delete(release_lease))
        .route("/cutover/v1/status", get(status))
        .route("/cutover/v1/shutdown", post(shutdown))
        .route("/cutover/v1/apps/{app}", put(register).get(app_info))
        .route("/cutover/v1/apps/{app}/weights", get(weights).put(set_weights))
        .route("/cutover/v1/apps/{app}/stats", get(stats))
        .route("/cutover/v1/apps/{app}/connections", get(app_connections))
        .route("/cutover/v1/apps/{app}/machines/{id}/connections", get(connections))
        .route("/cutover/v1/apps/{app}/machines/{id}/wait-healthy", get(wait_healthy))
        .route("/cutover/v1/apps/{app}/machines/{id}/logs", get(logs))
        .layer(axum::middleware::from_fn_with_state(daemon.clone(), super::auth::guard))
        .with_state(daemon)
}

fn nonce(headers: &HeaderMap) -> Option<String> {
    headers.get(NONCE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Refuse a mutation of a machine leased by someone else.
fn leased(d: &Daemon, app: &str, id: &str, headers: &HeaderMap) -> ApiResult<()> {
    Ok(d.fleet.check_lease(app, id, nonce(headers).as_deref())?)
}

async fn list(State(d): S, Path(app): Path<String>) -> impl IntoResponse {
    Json(d.fleet.list(&app))
}

async fn get_machine(State(d): S, Path((app, id)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    Ok(Json(d.fleet.get(&app, &id)?))
}

async fn create(
    State(d): S,
    Path(app): Path<String>,
    Json(req): Json<CreateRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(d.fleet.create(&app, req)?))
}

async fn update(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(req): Json<CreateRequest>,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    Ok(Json(d.fleet.update(&app, &id, req)?))
}

#[derive(Deserialize)]
struct KillQuery {
    #[serde(default)]
    kill: bool,
}

async fn destroy(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<KillQuery>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.destroy(&app, &id, q.kill).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

async fn start(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.start(&app, &id)?;
    Ok(Json(serde_json::json!({"previous_state": "stopped"})))
}

async fn stop(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<StopRequest>>,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    let spec = d.fleet.spec(&app);
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let signal = req
        .signal
        .or_else(|| spec.as_ref().map(|s| s.kill_signal.clone()))
        .unwrap_or_else(|| "SIGINT".into());
    let timeout = match req.timeout {
        Some(t) => humantime::parse_duration(&t).map_err(|_| {
            OpError::new(ErrorKind::Invalid, format!("stop timeout `{t}` is not a duration (e.g. \"5s\")"))
        })?,
        None => Duration::from_millis(spec.map(|s| s.kill_timeout_ms).unwrap_or(5000)),
    };
    d.fleet.stop(&app, &id, &signal, timeout)?;
    Ok(Json(serde_json::json!({"ok": true})))
}

#[derive(Deserialize)]
struct WaitQuery {
    state: String,
    #[serde(default)]
    timeout: Option<u64>,
}

/// Wait for a state, at most `timeout` seconds (capped at 60, as Fly does). A machine that failed while
/// being waited on to start answers at once with `unhealthy`.
async fn wait(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<impl IntoResponse> {
    let timeout = Duration::from_secs(q.timeout.unwrap_or(60).clamp(1, 60));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = d.fleet.subscribe();
    loop {
        let state = match d.fleet.get(&app, &id) {
            Ok(m) => m.state,
            Err(e) if q.state == "destroyed" && e.kind == ErrorKind::NotFound => {
                return Ok(Json(serde_json::json!({"ok": true})));
            }
            Err(e) => return Err(e.into()),
        };
        if state == q.state {
            return Ok(Json(serde_json::json!({"ok": true})));
        }
        if q.state == "started" && state == "failed" {
            let (_, _, gone) = d.fleet.health(&app, &id)?;
            return Err(OpError::new(
                ErrorKind::Unhealthy,
                format!("machine {id} failed instead of starting: {}", gone.unwrap_or_default()),
            )
            .into());
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Err(OpError::new(
                ErrorKind::Timeout,
                format!("machine {id} was not {} within {}s (it is {state})", q.state, timeout.as_secs()),
            )
            .into());
        }
    }
}

async fn cordon(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.set_cordoned(&app, &id, true)?;
    Ok(Json(serde_json::json!({"ok": true})))
}

async fn uncordon(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.set_cordoned(&app, &id, false)?;
    Ok(Json(serde_json::json!({"ok": true})))
}

async fn metadata(State(d): S, Path((app, id)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    Ok(Json(d.fleet.get(&app, &id)?.config.metadata))
}

async fn set_metadata(
    State(d): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(v): Json<MetadataValue>,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.set_metadata(&app, &id, &key, Some(&v.value))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_metadata(
    State(d): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    leased(&d, &app, &id, &headers)?;
    d.fleet.set_metadata(&app, &id, &key, None)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LeaseQuery {
    #[serde(default)]
    ttl: Option<u64>,
}

#[derive(Serialize)]
struct LeaseResponse {
    status: &'static str,
    data: super::fleet::Lease,
}

async fn take_lease(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<LeaseQuery>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let owner = headers.get("fly-machine-lease-owner").and_then(|v| v.to_str().ok()).unwrap_or("cutover");
    let lease = d.fleet.lease(
        &app,
        &id,
        Duration::from_secs(q.ttl.unwrap_or(13)),
        owner,
        nonce(&headers).as_deref(),
    )?;
    Ok(Json(LeaseResponse { status: "success", data: lease }))
}

async fn get_lease(State(d): S, Path((app, id)): Path<(String, String)>) -> ApiResult<Response> {
    Ok(match d.fleet.lease_of(&app, &id)? {
        Some(lease) => Json(LeaseResponse { status: "success", data: lease }).into_response(),
        None => ApiError(OpError::not_found(format!("machine {id} has no lease"))).into_response(),
    })
}

async fn release_lease(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    d.fleet.release_lease(&app, &id, nonce(&headers).as_deref())?;
    Ok(Json(serde_json::json!({"ok": true})))
}

// ---- cutover's extras ----------------------------------------------------------------------------

/// What `GET /cutover/v1/status` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's process id: a client checks it against `daemon.json`'s.
    pub pid: u32,
    /// Each registered app and its proxy's address.
    pub apps: BTreeMap<String, String>,
}

async fn status(State(d): S) -> impl IntoResponse {
    let apps = d
        .fleet
        .apps()
        .into_iter()
        .filter_map(|a| d.traffic.address(&a).map(|addr| (a, addr.to_string())))
        .collect();
    Json(Status { pid: std::process::id(), apps })
}

async fn shutdown(State(d): S) -> impl IntoResponse {
    d.shutdown.notify_one();
    Json(serde_json::json!({"ok": true}))
}

/// What registering an app answers: where its proxy listens.
#[derive(Debug, Serialize, Deserialize)]
pub struct AppInfo {
    /// The proxy's address, e.g. `127.0.0.1:4280` (empty while the app has none).
    pub proxy: String,
    /// How the app runs, as registered.
    pub spec: AppSpec,
}

async fn register(
    State(d): S,
    Path(app): Path<String>,
    Json(spec): Json<AppSpec>,
) -> ApiResult<impl IntoResponse> {
    let addr = d.traffic.ensure_proxy(&app, spec.port, spec.tcp, spec.proxy).await?;
    d.fleet.register(&app, spec.clone())?;
    Ok(Json(AppInfo { proxy: addr.to_string(), spec }))
}

async fn app_info(State(d): S, Path(app): Path<String>) -> ApiResult<impl IntoResponse> {
    let spec =
        d.fleet.spec(&app).ok_or_else(|| OpError::not_found(format!("app {app} is not registered")))?;
    let proxy = d.traffic.address(&app).map(|a| a.to_string()).unwrap_or_default();
    Ok(Json(AppInfo { proxy, spec }))
}

async fn weights(State(d): S, Path(app): Path<String>) -> impl IntoResponse {
    Json(d.traffic.weights(&app))
}

async fn set_weights(
    State(d): S,
    Path(app): Path<String>,
    Json(weights): Json<Vec<cutover_core::ReleaseWeight>>,
) -> ApiResult<impl IntoResponse> {
    let total: u32 = weights.iter().map(|w| u32::from(w.percent)).sum();
    if !weights.is_empty() && total != 100 {
        return Err(
            OpError::new(ErrorKind::Invalid, format!("weights add up to {total}%, expected 100%")).into()
        );
    }
    d.traffic.set_weights(&app, weights);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct StatsQuery {
    version: u64,
    window_ms: u64,
}

async fn stats(State(d): S, Path(app): Path<String>, Query(q): Query<StatsQuery>) -> impl IntoResponse {
    Json(d.traffic.stats(&app, q.version, Duration::from_millis(q.window_ms)))
}

async fn connections(State(d): S, Path((app, id)): Path<(String, String)>) -> ApiResult<impl IntoResponse> {
    d.fleet.get(&app, &id)?;
    Ok(Json(serde_json::json!({"connections": d.traffic.connections(&app, &id)})))
}

/// Every machine of the app with its open connections: a drain's poll of all of them in one request.
async fn app_connections(State(d): S, Path(app): Path<String>) -> ApiResult<impl IntoResponse> {
    let counts: std::collections::BTreeMap<String, u32> = d
        .fleet
        .list(&app)
        .into_iter()
        .map(|m| {
            let open = d.traffic.connections(&app, &m.id);
            (m.id, open)
        })
        .collect();
    Ok(Json(serde_json::json!({"connections": counts})))
}

#[derive(Deserialize)]
struct HealthQuery {
    timeout_ms: u64,
}

/// "name: output" of every check not passing, joined.
fn failing(checks: &[cutover_machines_api::ApiCheck]) -> String {
    let v: Vec<String> = checks
        .iter()
        .filter(|c| c.status != "passing")
        .map(|c| format!("{}: {}", c.name, c.output))
        .collect();
    v.join("; ")
}

/// How many failed results in a row make a machine unhealthy (rather than still starting).
const UNHEALTHY_AFTER: u32 = 3;

/// Wait until every check passes; `unhealthy` once a check failed three times in a row after its grace
/// period or the process is gone; `timeout` otherwise.
async fn wait_healthy(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<HealthQuery>,
) -> ApiResult<impl IntoResponse> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.timeout_ms);
    let mut changes = d.fleet.subscribe();
    loop {
        let (checks, failures, gone) = d.fleet.health(&app, &id)?;
        if let Some(gone) = gone {
            return Err(OpError::new(ErrorKind::Unhealthy, format!("machine {id}: {gone}")).into());
        }
        if checks.iter().all(|c| c.status == "passing") {
            return Ok(Json(serde_json::json!({"ok": true})));
        }
        if failures >= UNHEALTHY_AFTER {
            let failing = failing(&checks);
            return Err(OpError::new(
                ErrorKind::Unhealthy,
                format!("machine {id} failed its checks {failures} times in a row ({})", failing),
            )
            .into());
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            let failing = failing(&checks);
            return Err(OpError::new(
                ErrorKind::Timeout,
                format!("machine {id} did not pass its checks within {} ms ({})", q.timeout_ms, failing),
            )
            .into());
        }
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default)]
    tail_bytes: Option<u64>,
}

async fn logs(
    State(d): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let path = d.fleet.log_path(&app, &id);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        OpError::not_found(format!("no log for machine {id} of {app} ({}): {e}", path.display()))
    })?;
    let tail = q.tail_bytes.map(|n| n as usize).unwrap_or(bytes.len()).min(bytes.len());
    Ok(bytes[bytes.len() - tail..].to_vec().into_response())
}
