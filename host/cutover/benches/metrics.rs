//! The cost of a metrics query: contract 0.2's `metrics.query` from a guest, through the host, to a
//! Prometheus-shaped HTTP endpoint and back.
//!
//! The endpoint is a tiny in-process axum server answering `/api/v1/query` with one fixed sample: the
//! point is what the host adds (the call, its journaling, the HTTP round trip and the JSON), not what
//! Prometheus takes to evaluate a query. The guest is `tests/guests/metered` with `queries = N`: N
//! queries in a loop, nothing else. Three sides, each a whole run of N queries divided by N:
//!
//! - `live, journaled`: every query sent over HTTP by the host's Prometheus client and its call and
//!   answer appended to a SQLite journal, as `cutover deploy` does;
//! - `live, not journaled`: the same with events dropped, to tell the journal's share from HTTP's;
//! - `replayed`: a resume of the journaled run — every query answered from the journal's events, no
//!   HTTP (the bench checks that the server saw no request).
//!
//! The machine is shared, so the sides are measured in interleaved rounds and the median of each is
//! compared (as `host_call/ratio` in the runtime bench).
//!
//! Run: `cargo bench -p cutover --bench metrics` (`CUTOVER_BENCH_QUERIES`, default 2,000 per run).

#[path = "../../../tests/support/mod.rs"]
mod support;

use axum::Router;
use axum::routing::post;
use cutover::config::MetricsConfig;
use cutover::core::Release;
use cutover::core::contract::{DeployPlan, MaxUnavailable, ParamValue};
use cutover::core::events::{Discard, EventSink};
use cutover::core::metrics::MetricsSource;
use cutover::driver::prometheus::PrometheusSource;
use cutover::journal::{Journal, JournalSink, NewRelease, ReleaseKind};
use cutover::runtime::{Grants, HostClock, Limits, Recorder, Replay, RunContext, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{APP, V1, V2};

/// Prometheus' answer to an instant query: one series, one sample.
const ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"error_ratio","version":"2"},"value":[1764633600.000,"0.0125"]}]}}"#;

const ROUNDS: usize = 11;

/// The in-process endpoint: its URL and how many queries it answered.
async fn serve() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = Router::new().route(
        "/api/v1/query",
        post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                ([("content-type", "application/json")], ANSWER)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the endpoint");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, hits)
}

fn plan(queries: u64) -> DeployPlan {
    DeployPlan {
        app: APP.into(),
        target: Release { version: 2, image: V2.into() },
        previous: Some(Release { version: 1, image: V1.into() }),
        process_groups: vec!["app".into()],
        max_unavailable: MaxUnavailable::Fraction(0.33),
        wait_timeout_ms: 300_000,
        kill_signal: "SIGINT".into(),
        kill_timeout_ms: 5000,
        params: [("queries".to_string(), ParamValue::Integer(queries as i64))].into_iter().collect(),
    }
}

/// Everything one run needs, set up once.
struct Bench {
    runtime: Runtime,
    metered: Vec<u8>,
    source: Arc<dyn MetricsSource>,
    journal: Journal,
    _dir: tempfile::TempDir,
    queries: u64,
}

impl Bench {
    /// One run of the guest: its real time. `sink` takes its events, `replay` answers from a journal.
    async fn run(
        &self,
        sink: Arc<dyn EventSink>,
        metrics: Option<Arc<dyn MetricsSource>>,
        replay: Option<Arc<Replay>>,
    ) -> Duration {
        let strategy = self.runtime.load(&self.metered).expect("load metered");
        let world = support::world("[fleet]\nmachines = 1");
        let clock = HostClock::real();
        let ctx = RunContext {
            platform: Arc::new(world.platform(APP)),
            limits: Limits::default(),
            concurrency: 8,
            clock,
            recorder: Recorder::new(sink, clock),
            seed: 2,
            promotions: None,
            replay,
            grants: Grants::default(),
            metrics,
            creation_bound: u64::MAX,
        };
        let start = Instant::now();
        let result = self.runtime.deploy(&strategy, &plan(self.queries), ctx).await;
        let took = start.elapsed();
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
        took
    }

    /// A run journaled into a new release record; its id.
    async fn journaled(&self) -> (Duration, i64) {
        let target = Release { version: 2, image: V2.into() };
        let id = self
            .journal
            .begin(&NewRelease {
                app: APP,
                kind: ReleaseKind::Deploy,
                target: &target,
                previous: None,
                strategy: "metered",
                strategy_hash: "bench",
                params: serde_json::json!({ "queries": self.queries }),
                platform: "sim",
                plan: None,
                strategy_ref: None,
            })
            .expect("begin a release");
        let sink = Arc::new(JournalSink::new(self.journal.clone(), id, u64::MAX));
        let took = self.run(sink, Some(self.source.clone()), None).await;
        self.journal.finish(id, true, None, took).expect("finish");
        (took, id)
    }
}

fn main() {
    let queries: u64 =
        std::env::var("CUTOVER_BENCH_QUERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (url, hits) = serve().await;
        let config = MetricsConfig { url, token_env: None, timeout: Duration::from_secs(10) };
        let dir = tempfile::tempdir().unwrap();
        let bench = Bench {
            runtime: support::runtime(),
            metered: support::guest("metered"),
            source: Arc::new(PrometheusSource::new(&config).expect("metrics source")),
            journal: Journal::open(dir.path()).expect("open a journal"),
            _dir: dir,
            queries,
        };
        // Warm up: the component compiled and cached, the HTTP connection open.
        bench.run(Arc::new(Discard), Some(bench.source.clone()), None).await;

        let (mut journaled, mut plain, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let before = hits.load(Ordering::Relaxed);
            let (took, id) = bench.journaled().await;
            assert_eq!(
                hits.load(Ordering::Relaxed) - before,
                queries,
                "every live query reaches the endpoint"
            );
            journaled.push(took);
            plain.push(bench.run(Arc::new(Discard), Some(bench.source.clone()), None).await);

            let events = bench.journal.events(id).expect("read the journaled run");
            let replay = Arc::new(Replay::from_events(&events));
            let before = hits.load(Ordering::Relaxed);
            // No metrics source at all: a query the journal did not answer would fail the run.
            replayed.push(bench.run(Arc::new(Discard), None, Some(replay.clone())).await);
            assert_eq!(hits.load(Ordering::Relaxed), before, "a replayed query must not reach the endpoint");
            assert_eq!(replay.remaining(), 0, "every journaled query was replayed");
        }
        let per_query = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2].as_nanos() as f64 / queries as f64 / 1000.0
        };
        let (j, p, r) = (per_query(&mut journaled), per_query(&mut plain), per_query(&mut replayed));
        println!("metrics.query, median of {ROUNDS} interleaved runs of {queries} queries each:");
        println!("  live, journaled (SQLite)  {j:>8.1} us per query");
        println!("  live, not journaled       {p:>8.1} us per query");
        println!("  replayed from the journal {r:>8.1} us per query");
    });
}
