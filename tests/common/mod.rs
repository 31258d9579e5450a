//! Shared fixtures for the HTTP integration tests: a served directory with known content, a
//! server that shuts itself down on drop, a raw-socket client and a strict one-response parser.
//!
//! Nothing here may hang: every socket has a 5 s read and write timeout, every wait has a
//! deadline, and every loop is bounded.

#![allow(dead_code)] // each test module uses a different part of this toolbox

use ringserve::{Config, Handle, Mode, Server};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// Every socket read and write gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dropping a [`TestServer`] may take before the test fails.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The per-mode test macros.

/// The one list of I/O modes every HTTP case runs against, as `test_name: Mode variant` pairs
/// handed to the macro `$m` in one call.
macro_rules! for_each_mode {
    ($m:ident) => {
        $m! {
            threaded: Threaded,
            uring: Uring,
        }
    };
}

/// One `#[test]` per mode, each calling the `case` function of the enclosing module.
macro_rules! mode_test {
    ($($test:ident: $variant:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::common::run_case(
                    concat!(module_path!(), "::", stringify!($test)),
                    || ::ringserve::Mode::$variant,
                    case,
                );
            }
        )*
    };
}

/// The modes as a list of [`Ctx`] values, for tests that compare modes with each other.
macro_rules! mode_list {
    ($($test:ident: $variant:ident),* $(,)?) => {
        [$(
            $crate::common::Ctx::named(stringify!($test), || ::ringserve::Mode::$variant),
        )*]
    };
}

/// Defines each case as a module holding one `#[test]` per I/O mode:
///
/// ```ignore
/// each_mode! {
///     fn get_index(ctx) {
///         let srv = ctx.start();
///         assert_eq!(srv.get("/").status, 200);
///     }
/// }
/// ```
///
/// expands to `mod get_index { fn case(ctx: Ctx) { … } #[test] fn threaded() { … } }`.
macro_rules! each_mode {
    () => {};
    ($(#[doc = $doc:literal])* fn $name:ident($ctx:ident) $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($ctx: $crate::common::Ctx) $body

            for_each_mode!(mode_test);
        }
        each_mode!($($rest)*);
    };
}

/// Runs one case in one mode, or prints `skipped: <why>` when this machine cannot run the mode.
/// Where `RINGSERVE_REQUIRE_URING=1` (`scripts/test.sh` sets it once its own probe has found
/// io_uring working) a mode that cannot run fails the case instead: no silent skip.
pub fn run_case(test: &'static str, mode: fn() -> Mode, case: fn(Ctx)) {
    let ctx = Ctx::named(test, mode);
    if let Some(why) = ctx.unsupported() {
        assert!(
            !uring_required(),
            "{test}: RINGSERVE_REQUIRE_URING=1 but {why}"
        );
        eprintln!("skipped: {test}: {why}");
        return;
    }
    case(ctx);
}

/// Status line, headers in order without Date, and body.
pub type Answer = (String, Vec<(String, String)>, Vec<u8>);

/// Sends `requests`, one by one, to a server of every mode (`serve` starts it) and asserts
/// that every mode gives the same answers, Date aside. A mode that cannot run here is
/// reported; where io_uring is required the modes must have been compared.
pub fn assert_modes_answer_alike(requests: &[String], serve: impl Fn(&Ctx) -> TestServer) {
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
        let srv = serve(&ctx);
        let answers: Vec<Answer> = requests
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
                for ((raw, want), got) in requests.iter().zip(expected).zip(&answers) {
                    assert!(
                        want == got,
                        "{raw:?}: {first} and {} differ:\n{want:#?}\n{got:#?}",
                        ctx.name
                    );
                }
            }
        }
    }
    if uring_required() {
        assert_eq!(
            compared, 1,
            "the second mode was not compared with the first"
        );
    }
}

/// `scripts/test.sh` found io_uring working: a uring case must run, never skip.
pub fn uring_required() -> bool {
    std::env::var_os("RINGSERVE_REQUIRE_URING").is_some_and(|v| v == "1")
}

/// Whether a server started in the uring mode runs it here, found out once per test binary.
fn uring_runs() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let fixture = Fixture::new();
            let srv = TestServer::bind(
                Config::new(fixture.root())
                    .listen(loopback0())
                    .mode(Mode::Uring)
                    .workers(1),
            );
            if srv.runs_uring {
                Ok(())
            } else {
                Err("the server cannot run io_uring here and fell back to threaded".into())
            }
        })
        .clone()
}

/// What a case gets: the mode under test and ways to start servers in it.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub name: &'static str,
    mode: fn() -> Mode,
}

impl Ctx {
    pub fn named(name: &'static str, mode: fn() -> Mode) -> Ctx {
        Ctx { name, mode }
    }

    /// The mode under test.
    pub fn mode(&self) -> Mode {
        (self.mode)()
    }

    /// Why this mode cannot run here, if it cannot: the server falls back to the threaded mode
    /// when io_uring is missing or forbidden, and `Handle::mode` tells which mode runs.
    pub fn unsupported(&self) -> Option<String> {
        match (self.mode)() {
            Mode::Threaded => None,
            Mode::Uring => uring_runs().err(),
        }
    }

    /// The base configuration of every test server: the mode under test on 127.0.0.1:0.
    pub fn config(&self, root: &Path) -> Config {
        Config::new(root)
            .listen(loopback0())
            .mode((self.mode)())
            .workers(2)
            .shutdown_grace(Duration::from_secs(3))
    }

    /// A server over a fresh default [`Fixture`], with the default configuration.
    pub fn start(&self) -> TestServer {
        self.start_with(|c| c)
    }

    /// A server over a fresh default [`Fixture`]; `configure` adjusts the base configuration.
    pub fn start_with(&self, configure: impl FnOnce(Config) -> Config) -> TestServer {
        let fixture = Fixture::new();
        let mut srv = self.serve(fixture.root(), configure);
        srv.fixture = Some(fixture);
        srv
    }

    /// A server over `root`, which the caller keeps alive.
    pub fn serve(&self, root: &Path, configure: impl FnOnce(Config) -> Config) -> TestServer {
        TestServer::bind(configure(self.config(root)))
    }
}

pub fn loopback0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ---------------------------------------------------------------------------------------------
// The served directory.

/// `index.html` of the fixture.
pub const INDEX_HTML: &str =
    "<!DOCTYPE html>\n<title>fixture</title>\n<p>ringserve test index</p>\n";
/// `dir/index.html`.
pub const DIR_INDEX_HTML: &str = "<!DOCTYPE html>\n<title>dir</title>\n<p>inside dir</p>\n";
/// `style.css`.
pub const STYLE_CSS: &str = "body { color: #123456; }\n";
/// `.hidden`.
pub const HIDDEN: &str = "dotfile content\n";
/// `with space.txt`.
pub const SPACED: &str = "a name with a space\n";
/// `100%.txt`.
pub const PERCENT: &str = "a name with a percent sign\n";
/// The file outside the root that no request may ever read.
pub const SECRET: &str = "SECRET-5d1c0e7a-never-served\n";
/// Size of `100k.bin`.
pub const BIG_LEN: usize = 100 * 1024;

/// Every fixture file gets this modification time: Tue, 02 Jan 2024 03:04:05.123456789 GMT.
pub const FIXTURE_MTIME_SECS: u64 = 1_704_164_645;
pub const FIXTURE_MTIME_NANOS: u32 = 123_456_789;
pub const FIXTURE_LAST_MODIFIED: &str = "Tue, 02 Jan 2024 03:04:05 GMT";

/// Deterministic content of `len` bytes: a byte pattern that is not periodic in 256, so a
/// range taken from the wrong offset does not compare equal by accident.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
}

/// `128b.bin`.
pub fn small_bin() -> Vec<u8> {
    pattern(128)
}

/// `100k.bin`.
pub fn big_bin() -> Vec<u8> {
    pattern(BIG_LEN)
}

/// A temporary tree:
///
/// ```text
/// base/
///   secret                  SECRET, outside the root
///   www/                    the root
///     index.html  style.css  128b.bin  100k.bin  .hidden  with space.txt  100%.txt
///     link-inside  -> 128b.bin
///     link-outside -> ../secret (absolute path)
///     dir/index.html
///     empty/                no index, no entries
///     noindex/              no index; entries for the listing: 100%.txt a.txt b&c.txt
/// ```
///
/// No `favicon.ico`. All files have the mtime [`FIXTURE_MTIME_SECS`].
#[derive(Debug)]
pub struct Fixture {
    base: TempDir,
    root: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let base = tempfile::tempdir().expect("create fixture tempdir");
        let root = base.path().join("www");
        let fixture = Fixture { base, root };
        fs::create_dir(&fixture.root).expect("create root");
        fs::write(fixture.secret_path(), SECRET).expect("write secret");

        fixture.write("index.html", INDEX_HTML.as_bytes());
        fixture.write("style.css", STYLE_CSS.as_bytes());
        fixture.write("128b.bin", &small_bin());
        fixture.write("100k.bin", &big_bin());
        fixture.write(".hidden", HIDDEN.as_bytes());
        fixture.write("with space.txt", SPACED.as_bytes());
        fixture.write("100%.txt", PERCENT.as_bytes());
        fixture.write("dir/index.html", DIR_INDEX_HTML.as_bytes());
        fs::create_dir(fixture.root.join("empty")).expect("create empty/");
        for name in ["b&c.txt", "a.txt", "100%.txt"] {
            fixture.write(&format!("noindex/{name}"), name.as_bytes());
        }
        std::os::unix::fs::symlink("128b.bin", fixture.root.join("link-inside"))
            .expect("symlink inside");
        std::os::unix::fs::symlink(fixture.secret_path(), fixture.root.join("link-outside"))
            .expect("symlink outside");
        fixture
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `base/secret`, a sibling of the root.
    pub fn secret_path(&self) -> PathBuf {
        self.base.path().join("secret")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `rel` under the root (creating parents) with the fixture mtime.
    pub fn write(&self, rel: &str, content: &[u8]) {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, content).expect("write fixture file");
        set_mtime(&path, fixture_mtime());
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

pub fn fixture_mtime() -> SystemTime {
    UNIX_EPOCH + Duration::new(FIXTURE_MTIME_SECS, FIXTURE_MTIME_NANOS)
}

pub fn set_mtime(path: &Path, when: SystemTime) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open to set mtime");
    file.set_modified(when).expect("set mtime");
}

// ---------------------------------------------------------------------------------------------
// The server under test.

/// A running server; dropping it shuts it down and waits for every thread (at most 10 s).
pub struct TestServer {
    pub addr: SocketAddr,
    /// Whether `Handle::mode` reported the io_uring mode.
    pub runs_uring: bool,
    /// `None` once joined.
    handle: Option<Handle>,
    fixture: Option<Fixture>,
}

impl TestServer {
    pub fn bind(config: Config) -> TestServer {
        let handle = Server::bind(config).unwrap_or_else(|e| panic!("Server::bind: {e}"));
        let addr = handle.local_addr();
        let runs_uring = matches!(handle.mode(), Mode::Uring);
        TestServer {
            addr,
            runs_uring,
            handle: Some(handle),
            fixture: None,
        }
    }

    /// The fixture this server was started over by [`Ctx::start`] / [`Ctx::start_with`].
    /// The server's counters.
    pub fn stats(&self) -> &std::sync::Arc<ringserve::Stats> {
        self.handle.as_ref().expect("server still running").stats()
    }

    pub fn fixture(&self) -> &Fixture {
        self.fixture
            .as_ref()
            .expect("server started without its own fixture")
    }

    /// Keeps `fixture` (the root of a server started with [`Ctx::serve`]) alive as long as
    /// the server, so that [`TestServer::fixture`] reaches it.
    pub fn keep_fixture(&mut self, fixture: Fixture) {
        self.fixture = Some(fixture);
    }

    /// Begins a graceful shutdown without waiting for it.
    pub fn shutdown(&self) {
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
    }

    /// Shuts down and waits up to `limit` for every server thread; true if they all finished.
    pub fn join_within(&mut self, limit: Duration) -> bool {
        let Some(handle) = self.handle.take() else {
            return true;
        };
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            handle.shutdown();
            handle.join();
            let _ = done_tx.send(());
        });
        done_rx.recv_timeout(limit).is_ok()
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// `GET path` on a fresh connection with `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    }

    /// `GET path` with extra header lines (each without its CRLF).
    pub fn get_with(&self, path: &str, headers: &[&str]) -> Response {
        self.request(&request("GET", path, headers))
    }

    /// `HEAD path` with extra header lines.
    pub fn head_with(&self, path: &str, headers: &[&str]) -> Response {
        self.request(&request("HEAD", path, headers))
    }

    /// Sends `raw` on a fresh connection and reads one response (a HEAD if `raw` starts so).
    pub fn request(&self, raw: &str) -> Response {
        let mut conn = self.conn();
        conn.send(raw.as_bytes());
        conn.read_response(raw.starts_with("HEAD "))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !self.join_within(JOIN_TIMEOUT) && !thread::panicking() {
            panic!("server did not shut down within {JOIN_TIMEOUT:?}");
        }
    }
}

/// A request with `Host` and `Connection: close` plus `headers`.
pub fn request(method: &str, path: &str, headers: &[&str]) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

// ---------------------------------------------------------------------------------------------
// Raw client.

/// Sends `bytes` on a fresh connection and returns everything received until EOF or timeout.
pub fn send(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut conn = Conn::connect(addr);
    conn.send(bytes);
    conn.wait_closed(IO_TIMEOUT);
    conn.buf
}

/// A client connection that keeps unparsed bytes between responses (for pipelining).
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

/// The outcome of one read.
enum Fill {
    Data,
    Eof,
    TimedOut,
}

impl Conn {
    /// Waits (at most [`IO_TIMEOUT`]) until the server has sent something on this connection,
    /// without consuming it: a real event to synchronise on instead of a sleep.
    pub fn wait_readable(&mut self) {
        if !self.buf.is_empty() {
            return;
        }
        let mut one = [0u8; 1];
        loop {
            match self.stream.peek(&mut one) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                result => {
                    result.expect("the server sent nothing within the I/O timeout");
                    return;
                }
            }
        }
    }

    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Conn::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Conn {
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send request");
        self.stream.flush().expect("flush");
    }

    /// Sends `bytes` one at a time, pausing `pause` between them.
    pub fn dribble(&mut self, bytes: &[u8], pause: Duration) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
            thread::sleep(pause);
        }
    }

    /// Bytes received but not yet parsed.
    pub fn unparsed(&self) -> &[u8] {
        &self.buf
    }

    fn fill(&mut self) -> Fill {
        if self.eof {
            return Fill::Eof;
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Fill::Eof
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            // A reset after the server closed with our bytes unread counts as the close.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                self.eof = true;
                Fill::Eof
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Fill::TimedOut
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Fill::Data,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads one response; panics with what was received if it does not arrive in 5 s.
    pub fn read_response(&mut self, head_request: bool) -> Response {
        self.try_read_response(head_request)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads one response. `head_request` says whether it answers a HEAD (no body then).
    pub fn try_read_response(&mut self, head_request: bool) -> Result<Response, String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(parsed) = Response::parse(&self.buf, head_request, self.eof)? {
                let (response, used) = parsed;
                self.buf.drain(..used);
                return Ok(response);
            }
            if Instant::now() > deadline {
                return Err(self.incomplete("timed out"));
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => {
                    if let Some((response, used)) = Response::parse(&self.buf, head_request, true)?
                    {
                        self.buf.drain(..used);
                        return Ok(response);
                    }
                    return Err(self.incomplete("connection closed"));
                }
                Fill::TimedOut => return Err(self.incomplete("timed out")),
            }
        }
    }

    fn incomplete(&self, why: &str) -> String {
        format!(
            "{why} before a complete response; received {:?}",
            String::from_utf8_lossy(&self.buf[..self.buf.len().min(2048)])
        )
    }

    /// Reads `n` responses to pipelined non-HEAD requests.
    pub fn read_responses(&mut self, n: usize) -> Vec<Response> {
        (0..n).map(|_| self.read_response(false)).collect()
    }

    /// Waits up to `limit` for the server to close; true if it did. Bytes that arrive meanwhile
    /// are kept (see [`Conn::unparsed`]).
    pub fn wait_closed(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream
                .set_read_timeout(Some(left.min(IO_TIMEOUT)))
                .expect("read timeout");
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => {
                    self.stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
                    return true;
                }
                Fill::TimedOut => {}
            }
        }
    }

    /// Asserts that the server closes this connection within 5 s without sending more bytes.
    pub fn assert_closed(&mut self) {
        assert!(
            self.wait_closed(IO_TIMEOUT),
            "server kept the connection open"
        );
        assert!(
            self.buf.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts that the connection is still open: nothing arrives and no EOF within `wait`.
    pub fn assert_open(&mut self, wait: Duration) {
        assert!(!self.wait_closed(wait), "server closed the connection");
        assert!(self.buf.is_empty(), "unexpected bytes: {:?}", self.buf);
    }

    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).ok();
    }
}

// ---------------------------------------------------------------------------------------------
// Response parser.

#[derive(Debug, Clone)]
pub struct Response {
    /// The status line as received, without CRLF.
    pub status_line: String,
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes the whole response took on the wire.
    pub raw_len: usize,
}

impl Response {
    /// Parses one response from the front of `buf`: `Ok(None)` if more bytes are needed,
    /// `Ok(Some((response, bytes used)))`, or an error for bytes that are not HTTP. `eof` says
    /// the peer has closed, which ends a body without Content-Length.
    pub fn parse(
        buf: &[u8],
        head_request: bool,
        eof: bool,
    ) -> Result<Option<(Response, usize)>, String> {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&buf[..end])
            .map_err(|_| format!("response head is not UTF-8: {:?}", &buf[..end]))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if !version.starts_with("HTTP/") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            if name.is_empty() || name.contains(' ') {
                return Err(format!("bad header name in {line:?}"));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut response = Response {
            status_line,
            version,
            status,
            headers,
            body: Vec::new(),
            raw_len: 0,
        };
        let body_start = end + 4;
        let body_len = if head_request || status == 204 || status == 304 || status < 200 {
            0
        } else if let Some(len) = response.header("content-length") {
            len.parse::<usize>()
                .map_err(|_| format!("bad Content-Length {len:?}"))?
        } else if eof {
            buf.len() - body_start
        } else {
            return Ok(None); // no length: the body runs to the close
        };
        if buf.len() < body_start + body_len {
            return Ok(None);
        }
        response.body = buf[body_start..body_start + body_len].to_vec();
        response.raw_len = body_start + body_len;
        Ok(Some((response, body_start + body_len)))
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header called `name`, which must be present.
    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {:#?}", self.headers))
    }

    /// How many headers are called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the Connection header lists `close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// The headers other than `Date`, for comparing two responses.
    pub fn headers_without_date(&self) -> Vec<(String, String)> {
        let mut h: Vec<_> = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        h.sort();
        h
    }

    /// Asserts the headers every response carries (RFC 9110 plus the project's own).
    pub fn assert_common_headers(&self) {
        assert_eq!(
            self.version, "HTTP/1.1",
            "status line {:?}",
            self.status_line
        );
        let date = self.must("date");
        let when = parse_imf_fixdate(date).unwrap_or_else(|| panic!("Date {date:?}"));
        let skew = match SystemTime::now().duration_since(when) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(
            skew < Duration::from_secs(5),
            "Date {date:?} is {skew:?} off"
        );
        assert_eq!(self.count("date"), 1);
        assert_eq!(self.header("server"), Some("ringserve"));
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("accept-ranges"), Some("bytes"));
        if self.status != 204 && self.status != 304 {
            assert_eq!(self.count("content-length"), 1, "{:#?}", self.headers);
            assert_eq!(self.count("content-type"), 1, "{:#?}", self.headers);
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Asserts the strong-ETag shape: `"` + 32 lowercase hex digits + `"`.
pub fn assert_etag_shape(tag: &str) {
    let hex = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or_else(|| panic!("ETag {tag:?} is not quoted (or is weak)"));
    assert_eq!(hex.len(), 32, "ETag {tag:?}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "ETag {tag:?} is not lowercase hex"
    );
}

// ---------------------------------------------------------------------------------------------
// IMF-fixdate (RFC 9110 §5.6.7), written out here so the tests do not trust the server's code.

/// Weekdays from 1970-01-01, which was a Thursday.
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i64, m: usize) -> i64 {
    match m {
        1 => 28 + i64::from(is_leap(y)),
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    }
}

/// (year, month index 0..12, day 1..) of a day count since 1970-01-01; years 1970..=9999.
fn civil(mut days: i64) -> (i64, usize, i64) {
    let mut year = 1970;
    while days >= 365 + i64::from(is_leap(year)) && year < 9999 {
        days -= 365 + i64::from(is_leap(year));
        year += 1;
    }
    let mut month = 0;
    while month < 11 && days >= month_len(year, month) {
        days -= month_len(year, month);
        month += 1;
    }
    (year, month, days + 1)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `t` (whole seconds, truncated).
pub fn format_imf_fixdate(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[m],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The `dd/Mon/yyyy:HH:MM:SS` of an access-log timestamp for `t`.
pub fn format_clf_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days);
    format!(
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02}",
        MONTHS[m],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses an IMF-fixdate strictly (exact shape, right weekday); `None` for anything else.
pub fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(*m))?;
    let year = num(12..16)?;
    let (hh, mm, ss) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if [b[7], b[11], b[16], b[19], b[22]] != [b' ', b' ', b' ', b':', b':'] {
        return None;
    }
    if year < 1970 || day < 1 || day > month_len(year, month) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut days = (1970..year)
        .map(|y| 365 + i64::from(is_leap(y)))
        .sum::<i64>();
    days += (0..month).map(|m| month_len(year, m)).sum::<i64>();
    days += day - 1;
    if s.get(0..3) != Some(DAYS[(days % 7) as usize]) {
        return None;
    }
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[test]
fn imf_fixdate_round_trips() {
    let t = fixture_mtime();
    assert_eq!(format_imf_fixdate(t), FIXTURE_LAST_MODIFIED);
    assert_eq!(
        parse_imf_fixdate(FIXTURE_LAST_MODIFIED),
        Some(UNIX_EPOCH + Duration::from_secs(FIXTURE_MTIME_SECS))
    );
    assert_eq!(
        format_imf_fixdate(UNIX_EPOCH + Duration::from_secs(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None); // wrong weekday
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(format_clf_time(t), "02/Jan/2024:03:04:05");
}

#[test]
fn response_parser_frames_pipelined_responses() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                 HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n\
                 HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\
                 HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\ntail";
    let (first, used) = Response::parse(wire, false, false).unwrap().unwrap();
    assert_eq!(
        (first.status, &first.body[..], first.raw_len),
        (200, &b"abc"[..], used)
    );
    let rest = &wire[used..];
    let (second, used2) = Response::parse(rest, false, false).unwrap().unwrap();
    assert_eq!((second.status, second.must("etag")), (304, "\"x\""));
    let rest = &rest[used2..];
    // The answer to a HEAD: Content-Length without a body.
    let (third, used3) = Response::parse(rest, true, false).unwrap().unwrap();
    assert!(third.body.is_empty());
    let rest = &rest[used3..];
    // No length: the body runs to the close.
    assert!(Response::parse(rest, false, false).unwrap().is_none());
    let (fourth, _) = Response::parse(rest, false, true).unwrap().unwrap();
    assert_eq!((fourth.status, fourth.body_str().as_str()), (404, "tail"));
    assert!(fourth.closes());
    // Incomplete and malformed input.
    assert!(
        Response::parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            false,
            false
        )
        .unwrap()
        .is_none()
    );
    assert!(Response::parse(b"garbage\r\n\r\n", false, false).is_err());
}

/// Closes `stream` with a TCP reset (SO_LINGER with a zero timeout), as a crashing client does.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` lives across the call and its size is passed with it; the descriptor
    // is open (owned by `stream`).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(stream);
}
