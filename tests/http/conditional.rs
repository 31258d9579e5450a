//! Validators (ETag, Last-Modified) and conditional requests, RFC 9110 §13.

use crate::common::*;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// The ETag of `/100k.bin`.
fn etag(srv: &TestServer) -> String {
    let r = srv.get("/100k.bin");
    assert_eq!(r.status, 200);
    r.must("etag").to_string()
}

/// Asserts a 304: validators and Date, no body, no Content-Length.
fn assert_not_modified(r: &Response, tag: &str) {
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    r.assert_common_headers();
    assert_eq!(r.must("etag"), tag);
    assert_eq!(r.must("last-modified"), FIXTURE_LAST_MODIFIED);
    assert_eq!(r.header("content-length"), None, "{:#?}", r.headers);
    assert!(r.body.is_empty());
}

/// An IMF-fixdate one day before the fixture mtime.
fn day_before() -> String {
    format_imf_fixdate(UNIX_EPOCH + Duration::from_secs(FIXTURE_MTIME_SECS - 86_400))
}

each_mode! {
    fn etag_is_strong_md5_hex(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        assert_etag_shape(&tag);
        assert_eq!(etag(&srv), tag, "same file, same tag");
        let other = srv.get("/index.html");
        assert_etag_shape(other.must("etag"));
        assert_ne!(other.must("etag"), tag, "different files, different tags");
    }

    fn etag_is_the_same_across_instances(ctx) {
        let fixture = Fixture::new();
        let a = ctx.serve(fixture.root(), |c| c);
        let b = ctx.serve(fixture.root(), |c| c);
        assert_eq!(etag(&a), etag(&b));
        assert_eq!(a.get("/").must("etag"), b.get("/").must("etag"));
    }

    fn etag_changes_when_the_file_changes(ctx) {
        let srv = ctx.start();
        let before = etag(&srv);
        let path = srv.fixture().path("100k.bin");
        std::fs::write(&path, b"new content").unwrap();
        set_mtime(&path, UNIX_EPOCH + Duration::from_secs(FIXTURE_MTIME_SECS + 3600));
        // A caching server may take up to a second to notice; poll for 3 s.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let r = srv.get("/100k.bin");
            if r.must("etag") != before {
                assert_etag_shape(r.must("etag"));
                assert_eq!(r.body, b"new content");
                assert_eq!(r.must("last-modified"), "Tue, 02 Jan 2024 04:04:05 GMT");
                break;
            }
            assert!(Instant::now() < deadline, "ETag still {before} 3 s after the change");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn if_none_match_exact_gives_304(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let r = srv.get_with("/100k.bin", &[&format!("If-None-Match: {tag}")]);
        assert_not_modified(&r, &tag);
    }

    fn if_none_match_weak_form_matches(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let r = srv.get_with("/100k.bin", &[&format!("If-None-Match: W/{tag}")]);
        assert_not_modified(&r, &tag);
    }

    fn if_none_match_list_with_a_match(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let header = format!("If-None-Match: \"aaaa\", W/\"bbbb\",{tag} , \"cccc\"");
        let r = srv.get_with("/100k.bin", &[&header]);
        assert_not_modified(&r, &tag);
    }

    fn if_none_match_star_gives_304(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let r = srv.get_with("/100k.bin", &["If-None-Match: *"]);
        assert_not_modified(&r, &tag);
    }

    fn if_none_match_mismatch_gives_200(ctx) {
        let srv = ctx.start();
        let r = srv.get_with("/100k.bin", &["If-None-Match: \"0123456789abcdef0123456789abcdef\""]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, big_bin());
    }

    fn if_none_match_on_head_gives_304(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let r = srv.head_with("/100k.bin", &[&format!("If-None-Match: {tag}")]);
        assert_not_modified(&r, &tag);
    }

    fn if_modified_since_equal_gives_304(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let ims = format!("If-Modified-Since: {FIXTURE_LAST_MODIFIED}");
        let r = srv.get_with("/100k.bin", &[&ims]);
        assert_not_modified(&r, &tag);
    }

    fn if_modified_since_earlier_gives_200(ctx) {
        let srv = ctx.start();
        let r = srv.get_with("/100k.bin", &[&format!("If-Modified-Since: {}", day_before())]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, big_bin());
    }

    fn if_modified_since_ignored_when_if_none_match_present(ctx) {
        let srv = ctx.start();
        let r = srv.get_with(
            "/100k.bin",
            &[
                "If-None-Match: \"0123456789abcdef0123456789abcdef\"",
                &format!("If-Modified-Since: {FIXTURE_LAST_MODIFIED}"),
            ],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body, big_bin());
    }

    fn if_match_mismatch_gives_412(ctx) {
        let srv = ctx.start();
        let r = srv.get_with("/100k.bin", &["If-Match: \"0123456789abcdef0123456789abcdef\""]);
        assert_eq!(r.status, 412);
        r.assert_common_headers();
        assert_eq!(r.must("content-length"), r.body.len().to_string());
        assert!(!contains(&r.body, &big_bin()[..64]));
    }

    fn if_match_current_tag_and_star_give_200(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        for value in ["*".to_string(), tag] {
            let r = srv.get_with("/100k.bin", &[&format!("If-Match: {value}")]);
            assert_eq!(r.status, 200, "If-Match: {value}");
            assert_eq!(r.body, big_bin());
        }
    }

    fn if_match_weak_tag_never_matches(ctx) {
        let srv = ctx.start();
        let tag = etag(&srv);
        let r = srv.get_with("/100k.bin", &[&format!("If-Match: W/{tag}")]);
        assert_eq!(r.status, 412, "If-Match uses the strong comparison");
    }

    fn if_unmodified_since_earlier_gives_412(ctx) {
        let srv = ctx.start();
        let r = srv.get_with("/100k.bin", &[&format!("If-Unmodified-Since: {}", day_before())]);
        assert_eq!(r.status, 412);
        let r = srv.get_with(
            "/100k.bin",
            &[&format!("If-Unmodified-Since: {FIXTURE_LAST_MODIFIED}")],
        );
        assert_eq!(r.status, 200);
    }

    fn cache_control_on_200_and_304(ctx) {
        let srv = ctx.start_with(|c| c.cache_control("public, max-age=60"));
        let r = srv.get("/100k.bin");
        assert_eq!(r.status, 200);
        assert_eq!(r.must("cache-control"), "public, max-age=60");
        let tag = r.must("etag").to_string();
        let r = srv.get_with("/100k.bin", &[&format!("If-None-Match: {tag}")]);
        assert_not_modified(&r, &tag);
        assert_eq!(r.must("cache-control"), "public, max-age=60");
    }
}
