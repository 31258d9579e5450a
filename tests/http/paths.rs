//! Request targets: directories, redirects, the query, listings, dotfiles, odd names, symlinks,
//! and every way of trying to climb out of the root.

use crate::common::*;

/// Asserts that a response neither succeeds with nor leaks the secret.
fn assert_no_leak(r: &Response, what: &str) {
    assert!(
        !contains(&r.body, SECRET.trim_end().as_bytes()),
        "{what}: the secret leaked"
    );
    assert!(
        !r.headers.iter().any(|(_, v)| v.contains("SECRET")),
        "{what}: the secret leaked into a header"
    );
    assert_ne!(r.status, 200, "{what}: 200");
}

/// Sends a raw request line target and returns the response.
fn get_raw(srv: &TestServer, target: &str) -> Response {
    srv.request(&format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ))
}

each_mode! {
    fn directory_without_slash_redirects_relative(ctx) {
        let srv = ctx.start();
        let r = srv.get("/dir");
        assert_eq!(r.status_line, "HTTP/1.1 301 Moved Permanently");
        r.assert_common_headers();
        assert_eq!(r.must("location"), "dir/");
        let r = srv.get("/dir?x=1");
        assert_eq!(r.status, 301);
        assert_eq!(r.must("location"), "dir/?x=1");
    }

    fn directory_with_slash_serves_its_index(ctx) {
        let srv = ctx.start();
        let r = srv.get("/dir/");
        assert_eq!(r.status, 200);
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.body_str(), DIR_INDEX_HTML);
    }

    fn query_is_ignored_for_files(ctx) {
        let srv = ctx.start();
        let r = srv.get("/index.html?v=3");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), INDEX_HTML);
    }

    fn missing_file_gives_404(ctx) {
        let srv = ctx.start();
        let r = srv.get("/nope.html");
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
        r.assert_common_headers();
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
    }

    fn directory_without_index_gives_404_without_listing(ctx) {
        let srv = ctx.start();
        assert_eq!(srv.get("/empty/").status, 404);
        assert_eq!(srv.get("/noindex/").status, 404);
    }

    fn listing_escapes_and_sorts_names(ctx) {
        let srv = ctx.start_with(|c| c.enable_listing());
        let r = srv.get("/empty/");
        assert_eq!(r.status, 200);
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
        let r = srv.get("/noindex/");
        assert_eq!(r.status, 200);
        r.assert_common_headers();
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
        let page = r.body_str();
        assert!(page.contains("b&amp;c.txt"), "no escaped & in {page}");
        assert!(!page.contains("b&c.txt"), "unescaped & in {page}");
        assert!(page.contains("100%25.txt"), "no percent-encoded link in {page}");
        let at = |name: &str| page.find(name).unwrap_or_else(|| panic!("{name} missing: {page}"));
        let order = [at("100%25.txt"), at("a.txt"), at("b&amp;c.txt")];
        assert!(order.is_sorted(), "not sorted: {page}");
    }

    fn dotfiles_hidden_by_default(ctx) {
        let srv = ctx.start();
        let r = srv.get("/.hidden");
        assert_eq!(r.status, 404);
        assert!(!r.body_str().contains(HIDDEN.trim_end()));
    }

    fn dotfiles_served_when_enabled(ctx) {
        let srv = ctx.start_with(|c| c.serve_dotfiles());
        let r = srv.get("/.hidden");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), HIDDEN);
    }

    fn percent_encoded_names(ctx) {
        let srv = ctx.start();
        let r = srv.get("/with%20space.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), SPACED);
        let r = srv.get("/100%25.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), PERCENT);
    }

    fn symlink_inside_root_is_followed(ctx) {
        let srv = ctx.start();
        let r = srv.get("/link-inside");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, small_bin());
    }

    fn symlink_outside_root_gives_404(ctx) {
        let srv = ctx.start();
        let r = srv.get("/link-outside");
        assert_no_leak(&r, "/link-outside");
        assert_eq!(r.status, 404);
    }

    fn traversal_above_root_gives_400(ctx) {
        let srv = ctx.start();
        for target in [
            "/../secret",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/..%2fsecret",
            "/%2e%2e%2fsecret",
            "/a/../../secret",
            "/dir/../../secret",
            "http://127.0.0.1/../secret",
        ] {
            let r = get_raw(&srv, target);
            assert_no_leak(&r, target);
            assert_eq!(r.status, 400, "{target}");
        }
    }

    fn traversal_with_backslash_never_leaks(ctx) {
        let srv = ctx.start();
        for target in ["/..\\secret", "/..%5csecret", "/%5c..%5csecret"] {
            assert_no_leak(&get_raw(&srv, target), target);
        }
    }

    fn nul_in_path_gives_400(ctx) {
        let srv = ctx.start();
        for target in ["/%00", "/index.html%00.txt", "/%00/../secret"] {
            let r = get_raw(&srv, target);
            assert_no_leak(&r, target);
            assert_eq!(r.status, 400, "{target}");
        }
    }

    fn absolute_form_target_is_served(ctx) {
        let srv = ctx.start();
        let r = get_raw(&srv, "http://127.0.0.1/index.html");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), INDEX_HTML);
    }

    fn asterisk_target_for_get_gives_400(ctx) {
        let srv = ctx.start();
        let r = get_raw(&srv, "*");
        assert_eq!(r.status, 400);
        assert!(r.closes());
    }
}
