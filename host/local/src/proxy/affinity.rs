//! Sticky sessions: a cookie keeps a client on the release that served it, so that during a deploy a
//! user does not flip between the old and the new version from one request to the next.
//!
//! The cookie, `cutover-release=VERSION.GENERATION.TAG`, names the release that served the client
//! and the generation of the traffic split it was chosen under (a counter the proxy bumps whenever
//! the releases' shares of new traffic change: new weights, or, where traffic is split by machine
//! count, a release gaining or losing machines). `TAG` is a keyed hash of the two
//! (SipHash, keyed at random when the proxy starts), so a client cannot write a cookie of its own
//! choosing; one that does not verify is ignored as if it were absent. Even a verified cookie only
//! ever chooses among the releases the table routes to: it names a release, never a machine.
//!
//! A request with a verified cookie for release `P`, issued under generation `G`:
//!
//! - goes to `P` while `P` has routable machines and a share of the traffic, if `P` is the newest
//!   release that has, or if the split is still that of generation `G`. So a client the weights
//!   sent to the canary keeps the canary; a client on the stable release stays there while a canary
//!   step holds, and is weighed again (once) when the step changes, as Flagger's proposal to keep
//!   primary sessions "until the next step" does — otherwise the canary would only ever see users who
//!   had no cookie yet, its share of users would not follow its weight, and in a rolling deploy every
//!   old client would crowd onto the last old machines.
//! - otherwise goes by weight among `P` and the releases *newer* than `P` that have a share, when
//!   there are any: a client is never sent back from a release to an older one. When a bluegreen
//!   switch gives the old release 0%, its clients move to the new one (old → new is the deploy doing
//!   its job).
//! - otherwise (only older releases have a share: a rollback) goes by weight, like a new client.
//!
//! Every answer whose release or generation differs from the cookie's sets a new cookie. Routing
//! does not trust the cookie to reach anything the table would not route to, and a retry after a
//! failed attempt prefers the pinned release and newer ones before falling back to any.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};

use super::table::{Group, Table};

/// The cookie's name.
pub const COOKIE_NAME: &str = "cutover-release";

/// A cookie value longer than this is not one the proxy wrote (two `u64`s and a 16-digit tag).
const MAX_VALUE_LEN: usize = 20 + 1 + 20 + 1 + 16;

/// What a verified cookie says: the release that served the client, under which weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pin {
    pub(super) version: u64,
    pub(super) generation: u64,
}

/// The proxy's key for the cookie's tag, random per proxy.
pub(super) struct CookieKey(RandomState);

impl CookieKey {
    /// A fresh random key.
    pub(super) fn new() -> Self {
        CookieKey(RandomState::new())
    }

    fn tag(&self, version: u64, generation: u64) -> u64 {
        self.0.hash_one((COOKIE_NAME, version, generation))
    }

    /// The pin a request's `Cookie` headers carry, if one of them is a cookie this proxy wrote.
    /// Anything else (absent, malformed, oversized, forged, from another proxy) is `None`.
    pub(super) fn read(&self, headers: &HeaderMap) -> Option<Pin> {
        self.read_values(headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes))
    }

    /// [`CookieKey::read`] over the raw values of a request's `Cookie` headers.
    pub(super) fn read_values<'a>(&self, values: impl IntoIterator<Item = &'a [u8]>) -> Option<Pin> {
        values
            .into_iter()
            .flat_map(|v| v.split(|&b| b == b';'))
            .filter_map(|pair| {
                let pair = pair.trim_ascii();
                let value = pair.strip_prefix(COOKIE_NAME.as_bytes())?.strip_prefix(b"=")?;
                (value.len() <= MAX_VALUE_LEN).then_some(value)
            })
            .find_map(|value| self.verify(std::str::from_utf8(value).ok()?))
    }

    fn verify(&self, value: &str) -> Option<Pin> {
        let mut parts = value.split('.');
        let version = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let tag = u64::from_str_radix(parts.next()?, 16).ok()?;
        (parts.next().is_none() && tag == self.tag(version, generation))
            .then_some(Pin { version, generation })
    }

    /// The `Set-Cookie` value pinning a client to `pin`, kept for `max_age` (zero: a session cookie).
    pub(super) fn set_cookie(&self, pin: Pin, max_age: Duration) -> HeaderValue {
        let Pin { version, generation } = pin;
        let tag = self.tag(version, generation);
        let mut cookie =
            format!("{COOKIE_NAME}={version}.{generation}.{tag:016x}; Path=/; HttpOnly; SameSite=Lax");
        if !max_age.is_zero() {
            cookie.push_str(&format!("; Max-Age={}", max_age.as_secs().max(1)));
        }
        HeaderValue::try_from(cookie).expect("digits and ASCII make a header value")
    }
}

impl Table {
    /// The release a request pinned to `pin` goes to (see the module's doc); `None`: nothing
    /// routable.
    pub(super) fn choose_pinned(&self, pin: Pin) -> Option<&Group> {
        let newest = self.groups.iter().map(|g| g.version).max()?;
        if let Some(g) = self.groups.iter().find(|g| g.version == pin.version)
            && (g.version == newest || pin.generation == self.generation)
        {
            return Some(g);
        }
        self.choose_among(|g| g.version >= pin.version).or_else(|| self.choose())
    }

    /// [`Table::choose`] restricted to the groups `keep` accepts; `None` when it accepts none.
    fn choose_among(&self, keep: impl Fn(&Group) -> bool) -> Option<&Group> {
        let total: u64 = self.groups.iter().filter(|g| keep(g)).map(|g| g.weight).sum();
        if total == 0 {
            return None;
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut point = ((n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) * total) >> 32;
        for g in self.groups.iter().filter(|g| keep(g)) {
            if point < g.weight {
                return Some(g);
            }
            point -= g.weight;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    /// The `name=value` part of a `Set-Cookie` value.
    fn pair(set_cookie: &HeaderValue) -> String {
        set_cookie.to_str().unwrap().split(';').next().unwrap().to_string()
    }

    #[test]
    fn a_cookie_the_proxy_wrote_reads_back_among_others() {
        let key = CookieKey::new();
        let pin = Pin { version: 7, generation: 3 };
        let set = key.set_cookie(pin, Duration::from_secs(3600));
        let text = set.to_str().unwrap();
        assert!(
            text.contains("Max-Age=3600") && text.contains("HttpOnly") && text.contains("Path=/"),
            "{text}"
        );
        let mine = pair(&set);
        assert_eq!(key.read(&headers(&[&mine])), Some(pin));
        assert_eq!(key.read(&headers(&[&format!("a=b; {mine}; c=d")])), Some(pin));
        assert_eq!(key.read(&headers(&["a=b", &format!("x=1;{mine}")])), Some(pin));
        // A garbage cookie of the same name before it does not hide it.
        assert_eq!(key.read(&headers(&[&format!("cutover-release=junk; {mine}")])), Some(pin));
        // A session cookie has no Max-Age.
        assert!(!key.set_cookie(pin, Duration::ZERO).to_str().unwrap().contains("Max-Age"));
    }

    /// How often each release is chosen for `pin` over 1000 requests.
    fn choices(table: &Table, pin: Pin) -> std::collections::BTreeMap<u64, usize> {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..1000 {
            *seen.entry(table.choose_pinned(pin).unwrap().version).or_default() += 1;
        }
        seen
    }

    #[test]
    fn a_pin_holds_for_the_newest_release_and_for_older_ones_within_a_step() {
        let pin = |version, generation| Pin { version, generation };
        // A canary step: v1 80%, v2 20%, generation 5.
        let canary = Table::of_weights(&[(1, 80), (2, 20)], 5);
        assert_eq!(choices(&canary, pin(2, 1)), [(2, 1000)].into(), "the canary's clients keep it");
        assert_eq!(choices(&canary, pin(1, 5)), [(1, 1000)].into(), "stable clients keep it within the step");
        // A stable pin from before the step is weighed again: about a fifth move to the canary.
        let moved = choices(&canary, pin(1, 4)).get(&2).copied().unwrap_or(0);
        assert!((150..=250).contains(&moved), "{moved}");
        // A bluegreen switch (v1 at 0% is not in the table): v1's clients go to v2, never back.
        let switched = Table::of_weights(&[(2, 100)], 6);
        assert_eq!(choices(&switched, pin(1, 5)), [(2, 1000)].into());
        // A release that is gone sends its clients to newer ones only, by weight among them.
        let three = Table::of_weights(&[(1, 50), (3, 25), (4, 25)], 7);
        let seen = choices(&three, pin(2, 7));
        assert!(!seen.contains_key(&1) && seen[&3] > 400 && seen[&4] > 400, "{seen:?}");
        // Only older releases have a share (a rollback): by weight, like a new client.
        let rollback = Table::of_weights(&[(1, 100)], 8);
        assert_eq!(choices(&rollback, pin(2, 7)), [(1, 1000)].into());
        // A pin naming a release that never existed changes nothing but its own routing.
        assert_eq!(choices(&rollback, pin(u64::MAX, 0)), [(1, 1000)].into());
        assert!(Table::of_weights(&[], 0).choose_pinned(pin(1, 0)).is_none());
    }

    #[test]
    fn forged_garbled_huge_or_foreign_cookies_are_ignored() {
        let key = CookieKey::new();
        let mine = pair(&key.set_cookie(Pin { version: 7, generation: 3 }, Duration::ZERO));
        let tag = mine.rsplit('.').next().unwrap();
        let huge = format!("cutover-release={}", "9".repeat(30_000));
        let other_proxy =
            pair(&CookieKey::new().set_cookie(Pin { version: 7, generation: 3 }, Duration::ZERO));
        for bad in [
            "cutover-release=7",
            "cutover-release=8.3.0000000000000000",
            &format!("cutover-release=8.3.{tag}"),
            &format!("cutover-release=7.4.{tag}"),
            &format!("cutover-release=7.3.{tag}.1"),
            "cutover-release=-1.0.0",
            "cutover-release=..",
            "cutover-release=",
            "cutover-release",
            "cutover-releasex=1.2.3",
            &huge,
            &other_proxy,
        ] {
            assert_eq!(key.read(&headers(&[bad])), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_bytes(b"cutover-release=\xff\xfe").unwrap());
        assert_eq!(key.read(&h), None);
    }
}
