//! Connection management: keep-alive, `Connection: close`, HTTP/1.0, pipelining, split reads.

use crate::common::*;
use std::time::Duration;

each_mode! {
    fn keep_alive_serves_two_requests(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        let first = conn.read_response(false);
        assert_eq!(first.status, 200);
        assert!(!first.closes(), "{:#?}", first.headers);
        assert_eq!(first.body_str(), INDEX_HTML);
        conn.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
        let second = conn.read_response(false);
        assert_eq!(second.status, 200);
        assert_eq!(second.body_str(), STYLE_CSS);
        conn.assert_open(Duration::from_millis(200));
    }

    fn connection_close_is_honoured(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200);
        assert!(r.closes(), "no Connection: close in {:#?}", r.headers);
        assert_eq!(r.body_str(), INDEX_HTML);
        conn.assert_closed();
    }

    fn http10_closes_by_default(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"GET /index.html HTTP/1.0\r\n\r\n");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), INDEX_HTML);
        assert!(
            !r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "{:#?}",
            r.headers
        );
        conn.assert_closed();
    }

    fn http10_keep_alive_is_opt_in(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(b"GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200);
        assert!(
            r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "{:#?}",
            r.headers
        );
        assert_eq!(r.body_str(), INDEX_HTML);
        conn.assert_open(Duration::from_millis(200));
        conn.send(b"GET /style.css HTTP/1.0\r\n\r\n");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), STYLE_CSS);
        conn.assert_closed();
    }

    fn pipelined_requests_answered_in_order(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(
            b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /128b.bin HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let rs = conn.read_responses(3);
        assert!(rs.iter().all(|r| r.status == 200), "{rs:#?}");
        assert_eq!(rs[0].body_str(), STYLE_CSS);
        assert_eq!(rs[1].body, small_bin());
        assert_eq!(rs[2].body_str(), DIR_INDEX_HTML);
        conn.assert_open(Duration::from_millis(100));
    }

    fn pipelined_head_and_get_mixed(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(
            b"HEAD /100k.bin HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let head = conn.read_response(true);
        assert_eq!(head.status, 200);
        assert_eq!(head.must("content-length"), BIG_LEN.to_string());
        let get = conn.read_response(false);
        assert_eq!(get.body_str(), INDEX_HTML);
        conn.assert_closed();
    }

    fn pipelined_after_a_large_file(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.send(
            b"GET /100k.bin HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /100k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n",
        );
        let rs = conn.read_responses(3);
        assert!(rs[0].body == big_bin(), "first body differs");
        assert_eq!(rs[1].body_str(), INDEX_HTML);
        assert_eq!(rs[2].status, 206);
        assert_eq!(rs[2].body[..], big_bin()[BIG_LEN - 3..]);
        conn.assert_closed();
    }

    fn concurrent_keep_alive_clients(ctx) {
        let srv = ctx.start();
        let big = big_bin();
        std::thread::scope(|s| {
            for client in 0..8 {
                let (srv, big) = (&srv, &big);
                s.spawn(move || {
                    let mut conn = srv.conn();
                    for i in 0..25 {
                        let path = ["/index.html", "/100k.bin", "/style.css"][(client + i) % 3];
                        conn.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
                        let r = conn.read_response(false);
                        assert_eq!(r.status, 200, "client {client} request {i}");
                        match path {
                            "/index.html" => assert_eq!(r.body_str(), INDEX_HTML),
                            "/style.css" => assert_eq!(r.body_str(), STYLE_CSS),
                            _ => assert!(r.body == *big, "client {client}: big body differs"),
                        }
                    }
                });
            }
        });
    }

    fn slow_reader_gets_a_large_file_intact(ctx) {
        // Larger than the socket buffers, so the server must cope with partial writes.
        let len = 3 * 1024 * 1024 + 17;
        let fixture = Fixture::new();
        fixture.write("3m.bin", &pattern(len));
        let srv = ctx.serve(fixture.root(), |c| c);
        let mut conn = srv.conn();
        conn.send(
            b"GET /3m.bin HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        conn.wait_readable(); // the server fills the socket buffers before we read
        let mut raw = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        for _ in 0..10_000 {
            match std::io::Read::read(&mut conn.stream, &mut chunk) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read after {} bytes: {e}", raw.len()),
            }
            if raw.len() < len / 2 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let (big, used) = Response::parse(&raw, false, false).unwrap().expect("first response");
        assert_eq!(big.status, 200);
        assert!(big.body == pattern(len), "large body differs");
        let (next, _) = Response::parse(&raw[used..], false, true).unwrap().expect("second");
        assert_eq!(next.body_str(), INDEX_HTML);
    }

    /// A client that stops reading cannot hold a connection: once nothing has moved for the
    /// idle timeout, the server cuts it, whatever is left to send.
    fn a_client_that_stops_reading_is_cut_after_the_idle_timeout(ctx) {
        // Far larger than the loopback socket buffers can hold.
        let len = 32 * 1024 * 1024;
        let fixture = Fixture::new();
        fixture.write("32m.bin", &pattern(len));
        let srv = ctx.serve(fixture.root(), |c| c.idle_timeout(Duration::from_secs(1)));
        let mut conn = srv.conn();
        conn.send(b"GET /32m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.wait_readable();
        // Read nothing more: the server's sends stall. Then drain what reached us, bounded.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut got = 0usize;
        let mut chunk = vec![0u8; 256 * 1024];
        let mut waited = false;
        let ended = loop {
            if !waited {
                // Give the server its idle timeout and more without reading a byte.
                conn.stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut probe = [0u8; 1];
                // Blocks only if nothing is buffered; normally returns at once.
                let _ = conn.stream.peek(&mut probe);
                std::thread::sleep(Duration::from_secs(3)); // the stall itself is the test
                waited = true;
                conn.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            }
            match std::io::Read::read(&mut conn.stream, &mut chunk) {
                Ok(0) => break true,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(e) => panic!("after {got} bytes: {e}"),
            }
            assert!(std::time::Instant::now() < deadline, "still open after {got} bytes");
        };
        assert!(ended);
        assert!(got < len, "the whole body arrived: the stall was not noticed");
        // The server is fine.
        assert_eq!(srv.get("/index.html").status, 200);
    }

    fn request_dribbled_one_byte_at_a_time(ctx) {
        let srv = ctx.start();
        let mut conn = srv.conn();
        conn.dribble(
            b"GET /dir/index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\n\r\n",
            Duration::from_millis(2),
        );
        let r = conn.read_response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), DIR_INDEX_HTML);
    }

    fn a_silent_connection_is_handed_over_only_when_it_speaks(ctx) {
        // 5 s of TCP_DEFER_ACCEPT: far longer than the rest of the test takes.
        let srv = ctx.start_with(|c| c.defer_accept(5));
        let mut silent = srv.conn();
        let busy = srv.get("/index.html");
        assert_eq!(busy.status, 200);
        assert_eq!(
            srv.stats().accepted_total(),
            1,
            "a connection that sent nothing was handed to the server"
        );
        // Its first bytes hand it over, with them.
        silent.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = silent.read_response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), STYLE_CSS);
        assert_eq!(srv.stats().accepted_total(), 2);
    }

    fn a_connection_that_never_speaks_is_handed_over_and_timed_out(ctx) {
        // The kernel hands it over after the defer period (1 s, when it resends the SYN-ACK and
        // the client acknowledges it again), and the header timeout runs from there: closed
        // without a byte, as any connection that sent nothing is.
        let srv = ctx.start_with(|c| c.defer_accept(1).header_timeout(Duration::from_secs(1)));
        let mut silent = srv.conn();
        assert!(silent.wait_closed(4 * IO_TIMEOUT), "never handed over and timed out");
        assert!(silent.unparsed().is_empty());
        assert_eq!(srv.stats().accepted_total(), 1);
    }

    fn without_defer_accept_a_silent_connection_is_handed_over_at_once(ctx) {
        let srv = ctx.start_with(|c| c.defer_accept(0));
        let _silent = srv.conn();
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while srv.stats().accepted_total() < 1 {
            assert!(std::time::Instant::now() < deadline, "not accepted within {IO_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
