//! Socket activation and restarts that refuse no one (issue 14, item 5).
//!
//! This test process plays systemd: it binds the listening socket and keeps it open for the
//! whole test, and starts each `ringserve` with the socket as descriptor 3 and `LISTEN_FDS=1`,
//! `LISTEN_PID=<its pid>` (through `sh -c 'LISTEN_PID=$$ exec …'`, so the pid is the one the
//! variable names). Client threads send requests the whole time while the server is stopped
//! with SIGTERM and replaced, 20 times per mode and socket kind. Half the restarts are
//! sequential (stop, wait for the exit, start the next: connections made in between wait in
//! the socket's backlog), half overlap (start the next, then stop the old one: both accept
//! on the one socket for a moment).
//!
//! A failure, of which there must be none:
//! - any connect error;
//! - on a new connection: any error writing the request, or reading the response;
//! - a status other than 200, a missing `Content-Length`, or a body that is short or differs;
//! - on a reused keep-alive connection, a response cut after its first byte.
//!
//! The one thing not counted: a keep-alive connection that the server closed while idle,
//! just as its client sent the next request, so that no byte of a response came back.
//! RFC 9112 §9.3.1 lets a client retry an idempotent request then, and HTTP/1.1 clients do;
//! so does this one, once, on a new connection (and that retry must then succeed). These
//! retries are counted and printed.

#[path = "support/child.rs"]
mod child;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Restarts per mode and socket kind.
const RESTARTS: usize = 20;
/// Requests each instance must have answered before it is stopped, so every restart happens
/// under load.
const PER_INSTANCE: usize = 20;
/// Client threads: half open a connection per request, half keep connections alive.
const CLIENTS: usize = 4;
/// A bound on any one wait (a start, an exit, a response).
const TIMEOUT: Duration = Duration::from_secs(10);
/// A bound on the whole run of one case.
const RUN_FOR: Duration = Duration::from_secs(120);
/// A body large enough to be in flight when a SIGTERM arrives (several sends on loopback).
const LARGE: usize = 256 << 10;

/// Where the harness listens.
#[derive(Clone, Debug)]
enum Addr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

trait Conn: Read + Write + Send {}
impl Conn for TcpStream {}
impl Conn for UnixStream {}

impl Addr {
    fn connect(&self) -> io::Result<Box<dyn Conn>> {
        Ok(match self {
            Addr::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, TIMEOUT)?;
                s.set_read_timeout(Some(TIMEOUT))?;
                s.set_write_timeout(Some(TIMEOUT))?;
                Box::new(s)
            }
            Addr::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(TIMEOUT))?;
                s.set_write_timeout(Some(TIMEOUT))?;
                Box::new(s)
            }
        })
    }
}

/// The listening socket the harness holds, as systemd would.
enum Held {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Held {
    fn raw(&self) -> RawFd {
        match self {
            Held::Tcp(l) => l.as_raw_fd(),
            Held::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// A running `ringserve` on the passed socket, killed on drop; its stderr lines arrive on a
/// channel.
struct Server {
    child: process::Child,
    stderr: child::Stderr,
}

/// Whose pid `LISTEN_PID` names.
#[derive(Clone, Copy)]
enum For {
    /// The `ringserve` started (as systemd sets it).
    Server,
    /// Another process (init's pid: variables an ancestor leaked).
    Another,
}

impl Server {
    /// Starts `ringserve` with `socket` as descriptor 3 and the `LISTEN_*` variables set.
    fn start(mode: &str, socket: RawFd, root: &Path, extra: &[&str]) -> Server {
        Self::start_for(For::Server, mode, socket, root, extra)
    }

    fn start_for(to: For, mode: &str, socket: RawFd, root: &Path, extra: &[&str]) -> Server {
        let script = match to {
            For::Server => r#"LISTEN_PID=$$ exec "$0" "$@""#,
            For::Another => r#"LISTEN_PID=1 exec "$0" "$@""#,
        };
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", script])
            .arg(env!("CARGO_BIN_EXE_ringserve"))
            .args(["--mode", mode])
            .args(extra)
            .arg(root)
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        // SAFETY: the closure runs in the child between fork and exec and calls only dup2 and
        // fcntl, which are async-signal-safe; `socket` is open in the parent (the harness
        // holds it), so it is open in the child.
        unsafe {
            command.pre_exec(move || {
                if socket == 3 {
                    // dup2 onto itself keeps close-on-exec: clear it by hand.
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(socket, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (child, stderr) = child::spawn(&mut command);
        Server { child, stderr }
    }

    /// Waits (bounded) for a stderr line starting with `prefix`; all lines seen otherwise.
    fn line(&self, prefix: &str) -> Result<String, Vec<String>> {
        self.stderr.line(prefix, TIMEOUT)
    }

    fn terminate(&self) {
        child::signal(&self.child, libc::SIGTERM);
    }

    /// Waits (bounded) for the process to end; its exit status.
    fn wait(&mut self) -> process::ExitStatus {
        child::wait_exit(&mut self.child, TIMEOUT)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        child::reap(&mut self.child);
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    /// Keep-alive requests retried after an idle close (see the module docs).
    retried: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.push(what);
    }
}

/// A response read off a connection: its status, whether it closes the connection, its body.
struct Reply {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// Why reading a response failed: before its first byte (the connection was closed or reset
/// while idle), or after (cut short).
enum ReadError {
    NothingCame(String),
    Cut(String),
}

fn read_reply(conn: &mut dyn Conn) -> Result<Reply, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(ReadError::NothingCame("closed".into())),
            Ok(0) => return Err(ReadError::Cut(format!("closed after {} bytes", buf.len()))),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A signal (io_uring's task work can interrupt a thread that set up a ring, as
            // the in-process server's probe does): read again, as any client would.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(ReadError::NothingCame(e.to_string())),
            Err(e) => return Err(ReadError::Cut(format!("{e} after {} bytes", buf.len()))),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReadError::Cut(format!("bad status line: {head:?}")))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ReadError::Cut(format!("no Content-Length: {head:?}")))?;
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match conn.read(&mut chunk) {
            Ok(0) => {
                return Err(ReadError::Cut(format!(
                    "body {} of {length} bytes",
                    body.len()
                )));
            }
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ReadError::Cut(format!(
                    "{e} at body {} of {length} bytes",
                    body.len()
                )));
            }
        }
    }
    if body.len() != length {
        return Err(ReadError::Cut(format!(
            "{} body bytes, not {length}",
            body.len()
        )));
    }
    Ok(Reply {
        status,
        close,
        body,
    })
}

/// The site's two files and their bodies.
fn site(root: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let small = b"<p>still here</p>\n".to_vec();
    let large: Vec<u8> = (0..LARGE).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("index.html"), &small).unwrap();
    std::fs::write(root.join("large.bin"), &large).unwrap();
    vec![("/", small), ("/large.bin", large)]
}

/// One client thread: requests until `stop`, alternating the two files; each on a new
/// connection (`keep_alive` false) or on one kept alive while the server allows.
fn client(
    id: usize,
    addr: &Addr,
    files: &[(&'static str, Vec<u8>)],
    keep_alive: bool,
    stop: &AtomicBool,
    tally: &Tally,
) {
    let deadline = Instant::now() + RUN_FOR;
    let mut conn: Option<Box<dyn Conn>> = None;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (path, expected) = &files[n % files.len()];
        n += 1;
        let close = if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n");
        // Up to two tries: the second only after an idle keep-alive connection was closed.
        let mut tries = 0;
        loop {
            tries += 1;
            let reused = conn.is_some();
            let mut c = match conn.take() {
                Some(c) => c,
                None => match addr.connect() {
                    Ok(c) => c,
                    Err(e) => {
                        tally.fail(format!("client {id}: connect: {e}"));
                        return;
                    }
                },
            };
            let sent = c.write_all(request.as_bytes());
            let reply = match sent {
                Ok(()) => read_reply(&mut *c),
                Err(e) => Err(ReadError::NothingCame(format!("write: {e}"))),
            };
            match reply {
                Ok(r) if r.status == 200 && r.body == *expected => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if keep_alive && !r.close {
                        conn = Some(c);
                    }
                    break;
                }
                Ok(r) => {
                    tally.fail(format!(
                        "client {id}: GET {path}: status {}, {} body bytes (of {})",
                        r.status,
                        r.body.len(),
                        expected.len()
                    ));
                    return;
                }
                Err(ReadError::NothingCame(_)) if reused && tries == 1 => {
                    // The idle-close race RFC 9112 §9.3.1 lets a client retry.
                    tally.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(ReadError::NothingCame(why) | ReadError::Cut(why)) => {
                    tally.fail(format!(
                        "client {id}: GET {path} on a {} connection: {why}",
                        if reused { "reused" } else { "new" }
                    ));
                    return;
                }
            }
        }
    }
}

/// Waits (bounded) until the clients have `at_least` good responses in all.
fn wait_for_responses(tally: &Tally, at_least: usize, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while tally.ok.load(Ordering::Relaxed) < at_least {
        {
            let failures = tally.failures.lock().unwrap();
            assert!(failures.is_empty(), "{what}: failures: {:?}", *failures);
        }
        assert!(Instant::now() < deadline, "{what}: no progress in 10 s");
        thread::sleep(Duration::from_millis(1));
    }
}

fn restarts_under_load(mode: &str, unix: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir(&root).unwrap();
    let files = Arc::new(site(&root));
    let (held, addr) = if unix {
        let path = dir.path().join("s.sock");
        (
            Held::Unix(UnixListener::bind(&path).unwrap()),
            Addr::Unix(path),
        )
    } else {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        (Held::Tcp(l), Addr::Tcp(a))
    };
    let case = format!("{mode} on {addr:?}");
    let start = || {
        let s = Server::start(mode, held.raw(), &root, &[]);
        let line = s.line("ringserve: serving ").unwrap_or_else(|seen| {
            panic!("{case}: no start-up line; stderr: {seen:?}");
        });
        assert!(line.contains("socket from systemd"), "{line}");
        s
    };
    let mut server = start();
    // Reported, not asserted (no timed assertions): how long the slowest stop took.
    let mut slowest_stop = Duration::ZERO;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (addr, files, stop, tally) = (
                addr.clone(),
                Arc::clone(&files),
                Arc::clone(&stop),
                Arc::clone(&tally),
            );
            thread::spawn(move || client(id, &addr, &files, id % 2 == 1, &stop, &tally))
        })
        .collect();

    for i in 0..RESTARTS {
        let before = tally.ok.load(Ordering::Relaxed);
        wait_for_responses(
            &tally,
            before + PER_INSTANCE,
            &format!("{case}, instance {i}"),
        );
        let mut old = server;
        let mut stop = |old: &mut Server| {
            let asked = Instant::now();
            old.terminate();
            let status = old.wait();
            slowest_stop = slowest_stop.max(asked.elapsed());
            assert!(
                status.success(),
                "{case}, instance {i} exited with {status}"
            );
        };
        if i % 2 == 0 {
            // Sequential: nobody serves between the exit and the next start.
            stop(&mut old);
            server = start();
        } else {
            // Overlapping: the next instance accepts on the socket before the old one stops.
            server = start();
            stop(&mut old);
        }
    }
    let before = tally.ok.load(Ordering::Relaxed);
    wait_for_responses(
        &tally,
        before + PER_INSTANCE,
        &format!("{case}, last instance"),
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    server.terminate();
    assert!(server.wait().success());
    let failures = tally.failures.lock().unwrap();
    let ok = tally.ok.load(Ordering::Relaxed);
    let retried = tally.retried.load(Ordering::Relaxed);
    println!(
        "{case}: {RESTARTS} restarts, {ok} good responses, {} failures, \
         {retried} keep-alive requests retried after an idle close, slowest stop {slowest_stop:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{case}: {} failed requests across {RESTARTS} restarts ({ok} good): {:?}",
        failures.len(),
        *failures
    );
    assert!(ok >= (RESTARTS + 1) * PER_INSTANCE);
    drop(held);
}

#[test]
fn uring_restarts_on_a_passed_tcp_socket_fail_no_request() {
    restarts_under_load("uring", false);
}

#[test]
fn threaded_restarts_on_a_passed_tcp_socket_fail_no_request() {
    restarts_under_load("threaded", false);
}

#[test]
fn uring_restarts_on_a_passed_unix_socket_fail_no_request() {
    restarts_under_load("uring", true);
}

#[test]
fn threaded_restarts_on_a_passed_unix_socket_fail_no_request() {
    restarts_under_load("threaded", true);
}

/// The exit status and stderr of a `ringserve` started on `socket` that is expected to
/// refuse to start.
fn refused(socket: RawFd, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start("threaded", socket, dir.path(), extra);
    let status = server.wait();
    let mut lines = Vec::new();
    while let Some(line) = server.stderr.next(TIMEOUT) {
        lines.push(line);
    }
    (status.code(), lines)
}

#[test]
fn a_passed_descriptor_that_is_not_a_listening_stream_socket_is_a_start_up_error() {
    let file = tempfile::tempfile().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let cases: [(RawFd, &str); 3] = [
        (file.as_raw_fd(), "descriptor 3: not a socket"),
        (udp.as_raw_fd(), "descriptor 3: not a stream socket"),
        (
            connected.as_raw_fd(),
            "descriptor 3: not a listening socket",
        ),
    ];
    for (fd, why) in cases {
        let (code, lines) = refused(fd, &[]);
        assert_eq!(code, Some(2), "{why}: {lines:?}");
        let expected = format!("ringserve: error: cannot use a passed socket: {why}");
        assert!(
            lines.iter().any(|l| l.starts_with(&expected)),
            "{expected:?} not in {lines:?}"
        );
    }
}

#[test]
fn listen_and_passed_sockets_together_are_refused() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, lines) = refused(held.as_raw_fd(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{lines:?}");
    assert!(
        lines.contains(
            &"ringserve: error: --listen cannot be combined with sockets passed by systemd \
              (LISTEN_FDS)"
                .to_string()
        ),
        "{lines:?}"
    );
}

#[test]
fn variables_meant_for_another_process_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::start_for(
        For::Another,
        "threaded",
        held.as_raw_fd(),
        dir.path(),
        &["--listen", "127.0.0.1:0"],
    );
    let line = server.line("ringserve: serving ").expect("started");
    assert!(!line.contains("socket from systemd"), "{line}");
    assert!(
        !line.contains(&held.local_addr().unwrap().to_string()),
        "{line}"
    );
}

/// The shipped units pass `systemd-analyze verify`, without a warning. The copies checked
/// are the units with two paths rewritten, because verify requires `ExecStart`'s program to
/// exist: `/usr/local/bin/ringserve` becomes the binary under test, `/srv/www` a temporary
/// directory. Where `systemd-analyze` is not installed this prints `skipped:` and passes,
/// unless `RINGSERVE_REQUIRE_SYSTEMD_ANALYZE=1` (set by `scripts/test.sh`, which installs it).
#[test]
fn contrib_units_pass_systemd_analyze_verify() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let service = std::fs::read_to_string(contrib.join("ringserve.service")).unwrap();
    let socket = std::fs::read_to_string(contrib.join("ringserve.socket")).unwrap();
    // What the issue asks of the unit, checked on the shipped text.
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=io_uring_setup io_uring_enter io_uring_register",
        "ExecReload=/bin/kill -USR1 $MAINPID",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "ringserve.service lacks {line}"
        );
    }
    let exec = service
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(
        !exec.contains("--listen"),
        "the socket unit says where: {exec}"
    );
    assert!(socket.lines().any(|l| l.starts_with("ListenStream=")));

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        if std::env::var_os("RINGSERVE_REQUIRE_SYSTEMD_ANALYZE").is_some_and(|v| v == "1") {
            panic!("systemd-analyze is required here (RINGSERVE_REQUIRE_SYSTEMD_ANALYZE=1)");
        }
        eprintln!("skipped: systemd-analyze is not installed (package systemd)");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("www");
    std::fs::create_dir(&site).unwrap();
    let service = service
        .replace("/usr/local/bin/ringserve", env!("CARGO_BIN_EXE_ringserve"))
        .replace("/srv/www", &site.display().to_string());
    std::fs::write(dir.path().join("ringserve.service"), service).unwrap();
    std::fs::write(dir.path().join("ringserve.socket"), socket).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("ringserve.socket"))
        .arg(dir.path().join("ringserve.service"))
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
        "systemd-analyze verify: {}\n{stdout}{stderr}",
        out.status
    );
}

/// The library path: a socket handed to `Config::listen_passed` is served by both modes, and
/// after `shutdown` and `join` it still listens (it belongs to whoever passed it): a
/// connection made then queues on it and is accepted by its owner.
#[test]
fn an_embedded_server_serves_a_passed_socket_and_leaves_it_listening() {
    use ringserve::{Config, Mode, PassedSocket, Server};
    let dir = tempfile::tempdir().unwrap();
    let files = site(dir.path());
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    for mode in [Mode::Uring, Mode::Threaded] {
        let socket = PassedSocket::from_fd(held.try_clone().unwrap().into()).unwrap();
        let handle = Server::bind(
            Config::new(dir.path())
                .mode(mode)
                .workers(2)
                .listen_passed(socket),
        )
        .unwrap();
        assert!(handle.on_passed_sockets());
        assert_eq!(handle.local_addrs(), &[addr]);
        let mut conn: Box<dyn Conn> = Addr::Tcp(addr).connect().unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let reply = match read_reply(&mut *conn) {
            Ok(r) => r,
            Err(ReadError::NothingCame(why) | ReadError::Cut(why)) => {
                panic!("{mode:?}: no response: {why}")
            }
        };
        assert_eq!((reply.status, &reply.body), (200, &files[0].1), "{mode:?}");
        handle.shutdown();
        handle.join();
        let _queued = TcpStream::connect_timeout(&addr, TIMEOUT).expect("still listening");
        // Polled against a deadline: the servers set the shared description non-blocking.
        held.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match held.accept() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "{mode:?}: nothing queued");
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{mode:?}: accept: {e}"),
            }
        }
    }
}
