//! The `ringserve` binary: start-up line, serving, SIGTERM, and the start-up errors (exit 2).
//!
//! Every child runs inside a [`Child`] guard that kills it if the test fails, and every wait is
//! bounded.

#[path = "support/child.rs"]
mod child;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{self, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

fn ringserve() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringserve"))
}

/// A running `ringserve`, killed on drop; its stderr lines arrive on a channel.
struct Child {
    child: process::Child,
    stderr: child::Stderr,
}

impl Child {
    fn spawn(cmd: &mut Command) -> Child {
        Child::spawn_with_stdout(cmd, Stdio::null())
    }

    fn spawn_with_stdout(cmd: &mut Command, stdout: Stdio) -> Child {
        let (child, stderr) = child::spawn_with_stdout(cmd, stdout);
        Child { child, stderr }
    }

    /// The start-up line, skipping any line before it (such as a fallback notice); at most
    /// 5 s and 20 lines.
    fn startup_line(&self) -> String {
        self.stderr
            .line("ringserve: serving ", TIMEOUT)
            .unwrap_or_else(|seen| panic!("no start-up line; stderr: {seen:?}"))
    }

    /// Sends SIGTERM (with kill(1), so the test needs no signal bindings).
    fn terminate(&self) {
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(killed.success());
    }

    /// Waits up to 5 s for the exit.
    fn wait(&mut self) -> ExitStatus {
        child::wait_exit(&mut self.child, TIMEOUT)
    }

    /// Every stderr line after the exit.
    fn remaining_stderr(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.stderr.next(TIMEOUT) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        child::reap(&mut self.child);
    }
}

/// Runs `ringserve args`, expecting it to exit by itself; returns (status, stderr lines).
fn run(args: &[&str]) -> (ExitStatus, Vec<String>) {
    let mut child = Child::spawn(ringserve().args(args));
    let status = child.wait();
    (status, child.remaining_stderr())
}

/// Parses `ringserve: serving <root> at http://<addr>/ (mode <mode>, ...)`.
fn parse_startup(line: &str, root: &Path) -> SocketAddr {
    let rest = line
        .strip_prefix("ringserve: serving ")
        .unwrap_or_else(|| panic!("start-up line {line:?}"));
    let (shown_root, rest) = rest
        .split_once(" at http://")
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert!(
        shown_root.contains(root.file_name().unwrap().to_str().unwrap()),
        "root {root:?} not in {line:?}"
    );
    let (addr, rest) = rest
        .split_once("/ (mode ")
        .unwrap_or_else(|| panic!("no mode in {line:?}"));
    assert!(
        rest.starts_with("uring") || rest.starts_with("threaded"),
        "mode in {line:?}"
    );
    addr.parse()
        .unwrap_or_else(|e| panic!("address {addr:?} in {line:?}: {e}"))
}

fn http_get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    get_over(stream, path)
}

/// `GET target` with `Connection: close` on a connected stream; everything until EOF.
fn get_over(stream: impl Read + Write, target: &str) -> Vec<u8> {
    exchange(
        stream,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `request` on a connected stream and returns everything until EOF.
fn exchange(mut stream: impl Read + Write, request: &str) -> Vec<u8> {
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read reply");
    reply
}

/// A temporary directory holding `site/index.html` with `index`; returns (guard, site root).
fn site_with_index(index: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("index.html"), index).unwrap();
    (dir, root)
}

fn assert_usage_error(args: &[&str]) {
    let (status, stderr) = run(args);
    assert_eq!(status.code(), Some(2), "{args:?}: stderr {stderr:?}");
    assert_eq!(stderr.len(), 1, "{args:?}: not one line: {stderr:?}");
    assert!(
        stderr[0].starts_with("ringserve: error: "),
        "{args:?}: {stderr:?}"
    );
}

#[test]
fn serves_then_exits_cleanly_on_sigterm() {
    for mode in ["threaded", "uring"] {
        serve_then_sigterm(mode);
    }
}

fn serve_then_sigterm(mode: &str) {
    let (_dir, root) = site_with_index("<p>cli test</p>\n");
    let mut child = Child::spawn(
        ringserve()
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--mode")
            .arg(mode)
            .arg(&root),
    );
    let addr = parse_startup(&child.startup_line(), &root);
    assert_ne!(addr.port(), 0);
    let reply = http_get(addr, "/");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.ends_with(b"<p>cli test</p>\n"), "{reply:?}");

    child.terminate();
    let status = child.wait();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");
}

/// A seccomp filter that makes `io_uring_setup` fail with EPERM, as a container runtime's
/// default profile does; installed in the child between fork and exec.
#[cfg(target_arch = "x86_64")]
fn forbid_io_uring(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let filter = [
        // A = seccomp_data.arch; anything but x86_64 is allowed untouched.
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 4,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 3,
            k: AUDIT_ARCH_X86_64,
        },
        // A = seccomp_data.nr; io_uring_setup → EPERM, everything else allowed.
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        },
    ];
    // SAFETY: the closure runs in the forked child before exec and only makes two prctl
    // calls on memory (`filter`, `prog`) that is live for their duration.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &raw const prog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn forbidden_io_uring_falls_back_to_threaded_with_one_line() {
    let (_dir, root) = site_with_index("<p>fallback</p>\n");
    let mut cmd = ringserve();
    cmd.args(["--listen", "127.0.0.1:0"]).arg(&root);
    forbid_io_uring(&mut cmd);
    let child = Child::spawn(&mut cmd);
    let first = child.stderr.next(TIMEOUT).expect("a line on stderr");
    // The reason names EPERM (and kernel.io_uring_disabled when that is what is set).
    assert!(
        first.starts_with("ringserve: io_uring is unavailable: ")
            && first.contains("(EPERM")
            && first.ends_with("; running the threaded mode"),
        "{first}"
    );
    let startup = child.startup_line();
    assert!(startup.contains("(mode threaded, "), "{startup}");
    let addr = parse_startup(&startup, &root);
    let reply = http_get(addr, "/");
    assert!(reply.ends_with(b"<p>fallback</p>\n"), "{reply:?}");
}

#[test]
fn default_mode_starts_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::spawn(
        ringserve()
            .args(["--listen", "127.0.0.1:0"])
            .arg(dir.path()),
    );
    let addr = parse_startup(&child.startup_line(), dir.path());
    let reply = http_get(addr, "/favicon.ico");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
}

#[test]
fn missing_root_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let (status, stderr) = run(&["--listen", "127.0.0.1:0", missing.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "stderr {stderr:?}");
    assert_eq!(stderr.len(), 1, "stderr {stderr:?}");
    assert!(stderr[0].contains("no-such-dir"), "stderr {stderr:?}");
}

#[test]
fn busy_port_exits_2_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = run(&["--listen", &addr, dir.path().to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "stderr {stderr:?}");
    assert_eq!(stderr.len(), 1, "stderr {stderr:?}");
    assert!(stderr[0].contains(&addr), "stderr {stderr:?}");
    drop(taken);
}

#[test]
fn bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    assert_usage_error(&["--max-conns", "abc", root]);
    assert_usage_error(&["--mode", "nope", root]);
    assert_usage_error(&["--listen", "not-an-address", root]);
    assert_usage_error(&["--header-timeout", "-1", root]);
    assert_usage_error(&["--no-such-flag", root]);
    assert_usage_error(&["--max-head", "10", root]);
    assert_usage_error(&["--shutdown-grace", "0", root]);
    assert_usage_error(&["--cache-control", "a\u{1}b", root]);
    assert_usage_error(&["--precompressed", "zst", root]);
    assert_usage_error(&["--precompressed", "br,br", root]);
}

/// `--precompressed`: on by default in the order br, zstd, gzip; a list reorders; `off`
/// serves files only as they are.
#[test]
fn precompressed_flag_chooses_the_codings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.css"), "body{}").unwrap();
    std::fs::write(dir.path().join("a.css.br"), "BR").unwrap();
    std::fs::write(dir.path().join("a.css.gz"), "GZ").unwrap();
    let request = "GET /a.css HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br\r\n\
                   Connection: close\r\n\r\n";
    for (flag, expected) in [
        (None, Some("br")),
        (Some("gzip,br"), Some("gzip")),
        (Some("off"), None),
    ] {
        let mut cmd = ringserve();
        cmd.args(["--listen", "127.0.0.1:0", "--mode", "threaded"]);
        if let Some(f) = flag {
            cmd.args(["--precompressed", f]);
        }
        let child = Child::spawn(cmd.arg(dir.path()));
        let addr = parse_startup(&child.startup_line(), dir.path());
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let reply = String::from_utf8_lossy(&exchange(stream, request)).into_owned();
        let encoding = reply
            .lines()
            .find_map(|l| l.strip_prefix("Content-Encoding: "))
            .map(str::trim);
        assert_eq!(encoding, expected, "--precompressed {flag:?}: {reply:?}");
        assert_eq!(
            reply.contains("Vary: Accept-Encoding"),
            expected.is_some(),
            "{reply:?}"
        );
        child.terminate();
    }
}

#[test]
fn max_head_flag_sets_the_head_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "x").unwrap();
    let child = Child::spawn(
        ringserve()
            .args([
                "--listen",
                "127.0.0.1:0",
                "--mode",
                "threaded",
                "--max-head",
                "1024",
            ])
            .arg(dir.path()),
    );
    let addr = parse_startup(&child.startup_line(), dir.path());
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let filler = "a".repeat(2048);
    let reply = exchange(
        stream,
        &format!("GET / HTTP/1.1\r\nHost: h\r\nX-Filler: {filler}\r\n\r\n"),
    );
    assert!(
        reply.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(
        http_get(addr, "/").split(|&b| b == b'\r').next(),
        Some(&b"HTTP/1.1 200 OK"[..])
    );
}

#[test]
fn help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("help.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Child::spawn_with_stdout(ringserve().arg("--help"), Stdio::from(out));
    let status = child.wait();
    assert_eq!(
        status.code(),
        Some(0),
        "stderr {:?}",
        child.remaining_stderr()
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("--listen"), "help text {text:?}");
    assert!(text.contains("--mode"), "help text {text:?}");
}

#[test]
fn access_log_to_stdout() {
    let (_dir, root) = site_with_index("<p>logged</p>\n");
    let mut child = Child::spawn_with_stdout(
        ringserve()
            .args([
                "--listen",
                "127.0.0.1:0",
                "--mode",
                "threaded",
                "--access-log",
                "-",
            ])
            .arg(&root),
        Stdio::piped(),
    );
    let stdout = child.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = parse_startup(&child.startup_line(), &root);
    let reply = http_get(addr, "/index.html");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
    let line = rx
        .recv_timeout(TIMEOUT)
        .expect("no access-log line on stdout within 5 s");
    assert!(line.starts_with("127.0.0.1 - - ["), "{line:?}");
    assert!(
        line.contains("] \"GET /index.html HTTP/1.1\" 200 "),
        "{line:?}"
    );
}

#[test]
fn a_bad_trusted_proxy_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    for (value, reason) in [
        ("10.0.0.0/33", "prefix /33 is longer than 32 bits"),
        ("10.1.2.3/8", "host bits set (did you mean 10.0.0.0/8?)"),
        ("localhost", "'localhost' is not an IPv4 or IPv6 address"),
    ] {
        let (status, stderr) = run(&["--trusted-proxy", value, root]);
        assert_eq!(status.code(), Some(2), "{value}: stderr {stderr:?}");
        let errors: Vec<_> = stderr.iter().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{value}: stderr {stderr:?}");
        assert!(
            errors[0].contains("--trusted-proxy") && errors[0].contains(reason),
            "{value}: stderr {stderr:?}"
        );
    }
    assert_usage_error(&["--listen", "unix:relative.sock", root]);
    assert_usage_error(&["--health-path", "healthz", root]);
    assert_usage_error(&["--status-path", "/a/../b", root]);
}

#[test]
fn a_probe_path_that_hides_a_file_exits_2_with_one_line() {
    let (_dir, root) = site_with_index("<p>x</p>\n");
    for flag in ["--health-path", "--status-path"] {
        let (status, stderr) = run(&[
            "--listen",
            "127.0.0.1:0",
            flag,
            "/index.html",
            root.to_str().unwrap(),
        ]);
        assert_eq!(status.code(), Some(2), "stderr {stderr:?}");
        assert_eq!(stderr.len(), 1, "stderr {stderr:?}");
        assert!(
            stderr[0].starts_with(&format!("ringserve: error: {flag} /index.html would hide ")),
            "stderr {stderr:?}"
        );
    }
}

/// `ringserve: serving <root> at unix:<path> (mode …)` → the path.
fn parse_unix_startup(line: &str) -> std::path::PathBuf {
    let rest = line
        .split_once(" at unix:")
        .unwrap_or_else(|| panic!("no unix: address in {line:?}"))
        .1;
    let (path, _) = rest
        .split_once(" (mode ")
        .unwrap_or_else(|| panic!("no mode in {line:?}"));
    path.into()
}

fn unix_http_get(path: &Path, target: &str) -> Vec<u8> {
    let stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    get_over(stream, target)
}

#[test]
fn unix_socket_serves_probes_and_is_removed_on_sigterm() {
    let (dir, root) = site_with_index("<p>over unix</p>\n");
    let sock = dir.path().join("rs.sock");
    let listen = format!("unix:{}", sock.display());
    let mut child = Child::spawn(
        ringserve()
            .args(["--listen", &listen, "--mode", "threaded"])
            .args(["--health-path", "/healthz", "--status-path", "/metrics"])
            .args(["--trusted-proxy", "unix:", "--trusted-proxy", "10.0.0.0/8"])
            .arg(&root),
    );
    assert_eq!(parse_unix_startup(&child.startup_line()), sock);
    let reply = unix_http_get(&sock, "/");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.ends_with(b"<p>over unix</p>\n"), "{reply:?}");
    let reply = unix_http_get(&sock, "/healthz");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.ends_with(b"\r\n\r\nok\n"), "{reply:?}");
    let reply = String::from_utf8(unix_http_get(&sock, "/metrics")).unwrap();
    assert!(
        reply.contains("\nringserve_requests_total{class=\"2xx\"} 2\n"),
        "{reply}"
    );

    // A second instance on the same live socket is refused with one clear line.
    let (status, stderr) = run(&[
        "--listen",
        &listen,
        "--mode",
        "threaded",
        root.to_str().unwrap(),
    ]);
    assert_eq!(status.code(), Some(2), "stderr {stderr:?}");
    assert_eq!(
        stderr,
        [format!(
            "ringserve: error: cannot listen on {listen}: another process is listening on it"
        )]
    );

    child.terminate();
    assert_eq!(child.wait().code(), Some(0));
    assert!(!sock.exists(), "socket file left behind after SIGTERM");
}

#[test]
fn drain_delay_keeps_serving_with_health_503_after_sigterm() {
    let (_dir, root) = site_with_index("<p>draining</p>\n");
    let mut child = Child::spawn(
        ringserve()
            .args(["--listen", "127.0.0.1:0", "--mode", "threaded"])
            .args(["--health-path", "/healthz", "--drain-delay", "1"])
            .arg(&root),
    );
    let addr = parse_startup(&child.startup_line(), &root);
    assert!(http_get(addr, "/healthz").starts_with(b"HTTP/1.1 200 OK\r\n"));
    let started = Instant::now();
    child.terminate();
    // The signal is handled asynchronously: poll until health turns (well within the delay).
    let turned_by = started + Duration::from_millis(800);
    loop {
        let health = http_get(addr, "/healthz");
        if health.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n") {
            break;
        }
        assert!(health.starts_with(b"HTTP/1.1 200 OK\r\n"), "{health:?}");
        assert!(
            Instant::now() < turned_by,
            "health still 200 800 ms after SIGTERM"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let page = http_get(addr, "/");
    assert!(page.starts_with(b"HTTP/1.1 200 OK\r\n"), "{page:?}");
    assert!(page.ends_with(b"<p>draining</p>\n"), "{page:?}");
    assert_eq!(child.wait().code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_usage_error(&["--drain-delay", "-1", root.to_str().unwrap()]);
    assert_usage_error(&["--drain-delay", "soon", root.to_str().unwrap()]);
}

/// The CPUs each `ringserve-w*` thread of `pid` may run on, read back from `/proc`.
fn worker_affinities(pid: u32) -> Vec<String> {
    let mut lists = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("ringserve-w") {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).expect("status");
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list")
            .trim()
            .to_string();
        lists.push(list);
    }
    lists
}

fn own_affinity() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string()
}

/// Starts the binary in the uring mode with `args`, optionally on CPU 0 only; returns the
/// start-up line and the workers' affinities, or `None` when io_uring does not run here.
fn pinned_run(args: &[&str], cpu0_only: bool) -> Option<(String, Vec<String>)> {
    let (_dir, root) = site_with_index("<p>pin</p>\n");
    let mut cmd = ringserve();
    cmd.args(["--listen", "127.0.0.1:0"]).args(args).arg(&root);
    if cpu0_only {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls: sched_setaffinity on a
        // set built on this stack.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = Child::spawn(&mut cmd);
    let line = child.startup_line();
    if !line.contains("(mode uring,") {
        assert!(
            std::env::var_os("RINGSERVE_REQUIRE_URING").is_none_or(|v| v != "1"),
            "RINGSERVE_REQUIRE_URING=1 but: {line}"
        );
        eprintln!("skipped: io_uring does not run here: {line}");
        return None;
    }
    let lists = worker_affinities(child.child.id());
    child.terminate();
    assert_eq!(child.wait().code(), Some(0));
    Some((line, lists))
}

#[test]
fn pin_choices_do_what_they_say_read_back_from_proc() {
    let all = own_affinity();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // --pin on: every worker on one CPU, one each while there are CPUs.
    let Some((line, lists)) = pinned_run(&["--pin", "on", "--workers", "2"], false) else {
        return;
    };
    assert!(line.contains("pinned (--pin on)"), "{line}");
    assert_eq!(lists.len(), 2, "{line}");
    for list in &lists {
        assert!(
            list.parse::<usize>().is_ok(),
            "a pinned worker may run on {list}"
        );
    }
    if cpus >= 2 {
        assert_ne!(lists[0], lists[1], "two workers pinned to one CPU");
    }
    // --pin off: every worker may run wherever the process may.
    let (line, lists) = pinned_run(&["--pin", "off", "--workers", "2"], false).expect("ran above");
    assert!(line.contains("not pinned (--pin off)"), "{line}");
    assert!(
        lists.iter().all(|l| *l == all),
        "{lists:?} vs the process's {all}"
    );
    // auto on the whole machine: not pinned, and the line says why.
    let (line, lists) = pinned_run(&["--workers", "2"], false).expect("ran above");
    if crate_online_cpus() == cpus {
        assert!(line.contains("not pinned: the "), "{line}");
        assert!(lists.iter().all(|l| *l == all), "{lists:?}");
    }
    // auto with a CPU set of its own (CPU 0 of several): pinned to it.
    if crate_online_cpus() >= 2 {
        let (line, lists) = pinned_run(&[], true).expect("ran above");
        assert!(line.contains("pinned: this process has 1 of the"), "{line}");
        assert_eq!(lists, vec!["0".to_string()], "{line}");
    } else {
        eprintln!("note: one CPU online; the CPU-set case of --pin auto is not exercised");
    }
}

fn crate_online_cpus() -> usize {
    // SAFETY: sysconf reads a system constant.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(1)
}

/// Sets the child's descriptor limits between fork and exec.
fn with_nofile(cmd: &mut Command, soft: u64, hard: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes one setrlimit call on
    // a local that lives for its duration.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The hard descriptor limit of this test process (the child's may only be lowered from it).
fn hard_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live local of the type getrlimit writes.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) };
    assert_eq!(rc, 0);
    lim.rlim_max
}

#[test]
fn a_low_soft_limit_is_raised_to_the_hard_one_and_the_cap_derived_from_it() {
    let hard = hard_nofile().min(4096);
    assert!(
        hard > 256,
        "this test needs a hard limit above 256, not {hard}"
    );
    let (_dir, root) = site_with_index("<p>fds</p>\n");
    let child = Child::spawn(with_nofile(
        ringserve()
            .args(["--listen", "127.0.0.1:0", "--mode", "threaded"])
            .arg(&root),
        256,
        hard,
    ));
    let line = child.startup_line();
    // (hard − 32 − (1 listener + 4)) / 2: the formula of src/server/fdbudget.rs.
    let cap = (hard - 37) / 2;
    assert!(
        line.ends_with(&format!(
            ", up to {cap} connections with {hard} descriptors)"
        )),
        "{line}"
    );
    let addr = parse_startup(&line, &root);
    assert!(http_get(addr, "/").ends_with(b"<p>fds</p>\n"));
}

#[test]
fn a_max_conns_beyond_the_hard_limit_is_clamped_with_one_warning() {
    let (_dir, root) = site_with_index("<p>fds</p>\n");
    for (mode, workers, reserve) in [("threaded", "1", 37), ("uring", "2", 32 + 2 * 5 + 64)] {
        let child = Child::spawn(with_nofile(
            ringserve()
                .args(["--listen", "127.0.0.1:0", "--max-conns", "5000"])
                .args(["--mode", mode, "--workers", workers])
                .arg(&root),
            256,
            256,
        ));
        let deadline = Instant::now() + TIMEOUT;
        let mut before = Vec::new();
        let line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match child.stderr.next(left) {
                Some(l) if l.starts_with("ringserve: serving ") => break l,
                Some(l) => before.push(l),
                None => panic!("{mode}: no start-up line; stderr {before:?}"),
            }
        };
        if !line.contains("(mode uring") && mode == "uring" {
            eprintln!("skipped: the uring half: io_uring is unavailable here ({before:?})");
            continue;
        }
        let cap = (256 - reserve) / 2;
        assert_eq!(
            before,
            [format!(
                "ringserve: warning: --max-conns 5000 needs more descriptors than the limit of \
                 256 allows; serving at most {cap} connections"
            )],
            "{mode}"
        );
        assert!(
            line.ends_with(&format!(", up to {cap} connections with 256 descriptors)")),
            "{mode}: {line}"
        );
        let addr = parse_startup(&line, &root);
        assert!(http_get(addr, "/").ends_with(b"<p>fds</p>\n"));
    }
}

/// Accept meets EMFILE: the server's soft limit is lowered (prlimit) to 3 descriptors above
/// what it holds once started, below what its connection cap was derived from, and 100 idle
/// connections arrive. Accepting backs off (its error logged at most once a second, not once
/// per try) and, once the flood leaves, a fresh client is served.
///
/// Threaded mode only: an io_uring accept takes the descriptor limit in force when it was
/// armed (the kernel reads it when the request is prepared), so lowering the limit of a running
/// uring server does not reach its multishot accept, and a limit low at start is covered by
/// the connection cap derived from it (`a_max_conns_beyond_the_hard_limit_is_clamped…`).
#[test]
fn accept_at_the_descriptor_limit_backs_off_and_recovers() {
    let (_dir, root) = site_with_index("<p>fds</p>\n");
    {
        let mode = "threaded";
        let child = Child::spawn(with_nofile(
            ringserve()
                .args(["--listen", "127.0.0.1:0", "--mode", mode, "--workers", "1"])
                .arg(&root),
            256,
            256,
        ));
        let addr = parse_startup(&child.startup_line(), &root);
        // One request first: the root's watches (an inotify instance and its walk) are set
        // up by the first request, as they are on any server that has served.
        assert!(http_get(addr, "/").starts_with(b"HTTP/1.1 200 OK\r\n"));
        let pid = libc::pid_t::try_from(child.child.id()).unwrap();
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count() as u64;
        let lowered = libc::rlimit {
            rlim_cur: open + 3,
            rlim_max: 256,
        };
        // SAFETY: `lowered` lives for the call; the old limits are not asked for (null).
        let rc = unsafe {
            libc::prlimit(
                pid,
                libc::RLIMIT_NOFILE,
                &raw const lowered,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
        let flood: Vec<TcpStream> = (0..100)
            .filter_map(|_| TcpStream::connect_timeout(&addr, TIMEOUT).ok())
            .collect();
        assert_eq!(
            flood.len(),
            100,
            "{mode}: not every flood connection connected"
        );
        // Wait (bounded) for the proof that accept met the limit: its rate-limited log line.
        let deadline = Instant::now() + TIMEOUT;
        let mut logged = Vec::new();
        while !logged
            .iter()
            .any(|l: &String| l.contains("Too many open files"))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match child.stderr.next(left) {
                Some(l) => logged.push(l),
                None => panic!("{mode}: accept never met EMFILE; stderr {logged:?}"),
            }
        }
        drop(flood);
        let deadline = Instant::now() + Duration::from_secs(10);
        let served = loop {
            let reply = TcpStream::connect_timeout(&addr, TIMEOUT)
                .ok()
                .map(|s| {
                    s.set_read_timeout(Some(TIMEOUT)).unwrap();
                    get_over(s, "/")
                })
                .unwrap_or_default();
            if reply.starts_with(b"HTTP/1.1 200 OK\r\n") || Instant::now() > deadline {
                break reply;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(served.ends_with(b"<p>fds</p>\n"), "{mode}: {served:?}");
        logged.extend(child.stderr.drain());
        assert!(
            logged.len() <= 15,
            "{mode}: accept errors logged {} times: {logged:?}",
            logged.len()
        );
    }
}

#[test]
fn a_page_flag_naming_no_file_exits_2_with_one_line() {
    let (_dir, root) = site_with_index("<p>x</p>\n");
    for flag in ["--not-found", "--fallback"] {
        let (status, stderr) = run(&[
            "--listen",
            "127.0.0.1:0",
            flag,
            "/404.html",
            root.to_str().unwrap(),
        ]);
        assert_eq!(status.code(), Some(2), "stderr {stderr:?}");
        assert_eq!(stderr.len(), 1, "stderr {stderr:?}");
        assert!(
            stderr[0].starts_with(&format!(
                "ringserve: error: {flag} '/404.html': no regular file "
            )),
            "stderr {stderr:?}"
        );
    }
}
