use super::*;

const LIMIT: usize = 8 * 1024;

fn complete(raw: &[u8]) -> (Request<'_>, usize) {
    match parse(raw, LIMIT) {
        Ok(Parsed::Complete { request, len }) => (request, len),
        other => panic!("expected a complete request, got {other:?}"),
    }
}

#[test]
fn accepted_heads() {
    let (r, len) = complete(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
    assert_eq!(len, 32);
    assert_eq!(r.method, Method::Get);
    assert_eq!(
        r.target,
        Target::Path {
            path: b"/a",
            query: Some(b"b=c")
        }
    );
    assert_eq!(r.version, Version::Http11);
    assert!(r.wants_keep_alive());

    let (r, _) = complete(b"HEAD / HTTP/1.0\r\n\r\n");
    assert_eq!((r.method, r.version), (Method::Head, Version::Http10));
    assert!(!r.wants_keep_alive());

    let (r, _) = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(r.wants_keep_alive());

    let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(!r.wants_keep_alive());

    let (r, _) = complete(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.method, r.target), (Method::Options, Target::Asterisk));

    let (r, _) = complete(b"get / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.method, Method::Other);

    // RFC 9110 §2.5: a higher minor version is processed as the highest we implement.
    let (r, _) = complete(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n");
    assert_eq!(r.version, Version::Http11);

    // RFC 9112 §2.2: an empty line before the request line is ignored.
    let (r, len) = complete(b"\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.target_raw, len), ("/x", 30));
}

#[test]
fn typed_headers_are_collected() {
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nif-none-match: \"b\"\r\n\
        IF-MATCH: *\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
        Range: bytes=0-1\r\nIf-Range: \"a\"\r\nUser-Agent: t/1\r\nReferer: r\r\n\r\n";
    let (r, _) = complete(raw);
    let h = &r.headers;
    assert_eq!(h.host, Some(&b"h"[..]));
    assert_eq!(h.if_none_match, vec![&b"\"a\""[..], &b"\"b\""[..]]);
    assert_eq!(h.if_match, vec![&b"*"[..]]);
    assert_eq!(
        h.if_modified_since,
        Some(&b"Sun, 06 Nov 1994 08:49:37 GMT"[..])
    );
    assert_eq!(h.range, Some(&b"bytes=0-1"[..]));
    assert_eq!(h.if_range, Some(&b"\"a\""[..]));
    assert_eq!(h.user_agent, Some(&b"t/1"[..]));
    assert_eq!(h.referer, Some(&b"r"[..]));
}

#[test]
fn forwarding_headers_are_collected_in_order() {
    let (r, _) = complete(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1, 10.0.0.1\r\n\
          x-real-ip: 192.0.2.9\r\nx-forwarded-for:  10.0.0.2 \r\n\r\n",
    );
    let h = &r.headers;
    assert_eq!(
        h.x_forwarded_for,
        vec![&b"192.0.2.1, 10.0.0.1"[..], &b"10.0.0.2"[..]]
    );
    assert_eq!(h.x_real_ip, Some(&b"192.0.2.9"[..]));
}

#[test]
fn valid_hosts_are_accepted() {
    for host in [
        "h",
        "example.com:8080",
        "127.0.0.1",
        "[::1]:80",
        "xn--bcher-kva.example",
        "",
    ] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert!(
            matches!(parse(raw.as_bytes(), LIMIT), Ok(Parsed::Complete { .. })),
            "{host:?}"
        );
    }
}

#[test]
fn duplicate_range_headers_are_ignored() {
    let (r, _) =
        complete(b"GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n");
    assert_eq!(r.headers.range, None);
}

#[test]
fn absolute_form_is_reduced_to_its_path() {
    type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
    let cases: &[Case<'_>] = &[
        (b"http://h/a/b", b"/a/b", None),
        (b"HTTP://h:8080/x?y", b"/x", Some(b"y")),
        (b"https://h", b"/", None),
        (b"http://h?q", b"/", None),
        (b"http://127.0.0.1/../secret", b"/../secret", None),
    ];
    for &(raw, path, query) in cases {
        assert_eq!(
            parse_target(raw),
            Ok(Target::Path { path, query }),
            "{raw:?}"
        );
    }
    for raw in [&b"http:///x"[..], b"ftp://h/x", b"x", b"h/x"] {
        assert_eq!(parse_target(raw), Err(RequestError::BadTarget), "{raw:?}");
    }
}

#[test]
fn body_framing() {
    let cases: &[(&[u8], Result<BodyFraming, RequestError>)] = &[
        (b"Content-Length: 5\r\n", Ok(BodyFraming::Length(5))),
        (b"Content-Length: 0\r\n", Ok(BodyFraming::Length(0))),
        (
            b"Content-Length: 5\r\nContent-Length: 5\r\n",
            Ok(BodyFraming::Length(5)),
        ),
        (b"Content-Length: 5, 5\r\n", Ok(BodyFraming::Length(5))),
        (b"Transfer-Encoding: chunked\r\n", Ok(BodyFraming::Chunked)),
        (b"Transfer-Encoding: CHUNKED \r\n", Ok(BodyFraming::Chunked)),
        (
            b"Transfer-Encoding: gzip, chunked\r\n",
            Ok(BodyFraming::Chunked),
        ),
        (
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: ,chunked\r\n",
            Ok(BodyFraming::Chunked),
        ),
        (
            b"Content-Length: 05\r\nContent-Length: 5\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (
            b"Content-Length: 5\r\nContent-Length: 6\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (
            b"Content-Length: 5, 6\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (
            b"Content-Length: -1\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (
            b"Content-Length: +5\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (b"Content-Length: \r\n", Err(RequestError::AmbiguousFraming)),
        (
            b"Content-Length: 99999999999999999999999\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
        (
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            Err(RequestError::AmbiguousFraming),
        ),
    ];
    for &(headers, ref expected) in cases {
        let raw = [&b"POST / HTTP/1.1\r\nHost: h\r\n"[..], headers, b"\r\n"].concat();
        let got = parse(&raw, LIMIT).map(|p| match p {
            Parsed::Complete { request, .. } => request.body,
            Parsed::Partial => panic!("partial"),
        });
        assert_eq!(&got, expected, "{}", String::from_utf8_lossy(headers));
    }
    for te in [
        &b"chunked, identity"[..],
        b"identity",
        b"xchunked",
        b"\"chunked\"",
        b"chunked, chunked",
        b"chunked;ext=1",
        b"",
        b",",
        b"chunked, ",
    ] {
        let ok = te == b"chunked, ";
        let raw = [
            &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "[..],
            te,
            b"\r\n\r\n",
        ]
        .concat();
        let got = parse(&raw, LIMIT).map(|p| match p {
            Parsed::Complete { request, .. } => request.body,
            Parsed::Partial => panic!("partial"),
        });
        let expected = if ok {
            Ok(BodyFraming::Chunked)
        } else {
            Err(RequestError::AmbiguousFraming)
        };
        assert_eq!(got, expected, "{}", String::from_utf8_lossy(te));
    }
    let twice = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
                  Transfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(twice, LIMIT), Err(RequestError::AmbiguousFraming));
    let te_on_10 = b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(te_on_10, LIMIT), Err(RequestError::AmbiguousFraming));
}

#[test]
fn refused_heads() {
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(LIMIT)
    );
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(LIMIT));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
    let cases: &[(&[u8], RequestError)] = &[
        (b"GARBAGE\r\n\r\n", RequestError::Malformed),
        (
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            RequestError::Malformed,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
            RequestError::Malformed,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", RequestError::BadHost),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            RequestError::BadHost,
        ),
        (
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            RequestError::VersionNotSupported,
        ),
        (
            b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
            RequestError::Malformed,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
            RequestError::Malformed,
        ),
        (
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            RequestError::Malformed,
        ),
        (b"GET / HTTP/1.1\r\nHost: h\n\r\n", RequestError::Malformed),
        (b"GET / HTTP/1.1\r\nHost: h\r\n\n", RequestError::Malformed),
        (b"GET / HTTP/1.1\nHost: h\r\n\r\n", RequestError::Malformed),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
            RequestError::Malformed,
        ),
        (
            b"GET / HTTQ/1.1\r\nHost: h\r\n\r\n",
            RequestError::Malformed,
        ),
        (
            b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n",
            RequestError::BadTarget,
        ),
        (big_header.as_bytes(), RequestError::HeadTooLarge),
        (long_line.as_bytes(), RequestError::UriTooLong),
        (many.as_bytes(), RequestError::HeadTooLarge),
    ];
    for &(raw, expected) in cases {
        let got = parse(raw, LIMIT);
        assert_eq!(
            got,
            Err(expected),
            "{}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
    }
}

#[test]
fn every_prefix_of_a_valid_head_is_partial() {
    let raw = b"GET /x HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n\r\n";
    for cut in 0..raw.len() {
        assert_eq!(
            parse(&raw[..cut], LIMIT),
            Ok(Parsed::Partial),
            "cut at {cut}"
        );
    }
    assert!(matches!(parse(raw, LIMIT), Ok(Parsed::Complete { .. })));
}

#[test]
fn limit_is_configurable() {
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(2048)
    );
    assert_eq!(parse(raw.as_bytes(), 1024), Err(RequestError::HeadTooLarge));
    assert!(matches!(
        parse(raw.as_bytes(), 4096),
        Ok(Parsed::Complete { .. })
    ));
}

#[test]
fn errors_map_to_statuses() {
    assert_eq!(RequestError::Malformed.status(), Status::BadRequest);
    assert_eq!(
        RequestError::HeadTooLarge.status(),
        Status::HeaderFieldsTooLarge
    );
    assert_eq!(RequestError::UriTooLong.status(), Status::UriTooLong);
    assert_eq!(
        RequestError::VersionNotSupported.status(),
        Status::VersionNotSupported
    );
}
