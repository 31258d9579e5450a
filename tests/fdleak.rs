//! No descriptor leaks: after 10,000 connections opened and closed in every way a client can
//! close them, the process holds exactly the sockets it held before, and no file descriptors
//! beyond what the per-worker file caches keep open (bounded: one per large file per worker,
//! and each worker's root directory).
//!
//! A test binary of its own with a single test, so that `/proc/self/fd` counts only this
//! server's descriptors and this test's sockets (no other test runs in the process).

#[allow(unused_macros)]
mod common;

use common::*;
use ringserve::Mode;
use std::io::Read;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 10_000;

/// Descriptors of this process: (sockets, files under `root`, everything).
fn open_fds(root: &std::path::Path) -> (usize, usize, usize) {
    let (mut sockets, mut files, mut all) = (0, 0, 0);
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        all += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_string_lossy().starts_with("socket:") {
            sockets += 1;
        } else if target.starts_with(root) {
            files += 1;
        }
    }
    (sockets, files, all)
}

fn churn(mode_fn: fn() -> Mode) {
    let ctx = Ctx::named("fdleak", mode_fn);
    let mode = mode_fn();
    if let Some(why) = ctx.unsupported() {
        assert!(
            !common::uring_required(),
            "fdleak {mode}: RINGSERVE_REQUIRE_URING=1 but {why}"
        );
        eprintln!("skipped: fdleak {mode}: {why}");
        return;
    }
    let fixture = Fixture::new();
    fixture.write("1m.bin", &pattern(1 << 20));
    let srv = ctx.serve(fixture.root(), |c| c.max_conns(20_000));
    // Warm up every path once (thread stacks, caches, pools), then take the baseline.
    for path in ["/128b.bin", "/100k.bin", "/1m.bin", "/nope"] {
        assert!(srv.get(path).status < 500);
    }
    let root = std::fs::canonicalize(fixture.root()).expect("canonical root");
    // The warm-up's server sides close asynchronously: wait until the count holds still.
    let settle_until = Instant::now() + Duration::from_secs(5);
    let mut baseline = open_fds(&root);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let again = open_fds(&root);
        if again == baseline || Instant::now() > settle_until {
            break;
        }
        baseline = again;
    }
    let (sockets_before, _, all_before) = baseline;
    for i in 0..CONNECTIONS {
        let mut c = srv.conn();
        match i % 5 {
            // Keep-alive request, then the client closes.
            0 => {
                c.send(b"GET /128b.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                assert_eq!(c.read_response(false).status, 200);
            }
            // The server closes (Connection: close).
            1 => {
                c.send(b"GET /128b.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                assert_eq!(c.read_response(false).status, 200);
                assert!(
                    c.wait_closed(IO_TIMEOUT),
                    "connection {i} not closed by the server"
                );
            }
            // Connect and leave without a word.
            2 => {}
            // A bad request: 400, lingering close.
            3 => {
                c.send(b"BAD\r\n\r\n");
                assert_eq!(c.read_response(false).status, 400);
            }
            // Reset in the middle of a large body.
            _ => {
                c.send(b"GET /1m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut some = [0u8; 4096];
                c.stream.read_exact(&mut some).expect("first bytes");
                reset(c.stream.try_clone().expect("clone"));
            }
        }
    }
    // The server closes its side asynchronously; give it a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now_open = open_fds(&root);
    while now_open.0 != sockets_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now_open = open_fds(&root);
    }
    let (sockets, files, all) = now_open;
    assert_eq!(
        sockets, sockets_before,
        "{mode}: sockets before and after {CONNECTIONS} connections"
    );
    // Besides sockets, only the per-worker file caches may hold descriptors: at most one per
    // file larger than what they keep in memory (100k.bin and 1m.bin) per worker, plus the
    // root directory each worker's cache watches (issue 11) and the one opened at start.
    assert!(
        files <= 2 * 2 + 2 + 1,
        "{mode}: {files} descriptors of served files still open"
    );
    assert!(
        all <= all_before + 2 * 2 + 2,
        "{mode}: {all} descriptors, {all_before} before"
    );
    // And the server still serves.
    assert_eq!(srv.get("/128b.bin").body, small_bin());
}

#[test]
fn ten_thousand_connections_leak_no_descriptor() {
    churn(|| Mode::Uring);
    churn(|| Mode::Threaded);
}
