//! Hostile load on the connection cap: idle floods and slow heads must not lock out a new
//! client. At the cap the server closes connections that owe nothing (idle between requests,
//! or connected without a byte), longest idle first; a client in the middle of a head keeps
//! its slot until the header timeout.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Connections of the idle flood, and of the slow heads.
const FLOOD: usize = 10_000;
const SLOWLORIS: usize = 200;
/// Below the flood, so the flood reaches it.
const CAP: usize = 1_000;
const FRESH: usize = 100;

/// One flood at a time in this test process: the client sockets and the server's share one
/// descriptor limit.
static ONE_FLOOD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Raises this process's soft descriptor limit to at least `needed` (the hard limit too, where
/// that is allowed): the flood's client sockets and the server's live in this one process.
fn raise_nofile(needed: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= needed {
        return;
    }
    let want = libc::rlimit {
        rlim_cur: needed.max(lim.rlim_cur),
        rlim_max: needed.max(lim.rlim_max),
    };
    // SAFETY: as above. Raising the hard limit needs CAP_SYS_RESOURCE; the soft one up to the
    // hard one is always allowed.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0;
    assert!(
        raised || lim.rlim_max >= needed,
        "this test needs {needed} descriptors; the hard limit is {} and cannot be raised",
        lim.rlim_max
    );
    if !raised {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// Polls the server's accept counter until it reaches `n` (bounded).
fn wait_accepted(srv: &TestServer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.stats().accepted_total() < n {
        assert!(
            Instant::now() < deadline,
            "the server accepted fewer than {n} in 20 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

each_mode! {
    fn an_idle_flood_and_slow_heads_do_not_lock_out_a_fresh_client(ctx) {
        let _one = ONE_FLOOD.lock().unwrap_or_else(|p| p.into_inner());
        raise_nofile((FLOOD + SLOWLORIS + 2 * CAP + 2_000) as u64);
        // Without TCP_DEFER_ACCEPT: the silent half must reach the server and hold slots (as
        // it would after the defer period, or on a socket systemd passes without
        // DeferAcceptSec=), and each batch is waited for below.
        let srv = ctx.start_with(|c| {
            c.defer_accept(0)
                .max_conns(CAP)
                .header_timeout(Duration::from_secs(60))
                .idle_timeout(Duration::from_secs(60))
        });
        // The flood: half connect and send nothing, half send one request and never read
        // the answer (idle between requests once it is sent).
        let t0 = Instant::now();
        let mut flood = Vec::with_capacity(FLOOD);
        for i in 0..FLOOD {
            let mut s = TcpStream::connect(srv.addr).expect("flood connect");
            if i % 2 == 1 {
                s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").expect("flood request");
            }
            flood.push(s);
            // Keep the listen backlog from overflowing (a dropped SYN costs the client a 1 s
            // retransmission): every few connections, wait until the server has accepted them.
            if i % 64 == 63 {
                wait_accepted(&srv, (i + 1) as u64);
            }
        }
        eprintln!("flood of {FLOOD} open after {:?}", t0.elapsed());
        // Slow heads, begun after the flood: they are the newest connections, and once their
        // first bytes are in they are not reclaimable.
        let mut slow: Vec<Conn> = (0..SLOWLORIS).map(|_| srv.conn()).collect();
        wait_accepted(&srv, (FLOOD + SLOWLORIS) as u64);
        for c in &mut slow {
            c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n");
        }
        for c in &mut slow {
            c.send(b"X-Trickle: 1\r\n");
        }
        // Fresh clients, one after another, each a new connection.
        let mut took = Vec::with_capacity(FRESH);
        for _ in 0..FRESH {
            let started = Instant::now();
            let r = srv.get("/index.html");
            took.push(started.elapsed());
            assert_eq!(r.status, 200, "a fresh client was refused: {:?}", r.status_line);
        }
        // Nobody was refused: every newcomer found an idle connection to replace.
        let mut text = Vec::new();
        srv.stats().render_prometheus(&mut text);
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains("\nringserve_requests_total{class=\"5xx\"} 0\n"),
            "503s were sent: {text}"
        );
        took.sort();
        eprintln!(
            "fresh clients at the cap ({} mode): p50 {:?}, p99 {:?}, max {:?}",
            ctx.mode(),
            took[FRESH / 2],
            took[FRESH * 99 / 100],
            took[FRESH - 1]
        );
        // The slow heads kept their slots: finishing the head gets the page.
        for c in &mut slow {
            c.send(b"\r\n");
            let r = c.read_response(false);
            assert_eq!(r.status, 200);
            assert_eq!(r.body_str(), INDEX_HTML);
        }
        // The flood paid: its oldest connections were closed (EOF after any answer, or a
        // reset), not left holding slots.
        let mut closed = 0;
        for s in flood.iter_mut().take(100) {
            s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let mut buf = [0u8; 4096];
            for _ in 0..100 {
                match s.read(&mut buf) {
                    Ok(0) => {
                        closed += 1;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        closed += 1;
                        break;
                    }
                    Err(_) => break, // still open: timed out
                }
            }
        }
        assert!(closed > 50, "only {closed} of the oldest 100 flood connections were closed");
    }
}
