//! Per-path header rules (issue 14): set on 200, 206, 304 and HEAD of a file, the last matching
//! rule winning per header; path and file-name patterns; a directory matched as its
//! index.html; never on error pages or redirects.

use crate::common::*;
use ringserve::{Config, HeaderRule};

fn rules(config: Config, rules: &[&str]) -> Config {
    rules.iter().fold(config, |c, r| {
        c.header_rule(r.parse::<HeaderRule>().expect("a valid rule"))
    })
}

/// Every value of `name` in `r`, in order.
fn all<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

each_mode! {
    fn rules_apply_to_200_206_304_and_head_alike(ctx) {
        let srv = ctx.start_with(|c| {
            rules(
                c.cache_control("public, max-age=60"),
                &["/**=X-Site: demo", "*.css=Cache-Control: public, max-age=31536000, immutable"],
            )
        });
        // Twice: the second 200 comes from a worker's cache, with its prebuilt fields.
        for _ in 0..2 {
            let r = srv.get("/style.css");
            assert_eq!(r.status, 200);
            assert_eq!(all(&r, "cache-control"), ["public, max-age=31536000, immutable"]);
            assert_eq!(all(&r, "x-site"), ["demo"]);
            r.assert_common_headers();
        }
        let head = srv.head_with("/style.css", &[]);
        assert_eq!(head.status, 200);
        assert_eq!(all(&head, "x-site"), ["demo"]);
        assert_eq!(all(&head, "cache-control"), ["public, max-age=31536000, immutable"]);

        let etag = srv.get("/style.css").must("etag").to_owned();
        let not_modified = srv.get_with("/style.css", &[&format!("If-None-Match: {etag}")]);
        assert_eq!(not_modified.status, 304);
        assert_eq!(all(&not_modified, "x-site"), ["demo"]);
        assert_eq!(
            all(&not_modified, "cache-control"),
            ["public, max-age=31536000, immutable"]
        );

        let partial = srv.get_with("/style.css", &["Range: bytes=0-3"]);
        assert_eq!(partial.status, 206);
        assert_eq!(partial.body.len(), 4);
        assert_eq!(all(&partial, "x-site"), ["demo"]);
        assert_eq!(
            all(&partial, "cache-control"),
            ["public, max-age=31536000, immutable"]
        );

        // No rule sets Cache-Control here: the site's value stays.
        let html = srv.get("/index.html");
        assert_eq!(all(&html, "cache-control"), ["public, max-age=60"]);
        assert_eq!(all(&html, "x-site"), ["demo"]);
    }

    fn the_last_matching_rule_wins_per_header(ctx) {
        let srv = ctx.start_with(|c| {
            rules(c, &[
                "/**=X-Tier: all",
                "*.bin=X-Tier: binary",
                "/**=X-Other: kept",
                "/128b.bin=x-tier: this one",
                "/100k.bin=X-Tier: not this file",
            ])
        });
        for _ in 0..2 {
            let r = srv.get("/128b.bin");
            assert_eq!(all(&r, "x-tier"), ["this one"]);
            assert_eq!(all(&r, "x-other"), ["kept"]);
        }
        assert_eq!(all(&srv.get("/index.html"), "x-tier"), ["all"]);
        let big = srv.get_with("/100k.bin", &["Range: bytes=10-19"]);
        assert_eq!(big.status, 206);
        assert_eq!(all(&big, "x-tier"), ["not this file"]);
    }

    fn path_and_name_patterns_and_double_star_edges(ctx) {
        let fixture = Fixture::new();
        for f in ["assets/a.js", "assets/x/y.css", "assetsx.js", "x/q/y.css", "x/q/r/y.css"] {
            fixture.write(f, b"body");
        }
        let srv = ctx.serve(fixture.root(), |c| {
            rules(c, &[
                "/assets/**=X-Assets: 1",
                "/x/*/y.css=X-One-Level: 1",
                "/**/y.css=X-Any-Y: 1",
                "index.html=X-Index: 1",
            ])
        });
        let has = |path: &str, name: &str| !all(&srv.get(path), name).is_empty();
        assert!(has("/assets/a.js", "x-assets"));
        assert!(has("/assets/x/y.css", "x-assets"));
        assert!(!has("/assetsx.js", "x-assets"));
        assert!(has("/x/q/y.css", "x-one-level"));
        assert!(!has("/x/q/r/y.css", "x-one-level"));
        assert!(has("/x/q/r/y.css", "x-any-y"));
        assert!(has("/assets/x/y.css", "x-any-y"));
        // A directory is matched as the index.html it serves; a name pattern matches anywhere.
        assert!(has("/", "x-index"));
        assert!(has("/dir/", "x-index"));
        assert!(has("/dir/index.html", "x-index"));
        assert!(!has("/style.css", "x-index"));
    }

    fn a_directory_is_matched_as_its_index_file(ctx) {
        let srv = ctx.start_with(|c| rules(c, &["/dir/index.html=X-Page: dir", "/dir/**=X-Under: 1"]));
        for _ in 0..2 {
            let r = srv.get("/dir/");
            assert_eq!(r.status, 200);
            assert_eq!(all(&r, "x-page"), ["dir"]);
            assert_eq!(all(&r, "x-under"), ["1"]);
        }
    }

    fn content_type_is_replaced_but_not_sent_on_304(ctx) {
        let srv = ctx.start_with(|c| rules(c, &["*.bin=Content-Type: application/x-demo"]));
        let r = srv.get("/128b.bin");
        assert_eq!(all(&r, "content-type"), ["application/x-demo"]);
        let etag = r.must("etag").to_owned();
        let nm = srv.get_with("/128b.bin", &[&format!("If-None-Match: {etag}")]);
        assert_eq!(nm.status, 304);
        assert!(all(&nm, "content-type").is_empty());
        let part = srv.get_with("/128b.bin", &["Range: bytes=0-0"]);
        assert_eq!(all(&part, "content-type"), ["application/x-demo"]);
        let multi = srv.get_with("/100k.bin", &["Range: bytes=0-0, 50000-50001"]);
        assert_eq!(multi.status, 206);
        assert!(multi.must("content-type").starts_with("multipart/byteranges"));
        let body = String::from_utf8_lossy(&multi.body);
        assert!(body.contains("Content-Type: application/x-demo\r\n"), "{body}");
    }

    fn vary_from_a_rule_is_added_beside_the_negotiated_one(ctx) {
        let fixture = Fixture::new();
        fixture.write("app.js", b"console.log(1)");
        fixture.write("app.js.gz", b"pretend gzip");
        let when = fixture_mtime();
        set_mtime(&fixture.path("app.js"), when);
        set_mtime(&fixture.path("app.js.gz"), when);
        let srv = ctx.serve(fixture.root(), |c| rules(c, &["*.js=Vary: Origin"]));
        for _ in 0..2 {
            let r = srv.get_with("/app.js", &["Accept-Encoding: gzip"]);
            assert_eq!(r.must("content-encoding"), "gzip");
            assert_eq!(all(&r, "vary"), ["Accept-Encoding", "Origin"]);
        }
        // A rule on the file is matched as the file, whichever representation is sent.
        let plain = srv.get("/app.js");
        assert_eq!(all(&plain, "vary"), ["Accept-Encoding", "Origin"]);
    }

    fn rules_leave_errors_redirects_and_416_alone(ctx) {
        let srv = ctx.start_with(|c| rules(c, &["/**=X-Rule: 1", "*=Cache-Control: no-store"]));
        for (path, headers, status) in [
            ("/missing.txt", &[][..], 404),
            ("/dir", &[][..], 301),
            ("/128b.bin", &["Range: bytes=9999-"][..], 416),
        ] {
            let r = srv.get_with(path, headers);
            assert_eq!(r.status, status, "{path}");
            assert!(all(&r, "x-rule").is_empty(), "{path}: {:?}", r.headers);
            assert!(all(&r, "cache-control").is_empty(), "{path}: {:?}", r.headers);
        }
    }

    fn the_favicon_takes_rules_too(ctx) {
        let srv = ctx.start_with(|c| rules(c, &["/favicon.ico=Cache-Control: no-cache"]));
        let r = srv.get("/favicon.ico");
        assert_eq!(r.status, 200);
        assert_eq!(all(&r, "cache-control"), ["no-cache"]);
    }
}

#[test]
fn modes_send_identical_heads_with_rules() {
    let requests: Vec<String> = [
        request("GET", "/style.css", &[]),
        request("GET", "/style.css", &[]),
        request("HEAD", "/dir/", &[]),
        request("GET", "/128b.bin", &["Range: bytes=1-5"]),
        request("GET", "/style.css", &["If-None-Match: *"]),
        request("GET", "/style.css", &["Range: bytes=2-3"]),
        request("GET", "/dir/", &["If-None-Match: *"]),
    ]
    .into();
    assert_modes_answer_alike(&requests, |ctx| {
        ctx.start_with(|c| {
            rules(
                c,
                &[
                    "/**=X-A: 1",
                    "*.css=Cache-Control: max-age=5",
                    "/dir/**=X-B: 2",
                ],
            )
        })
    });
}
