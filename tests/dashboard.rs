//! `cutover dashboard` end to end: its actions and refusals over HTTP on the simulator, and in real
//! headless Chromium (driven over WebDriver by chromedriver) a canary deploy on the local platform that
//! appears and advances live, and that the Promote button lets through its manual gate.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (`.ci/browser install`): without
//! them it fails under CI (`CI=1`) saying so, and elsewhere skips with a printed reason. It speaks the
//! W3C WebDriver protocol to chromedriver with the tests' HTTP client (a session, navigation, finding
//! an element by CSS, its text, a click, a screenshot: a handful of JSON calls).

use crate::support::{self, Toml};

use base64::Engine;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A running `cutover dashboard`, stopped when dropped.
struct Dashboard {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// The address it printed, with its token.
    url: String,
    token: String,
}

impl Dashboard {
    fn start(config: &Path, state: &Path) -> Self {
        let mut child = support::cutover(["dashboard", "--config"])
            .arg(config)
            .state(state)
            .spawn(Stdio::piped(), Stdio::inherit());
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
        // Keep reading, so what it prints later never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = first.split_whitespace().last().unwrap_or_default().to_string();
        let (base, token) = url.split_once("/?token=").unwrap_or_else(|| panic!("no address in {first:?}"));
        assert_eq!(token.len(), 64, "a 256-bit token: {first}");
        assert!(base.starts_with("http://127.0.0.1:"), "loopback only: {first}");
        Self { base: base.to_string(), token: token.to_string(), url, child }
    }

    fn post(&self, action: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let req = reqwest::Client::new().post(format!("{}/api/{action}", self.base)).body("{}");
        let r = block(with(req, headers).send()).unwrap();
        (r.status().as_u16(), block(r.json()).unwrap_or(Value::Null))
    }

    /// GET `path` (no redirects followed): the status and the response.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::Response) {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let r = block(with(client.get(url), headers).send()).unwrap();
        (r.status().as_u16(), r)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a future to its end (the tests are synchronous; reqwest is async).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn with(mut req: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

/// The example app deployed by a canary that waits for a person at a manual gate after its first step.
fn canary_with_a_manual_gate() -> Toml {
    Toml::example_app()
        .set("deploy.strategy", "canary")
        .set("cutover.params.steps", [10, 50])
        .set("cutover.params.manual_gates", [10])
}

/// `cutover deploy --json` in the background, and its output lines as they come.
fn deploy_in_background(config: &Path, state: &Path, extra: &[&str]) -> (Child, Receiver<String>) {
    let mut child = support::cutover(["deploy", "--json", "--config"])
        .arg(config)
        .args(extra)
        .state(state)
        .spawn(Stdio::piped(), Stdio::inherit());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    (child, rx)
}

/// Read `rx` until a line contains `what`; the lines read so far.
fn wait_for_line(rx: &Receiver<String>, what: &str, within: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(what);
                lines.push(line);
                if found {
                    return lines;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {what:?} within {within:?}: {lines:?}");
}

#[test]
fn actions_are_the_commands_and_refused_without_the_token_or_from_another_site() {
    let dir = tempfile::tempdir().unwrap();
    let config = canary_with_a_manual_gate().write(dir.path().join("fly.toml"));
    let state = dir.path().join("state");
    let dash = Dashboard::start(&config, &state);
    let token = dash.token.as_str();
    let ok = [("x-cutover-token", token), ("content-type", "application/json")];

    // Without the token: 401, for the page, the state, the stream and every action.
    for path in ["/", "/api/state", "/api/events", "/dashboard.js"] {
        assert_eq!(dash.get(path, &[]).0, 401, "{path}");
    }
    assert_eq!(dash.get("/?token=0000", &[]).0, 401);
    for action in ["promote", "abort", "rollback"] {
        let (code, body) = dash.post(action, &[("content-type", "application/json")]);
        assert_eq!(code, 401, "{action}: {body}");
        assert!(body["error"].as_str().unwrap().contains("missing or wrong token"), "{body}");
    }
    // With it, but from another page, or as a form: refused too.
    let (code, _) = dash.post("promote", &[ok[0], ok[1], ("origin", "http://evil.example")]);
    assert_eq!(code, 403);
    let (code, _) = dash.post("promote", &[ok[0], ok[1], ("sec-fetch-site", "cross-site")]);
    assert_eq!(code, 403);
    let (code, _) = dash.post("promote", &[ok[0], ("content-type", "application/x-www-form-urlencoded")]);
    assert_eq!(code, 415);
    assert_eq!(dash.get("/api/state", &[ok[0], ("host", "evil.example")]).0, 403);
    // The page with the token sets the cookie and sends the browser back to `/` without it.
    let (code, first) = dash.get(&dash.url, &[]);
    assert_eq!(code, 303);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains(&format!("cutover_dashboard={token}"))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(dash.get("/", &[("cookie", &format!("cutover_dashboard={token}"))]).0, 200);

    // Nothing runs yet: the actions say so, as the commands do.
    let (code, body) = dash.post("promote", &ok);
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no deploy of hello-cutover is running"), "{body}");

    // A canary waits at its gate; Abort fails the gate, and the strategy undoes the canary.
    let (mut child, rx) = deploy_in_background(&config, &state, &[]);
    wait_for_line(&rx, "waiting at manual gate", Duration::from_secs(120));
    // The strategy logs the wait just before the journal records it: ask until the journal has it.
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    let (code, body) = loop {
        let (code, body) = dash.post("abort", &ok);
        let early = code == 409
            && body["error"].as_str().unwrap_or_default().contains("not waiting at a manual gate");
        if !early || std::time::Instant::now() > give_up {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, 200, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at manual gate `step-10`"), "{body}");
    let status = child.wait().unwrap();
    let lines: Vec<String> = rx.iter().collect();
    assert_eq!(status.code(), Some(1), "an aborted deploy fails: {lines:?}");
    let end: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(end["outcome"], "failed");
    assert!(end["error"].as_str().unwrap().contains("aborted at manual gate `step-10`"), "{end}");
    assert_eq!(end["fleet"]["by_version"], json!([[1, 10]]), "the canary was undone");

    // The state the page is fed says the same.
    let (code, r) = dash.get("/api/state", &[ok[0]]);
    assert_eq!(code, 200);
    let state_now: Value = block(r.json()).unwrap();
    assert_eq!(state_now["releases"][0]["status"], "failed", "{state_now:#}");
    assert_eq!(state_now["latest"]["machines"], json!([[1, 10]]), "{state_now:#}");
}

/// Where the browser test's screenshot goes (a CI artifact).
fn artifact_dir() -> PathBuf {
    support::root().join("target").join("dashboard-test")
}

/// chromium and chromedriver, or why the browser test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()))
    };
    let chromium = find("chromium").ok_or("no `chromium` on PATH (Debian package chromium)")?;
    let driver = find("chromedriver").ok_or("no `chromedriver` on PATH (Debian package chromium-driver)")?;
    Ok((chromium, driver))
}

/// A chromedriver of our own on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start(path: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One WebDriver session in chromedriver.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
}

impl Browser {
    async fn start(driver_port: u16, chromium: &Path) -> Self {
        let http = reqwest::Client::new();
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }}}});
        let base = format!("http://127.0.0.1:{driver_port}");
        let answer = call(http.post(format!("{base}/session")).json(&caps)).await;
        let id = answer["sessionId"].as_str().unwrap_or_else(|| panic!("no chromium session: {answer}"));
        Self { session: format!("{base}/session/{id}"), http }
    }

    async fn goto(&self, url: &str) {
        call(self.http.post(format!("{}/url", self.session)).json(&json!({ "url": url }))).await;
    }

    async fn url(&self) -> String {
        call(self.http.get(format!("{}/url", self.session))).await.as_str().unwrap_or_default().to_string()
    }

    /// The element `css` selects, if there is one now.
    async fn find(&self, css: &str) -> Option<String> {
        let req = self.http.post(format!("{}/element", self.session));
        let r = req.json(&json!({ "using": "css selector", "value": css })).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        let element = v["value"].as_object()?.values().next()?.as_str()?.to_string();
        Some(element)
    }

    async fn element(&self, css: &str) -> String {
        self.find(css).await.unwrap_or_else(|| panic!("no element {css}"))
    }

    async fn text(&self, css: &str) -> Option<String> {
        let e = self.find(css).await?;
        let v = call(self.http.get(format!("{}/element/{e}/text", self.session))).await;
        v.as_str().map(str::to_string)
    }

    async fn enabled(&self, css: &str) -> bool {
        let e = self.element(css).await;
        call(self.http.get(format!("{}/element/{e}/enabled", self.session))).await == json!(true)
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        call(self.http.post(format!("{}/element/{e}/click", self.session)).json(&json!({}))).await;
    }

    /// The page as PNG bytes.
    async fn screenshot(&self) -> Vec<u8> {
        let v = call(self.http.get(format!("{}/screenshot", self.session))).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// One WebDriver call: its `value`, or a panic with the driver's error.
async fn call(req: reqwest::RequestBuilder) -> Value {
    let r = req.send().await.expect("chromedriver answers");
    let status = r.status();
    let v: Value = r.json().await.expect("chromedriver answers JSON");
    assert!(status.is_success(), "WebDriver call failed ({status}): {v}");
    v["value"].clone()
}

/// Wait until the element `css` shows text containing `what`, reading it as the page changes.
async fn until_text(b: &Browser, css: &str, what: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(text) = b.text(css).await {
            last = text;
            if last.contains(what) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} never showed {what:?} within {within:?}; last: {last:?}");
}

#[test]
fn in_chromium_a_live_canary_on_the_local_platform_is_promoted_by_its_button() {
    let (chromium, chromedriver) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var_os("CI").is_some_and(|v| v == "1") => {
            panic!(
                "the dashboard's browser test cannot run in CI: {why}; `.ci/browser install` installs them"
            )
        }
        Err(why) => {
            eprintln!("skipped: {why} (`.ci/browser install` installs them)");
            return;
        }
    };
    // The example app as real processes behind the local proxy; the canary waits at a manual gate.
    let dir = tempfile::tempdir().unwrap();
    let fly = canary_with_a_manual_gate()
        .set("cutover.local.command", support::example_app_binary())
        .set("cutover.params.step_pause", "1s");
    let config = fly.write(dir.path().join("fly.toml"));
    let state = dir.path().join("state");
    let _down = LocalDown(config.clone(), state.clone());
    let launched = support::cutover(["deploy", "--platform", "local", "--config"])
        .arg(&config)
        .args(["--image", "registry.fly.io/hello-cutover:v1"])
        .state(&state)
        .run();
    assert_eq!(launched.status.code(), Some(0), "{}", String::from_utf8_lossy(&launched.stderr));

    let dash = Dashboard::start(&config, &state);
    let driver = Driver::start(&chromedriver);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = Browser::start(driver.1, &chromium).await;

        // The page loads (the token in the address lets it in) and shows the launch, live.
        c.goto(&dash.url).await;
        assert_eq!(c.url().await, format!("{}/", dash.base), "the token left the address");
        until_text(&c, "#connection", "live", Duration::from_secs(30)).await;
        until_text(&c, "#releases tbody", "v1", Duration::from_secs(30)).await;

        // The deploy starts after the page loaded: what follows arrives by server-sent events only.
        let (mut child, rx) = deploy_in_background(&config, &state, &["--platform", "local"]);
        until_text(&c, "#status", "running", Duration::from_secs(60)).await;
        until_text(&c, "#gate", "step-10", Duration::from_secs(120)).await;
        let machines = until_text(&c, "#machines", "v2", Duration::from_secs(10)).await;
        assert!(machines.contains("v1"), "old and new releases side by side: {machines}");
        let phases = c.text("#phases").await.unwrap_or_default();
        assert!(!phases.is_empty(), "the canary's phases are listed");
        assert!(c.enabled("#promote").await, "Promote is offered at the gate");

        std::fs::create_dir_all(artifact_dir()).unwrap();
        std::fs::write(artifact_dir().join("dashboard.png"), c.screenshot().await).unwrap();

        // Promote: the gate opens, and the deploy goes on to succeed, seen live on the page.
        c.click("#promote").await;
        until_text(&c, "#message", "promoted gate `step-10`", Duration::from_secs(10)).await;
        until_text(&c, "#status", "succeeded", Duration::from_secs(180)).await;
        let status = child.wait().unwrap();
        let lines: Vec<String> = rx.iter().collect();
        assert_eq!(status.code(), Some(0), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("manual gate `step-10` promoted")), "{lines:?}");
        assert!(!c.enabled("#promote").await, "no gate, no Promote");
        std::fs::write(artifact_dir().join("dashboard-succeeded.png"), c.screenshot().await).unwrap();
        c.close().await;
    });
}

/// `cutover local down` for the app when the test ends, however it ends.
struct LocalDown(PathBuf, PathBuf);

impl Drop for LocalDown {
    fn drop(&mut self) {
        let _ = support::cutover(["local", "down", "--config"]).arg(&self.0).state(&self.1).run();
    }
}
