//! Methods other than GET and HEAD: OPTIONS → 204, anything else → 405, both with `Allow`.

use crate::common::*;

const ALLOW: &str = "GET, HEAD, OPTIONS";

fn assert_405(r: &Response) {
    assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed");
    r.assert_common_headers();
    assert_eq!(r.must("allow"), ALLOW);
    assert_eq!(r.must("content-length"), r.body.len().to_string());
}

each_mode! {
    fn options_gives_204_with_allow(ctx) {
        let srv = ctx.start();
        for target in ["/index.html", "*"] {
            let mut conn = srv.conn();
            conn.send(format!("OPTIONS {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            let r = conn.read_response(false);
            assert_eq!(r.status_line, "HTTP/1.1 204 No Content", "OPTIONS {target}");
            r.assert_common_headers();
            assert_eq!(r.must("allow"), ALLOW);
            assert_eq!(r.header("content-length"), None, "{:#?}", r.headers);
            // A 204 has no body: the next response must follow at once.
            conn.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            assert_eq!(conn.read_response(false).body_str(), STYLE_CSS);
            conn.assert_closed();
        }
    }

    fn other_methods_give_405_with_allow(ctx) {
        let srv = ctx.start();
        for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "BREW"] {
            let r = srv.request(&request(method, "/index.html", &[]));
            assert_405(&r);
        }
    }

    fn methods_are_case_sensitive(ctx) {
        let srv = ctx.start();
        assert_405(&srv.request(&request("get", "/index.html", &[])));
    }

    fn post_with_a_body_gives_405_and_closes(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        let r = conn.read_response(false);
        assert_405(&r);
        assert!(r.closes(), "{:#?}", r.headers);
        conn.assert_closed();
    }

    /// Regression: closing with unread request bytes makes the kernel send a reset, which can
    /// destroy the 405 before the client reads it; the server must linger and discard instead.
    fn unread_body_arriving_after_the_answer_does_not_reset_it(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        let body_len = 128 * 1024;
        conn.send(format!("POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: {body_len}\r\n\r\n").as_bytes());
        // The server answers (and starts closing) before the body arrives.
        conn.wait_readable();
        let body = vec![b'x'; body_len];
        for chunk in body.chunks(16 * 1024) {
            conn.send(chunk);
        }
        let r = conn.read_response(false);
        assert_405(&r);
        assert!(r.closes(), "{:#?}", r.headers);
    }
}
