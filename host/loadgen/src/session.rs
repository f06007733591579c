//! Session clients: each worker of a [`LoadSpec::sessions`](crate::LoadSpec::sessions) load is one
//! user with a cookie jar, and the report counts what such a user would notice during a deploy —
//! being served the old release again after the new one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderMap, HeaderValue};

use crate::Sample;

/// One virtual client's cookies, as a browser keeps them for one site: `name=value` pairs, set by
/// `Set-Cookie` (the last one wins), removed by `Max-Age=0`. Paths, domains and expiry are not
/// followed: the load asks one path of one host for a few minutes.
#[derive(Debug, Default)]
pub(crate) struct Jar {
    cookies: Mutex<Vec<(String, String)>>,
}

impl Jar {
    /// The `Cookie` header to send, if any, and when it was read (since `started`): a response that
    /// completes after this moment could not have changed this request's cookies.
    pub(crate) fn header(&self, started: Instant) -> (Option<HeaderValue>, Duration) {
        let cookies = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        let sent = started.elapsed();
        let text = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        let value = (!text.is_empty()).then(|| HeaderValue::try_from(text).ok()).flatten();
        (value, sent)
    }

    /// Keeps a response's cookies; returns when (since `started`) they were kept, the moment from
    /// which the client has seen this response.
    pub(crate) fn keep(&self, headers: &HeaderMap, started: Instant) -> Duration {
        let mut cookies = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        for set in headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let mut attrs = set.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.split_once('=')) else { continue };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            let expired = attrs.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            cookies.retain(|(n, _)| *n != name);
            if !expired {
                cookies.push((name, value));
            }
        }
        started.elapsed()
    }
}

/// What session clients saw of the releases: how often one was served an older release than one
/// it had already been served.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Regressions {
    /// Clients with at least one answer naming its release.
    pub clients: usize,
    /// Of those, the ones that were served an older release after a newer one.
    pub clients_regressed: usize,
    /// Answers from an older release than one the same client had already received when it sent
    /// the request ("saw old after new").
    pub answers: usize,
}

/// Counts regressions per client over `samples` (any order). An answer counts when its release is
/// older than the newest release among the answers its client had *completely received* before it
/// sent the request: requests in flight together may legitimately land on different releases.
pub fn regressions(samples: &[Sample]) -> Regressions {
    let mut by_client: std::collections::BTreeMap<usize, Vec<&Sample>> = Default::default();
    for s in samples.iter().filter(|s| s.version.is_some()) {
        by_client.entry(s.client).or_default().push(s);
    }
    let mut out = Regressions { clients: by_client.len(), ..Regressions::default() };
    for mut sent in by_client.into_values() {
        let mut done = sent.clone();
        sent.sort_by_key(|s| s.sent);
        done.sort_by_key(|s| s.done);
        let (mut next_done, mut newest_seen, mut regressed) = (0, 0, 0);
        for s in sent {
            while next_done < done.len() && done[next_done].done <= s.sent {
                newest_seen = newest_seen.max(done[next_done].version.unwrap_or(0));
                next_done += 1;
            }
            regressed += usize::from(s.version.is_some_and(|v| v < newest_seen));
        }
        out.answers += regressed;
        out.clients_regressed += usize::from(regressed > 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(client: usize, sent_ms: u64, done_ms: u64, version: u64) -> Sample {
        Sample {
            at: Duration::from_millis(sent_ms),
            latency: Duration::from_millis(done_ms - sent_ms),
            status: Some(200),
            version: Some(version),
            keep_alive: true,
            error: None,
            client,
            sent: Duration::from_millis(sent_ms),
            done: Duration::from_millis(done_ms),
        }
    }

    #[test]
    fn old_after_new_counts_only_once_new_was_received() {
        let samples = [
            // Client 0: 1, 2, then 1 again after 2 was received — one regression.
            answer(0, 0, 5, 1),
            answer(0, 10, 15, 2),
            answer(0, 20, 25, 1),
            answer(0, 30, 35, 2),
            // Client 1: sent together, answered by different releases — none (2 was not yet seen).
            answer(1, 0, 50, 2),
            answer(1, 10, 20, 1),
            // Client 2: old to new only.
            answer(2, 0, 5, 1),
            answer(2, 10, 15, 2),
            answer(2, 20, 25, 2),
        ];
        assert_eq!(regressions(&samples), Regressions { clients: 3, clients_regressed: 1, answers: 1 });
        assert_eq!(regressions(&[]), Regressions::default());
    }

    #[test]
    fn the_jar_keeps_the_last_value_of_each_cookie_and_drops_expired_ones() {
        let started = Instant::now();
        let jar = Jar::default();
        assert_eq!(jar.header(started).0, None);
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/; HttpOnly"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        jar.keep(&h, started);
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=3; Max-Age=60"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=; Max-Age=0"));
        jar.keep(&h, started);
        assert_eq!(jar.header(started).0.unwrap(), "a=3");
    }
}
