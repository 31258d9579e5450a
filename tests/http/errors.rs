//! Malformed and oversized requests: the right status, `Connection: close`, a real close, an
//! HTML body with a correct length, and a server that goes on serving.

use crate::common::*;

/// Sends `raw` and checks the error response and the close; then checks the server still
/// serves a fresh connection.
fn assert_error(srv: &TestServer, raw: &[u8], status: u16) {
    let mut conn = srv.conn();
    conn.send(raw);
    let r = conn.read_response(false);
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
    assert_eq!(r.status, status, "for {shown:?}: {:#?}", r.headers);
    assert_eq!(r.version, "HTTP/1.1");
    r.assert_common_headers();
    assert!(r.closes(), "no Connection: close for {shown:?}");
    assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
    assert!(!r.body.is_empty(), "an error page has a body");
    assert!(
        r.body_str().contains(&status.to_string()),
        "body {:?}",
        r.body_str()
    );
    assert!(
        conn.wait_closed(IO_TIMEOUT),
        "server kept the connection open after {status}"
    );
    let ok = srv.get("/index.html");
    assert_eq!(ok.status, 200, "server stopped serving after {shown:?}");
}

each_mode! {
    fn malformed_request_line_gives_400(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GARBAGE\r\n\r\n", 400);
        let raw = send(srv.addr, b"GARBAGE\r\n\r\n");
        assert!(raw.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{raw:?}");
        assert_error(&srv, b"GET /index.html\r\n\r\n", 400);
        // Regression: a space inside the target was answered 505 (issue 10).
        assert_error(&srv, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400);
        for raw in [
            &b"GET  /index.html HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /index.html  HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /index.html HTTP/1.1 \r\nHost: x\r\n\r\n",
            b"GET\t/index.html HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /index.html\tHTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /index.html HTTP/1.1\rHost: x\r\n\r\n",
            b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /index.html http/1.1\r\nHost: x\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_error(&srv, raw, 400);
        }
    }

    fn bad_header_name_gives_400(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400);
    }

    fn obs_fold_gives_400(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  folded\r\n\r\n", 400);
    }

    fn content_length_with_transfer_encoding_gives_400(ctx) {
        let srv = ctx.start();
        assert_error(
            &srv,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
              Transfer-Encoding: chunked\r\n\r\nabc",
            400,
        );
    }

    fn differing_content_lengths_give_400(ctx) {
        let srv = ctx.start();
        assert_error(
            &srv,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
        );
    }

    fn http11_without_host_gives_400(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GET / HTTP/1.1\r\n\r\n", 400);
    }

    fn two_host_headers_give_400(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    }

    fn invalid_host_values_give_400(ctx) {
        let srv = ctx.start();
        for host in ["a b", "a/b", "user@h", "h\\x"] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_error(&srv, raw.as_bytes(), 400);
        }
    }

    fn unsupported_versions_give_505(ctx) {
        let srv = ctx.start();
        assert_error(&srv, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
        assert_error(&srv, b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505);
    }

    /// RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as HTTP/1.1.
    fn higher_minor_version_is_served_as_http11(ctx) {
        let srv = ctx.start();
        let r = srv.request("GET /style.css HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.body_str(), STYLE_CSS);
    }

    /// RFC 9112 §6.3: a request whose final transfer coding is not chunked → 400 and close.
    fn transfer_encoding_not_ending_in_chunked_gives_400(ctx) {
        let srv = ctx.start();
        for te in ["chunked, identity", "identity", "xchunked", "chunked, chunked", "gzip"] {
            let raw = format!(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
            );
            assert_error(&srv, raw.as_bytes(), 400);
        }
    }

    fn head_over_8k_gives_431(ctx) {
        let srv = ctx.start();
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..100 {
            raw.extend_from_slice(format!("X-Fill-{i:03}: {}\r\n", "v".repeat(100)).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert!(raw.len() > 8 * 1024);
        assert_error(&srv, &raw, 431);
    }

    fn request_line_over_8k_gives_414(ctx) {
        let srv = ctx.start();
        let raw = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
        assert_error(&srv, raw.as_bytes(), 414);
    }

    fn configured_max_head_gives_431(ctx) {
        let srv = ctx.start_with(|c| c.max_head(1024));
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(2048));
        assert_error(&srv, raw.as_bytes(), 431);
        // A head under the limit is still fine.
        let r = srv.get_with("/", &[&format!("X-Small: {}", "s".repeat(500))]);
        assert_eq!(r.status, 200);
    }
}
