//! Request-smuggling regression cases: the payload classes the HTTP Garden project published
//! as bugs in other servers (its trophy list), plus the framing rules of RFC 9112 §6.
//!
//! Every case is a byte stream that a front end and an origin could split into requests in
//! two different ways; most carry a second request (`GET /smuggled`) where one reading sees a
//! body. The rule for each: the reply is exactly one 400 and then the close, or exactly one
//! well-framed response and then the close — never a second response. Each case's table
//! entry says which of the two it must be, so a change of verdict is noticed too.
//!
//! The client sends the stream and shuts its write side, so a server that keeps the
//! connection alive closes it at the client's EOF after answering everything it parsed; the
//! helper then reads to EOF and counts responses strictly.

use crate::common::*;
use std::net::SocketAddr;

/// The request a second reading of the stream would find.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// What a case must get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// One `400 Bad Request` with `Connection: close`, then the close.
    Refused,
    /// One response other than 400, then the close: the stream was read as one request.
    Once,
}

use Expect::{Once, Refused};

/// `(name, bytes, expected)`. `{S}` in a payload stands for [`SMUGGLED`], `{N}` for its length.
const CASES: &[(&str, &str, Expect)] = &[
    // --- Content-Length values (trophies 10, 16, 23, 26, 29, 32, 33, 38, 42).
    (
        "empty content-length",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n{S}",
        Refused,
    ),
    (
        "content-length with plus",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +{N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "content-length with minus",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -48\r\n\r\n{S}",
        Refused,
    ),
    (
        "content-length with underscore",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\n0123456789{S}",
        Refused,
    ),
    (
        "content-length hex",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n{S}",
        Refused,
    ),
    (
        "content-length trailing junk",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1Z\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length leading junk",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: Z1\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length two numbers",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length list differs",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,2\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length lines differ (first 1)",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 0\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length lines differ (first 0)",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length empty then value",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\nContent-Length: 1\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length 01 vs 1",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 01\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length overflow",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n{S}",
        Refused,
    ),
    (
        "content-length vertical tab",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \x0b1\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length nbsp",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\u{a0}\r\n\r\nZ{S}",
        Refused,
    ),
    (
        "content-length 1,1 (identical list)",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\nZ{S}",
        Once,
    ),
    (
        "content-length repeated",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nZ{S}",
        Once,
    ),
    (
        "content-length leading zero",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 010\r\n\r\n0123456789{S}",
        Once,
    ),
    (
        "content-length large",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 4294967296\r\n\r\n{S}",
        Once,
    ),
    (
        "get with a body hiding a request",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {N}\r\n\r\n{S}",
        Once,
    ),
    (
        "post with a body hiding a request",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {N}\r\n\r\n{S}",
        Once,
    ),
    // --- Transfer-Encoding (trophies 11, 12, 21; RFC 9112 §6.1, §6.3).
    (
        "te and cl",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "cl and te",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te ,chunked with cl",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunked twice (two lines)",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunked twice (one line)",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunked then identity",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunked line then identity line",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te identity",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{S}",
        Refused,
    ),
    (
        "te xchunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunkedx",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te vertical tab chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te form feed chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0cchunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te nbsp chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \u{a0}chunked\u{a0}\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te quoted chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te chunked with parameter",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te empty",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n{S}",
        Refused,
    ),
    (
        "te on http/1.0",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te obs-fold",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te name split across lines",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-\r\nEncoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{S}",
        Refused,
    ),
    (
        "te underscore name",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n",
        Once,
    ),
    (
        "te upper case with tab",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tCHUNKED\r\n\r\n0\r\n\r\n{S}",
        Once,
    ),
    (
        "te gzip, chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{S}",
        Once,
    ),
    // --- Chunked bodies we never read: answered once, then closed (trophies 1, 17, 22, 25, 31, 36, 39).
    (
        "empty chunk size",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk size with underscore",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk size 0x",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nZZZZZ\r\n0\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk size overflow",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nZ\r\n0\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk extension with bare cr",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk extension with nul",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\x00\r\nZ\r\n0\r\n\r\n{S}",
        Once,
    ),
    (
        "chunk terminator junk",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX:{S}",
        Once,
    ),
    // --- Field lines (trophies 2, 3, 4, 13, 14, 18, 19, 20, 27, 28, 30, 34, 35, 37).
    (
        "space before colon",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "tab before colon",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length\t: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "whitespace before first field",
        "GET / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: x\r\n\r\nX",
        Refused,
    ),
    (
        "space before first field",
        "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        Refused,
    ),
    (
        "obs-fold",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n Content-Length: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "bare cr ends a field line",
        "GET / HTTP/1.1\r\nHost: x\r\nVisible: :/\rContent-Length: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "bare cr in a value",
        "GET / HTTP/1.1\r\nHost: x\r\nHeader: va\rlue\r\n\r\n",
        Refused,
    ),
    (
        "nul in a value",
        "GET / HTTP/1.1\r\nHost: x\r\nTest: test\x00Content-Length: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "nul and cr in a value",
        "GET / HTTP/1.1\r\nHost: x\r\nHeader: v\x00\ralue\r\n\r\n",
        Refused,
    ),
    (
        "bare lf ends a field line",
        "GET / HTTP/1.1\r\nHost: x\r\nUseless:\n\n{S}",
        Refused,
    ),
    (
        "bare lf inside the head",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\nContent-Length: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "bare lf ends the head",
        "GET / HTTP/1.1\r\nHost: x\r\n\n{S}",
        Refused,
    ),
    (
        "cr then junk ends the head",
        "GET / HTTP/1.1\r\nHost: x\r\n\rZGET /evil: HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "empty field name",
        "GET / HTTP/1.1\r\n: ignored\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "empty field line",
        "GET / HTTP/1.1\r\nHost: x\r\n:\r\nI: am chopped off\r\n\r\n",
        Refused,
    ),
    (
        "field without colon",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length 10\r\n\r\n0123456789{S}",
        Refused,
    ),
    (
        "nel in a field name",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length\u{85}: {N}\r\n\r\n{S}",
        Refused,
    ),
    (
        "non-ascii field name",
        "GET / HTTP/1.1\r\nHost: x\r\n\u{ef}oo: bar\r\n\r\n",
        Refused,
    ),
    (
        "control in field name",
        "GET / HTTP/1.1\r\nHost: x\r\nA\x01B: c\r\n\r\n",
        Refused,
    ),
    (
        "two hosts",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        Refused,
    ),
    ("no host", "GET / HTTP/1.1\r\n\r\n", Refused),
    (
        "nbsp around a value",
        "GET / HTTP/1.1\r\nHost: x\r\nUser: \u{85}admin\u{a0}\r\n\r\n",
        Once,
    ),
    // --- Request lines (trophies 5, 6, 7, 9, 15, 24, 40; RFC 9112 §3).
    (
        "space in target",
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "two spaces after method",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "two spaces before version",
        "GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "space after version",
        "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "leading space",
        " GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "tab separator",
        "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "bare cr separator",
        "GET /\rHTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    ("bare lf separator", "GET /\nHTTP/1.1\r\n\r\n", Refused),
    (
        "bare lf ends the request line",
        "GET / HTTP/1.1\nHost: x\r\n\r\n",
        Refused,
    ),
    ("empty target", "GET  HTTP/1.1\r\nHost: x\r\n\r\n", Refused),
    ("http/0.9 line", "GET /\r\n\r\n", Refused),
    (
        "bad method chars",
        "G=\":<>(e),[T];?\" /get HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    ("nul method", "\x00 / HTTP/1.1\r\nHost: x\r\n\r\n", Refused),
    (
        "version with junk",
        "GET / HTTP/\r\r1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "version 1.32",
        "GET / HTTP/1.32\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "version dots",
        "GET / HTTP/............0596.7407.\r\n\r\n",
        Refused,
    ),
    (
        "version overflow",
        "GET / HTTP/4294967295.255\r\n\r\n",
        Refused,
    ),
    (
        "lower-case version",
        "GET / http/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "non-ascii target",
        "GET /\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "target not origin form",
        "GET ! HTTP/1.1\r\nHost: x\r\n\r\n",
        Refused,
    ),
    (
        "empty line before request",
        "\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Once,
    ),
];

/// The stream of a case: placeholders replaced, the `\u{..}` escapes used for bytes above
/// 0x7F turned back into single bytes (the table is `&str` for readability).
fn payload(template: &str) -> Vec<u8> {
    let text = template
        .replace("{N}", &SMUGGLED.len().to_string())
        .replace("{S}", SMUGGLED);
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("table characters are single bytes"))
        .collect()
}

/// Sends `bytes` on a fresh connection, shuts the write side, and reads until the server
/// closes (or 5 s pass). Returns the responses in order; fails the test on a timeout, on
/// bytes that are not a well-framed response, or on bytes left after the last response.
fn responses_until_close(addr: SocketAddr, bytes: &[u8], name: &str) -> Vec<Response> {
    let mut conn = Conn::connect(addr);
    conn.send(bytes);
    conn.shutdown_write();
    assert!(
        conn.wait_closed(IO_TIMEOUT),
        "{name}: the server did not close within {IO_TIMEOUT:?}"
    );
    let mut rest = conn.unparsed();
    let mut out = Vec::new();
    // Bounded: each round consumes at least one head.
    while !rest.is_empty() && out.len() < 16 {
        match Response::parse(rest, false, true) {
            Ok(Some((response, used))) => {
                check_framing(&response, name);
                rest = &rest[used..];
                out.push(response);
            }
            Ok(None) => panic!(
                "{name}: a truncated response: {:?}",
                String::from_utf8_lossy(rest)
            ),
            Err(e) => panic!("{name}: not a response: {e}"),
        }
    }
    assert!(rest.is_empty(), "{name}: more than 16 responses");
    out
}

/// One `Content-Length` (none on 204/304), matching the body the parser took.
fn check_framing(r: &Response, name: &str) {
    let lengths = r.count("content-length");
    if r.status == 204 || r.status == 304 {
        assert_eq!(lengths, 0, "{name}: {:#?}", r.headers);
    } else {
        assert_eq!(lengths, 1, "{name}: {:#?}", r.headers);
        assert_eq!(r.must("content-length"), r.body.len().to_string(), "{name}");
    }
    assert_eq!(r.count("transfer-encoding"), 0, "{name}");
}

each_mode! {
    fn published_smuggling_payloads_are_refused_or_answered_once(ctx) {
        let srv = ctx.start();
        for &(name, template, expect) in CASES {
            let responses = responses_until_close(srv.addr, &payload(template), name);
            let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
            match expect {
                Refused => {
                    assert_eq!(statuses, [400], "{name}: expected one 400 and the close");
                    assert!(responses[0].closes(), "{name}: 400 without Connection: close");
                }
                Once => {
                    assert_eq!(statuses.len(), 1, "{name}: expected one response, got {statuses:?}");
                    assert_ne!(statuses[0], 400, "{name}: refused, expected an answer");
                }
            }
        }
        // The server is still serving.
        assert_eq!(srv.get("/style.css").body_str(), STYLE_CSS);
    }

    /// The helper itself: an honest pipeline of two requests gives two responses, so a
    /// smuggled request would be counted.
    fn two_pipelined_requests_are_counted_as_two(ctx) {
        let srv = ctx.start();
        let stream = format!("GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n{SMUGGLED}");
        let responses = responses_until_close(srv.addr, stream.as_bytes(), "pipeline");
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 404]);
    }
}
