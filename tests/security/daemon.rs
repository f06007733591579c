//! The local daemon answers only its owner: no token, a wrong token, a web page's request or another
//! Unix user changes nothing, and the app keeps serving.

use crate::support::{self, OutputExt, Toml};

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// An app deployed on the local platform; its daemon is stopped when it goes away.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn deployed() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Toml::example_app()
            .set("cutover.local.command", support::example_app_binary())
            .write(dir.path().join("fly.toml"));
        let app = Self { dir };
        let out = app.run(&["deploy", "--platform", "local"]);
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        app
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        support::cutover(args)
            .config(self.dir.path().join("fly.toml").display().to_string())
            .state(self.daemon_dir().parent().unwrap())
            .run()
    }

    fn daemon_dir(&self) -> PathBuf {
        self.dir.path().join("state/local")
    }

    fn url(&self) -> String {
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(self.daemon_dir().join("daemon.json")).unwrap())
                .unwrap();
        info["url"].as_str().unwrap().to_string()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.daemon_dir().join("daemon.token")).unwrap().trim().to_string()
    }

    /// The daemon's pid, and the machines of the example app as its owner sees them.
    async fn machines(&self) -> Vec<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/apps/hello-cutover/machines", self.url()))
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Vec<Value>>().await.unwrap()
    }

    /// The app's proxy answers `GET /` (the machines keep serving).
    async fn serves(&self) -> bool {
        let r = reqwest::Client::new()
            .get(format!("{}/cutover/v1/status", self.url()))
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap();
        let status: Value = r.json().await.unwrap();
        let proxy = status["apps"]["hello-cutover"].as_str().unwrap().to_string();
        reqwest::get(format!("http://{proxy}/")).await.is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.run(&["local", "down"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_the_daemon_answers_401_and_changes_nothing() {
    let app = App::deployed();
    let url = app.url();
    let before = app.machines().await;
    assert_eq!(before.len(), 3);
    let marker = app.dir.path().join("pwned");
    let http = reqwest::Client::new();
    let evil = serde_json::json!({
        "command": ["/bin/sh", "-c", format!("id > {}", marker.display())], "cwd": "/", "kill_signal": "SIGINT",
        "kill_timeout_ms": 1000, "checks": [], "port": 0
    });
    let create = serde_json::json!({"config": {"image": "evil"}, "region": "ams"});
    let id = before[0]["id"].as_str().unwrap();
    for auth in [None, Some("Bearer wrong"), Some("wrong"), Some(&*format!("Bearer {}x", app.token()))] {
        let with = |rb: reqwest::RequestBuilder| match auth {
            Some(a) => rb.header("authorization", a),
            None => rb,
        };
        let tries = [
            with(http.put(format!("{url}/cutover/v1/apps/evil")).json(&evil)),
            with(http.post(format!("{url}/v1/apps/evil/machines")).json(&create)),
            with(http.post(format!("{url}/v1/apps/hello-cutover/machines")).json(&create)),
            with(http.delete(format!("{url}/v1/apps/hello-cutover/machines/{id}?kill=true"))),
            with(http.post(format!("{url}/v1/apps/hello-cutover/machines/{id}/cordon"))),
            with(http.get(format!("{url}/v1/apps/hello-cutover/machines"))),
            with(http.post(format!("{url}/cutover/v1/shutdown"))),
        ];
        for req in tries {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{auth:?}");
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!marker.exists(), "the unauthenticated command ran");
    let after = app.machines().await;
    let ids = |ms: &[Value]| ms.iter().map(|m| (m["id"].clone(), m["cordoned"].clone())).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after), "nothing changed");
    let r = http.get(format!("{url}/cutover/v1/apps/evil")).bearer_auth(app.token()).send().await.unwrap();
    assert_eq!(r.status(), 404, "the app was never registered");
    assert!(app.serves().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_pages_shutdown_is_refused_and_the_machines_keep_serving() {
    let app = App::deployed();
    let url = app.url();
    let http = reqwest::Client::new();
    // What a page on another site can make a browser send without asking: a text/plain POST with the
    // page's Origin. Refused with or without the token (a page cannot have it, but the daemon does not
    // rely on that alone).
    for token in [None, Some(app.token())] {
        let mut req = http
            .post(format!("{url}/cutover/v1/shutdown"))
            .header("origin", "http://evil.example")
            .header("content-type", "text/plain")
            .body("{}");
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert!(status == 401 || status == 403, "{status}");
        if token.is_some() {
            assert_eq!(status, 403);
        }
    }
    // The token without an Origin but with a non-JSON body: still refused (415), as is a form.
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let r = http
            .post(format!("{url}/cutover/v1/shutdown"))
            .bearer_auth(app.token())
            .header("content-type", ct)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(app.machines().await.len(), 3, "the daemon still runs its machines");
    assert!(app.serves().await, "and they still serve");
    // The owner's `local down` still works.
    let out = app.run(&["local", "down"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert!(!app.daemon_dir().join("daemon.token").exists(), "the token goes with the daemon");
}

/// Why another Unix user cannot be made here, if one cannot.
fn no_second_user() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root, so no second user can be created".into());
    }
    for tool in ["useradd", "userdel", "runuser", "curl"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// A second Unix user, removed again when dropped.
struct OtherUser(String);

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_unix_user_cannot_reach_the_daemon() {
    if let Some(why) = no_second_user() {
        eprintln!("SKIPPED another_unix_user_cannot_reach_the_daemon: {why}");
        return;
    }
    let app = App::deployed();
    let url = app.url();
    let name = format!("cutover-t{}", std::process::id() % 100_000);
    let made = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/bin/sh", &name])
        .output()
        .unwrap();
    assert!(made.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&made.stderr));
    let user = OtherUser(name);
    let as_user = |args: &[&str]| {
        Command::new("runuser").args(["-u", &user.0, "--"]).args(args).current_dir("/").output().unwrap()
    };
    // The token is out of reach: its file is 0600 in a 0700 directory.
    let token_path = app.daemon_dir().join("daemon.token");
    let read = as_user(&["cat", token_path.to_str().unwrap()]);
    assert!(!read.status.success(), "the other user read the token");
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"), "{}", read.text());
    // The port is reachable, the API is not: every call is 401, and the shutdown does nothing.
    for (method, path) in [
        ("GET", "/v1/apps/hello-cutover/machines"),
        ("PUT", "/cutover/v1/apps/evil"),
        ("POST", "/cutover/v1/shutdown"),
    ] {
        let out = as_user(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            method,
            "-H",
            "content-type: application/json",
            "-d",
            "{\"command\":[\"/bin/sh\",\"-c\",\"id\"],\"cwd\":\"/\"}",
            &format!("{url}{path}"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "401",
            "{method} {path} as {}: {}",
            user.0,
            out.text()
        );
    }
    assert_eq!(app.machines().await.len(), 3);
    assert!(app.serves().await);
}
