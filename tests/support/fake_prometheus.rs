//! A small fake of Prometheus' HTTP API, for platforms without a real one in the tests (the Fly fake):
//! `/api/v1/query` and `/api/v1/query_range` (GET or form POST, as Prometheus takes them) answered in
//! Prometheus' JSON shape from series the test feeds per `version` label.
//!
//! A query is answered for the versions its text selects with `version=~"…"` or `version="…"` (a
//! regex alternation such as `1|3` selects each): one series per selected version that has values,
//! labelled `version`, with `values[(t / step) % len]` at each time `t` (seconds), so the same query
//! over the same window gets the same answer. Every query is recorded, so a test can tell what was
//! asked (and that a resumed deploy asked nothing again).

use axum::extract::{Form, State};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What the fake answers and what it was asked.
#[derive(Default)]
pub struct FakeProm {
    /// Values per `version` label value.
    series: Mutex<BTreeMap<String, Vec<f64>>>,
    /// Every query's `query` parameter, in order, with its endpoint (`query` or `query_range`) and
    /// its `start` (range) or `time` (instant) parameter as sent.
    asked: Mutex<Vec<(String, String, String)>>,
    /// Refuse every query as Prometheus refuses bad PromQL (`bad_data`).
    refuse: Mutex<bool>,
}

impl FakeProm {
    /// Answer `version`'s series with `values` (cycled).
    pub fn set(&self, version: &str, values: &[f64]) {
        self.series.lock().unwrap().insert(version.into(), values.to_vec());
    }

    /// Refuse every query from now on (`true`) or answer again.
    pub fn refuse(&self, refuse: bool) {
        *self.refuse.lock().unwrap() = refuse;
    }

    /// Every query asked so far: (endpoint, PromQL).
    pub fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap().iter().map(|(e, q, _)| (e.clone(), q.clone())).collect()
    }

    /// Every query asked so far with when it asked about: (PromQL, `start` or `time`). The same pair
    /// twice is the same question asked again.
    pub fn windows(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap().iter().map(|(_, q, t)| (q.clone(), t.clone())).collect()
    }
}

/// A running fake: its base URL (for `[cutover.metrics] url`) and its state.
pub struct FakePrometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What it answers and was asked.
    pub state: Arc<FakeProm>,
}

impl FakePrometheus {
    /// Serve on a free loopback port in the current tokio runtime.
    pub async fn start() -> Self {
        let state = Arc::new(FakeProm::default());
        let app = Router::new()
            .route("/api/v1/query", any(instant))
            .route("/api/v1/query_range", any(range))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: format!("http://{addr}"), state }
    }
}

/// The versions a query selects: the value of its `version=~"…"` (split on `|`) or `version="…"`.
fn versions(promql: &str) -> Vec<String> {
    let Some(at) =
        promql.find("version=~\"").map(|i| i + 10).or_else(|| promql.find("version=\"").map(|i| i + 9))
    else {
        return vec![];
    };
    let rest = &promql[at..];
    rest[..rest.find('"').unwrap_or(rest.len())].split('|').map(str::to_string).collect()
}

fn number(form: &HashMap<String, String>, key: &str) -> Option<f64> {
    form.get(key)?.parse().ok()
}

fn bad(message: &str) -> Json<Value> {
    Json(json!({"status": "error", "errorType": "bad_data", "error": message}))
}

/// Record the query; `Err` is the answer when it is refused.
fn ask(state: &FakeProm, endpoint: &str, form: &HashMap<String, String>) -> Result<String, Json<Value>> {
    let Some(promql) = form.get("query") else { return Err(bad("missing query")) };
    let at = form.get("start").or_else(|| form.get("time")).cloned().unwrap_or_default();
    state.asked.lock().unwrap().push((endpoint.into(), promql.clone(), at));
    if *state.refuse.lock().unwrap() {
        return Err(bad("1:1: parse error: refused by the fake"));
    }
    Ok(promql.clone())
}

fn value_at(values: &[f64], t: f64, step: f64) -> String {
    let i = ((t / step.max(1.0)) as usize) % values.len();
    values[i].to_string()
}

async fn instant(
    State(state): State<Arc<FakeProm>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let promql = match ask(&state, "query", &form) {
        Ok(q) => q,
        Err(answer) => return answer,
    };
    let t = number(&form, "time").unwrap_or(0.0);
    let series = state.series.lock().unwrap();
    let result: Vec<Value> = versions(&promql)
        .into_iter()
        .filter_map(|v| series.get(&v).map(|values| (v, values)))
        .map(|(v, values)| json!({"metric": {"version": v}, "value": [t, value_at(values, t, 15.0)]}))
        .collect();
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}

async fn range(State(state): State<Arc<FakeProm>>, Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    let promql = match ask(&state, "query_range", &form) {
        Ok(q) => q,
        Err(answer) => return answer,
    };
    let (Some(start), Some(end), Some(step)) =
        (number(&form, "start"), number(&form, "end"), number(&form, "step"))
    else {
        return bad("start, end and step are required");
    };
    if step <= 0.0 || end < start || (end - start) / step > 11_000.0 {
        return bad("exceeded maximum resolution of 11,000 points per timeseries");
    }
    let series = state.series.lock().unwrap();
    let result: Vec<Value> = versions(&promql)
        .into_iter()
        .filter_map(|v| series.get(&v).map(|values| (v, values)))
        .map(|(v, values)| {
            let mut points = Vec::new();
            let mut t = start;
            while t <= end {
                points.push(json!([t, value_at(values, t, step)]));
                t += step;
            }
            json!({"metric": {"version": v}, "values": points})
        })
        .collect();
    Json(json!({"status": "success", "data": {"resultType": "matrix", "result": result}}))
}
