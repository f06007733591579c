//! `metrics.*`: queries go to the run's [`MetricsSource`] (a Prometheus server, or the simulator's
//! scenario), the judge is computed here. Both are answered as every call is: recorded with their
//! reply, so a resumed run is handed the answer the first run saw instead of asking again.

use cutover_core::events::{HostCall, HostReply};
use cutover_core::judge;
use cutover_core::metrics::{MAX_POINTS, MetricsSource, Query};
use cutover_core::{ErrorKind, OpError};

/// The answer to a `metrics.*` call; `None` for any other call. `now_ms` is the host clock (ms since
/// the Unix epoch), the time of an instant query that names none.
pub(super) async fn answer(
    source: Option<&dyn MetricsSource>,
    call: &HostCall,
    now_ms: u64,
) -> Option<HostReply> {
    let query = match call {
        HostCall::Judge { canary, baseline, options } => {
            return Some(match judge::judge(canary, baseline, options) {
                Ok(j) => HostReply::Judgment(j),
                Err(why) => HostReply::Failed(OpError::new(ErrorKind::Invalid, why.to_string())),
            });
        }
        HostCall::MetricsQuery { promql, time_ms } => {
            Query::Instant { promql: promql.clone(), time_ms: time_ms.unwrap_or(now_ms) }
        }
        HostCall::MetricsRange { promql, start_ms, end_ms, step_ms } => {
            if let Some(why) = bad_range(*start_ms, *end_ms, *step_ms) {
                return Some(HostReply::Failed(OpError::new(ErrorKind::Invalid, why)));
            }
            Query::Range { promql: promql.clone(), start_ms: *start_ms, end_ms: *end_ms, step_ms: *step_ms }
        }
        _ => return None,
    };
    let Some(source) = source else {
        return Some(HostReply::Failed(OpError::new(
            ErrorKind::Unsupported,
            "no metrics server is configured: set `[cutover.metrics] url` in the app's config (under the \
             simulator, give the scenario `[[metrics]]` series)",
        )));
    };
    Some(match source.query(&query).await {
        Ok(series) => HostReply::Series(series),
        Err(e) => HostReply::Failed(e),
    })
}

/// Why a range cannot be asked, if it cannot: reversed, a zero step, or more points than an answer
/// may hold.
fn bad_range(start_ms: u64, end_ms: u64, step_ms: u64) -> Option<String> {
    if step_ms == 0 {
        return Some("a range query's step must be at least 1 ms".into());
    }
    if end_ms < start_ms {
        return Some(format!("a range query ends ({end_ms}) before it starts ({start_ms})"));
    }
    let points = (end_ms - start_ms) / step_ms + 1;
    (points > MAX_POINTS as u64).then(|| {
        format!("the range asks {points} points per series; at most {MAX_POINTS} (use a larger step)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_source_queries_are_unsupported_and_the_judge_still_answers() {
        let q = HostCall::MetricsQuery { promql: "up".into(), time_ms: None };
        match answer(None, &q, 0).await {
            Some(HostReply::Failed(e)) => {
                assert_eq!(e.kind, ErrorKind::Unsupported);
                assert!(e.message.contains("[cutover.metrics] url"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let j =
            HostCall::Judge { canary: vec![1.0, 2.0], baseline: vec![1.0, 2.0], options: Default::default() };
        assert!(matches!(answer(None, &j, 0).await, Some(HostReply::Judgment(_))));
        let empty = HostCall::Judge { canary: vec![], baseline: vec![1.0], options: Default::default() };
        assert!(
            matches!(answer(None, &empty, 0).await, Some(HostReply::Failed(e)) if e.kind == ErrorKind::Invalid)
        );
        assert!(answer(None, &HostCall::Now, 0).await.is_none());
    }

    #[test]
    fn ranges_are_bounded() {
        assert!(bad_range(0, 10, 0).unwrap().contains("step"));
        assert!(bad_range(10, 0, 1).unwrap().contains("before it starts"));
        assert!(bad_range(0, 1_000_000, 1).unwrap().contains("at most"));
        assert!(bad_range(0, 600_000, 15_000).is_none());
    }
}
