//! The headers a proxy must rewrite: hop-by-hop headers are the client's connection's business, not
//! the machine's (RFC 9110 §7.6.1), so they are dropped both ways; the machine learns who the client
//! was from `X-Forwarded-For` and `X-Forwarded-Proto`; and an `Upgrade` request keeps the two headers
//! that ask for it.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The `Upgrade` header's value when the request (or response) asks for a protocol upgrade.
pub(super) fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    wants.then(|| upgrade.clone())
}

static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Removes the hop-by-hop headers: the standard ones and those the `Connection` header names.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        strip_connection_named(headers);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes the headers the `Connection` header names.
fn strip_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if name != header::CONTENT_LENGTH && name != header::HOST {
            headers.remove(name);
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// `peer`: the client's IP address, as a header value.
pub(super) fn prepare_request_headers(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    upgrade: Option<&HeaderValue>,
) {
    strip_hop_by_hop(headers);
    if headers.contains_key(&X_FORWARDED_FOR) {
        append_forwarded_for(headers, peer);
    } else {
        headers.insert(X_FORWARDED_FOR.clone(), peer.clone());
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol.clone());
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// `X-Forwarded-For`, every value the client sent, then `peer`, as one value.
fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let mut forwarded: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    forwarded.push(peer.to_str().unwrap_or_default().to_owned());
    let forwarded = forwarded.join(", ");
    if let Ok(v) = HeaderValue::try_from(forwarded) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}
