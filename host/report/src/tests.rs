//! The timeline rebuilt from hand-made events, and the pictures drawn from it parsed back as XML.

use super::*;
use crate::timeline::LaneState;
use cutover_core::events::{EventKind, FleetSummary, HostCall, HostReply, Outcome};
use cutover_core::platform::{ReleaseWeight, TrafficStats};
use cutover_core::{ErrorKind, Machine, MachineState, OpError, Release};
use cutover_journal::{ReleaseKind, ReleaseStatus};

fn rel(v: u64) -> Release {
    Release { version: v, image: format!("app:v{v}") }
}

fn machine(id: &str, v: u64) -> Machine {
    Machine {
        id: id.into(),
        name: id.into(),
        region: "local".into(),
        process_group: "app".into(),
        state: MachineState::Started,
        release: rel(v),
        cordoned: false,
        checks: Vec::new(),
        volumes: Vec::new(),
        metadata: Vec::new(),
    }
}

fn record(failed: bool) -> ReleaseRecord {
    ReleaseRecord {
        id: 2,
        app: "demo".into(),
        kind: ReleaseKind::Deploy,
        target: rel(2),
        previous: Some(rel(1)),
        strategy: "bluegreen".into(),
        strategy_hash: "ab".into(),
        params: serde_json::json!({}),
        platform: "sim".into(),
        status: if failed { ReleaseStatus::Failed } else { ReleaseStatus::Succeeded },
        error: failed.then(|| "machine m2 <would not start>".into()),
        started_at_ms: 0,
        duration_ms: Some(9_000),
        pid: 1,
        host: None,
        ci_job: None,
        heartbeat_at_ms: None,
        waiting_gate: None,
        leftovers: Vec::new(),
    }
}

struct Log(Vec<Event>);

impl Log {
    fn call(&mut self, at_ms: u64, took_ms: u64, call: HostCall, reply: HostReply) {
        let seq = self.0.len() as u64;
        self.0.push(Event { seq, at_ms, kind: EventKind::HostCall { call, reply, took_ms } });
    }
    fn finish(&mut self, at_ms: u64, failed: bool) {
        let seq = self.0.len() as u64;
        self.0.push(Event {
            seq,
            at_ms,
            kind: EventKind::DeployFinished {
                outcome: if failed { Outcome::Failed } else { Outcome::Succeeded },
                error: failed.then(|| "machine m2 <would not start>".into()),
                duration_ms: at_ms,
                fleet: FleetSummary::default(),
            },
        });
    }
}

/// A blue/green deploy of `n` machines: clone cordoned, wait, switch, destroy the old.
fn bluegreen(n: usize, fail: bool) -> Vec<Event> {
    let old: Vec<String> = (0..n).map(|i| format!("old{i}")).collect();
    let new: Vec<String> = (0..n).map(|i| format!("new{i}")).collect();
    let mut log = Log(Vec::new());
    log.call(0, 0, HostCall::List, HostReply::Machines(old.iter().map(|id| machine(id, 1)).collect()));
    log.call(0, 0, HostCall::Phase { name: "start green".into() }, HostReply::Done);
    log.call(
        2_000,
        2_000,
        HostCall::CloneFrom { sources: old.clone(), target: rel(2), routable: false },
        HostReply::Cloned(new.iter().map(|id| Ok(id.clone())).collect()),
    );
    log.call(2_000, 0, HostCall::Phase { name: "switch".into() }, HostReply::Done);
    let errs = if fail {
        vec![(new[0].clone(), OpError::new(ErrorKind::Unhealthy, "would not start"))]
    } else {
        Vec::new()
    };
    log.call(3_000, 1_000, HostCall::Uncordon { ids: new.clone() }, HostReply::Batch(errs));
    log.call(
        3_000,
        0,
        HostCall::SetWeights { weights: vec![ReleaseWeight { version: 2, percent: 100 }] },
        HostReply::Done,
    );
    log.call(
        5_000,
        0,
        HostCall::Stats { version: 2, window_ms: 1_000 },
        HostReply::Stats(TrafficStats { requests: 50, errors: 5, p50_ms: 2.0, p99_ms: 9.0 }),
    );
    log.call(6_000, 0, HostCall::Phase { name: "retire blue".into() }, HostReply::Done);
    log.call(7_000, 1_000, HostCall::Cordon { ids: old.clone() }, HostReply::Batch(Vec::new()));
    log.call(8_000, 1_000, HostCall::Destroy { ids: old.clone() }, HostReply::Batch(Vec::new()));
    log.finish(9_000, fail);
    log.0
}

#[test]
fn a_blue_green_deploy_replays_into_lanes() {
    let t = timeline::build(&bluegreen(2, false));
    assert_eq!(t.lanes.len(), 4);
    assert_eq!(t.end_ms, 9_000);
    let states = |id: &str| -> Vec<(u64, LaneState)> {
        let lane = t.lanes.iter().find(|l| l.id == id).expect("lane");
        lane.segments.iter().map(|s| (s.version, s.state)).collect()
    };
    assert_eq!(
        states("old0"),
        vec![(1, LaneState::Serving), (1, LaneState::Cordoned), (1, LaneState::Destroyed)]
    );
    assert_eq!(
        states("new1"),
        vec![(2, LaneState::Starting), (2, LaneState::Cordoned), (2, LaneState::Serving)]
    );
    let new1 = &t.lanes.iter().find(|l| l.id == "new1").expect("lane").segments;
    assert_eq!((new1[0].from_ms, new1[0].to_ms, new1[2].to_ms), (0, 2_000, 9_000));
    assert_eq!(
        t.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["start green", "switch", "retire blue"]
    );
    assert_eq!(t.phases[0].to_ms, 2_000);
    assert_eq!(t.phases[2].to_ms, 9_000);
    // By machine count (all on v1) until the split is set to v2.
    assert_eq!(t.weights[0].percent, vec![(1, 100.0)]);
    assert!(t.weights.iter().any(|w| w.explicit && w.percent == vec![(2, 100.0)]));
    assert_eq!(t.stats.len(), 1);
    assert_eq!((t.stats[0].rate, t.stats[0].error_rate), (50.0, 0.1));
    assert_eq!(t.versions, vec![1, 2]);
    assert!(t.failure.is_none());
    let last = t.counts.last().expect("counts");
    assert_eq!(last.counts.get(&(2, LaneState::Serving)), Some(&2));
    assert_eq!(last.counts.get(&(1, LaneState::Cordoned)), None);
}

#[test]
fn a_release_weighted_to_zero_is_drawn_out_of_rotation() {
    // A switch by weights: green uncordoned at 0% while it boots, then one call gives v2 100%.
    let old: Vec<String> = vec!["old0".into()];
    let new: Vec<String> = vec!["new0".into()];
    let weights = |w: &[(u64, u8)]| HostCall::SetWeights {
        weights: w.iter().map(|&(version, percent)| ReleaseWeight { version, percent }).collect(),
    };
    let mut log = Log(Vec::new());
    log.call(0, 0, HostCall::List, HostReply::Machines(vec![machine("old0", 1)]));
    log.call(
        2_000,
        2_000,
        HostCall::CloneFrom { sources: old.clone(), target: rel(2), routable: false },
        HostReply::Cloned(vec![Ok("new0".into())]),
    );
    log.call(2_500, 0, weights(&[(1, 100), (2, 0)]), HostReply::Done);
    log.call(3_000, 0, HostCall::Uncordon { ids: new.clone() }, HostReply::Batch(Vec::new()));
    log.call(5_000, 0, weights(&[(2, 100)]), HostReply::Done);
    log.call(8_000, 1_000, HostCall::Destroy { ids: old.clone() }, HostReply::Batch(Vec::new()));
    log.call(8_500, 0, weights(&[]), HostReply::Done);
    log.finish(9_000, false);
    let t = timeline::build(&log.0);
    let segments = |id: &str| -> Vec<(u64, u64, LaneState)> {
        let lane = t.lanes.iter().find(|l| l.id == id).expect("lane");
        lane.segments.iter().map(|s| (s.from_ms, s.to_ms, s.state)).collect()
    };
    assert_eq!(
        segments("new0"),
        vec![
            (0, 2_000, LaneState::Starting),
            (2_000, 5_000, LaneState::Cordoned),
            (5_000, 9_000, LaneState::Serving)
        ],
        "uncordoned at 0% is still out of rotation"
    );
    assert_eq!(
        segments("old0"),
        vec![
            (0, 5_000, LaneState::Serving),
            (5_000, 8_000, LaneState::Cordoned),
            (8_000, 9_000, LaneState::Destroyed)
        ],
        "out of rotation from the switch, uncordoned"
    );
}

#[test]
fn a_failed_deploy_marks_where_and_why() {
    let t = timeline::build(&bluegreen(2, true));
    let f = t.failure.as_ref().expect("failure");
    assert_eq!(f.at_ms, 9_000);
    assert_eq!(f.why, "machine m2 <would not start>");
    assert_eq!(f.marks.len(), 1);
    assert_eq!(f.marks[0].machine.as_deref(), Some("new0"));
    assert!(f.marks[0].what.contains("traffic.uncordon"), "{:?}", f.marks[0]);
    // The machine that failed to uncordon stays cordoned.
    let new0 = t.lanes.iter().find(|l| l.id == "new0").expect("lane");
    assert_eq!(new0.segments.last().map(|s| s.state), Some(LaneState::Cordoned));
}

/// Every `<text>` of an SVG document, parsed as XML.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the picture is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn the_svg_has_a_lane_per_machine_and_a_legend() {
    let svg = svg(&record(false), &bluegreen(3, false), &Options::default()).expect("svg");
    let texts = texts(&svg);
    for id in ["old0", "old1", "old2", "new0", "new1", "new2"] {
        assert!(texts.iter().any(|t| t == id), "no lane label {id} in {texts:?}");
    }
    for s in LaneState::ALL {
        assert!(texts.iter().any(|t| t == s.as_str()), "no legend entry {}", s.as_str());
    }
    assert!(texts.iter().any(|t| t == "v2 target") && texts.iter().any(|t| t == "v1 previous"));
    for name in ["start green", "switch", "retire blue", "requests per second", "p99 latency (ms)"] {
        assert!(texts.iter().any(|t| t == name), "no {name:?} in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.starts_with("failed")));
}

#[test]
fn the_svg_of_a_failed_deploy_says_why_escaped() {
    let svg = svg(&record(true), &bluegreen(2, true), &Options::default()).expect("svg");
    let texts = texts(&svg);
    assert!(
        texts.iter().any(|t| t.starts_with("failed after 9.0 s: machine m2 <would not start>")),
        "{texts:?}"
    );
}

#[test]
fn past_the_bound_lanes_become_counts() {
    let events = bluegreen(40, false);
    let opts = Options { max_lanes: 100, ..Options::default() };
    let svg = svg(&record(false), &events, &opts).expect("svg");
    let texts = texts(&svg);
    assert!(texts.iter().any(|t| t == "old39"));
    assert!(!texts.iter().any(|t| t.contains("counts per release and state")));
    let aggregated = super::svg(&record(false), &events, &Options { max_lanes: 10, ..opts }).expect("svg");
    let texts = self::texts(&aggregated);
    assert!(!texts.iter().any(|t| t == "old39"));
    assert!(texts.iter().any(|t| t == "80 machines: counts per release and state"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "machines"));
}

#[test]
fn html_embeds_the_svg_and_the_facts() {
    let page = html(&record(true), &bluegreen(2, true), &Options::default()).expect("html");
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<svg"));
    assert!(page.contains("machine m2 &lt;would not start&gt;"));
    assert!(page.contains("start green → switch → retire blue"));
}

#[test]
fn the_format_comes_from_the_name() {
    assert_eq!(Format::of(Path::new("a/b.SVG")).ok(), Some(Format::Svg));
    assert_eq!(Format::of(Path::new("b.html")).ok(), Some(Format::Html));
    let e = Format::of(Path::new("b.png")).expect_err("png is not drawn");
    assert!(e.to_string().contains("b.png") && e.to_string().contains(".svg or .html"), "{e}");
}

#[test]
fn no_events_still_draw() {
    let svg = svg(&record(false), &[], &Options::default()).expect("svg");
    texts(&svg);
}

#[test]
fn a_release_is_picked_by_number_or_version() {
    let mut a = record(false);
    a.id = 1;
    a.target = rel(1);
    let b = record(true);
    let records = vec![a, b];
    assert_eq!(pick("demo", &records, None).expect("latest").id, 2);
    assert_eq!(pick("demo", &records, Some("#1")).expect("#1").id, 1);
    assert_eq!(pick("demo", &records, Some("1")).expect("1").id, 1);
    assert_eq!(pick("demo", &records, Some("v2")).expect("v2").id, 2);
    let e = pick("demo", &records, Some("9")).expect_err("no #9");
    assert_eq!(
        e.to_string(),
        "demo has no release 9 in the journal; its releases are #1 to #2 (see `cutover releases`)"
    );
    assert!(matches!(pick("demo", &records, Some("seven")), Err(ReportError::BadRelease(_))));
    let e = pick("demo", &[], None).expect_err("none");
    assert_eq!(e.to_string(), "demo has no release yet in the journal");
}

#[test]
fn writing_where_it_cannot_says_where() {
    let e = write(Path::new("/nonexistent-dir/x.svg"), &record(false), &[], &Options::default())
        .expect_err("no dir");
    assert!(e.to_string().starts_with("cannot write the picture to /nonexistent-dir/x.svg: "), "{e}");
    assert!(e.is_bad_input());
}

#[test]
fn the_drivers_own_readings_draw_the_traffic_charts() {
    // A blue/green deploy whose strategy read no stats: only the driver's readings.
    let mut events: Vec<Event> = bluegreen(2, false)
        .into_iter()
        .filter(|e| !matches!(&e.kind, EventKind::HostCall { call: HostCall::Stats { .. }, .. }))
        .collect();
    let none = svg(&record(false), &events, &Options::default()).expect("svg");
    assert!(!texts(&none).iter().any(|t| t == "requests per second"), "no readings, no charts");
    let seq = events.len() as u64;
    let reading = |seq, at_ms, version, requests, errors| Event {
        seq,
        at_ms,
        kind: EventKind::TrafficSampled {
            version,
            window_ms: 1_000,
            stats: TrafficStats { requests, errors, p50_ms: 1.0, p99_ms: 7.5 },
        },
    };
    events.insert(3, reading(seq, 1_000, 1, 40, 0));
    events.insert(5, reading(seq + 1, 4_000, 2, 30, 3));
    let t = timeline(&events);
    assert_eq!(t.stats.len(), 2);
    assert_eq!((t.stats[0].version, t.stats[0].rate, t.stats[0].error_rate), (1, 40.0, 0.0));
    assert_eq!(
        (t.stats[1].at_ms, t.stats[1].rate, t.stats[1].error_rate, t.stats[1].p99_ms),
        (4_000, 30.0, 0.1, 7.5)
    );
    let drawn = svg(&record(false), &events, &Options::default()).expect("svg");
    let texts = texts(&drawn);
    for name in ["requests per second", "p99 latency (ms)"] {
        assert!(texts.iter().any(|t| t == name), "no {name:?} in {texts:?}");
    }
}

#[test]
fn a_release_the_driver_read_draws_its_readings_alone() {
    // The strategy asked for v2's stats once (50 requests over a second); the driver read v2 too.
    let mut events = bluegreen(2, false);
    let strategy_only = timeline(&events);
    assert_eq!(strategy_only.stats.iter().map(|p| p.rate).collect::<Vec<_>>(), [50.0]);
    let stats = TrafficStats { requests: 80, errors: 0, p50_ms: 1.0, p99_ms: 3.0 };
    let seq = events.len() as u64;
    events.push(Event {
        seq,
        at_ms: 9_000,
        kind: EventKind::TrafficSampled { version: 2, window_ms: 1_000, stats },
    });
    let t = timeline(&events);
    assert_eq!(t.stats.iter().map(|p| (p.version, p.rate)).collect::<Vec<_>>(), [(2, 80.0)]);
}

#[test]
fn phase_names_stagger_and_are_left_out_where_none_fits() {
    use crate::draw::label_rows;
    let rows =
        |placed: Vec<Option<(usize, f64)>>| placed.into_iter().map(|p| p.map(|p| p.0)).collect::<Vec<_>>();
    // Far apart: all on the top row, each where its phase starts.
    let placed = label_rows(&[0.0, 200.0, 400.0], &[100.0; 3], 1000.0);
    assert_eq!(placed, [Some((0, 0.0)), Some((0, 200.0)), Some((0, 400.0))]);
    // Close together: each on the next row down, the fourth nowhere, the fifth back on top once clear.
    let starts = [0.0, 10.0, 20.0, 30.0, 150.0];
    assert_eq!(rows(label_rows(&starts, &[100.0; 5], 1000.0)), [Some(0), Some(1), Some(2), None, Some(0)]);
    // A name that would run off the end of the axis ends with it instead.
    assert_eq!(label_rows(&[950.0], &[100.0], 1000.0), [Some((0, 900.0))]);
    // Phases crowded at the very end: pulled back from the end, and staggered like the rest.
    assert_eq!(rows(label_rows(&[0.0, 990.0, 995.0], &[100.0; 3], 1000.0)), [Some(0), Some(0), Some(1)]);
    // A drawn picture of phases a moment apart writes no two names over each other.
    let mut names: Vec<Event> = (0..6u64)
        .map(|i| Event {
            seq: i,
            at_ms: i * 50,
            kind: EventKind::HostCall {
                call: HostCall::Phase { name: format!("a rather long phase name {i}") },
                reply: HostReply::Done,
                took_ms: 0,
            },
        })
        .collect();
    // The deploy goes on for a minute and a half after them.
    let later = HostCall::Now;
    names.push(Event {
        seq: 6,
        at_ms: 90_000,
        kind: EventKind::HostCall { call: later, reply: HostReply::Time(9), took_ms: 0 },
    });
    let drawn = svg(&record(false), &names, &Options::default()).expect("svg");
    let shown = texts(&drawn).into_iter().filter(|t| t.starts_with("a rather long")).count();
    assert_eq!(shown, 3, "one name per row");
}
