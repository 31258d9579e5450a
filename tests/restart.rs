//! Restart on the same address always works (issue 10, item 4): a server that was killed
//! (SIGKILL) or told to stop at once (two SIGTERMs), idle or with connections open and a
//! response in flight, is replaced by a new `ringserve` on the same fixed port started the
//! moment the old process is gone — 100 of 100 times per mode.
//!
//! Per mode, 100 restarts in a chain (each new server is the next one stopped), split evenly
//! between the four ways to go, in turn: SIGKILL idle, SIGKILL with connections,
//! double SIGTERM idle, double SIGTERM with connections. "With connections" means an idle
//! keep-alive connection, one that sent half a head, and a slow reader of a 16 MiB file whose
//! response fills the socket buffers (so the server is in the middle of sending it).
//!
//! Before the fix, a uring server's listeners outlived its process while the kernel tore its
//! rings down, and about half the immediate restarts failed with "address already in use".

#[path = "support/child.rs"]
mod child;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{self, Command};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Restarts per mode (each of the four ways a quarter of them).
const RESTARTS: usize = 100;
/// The body a slow reader leaves unread: far more than loopback socket buffers hold.
const LARGE: usize = 16 << 20;

#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    DoubleTerm,
}

#[derive(Clone, Copy, Debug)]
enum Load {
    Idle,
    InFlight,
}

/// A running `ringserve`, killed on drop; its stderr lines arrive on a channel.
struct Server {
    child: process::Child,
    stderr: child::Stderr,
}

impl Server {
    fn start(mode: &str, addr: SocketAddr, root: &Path) -> Server {
        let (child, stderr) = child::spawn(
            Command::new(env!("CARGO_BIN_EXE_ringserve"))
                .args(["--mode", mode, "--listen", &addr.to_string()])
                .arg(root),
        );
        Server { child, stderr }
    }

    /// Waits (bounded) for a stderr line starting with `prefix`; all lines seen otherwise.
    fn line(&self, prefix: &str) -> Result<String, Vec<String>> {
        self.stderr.line(prefix, TIMEOUT)
    }

    fn signal(&self, signal: libc::c_int) {
        child::signal(&self.child, signal);
    }

    /// Stops the server the given way and waits (bounded) until the process is gone.
    fn stop(mut self, how: Stop) {
        match how {
            Stop::Kill => self.signal(libc::SIGKILL),
            Stop::DoubleTerm => {
                self.signal(libc::SIGTERM);
                // The second signal only counts once the first was taken (two pending
                // SIGTERMs are one): wait for the server to say it received it.
                self.line("ringserve: Terminate received")
                    .expect("the first SIGTERM acknowledged");
                self.signal(libc::SIGTERM);
            }
        }
        child::wait_exit(&mut self.child, TIMEOUT);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        child::reap(&mut self.child);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// The status line and body of `GET path` on a fresh connection (`Connection: close`).
fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read reply");
    reply
}

/// Connections left open while the server is stopped: an idle keep-alive one, half a head,
/// and a slow reader in the middle of a large body.
fn open_connections(addr: SocketAddr) -> Vec<TcpStream> {
    let mut idle = connect(addr);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut half = connect(addr);
    half.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut slow = connect(addr);
    slow.write_all(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut some = [0u8; 64 << 10];
    slow.read_exact(&mut some).unwrap();
    vec![idle, half, slow]
}

/// A port nobody uses right now: bound on port 0, then released.
fn free_port() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn restart_chain(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("index.html"), "<p>again</p>\n").unwrap();
    std::fs::write(root.join("large.bin"), vec![b'x'; LARGE]).unwrap();
    let addr = free_port();
    let ways = [
        (Stop::Kill, Load::Idle),
        (Stop::Kill, Load::InFlight),
        (Stop::DoubleTerm, Load::Idle),
        (Stop::DoubleTerm, Load::InFlight),
    ];
    let mut server = Server::start(mode, addr, root);
    server.line("ringserve: serving ").expect("first start");
    let mut restarted = 0;
    let mut failures = Vec::new();
    for i in 0..RESTARTS {
        let (stop, load) = ways[i % ways.len()];
        let clients = match load {
            Load::Idle => Vec::new(),
            Load::InFlight => open_connections(addr),
        };
        server.stop(stop);
        // At once: no pause between the old process's end and the new one's start.
        server = Server::start(mode, addr, root);
        match server.line("ringserve: serving ") {
            Ok(_) => {
                let reply = get(addr, "/");
                assert!(
                    reply.starts_with(b"HTTP/1.1 200 OK\r\n") && reply.ends_with(b"<p>again</p>\n"),
                    "{mode} restart {i}: {:?}",
                    String::from_utf8_lossy(&reply)
                );
                restarted += 1;
            }
            Err(lines) => {
                failures.push(format!("restart {i} after {stop:?}/{load:?}: {lines:?}"));
                break;
            }
        }
        drop(clients);
    }
    assert_eq!(
        restarted, RESTARTS,
        "{mode}: {restarted} of {RESTARTS} restarts; failures: {failures:?}"
    );
    drop(server);
}

#[test]
fn uring_restarts_at_once_on_the_same_port() {
    restart_chain("uring");
}

#[test]
fn threaded_restarts_at_once_on_the_same_port() {
    restart_chain("threaded");
}
