//! Property tests that feed the loaders what a careless or hostile user might: arbitrary text and
//! near-valid TOML for the config (fly.toml, cutover.toml beside it, a simulator scenario), arbitrary
//! and mutated bytes for a strategy component. Every input must come back as `Ok` or as an error with a
//! message, never as a panic or a hang: a deploy tool that crashes on a typo in its config is one
//! nobody trusts with a fleet.
//!
//! proptest rather than cargo-fuzz so the properties run in the normal `cargo test` (stable toolchain,
//! no extra install) on every CI run; the generators aim at the loaders' structure (known keys with
//! values of every type) so most cases get past the TOML parser into our own validation.

use cutover::config::Config;
use cutover::runtime::{ComponentCache, Runtime};
use cutover::sim::Scenario;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Keys a fly.toml may hold, by table (the top level is `""`), with the keys cutover reads.
const KEYS: &[(&str, &[&str])] = &[
    ("", &["app", "primary_region", "kill_signal", "kill_timeout", "swap_size_mb"]),
    ("build", &["image", "dockerfile"]),
    (
        "deploy",
        &["strategy", "max_unavailable", "wait_timeout", "release_command", "release_command_timeout"],
    ),
    ("deploy.release_command_vm", &["size", "memory", "cpus", "cpu_kind", "memory_mb"]),
    ("http_service", &["internal_port", "force_https", "auto_stop_machines", "min_machines_running"]),
    ("checks.web", &["type", "port", "grace_period", "interval", "timeout", "method", "path", "protocol"]),
    ("cutover", &["platform", "concurrency"]),
    ("cutover.limits", &["memory_mb", "cpu_budget", "deadline"]),
    ("cutover.params", &["steps", "step_pause", "retries", "canary_count", "drain_timeout"]),
    ("cutover.local", &["command", "cwd", "port", "tcp", "machines", "regions"]),
    ("cutover.sim", &["scenario"]),
];

/// Keys of a simulator scenario, by table.
const SCENARIO_KEYS: &[(&str, &[&str])] = &[
    ("", &["seed", "concurrency"]),
    ("fleet", &["machines", "regions", "groups", "version", "image", "stopped", "volumes", "neighbours"]),
    ("latency", &["api", "boot", "stop"]),
    ("faults", &["api_error_rate", "api_timeout_rate", "api_timeout", "unhealthy_images", "crashing_images"]),
    ("traffic", &["connections", "connection_lifetime", "latency_ms"]),
    ("release_command", &["duration", "exit_code", "crash", "output"]),
];

/// A TOML value of any type, with the edge cases loaders trip on (negative and huge numbers, empty
/// and odd strings, durations with and without units, nested arrays).
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        prop_oneof![Just(0i64), Just(-1), Just(1), Just(65_536), Just(i64::MAX)].prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("TOML has no NaN literal here", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9 ./:_-]{0,12}".prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("5s"),
            Just("-1s"),
            Just("1h30m"),
            Just("0"),
            Just("99999999999d"),
            Just("ms"),
            Just("1.5m")
        ]
        .prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("bluegreen"),
            Just("canary"),
            Just("./missing.wasm"),
            Just(""),
            Just("sim"),
            Just("local")
        ]
        .prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner, 0..3).prop_map(|v| {
                let fields: Vec<String> = v.iter().enumerate().map(|(i, x)| format!("k{i} = {x}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

/// A TOML document over `keys`: some tables, some of their keys, each with a value of any type.
fn document(keys: &'static [(&'static str, &'static [&'static str])]) -> impl Strategy<Value = String> {
    let entry = (0..keys.len()).prop_flat_map(move |t| {
        let names = keys[t].1;
        (Just(t), prop::collection::vec((0..names.len(), value()), 0..5))
    });
    prop::collection::vec(entry, 0..6).prop_map(move |tables| {
        let mut text = String::new();
        let mut seen = std::collections::BTreeSet::new();
        // Top-level keys must come before any table header.
        let mut ordered = tables;
        ordered.sort_by_key(|(t, _)| !keys[*t].0.is_empty());
        for (t, fields) in ordered {
            let (table, names) = keys[t];
            if !seen.insert(table) {
                continue;
            }
            if !table.is_empty() {
                text.push_str(&format!("[{table}]\n"));
            }
            let mut used = std::collections::BTreeSet::new();
            for (k, v) in fields {
                if used.insert(k) {
                    text.push_str(&format!("{} = {v}\n", names[k]));
                }
            }
        }
        text
    })
}

/// Loads a fly.toml (and optionally a cutover.toml beside it) from a fresh directory.
fn load_config(fly: &str, side: Option<&str>) -> Result<Config, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fly.toml");
    std::fs::write(&path, fly).expect("write fly.toml");
    if let Some(side) = side {
        std::fs::write(dir.path().join("cutover.toml"), side).expect("write cutover.toml");
    }
    Config::load(&path).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text at all: an error that names the file, or a config.
    #[test]
    fn config_loader_takes_any_text(text in ".{0,400}") {
        if let Err(message) = load_config(&text, None) {
            prop_assert!(message.contains("fly.toml"), "the error names the file: {message}");
        }
    }

    /// Well-formed TOML over the keys cutover reads, with values of every type.
    #[test]
    fn config_loader_takes_any_values(fly in document(KEYS), side in prop::option::of(document(&KEYS[5..]))) {
        if let Err(message) = load_config(&format!("app = \"fuzz\"\n{fly}"), side.as_deref()) {
            prop_assert!(!message.trim().is_empty());
            prop_assert!(message.contains(".toml"), "the error names the file: {message}");
        }
    }

    /// Simulator scenarios: parsed and validated, never a panic.
    #[test]
    fn scenario_loader_takes_any_values(text in document(SCENARIO_KEYS)) {
        if let Err(e) = Scenario::parse(&text) {
            let message = format!("{:#}", e);
            prop_assert!(!message.trim().is_empty());
        }
    }
}

/// One runtime for the component properties, with its compile cache in a directory of its own: a
/// mutated component that happens to compile must not land in the cache the other tests share.
fn fuzz_runtime() -> &'static Runtime {
    static RT: OnceLock<(tempfile::TempDir, Runtime)> = OnceLock::new();
    &RT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(ComponentCache::at(dir.path().to_path_buf())).expect("runtime");
        (dir, runtime)
    })
    .1
}

/// A built-in strategy's bytes, as a starting point for mutations.
fn immediate() -> &'static [u8] {
    cutover::builtins::builtin("immediate").expect("immediate is built in")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes, with and without the wasm magic in front.
    #[test]
    fn component_loader_takes_any_bytes(
        magic in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = if magic { b"\0asm\x0d\0\x01\0".to_vec() } else { Vec::new() };
        bytes.extend(body);
        let result = fuzz_runtime().load(&bytes);
        prop_assert!(result.is_err(), "random bytes are not a strategy");
    }

    /// A real strategy with a few bytes changed, and sometimes truncated: refused with an error or,
    /// if the change happens to leave it valid (most single flips land in data), loaded and asked to
    /// describe itself, which may then fail; never a panic.
    #[test]
    fn component_loader_takes_damaged_components(
        cut in prop::option::of(0.0f64..1.0),
        flips in prop::collection::vec((0.0f64..1.0, any::<u8>()), 1..4),
    ) {
        let mut bytes = immediate().to_vec();
        for (at, byte) in flips {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] ^= byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(((bytes.len() as f64) * cut) as usize);
        }
        match fuzz_runtime().load(&bytes) {
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.trim().is_empty());
            }
            Ok(component) => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
                if let Err(e) = rt.block_on(fuzz_runtime().describe(&component)) {
                    let message = e.to_string();
                    prop_assert!(!message.trim().is_empty());
                }
            }
        }
    }
}
