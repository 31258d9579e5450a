//! Timeouts, the connection limit, graceful shutdown, the access log and the library surface.

use crate::common::*;
use ringserve::AccessLog;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

each_mode! {
    fn slow_header_gets_408_and_close(ctx) {
        let srv = ctx.start_with(|c| {
            c.header_timeout(Duration::from_secs(1)).idle_timeout(Duration::from_secs(1))
        });
        let mut slow = srv.conn();
        let started = Instant::now();
        slow.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n");
        // Meanwhile, other connections are served.
        let r = srv.get("/style.css");
        assert_eq!(r.body_str(), STYLE_CSS);
        let r = slow.read_response(false);
        let waited = started.elapsed();
        assert_eq!(r.status_line, "HTTP/1.1 408 Request Timeout");
        r.assert_common_headers();
        assert!(r.closes());
        assert!(slow.wait_closed(IO_TIMEOUT), "not closed after 408");
        // Well after a 1 s timeout would have elapsed, yet far from instant.
        assert!(waited >= Duration::from_millis(500), "408 after only {waited:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    }

    fn idle_keep_alive_connection_is_closed(ctx) {
        let srv = ctx.start_with(|c| {
            c.header_timeout(Duration::from_secs(1)).idle_timeout(Duration::from_secs(1))
        });
        let mut idle = srv.conn();
        idle.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(idle.read_response(false).status, 200);
        let started = Instant::now();
        // Another connection is served while this one idles.
        assert_eq!(srv.get("/style.css").status, 200);
        assert!(idle.wait_closed(Duration::from_secs(5)), "idle connection still open after 5 s");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500), "closed after only {waited:?}");
    }

    /// Busy connections (each in the middle of its next head, so none can be reclaimed) fill
    /// the cap: a new one gets 503.
    fn over_max_conns_gets_503(ctx) {
        let srv = ctx.start_with(|c| c.max_conns(2));
        let mut first = srv.conn();
        let mut second = srv.conn();
        for conn in [&mut first, &mut second] {
            // One write: the partial second head arrives with the first request, so once the
            // answer is read the server holds it.
            conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\n");
            assert_eq!(conn.read_response(false).status, 200);
        }
        let mut third = srv.conn();
        third.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = third.read_response(false);
        assert_eq!(r.status_line, "HTTP/1.1 503 Service Unavailable");
        r.assert_common_headers();
        assert!(r.header("retry-after").is_some(), "{:#?}", r.headers);
        assert!(third.wait_closed(IO_TIMEOUT), "503 connection left open");
        drop(first);
        drop(second);
        // The server notices the closes asynchronously: retry for up to 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = srv.get("/index.html");
            if r.status == 200 {
                assert_eq!(r.body_str(), INDEX_HTML);
                break;
            }
            assert_eq!(r.status, 503);
            assert!(Instant::now() < deadline, "still 503 5 s after the slots freed");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// At the cap an idle connection makes room: the longest idle is closed, the new client
    /// served (one worker: each uring worker reclaims among its own connections).
    fn at_max_conns_the_longest_idle_connection_makes_room(ctx) {
        let srv = ctx.start_with(|c| c.max_conns(2).workers(1));
        let mut oldest = srv.conn();
        oldest.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(oldest.read_response(false).status, 200);
        let mut newer = srv.conn();
        newer.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(newer.read_response(false).status, 200);
        let r = srv.get("/style.css");
        assert_eq!(r.status, 200, "{}", r.status_line);
        assert!(oldest.wait_closed(IO_TIMEOUT), "the longest idle connection was not closed");
        newer.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(newer.read_response(false).status, 200, "the newer idle one was closed instead");
    }

    fn graceful_shutdown_finishes_in_flight_response(ctx) {
        let mut srv = ctx.start();
        let addr = srv.addr;
        let mut conn = srv.conn();
        conn.send(b"GET /100k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        // Wait for the first bytes, so the request is surely in flight.
        let mut first = [0u8; 12];
        conn.stream.read_exact(&mut first).expect("first bytes");
        assert_eq!(&first, b"HTTP/1.1 200");
        srv.shutdown();
        let mut rest = first.to_vec();
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read after shutdown: {e} with {} bytes", rest.len()),
            }
            assert!(Instant::now() < deadline, "response not finished in 5 s");
        }
        let (r, used) = Response::parse(&rest, false, true).unwrap().expect("whole response");
        assert_eq!(r.status, 200);
        assert!(r.body == big_bin(), "in-flight body differs");
        assert_eq!(used, rest.len(), "bytes after the response");
        assert!(srv.join_within(Duration::from_secs(10)), "join did not return");
        let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(refused.is_err(), "a new connection was accepted after shutdown");
    }

    fn access_log_has_combined_format_line(ctx) {
        let logs = tempfile::tempdir().unwrap();
        let path = logs.path().join("access.log");
        let log_path = path.clone();
        let srv = ctx.start_with(move |c| c.access_log(AccessLog::File(log_path)));
        let before = SystemTime::now();
        let r = srv.get_with(
            "/index.html",
            &["Referer: http://example.test/page", "User-Agent: ringserve-tests/1.0"],
        );
        assert_eq!(r.status, 200);
        let _ = srv.get("/nope");
        let deadline = Instant::now() + Duration::from_secs(2);
        let line = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("GET /index.html")) {
                break line.to_string();
            }
            assert!(Instant::now() < deadline, "no log line in 2 s; log: {text:?}");
            thread::sleep(Duration::from_millis(50));
        };
        check_combined_line(&line, before, &r);
    }

    fn port_zero_gives_a_real_port(ctx) {
        let srv = ctx.start();
        assert_ne!(srv.addr.port(), 0);
        assert!(srv.addr.ip().is_loopback());
        assert_eq!(srv.get("/").status, 200);
    }

    fn ipv6_loopback_serves(ctx) {
        let v6: std::net::SocketAddr = "[::1]:0".parse().unwrap();
        // Reserve a port on [::1], then free it for the server.
        let v6 = match TcpListener::bind(v6) {
            Ok(l) => l.local_addr().unwrap(),
            Err(e) => {
                eprintln!("skipped: ipv6_loopback_serves: this machine has no [::1] ({e})");
                return;
            }
        };
        let srv = ctx.start_with(|c| c.listen(v6));
        let mut conn = Conn::connect(v6);
        conn.send(b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200, "via {v6}");
        assert_eq!(r.body_str(), INDEX_HTML);
        drop(srv);
    }

    fn two_listen_addresses_both_serve(ctx) {
        // Reserve a port for the second listener, then free it for the server.
        let second = TcpListener::bind(loopback0()).unwrap().local_addr().unwrap();
        let srv = ctx.start_with(|c| c.listen(second));
        assert_ne!(srv.addr, second);
        for addr in [srv.addr, second] {
            let mut conn = Conn::connect(addr);
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let r = conn.read_response(false);
            assert_eq!(r.status, 200, "via {addr}");
            assert_eq!(r.body_str(), INDEX_HTML);
        }
    }
}

/// `127.0.0.1 - - [dd/Mon/yyyy:HH:MM:SS +0000] "GET /index.html HTTP/1.1" 200 N "ref" "ua" µs`
fn check_combined_line(line: &str, before: SystemTime, response: &Response) {
    let rest = line
        .strip_prefix("127.0.0.1 - - [")
        .unwrap_or_else(|| panic!("prefix of {line:?}"));
    let (time, rest) = rest
        .split_once("] ")
        .unwrap_or_else(|| panic!("time in {line:?}"));
    let stamp = time
        .strip_suffix(" +0000")
        .unwrap_or_else(|| panic!("zone in {line:?}"));
    let after = SystemTime::now();
    let possible: Vec<String> = (0..=after.duration_since(before).unwrap().as_secs() + 1)
        .map(|s| format_clf_time(before + Duration::from_secs(s)))
        .collect();
    assert!(
        possible.iter().any(|p| p == stamp),
        "time {stamp:?} not in {possible:?}"
    );
    let rest = rest
        .strip_prefix("\"GET /index.html HTTP/1.1\" 200 ")
        .unwrap_or_else(|| panic!("request and status in {line:?}"));
    let (bytes, rest) = rest.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    // The combined format logs the body size; a server that counts the head too is also fine.
    let bytes: usize = bytes
        .parse()
        .unwrap_or_else(|_| panic!("bytes in {line:?}"));
    assert!(
        bytes == response.body.len() || bytes == response.raw_len,
        "bytes {bytes} in {line:?}: body {}, whole response {}",
        response.body.len(),
        response.raw_len
    );
    let rest = rest
        .strip_prefix("\"http://example.test/page\" \"ringserve-tests/1.0\" ")
        .unwrap_or_else(|| panic!("referer and user agent in {line:?}"));
    let micros: u64 = rest
        .parse()
        .unwrap_or_else(|_| panic!("duration in {line:?}"));
    assert!(micros < 5_000_000, "{micros} µs");
}
