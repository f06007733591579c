//! 1. Deploys under load: `cutover demo --json` for each built-in strategy, several runs each.

use super::*;

pub(crate) const STRATEGIES: [&str; 5] =
    ["rolling", "bluegreen", "canary", "drain-then-destroy", "immediate"];

/// One `cutover demo` in a fresh app directory; the daemon is stopped however it ends.
pub(crate) fn demo(hello: &Path, strategy: &str, rate: u32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let params = if strategy == "canary" { "\n    steps = [20, 50]\n    step_pause = \"1s\"" } else { "" };
    let fly = std::fs::read_to_string(support::root().join("examples/app/fly.toml")).unwrap();
    let fly = fly
        .replace("retries = 3", &format!("retries = 3{params}"))
        .replace(
            "command = \"../../target/debug/hello-cutover\"",
            &format!("command = {:?}", hello.display().to_string()),
        )
        .replace(
            "scenarios/happy.toml",
            &support::root().join("examples/app/scenarios/happy.toml").display().to_string(),
        );
    let config = dir.path().join("fly.toml");
    std::fs::write(&config, fly).unwrap();
    let run = |args: &[&str]| {
        Command::new(cutover_exe())
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("CUTOVER_CACHE_DIR", support::cache_dir())
            .env("CUTOVER_STATE_DIR", dir.path().join("state"))
            .output()
            .expect("run cutover")
    };
    let out = run(&["demo", "--json", "--rate", &rate.to_string(), "--strategy", strategy]);
    let _ = run(&["local", "down"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{strategy}: not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub(crate) fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub(crate) fn deploys(hello: &Path) {
    let rate: u32 = env_or("CUTOVER_BENCH_RATE", 500);
    let runs: usize = env_or("CUTOVER_BENCH_RUNS", 3).max(1);
    println!();
    println!(
        "== 1. deploys under load: `cutover demo --rate {rate}`, 3 machines, {runs} run(s) per strategy =="
    );
    println!("   (during the deploy = from its start until every machine serves again)");
    println!(
        "{:<20} {:>4} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "strategy", "run", "requests", "failed", "p50 ms", "p99 ms", "max ms", "deploy s", "switch ms"
    );
    let mut summary = Vec::new();
    for strategy in STRATEGIES {
        let mut rows = Vec::new();
        for run in 1..=runs {
            let r = demo(hello, strategy, rate);
            let d = &r["during_deploy"];
            let f = |k: &str| d[k].as_f64().unwrap_or(f64::NAN);
            let switch = r["phases"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p[0] == "switch traffic"))
                .and_then(|p| p[1].as_f64())
                .map(|s| s * 1000.0);
            let row = (
                d["requests"].as_u64().unwrap_or(0),
                d["failed"].as_u64().unwrap_or(0),
                f("p50_ms"),
                f("p99_ms"),
                f("max_ms"),
                r["deploy_seconds"].as_f64().unwrap_or(f64::NAN),
                switch,
            );
            println!(
                "{:<20} {:>4} {:>9} {:>7} {:>8.2} {:>8.2} {:>8.1} {:>9.2} {:>10}",
                strategy,
                run,
                row.0,
                row.1,
                row.2,
                row.3,
                row.4,
                row.5,
                row.6.map_or("-".into(), |s| format!("{s:.0}"))
            );
            if r["outcome"] != "succeeded" {
                println!("    outcome {}: {}", r["outcome"], r["error"]);
            }
            if let Some(errors) = d["errors"].as_array().filter(|e| !e.is_empty()) {
                println!("    errors: {}", Value::Array(errors.clone()));
            }
            rows.push(row);
        }
        summary.push((strategy, rows));
    }
    println!();
    println!("summary (medians over runs; failed as total / requests):");
    println!(
        "| strategy | failed / requests during deploy | p50 ms | p99 ms | deploy time s | switch traffic ms |"
    );
    println!("|---|---|---|---|---|---|");
    for (strategy, rows) in summary {
        let requests: u64 = rows.iter().map(|r| r.0).sum();
        let failed: u64 = rows.iter().map(|r| r.1).sum();
        let per_run: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
        let mut p50: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let mut p99: Vec<f64> = rows.iter().map(|r| r.3).collect();
        let mut secs: Vec<f64> = rows.iter().map(|r| r.5).collect();
        let mut switch: Vec<f64> = rows.iter().filter_map(|r| r.6).collect();
        println!(
            "| {strategy} | {failed} / {requests} (per run: {}) | {:.2} | {:.2} | {:.1} | {} |",
            per_run.join(", "),
            median(&mut p50),
            median(&mut p99),
            median(&mut secs),
            if switch.is_empty() { "—".into() } else { format!("{:.0}", median(&mut switch)) }
        );
    }
}
