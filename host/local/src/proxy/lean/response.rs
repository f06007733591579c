//! A machine's answer on the lean path: its head read and rewritten for the client (hop-by-hop
//! headers dropped as `headers` drops them), then its body forwarded by its own framing — a length,
//! chunks (passed on as they are, trailers included, after checking their syntax), or up to the
//! close — without being decoded.

use std::io;
use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use hyper::StatusCode;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::super::framing::{ChunkedBody, STACK_HEADERS};
use super::request::Head;
use super::{Client, Connection, is_hop_by_hop};

/// A response head larger than this is not forwarded (the attempt fails).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How much is asked of the kernel per read: reads shorter than this tell tokio the socket is
/// drained, so no read that would block is made (see `BackendConn::is_closed`).
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Where a response body ends.
#[derive(Debug)]
pub(super) enum Body {
    /// It has none (`HEAD`, 204, 304).
    Empty,
    /// After this many bytes.
    Length(u64),
    /// After its last chunk and trailers; taken out of its chunks for an HTTP/1.0 client.
    Chunked(ChunkedBody, Option<Dechunk>),
    /// When the machine closes the connection (the client's connection closes after it too).
    Close,
}

/// A response head as read and rewritten.
#[derive(Debug)]
pub(super) struct RespHead {
    /// Bytes of the head in the backend buffer.
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) body: Body,
    /// The machine keeps the connection open after this response.
    pub(super) keep_alive: bool,
}

/// Why no response head was read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The machine closed the connection (or reset it) before sending a byte of it.
    Closed,
    /// Anything else: a broken or oversized head, a close in the middle of it.
    Bad,
}

/// Reads the response head into `buf` (cleared first) and writes the client's copy into `out` (up
/// to, not including, the blank line, so the caller can add headers). Informational answers
/// (1xx but 101) are skipped, as hyper's client does. `request`: what it answers.
pub(super) async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    request: &Head,
) -> Result<RespHead, HeadError> {
    buf.clear();
    let mut seen = false;
    loop {
        if !buf.is_empty() {
            match parse(buf, out, request)? {
                Some(Parsed::Head(head)) => return Ok(head),
                Some(Parsed::Informational(len)) => {
                    buf.advance(len);
                    continue;
                }
                None if buf.len() > MAX_RESPONSE_HEAD => return Err(HeadError::Bad),
                None => {}
            }
        }
        buf.reserve(READ_CHUNK);
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) if !seen => return Err(HeadError::Closed),
            Ok(0) | Err(_) => return Err(HeadError::Bad),
            Ok(_) => seen = true,
        }
    }
}

enum Parsed {
    Head(RespHead),
    /// A 1xx head of this many bytes, to skip.
    Informational(usize),
}

/// Parses a response head at the start of `buf`; `None`: not complete yet.
fn parse(buf: &[u8], out: &mut Vec<u8>, request: &Head) -> Result<Option<Parsed>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HeadError::Bad),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else { return Err(HeadError::Bad) };
    match status {
        101 => return Err(HeadError::Bad), // nothing asked to switch
        100..=199 => return Ok(Some(Parsed::Informational(len))),
        200..=999 => {}
        _ => return Err(HeadError::Bad),
    }

    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut connection = Connection::default();
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            // Names past the eighth are passed on.
            connection.add(h.value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides (RFC 9112 §6.3): chunked, or the body runs to the close.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            for v in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(HeadError::Bad)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::Bad);
                }
                length = Some(n);
            }
        }
    }
    let mut keep_alive = !connection.closes(version == 0);
    let body = if request.head_method || status == 204 || status == 304 {
        Body::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Body::Chunked(ChunkedBody::new(), request.http10.then(Dechunk::default)),
            (Some(false), _) | (None, None) => Body::Close,
            (None, Some(n)) => Body::Length(n),
        }
    };
    if matches!(body, Body::Close) {
        keep_alive = false;
    }

    out.clear();
    out.extend_from_slice(request.version().as_bytes());
    out.push(b' ');
    out.extend_from_slice(itoa3(status).as_slice());
    out.push(b' ');
    match resp.reason.filter(|r| !r.is_empty()) {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => {
            let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
            out.extend_from_slice(reason.unwrap_or("").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        // The body goes on with its own framing: its Transfer-Encoding is passed on (a hop-by-hop
        // header the client's hop needs the same), and a length next to it is not (RFC 9112 §6.3).
        // An HTTP/1.0 client gets no chunks (they are taken off) and no Transfer-Encoding.
        let te = name.eq_ignore_ascii_case(b"transfer-encoding") && !request.http10;
        if (is_hop_by_hop(name) && !te) || (chunked.is_some() && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        if !te && connection.names(name) && !name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    Ok(Some(Parsed::Head(RespHead { len, status, body, keep_alive })))
}

/// Takes a chunked body's framing off (chunk sizes, extensions, trailers) for an HTTP/1.0 client,
/// whose answer then runs to the close. Fed the bytes [`ChunkedBody`] has checked, so it only has to
/// find the data in them.
#[derive(Debug, Default)]
pub(super) struct Dechunk {
    state: Dechunked,
}

#[derive(Debug, Default, Clone, Copy)]
enum Dechunked {
    /// At the start of a chunk-size line.
    #[default]
    Size,
    /// In its digits: the size so far.
    SizeDigits(u64),
    /// Past them (an extension, the line's end): the size.
    SizeRest(u64),
    /// In a chunk's data: bytes left.
    Data(u64),
    /// After a chunk's data, up to the end of its line.
    DataEnd,
    /// In the trailers, at the start of a line (an empty one ends the body)...
    TrailerStart,
    /// ...or within one.
    Trailer,
    /// Past the body's end.
    Done,
}

impl Dechunk {
    /// Appends the data among `bytes` to `data`.
    pub(super) fn feed(&mut self, mut bytes: &[u8], data: &mut Vec<u8>) {
        use Dechunked::*;
        while let Some((&b, rest)) = bytes.split_first() {
            self.state = match self.state {
                Data(left) => {
                    let n = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    data.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.state = if left == n as u64 { DataEnd } else { Data(left - n as u64) };
                    continue;
                }
                Size | SizeDigits(_) | SizeRest(_) if b == b'\n' => match self.state {
                    SizeDigits(n) | SizeRest(n) if n > 0 => Data(n),
                    _ => TrailerStart,
                },
                Size => SizeDigits(hex(b)),
                SizeDigits(n) if b.is_ascii_hexdigit() => {
                    SizeDigits(n.saturating_mul(16).saturating_add(hex(b)))
                }
                SizeDigits(n) | SizeRest(n) => SizeRest(n),
                DataEnd if b == b'\n' => Size,
                DataEnd => DataEnd,
                TrailerStart if b == b'\n' => Done,
                TrailerStart if b == b'\r' => TrailerStart,
                TrailerStart | Trailer if b == b'\n' => TrailerStart,
                TrailerStart | Trailer => Trailer,
                Done => Done,
            };
            bytes = rest;
        }
    }
}

/// A hex digit's value (`ChunkedBody` has checked it is one).
fn hex(b: u8) -> u64 {
    char::from(b).to_digit(16).map_or(0, u64::from)
}

/// A status code's three digits.
fn itoa3(status: u16) -> [u8; 3] {
    [b'0' + (status / 100 % 10) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8]
}

/// Sends the client `out` (the finished head) followed by the body, whose first bytes are in `buf`
/// (after the head, already taken off), reading the rest from `backend`. `Ok(true)`: the body ended
/// where its framing said and the machine sent nothing after it, so the connection can be reused.
/// `Err`: either side broke off; the client's connection must close (its answer is cut short).
pub(super) async fn forward_body(
    client: &mut Client,
    backend: &mut TcpStream,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    body: Body,
) -> io::Result<bool> {
    let broken = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    match body {
        Body::Empty => {
            client.write(out, true).await?;
            Ok(buf.is_empty())
        }
        Body::Length(n) => {
            let mut left = n;
            let mut clean = true;
            let mut first = true;
            loop {
                let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                clean &= take == buf.len();
                left -= take as u64;
                send(client, out, &mut first, &buf[..take], left == 0).await?;
                if left == 0 {
                    return Ok(clean);
                }
                read_more(backend, buf).await?;
            }
        }
        Body::Chunked(mut chunks, mut dechunk) => {
            let mut first = true;
            let mut data = Vec::new();
            loop {
                let end = chunks.feed(buf).map_err(|r| broken(&r.reason))?;
                let take = end.unwrap_or(buf.len());
                let bytes = match &mut dechunk {
                    Some(dechunk) => {
                        data.clear();
                        dechunk.feed(&buf[..take], &mut data);
                        &data[..]
                    }
                    None => &buf[..take],
                };
                send(client, out, &mut first, bytes, end.is_some()).await?;
                if end.is_some() {
                    return Ok(take == buf.len());
                }
                read_more(backend, buf).await?;
            }
        }
        Body::Close => {
            out.extend_from_slice(buf);
            client.write_all(out).await?;
            loop {
                buf.clear();
                buf.reserve(READ_CHUNK);
                if backend.read_buf(buf).await? == 0 {
                    return Ok(false);
                }
                client.write_all(buf).await?;
            }
        }
    }
}

/// Writes `bytes` of the body to the client: the first time after the head in `out`, in one write, so
/// a small answer is one system call.
async fn send(
    client: &mut Client,
    out: &mut Vec<u8>,
    first: &mut bool,
    bytes: &[u8],
    last: bool,
) -> io::Result<()> {
    if std::mem::take(first) {
        out.extend_from_slice(bytes);
        client.write(out, last).await
    } else {
        client.write(bytes, last).await
    }
}

/// Replaces `buf`'s bytes with the next read from the machine; its close is an error (the body was
/// not complete).
async fn read_more(backend: &mut TcpStream, buf: &mut BytesMut) -> io::Result<()> {
    buf.clear();
    buf.reserve(READ_CHUNK);
    if backend.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_taken_off_however_the_body_arrives_split() {
        let body: &[u8] =
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n10\r\n0123456789abcdef\r\n0\r\nx-sum: 11\r\n\r\n";
        for step in 1..=body.len() {
            let mut dechunk = Dechunk::default();
            let mut data = Vec::new();
            body.chunks(step).for_each(|piece| dechunk.feed(piece, &mut data));
            assert_eq!(data, b"hello world0123456789abcdef", "in pieces of {step}");
        }
        let mut dechunk = Dechunk::default();
        let mut data = Vec::new();
        dechunk.feed(b"0\r\n\r\n", &mut data);
        assert!(data.is_empty(), "an empty body");
    }
}
