//! A client's request head on the lean path: parsed where it lies in the connection's buffer, checked
//! as the guard checks it, and written out for the machine with the headers the proxy strips and
//! adds (the same as `headers` does on the hyper path). Anything the lean path does not forward
//! itself is [`Parsed::Hyper`]: the connection goes to hyper from that request on.

use std::mem::MaybeUninit;

use super::super::affinity::{CookieKey, Pin};
use super::super::framing::{STACK_HEADERS, plain_length};
use super::{Connection, is_hop_by_hop};

/// What the lean path keeps of a request head once it has written the machine's copy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    /// Bytes of the head in the client's buffer.
    pub(super) len: usize,
    /// Bytes of its body (all of them follow the head before the request goes out).
    pub(super) body: usize,
    /// A `HEAD` request: its answer has no body whatever its headers say.
    pub(super) head_method: bool,
    /// GET, HEAD, OPTIONS or TRACE: may be sent again after an attempt that may have reached the
    /// machine.
    pub(super) idempotent: bool,
    /// The client asked to close the connection after this request (HTTP/1.0: did not ask to keep it).
    pub(super) close: bool,
    /// An HTTP/1.0 request: the machine gets it as HTTP/1.1 (as on the hyper path), the client its
    /// answer as HTTP/1.0, without chunks.
    pub(super) http10: bool,
    /// The client sent no `Host`: each attempt adds the machine's address as one.
    pub(super) no_host: bool,
    /// The sticky session's pin (sticky sessions on, and a cookie the proxy wrote).
    pub(super) pin: Option<Pin>,
}

impl Head {
    /// The version the answer's status line says: the client's (as hyper answers).
    pub(super) fn version(&self) -> &'static str {
        if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" }
    }

    /// The `Connection` header line an answer carries, given whether the connection closes after it:
    /// HTTP/1.1 says a close, HTTP/1.0 says a keep-alive (each version's default goes unsaid).
    pub(super) fn connection_header(&self, close: bool) -> &'static [u8] {
        match (self.http10, close) {
            (false, true) => b"connection: close\r\n",
            (true, false) => b"connection: keep-alive\r\n",
            _ => b"",
        }
    }
}

/// The outcome of looking at the start of the client's buffer.
#[derive(Debug)]
pub(super) enum Parsed {
    /// The head is not complete yet (and within its bounds so far).
    Partial,
    /// A request the lean path forwards; the machine's copy of its head is written, up to (not
    /// including) the blank line that ends it.
    Lean(Head),
    /// Anything else: hyper serves the connection from this request on (and the guard refuses what
    /// it refuses).
    Hyper,
}

/// What bounds a request head on the lean path.
pub(super) struct Bounds {
    pub(super) max_bytes: usize,
    pub(super) max_headers: usize,
    /// Bodies up to this size are read whole before the request goes out (so it can be retried).
    pub(super) max_body: usize,
}

/// Whether the request head at the start of `buf` (a peek at a new connection's first bytes) asks to
/// close the connection after it, as [`parse`] would decide: where the connection is served depends
/// on it (see `balance`). A head not complete in `buf`, or not one the lean path reads, counts as
/// lasting.
pub(in super::super) fn asks_to_close(buf: &[u8]) -> bool {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let (Ok(httparse::Status::Complete(_)), Some(version @ (0 | 1))) =
        (req.parse_with_uninit_headers(buf, &mut slots), req.version)
    else {
        return false;
    };
    let mut connection = Connection::default();
    for h in req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")) {
        connection.add(h.value);
    }
    connection.closes(version == 0)
}

/// Parses the head at the start of `buf`; for a lean request, writes the machine's copy of its head
/// into `out` (cleared first). `peer`: the client's address, for `X-Forwarded-For`; `cookies`: the
/// key of sticky sessions when they are on.
pub(super) fn parse(
    buf: &[u8],
    bounds: &Bounds,
    peer: &[u8],
    cookies: Option<&CookieKey>,
    out: &mut Vec<u8>,
) -> Parsed {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let slots = &mut slots[..bounds.max_headers.min(STACK_HEADERS)];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Partial) if buf.len() <= bounds.max_bytes => return Parsed::Partial,
        Ok(httparse::Status::Complete(len)) if len <= bounds.max_bytes => len,
        // Over a bound, more header lines than the stack holds, malformed: the guard's business.
        _ => return Parsed::Hyper,
    };
    let (Some(method), Some(path), Some(version @ (0 | 1))) = (req.method, req.path, req.version) else {
        return Parsed::Hyper;
    };
    let http10 = version == 0;
    // Origin form only (an absolute or `*` target goes the long way), and a plain body.
    if !path.starts_with('/') {
        return Parsed::Hyper;
    }
    let Some(body) = plain_length(&req).and_then(|n| usize::try_from(n).ok()) else {
        return Parsed::Hyper;
    };
    if body > bounds.max_body {
        return Parsed::Hyper;
    }

    // First pass: what decides the rest (the headers `Connection` names, what the proxy adds).
    let mut connection = Connection::default();
    let mut host = false;
    let mut proto = false;
    let mut lengths = 0;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            connection.add(h.value);
            if connection.full {
                return Parsed::Hyper;
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            host = true;
        } else if name.eq_ignore_ascii_case(b"x-forwarded-proto") {
            proto = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths += 1;
            if h.value.contains(&b',') {
                return Parsed::Hyper;
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            // hyper answers `100-continue` (and refuses other expectations).
            return Parsed::Hyper;
        }
    }
    if lengths > 1 {
        return Parsed::Hyper;
    }
    let close = connection.closes(http10);

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if is_hop_by_hop(name) || name.eq_ignore_ascii_case(b"x-forwarded-for") {
            continue;
        }
        if connection.names(name)
            && !name.eq_ignore_ascii_case(b"content-length")
            && !name.eq_ignore_ascii_case(b"host")
        {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    // Every X-Forwarded-For value the client sent (those that are text), then the client, as one.
    out.extend_from_slice(b"x-forwarded-for: ");
    for h in req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for")) {
        let value = h.value.trim_ascii();
        if !value.is_empty() && value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(peer);
    out.extend_from_slice(b"\r\n");
    if !proto {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    let pin = cookies.and_then(|key| {
        key.read_values(req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("cookie")).map(|h| h.value))
    });
    let head_method = method == "HEAD";
    let idempotent = head_method || matches!(method, "GET" | "OPTIONS" | "TRACE");
    Parsed::Lean(Head { len, body, head_method, idempotent, close, http10, no_host: !host, pin })
}
