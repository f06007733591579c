//! Who may talk to the daemon: its owner, and nothing a web page can send.
//!
//! The daemon runs machines' commands as its own user, so its API is as powerful as a shell of that
//! user. On loopback any process of any user of the machine can reach it, and any web page the owner
//! visits can send it "simple" cross-site requests. So every request must:
//!
//! - carry the daemon's token (`Authorization: Bearer …`), a random secret the daemon writes, readable
//!   by its owner only (mode 0600, in a 0700 directory), into [`TOKEN_FILE`] beside `daemon.json`
//!   (missing or wrong: 401, and nothing is done);
//! - carry no `Origin` header: browsers add one to every cross-site request, the `cutover` command
//!   never does (403);
//! - send a body, if any, as `application/json`: a browser sends `text/plain` or a form without asking
//!   first, never JSON (415).
//!
//! A token rather than a Unix socket: the daemon speaks the Machines API, and the one client that
//! speaks it (for Fly too) is an HTTP client over TCP that already sends a token on every request;
//! a token also lets the owner reach the API with `curl -H "Authorization: Bearer $(cat …)"`.

use super::Daemon;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cutover_core::ErrorKind;
use cutover_machines_api::{ErrorBody, Token};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// The file, beside `daemon.json`, that holds the daemon's token (mode 0600).
pub const TOKEN_FILE: &str = "daemon.token";

/// A fresh random token: 256 bits from the operating system's seeded generator, as hex.
pub fn new_token() -> String {
    rand::random::<[u64; 4]>().iter().map(|w| format!("{w:016x}")).collect()
}

/// Make `dir` its owner's only (0700) and write `token` into its [`TOKEN_FILE`], created 0600 (never
/// readable by anyone else, not even for a moment) and moved into place whole.
pub fn write_token(dir: &Path, token: &str) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = dir.join(format!(".{TOKEN_FILE}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(TOKEN_FILE))
}

/// The token of the daemon whose directory is `dir`, if it can be read.
pub fn read_token(dir: &Path) -> Option<Token> {
    Token::new(std::fs::read_to_string(dir.join(TOKEN_FILE)).ok()?)
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(ErrorBody { error: message, kind: Some(ErrorKind::Denied) })).into_response()
}

/// Equal without saying, by its timing, how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request is refused before it reaches a handler, if it is.
fn refusal(headers: &HeaderMap, method: &Method, token: &str) -> Option<Response> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "a request from a web page (Origin: {}) is refused: the local daemon's API is for the cutover \
                 command only",
                String::from_utf8_lossy(origin.as_bytes())
            ),
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !same(presented, token.as_bytes()) {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            format!(
                "missing or wrong token: the local daemon answers only the user who started it (its token is in \
                 {TOKEN_FILE} in its directory, readable by that user only)"
            ),
        ));
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|n| n.trim() != "0");
    let json = content_type.as_deref().is_some_and(|t| {
        t.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json")
    });
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (content_type.is_some() || (writes && has_body)) && !json {
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the local daemon takes JSON bodies only (Content-Type: application/json), not {}",
                content_type.as_deref().unwrap_or("a body without a Content-Type")
            ),
        ));
    }
    None
}

/// The middleware in front of every route: refused requests never reach a handler.
pub async fn guard(State(d): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    match refusal(req.headers(), req.method(), &d.token) {
        Some(refused) => {
            tracing::warn!("refused {} {}: {}", req.method(), req.uri().path(), refused.status());
            refused
        }
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn status(pairs: &[(&'static str, &str)], method: Method) -> Option<u16> {
        refusal(&headers(pairs), &method, "s3cret").map(|r| r.status().as_u16())
    }

    #[test]
    fn only_the_token_holder_without_an_origin_and_with_json_passes() {
        let auth = ("authorization", "Bearer s3cret");
        assert_eq!(status(&[auth], Method::POST), None);
        assert_eq!(status(&[auth, ("content-type", "application/json; charset=utf-8")], Method::PUT), None);
        assert_eq!(status(&[], Method::GET), Some(401));
        assert_eq!(status(&[("authorization", "Bearer s3cre")], Method::GET), Some(401));
        assert_eq!(status(&[("authorization", "Bearer s3cretX")], Method::GET), Some(401));
        assert_eq!(status(&[("authorization", "s3cret")], Method::GET), Some(401));
        assert_eq!(status(&[auth, ("origin", "http://evil.example")], Method::POST), Some(403));
        assert_eq!(status(&[auth, ("content-type", "text/plain")], Method::POST), Some(415));
        assert_eq!(status(&[auth, ("content-length", "12")], Method::POST), Some(415));
        assert_eq!(status(&[auth, ("content-length", "0")], Method::POST), None);
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn the_token_file_is_its_owners_only() {
        let dir = std::env::temp_dir().join(format!("cutover-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_token(&dir, "abc").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(TOKEN_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(read_token(&dir), Token::new("abc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
