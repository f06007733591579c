//! Metrics on the local platform, end to end: the example app's `/metrics`, the daemon's Prometheus
//! service discovery file, and a real Prometheus (Debian's, started by `.ci/prometheus`) scraping the
//! machines through that file while load with errors on one release goes through the proxy. What a
//! canary gate queries is checked against what the client itself saw.

use crate::support::{self, OutputExt, Toml};

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const APP: &str = "metrics-test";

fn daemon(state: &Path) -> (String, reqwest::Client) {
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("local/daemon.json")).unwrap()).unwrap();
    let token = std::fs::read_to_string(state.join("local/daemon.token")).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {}", token.trim()).parse().unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    (info["url"].as_str().unwrap().to_string(), http)
}

/// The discovery file's groups, by machine id: (target, labels).
fn targets(file: &Path) -> BTreeMap<String, (String, Value)> {
    let groups: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap_or_else(|_| "[]".into()))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let id = g["labels"]["instance"].as_str().unwrap().to_string();
            (id, (g["targets"][0].as_str().unwrap().to_string(), g["labels"].clone()))
        })
        .collect()
}

/// An instant query's result as (the value of label `by`) → number.
async fn query(prom: &str, promql: &str, by: &str) -> BTreeMap<String, f64> {
    let r: Value = reqwest::Client::new()
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "success", "{promql}: {r}");
    r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["metric"][by].as_str().unwrap_or_default().to_string();
            (key, s["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_fleet_through_the_discovery_file_and_tells_the_releases_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fly.toml");
    Toml::example_app().set("cutover.local.command", support::example_app_binary()).write(&config);
    let state: PathBuf = dir.path().join("state");
    let out = support::cutover(["local", "up"]).config(&config).state(&state).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let file = state.join("local/prometheus-targets.json");
    assert!(out.stdout_text().contains(&file.display().to_string()), "`local up` says where: {}", out.text());
    let _down = Down(config.clone(), state.clone());
    let Some(prom) = support::prometheus::serve("metrics_tell_releases_apart", &file) else { return };
    let (url, http) = daemon(&state);

    // Two machines of release 1; one of release 2, whose image tag makes a quarter of `/` answer 500.
    let spec = json!({
        "command": [support::example_app_binary()], "cwd": dir.path(), "kill_signal": "SIGINT",
        "kill_timeout_ms": 5000, "checks": [], "port": 0, "env": {"HELLO_ERROR_RATE": "0.25"}
    });
    let r = http.put(format!("{url}/cutover/v1/apps/{APP}")).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let machines = format!("{url}/v1/apps/{APP}/machines");
    let mut ids = Vec::new();
    for (version, tag, region) in [("1", "v1", "ams"), ("1", "v1", "fra"), ("2", "v2-errors", "ams")] {
        let body = json!({"config": {"image": format!("registry.fly.io/hello-cutover:{tag}"),
            "metadata": {"fly_release_version": version}}, "region": region});
        let m: Value = http.post(&machines).json(&body).send().await.unwrap().json().await.unwrap();
        let id = m["id"].as_str().unwrap_or_else(|| panic!("no machine: {m}")).to_string();
        let r = http.get(format!("{machines}/{id}/wait?state=started&timeout=10")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        ids.push((id, version, region));
    }

    // The discovery file lists each running machine with its labels.
    let listed = targets(&file);
    assert_eq!(listed.len(), 3, "{listed:#?}");
    for (id, version, region) in &ids {
        let (target, labels) = &listed[id];
        assert!(target.starts_with("127.0.0.1:"), "{target}");
        assert_eq!(labels["app"], APP);
        assert_eq!(labels["version"], *version);
        assert_eq!(labels["region"], *region);
        assert_eq!(labels["process_group"], "app");
    }

    // Load through the proxy; the client counts what each release answered.
    let status: Value =
        http.get(format!("{url}/cutover/v1/status")).send().await.unwrap().json().await.unwrap();
    let proxy = status["apps"][APP].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let mut seen: BTreeMap<(String, u16), f64> = BTreeMap::new();
    for _ in 0..600 {
        let r = client.get(format!("http://{proxy}/")).send().await.unwrap();
        let version = r.headers()["x-release-version"].to_str().unwrap().to_string();
        *seen.entry((version, r.status().as_u16())).or_default() += 1.0;
    }
    let sent = |v: &str| seen.iter().filter(|((ver, _), _)| ver == v).map(|(_, n)| n).sum::<f64>();
    let failed = |v: &str| seen.get(&(v.to_string(), 500)).copied().unwrap_or(0.0);
    assert!(sent("2") >= 50.0 && sent("1") >= 50.0, "the proxy spread the load over both releases: {seen:?}");
    assert_eq!(failed("1"), 0.0, "{seen:?}");
    assert!(failed("2") > 0.0, "{seen:?}");

    // Prometheus, through the discovery file, sees each machine under its id and the releases apart.
    let totals = format!(r#"sum by (version) (http_requests_total{{app="{APP}",path="/"}})"#);
    let errors = format!(r#"sum by (version) (http_requests_total{{app="{APP}",path="/",code=~"5.."}})"#);
    let mut waited = 0;
    loop {
        let t = query(&prom.url, &totals, "version").await;
        if t.get("1") == Some(&sent("1")) && t.get("2") == Some(&sent("2")) {
            break;
        }
        waited += 1;
        assert!(waited < 300, "Prometheus never caught up with the load: {t:?}, the client saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = query(&prom.url, &errors, "version").await;
    assert_eq!(e.get("2"), Some(&failed("2")), "{e:?}");
    assert_eq!(e.get("1"), None, "release 1 answered no 500: {e:?}");
    let up = query(&prom.url, &format!(r#"up{{app="{APP}"}}"#), "instance").await;
    let instances: Vec<&String> = up.keys().collect();
    let mut expected: Vec<&String> = ids.iter().map(|(id, _, _)| id).collect();
    expected.sort();
    assert_eq!(instances, expected, "each machine is scraped as its own instance");
    // The ratio a canary gate asks for.
    let ratio = query(&prom.url, &format!("{errors} / {totals}"), "version").await;
    assert!((ratio["2"] - failed("2") / sent("2")).abs() < 1e-9, "{ratio:?}");
    assert!(ratio["2"] > 0.2 && ratio["2"] < 0.3, "a quarter of release 2's answers failed: {ratio:?}");

    // A destroyed machine leaves the file.
    let gone = &ids[2].0;
    let r = http.delete(format!("{machines}/{gone}?kill=true")).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    let listed = targets(&file);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(!listed.contains_key(gone));
}

/// Stops the test's daemon (and its machines) however the test ends.
struct Down(PathBuf, PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = support::cutover(["local", "down"]).config(&self.0).state(&self.1).run();
    }
}
