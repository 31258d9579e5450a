//! Behind a reverse proxy: the Unix-socket listener, the client address from trusted proxies,
//! the health and status paths, and the headers a caching proxy relies on.

use crate::common::*;
use ringserve::{AccessLog, Config, Server, StartError, TrustedProxy};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The mode asked for is the mode that runs (a machine without io_uring skips the uring
/// cases before they start, in `run_case`).
fn assert_runs_its_mode(ctx: &Ctx, srv: &TestServer) {
    assert_eq!(
        ctx.mode() == ringserve::Mode::Uring,
        srv.runs_uring,
        "{}: the server fell back to another mode",
        ctx.name
    );
}

fn trust(cidr: &str) -> TrustedProxy {
    cidr.parse().unwrap()
}

/// One request over a Unix socket with `Connection: close`; reads the response to EOF.
fn unix_get(path: &Path, target: &str, headers: &[&str]) -> Response {
    let mut stream = UnixStream::connect(path).expect("connect to the Unix socket");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(request("GET", target, headers).as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).expect("read the response");
    let (response, used) = Response::parse(&buf, false, true)
        .expect("an HTTP response")
        .expect("a complete response");
    assert_eq!(used, buf.len(), "bytes after the response");
    response
}

/// The access log, waiting up to 3 s until it has a line containing each of `needles`.
fn log_lines_with(path: &Path, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found: Vec<String> = needles
            .iter()
            .filter_map(|n| text.lines().find(|l| l.contains(n)).map(str::to_string))
            .collect();
        if found.len() == needles.len() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no log lines with {needles:?} in 3 s; log: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A GET that keeps the connection open.
fn request_keep_alive(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn logged(dir: &Path) -> (PathBuf, impl FnOnce(Config) -> Config) {
    let path = dir.join("access.log");
    let log = path.clone();
    (path, move |c: Config| c.access_log(AccessLog::File(log)))
}

each_mode! {
    fn unix_socket_serves_and_is_removed_on_shutdown(ctx) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("origin.sock");
        let (log, with_log) = logged(dir.path());
        let s = sock.clone();
        let mut srv = ctx.start_with(move |c| with_log(c).listen_unix(s));
        assert_runs_its_mode(&ctx, &srv);
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let r = unix_get(&sock, "/index.html", &["User-Agent: over-unix"]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, INDEX_HTML.as_bytes());
        r.assert_common_headers();
        // TCP still serves next to it.
        assert_eq!(srv.get("/index.html").body, INDEX_HTML.as_bytes());
        // A Unix peer has no address: logged as nginx logs it.
        let line = &log_lines_with(&log, &["over-unix"])[0];
        assert!(line.starts_with("unix: - - ["), "{line}");
        assert!(srv.join_within(Duration::from_secs(10)));
        assert!(!sock.exists(), "the socket file outlived the server");
    }

    fn a_stale_unix_socket_is_replaced(ctx) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("origin.sock");
        // What a crashed server leaves: a socket file nobody listens on.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let s = sock.clone();
        let srv = ctx.start_with(move |c| c.listen_unix(s));
        assert_runs_its_mode(&ctx, &srv);
        assert_eq!(unix_get(&sock, "/", &[]).status, 200);
    }

    fn a_live_unix_socket_is_refused(ctx) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("origin.sock");
        let s = sock.clone();
        let first = ctx.start_with(move |c| c.listen_unix(s));
        assert_runs_its_mode(&ctx, &first);
        let fixture = Fixture::new();
        let err = Server::bind(ctx.config(fixture.root()).listen_unix(&sock))
            .expect_err("a second server took a live socket");
        assert!(matches!(err, StartError::BindUnix { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot listen on unix:{}: another process is listening on it", sock.display())
        );
        // The refused attempt did not disturb the first server.
        assert_eq!(unix_get(&sock, "/", &[]).status, 200);
    }

    fn forwarded_client_is_logged_only_from_trusted_peers(ctx) {
        let dir = tempfile::tempdir().unwrap();
        let (log, with_log) = logged(dir.path());
        let trusted = ctx.start_with(move |c| with_log(c).trusted_proxy(trust("127.0.0.1/32")));
        // Two lines are one list; read from the right, the trusted hop 127.0.0.1 is skipped.
        let r = trusted.get_with(
            "/index.html",
            &["User-Agent: t1", "X-Forwarded-For: 198.51.100.23", "X-Forwarded-For: 127.0.0.1"],
        );
        assert_eq!(r.status, 200);
        let _ = trusted.get_with("/", &["User-Agent: t2", "X-Real-IP: 203.0.113.9"]);
        // A spoofed entry left of the real client is never reached.
        let _ = trusted.get_with("/", &["User-Agent: t3", "X-Forwarded-For: 1.2.3.4, 192.0.2.44"]);
        let lines = log_lines_with(&log, &["\"t1\"", "\"t2\"", "\"t3\""]);
        assert!(lines[0].starts_with("198.51.100.23 - - ["), "{}", lines[0]);
        assert!(lines[1].starts_with("203.0.113.9 - - ["), "{}", lines[1]);
        assert!(lines[2].starts_with("192.0.2.44 - - ["), "{}", lines[2]);

        let dir = tempfile::tempdir().unwrap();
        let (log, with_log) = logged(dir.path());
        let untrusted = ctx.start_with(move |c| with_log(c).trusted_proxy(trust("10.0.0.0/8")));
        let _ = untrusted.get_with(
            "/",
            &["User-Agent: spoof", "X-Forwarded-For: 198.51.100.23", "X-Real-IP: 198.51.100.24"],
        );
        let line = &log_lines_with(&log, &["\"spoof\""])[0];
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    }

    fn unix_peers_are_trusted_only_with_unix(ctx) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("o.sock");
        let (log, with_log) = logged(dir.path());
        let s = sock.clone();
        let srv = ctx.start_with(move |c| {
            with_log(c).listen_unix(s).trusted_proxy(TrustedProxy::Unix)
        });
        assert_runs_its_mode(&ctx, &srv);
        let _ = unix_get(&sock, "/", &["User-Agent: u1", "X-Forwarded-For: 198.51.100.23"]);
        let line = &log_lines_with(&log, &["\"u1\""])[0];
        assert!(line.starts_with("198.51.100.23 - - ["), "{line}");

        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("o.sock");
        let (log, with_log) = logged(dir.path());
        let s = sock.clone();
        let _srv = ctx.start_with(move |c| {
            with_log(c).listen_unix(s).trusted_proxy(trust("127.0.0.1"))
        });
        let _ = unix_get(&sock, "/", &["User-Agent: u2", "X-Forwarded-For: 198.51.100.23"]);
        let line = &log_lines_with(&log, &["\"u2\""])[0];
        assert!(line.starts_with("unix: - - ["), "{line}");
    }

    fn health_path_answers_ok_and_is_not_cached(ctx) {
        let srv = ctx.start_with(|c| c.health_path("/-/health"));
        let r = srv.get("/-/health");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        r.assert_common_headers();
        assert_eq!(r.body, b"ok\n");
        assert_eq!(r.must("cache-control"), "no-store");
        assert_eq!(r.must("content-type"), "text/plain; charset=utf-8");
        assert_eq!(r.header("etag"), None);
        let head = srv.head_with("/-/health", &[]);
        assert_eq!(head.status, 200);
        assert_eq!(head.must("content-length"), "3");
        assert!(head.body.is_empty());
        // The query is ignored, as for files; other paths are files as usual.
        assert_eq!(srv.get("/-/health?probe=1").body, b"ok\n");
        assert_eq!(srv.get("/-/health/x").status, 404);
        // Off unless configured.
        assert_eq!(ctx.start().get("/-/health").status, 404);
    }

    fn health_is_503_during_the_drain_delay_while_connections_are_still_accepted(ctx) {
        let mut srv = ctx.start_with(|c| {
            c.health_path("/-/health").drain_delay(Duration::from_millis(1500))
        });
        let mut kept = srv.conn();
        kept.send(request_keep_alive("/-/health").as_bytes());
        assert_eq!(kept.read_response(false).status, 200);
        let asked = Instant::now();
        srv.shutdown();
        // New connections are accepted and served, but say they close; health says 503.
        let health = srv.get("/-/health");
        assert_eq!(health.status, 503);
        assert_eq!(health.body, b"draining\n");
        assert!(health.closes());
        let file = srv.get_with("/index.html", &[]);
        assert_eq!(file.status, 200);
        assert_eq!(file.body, INDEX_HTML.as_bytes());
        // A keep-alive connection from before gets its answer and is closed after it.
        kept.send(request_keep_alive("/index.html").as_bytes());
        let r = kept.read_response(false);
        assert_eq!(r.status, 200);
        assert!(r.closes());
        kept.assert_closed();
        let addr = srv.addr;
        assert!(srv.join_within(Duration::from_secs(10)));
        assert!(
            asked.elapsed() >= Duration::from_millis(1400),
            "stopped before the drain delay: {:?}",
            asked.elapsed()
        );
        assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    }

    fn status_path_reports_counters_in_prometheus_format(ctx) {
        let srv = ctx.start_with(|c| c.status_path("/metrics"));
        assert_eq!(srv.get("/index.html").status, 200);
        assert_eq!(srv.get("/nope").status, 404);
        let tag = srv.get("/style.css").must("etag").to_string();
        let inm = format!("If-None-Match: {tag}");
        assert_eq!(srv.get_with("/style.css", &[&inm]).status, 304);
        let r = srv.get("/metrics");
        assert_eq!(r.status, 200);
        r.assert_common_headers();
        assert_eq!(r.must("content-type"), "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(r.must("cache-control"), "no-store");
        let text = r.body_str();
        let total = |series: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no {series} in\n{text}"))
                .parse()
                .unwrap()
        };
        assert_eq!(total("ringserve_requests_total{class=\"2xx\"}"), 2);
        assert_eq!(total("ringserve_requests_total{class=\"3xx\"}"), 1);
        assert_eq!(total("ringserve_requests_total{class=\"4xx\"}"), 1);
        assert_eq!(total("ringserve_not_modified_total"), 1);
        assert_eq!(total("ringserve_connections_accepted_total"), 5);
        // This connection is being served while the text is rendered; the four before it may
        // still be closing on the server's side (their clients have read their responses).
        let active = total("ringserve_connections_active");
        assert!((1..=5).contains(&active), "active {active}");
        assert!(total("ringserve_sent_bytes_total") > INDEX_HTML.len() as u64);
        assert!(text.contains("ringserve_requests_total{class=\"2xx\",worker=\"0\"} "));
        assert!(text.contains("# TYPE ringserve_requests_total counter\n"));
        assert!(text.contains("# TYPE ringserve_connections_active gauge\n"));
        let head = srv.head_with("/metrics", &[]);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        // The gauge comes down: soon only the scraping connection is active (at most 3 s).
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let text = srv.get("/metrics").body_str();
            let line = text
                .lines()
                .find(|l| l.starts_with("ringserve_connections_active "))
                .map(str::to_string);
            if line.as_deref() == Some("ringserve_connections_active 1") {
                break;
            }
            assert!(Instant::now() < deadline, "active gauge stuck: {line:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn redirects_are_relative_so_a_prefix_stripping_proxy_keeps_working(ctx) {
        let srv = ctx.start();
        // Behind `location /site/ { proxy_pass http://origin/; }` the client asked for
        // /site/dir; an absolute `Location: /dir/` would send it out of /site/.
        for (target, location) in [("/dir", "dir/"), ("/dir?a=1", "dir/?a=1")] {
            let r = srv.get_with(target, &["X-Forwarded-Proto: https", "X-Forwarded-Prefix: /site"]);
            assert_eq!(r.status, 301, "{target}");
            assert_eq!(r.must("location"), location, "{target}");
        }
    }

    fn validators_and_cache_control_match_on_200_and_304_and_nothing_varies(ctx) {
        let srv = ctx.start_with(|c| c.cache_control("public, max-age=60"));
        for path in ["/style.css", "/100k.bin", "/", "/favicon.ico"] {
            let full = srv.get(path);
            assert_eq!(full.status, 200, "{path}");
            let inm = format!("If-None-Match: {}", full.must("etag"));
            let head = srv.head_with(path, &[]);
            let not_modified = srv.get_with(path, &[&inm]);
            assert_eq!(not_modified.status, 304, "{path}");
            let ims = format!("If-Modified-Since: {}", full.must("last-modified"));
            let by_date = srv.get_with(path, &[&ims]);
            assert_eq!(by_date.status, 304, "{path}");
            for r in [&head, &not_modified, &by_date] {
                for name in ["etag", "last-modified", "cache-control"] {
                    assert_eq!(r.must(name), full.must(name), "{path} {name} on {}", r.status);
                }
            }
            // One representation per URL: a cache must not key on any request header.
            for r in [&full, &head, &not_modified, &by_date] {
                assert_eq!(r.header("vary"), None, "{path}: {:#?}", r.headers);
            }
        }
        assert_eq!(srv.get("/style.css").must("cache-control"), "public, max-age=60");
    }

    fn etags_are_identical_on_separate_instances_with_separate_copies(ctx) {
        // Two origins on two hosts: separate copies of the same files, written at different
        // moments, given the same mtime (as rsync -t or a deploy tool does).
        let a = Fixture::new();
        let b = Fixture::new();
        assert_ne!(a.root(), b.root());
        let srv_a = ctx.serve(a.root(), |c| c);
        let srv_b = ctx.serve(b.root(), |c| c);
        for path in ["/index.html", "/style.css", "/100k.bin", "/"] {
            let (ra, rb) = (srv_a.get(path), srv_b.get(path));
            assert_etag_shape(ra.must("etag"));
            assert_eq!(ra.must("etag"), rb.must("etag"), "{path}");
            assert_eq!(ra.must("last-modified"), rb.must("last-modified"), "{path}");
        }
        // The multipart boundary derives from the ETag, so even those bodies are identical.
        let ranges = ["Range: bytes=0-9,5000-5009"];
        assert_eq!(srv_a.get_with("/100k.bin", &ranges).body, srv_b.get_with("/100k.bin", &ranges).body);
    }
}

#[test]
fn probe_paths_that_would_hide_a_file_are_refused_at_start() {
    let fixture = Fixture::new();
    for (config, message) in [
        (
            Config::new(fixture.root()).health_path("/index.html"),
            "--health-path /index.html would hide ",
        ),
        (
            Config::new(fixture.root()).status_path("/dir"),
            "--status-path /dir would hide ",
        ),
        (
            Config::new(fixture.root()).status_path("/.hidden"),
            "--status-path /.hidden would hide ",
        ),
    ] {
        let err = Server::bind(config.listen(loopback0())).expect_err(message);
        assert!(matches!(err, StartError::Invalid(_)), "{err:?}");
        assert!(err.to_string().starts_with(message), "{err}");
    }
}
