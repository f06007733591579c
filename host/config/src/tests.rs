use super::*;
use cutover_core::CheckKind;
use cutover_core::contract::{MaxUnavailable, ParamKind, ParamSpec, ParamValue};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
    p
}

const FLY: &str = r#"
app = "hello"
primary_region = "ams"
kill_signal = "SIGTERM"
kill_timeout = "10s"

[build]
  image = "registry.fly.io/hello:v2"

[deploy]
  strategy = "rolling"
  max_unavailable = 2
  wait_timeout = "2m"
  release_command = "bin/migrate"

[http_service]
  internal_port = 8080
  force_https = true
  [[http_service.checks]]
    grace_period = "10s"
    interval = "30s"
    method = "GET"
    path = "/health"
    timeout = "5s"

[[services]]
  internal_port = 9000
  protocol = "tcp"
  [[services.tcp_checks]]
    grace_period = 2000
    interval = 5000
    timeout = 1000
"#;

#[test]
fn reads_an_existing_fly_toml_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write(&dir, "fly.toml", FLY)).unwrap();
    assert_eq!(c.app, "hello");
    assert_eq!(c.image.as_deref(), Some("registry.fly.io/hello:v2"));
    assert_eq!(c.strategy, StrategyRef::BuiltIn("rolling".into()));
    assert_eq!(c.max_unavailable, MaxUnavailable::Count(2));
    assert_eq!(c.wait_timeout, Duration::from_secs(120));
    assert_eq!(c.kill_signal, "SIGTERM");
    assert_eq!(c.kill_timeout, Duration::from_secs(10));
    assert_eq!(c.release_command.as_deref(), Some("bin/migrate"));
    assert_eq!(c.checks.len(), 2);
    assert_eq!(c.checks[0].grace_period, Duration::from_secs(10));
    assert_eq!(c.checks[0].port, Some(8080));
    assert_eq!(c.checks[1].kind, CheckKind::Tcp);
    assert_eq!(c.checks[1].interval, Duration::from_secs(5), "integers are milliseconds");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.cutover.platform, PlatformKind::Sim);
}

#[test]
fn defaults_follow_flyctl() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write(&dir, "fly.toml", "app = \"a\"")).unwrap();
    assert_eq!(c.max_unavailable, MaxUnavailable::Fraction(0.33));
    assert_eq!(c.wait_timeout, Duration::from_secs(300));
    assert_eq!(c.kill_signal, "SIGINT");
    assert_eq!(c.kill_timeout, Duration::from_secs(5));
    assert_eq!(c.strategy, StrategyRef::BuiltIn("rolling".into()));
    assert_eq!(c.cutover.concurrency, 8);
    assert_eq!((c.release_command.as_deref(), c.release_command_timeout), (None, Duration::from_secs(300)));
    assert_eq!(c.release_command_vm, None);
}

#[test]
fn release_command_is_split_and_its_vm_read_as_flyctl_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "app = \"a\"\n[deploy]\nrelease_command = \"bin/migrate --to 'v 2'\"\n\
                release_command_timeout = \"90s\"\n[deploy.release_command_vm]\nsize = \"performance-2x\"\n\
                memory = \"8g\"\ngpus = 0\n";
    let c = Config::load(&write(&dir, "fly.toml", text)).unwrap();
    assert_eq!(c.release_command_args, ["bin/migrate", "--to", "v 2"]);
    assert_eq!(c.release_command_timeout, Duration::from_secs(90));
    let vm = c.release_command_vm.clone().unwrap();
    assert_eq!((vm.size.as_deref(), vm.memory_mb), (Some("performance-2x"), Some(8192)));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let cmd = c.release_command_for(&cutover_core::Release { version: 4, image: "img".into() }).unwrap();
    assert_eq!((cmd.args.len(), cmd.timeout, cmd.release.version), (3, Duration::from_secs(90), 4));
}

#[test]
fn bad_release_command_keys_say_which_key_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key, expected) in [
        ("release_command = \"bin/migrate 'open\"", "deploy.release_command", "balanced quotes"),
        ("release_command = \"  \"", "deploy.release_command", "a command to run"),
        ("release_command_timeout = \"0s\"", "deploy.release_command_timeout", "above zero"),
        ("[deploy.release_command_vm]\nsize = \"huge\"", "release_command_vm.size", "shared-cpu-2x"),
        ("[deploy.release_command_vm]\ncpu_kind = \"gpu\"", "release_command_vm.cpu_kind", "performance"),
        ("[deploy.release_command_vm]\nmemory = \"lots\"", "release_command_vm.memory", "512mb"),
        ("[deploy.release_command_vm]\ncpus = 0", "release_command_vm.cpus", "at least 1"),
    ] {
        let p = write(&dir, "fly.toml", &format!("app = \"a\"\n[deploy]\n{text}\n"));
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("fly.toml") && e.contains(key) && e.contains(expected), "{text}: {e}");
    }
}

#[test]
fn wrong_type_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[deploy]\nwait_timeout = true\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("fly.toml"), "{e}");
    assert!(e.contains("wait_timeout"), "{e}");
    assert!(e.contains("duration"), "{e}");
}

#[test]
fn bad_max_unavailable_says_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[deploy]\nmax_unavailable = -1\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("deploy.max_unavailable"), "{e}");
    assert!(e.contains("count >= 1 or a fraction"), "{e}");
}

#[test]
fn unknown_keys_are_warnings_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[deploy]\nstratgy = \"bluegreen\"\n[env]\nX = \"1\"\n");
    let c = Config::load(&p).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("deploy.stratgy"));
}

#[test]
fn missing_app_is_an_actionable_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Config::load(&write(&dir, "fly.toml", "[deploy]\n")).unwrap_err().to_string();
    assert!(e.contains("`app` is missing"), "{e}");
}

#[test]
fn cutover_toml_beside_fly_toml() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n");
    write(
        &dir,
        "cutover.toml",
        "platform = \"sim\"\nconcurrency = 32\n[limits]\nmemory_mb = 64\ncpu_budget = \"500ms\"\n[params]\nretries = 5\n[sim]\nscenario = \"s.toml\"\n",
    );
    let c = Config::load(&p).unwrap();
    assert_eq!(c.cutover.concurrency, 32);
    assert_eq!(c.cutover.limits.memory_bytes, 64 << 20);
    assert_eq!(c.cutover.limits.cpu_budget, Duration::from_millis(500));
    assert_eq!(c.cutover.scenario, Some(dir.path().join("s.toml")));
    assert!(c.cutover_source.ends_with("cutover.toml"));
}

#[test]
fn both_cutover_sources_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover]\nconcurrency = 2\n");
    write(&dir, "cutover.toml", "concurrency = 3\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("keep one"), "{e}");
}

#[test]
fn unknown_platform_is_an_error_naming_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover]\nplatform = \"k8s\"\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("k8s") && e.contains("sim"), "{e}");
}

#[test]
fn strategy_path_is_resolved_against_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[deploy]\nstrategy = \"my/strategy.wasm\"\n");
    let c = Config::load(&p).unwrap();
    assert_eq!(c.strategy, StrategyRef::File(dir.path().join("my/strategy.wasm")));
}

#[test]
fn params_are_checked_against_the_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover.params]\nretries = \"many\"\n");
    let c = Config::load(&p).unwrap();
    let specs = vec![ParamSpec {
        name: "retries".into(),
        kind: ParamKind::Integer,
        default: Some(ParamValue::Integer(3)),
        summary: String::new(),
    }];
    let e = c.strategy_params(&specs, "rolling").unwrap_err().to_string();
    assert!(e.contains("cutover.params.retries") && e.contains("an integer"), "{e}");

    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover.params]\nbogus = 1\n");
    let (values, warnings) = Config::load(&p).unwrap().strategy_params(&specs, "rolling").unwrap();
    assert_eq!(values["retries"], ParamValue::Integer(3), "default filled in");
    assert!(warnings[0].contains("bogus"));
}

#[test]
fn sandbox_policies_apply_to_the_strategy_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "fly.toml",
        "app = \"a\"\n[cutover.limits]\ncpu_budget = \"3s\"\n\
         [[cutover.sandbox]]\nstrategy = \"./untrusted.wasm\"\nmemory_mb = 32\ndeny = [\"machines.destroy\", \"traffic.*\"]\n\
         process_groups = [\"web\"]\n\
         [[cutover.sandbox]]\nstrategy = \"canary\"\nregions = [\"ams\"]\n",
    );
    let c = Config::load(&p).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let (limits, grants) = c.cutover.sandbox_for(&StrategyRef::File(dir.path().join("untrusted.wasm")));
    assert_eq!(
        (limits.memory_bytes, limits.cpu_budget),
        (32 << 20, Duration::from_secs(3)),
        "own limits on top"
    );
    let ops = grants.operations.expect("restricted");
    assert!(
        !ops.contains("machines.destroy")
            && !ops.contains("traffic.cordon")
            && ops.contains("machines.update")
    );
    assert_eq!(grants.process_groups, Some(["web".to_string()].into()));
    let (_, canary) = c.cutover.sandbox_for(&StrategyRef::BuiltIn("canary".into()));
    assert_eq!((canary.operations, canary.regions), (None, Some(["ams".to_string()].into())));
    let (limits, rolling) = c.cutover.sandbox_for(&StrategyRef::BuiltIn("rolling".into()));
    let ops = rolling.operations.expect("a built-in that queries no metrics is not granted them");
    assert!(!ops.contains("metrics.query") && !ops.contains("metrics.query-range"), "{ops:?}");
    assert!(ops.contains("machines.update") && ops.contains("traffic.set-weights"), "{ops:?}");
    assert_eq!((rolling.process_groups, rolling.regions), (None, None));
    assert_eq!(limits.cpu_budget, Duration::from_secs(3), "[cutover.limits] for the others");
}

#[test]
fn a_sandbox_policy_naming_no_operation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[[cutover.sandbox]]\nallow = [\"machines.nuke\"]\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("fly.toml")
            && e.contains("cutover.sandbox[0]")
            && e.contains("`machines.nuke` is no operation"),
        "{e}"
    );
}

#[test]
fn host_calls_and_journal_bounds_are_limits() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "fly.toml",
        "app = \"a\"\n[cutover.limits]\nhost_calls = 5000\njournal_mb = 8\n\
         [[cutover.sandbox]]\nstrategy = \"./untrusted.wasm\"\nhost_calls = 100\n",
    );
    let c = Config::load(&p).unwrap();
    assert_eq!((c.cutover.limits.host_calls, c.cutover.limits.journal_bytes), (5000, 8 << 20));
    let (limits, _) = c.cutover.sandbox_for(&crate::StrategyRef::parse("./untrusted.wasm", dir.path()));
    assert_eq!((limits.host_calls, limits.journal_bytes), (100, 8 << 20));
    for bad in ["host_calls = 0", "journal_mb = 0"] {
        let p = write(&dir, "fly.toml", &format!("app = \"a\"\n[cutover.limits]\n{bad}\n"));
        let e = Config::load(&p).unwrap_err().to_string();
        let key = bad.split(' ').next().unwrap();
        assert!(e.contains(&format!("cutover.limits.{key}")), "{e}");
    }
}

#[test]
fn the_local_proxy_bounds_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover.local]\ncommand = \"app\"\n");
    assert_eq!(Config::load(&p).unwrap().cutover.local.proxy, cutover_core::ProxyLimits::default());
    let p = write(
        &dir,
        "fly.toml",
        "app = \"a\"\n[cutover.local]\nheader_timeout = \"3s\"\nmax_header_bytes = 8192\nmax_headers = 40\n\
         max_connections_per_client = 16\nmax_requests_per_connection = 50\n",
    );
    let proxy = Config::load(&p).unwrap().cutover.local.proxy;
    assert_eq!(proxy.header_timeout, Duration::from_secs(3));
    assert_eq!((proxy.max_header_bytes, proxy.max_headers, proxy.max_connections_per_client), (8192, 40, 16));
    assert_eq!(proxy.max_requests_per_connection, 50);
    for (bad, expected) in [
        ("header_timeout = \"0s\"", "between 1ms and 1h"),
        ("max_header_bytes = 100", "between 1024 and 1048576"),
        ("max_headers = 0", "between 1 and 10000"),
        ("max_connections_per_client = 0", "at least 1"),
        ("max_requests_per_connection = 0", "at least 1"),
    ] {
        let p = write(&dir, "fly.toml", &format!("app = \"a\"\n[cutover.local]\n{bad}\n"));
        let e = Config::load(&p).unwrap_err().to_string();
        let key = bad.split(' ').next().unwrap();
        assert!(e.contains(&format!("cutover.local.{key}")) && e.contains(expected), "{e}");
    }
}

#[test]
fn sticky_sessions_are_off_by_default_and_checked() {
    use cutover_core::StickySessions;
    let dir = tempfile::tempdir().unwrap();
    let sticky = |line: &str| {
        let p = write(&dir, "fly.toml", &format!("app = \"a\"\n[cutover.local]\n{line}\n"));
        Config::load(&p).map(|c| c.cutover.local.proxy.sticky).map_err(|e| e.to_string())
    };
    assert_eq!(sticky(""), Ok(None));
    assert_eq!(sticky("sticky_sessions = false"), Ok(None));
    assert_eq!(sticky("sticky_sessions = true"), Ok(Some(StickySessions::default())));
    assert_eq!(StickySessions::default().max_age, Duration::from_secs(86_400));
    let hour = Some(StickySessions { max_age: Duration::from_secs(3600) });
    assert_eq!(sticky("sticky_sessions = { max_age = \"1h\" }"), Ok(hour));
    assert_eq!(
        sticky("sticky_sessions = { max_age = \"0s\" }"),
        Ok(Some(StickySessions { max_age: Duration::ZERO }))
    );
    for (bad, key, expected) in [
        ("sticky_sessions = \"yes\"", "cutover.local.sticky_sessions", "true, false, or a table"),
        (
            "sticky_sessions = { max_age = \"forever\" }",
            "cutover.local.sticky_sessions.max_age",
            "a duration",
        ),
        (
            "sticky_sessions = { max_age = 3600 }",
            "cutover.local.sticky_sessions.max_age",
            "a duration string",
        ),
        ("sticky_sessions = { max_age = \"9601h\" }", "cutover.local.sticky_sessions.max_age", "400 days"),
        ("sticky_sessions = { cookie = \"x\" }", "cutover.local.sticky_sessions.cookie", "max_age"),
        (
            "tcp = true\nsticky_sessions = true",
            "cutover.local.sticky_sessions",
            "plain TCP service has no cookie",
        ),
    ] {
        let e = sticky(bad).unwrap_err();
        assert!(e.contains(key) && e.contains(expected), "{bad}: {e}");
    }
}

#[test]
fn notify_entries_are_read_with_every_event_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let text = "app = \"a\"\n[[cutover.notify]]\nurl = \"http://127.0.0.1:9/hook\"\n\
                [[cutover.notify]]\nurl = \"https://hooks.example/x\"\nevents = [\"failed\", \"gate\"]\n\
                headers_from_env = { Authorization = \"NOTIFY_TOKEN\" }\n";
    let c = Config::load(&write(&dir, "fly.toml", text)).unwrap();
    let n = &c.cutover.notify;
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].events, NOTIFY_EVENTS.map(String::from).to_vec());
    assert!(n[1].wants("gate") && !n[1].wants("started"));
    assert_eq!(n[1].headers_from_env.get("Authorization").map(String::as_str), Some("NOTIFY_TOKEN"));
}

#[test]
fn bad_notify_entries_name_the_entry_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    for (entry, key, expected) in [
        ("url = \"hooks.example/x\"", "cutover.notify[0].url", "an http(s) URL"),
        (
            "url = \"http://h/x\"\nevents = [\"finished\"]",
            "cutover.notify[0].events",
            "some of started, gate",
        ),
        (
            "url = \"http://h/x\"\nheaders_from_env = { \"A B\" = \"X\" }",
            "cutover.notify[0].headers_from_env",
            "environment variable",
        ),
    ] {
        let p = write(&dir, "fly.toml", &format!("app = \"a\"\n[[cutover.notify]]\n{entry}\n"));
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("fly.toml") && e.contains(key) && e.contains(expected), "{e}");
    }
    let p = write(&dir, "fly.toml", "app = \"a\"\n[[cutover.notify]]\nevents = [\"failed\"]\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("fly.toml") && e.contains("url"), "{e}");
}

#[test]
fn the_blast_radius_and_the_compile_deadline_are_limits() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "fly.toml",
        "app = \"a\"\n[cutover.limits]\ncompile_timeout = \"30s\"\n\
         [[cutover.sandbox]]\nstrategy = \"./untrusted.wasm\"\nnew_machines = 0\n",
    );
    let c = Config::load(&p).unwrap();
    // Unset: the fleet at the start plus one per process group.
    assert_eq!(c.cutover.limits.new_machines, None);
    assert_eq!(c.cutover.limits.creation_bound(10, 2), 12);
    assert_eq!(c.cutover.limits.compile_timeout, std::time::Duration::from_secs(30));
    let (limits, _) = c.cutover.sandbox_for(&crate::StrategyRef::parse("./untrusted.wasm", dir.path()));
    assert_eq!(limits.creation_bound(10, 2), 0);
    assert_eq!(limits.compile_timeout, std::time::Duration::from_secs(30));
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover.limits]\ncompile_timeout = \"0s\"\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("cutover.limits.compile_timeout") && e.contains("above zero"), "{e}");
    let p = write(&dir, "fly.toml", "app = \"a\"\n[cutover.limits]\nnew_machines = -1\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(e.contains("new_machines"), "{e}");
}
