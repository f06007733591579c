//! Who may use the dashboard: whoever holds its token, from its own page, and nothing another web
//! page can make a browser send.
//!
//! The dashboard can promote, abort and roll back the app's deploys, so it is as powerful as the
//! `cutover` command of the user who started it. It listens on loopback, where any process of any user
//! of the machine can reach it, and any page the user visits can send it requests. So:
//!
//! - every request carries the token: once in the URL `cutover dashboard` prints (`/?token=…`, which
//!   sets an `HttpOnly`, `SameSite=Strict` cookie and redirects to `/`, so the token leaves the
//!   address bar and history), then in that cookie, or in an `X-Cutover-Token` header (scripts,
//!   `curl`). Without it: 401, and nothing is done.
//! - `Host` must name the loopback address it listens on (a DNS-rebinding page's requests name its
//!   own host: 403).
//! - `Origin`, when a browser sends one, must be the dashboard's own; `Sec-Fetch-Site`, when sent, must
//!   be `same-origin` or `none` (a user typing the URL): another site's request is refused (403) even
//!   with the cookie, which `SameSite=Strict` withholds anyway.
//! - a request that changes something (POST) must send `Content-Type: application/json`: a form or a
//!   "simple" cross-site request cannot, and a cross-site `fetch` that does must ask first (a CORS
//!   preflight the dashboard never grants): 415.

use axum::http::{HeaderMap, Method, StatusCode, header};

/// The cookie the token is kept in after the first visit.
pub const COOKIE: &str = "cutover_dashboard";

/// The header scripts may send the token in instead.
pub const HEADER: &str = "x-cutover-token";

/// A fresh random token: 256 bits from the operating system's seeded generator, as hex.
pub fn new_token() -> String {
    rand::random::<[u64; 4]>().iter().map(|w| format!("{w:016x}")).collect()
}

/// Equal without saying, by its timing, how much of a guess was right.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request presents, from the header or the cookie.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(HEADER) {
        return Some(v.as_bytes());
    }
    headers.get_all(header::COOKIE).iter().flat_map(|v| v.as_bytes().split(|b| *b == b';')).find_map(|c| {
        let c = c.trim_ascii();
        c.strip_prefix(COOKIE.as_bytes()).and_then(|rest| rest.strip_prefix(b"="))
    })
}

/// Why a request is refused, if it is: the status and a message saying what to do.
///
/// `port` is the one the dashboard listens on; `query_token` is the `token` of the URL's query, which
/// only `GET /` takes (it trades it for the cookie).
pub(crate) fn refusal(
    headers: &HeaderMap,
    method: &Method,
    port: u16,
    token: &str,
    query_token: Option<&str>,
) -> Option<(StatusCode, String)> {
    let ours = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let host = headers.get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).to_string());
    if !host.as_deref().is_some_and(|h| ours.iter().any(|o| o.eq_ignore_ascii_case(h))) {
        return Some((
            StatusCode::FORBIDDEN,
            format!(
                "the dashboard answers requests for {} only, not Host: {}",
                ours[0],
                host.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !ours.iter().any(|o| origin.eq_ignore_ascii_case(&format!("http://{o}"))) {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "a request from another web page (Origin: {origin}) is refused: the dashboard takes requests from its own page only"
                ),
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes());
        if !matches!(site.as_ref(), "same-origin" | "none") {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "a request from another site (Sec-Fetch-Site: {site}) is refused: the dashboard takes requests from its own page only"
                ),
            ));
        }
    }
    let from_query = query_token.is_some_and(|q| same(q.as_bytes(), token.as_bytes()));
    if !from_query && !presented(headers).is_some_and(|p| same(p, token.as_bytes())) {
        return Some((
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: open the address `cutover dashboard` printed (with its ?token=…), or \
             send the token in an X-Cutover-Token header"
                .to_string(),
        ));
    }
    if *method != Method::GET && *method != Method::HEAD {
        let content_type =
            headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
        let json = content_type.as_deref().is_some_and(|t| {
            t.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json")
        });
        if !json {
            return Some((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the dashboard's actions take JSON only (Content-Type: application/json), not {}",
                    content_type.as_deref().unwrap_or("a request without a Content-Type")
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(pairs: &[(&'static str, &str)], method: Method, query: Option<&str>) -> Option<u16> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        refusal(&h, &method, 8123, "s3cret", query).map(|(s, _)| s.as_u16())
    }

    const HOST: (&str, &str) = ("host", "127.0.0.1:8123");
    const COOKIE_OK: (&str, &str) = ("cookie", "other=1; cutover_dashboard=s3cret");
    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn the_token_from_the_url_the_cookie_or_the_header_lets_a_request_in() {
        assert_eq!(status(&[HOST], Method::GET, Some("s3cret")), None);
        assert_eq!(status(&[HOST, COOKIE_OK], Method::GET, None), None);
        assert_eq!(status(&[HOST, (HEADER, "s3cret")], Method::GET, None), None);
        assert_eq!(status(&[("host", "localhost:8123"), COOKIE_OK, JSON], Method::POST, None), None);
        assert_eq!(
            status(
                &[
                    HOST,
                    COOKIE_OK,
                    JSON,
                    ("origin", "http://127.0.0.1:8123"),
                    ("sec-fetch-site", "same-origin")
                ],
                Method::POST,
                None
            ),
            None
        );
    }

    #[test]
    fn without_the_token_a_request_is_refused() {
        assert_eq!(status(&[HOST], Method::GET, None), Some(401));
        assert_eq!(status(&[HOST], Method::GET, Some("s3cre")), Some(401));
        assert_eq!(status(&[HOST, ("cookie", "cutover_dashboard=s3cretX")], Method::GET, None), Some(401));
        assert_eq!(status(&[HOST, ("cookie", "xcutover_dashboard=s3cret")], Method::GET, None), Some(401));
        assert_eq!(status(&[HOST, (HEADER, "")], Method::POST, None), Some(401));
    }

    #[test]
    fn another_site_or_host_is_refused_even_with_the_token() {
        assert_eq!(status(&[("host", "evil.example:8123"), COOKIE_OK], Method::GET, None), Some(403));
        assert_eq!(status(&[COOKIE_OK], Method::GET, None), Some(403));
        assert_eq!(
            status(&[HOST, COOKIE_OK, JSON, ("origin", "http://evil.example")], Method::POST, None),
            Some(403)
        );
        assert_eq!(
            status(&[HOST, COOKIE_OK, JSON, ("origin", "http://127.0.0.1:9999")], Method::POST, None),
            Some(403)
        );
        assert_eq!(
            status(&[HOST, COOKIE_OK, JSON, ("sec-fetch-site", "cross-site")], Method::POST, None),
            Some(403)
        );
        assert_eq!(status(&[HOST, COOKIE_OK, ("sec-fetch-site", "same-site")], Method::GET, None), Some(403));
    }

    #[test]
    fn an_action_must_be_json() {
        assert_eq!(status(&[HOST, COOKIE_OK], Method::POST, None), Some(415));
        assert_eq!(status(&[HOST, COOKIE_OK, ("content-type", "text/plain")], Method::POST, None), Some(415));
        assert_eq!(
            status(
                &[HOST, COOKIE_OK, ("content-type", "application/x-www-form-urlencoded")],
                Method::POST,
                None
            ),
            Some(415)
        );
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
