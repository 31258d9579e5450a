//! Byte ranges, RFC 9110 §14.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

/// A single byte range as a client may write it.
#[derive(Clone, Debug)]
enum Spec {
    /// `bytes=first-last`
    Closed(usize, usize),
    /// `bytes=first-`
    From(usize),
    /// `bytes=-len`, len ≥ 1
    Suffix(usize),
}

impl Spec {
    fn header(&self) -> String {
        match self {
            Spec::Closed(first, last) => format!("bytes={first}-{last}"),
            Spec::From(first) => format!("bytes={first}-"),
            Spec::Suffix(len) => format!("bytes=-{len}"),
        }
    }

    /// The inclusive byte span served, or `None` when unsatisfiable (RFC 9110 §14.1.2).
    fn span(&self, len: usize) -> Option<(usize, usize)> {
        match *self {
            Spec::Closed(first, last) => (first < len).then(|| (first, last.min(len - 1))),
            Spec::From(first) => (first < len).then(|| (first, len - 1)),
            Spec::Suffix(n) => Some((len.saturating_sub(n), len - 1)),
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    let near_end = BIG_LEN - 100..BIG_LEN + 100;
    prop_oneof![
        (0..BIG_LEN + 100, 0..5000usize).prop_map(|(f, n)| Spec::Closed(f, f + n)),
        near_end.clone().prop_map(Spec::From),
        (0..BIG_LEN).prop_map(Spec::From),
        (1..BIG_LEN + 100).prop_map(Spec::Suffix),
        near_end.prop_map(Spec::Suffix),
    ]
}

/// `GET /100k.bin` with `Range: spec`.
fn range(srv: &TestServer, spec: &str) -> Response {
    srv.get_with("/100k.bin", &[&format!("Range: {spec}")])
}

fn assert_single(r: &Response, first: usize, last: usize) {
    assert_eq!(
        r.status_line, "HTTP/1.1 206 Partial Content",
        "{:#?}",
        r.headers
    );
    r.assert_common_headers();
    assert_eq!(
        r.must("content-range"),
        format!("bytes {first}-{last}/{BIG_LEN}")
    );
    assert_eq!(r.must("content-length"), (last - first + 1).to_string());
    assert_eq!(r.must("content-type"), "application/octet-stream");
    assert!(
        r.body == big_bin()[first..=last],
        "body of {first}-{last} differs"
    );
}

fn assert_full(r: &Response) {
    assert_eq!(r.status, 200, "{:#?}", r.headers);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.must("content-length"), BIG_LEN.to_string());
    assert!(r.body == big_bin(), "full body differs");
}

/// One part of a `multipart/byteranges` body; header names lowercased.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    data: Vec<u8>,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The parts of a `multipart/byteranges` body.
fn multipart(r: &Response) -> Vec<Part> {
    let ty = r.must("content-type");
    let boundary = ty
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("Content-Type {ty:?}"))
        .trim_matches('"');
    assert!(
        !boundary.is_empty() && boundary.len() <= 70,
        "boundary {boundary:?}"
    );
    let delimiter = format!("--{boundary}");
    let body = &r.body;
    let mut parts = Vec::new();
    let mut at = find(body, delimiter.as_bytes()).expect("first delimiter");
    for _ in 0..64 {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return parts; // close delimiter
        }
        assert!(
            body[at..].starts_with(b"\r\n"),
            "no CRLF after the delimiter"
        );
        at += 2;
        let head_len = find(&body[at..], b"\r\n\r\n").expect("part head end");
        let head = std::str::from_utf8(&body[at..at + head_len]).expect("part head UTF-8");
        let headers = head
            .split("\r\n")
            .map(|l| {
                let (n, v) = l.split_once(':').expect("part header line");
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        at += head_len + 4;
        let end = find(&body[at..], format!("\r\n{delimiter}").as_bytes()).expect("part end");
        parts.push(Part {
            headers,
            data: body[at..at + end].to_vec(),
        });
        at += end + 2;
    }
    panic!("more than 64 parts");
}

/// Asserts the parts are exactly `ranges` (inclusive), in order, with the right bytes.
fn assert_parts(parts: &[Part], ranges: &[(usize, usize)]) {
    assert_eq!(parts.len(), ranges.len(), "{parts:?}");
    let want = big_bin();
    for (part, &(first, last)) in parts.iter().zip(ranges) {
        let content_range = format!("bytes {first}-{last}/{BIG_LEN}");
        assert_eq!(part.header("content-range"), Some(content_range.as_str()));
        assert_eq!(
            part.header("content-type"),
            Some("application/octet-stream")
        );
        assert!(
            part.data[..] == want[first..=last],
            "part {first}-{last} differs"
        );
    }
}

each_mode! {
    fn first_ten_bytes(ctx) {
        let srv = ctx.start();
        assert_single(&range(&srv, "bytes=0-9"), 0, 9);
    }

    fn suffix_range(ctx) {
        let srv = ctx.start();
        assert_single(&range(&srv, "bytes=-5"), BIG_LEN - 5, BIG_LEN - 1);
    }

    fn open_ended_range(ctx) {
        let srv = ctx.start();
        assert_single(&range(&srv, "bytes=10-"), 10, BIG_LEN - 1);
    }

    fn last_byte_beyond_length_is_clamped(ctx) {
        let srv = ctx.start();
        assert_single(&range(&srv, &format!("bytes=100-{}", BIG_LEN + 50)), 100, BIG_LEN - 1);
    }

    fn unsatisfiable_range_gives_416(ctx) {
        let srv = ctx.start();
        let r = range(&srv, &format!("bytes={BIG_LEN}-"));
        assert_eq!(r.status_line, "HTTP/1.1 416 Range Not Satisfiable");
        r.assert_common_headers();
        assert_eq!(r.must("content-range"), format!("bytes */{BIG_LEN}"));
        assert_eq!(r.must("content-length"), r.body.len().to_string());
    }

    fn two_distant_ranges_give_multipart(ctx) {
        let srv = ctx.start();
        let r = range(&srv, "bytes=0-1,50000-50009");
        assert_eq!(r.status, 206);
        r.assert_common_headers();
        assert_eq!(r.header("content-range"), None, "a multipart response has none at top level");
        assert_parts(&multipart(&r), &[(0, 1), (50000, 50009)]);
    }

    fn close_ranges_give_multipart_or_one_covering_range(ctx) {
        // RFC 9110 §14.2 lets a server merge ranges whose gap costs less than a part header;
        // either way, the client must get exactly the bytes it asked for.
        let srv = ctx.start();
        let r = range(&srv, "bytes=0-1,5-6");
        assert_eq!(r.status, 206);
        r.assert_common_headers();
        if r.must("content-type").starts_with("multipart/byteranges") {
            assert_parts(&multipart(&r), &[(0, 1), (5, 6)]);
        } else {
            assert_single(&r, 0, 6);
        }
    }

    fn overlapping_ranges_coalesce(ctx) {
        let srv = ctx.start();
        assert_single(&range(&srv, "bytes=0-5,3-9"), 0, 9);
    }

    fn too_many_ranges_give_the_whole_file(ctx) {
        let srv = ctx.start();
        let spec: Vec<String> = (0..40).map(|i| format!("{}-{}", i * 10, i * 10 + 1)).collect();
        assert_full(&range(&srv, &format!("bytes={}", spec.join(","))));
    }

    fn malformed_range_is_ignored(ctx) {
        let srv = ctx.start();
        assert_full(&range(&srv, "bytes=x-y"));
        assert_full(&range(&srv, "lines=0-9"));
    }

    fn if_range_with_current_etag_gives_206(ctx) {
        let srv = ctx.start();
        let tag = srv.get("/100k.bin").must("etag").to_string();
        let r = srv.get_with("/100k.bin", &["Range: bytes=0-9", &format!("If-Range: {tag}")]);
        assert_single(&r, 0, 9);
    }

    fn if_range_with_other_etag_gives_200(ctx) {
        let srv = ctx.start();
        let r = srv.get_with(
            "/100k.bin",
            &["Range: bytes=0-9", "If-Range: \"0123456789abcdef0123456789abcdef\""],
        );
        assert_full(&r);
    }

    fn if_range_with_last_modified_date_gives_206(ctx) {
        let srv = ctx.start();
        let r = srv.get_with(
            "/100k.bin",
            &["Range: bytes=0-9", &format!("If-Range: {FIXTURE_LAST_MODIFIED}")],
        );
        assert_single(&r, 0, 9);
    }

    fn any_single_range_gets_exactly_its_bytes(ctx) {
        let srv = ctx.start();
        let want = big_bin();
        let mut runner = TestRunner::new(ProptestConfig {
            cases: 64,
            max_shrink_iters: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let outcome = runner.run(&spec(), |spec| {
            let r = range(&srv, &spec.header());
            match spec.span(BIG_LEN) {
                None => {
                    prop_assert_eq!(r.status, 416);
                    let content_range = format!("bytes */{BIG_LEN}");
                    prop_assert_eq!(r.header("content-range"), Some(content_range.as_str()));
                }
                // A range that covers everything may be answered with the whole 200.
                Some((0, last)) if last == BIG_LEN - 1 && r.status == 200 => {
                    prop_assert!(r.body == want);
                }
                Some((first, last)) => {
                    prop_assert_eq!(r.status, 206);
                    let content_range = format!("bytes {first}-{last}/{BIG_LEN}");
                    prop_assert_eq!(r.header("content-range"), Some(content_range.as_str()));
                    prop_assert!(r.body[..] == want[first..=last], "body differs");
                }
            }
            Ok(())
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }

    fn range_on_head_is_ignored(ctx) {
        let srv = ctx.start();
        let r = srv.head_with("/100k.bin", &["Range: bytes=0-9"]);
        assert_eq!(r.status, 200);
        assert_eq!(r.must("content-length"), BIG_LEN.to_string());
        assert_eq!(r.header("content-range"), None);
    }
}
