//! Many connections at once, clients that go silent half-way, and clients that reset in the
//! middle of a large body: the server must go on serving everyone else.

use crate::common::*;
use std::io::Read;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const ONE_MIB: usize = 1 << 20;

each_mode! {
    fn five_hundred_simultaneous_connects_are_all_served(ctx) {
        let srv = ctx.start();
        let addr = srv.addr;
        const THREADS: usize = 10;
        const PER_THREAD: usize = 50;
        // Every connection is open before any request is sent: the listeners see a burst of
        // 500 connects.
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let mut conns: Vec<Conn> = (0..PER_THREAD).map(|_| Conn::connect(addr)).collect();
                    barrier.wait();
                    for c in &mut conns {
                        c.send(b"GET /128b.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                    }
                    let mut ok = 0;
                    for c in &mut conns {
                        let r = c.read_response(false);
                        ok += usize::from(r.status == 200 && r.body == small_bin());
                    }
                    ok
                })
            })
            .collect();
        let served: usize = workers.into_iter().map(|w| w.join().expect("client thread")).sum();
        assert_eq!(served, THREADS * PER_THREAD);
    }

    fn silent_half_requests_time_out_while_others_are_served(ctx) {
        let srv = ctx.start_with(|c| c.header_timeout(Duration::from_secs(1)));
        let started = Instant::now();
        let mut silent: Vec<Conn> = (0..50)
            .map(|_| {
                let mut c = srv.conn();
                c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: hal");
                c
            })
            .collect();
        // Meanwhile, a keep-alive client is answered at once, again and again.
        let mut busy = srv.conn();
        for _ in 0..20 {
            busy.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(busy.read_response(false).body_str(), STYLE_CSS);
        }
        assert!(started.elapsed() < Duration::from_millis(900), "others were held up");
        for c in &mut silent {
            let r = c.read_response(false);
            assert_eq!(r.status, 408);
            assert!(c.wait_closed(IO_TIMEOUT), "silent connection not closed");
        }
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    fn client_reset_in_the_middle_of_a_large_body(ctx) {
        let fixture = Fixture::new();
        let body = pattern(ONE_MIB);
        fixture.write("1m.bin", &body);
        let srv = ctx.serve(fixture.root(), |c| c);
        // A keep-alive client that is mid-conversation throughout.
        let mut steady = srv.conn();
        for round in 0..20 {
            let mut c = srv.conn();
            c.send(b"GET /1m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut some = vec![0u8; 64 * 1024];
            c.stream.read_exact(&mut some).expect("first 64 KiB");
            reset(c.stream);
            steady.send(b"GET /128b.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            let r = steady.read_response(false);
            assert_eq!((r.status, r.body == small_bin()), (200, true), "round {round}");
        }
        let r = srv.get("/1m.bin");
        assert_eq!(r.status, 200);
        assert!(r.body == body, "1 MiB body differs after the resets");
    }
}

each_mode! {
    fn a_thousand_requests_on_one_connection(ctx) {
        // More response bytes than any output buffer holds, one request at a time.
        let srv = ctx.start();
        let mut c = srv.conn();
        for i in 0..1000 {
            c.send(b"GET /128b.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            let r = c.read_response(false);
            assert_eq!((r.status, r.body == small_bin()), (200, true), "request {i}");
        }
    }

    fn a_pipelined_burst_larger_than_the_output_buffer(ctx) {
        // 400 pipelined requests in one write: ~160 KiB of answers, in order.
        let srv = ctx.start();
        let mut c = srv.conn();
        let mut burst = Vec::new();
        for i in 0..400 {
            let path = if i % 2 == 0 { "/128b.bin" } else { "/style.css" };
            burst.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        c.send(&burst);
        for i in 0..400 {
            let r = c.read_response(false);
            assert_eq!(r.status, 200, "response {i}");
            if i % 2 == 0 {
                assert!(r.body == small_bin(), "response {i}");
            } else {
                assert_eq!(r.body_str(), STYLE_CSS, "response {i}");
            }
        }
    }
}

each_mode! {
    fn pipelined_cached_bodies_to_a_slow_reader(ctx) {
        // Bodies the uring mode keeps in memory and gathers with their heads (12 KiB), and
        // bodies it sends with sendfile (60 KiB), many per write, to a client that reads
        // late: sends come back partial and must resume exactly.
        for (name, len) in [("12k.bin", 12 * 1024), ("60k.bin", 60 * 1024)] {
            let fixture = Fixture::new();
            let body = pattern(len);
            fixture.write(name, &body);
            let srv = ctx.serve(fixture.root(), |c| c);
            // Warm the cache (each worker), then the burst.
            for _ in 0..4 {
                assert_eq!(srv.get(&format!("/{name}")).body, body);
            }
            let mut c = srv.conn();
            let mut burst = Vec::new();
            for i in 0..30 {
                let range = if i % 3 == 1 { "Range: bytes=1000-9999\r\n" } else { "" };
                burst.extend_from_slice(
                    format!("GET /{name} HTTP/1.1\r\nHost: x\r\n{range}\r\n").as_bytes(),
                );
            }
            c.send(&burst);
            // Read nothing until the server has begun answering: its output piles up.
            c.wait_readable();
            for i in 0..30 {
                let r = c.read_response(false);
                if i % 3 == 1 {
                    assert_eq!(r.status, 206, "{name} response {i}");
                    assert!(r.body == body[1000..10000], "{name} response {i}: range differs");
                } else {
                    assert_eq!(r.status, 200, "{name} response {i}");
                    assert!(r.body == body, "{name} response {i}: body differs");
                }
            }
        }
    }
}
