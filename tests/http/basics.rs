//! GET and HEAD of plain files, and the headers every response carries.

use crate::common::*;

each_mode! {
    fn get_root_serves_index(ctx) {
        let srv = ctx.start();
        let r = srv.get("/");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        r.assert_common_headers();
        assert_eq!(r.body_str(), INDEX_HTML);
        assert_eq!(r.must("content-length"), INDEX_HTML.len().to_string());
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.must("accept-ranges"), "bytes");
    }

    fn head_has_get_headers_and_no_body(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        let get = conn.read_response(false);
        conn.send(b"HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        let head = conn.read_response(true);
        head.assert_common_headers();
        assert_eq!(head.status, 200);
        assert_eq!(head.must("content-length"), INDEX_HTML.len().to_string());
        assert_eq!(head.headers_without_date(), get.headers_without_date());
        // A body after the HEAD response would be parsed as the next status line here.
        conn.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let next = conn.read_response(false);
        assert_eq!(next.status, 200);
        assert_eq!(next.body_str(), STYLE_CSS);
        conn.assert_closed();
    }

    fn content_types_by_extension(ctx) {
        let srv = ctx.start();
        for (path, ty, body) in [
            ("/index.html", "text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec()),
            ("/style.css", "text/css; charset=utf-8", STYLE_CSS.as_bytes().to_vec()),
            ("/128b.bin", "application/octet-stream", small_bin()),
            ("/100k.bin", "application/octet-stream", big_bin()),
        ] {
            let r = srv.get(path);
            assert_eq!(r.status, 200, "{path}");
            r.assert_common_headers();
            assert_eq!(r.must("content-type"), ty, "{path}");
            assert_eq!(r.must("accept-ranges"), "bytes", "{path}");
            assert_eq!(r.must("content-length"), body.len().to_string(), "{path}");
            assert!(r.body == body, "{path}: body differs");
        }
    }

    fn http10_request_gets_http11_status_line(ctx) {
        let srv = ctx.start();
        let r = srv.request("GET /index.html HTTP/1.0\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        r.assert_common_headers();
        assert_eq!(r.body_str(), INDEX_HTML);
    }

    fn last_modified_is_mtime(ctx) {
        let srv = ctx.start();
        let r = srv.get("/100k.bin");
        assert_eq!(r.must("last-modified"), FIXTURE_LAST_MODIFIED);
        let r = srv.get("/dir/");
        assert_eq!(r.must("last-modified"), FIXTURE_LAST_MODIFIED);
    }
}
