//! `[[cutover.notify]]` against a local HTTP receiver (axum, in the test): a deploy's notifications
//! arrive in order with the documented fields; a manual gate is announced; a receiver that answers 500
//! or never answers changes neither the deploy's outcome nor its exit code, the deploy ends, and the
//! failing endpoint is logged once.

use crate::support::{self, OutputExt, Toml};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Fail,
    Hang,
}

/// A receiver on 127.0.0.1: its URL, and every body it was sent, in order.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(answer: Answer) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let state = (got.clone(), answer);
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State((got, answer)): State<(Arc<Mutex<Vec<Value>>>, Answer)>,
                     body: axum::Json<Value>| async move {
                        got.lock().unwrap().push(body.0);
                        match answer {
                            Answer::Ok => StatusCode::OK,
                            Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                            Answer::Hang => std::future::pending().await,
                        }
                    },
                ),
            )
            .with_state(state);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got, _runtime: runtime }
    }

    fn events(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().map(|b| b["event"].as_str().unwrap_or("?").to_string()).collect()
    }
}

/// The example app on the simulator, notifying `url` of `events`.
fn config(dir: &std::path::Path, url: &str, events: &[&str], scenario: &str) -> std::path::PathBuf {
    let scenario = support::root().join("examples/app/scenarios").join(scenario);
    Toml::example_app()
        .set("cutover.sim.scenario", scenario)
        .set("cutover.notify", [json!({"url": url, "events": events})])
        .write(dir.join("fly.toml"))
}

#[test]
fn a_deploy_notifies_in_order_with_the_documented_fields() {
    let r = Receiver::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let fly = config(dir.path(), &r.url, &["started", "succeeded", "failed"], "happy.toml");
    let out = support::cutover(["deploy"]).config(&fly).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(r.events(), ["started", "succeeded"]);
    let got = r.got.lock().unwrap().clone();
    for (body, event) in got.iter().zip(["started", "succeeded"]) {
        for field in
            ["text", "app", "release", "version", "previous", "strategy", "platform", "phase", "time"]
        {
            assert!(body.get(field).is_some(), "{event}: no {field} in {body}");
        }
        assert_eq!(body["app"], "hello-cutover");
        assert_eq!((body["version"].as_u64(), body["previous"].as_u64()), (Some(2), Some(1)));
        assert_eq!((body["strategy"].as_str(), body["platform"].as_str()), (Some("rolling"), Some("sim")));
        assert_eq!(body["release"], 1);
        assert!(
            body["text"].as_str().unwrap().starts_with("hello-cutover deploy #1 of v2 (rolling)"),
            "{body}"
        );
        assert!(humantime::parse_rfc3339(body["time"].as_str().unwrap()).is_ok(), "{body}");
    }
    assert_eq!(got[1]["outcome"], "succeeded");
    assert_eq!(got[1]["fleet"]["serving"], 10);
}

#[test]
fn a_failed_deploy_says_why_and_where() {
    let r = Receiver::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let fly = config(dir.path(), &r.url, &["failed"], "failing-release.toml");
    let out = support::cutover(["deploy"]).config(&fly).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert_eq!(r.events(), ["failed"]);
    let body = r.got.lock().unwrap()[0].clone();
    assert_eq!(body["outcome"], "failed");
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("unhealthy"), "{body}");
    assert!(body["phase"].is_string(), "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("FAILED") && text.contains(error) && text.contains("in phase"), "{text}");
}

#[test]
fn a_manual_gate_is_announced() {
    let r = Receiver::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fly = Toml::example_app()
        .set("deploy.strategy", "canary")
        .set("cutover.params.steps", [10, 50])
        .set("cutover.params.manual_gates", [10])
        .set("cutover.notify", [json!({"url": r.url, "events": ["gate", "succeeded"]})])
        .write(dir.path().join("fly.toml"));
    let mut child = support::cutover(["deploy"])
        .config(&fly)
        .state(&state)
        .spawn(std::process::Stdio::null(), std::process::Stdio::null());
    // The gate's notification is the sign the deploy waits; then promote it.
    let mut waited = 0;
    while r.events().is_empty() && waited < 600 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    assert_eq!(r.events(), ["gate"]);
    let gate = r.got.lock().unwrap()[0]["gate"].as_str().expect("the gate").to_string();
    let promote = support::cutover(["promote", &gate]).config(&fly).state(&state).run();
    assert_eq!(promote.status.code(), Some(0), "{}", promote.text());
    assert!(child.wait().unwrap().success());
    assert_eq!(r.events(), ["gate", "succeeded"]);
}

/// A receiver that fails changes nothing of the deploy, which ends; its failure is logged once.
fn unchanged_by(answer: Answer) {
    let r = Receiver::start(answer);
    let dir = tempfile::tempdir().unwrap();
    let fly = config(dir.path(), &r.url, &["started", "succeeded"], "happy.toml");
    let out = support::cutover(["deploy", "--json"]).config(&fly).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let events = out.json_lines();
    assert_eq!(events.last().unwrap()["outcome"], "succeeded");
    // The first notification was received (and answered badly or never).
    assert_eq!(r.events().first().map(String::as_str), Some("started"));
    let stderr = out.stderr_text();
    let logged = stderr.matches(&format!("to {} failed", r.url)).count();
    match answer {
        // Three quick answers of 500 fit the flush bound: logged, once.
        Answer::Fail => assert_eq!(logged, 1, "{stderr}"),
        // Attempts that time out may outlast it: logged at most once.
        _ => assert!(logged <= 1, "logged {logged} times: {stderr}"),
    }
}

#[test]
fn a_receiver_answering_500_changes_nothing() {
    unchanged_by(Answer::Fail);
}

#[test]
fn a_receiver_that_hangs_changes_nothing_and_the_deploy_ends() {
    unchanged_by(Answer::Hang);
}
