//! The I/O modes differ only in how bytes move: the same requests get the same heads (Date
//! aside) and the same bodies in every mode.

use crate::common::*;

/// Requests covering every kind of response the core makes.
fn requests() -> Vec<String> {
    let mut reqs: Vec<String> = [
        "/",
        "/100k.bin",
        "/dir",
        "/dir?x=1",
        "/dir/",
        "/empty/",
        "/noindex/",
        "/nope",
        "/.hidden",
        "/favicon.ico",
        "/../secret",
        "/%00",
        "*",
    ]
    .iter()
    .map(|p| request("GET", p, &[]))
    .collect();
    for headers in [
        &["Range: bytes=0-9"][..],
        &["Range: bytes=0-1,50000-50009"],
        &["Range: bytes=999999-"],
        &["If-None-Match: *"],
        &["If-Match: \"nope\""],
    ] {
        reqs.push(request("GET", "/100k.bin", headers));
    }
    reqs.push(request("HEAD", "/100k.bin", &[]));
    reqs.push(request("OPTIONS", "*", &[]));
    reqs.push(request("DELETE", "/", &[]));
    reqs.push("GET / HTTP/1.0\r\n\r\n".into());
    reqs.push("GARBAGE\r\n\r\n".into());
    reqs
}

/// Status line, headers in order without Date, and body.
type Answer = (String, Vec<(String, String)>, Vec<u8>);

#[test]
fn every_mode_answers_alike() {
    let fixture = Fixture::new();
    let mut reference: Option<(&str, Vec<Answer>)> = None;
    let mut compared = 0;
    for ctx in for_each_mode!(mode_list) {
        if let Some(why) = ctx.unsupported() {
            assert!(
                !uring_required(),
                "{}: RINGSERVE_REQUIRE_URING=1 but {why}",
                ctx.name
            );
            eprintln!(
                "skipped: {}: {why}; nothing to compare this mode with",
                ctx.name
            );
            continue;
        }
        let srv = ctx.serve(fixture.root(), |c| {
            c.enable_listing().cache_control("public, max-age=60")
        });
        let answers: Vec<Answer> = requests()
            .iter()
            .map(|raw| {
                let r = srv.request(raw);
                let headers = r
                    .headers
                    .iter()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
                    .cloned()
                    .collect();
                (r.status_line, headers, r.body)
            })
            .collect();
        match &reference {
            None => reference = Some((ctx.name, answers)),
            Some((first, expected)) => {
                compared += 1;
                assert_eq!(expected.len(), answers.len());
                for ((raw, want), got) in requests().iter().zip(expected).zip(&answers) {
                    assert!(
                        want == got,
                        "{raw:?}: {first} and {} differ:\n{want:#?}\n{got:#?}",
                        ctx.name
                    );
                }
            }
        }
    }
    // Where both modes run, they were compared: the test never passes having compared nothing.
    if uring_required() {
        assert_eq!(
            compared, 1,
            "the second mode was not compared with the first"
        );
    }
}
