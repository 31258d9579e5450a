//! Log rotation with the real binary, in both modes (issue 14, item 6): `mv access.log
//! access.log.1; kill -USR1 PID`, and once the server says `access log reopened`, every later
//! line is in the new `access.log`. No line is lost, duplicated or split between the files,
//! also with requests in flight while the signal arrives.
//!
//! A line is written once the response has been handed to the kernel, so a client can see its
//! answer a moment before the line is written: the tests wait (bounded) for the lines they
//! expect before moving the file, and count both files in the end.

#[path = "support/child.rs"]
mod child;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `ringserve` with an access log file, killed on drop.
struct Server {
    child: process::Child,
    stderr: child::Stderr,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `ringserve --mode MODE --access-log DIR/access.log` over a one-file site;
    /// `None` (after saying why) when the uring mode cannot run here and is not required.
    fn start(mode: &str) -> Option<Server> {
        Server::start_logging(mode, true)
    }

    /// As [`Server::start`]; without `to_file`, the access log goes to stdout.
    fn start_logging(mode: &str, to_file: bool) -> Option<Server> {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("site");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("index.html"), "<p>rotate</p>\n").unwrap();
        let log = dir.path().join("access.log");
        let (child, stderr) = child::spawn(
            Command::new(env!("CARGO_BIN_EXE_ringserve"))
                .args(["--mode", mode, "--listen", "127.0.0.1:0", "--workers", "2"])
                .arg("--access-log")
                .arg(if to_file {
                    log.as_os_str()
                } else {
                    "-".as_ref()
                })
                .arg(&root),
        );
        let mut server = Server {
            child,
            stderr,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
            _dir: dir,
        };
        let startup = server
            .line("ringserve: serving ")
            .unwrap_or_else(|seen| panic!("no start-up line; stderr: {seen:?}"));
        let (_, rest) = startup.split_once(" at http://").expect("an address");
        let (addr, rest) = rest.split_once("/ (mode ").expect("a mode");
        server.addr = addr.parse().expect("a socket address");
        if !rest.starts_with(mode) {
            let required = std::env::var_os("RINGSERVE_REQUIRE_URING").is_some_and(|v| v == "1");
            assert!(!required, "RINGSERVE_REQUIRE_URING=1 but: {startup}");
            eprintln!("skipped: {mode} mode cannot run here: {startup}");
            return None;
        }
        Some(server)
    }

    /// Waits (bounded) for a stderr line starting with `prefix`; all lines seen otherwise.
    fn line(&self, prefix: &str) -> Result<String, Vec<String>> {
        self.stderr.line(prefix, TIMEOUT)
    }

    fn usr1(&self) {
        child::signal(&self.child, libc::SIGUSR1);
    }

    /// Moves the log aside to `to`, sends SIGUSR1 and waits for the acknowledgement.
    fn rotate(&self, to: &Path) {
        std::fs::rename(&self.log, to).expect("move the log aside");
        self.reopen();
    }

    /// Sends SIGUSR1 and waits for the acknowledgement.
    fn reopen(&self) {
        self.usr1();
        let ack = self
            .line("ringserve: access log reopened")
            .unwrap_or_else(|seen| panic!("no acknowledgement of SIGUSR1; stderr: {seen:?}"));
        assert_eq!(
            ack,
            format!("ringserve: access log reopened: {}", self.log.display())
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        child::reap(&mut self.child);
    }
}

/// `GET /index.html?id=ID` on a fresh connection; asserts a 200.
fn get(addr: SocketAddr, id: &str) {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    let request =
        format!("GET /index.html?id={id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read reply");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{id}: {reply:?}");
}

/// The request ids of the lines of `path`; every line must be a complete, well-formed one.
fn ids(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line in {}",
        path.display()
    );
    text.lines()
        .map(|line| {
            let id = line
                .strip_prefix("127.0.0.1 - - [")
                .and_then(|rest| rest.split_once("] \"GET /index.html?id="))
                .and_then(|(_, rest)| rest.split_once(" HTTP/1.1\" 200 14 "))
                .map(|(id, _)| id.to_string());
            id.unwrap_or_else(|| panic!("not a whole access log line: {line:?}"))
        })
        .collect()
}

/// Waits (bounded) until `path` holds at least `n` lines; returns its ids.
fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let ids = ids(path);
        if ids.len() >= n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, not {n}, after {TIMEOUT:?}",
            path.display(),
            ids.len()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn expected(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Requests before each signal are in the moved file, requests after it in the new one:
/// exactly, twice in a row.
fn lines_after_the_signal_land_in_the_new_file(mode: &str) {
    let Some(srv) = Server::start(mode) else {
        return;
    };
    let dir = srv.log.parent().unwrap().to_path_buf();
    let (n, m, k) = (40, 30, 20);
    for i in 0..n {
        get(srv.addr, &format!("a{i}"));
    }
    assert_eq!(wait_for_lines(&srv.log, n), expected("a", n));
    srv.rotate(&dir.join("access.log.1"));
    // The reopened path exists at once, even before a line is written.
    assert!(srv.log.exists(), "the reopened log was not created");
    for i in 0..m {
        get(srv.addr, &format!("b{i}"));
    }
    assert_eq!(wait_for_lines(&srv.log, m), expected("b", m));
    srv.rotate(&dir.join("access.log.2"));
    for i in 0..k {
        get(srv.addr, &format!("c{i}"));
    }
    assert_eq!(wait_for_lines(&srv.log, k), expected("c", k));
    // Nothing more arrived late in the moved files.
    assert_eq!(ids(&dir.join("access.log.1")), expected("a", n));
    assert_eq!(ids(&dir.join("access.log.2")), expected("b", m));
}

/// Clients keep requesting while the file is moved and the signal handled: every request
/// has exactly one whole line, in one of the two files.
fn no_line_is_lost_with_requests_in_flight(mode: &str) {
    let Some(srv) = Server::start(mode) else {
        return;
    };
    const CLIENTS: usize = 4;
    // A bound on each client, far above what the test needs.
    const MAX_PER_CLIENT: usize = 20_000;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let stop = Arc::clone(&stop);
            let addr = srv.addr;
            thread::spawn(move || {
                let mut sent = 0;
                while sent < MAX_PER_CLIENT && !stop.load(Ordering::Relaxed) {
                    get(addr, &format!("{c}-{sent}"));
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let moved = srv.log.parent().unwrap().join("access.log.1");
    // Lines are flowing before the move, and still after the acknowledgement.
    wait_for_lines(&srv.log, 50);
    srv.rotate(&moved);
    wait_for_lines(&srv.log, 50);
    stop.store(true, Ordering::Relaxed);
    let mut want = BTreeSet::new();
    for (c, client) in clients.into_iter().enumerate() {
        let sent = client.join().expect("client thread");
        assert!(sent < MAX_PER_CLIENT, "client {c} never saw the stop");
        want.extend((0..sent).map(|i| format!("{c}-{i}")));
    }
    // Every response was read, so every line is written or about to be: wait for all.
    let deadline = Instant::now() + TIMEOUT;
    let (old, new) = loop {
        let (old, new) = (ids(&moved), ids(&srv.log));
        if old.len() + new.len() >= want.len() || Instant::now() >= deadline {
            break (old, new);
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert!(
        old.len() >= 50 && new.len() >= 50,
        "{} / {}",
        old.len(),
        new.len()
    );
    assert_eq!(
        old.len() + new.len(),
        want.len(),
        "lines in both files vs requests"
    );
    let got: BTreeSet<String> = old.into_iter().chain(new).collect();
    assert_eq!(got, want, "a request logged twice, or not at all");
}

#[test]
fn lines_after_the_signal_land_in_the_new_file_threaded() {
    lines_after_the_signal_land_in_the_new_file("threaded");
}

#[test]
fn lines_after_the_signal_land_in_the_new_file_uring() {
    lines_after_the_signal_land_in_the_new_file("uring");
}

#[test]
fn no_line_is_lost_with_requests_in_flight_threaded() {
    no_line_is_lost_with_requests_in_flight("threaded");
}

#[test]
fn no_line_is_lost_with_requests_in_flight_uring() {
    no_line_is_lost_with_requests_in_flight("uring");
}

/// With the log on stdout there is no file to reopen: SIGUSR1 says so and changes nothing
/// (the signal's default action, exit, never happens).
#[test]
fn sigusr1_without_a_log_file_is_reported_and_harmless() {
    let Some(mut srv) = Server::start_logging("threaded", false) else {
        return;
    };
    for _ in 0..2 {
        srv.usr1();
        let line = srv
            .line("ringserve: SIGUSR1")
            .unwrap_or_else(|seen| panic!("no SIGUSR1 line; stderr: {seen:?}"));
        assert_eq!(line, "ringserve: SIGUSR1: no access log file to reopen");
    }
    get(srv.addr, "after");
    assert!(srv.child.try_wait().expect("try_wait").is_none());
    assert!(!srv.log.exists(), "a file was created for a stdout log");
}

/// A path that cannot be opened (here a directory took its place): one error line, and the
/// lines keep going to the file in use; the next SIGUSR1 that can open it switches.
#[test]
fn a_failed_reopen_keeps_logging_to_the_previous_file() {
    let Some(srv) = Server::start("threaded") else {
        return;
    };
    let moved = srv.log.parent().unwrap().join("access.log.1");
    get(srv.addr, "a0");
    wait_for_lines(&srv.log, 1);
    std::fs::rename(&srv.log, &moved).unwrap();
    std::fs::create_dir(&srv.log).unwrap();
    srv.usr1();
    let line = srv
        .line("ringserve: error: cannot reopen the access log")
        .unwrap_or_else(|seen| panic!("no error line; stderr: {seen:?}"));
    assert!(
        line.ends_with("; still writing to the previous file"),
        "{line}"
    );
    get(srv.addr, "a1");
    assert_eq!(wait_for_lines(&moved, 2), expected("a", 2));
    std::fs::remove_dir(&srv.log).unwrap();
    srv.reopen();
    get(srv.addr, "b0");
    assert_eq!(wait_for_lines(&srv.log, 1), expected("b", 1));
    assert_eq!(ids(&moved), expected("a", 2));
}
