//! Where each request of a client connection begins and ends, checked before hyper reads it.
//!
//! hyper parses requests itself and refuses most malformed ones, but it *accepts* a request with both
//! `Content-Length` and `Transfer-Encoding` (it drops the length, reads the body as chunked and closes
//! the connection afterwards). A front proxy and the server behind it that disagree on where a body
//! ends is what request smuggling is made of (RFC 9112 §6.3, §11.2), so the proxy refuses every head
//! whose framing is not plain, and never forwards it: the [`Scanner`] sees the client's bytes before
//! hyper does, holds back each request head until it is complete, parses it with the same parser
//! hyper uses (`httparse`), and then follows the body (a length, or chunks) to the next head. A head
//! it refuses is not released; hyper is handed instead a stand-in head, which the HTTP service
//! answers with the refusal's status and reason, and the connection ends.
//!
//! Refused (400 unless said): both `Content-Length` and `Transfer-Encoding`; differing or malformed
//! `Content-Length` values; a `Transfer-Encoding` that is not `chunked` alone (`chunked` not last or
//! twice: 400; another coding, which the proxy could not pass on: 501); `Transfer-Encoding` in an
//! HTTP/1.0 request; more than one `Host`; any head `httparse` rejects (obsolete line folding,
//! whitespace before a colon, bare CR, control bytes); a head over the size bound or with more
//! header lines than the bound (431); a chunked body that is not exactly RFC 9112 §7.1's syntax.
//! After a request that may switch protocols (`Upgrade`, `CONNECT`) the rest of the connection is
//! not HTTP the proxy reads, so nothing after it is scanned (and the service closes such a
//! connection unless it did switch).

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use hyper::StatusCode;

/// Header slots kept on the stack while a head is parsed (hyper's default bound); a larger bound
/// takes them from the heap.
pub(super) const STACK_HEADERS: usize = cutover_core::proxy_limits::DEFAULT_MAX_HEADERS;

/// The head hyper is handed in place of a refused one (the service recognises it by its position).
pub(super) const STAND_IN_HEAD: &[u8] = b"GET / HTTP/1.1\r\nhost: refused.invalid\r\n\r\n";

/// Why a request was refused, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// 400, 431 or 501.
    pub(super) status: StatusCode,
    /// One sentence for the client.
    pub(super) reason: String,
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Self {
        Refusal { status: StatusCode::BAD_REQUEST, reason: reason.into() }
    }
}

/// Chunk extensions and trailers together may not exceed this many bytes of one body.
const CHUNK_META_LIMIT: usize = 16 * 1024;

/// Where the scanner is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before or inside a request head (its bytes are held back until it is complete).
    Head,
    /// Inside a body of known length: this many bytes left.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// After a request that may switch protocols: nothing more is scanned.
    Opaque,
    /// A head was refused: hyper reads the stand-in head, then nothing more.
    Refused,
    /// A chunked body broke the syntax after part of it went to hyper: hyper reads the end of the
    /// connection.
    Broken,
}

/// RFC 9112 §7.1, strictly: `size [;ext] CRLF data CRLF … 0 [;ext] CRLF *(trailer CRLF) CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` read so far, `size` their value).
    Size { digits: u8, size: u64 },
    /// A chunk extension, up to its CR.
    Ext { size: u64 },
    /// The LF after a size line.
    SizeLf { size: u64 },
    /// Chunk data: this many bytes left.
    Data(u64),
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// A trailer line (`len` bytes so far), or the empty line that ends the body.
    Trailer { len: usize },
    /// The LF of a trailer line; `last` when the line was empty.
    TrailerLf { last: bool },
}

/// The two bounds of a request head.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadLimits {
    /// Bytes of a head, request line included.
    pub(super) max_bytes: usize,
    /// Header lines of a head.
    pub(super) max_headers: usize,
}

/// Follows one client connection's bytes; see the module's doc.
#[derive(Debug)]
pub(super) struct Scanner {
    limits: HeadLimits,
    state: State,
    /// After the current body: `Opaque` when the request may switch protocols, else `Head`.
    after_body: State,
    /// Bytes received and not yet released (an incomplete head, or what follows it).
    held: BytesMut,
    /// Bytes of chunk extensions and trailers seen in the current body.
    chunk_meta: usize,
    /// Heads released so far (the stand-in included).
    heads: u64,
    /// How many held bytes the last attempt at the head saw: a head can only complete at a LF, so
    /// it is not parsed again until one arrives (a client trickling bytes costs a parse a line).
    head_seen: usize,
}

impl Scanner {
    /// A scanner at the start of a connection.
    pub(super) fn new(limits: HeadLimits) -> Self {
        Scanner {
            limits,
            state: State::Head,
            after_body: State::Head,
            held: BytesMut::new(),
            chunk_meta: 0,
            heads: 0,
            head_seen: 0,
        }
    }

    /// How many bytes may go straight to hyper without being looked at: all of them after a
    /// protocol switch, the rest of a body of known length; `None` when the scanner must see them.
    pub(super) fn passthrough(&self) -> Option<u64> {
        match self.state {
            State::Opaque => Some(u64::MAX),
            State::Length(n) if self.held.is_empty() => Some(n),
            _ => None,
        }
    }

    /// `n` bytes went straight to hyper (at most what [`Scanner::passthrough`] allowed).
    pub(super) fn passed(&mut self, n: usize) {
        if let State::Length(left) = self.state {
            let left = left.saturating_sub(n as u64);
            self.state = if left == 0 { self.after_body } else { State::Length(left) };
        }
    }

    /// Whether a head was refused: hyper is to read nothing more (it answers the stand-in head and
    /// closes the connection).
    pub(super) fn refused(&self) -> bool {
        self.state == State::Refused
    }

    /// Whether a chunked body broke its syntax: hyper is to read the end of the connection.
    pub(super) fn broken(&self) -> bool {
        self.state == State::Broken
    }

    /// Takes bytes from the client; appends to `out` what hyper may read. On a refusal, `out` ends
    /// with the stand-in head and the refusal is returned with that head's index (0-based, in the
    /// order hyper reads heads).
    pub(super) fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Option<(u64, Refusal)> {
        if matches!(self.state, State::Refused | State::Broken) {
            return None;
        }
        self.held.extend_from_slice(input);
        let held = std::mem::take(&mut self.held);
        let (used, refusal) = self.steps(&held);
        out.extend_from_slice(&held[..used]);
        if refusal.is_some() {
            out.extend_from_slice(STAND_IN_HEAD);
        }
        if matches!(self.state, State::Refused | State::Broken) {
            return refusal;
        }
        self.held = held;
        self.held.advance(used);
        refusal
    }

    /// [`Scanner::feed`] for bytes already where hyper reads them: hyper may read the first `n`
    /// bytes of `input` as they lie, then what was appended to `out` (the stand-in head, or bytes
    /// held back earlier). The common case, a whole head (and body) in one read with nothing held
    /// back, copies nothing; the bytes after `n` are held back until their head is complete.
    pub(super) fn scan(&mut self, input: &[u8], out: &mut BytesMut) -> (usize, Option<(u64, Refusal)>) {
        if !self.held.is_empty() || matches!(self.state, State::Refused | State::Broken) {
            return (0, self.feed(input, out));
        }
        let (used, refusal) = self.steps(input);
        if refusal.is_some() {
            out.extend_from_slice(STAND_IN_HEAD);
        } else if !matches!(self.state, State::Broken) {
            self.held.extend_from_slice(&input[used..]);
        }
        (used, refusal)
    }

    /// Steps through `bytes` (the held ones, or a fresh read when nothing is held) from the current
    /// state: how many of them hyper may read, and the refusal if a head was refused (the state is
    /// then `Refused`; the caller adds the stand-in).
    fn steps(&mut self, bytes: &[u8]) -> (usize, Option<(u64, Refusal)>) {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            match self.state {
                State::Head => match self.head(rest) {
                    Ok(None) => break,
                    Ok(Some((len, body, upgrade))) => {
                        i += len;
                        self.heads += 1;
                        self.head_seen = 0;
                        self.after_body = if upgrade { State::Opaque } else { State::Head };
                        self.chunk_meta = 0;
                        self.state = body;
                        if self.state == State::Length(0) {
                            self.state = self.after_body;
                        }
                    }
                    Err(refusal) => {
                        self.state = State::Refused;
                        self.heads += 1;
                        return (i, Some((self.heads - 1, refusal)));
                    }
                },
                State::Length(left) => {
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    i += take;
                    self.passed(take);
                }
                State::Chunked(chunk) => match self.chunked(chunk, rest) {
                    Ok(used) => i += used,
                    Err(refusal) => {
                        // Part of the body may have gone to hyper already: the stand-in cannot follow
                        // it, so the connection just ends (hyper sees it close mid-body).
                        tracing::debug!(reason = %refusal.reason, "proxy: malformed chunked body");
                        self.state = State::Broken;
                        return (i, None);
                    }
                },
                State::Opaque => i = bytes.len(),
                State::Refused | State::Broken => unreachable!("steps stop at either"),
            }
        }
        (i, None)
    }

    /// The head at the start of `bytes`, once complete: its length, its body's framing and whether
    /// it may switch protocols. `Ok(None)`: incomplete.
    fn head(&mut self, bytes: &[u8]) -> Result<Option<(usize, State, bool)>, Refusal> {
        let fresh = &bytes[self.head_seen.min(bytes.len())..];
        if !fresh.contains(&b'\n') && bytes.len() <= self.limits.max_bytes {
            self.head_seen = bytes.len();
            return Ok(None);
        }
        self.head_seen = bytes.len();
        let too_large = || Refusal {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            reason: format!("the request head is over the proxy's bound of {} bytes", self.limits.max_bytes),
        };
        // The header slots, uninitialised: on the stack up to the default bound (no allocation per
        // head), on the heap beyond it.
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if self.limits.max_headers <= STACK_HEADERS {
            &mut stack[..self.limits.max_headers]
        } else {
            heap.resize_with(self.limits.max_headers, MaybeUninit::uninit);
            &mut heap
        };
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(bytes, slots) {
            Ok(httparse::Status::Partial) if bytes.len() > self.limits.max_bytes => {
                return Err(too_large());
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(len)) if len > self.limits.max_bytes => return Err(too_large()),
            Ok(httparse::Status::Complete(len)) => len,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal {
                    status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    reason: format!(
                        "the request has more header lines than the proxy's bound of {}",
                        self.limits.max_headers
                    ),
                });
            }
            Err(e) => return Err(Refusal::bad(format!("malformed request head: {e}"))),
        };
        let (body, upgrade) = framing(&req)?;
        Ok(Some((len, body, upgrade)))
    }

    /// Steps through `bytes` of a chunked body: how many belong to it (all of them unless it
    /// ends among them).
    fn chunked(&mut self, mut chunk: Chunk, bytes: &[u8]) -> Result<usize, Refusal> {
        let mut i = 0;
        let malformed = |what: &str| Refusal::bad(format!("malformed chunked body: {what}"));
        while i < bytes.len() {
            if let Chunk::Data(left) = chunk {
                let take = (bytes.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                i += take;
                let left = left - take as u64;
                chunk = if left == 0 { Chunk::DataCr } else { Chunk::Data(left) };
                continue;
            }
            let b = bytes[i];
            i += 1;
            chunk = match chunk {
                Chunk::Size { digits, size } => match (b as char).to_digit(16) {
                    Some(d) if digits < 16 => {
                        Chunk::Size { digits: digits + 1, size: size << 4 | u64::from(d) }
                    }
                    Some(_) => return Err(malformed("a chunk size over 16 hex digits")),
                    None if digits == 0 => return Err(malformed("a chunk without a size")),
                    None if b == b';' => Chunk::Ext { size },
                    None if b == b'\r' => Chunk::SizeLf { size },
                    None => {
                        return Err(malformed("a chunk size followed by something else than `;` or CRLF"));
                    }
                },
                Chunk::Ext { size } => {
                    self.chunk_meta += 1;
                    match b {
                        b'\r' => Chunk::SizeLf { size },
                        0..=8 | 10..=31 | 127 => {
                            return Err(malformed("a control byte in a chunk extension"));
                        }
                        _ => Chunk::Ext { size },
                    }
                }
                Chunk::SizeLf { size } if b == b'\n' => {
                    if size == 0 {
                        Chunk::Trailer { len: 0 }
                    } else {
                        Chunk::Data(size)
                    }
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size { digits: 0, size: 0 },
                Chunk::Trailer { len } => {
                    self.chunk_meta += 1;
                    match b {
                        b'\r' => Chunk::TrailerLf { last: len == 0 },
                        0..=8 | 10..=31 | 127 => {
                            return Err(malformed("a control byte in a trailer"));
                        }
                        _ => Chunk::Trailer { len: len + 1 },
                    }
                }
                Chunk::TrailerLf { last: true } if b == b'\n' => {
                    self.state = self.after_body;
                    return Ok(i);
                }
                Chunk::TrailerLf { last: false } if b == b'\n' => Chunk::Trailer { len: 0 },
                _ => return Err(malformed("a line not ended by CRLF")),
            };
            if self.chunk_meta > CHUNK_META_LIMIT {
                return Err(malformed("chunk extensions and trailers over 16 KiB"));
            }
        }
        self.state = State::Chunked(chunk);
        Ok(i)
    }
}

/// The body length of a head the scanner would pass as it is (plain framing: a length or none, and
/// no protocol switch); `None` when it would refuse the head, the body is chunked, or the request
/// may switch protocols. The lean path (`lean`) forwards only such requests itself.
pub(super) fn plain_length(req: &httparse::Request<'_, '_>) -> Option<u64> {
    match framing(req) {
        Ok((State::Length(n), false)) => Some(n),
        _ => None,
    }
}

/// Follows a chunked body (a machine's response, on the lean path) to its end, with the syntax the
/// scanner checks in requests.
#[derive(Debug)]
pub(super) struct ChunkedBody(Scanner);

impl ChunkedBody {
    /// At the start of a chunked body.
    pub(super) fn new() -> Self {
        let mut scanner = Scanner::new(HeadLimits { max_bytes: 0, max_headers: 0 });
        scanner.state = State::Chunked(Chunk::Size { digits: 0, size: 0 });
        scanner.after_body = State::Head;
        ChunkedBody(scanner)
    }

    /// Takes the body's next bytes: `Some(n)` when the body ends after the first `n` of them.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Refusal> {
        let State::Chunked(chunk) = self.0.state else { return Ok(Some(0)) };
        let n = self.0.chunked(chunk, bytes)?;
        Ok((self.0.state == State::Head).then_some(n))
    }
}

/// A parsed head's body framing and whether it may switch protocols, or why it is refused.
fn framing(req: &httparse::Request<'_, '_>) -> Result<(State, bool), Refusal> {
    let http10 = req.version == Some(0);
    let mut length: Option<u64> = None;
    let mut codings: Vec<String> = Vec::new();
    let mut has_te = false;
    let mut hosts = 0;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|b| *b == b',') {
                let v = v.trim_ascii();
                if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                    return Err(Refusal::bad(format!(
                        "Content-Length must be a decimal number of bytes, not {:?}",
                        String::from_utf8_lossy(h.value)
                    )));
                }
                let n: u64 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
                match length {
                    Some(prev) if prev != n => {
                        return Err(Refusal::bad("the request has differing Content-Length values"));
                    }
                    _ => length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            for c in h.value.split(|b| *b == b',') {
                let c = String::from_utf8_lossy(c.trim_ascii()).to_ascii_lowercase();
                if !c.is_empty() {
                    codings.push(c);
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if hosts > 1 {
        return Err(Refusal::bad("the request has more than one Host header"));
    }
    if !has_te {
        return Ok((State::Length(length.unwrap_or(0)), upgrade));
    }
    if length.is_some() {
        return Err(Refusal::bad("the request has both Content-Length and Transfer-Encoding"));
    }
    if http10 {
        return Err(Refusal::bad("an HTTP/1.0 request cannot have Transfer-Encoding"));
    }
    match codings.iter().filter(|c| *c == "chunked").count() {
        0 => return Err(Refusal::bad("Transfer-Encoding must end with chunked")),
        1 if codings.last().is_some_and(|c| c == "chunked") => {}
        1 => return Err(Refusal::bad("Transfer-Encoding must end with chunked")),
        _ => return Err(Refusal::bad("Transfer-Encoding applies chunked more than once")),
    }
    if codings.len() > 1 {
        return Err(Refusal {
            status: StatusCode::NOT_IMPLEMENTED,
            reason: format!("the proxy passes on no transfer coding but chunked, not {}", codings.join(", ")),
        });
    }
    Ok((State::Chunked(Chunk::Size { digits: 0, size: 0 }), upgrade))
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
