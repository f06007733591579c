//! The scanner on hand-written bytes: what it releases, where it says a request ends, what it refuses.

use super::*;

fn limits() -> HeadLimits {
    HeadLimits { max_bytes: 1024, max_headers: 8 }
}

/// Feeds `input` in pieces of `step` bytes; what was released and the refusal, if any. Both ways in
/// are taken and must agree: [`Scanner::feed`] (everything copied) and [`Scanner::scan`] (as the guard
/// does it: bytes released where they lie, then what the scanner hands on).
fn scan(input: &[u8], step: usize) -> (Vec<u8>, Option<(u64, Refusal)>) {
    let mut fed = Scanner::new(limits());
    let mut fed_out = BytesMut::new();
    let mut fed_refusal = None;
    let mut scanned = Scanner::new(limits());
    let mut out = Vec::new();
    let mut refusal = None;
    for piece in input.chunks(step.max(1)) {
        if let Some(r) = fed.feed(piece, &mut fed_out) {
            fed_refusal = Some(r);
        }
        let mut handed = BytesMut::new();
        let (keep, r) = scanned.scan(piece, &mut handed);
        out.extend_from_slice(&piece[..keep]);
        out.extend_from_slice(&handed);
        if let Some(r) = r {
            refusal = Some(r);
        }
    }
    assert_eq!(out, fed_out.to_vec(), "scan and feed release the same bytes");
    assert_eq!(refusal, fed_refusal, "scan and feed refuse alike");
    (out, refusal)
}

fn refused(input: &[u8]) -> Refusal {
    let (_, r) = scan(input, input.len());
    r.unwrap_or_else(|| panic!("not refused: {:?}", String::from_utf8_lossy(input))).1
}

#[test]
fn plain_requests_pass_unchanged_however_they_are_cut() {
    let stream: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
        POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
        POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
        GET /z HTTP/1.1\r\nHost: a\r\n\r\n";
    for step in [1, 2, 3, 7, 64, stream.len()] {
        let (out, r) = scan(stream, step);
        assert_eq!(r, None, "step {step}");
        assert_eq!(out, stream, "step {step}");
    }
}

#[test]
fn an_incomplete_head_is_held_back() {
    let (out, r) = scan(b"GET / HTTP/1.1\r\nHost: a\r\n", 5);
    assert!(out.is_empty() && r.is_none());
    // A body's bytes pass as they come; the next head waits for its end.
    let (out, _) = scan(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HT", 4);
    assert!(out.ends_with(b"\r\n\r\nab"), "{:?}", String::from_utf8_lossy(&out));
}

#[test]
fn smuggling_shapes_are_refused_with_400() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n",
    ];
    for case in cases {
        let r = refused(case);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}: {}", String::from_utf8_lossy(case), r.reason);
    }
    let r = refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n");
    assert!(r.reason.contains("both Content-Length and Transfer-Encoding"), "{}", r.reason);
    let r = refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.reason);
}

#[test]
fn a_refused_head_is_replaced_by_the_stand_in_and_nothing_after_it_passes() {
    let first: &[u8] = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut stream = first.to_vec();
    stream.extend_from_slice(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.extend_from_slice(b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
    for step in [1, 5, stream.len()] {
        let (out, r) = scan(&stream, step);
        let (index, _) = r.expect("refused");
        assert_eq!(index, 1, "the second head");
        assert_eq!(out, [first, STAND_IN_HEAD].concat(), "step {step}");
    }
}

#[test]
fn heads_over_the_bounds_get_431() {
    let many: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{}", r.reason);
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(2000));
    let r = refused(big.as_bytes());
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{}", r.reason);
    // One that never ends is refused once it passes the bound, not held forever.
    let (out, r) = scan(format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(1100)).as_bytes(), 100);
    assert_eq!(r.map(|r| r.1.status), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    assert_eq!(out, STAND_IN_HEAD);
}

#[test]
fn malformed_chunks_break_the_connection() {
    for body in [&b"5\r\nhelloX\r\n"[..], b"g\r\n", b"5\nhello\r\n", b"5;a\nb\r\n", b"11111111111111111\r\n"]
    {
        let mut s = Scanner::new(limits());
        let mut out = BytesMut::new();
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(s.feed(head, &mut out), None);
        assert_eq!(s.feed(body, &mut out), None);
        assert!(s.broken(), "{:?}", String::from_utf8_lossy(body));
        let mut more = BytesMut::new();
        s.feed(b"GET / HTTP/1.1\r\n\r\n", &mut more);
        assert!(more.is_empty(), "nothing after a broken body passes");
    }
}

#[test]
fn after_an_upgrade_request_bytes_pass_unscanned() {
    let mut s = Scanner::new(limits());
    let mut out = BytesMut::new();
    let head = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(s.feed(head, &mut out), None);
    assert_eq!(s.passthrough(), Some(u64::MAX));
    assert_eq!(s.feed(b"\x81\x05hello", &mut out), None);
    assert!(out.ends_with(b"\x81\x05hello"));
}

#[test]
fn a_known_length_body_may_bypass_the_scanner() {
    let mut s = Scanner::new(limits());
    let mut out = BytesMut::new();
    assert_eq!(s.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", &mut out), None);
    assert_eq!(s.passthrough(), Some(10));
    s.passed(4);
    assert_eq!(s.passthrough(), Some(6));
    s.passed(6);
    assert_eq!(s.passthrough(), None, "the next head is scanned");
}

#[test]
fn a_whole_head_in_one_read_is_released_where_it_lies() {
    let mut s = Scanner::new(limits());
    let mut handed = BytesMut::new();
    let two: &[u8] = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHo";
    let (keep, r) = s.scan(two, &mut handed);
    assert_eq!((keep, r), (28, None), "the first head passes in place, the second's start is held");
    assert!(handed.is_empty());
    let (keep, r) = s.scan(b"st: a\r\n\r\n", &mut handed);
    assert_eq!((keep, r), (0, None), "once something is held, the rest follows it through the copy");
    assert_eq!(&handed[..], b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
}
