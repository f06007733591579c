//! The sandbox: hostile strategies are stopped with their own clear error, the host survives, and the
//! fleet is unchanged. Also: loading checks (not a component, wrong contract version) and the cache.

use crate::support;

use cutover::core::ErrorKind;
use cutover::runtime::{ComponentCache, LimitExceeded, Limits, Origin, Runtime, RuntimeError};
use std::time::Duration;
use support::*;

/// Run a hostile guest on a 6-machine fleet and check the fleet (and the neighbour app) is untouched.
async fn run_hostile(name: &str, opts: RunOptions, scenario: &str) -> SimRun {
    let runtime = runtime();
    let world = world(scenario);
    let before = world.snapshot(APP);
    let neighbour_before = world.snapshot("app-neighbour");
    let run = run_on_sim(&runtime, &guest(name), world.clone(), opts).await;
    assert_eq!(world.snapshot(APP), before, "{name}: the app's fleet changed");
    assert_eq!(world.snapshot("app-neighbour"), neighbour_before, "{name}: the neighbour app changed");
    // The host survives: the same runtime still runs a good strategy afterwards.
    let ok = run_on_sim(
        &runtime,
        builtin("rolling"),
        support::world("[fleet]\nmachines = 2"),
        RunOptions::default(),
    )
    .await;
    assert!(matches!(ok.result, Ok(Ok(()))), "{name}: host unusable afterwards: {:?}", ok.result.err());
    run
}

#[tokio::test(start_paused = true)]
async fn infinite_loop_is_stopped_by_the_cpu_budget() {
    let limits = Limits { cpu_budget: Duration::from_millis(200), ..Limits::default() };
    let run = run_hostile("spin", RunOptions { limits, ..Default::default() }, "[fleet]\nmachines = 6").await;
    let err = run.result.expect_err("spin must be stopped");
    assert!(matches!(err, RuntimeError::Limit(LimitExceeded::CpuBudget { .. })), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("CPU budget") && msg.contains("200ms") && msg.contains("cpu_budget"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn infinite_loop_is_stopped_by_the_deadline_when_the_budget_is_long() {
    let limits = Limits {
        cpu_budget: Duration::from_secs(600),
        deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let run = run_hostile("spin", RunOptions { limits, ..Default::default() }, "[fleet]\nmachines = 6").await;
    let err = run.result.expect_err("spin must be stopped");
    assert!(matches!(err, RuntimeError::Limit(LimitExceeded::Deadline { .. })), "{err}");
    assert!(err.to_string().contains("deadline of 300ms"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn memory_bomb_is_stopped_by_the_memory_limit() {
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    let run =
        run_hostile("membomb", RunOptions { limits, ..Default::default() }, "[fleet]\nmachines = 6").await;
    let err = run.result.expect_err("membomb must be stopped");
    match &err {
        RuntimeError::Limit(LimitExceeded::Memory { limit_mib, wanted_mib }) => {
            assert_eq!(*limit_mib, 32);
            assert!(*wanted_mib > 32);
        }
        other => panic!("expected the memory limit, got: {other}"),
    }
    assert!(err.to_string().contains("memory limit"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn panic_becomes_an_error_with_message_and_backtrace() {
    let run = run_hostile("trap", RunOptions::default(), "[fleet]\nmachines = 6").await;
    let err = run.result.expect_err("trap must fail");
    let RuntimeError::Trap { trap, output, backtrace } = &err else { panic!("expected a trap, got: {err}") };
    assert!(trap.contains("panicked"), "{trap}");
    assert!(output.contains("deliberate bug: machine index 11 is out of range"), "{output}");
    assert!(backtrace.contains("pick_victim"), "backtrace should name the guest function:\n{backtrace}");
    // The one host call it made before panicking was recorded.
    assert!(run.events.iter().any(|e| serde_json::to_string(e).unwrap().contains("machines.list")));
}

#[tokio::test(start_paused = true)]
async fn unbounded_recursion_is_a_stack_overflow() {
    let run = run_hostile("overflow", RunOptions::default(), "[fleet]\nmachines = 6").await;
    let err = run.result.expect_err("overflow must fail");
    assert!(matches!(&err, RuntimeError::Trap { trap, .. } if trap.contains("stack overflow")), "{err}");
}

#[tokio::test(start_paused = true)]
async fn another_apps_machine_is_not_found_and_untouched() {
    let w = world("[fleet]\nmachines = 6\nneighbours = 2");
    let victim = w.snapshot("app-neighbour")[0].id.clone();
    let mut opts = RunOptions::default();
    opts.params.insert("victim".into(), cutover::core::contract::ParamValue::Text(victim.clone()));
    let run = run_hostile("foreign", opts, "[fleet]\nmachines = 6\nneighbours = 2").await;
    let err = run.result.expect("the sandbox itself is fine").expect_err("the strategy must be refused");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, format!("machine {victim} is not part of app {APP}"));
}

#[tokio::test(start_paused = true)]
async fn a_core_module_is_refused_with_advice() {
    let runtime = runtime();
    let err = runtime.load(b"\0asm\x01\0\0\0").err().expect("core module refused");
    assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");
    let err = runtime.load(b"hello").err().expect("not wasm");
    assert!(err.to_string().contains("magic number"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_newer_contract_version_names_both_versions() {
    let runtime = runtime();
    let future = br#"(component (import "cutover:strategy/runtime@0.3.0" (instance)))"#;
    let err = runtime.load(future).err().expect("0.3 refused");
    let msg = err.to_string();
    assert!(
        msg.contains("this strategy targets cutover:strategy@0.3.0; this host implements 0.1.x and 0.2.x"),
        "{msg}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_component_without_the_exports_is_not_a_strategy() {
    let runtime = runtime();
    let err = runtime.load(b"(component)").err().expect("empty component refused");
    assert!(matches!(err, RuntimeError::NotAStrategy(_)), "{err}");
    assert!(err.to_string().contains("does not export `describe`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_component_importing_other_interfaces_is_refused() {
    let runtime = runtime();
    let sneaky = br#"(component (import "evil:net/socket@1.0.0" (instance)))"#;
    let err = runtime.load(sneaky).err().expect("refused");
    assert!(
        err.to_string().contains("imports `evil:net/socket@1.0.0`, which cutover does not provide"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn second_load_comes_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = builtin("rolling");
    let first = Runtime::new(ComponentCache::at(dir.path())).unwrap();
    assert_eq!(first.load(bytes).unwrap().origin, Origin::Compiled);
    // In-process, the same bytes give the same pre-linked component.
    let again = first.load(bytes).unwrap();
    assert_eq!(again.origin, Origin::Compiled);
    // A new process (a new runtime) finds the artifact on disk and does not compile.
    let second = Runtime::new(ComponentCache::at(dir.path())).unwrap();
    let warm = second.load(bytes).unwrap();
    assert_eq!(warm.origin, Origin::DiskCache);
    assert_eq!(second.describe(&warm).await.unwrap().name, "rolling");
    // A corrupt artifact is ignored and replaced, not trusted. (Replaced by rename, as the cache itself
    // writes: artifacts are mapped into memory, so truncating one in place under a live process would
    // pull pages from under it.)
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, b"garbage").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    let third = Runtime::new(ComponentCache::at(dir.path())).unwrap();
    assert_eq!(third.load(bytes).unwrap().origin, Origin::Compiled);
}

#[tokio::test]
async fn deadline_interrupts_a_host_call_that_blocks() {
    // Real time here: a machine takes ten minutes to boot, so the strategy sits in `wait-state`.
    let runtime = runtime();
    let w = world("[fleet]\nmachines = 3\n[latency]\napi = [0, 0]\nboot = [600000, 600000]\nstop = [0, 0]");
    let limits = Limits { deadline: Duration::from_millis(500), ..Limits::default() };
    let started = std::time::Instant::now();
    let run = run_on_sim(&runtime, builtin("rolling"), w, RunOptions { limits, ..Default::default() }).await;
    let err = run.result.expect_err("deadline must stop the run");
    assert!(matches!(err, RuntimeError::Limit(LimitExceeded::Deadline { .. })), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "the deadline did not interrupt the wait");
}

#[tokio::test(start_paused = true)]
async fn describe_must_not_reach_the_host() {
    let runtime = runtime();
    let nosy = runtime.load(&guest("nosy")).unwrap();
    let err = runtime.describe(&nosy).await.expect_err("describe calling the host is refused");
    assert!(matches!(err, RuntimeError::DescribeCalledHost(_)), "{err}");
    assert!(err.to_string().contains("called the host from describe()"), "{err}");
}

/// Grants: an operation the policy withholds comes back to the strategy as the contract's `denied`
/// error, every refused call is in the event log, and nothing the policy withholds happens: blue is
/// stopped but never destroyed. Past the switch green serves, so bluegreen does not fail the deploy:
/// it leaves blue over, tagged with what is left to do (issue 16's leftovers).
#[tokio::test(start_paused = true)]
async fn a_withheld_operation_is_denied_and_recorded() {
    use cutover::core::events::{EventKind, HostCall, HostReply};
    use cutover::runtime::Grants;
    let grants = Grants::from_lists(None, &["machines.destroy".into()], None, None).unwrap();
    let world = world("[fleet]\nmachines = 3");
    let blue: Vec<String> = world.snapshot(APP).into_iter().map(|m| m.id).collect();
    let run = run_on_sim(
        &runtime(),
        builtin("bluegreen"),
        world.clone(),
        RunOptions { grants, ..Default::default() },
    )
    .await;
    run.result
        .expect("the sandbox is fine")
        .expect("past the switch a withheld destroy is a leftover, not a failure");
    // Blue is retired by one pipeline (stop, wait, destroy): its destroy step is refused per machine.
    let refused: Vec<Vec<(String, ErrorKind)>> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall {
                call: HostCall::Destroy { .. }, reply: HostReply::Batch(failed), ..
            } => Some(failed.iter().map(|(id, e)| (id.clone(), e.kind)).collect()),
            EventKind::HostCall {
                call: HostCall::Pipeline { steps, .. },
                reply: HostReply::Pipeline(o),
                ..
            } if steps.iter().any(|s| matches!(s, cutover::core::pipeline::Step::Destroy)) => {
                Some(o.failed.iter().map(|f| (f.id.clone(), f.error.kind)).collect())
            }
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty(), "the refused destroy is in the event log");
    for failed in refused {
        assert!(
            !failed.is_empty() && failed.iter().all(|(_, kind)| *kind == ErrorKind::Denied),
            "{failed:?}"
        );
    }
    let fleet = world.snapshot(APP);
    let ids: Vec<&str> = fleet.iter().map(|m| m.id.as_str()).collect();
    assert!(blue.iter().all(|id| ids.contains(&id.as_str())), "no blue machine was destroyed");
    for m in fleet.iter().filter(|m| blue.contains(&m.id)) {
        let tag = m.metadata.iter().find(|(k, _)| k == "cutover_leftover").map(|(_, v)| v.as_str());
        assert_eq!(tag, Some("destroy by v2"), "blue machine {} is tagged as left to destroy", m.id);
    }
}

/// Scope: a strategy granted only the `app` process group changes no `worker` machine; an attempt is
/// refused per machine and recorded (rolling stops at the first refusal, as at any lasting failure).
#[tokio::test(start_paused = true)]
async fn machines_outside_the_granted_groups_are_not_touched() {
    use cutover::core::events::{EventKind, HostReply};
    use cutover::runtime::Grants;
    let grants = Grants::from_lists(None, &[], Some(vec!["app".into()]), None).unwrap();
    let world = world("[fleet]\nmachines = 6\nregions = [\"ams\"]\ngroups = [\"app\", \"worker\"]");
    let workers: Vec<_> = world.snapshot(APP).into_iter().filter(|m| m.process_group == "worker").collect();
    assert_eq!(workers.len(), 3);
    let opts = RunOptions {
        grants,
        max_unavailable: cutover::core::contract::MaxUnavailable::Count(6),
        ..Default::default()
    };
    let run = run_on_sim(&runtime(), builtin("rolling"), world.clone(), opts).await;
    let denied: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { reply: HostReply::Batch(failed), .. } => Some(failed.clone()),
            EventKind::HostCall { reply: HostReply::Pipeline(o), .. } => {
                Some(o.failed.iter().map(|f| (f.id.clone(), f.error.clone())).collect())
            }
            _ => None,
        })
        .flatten()
        .filter(|(_, e)| e.kind == ErrorKind::Denied)
        .map(|(id, e)| {
            assert!(e.message.contains("process group `worker`"), "{}", e.message);
            id
        })
        .collect();
    assert!(!denied.is_empty(), "a worker was refused");
    assert!(denied.iter().all(|id| workers.iter().any(|w| w.id == *id)), "only workers refused: {denied:?}");
    let after = world.snapshot(APP);
    for w in &workers {
        let now = after.iter().find(|m| m.id == w.id).expect("worker still there");
        assert_eq!((now.release.version, now.cordoned), (w.release.version, w.cordoned), "worker untouched");
    }
    assert!(run.result.expect("sandbox fine").is_err(), "rolling reports the refusal");
}

/// A log flood is bounded: every kept line is cut to 4 KiB, only the budget's worth is kept (the
/// journal and the terminal would otherwise take 320 MB), and the count of dropped lines is logged.
#[tokio::test(start_paused = true)]
async fn a_log_flood_is_cut_and_rate_limited() {
    use cutover::core::events::{EventKind, HostCall};
    let run = run_hostile("chatty", RunOptions::default(), "[fleet]\nmachines = 2").await;
    assert!(matches!(run.result, Ok(Ok(()))), "the strategy itself is fine: {:?}", run.result);
    let logs: Vec<&String> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Log { message, .. }, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert!(logs.len() <= 1_001, "{} lines kept", logs.len());
    assert!(logs.iter().all(|m| m.len() <= 4096 + 64), "every line cut to 4 KiB");
    assert!(logs[0].ends_with("bytes cut]"), "{}", &logs[0][logs[0].len() - 40..]);
    let note = logs.last().unwrap();
    assert!(note.contains("19000 log line(s) of the strategy dropped"), "{note}");
}

/// Oversized arguments and return values are refused or cut at the boundary: an update naming 50,000
/// machines is `invalid` (per machine, so the strategy can read it like any batch error) and touches
/// nothing; 1 MiB of metadata is `invalid`; a 1 MiB error message comes back cut to 4 KiB.
#[tokio::test(start_paused = true)]
async fn oversized_arguments_and_results_are_refused_or_cut() {
    use cutover::core::events::{EventKind, HostCall, HostReply};
    let run = run_hostile("oversized", RunOptions::default(), "[fleet]\nmachines = 3").await;
    let err = run.result.expect("the sandbox is fine").expect_err("the strategy reports its error");
    assert_eq!(err.kind, ErrorKind::Platform);
    assert!(
        err.message.len() <= 4096 + 64 && err.message.ends_with("bytes cut]"),
        "{} bytes",
        err.message.len()
    );
    let update = run
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::HostCall { call: HostCall::Update { ids, .. }, reply, .. } => Some((ids.len(), reply)),
            _ => None,
        })
        .expect("the update is recorded");
    let (named, HostReply::Batch(failed)) = update else { panic!("{update:?}") };
    assert_eq!((named, failed.len()), (50_000, 50_000));
    assert!(
        failed[0].1.kind == ErrorKind::Invalid && failed[0].1.message.contains("at most 10000"),
        "{:?}",
        failed[0]
    );
    let metadata = run.events.iter().find_map(|e| match &e.kind {
        EventKind::HostCall { call: HostCall::SetMetadata { .. }, reply, .. } => Some(reply),
        _ => None,
    });
    assert!(
        matches!(metadata, Some(HostReply::Failed(e)) if e.kind == ErrorKind::Invalid && e.message.contains("at most 4096 bytes")),
        "{metadata:?}"
    );
}

/// A describe() of 10,000 parameters is not a strategy: refused with the count and the limit.
#[tokio::test]
async fn an_oversized_describe_is_refused() {
    let runtime = runtime();
    let component = runtime.load(&guest("bloated")).expect("it is a component");
    let e = runtime.describe(&component).await.expect_err("refused");
    assert!(matches!(e, RuntimeError::NotAStrategy(_)), "{e:?}");
    assert!(e.to_string().contains("10000 parameters; at most 128"), "{e}");
}

/// A strategy that waits across its deadline and then, the moment it has control again, destroys every
/// machine is stopped with the deadline error before the destroy reaches the platform, whichever way it
/// waited: on the host's clock (`runtime.sleep`), in WASI's `poll` (`std::thread::sleep`, which is no
/// cutover call), or spinning on cheap host calls until 1 ms past the deadline (inside the 10 ms
/// between two epoch ticks, where only the host call itself can notice). Real time: the deadline bounds
/// real time, and the waits must span it.
#[tokio::test]
async fn calls_after_the_deadline_never_reach_the_platform() {
    use cutover::core::contract::ParamValue;
    use cutover::core::events::{EventKind, HostCall};
    // API calls answer at once, so a destroy that got past the deadline would land in its first poll.
    let scenario = "[fleet]\nmachines = 4\n[latency]\napi = [0, 0]\nboot = [0, 0]\nstop = [0, 0]";
    let runtime = runtime();
    let late = guest("late");
    for (mode, wait_ms) in [("sleep", 1_500), ("wasi-sleep", 1_500), ("spin", 301)] {
        let world = world(scenario);
        let before = world.snapshot(APP);
        let limits = Limits { deadline: Duration::from_millis(300), ..Limits::default() };
        let mut opts = RunOptions { limits, ..Default::default() };
        opts.params.insert("mode".into(), ParamValue::Text(mode.into()));
        opts.params.insert("wait_ms".into(), ParamValue::DurationMs(wait_ms));
        let started = std::time::Instant::now();
        let run = run_on_sim(&runtime, &late, world.clone(), opts).await;
        let err = run.result.expect_err(&format!("{mode}: the deadline must stop the run"));
        assert!(matches!(err, RuntimeError::Limit(LimitExceeded::Deadline { .. })), "{mode}: {err}");
        assert!(
            err.to_string().contains("deadline: the strategy run passed its deadline of 300ms"),
            "{mode}: {err}"
        );
        assert!(started.elapsed() < Duration::from_millis(1_000), "{mode}: the wait was not cut short");
        assert_eq!(world.snapshot(APP), before, "{mode}: the fleet changed after the deadline");
        for e in &run.events {
            if let EventKind::HostCall {
                call: call @ (HostCall::Destroy { .. } | HostCall::Log { .. }),
                ..
            } = &e.kind
            {
                panic!("{mode}: the strategy went on after the deadline: {call:?}");
            }
        }
    }
    // The host survives: the same runtime deploys with a good strategy afterwards (an app without
    // checks, so this real-time deploy takes no time).
    let world = world_with_checks(scenario, vec![]);
    let ok = run_on_sim(&runtime, builtin("rolling"), world.clone(), RunOptions::default()).await;
    assert!(matches!(ok.result, Ok(Ok(()))), "host unusable afterwards: {:?}", ok.result.err());
    assert!(world.snapshot(APP).iter().all(|m| m.release.image == V2), "rolling deployed v2");
}
