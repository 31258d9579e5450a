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

#[test]
fn every_mode_answers_alike() {
    let fixture = Fixture::new();
    assert_modes_answer_alike(&requests(), |ctx| {
        ctx.serve(fixture.root(), |c| {
            c.enable_listing().cache_control("public, max-age=60")
        })
    });
}
