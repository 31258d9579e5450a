//! `--not-found PAGE`: the site's page is the body of every 404 of a missing path, with status
//! 404 and its own type; never a 304, 412, 206 or redirect; the built-in body once it is
//! gone; other statuses keep their built-in bodies; a bad PAGE refuses to start.

use crate::common::*;
use ringserve::{Config, Server};

const PAGE: &str = "<!DOCTYPE html>\n<title>lost</title>\n<p>custom not found page</p>\n";

/// A server over the default fixture plus `404.html`, with `--not-found /404.html`.
fn start(ctx: &Ctx) -> TestServer {
    let fixture = Fixture::new();
    fixture.write("404.html", PAGE.as_bytes());
    let mut srv = ctx.serve(fixture.root(), |c| c.not_found_page("/404.html"));
    srv.keep_fixture(fixture);
    srv
}

/// Asserts that `r` is the custom 404 (`body`: whether the body was sent).
fn assert_custom_404(r: &Response, what: &str) {
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found", "{what}");
    r.assert_common_headers();
    assert_eq!(r.must("content-type"), "text/html; charset=utf-8", "{what}");
    assert_eq!(r.must("content-length"), PAGE.len().to_string(), "{what}");
    for absent in [
        "etag",
        "last-modified",
        "cache-control",
        "content-range",
        "vary",
    ] {
        assert_eq!(r.header(absent), None, "{what}: {absent} on the 404 page");
    }
}

each_mode! {
    fn every_missing_path_gets_the_page(ctx) {
        let srv = start(&ctx);
        for path in [
            "/nope.html",
            "/a/b/c.png",
            "/users/42",
            // A file named in directory form, a directory without an index, a hidden file.
            "/style.css/",
            "/empty/",
            "/noindex/",
            "/.hidden",
            "/dir/.hidden",
        ] {
            let r = srv.get(path);
            assert_custom_404(&r, path);
            assert_eq!(r.body_str(), PAGE, "{path}");
        }
        // Existing things are untouched: files, indexes, the directory redirect.
        assert_eq!(srv.get("/").body_str(), INDEX_HTML);
        let r = srv.get("/dir");
        assert_eq!(r.status, 301);
        assert_eq!(r.must("location"), "dir/");
        // The page itself is served as a file when asked for by name.
        let r = srv.get("/404.html");
        assert_eq!(r.status, 200);
        assert!(r.header("etag").is_some());
    }

    fn head_gets_the_same_head_without_the_body(ctx) {
        let srv = start(&ctx);
        let r = srv.head_with("/nope", &[]);
        assert_custom_404(&r, "HEAD");
        assert!(r.body.is_empty());
    }

    fn conditionals_and_ranges_never_change_a_404(ctx) {
        let srv = start(&ctx);
        let etag = srv.get("/404.html").must("etag").to_string();
        let ims = format!("If-Modified-Since: {}", format_imf_fixdate(std::time::SystemTime::now()));
        let inm = format!("If-None-Match: {etag}");
        let cases: [&[&str]; 8] = [
            &["If-None-Match: *"],
            &[&inm],
            &[&ims],
            &["If-Match: \"nope\""],
            &["If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"],
            &["Range: bytes=0-3"],
            &["Range: bytes=0-1,5-6"],
            &["Range: bytes=100000-"],
        ];
        for headers in cases {
            let r = srv.get_with("/nope", headers);
            assert_custom_404(&r, &format!("{headers:?}"));
            assert_eq!(r.body_str(), PAGE, "{headers:?}");
        }
    }

    fn the_page_keeps_its_own_content_type(ctx) {
        let fixture = Fixture::new();
        fixture.write("errors/missing.txt", b"not here\n");
        let mut srv = ctx.serve(fixture.root(), |c| c.not_found_page("/errors/missing.txt"));
        srv.keep_fixture(fixture);
        let r = srv.get("/nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.must("content-type"), "text/plain; charset=utf-8");
        assert_eq!(r.body_str(), "not here\n");
    }

    fn other_errors_keep_their_built_in_bodies(ctx) {
        let srv = start(&ctx);
        let r = srv.request(&request("DELETE", "/nope", &[]));
        assert_eq!(r.status, 405);
        assert!(r.body_str().contains("405 Method Not Allowed"), "{}", r.body_str());
        let r = srv.get("/%00");
        assert_eq!(r.status, 400);
        assert!(r.body_str().contains("400 Bad Request"), "{}", r.body_str());
    }

    fn a_replaced_page_is_served_and_a_removed_one_falls_back_to_the_built_in_404(ctx) {
        let srv = start(&ctx);
        assert_eq!(srv.get("/nope").body_str(), PAGE);
        let fixture = srv.fixture();
        // Replaced by a rename, the way deploys write files.
        fixture.write("404.new", b"<p>second version of the page</p>\n");
        std::fs::rename(fixture.path("404.new"), fixture.path("404.html")).unwrap();
        let r = srv.get("/nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.body_str(), "<p>second version of the page</p>\n");
        std::fs::remove_file(fixture.path("404.html")).unwrap();
        let r = srv.get("/nope");
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
        assert!(r.body_str().contains("<h1>404 Not Found</h1>"), "{}", r.body_str());
        assert_eq!(r.must("content-length"), r.body.len().to_string());
        // A directory in its place is not a page either.
        std::fs::create_dir(fixture.path("404.html")).unwrap();
        let r = srv.get("/nope");
        assert_eq!(r.status, 404);
        assert!(r.body_str().contains("<h1>404 Not Found</h1>"), "{}", r.body_str());
        assert_eq!(r.header("location"), None);
    }

    fn a_large_page_is_sent_whole(ctx) {
        let fixture = Fixture::new();
        let mut srv = ctx.serve(fixture.root(), |c| c.not_found_page("/100k.bin"));
        srv.keep_fixture(fixture);
        for _ in 0..2 {
            let r = srv.get_with("/nope", &["Range: bytes=0-9"]);
            assert_eq!(r.status, 404);
            assert_eq!(r.must("content-type"), "application/octet-stream");
            assert!(r.body == big_bin(), "the 100 KiB page differs");
        }
    }
}

/// PAGE must name a regular file beneath the root, reachable under the dotfile rule: the
/// server refuses to start otherwise, naming the flag and the page.
#[test]
fn a_page_that_is_not_a_file_beneath_the_root_refuses_to_start() {
    let fixture = Fixture::new();
    let cases = [
        ("/missing.html", "no regular file"),
        ("/dir", "is a directory"),
        ("/dir/", "names a directory"),
        ("/.hidden", "hidden dotfile"),
        ("/link-outside", "no regular file"),
        ("/../secret", "not a path beneath the root"),
        ("404.html", "starting with '/'"),
    ];
    for (page, why) in cases {
        for (flag, config) in [
            (
                "--not-found",
                Config::new(fixture.root()).not_found_page(page),
            ),
            (
                "--fallback",
                Config::new(fixture.root()).fallback_page(page),
            ),
        ] {
            let err = Server::bind(config.listen(loopback0()))
                .map(|h| {
                    h.shutdown();
                    h.join();
                })
                .expect_err(page)
                .to_string();
            assert!(err.starts_with(&format!("{flag} '{page}': ")), "{err}");
            assert!(err.contains(why), "{page}: {err}");
        }
    }
    // Served dotfiles make a dotfile page acceptable.
    let h = Server::bind(
        Config::new(fixture.root())
            .listen(loopback0())
            .serve_dotfiles()
            .not_found_page("/.hidden"),
    )
    .expect("a dotfile page with dotfiles served");
    h.shutdown();
    h.join();
}
