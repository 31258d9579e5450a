//! `--fallback PAGE`, the single-page-app rule: a GET or HEAD of a missing path whose last
//! segment has no `.` and whose `Accept` allows `text/html` gets PAGE with 200 and
//! `Vary: Accept`; missing assets, existing directories and clients that refuse HTML get the
//! 404 (with `Vary: Accept` when `Accept` decided it).

use crate::common::*;

/// A browser navigation's `Accept`.
const BROWSER: &str = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const JSON: &str = "Accept: application/json";
const NOT_FOUND_PAGE: &str = "<p>custom 404</p>\n";

fn start(ctx: &Ctx) -> TestServer {
    ctx.start_with(|c| c.fallback_page("/index.html"))
}

fn vary(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `r` is the fallback page: 200, the index, `Vary: Accept`.
fn assert_fallback(r: &Response, what: &str) {
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{what}");
    r.assert_common_headers();
    assert_eq!(r.must("content-type"), "text/html; charset=utf-8", "{what}");
    assert_eq!(
        r.must("content-length"),
        INDEX_HTML.len().to_string(),
        "{what}"
    );
    assert_eq!(vary(r), ["Accept"], "{what}");
}

each_mode! {
    fn app_routes_get_the_page(ctx) {
        let srv = start(&ctx);
        let index_etag = srv.get("/index.html").must("etag").to_string();
        for path in ["/users", "/users/42", "/users/", "/a/b/c/d", "/v1.2/users", "/users?tab=2"] {
            for accept in [Some(BROWSER), None, Some("Accept: */*"), Some("Accept: text/*")] {
                let headers: Vec<&str> = accept.into_iter().collect();
                let r = srv.get_with(path, &headers);
                assert_fallback(&r, &format!("{path} {accept:?}"));
                assert_eq!(r.body_str(), INDEX_HTML, "{path}");
                assert_eq!(r.must("etag"), index_etag, "{path}");
            }
        }
        // Existing files and indexes are served as they are, without `Vary`.
        let r = srv.get_with("/style.css", &[BROWSER]);
        assert_eq!(r.body_str(), STYLE_CSS);
        assert_eq!(r.count("vary"), 0);
        let r = srv.get_with("/dir/", &[BROWSER]);
        assert_eq!(r.body_str(), DIR_INDEX_HTML);
        assert_eq!(r.count("vary"), 0);
        assert_eq!(srv.get_with("/dir", &[BROWSER]).status, 301);
    }

    fn missing_assets_still_get_404(ctx) {
        let srv = start(&ctx);
        for path in [
            "/app.js",
            "/img/x.png",
            "/users/42/avatar.jpg",
            "/app.js/",
            "/v1.2/",
            "/x.",
            "/app%2Ejs",
        ] {
            let r = srv.get_with(path, &[BROWSER]);
            assert_eq!(r.status, 404, "{path}");
            assert!(r.body_str().contains("<h1>404 Not Found</h1>"), "{path}");
            assert_eq!(r.count("vary"), 0, "{path}: Accept decided nothing");
        }
    }

    fn clients_that_refuse_html_get_404_with_vary(ctx) {
        let srv = start(&ctx);
        for accept in [JSON, "Accept: text/html;q=0", "Accept: image/*", "Accept: */*, text/html;q=0"] {
            let r = srv.get_with("/users/42", &[accept]);
            assert_eq!(r.status, 404, "{accept}");
            assert_eq!(vary(&r), ["Accept"], "{accept}");
        }
    }

    fn an_existing_directory_without_index_is_not_a_route(ctx) {
        let srv = start(&ctx);
        for path in ["/empty/", "/noindex/"] {
            let r = srv.get_with(path, &[BROWSER]);
            assert_eq!(r.status, 404, "{path}");
            assert_eq!(r.count("vary"), 0, "{path}");
        }
        // With listings on, the listing is served as before.
        let srv = ctx.start_with(|c| c.fallback_page("/index.html").enable_listing());
        let r = srv.get_with("/empty/", &[BROWSER]);
        assert_eq!(r.status, 200);
        assert!(r.body_str().contains("Index of"), "{}", r.body_str());
        assert_eq!(r.count("vary"), 0);
    }

    fn hidden_paths_are_answered_as_missing_ones(ctx) {
        let srv = start(&ctx);
        assert_fallback(&srv.get_with("/.well-known/thing", &[BROWSER]), "dot dir");
        let r = srv.get_with("/.hidden", &[BROWSER]);
        assert_eq!(r.status, 404);
        assert!(!r.body_str().contains(HIDDEN.trim_end()));
    }

    fn head_and_conditionals_follow_the_page(ctx) {
        let srv = start(&ctx);
        let r = srv.head_with("/users/42", &[BROWSER]);
        assert_fallback(&r, "HEAD");
        assert!(r.body.is_empty());
        let etag = r.must("etag").to_string();
        let inm = format!("If-None-Match: {etag}");
        let r = srv.get_with("/users/42", &[BROWSER, &inm]);
        assert_eq!(r.status, 304);
        assert_eq!(vary(&r), ["Accept"]);
        assert_eq!(r.must("etag"), etag);
        let r = srv.get_with("/users/42", &[BROWSER, "If-Match: \"other\""]);
        assert_eq!(r.status, 412);
        assert_eq!(vary(&r), ["Accept"]);
        // Other methods are not routed.
        let r = srv.request(&request("POST", "/users/42", &[BROWSER, "Content-Length: 0"]));
        assert_eq!(r.status, 405);
    }

    fn with_a_404_page_the_fallback_comes_first(ctx) {
        let fixture = Fixture::new();
        fixture.write("404.html", NOT_FOUND_PAGE.as_bytes());
        let mut srv = ctx.serve(fixture.root(), |c| {
            c.fallback_page("/index.html").not_found_page("/404.html")
        });
        srv.keep_fixture(fixture);
        assert_fallback(&srv.get_with("/users/42", &[BROWSER]), "route");
        let r = srv.get_with("/users/42", &[JSON]);
        assert_eq!(r.status, 404);
        assert_eq!(r.body_str(), NOT_FOUND_PAGE);
        assert_eq!(vary(&r), ["Accept"]);
        let r = srv.get_with("/app.js", &[BROWSER]);
        assert_eq!(r.status, 404);
        assert_eq!(r.body_str(), NOT_FOUND_PAGE);
        assert_eq!(r.count("vary"), 0);
        // The fallback page gone: routes get the 404 page, never a 500 or a redirect.
        std::fs::remove_file(srv.fixture().path("index.html")).unwrap();
        let r = srv.get_with("/users/42", &[BROWSER]);
        assert_eq!(r.status, 404);
        assert_eq!(r.body_str(), NOT_FOUND_PAGE);
        std::fs::create_dir(srv.fixture().path("index.html")).unwrap();
        let r = srv.get_with("/users/42", &[BROWSER]);
        assert_eq!(r.status, 404);
        assert_eq!(r.header("location"), None);
    }
}

/// Both modes give the same heads and bodies for routes, assets, refusals and the 404 page.
#[test]
fn every_mode_answers_missing_paths_alike() {
    let fixture = Fixture::new();
    fixture.write("404.html", NOT_FOUND_PAGE.as_bytes());
    let mut requests = Vec::new();
    for path in [
        "/users/42",
        "/users/",
        "/app.js",
        "/empty/",
        "/.hidden",
        "/v1.2/x",
    ] {
        for headers in [&[BROWSER][..], &[JSON], &[], &[BROWSER, "Range: bytes=0-4"]] {
            requests.push(request("GET", path, headers));
        }
        requests.push(request("HEAD", path, &[BROWSER]));
    }
    assert_modes_answer_alike(&requests, |ctx| {
        ctx.serve(fixture.root(), |c| {
            c.fallback_page("/index.html")
                .not_found_page("/404.html")
                .cache_control("public, max-age=60")
        })
    });
}
