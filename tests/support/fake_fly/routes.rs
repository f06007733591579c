//! The fake's HTTP API: the Machines API routes, and the gate in front of them that records each
//! request, checks the token and injects faults.
// Handlers answer errors as ready responses; their size does not matter in a test server.
#![allow(clippy::result_large_err)]

use super::{Fake, FakeLease, FakeMachine, Happened, Inner, NONCE, Seen, error, now_ms};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cutover::machines_api::{
    ApiMachine, CreateRequest, LeaseData, LeaseResponse, MetadataValue, StopRequest,
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

type S = State<Arc<Fake>>;

pub(super) fn router(fake: Arc<Fake>) -> Router {
    let m = "/v1/apps/{app}/machines";
    Router::new()
        .route(m, get(list).post(create))
        .route(&format!("{m}/{{id}}"), get(get_machine).post(update).delete(destroy))
        .route(&format!("{m}/{{id}}/start"), post(start))
        .route(&format!("{m}/{{id}}/stop"), post(stop))
        .route(&format!("{m}/{{id}}/wait"), get(wait))
        .route(&format!("{m}/{{id}}/cordon"), post(cordon))
        .route(&format!("{m}/{{id}}/uncordon"), post(uncordon))
        .route(&format!("{m}/{{id}}/metadata"), get(metadata))
        .route(&format!("{m}/{{id}}/metadata/{{key}}"), post(set_metadata).delete(delete_metadata))
        .route(&format!("{m}/{{id}}/lease"), get(get_lease).post(lease).delete(release))
        .layer(axum::middleware::from_fn_with_state(fake.clone(), gate))
        .with_state(fake)
}

/// Record the request, check the token, inject faults.
async fn gate(State(f): S, req: Request, next: Next) -> Response {
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let n = {
        let mut inner = f.lock();
        inner.requests += 1;
        inner.seen.push(Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            nonce: req.headers().contains_key(NONCE),
            authorization: auth.clone(),
        });
        inner.requests
    };
    if auth != format!("Bearer {}", f.opts.token) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized: the token is missing, expired or not valid");
    }
    let injected = {
        let mut faults = f.faults.lock().unwrap();
        let retry_after = faults.retry_after;
        if faults.burst > 0 {
            faults.burst -= 1;
            Some((
                StatusCode::from_u16(faults.burst_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after,
            ))
        } else if faults.every.is_some_and(|e| n % e == 0) {
            Some((StatusCode::SERVICE_UNAVAILABLE, retry_after))
        } else {
            None
        }
    };
    if let Some((status, after)) = injected {
        let mut resp = error(status, "injected: the service is briefly unavailable");
        if let Some(s) = after {
            resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
        }
        return resp;
    }
    next.run(req).await
}

/// The machine `id` of `app`, or a 404.
fn find<'a>(inner: &'a mut Inner, app: &str, id: &str) -> Result<&'a mut FakeMachine, Response> {
    match inner.machines.get_mut(id) {
        Some(m) if m.app == app => Ok(m),
        _ => Err(error(StatusCode::NOT_FOUND, format!("machine {id} not found"))),
    }
}

/// A mutating call on a leased machine needs the lease's nonce (412 otherwise).
fn nonce_ok(m: &FakeMachine, headers: &HeaderMap) -> Result<(), Response> {
    match &m.lease {
        Some(l) if l.live() && headers.get(NONCE).and_then(|v| v.to_str().ok()) != Some(l.nonce.as_str()) => {
            Err(error(
                StatusCode::PRECONDITION_FAILED,
                format!("machine {} is leased; the request lacks its lease nonce", m.api.id),
            ))
        }
        _ => Ok(()),
    }
}

async fn list(State(f): S, Path(app): Path<String>) -> Response {
    let inner = f.lock();
    let v: Vec<serde_json::Value> =
        inner.machines.values().filter(|m| m.app == app).map(FakeMachine::wire).collect();
    Json(v).into_response()
}

async fn get_machine(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(m) => Json(m.wire()).into_response(),
        Err(r) => match f.gone(&id) {
            Some(api) => Json(api).into_response(),
            None => r,
        },
    }
}

/// A change of a machine on an unreachable host fails, as on Fly (flaps cannot reach its flyd).
fn reachable(m: &FakeMachine) -> Result<(), Response> {
    match m.unreachable {
        true => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed to reach the host of machine {}: host unreachable", m.api.id),
        )),
        false => Ok(()),
    }
}

async fn create(State(f): S, Path(app): Path<String>, Json(req): Json<CreateRequest>) -> Response {
    if req.config.image.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "config.image is required");
    }
    let lose = {
        let mut faults = f.faults.lock().unwrap();
        let lose = faults.lose_creates > 0;
        faults.lose_creates = faults.lose_creates.saturating_sub(1);
        lose
    };
    let api = {
        let mut inner = f.lock();
        inner.next += 1;
        let id = format!("{:014x}", 0x2000_0000_0000u64 + inner.next);
        let api = ApiMachine {
            id: id.clone(),
            name: if req.name.is_empty() { format!("{app}-{}", inner.next) } else { req.name.clone() },
            state: "created".into(),
            region: if req.region.is_empty() { "ams".into() } else { req.region.clone() },
            instance_id: format!("01H{}", inner.next),
            private_ip: "fdaa::2".into(),
            config: req.config.clone(),
            checks: vec![],
            cordoned: req.skip_service_registration,
            ..Default::default()
        };
        let mut m = FakeMachine::new(&app, api);
        let mut keep = true;
        if super::release::is_release(&req) && !req.skip_launch {
            keep = f.run_release(&req, &mut m);
        } else {
            super::event(&mut m.api, "created");
            if !req.skip_launch {
                f.set_state(&mut m, "starting", Some(("started", f.opts.boot)));
            }
        }
        let api = m.api.clone();
        if keep {
            inner.history.push(Happened::Created {
                id: api.id.clone(),
                instance: api.instance_id.clone(),
                routable: !req.skip_service_registration,
            });
            inner.machines.insert(id, m);
        } else {
            inner.destroyed.insert(id);
        }
        api
    };
    f.changed();
    if lose {
        return error(StatusCode::BAD_GATEWAY, "injected: the answer to this create was lost");
    }
    Json(api).into_response()
}

async fn update(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(req): Json<CreateRequest>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers).and_then(|()| reachable(m)) {
        return r;
    }
    let lag = f.opts.lag;
    if !lag.is_zero() && m.api.state == "started" {
        // Reads keep reporting the old instance, started and passing, for a while.
        let mut old = m.view().clone();
        old.checks.iter_mut().for_each(|c| c.status = "passing".into());
        m.stale = Some((old, std::time::Instant::now() + lag));
        let fake = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(lag).await;
            fake.changed();
        });
    }
    m.api.config = req.config;
    m.api.instance_id = format!("{}u", m.api.instance_id);
    let running = matches!(m.api.state.as_str(), "started" | "starting" | "replacing");
    if running || !req.skip_launch {
        f.set_state(m, "replacing", Some(("started", f.opts.boot)));
    }
    let api = m.api.clone();
    inner.history.push(Happened::Updated { id: id.clone(), instance: api.instance_id.clone() });
    drop(inner);
    f.changed();
    Json(api).into_response()
}

async fn start(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers).and_then(|()| reachable(m)) {
        return r;
    }
    let previous = m.api.state.clone();
    if previous != "started" {
        f.set_state(m, "starting", Some(("started", f.opts.boot)));
    }
    drop(inner);
    f.changed();
    Json(json!({"previous_state": previous})).into_response()
}

async fn stop(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<StopRequest>>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers).and_then(|()| reachable(m)) {
        return r;
    }
    if let Some(Json(StopRequest { timeout: Some(t), .. })) = &body
        && humantime::parse_duration(t).is_err()
    {
        return error(StatusCode::BAD_REQUEST, format!("bad stop timeout {t:?}"));
    }
    f.set_state(m, "stopping", Some(("stopped", f.opts.stop)));
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
struct KillQuery {
    #[serde(default)]
    kill: bool,
}

async fn destroy(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<KillQuery>,
    headers: HeaderMap,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    if !q.kill && matches!(m.api.state.as_str(), "started" | "starting" | "replacing") {
        return error(StatusCode::PRECONDITION_FAILED, "unable to destroy machine, not currently stopped");
    }
    inner.machines.remove(&id);
    inner.destroyed.insert(id);
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
struct WaitQuery {
    state: String,
    #[serde(default)]
    timeout: Option<u64>,
    /// The instance to wait for (fly-go's `version`; older flaps' `instance_id`).
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    instance_id: Option<String>,
}

/// Wait for a state; after `min(timeout, cap)` a 408 as Fly answers.
async fn wait(State(f): S, Path((app, id)): Path<(String, String)>, Query(q): Query<WaitQuery>) -> Response {
    let asked = Duration::from_secs(q.timeout.unwrap_or(60).clamp(1, 60));
    let deadline = tokio::time::Instant::now() + asked.min(f.opts.wait_cap);
    let mut changes = f.changes.subscribe();
    loop {
        {
            let mut inner = f.lock();
            if q.state == "destroyed" && inner.destroyed.contains(&id) {
                return Json(json!({"ok": true})).into_response();
            }
            let version = q.version.as_deref().or(q.instance_id.as_deref()).filter(|v| !v.is_empty());
            match find(&mut inner, &app, &id) {
                // Named: only that instance answers. Unnamed: whatever reads report (the old
                // instance while the API lags).
                Ok(m) if version.is_some_and(|v| m.api.instance_id == v && m.api.state == q.state) => {
                    return Json(json!({"ok": true})).into_response();
                }
                Ok(m) if version.is_none() && m.view().state == q.state => {
                    return Json(json!({"ok": true})).into_response();
                }
                Ok(_) => {}
                Err(r) => return r,
            }
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return error(StatusCode::REQUEST_TIMEOUT, "deadline_exceeded: timeout waiting for the machine");
        }
    }
}

async fn set_cordoned(f: Arc<Fake>, app: &str, id: &str, headers: &HeaderMap, cordoned: bool) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, app, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, headers) {
        return r;
    }
    m.api.cordoned = cordoned;
    if let Some((old, _)) = &mut m.stale {
        old.cordoned = cordoned;
    }
    if !cordoned {
        let h = Happened::Uncordoned { id: id.to_string(), instance: m.api.instance_id.clone() };
        inner.history.push(h);
    }
    drop(inner);
    f.changed();
    Json(json!({"ok": true})).into_response()
}

async fn cordon(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    set_cordoned(f, &app, &id, &headers, true).await
}

async fn uncordon(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    set_cordoned(f, &app, &id, &headers, false).await
}

async fn metadata(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(m) => Json(m.api.config.metadata.clone()).into_response(),
        Err(r) => r,
    }
}

async fn set_metadata(
    State(f): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(v): Json<MetadataValue>,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.api.config.metadata.insert(key, v.value);
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_metadata(
    State(f): S,
    Path((app, id, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.api.config.metadata.remove(&key);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct TtlQuery {
    #[serde(default)]
    ttl: Option<u64>,
}

fn lease_json(l: &FakeLease) -> Json<LeaseResponse> {
    Json(LeaseResponse {
        status: "success".into(),
        data: Some(LeaseData {
            nonce: l.nonce.clone(),
            expires_at: l.expires_ms / 1000,
            owner: l.owner.clone(),
            version: "01HV".into(),
        }),
        message: String::new(),
        code: String::new(),
    })
}

/// Acquire (no nonce) or refresh (with the holder's nonce); 409 when someone else holds it.
async fn lease(
    State(f): S,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<TtlQuery>,
    headers: HeaderMap,
    body: Option<Json<TtlQuery>>,
) -> Response {
    let ttl = q.ttl.or(body.and_then(|Json(b)| b.ttl)).unwrap_or(30);
    let mut inner = f.lock();
    let owner = f.opts.owner.clone();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let given = headers.get(NONCE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refresh = match &m.lease {
        Some(l) if l.live() && given.as_deref() == Some(l.nonce.as_str()) => true,
        Some(l) if l.live() => {
            return error(
                StatusCode::CONFLICT,
                format!("lease currently held by {}, expires at {}", l.owner, l.expires_ms / 1000),
            );
        }
        _ => false,
    };
    let nonce = match (&m.lease, refresh) {
        (Some(l), true) => l.nonce.clone(),
        _ => format!("{:016x}", rand::random::<u64>()),
    };
    let l = FakeLease { nonce, owner, expires_ms: now_ms() + (ttl * 1000) as i64 };
    m.lease = Some(l.clone());
    if refresh {
        inner.refreshes += 1;
    }
    lease_json(&l).into_response()
}

async fn get_lease(State(f): S, Path((app, id)): Path<(String, String)>) -> Response {
    let mut inner = f.lock();
    match find(&mut inner, &app, &id) {
        Ok(FakeMachine { lease: Some(l), .. }) if l.live() => lease_json(l).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, "no lease"),
        Err(r) => r,
    }
}

async fn release(State(f): S, Path((app, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let mut inner = f.lock();
    let m = match find(&mut inner, &app, &id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = nonce_ok(m, &headers) {
        return r;
    }
    m.lease = None;
    Json(json!({"ok": true})).into_response()
}
