//! `--config FILE` and `--check-config FILE` (issue 14): the file's values take effect, the
//! command line wins, and every kind of error is one `ringserve: error: FILE:LINE:COL: …` line
//! with exit status 2. Runs the binary; every wait is bounded.

#[path = "support/child.rs"]
mod child;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Kills the server if a test fails.
struct Server {
    child: Child,
    stderr: child::Stderr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let (child, stderr) =
            child::spawn(Command::new(env!("CARGO_BIN_EXE_ringserve")).args(args));
        Server { child, stderr }
    }

    /// The start-up line (at most 20 lines, 5 s).
    fn startup_line(&self) -> String {
        self.stderr
            .line("ringserve: serving ", TIMEOUT)
            .unwrap_or_else(|seen| panic!("no start-up line; stderr: {seen:?}"))
    }
}

/// `ringserve args` run to its exit (at most 5 s): (exit code, stdout, stderr lines).
fn run(args: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringserve"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringserve");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringserve {args:?} did not exit within 5 s");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), out, err.lines().map(str::to_owned).collect())
}

/// A site (`site/index.html`, `site/assets/a.css`, `site/list/x.txt`) and a config file.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("assets")).unwrap();
        std::fs::create_dir_all(site.join("list")).unwrap();
        std::fs::write(site.join("index.html"), "<p>hi</p>\n").unwrap();
        std::fs::write(site.join("assets/a.css"), "p{}\n").unwrap();
        std::fs::write(site.join("list/x.txt"), "x\n").unwrap();
        Setup { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    /// Writes `ringserve.toml` with `text` (`ROOT` replaced by the site's path).
    fn file(&self, text: &str) -> String {
        let path = self.dir.path().join("ringserve.toml");
        let text = text.replace("ROOT", self.root().to_str().unwrap());
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn address(line: &str) -> SocketAddr {
    let rest = line.split_once(" at http://").expect("address").1;
    rest.split_once('/')
        .expect("slash")
        .0
        .parse()
        .expect("an address")
}

/// `GET path`: the whole reply as text.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn the_files_values_take_effect_and_the_command_line_wins() {
    let setup = Setup::new();
    let file = setup.file(
        r#"
root = "ROOT"
listen = ["127.0.0.1:0"]
workers = 2
mode = "uring"
listing = true
header = ["/assets/**=X-Who: file", "/assets/**=X-Only-File: 1"]

[[headers]]
pattern = "*.html"
set = { "Cache-Control" = "no-cache" }
"#,
    );
    // The file alone.
    let srv = Server::start(&["--config", &file]);
    let line = srv.startup_line();
    assert!(line.contains(setup.root().to_str().unwrap()), "{line}");
    assert!(
        line.contains("(mode uring, 2 workers") || line.contains("mode threaded"),
        "{line}"
    );
    let addr = address(&line);
    let css = get(addr, "/assets/a.css");
    assert!(css.contains("\r\nX-Who: file\r\n"), "{css}");
    assert!(get(addr, "/").contains("\r\nCache-Control: no-cache\r\n"));
    let listing = get(addr, "/list/");
    assert!(
        listing.starts_with("HTTP/1.1 200 OK\r\n") && listing.contains("x.txt"),
        "{listing}"
    );
    drop(srv);

    // The command line replaces workers and mode, and its header rules come after the file's.
    let srv = Server::start(&[
        "--config",
        &file,
        "--workers",
        "1",
        "--mode",
        "threaded",
        "--header",
        "/assets/*.css=X-Who: command line",
    ]);
    let line = srv.startup_line();
    assert!(line.contains("(mode threaded"), "{line}");
    let css = get(address(&line), "/assets/a.css");
    assert!(css.contains("\r\nX-Who: command line\r\n"), "{css}");
    assert!(!css.contains("X-Who: file"), "{css}");
    assert!(css.contains("\r\nX-Only-File: 1\r\n"), "{css}");
}

#[test]
fn a_root_on_the_command_line_replaces_the_files() {
    let setup = Setup::new();
    let file = setup.file("root = \"/nonexistent/site\"\nlisten = [\"127.0.0.1:0\"]\n");
    let root = setup.root();
    let srv = Server::start(&["--config", &file, root.to_str().unwrap()]);
    let line = srv.startup_line();
    assert!(line.contains(root.to_str().unwrap()), "{line}");
}

#[test]
fn check_config_says_ok_and_serves_nothing() {
    let setup = Setup::new();
    let file =
        setup.file("root = \"ROOT\"\nlisten = [\"127.0.0.1:1\"]\nheader = [\"*.css=X-A: b\"]\n");
    let (code, out, err) = run(&["--check-config", &file]);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(out, format!("ringserve: {file}: ok\n"));
    assert!(err.is_empty(), "{err:?}");
}

#[test]
fn the_shipped_example_passes_check_config() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/ringserve.toml.example");
    let (code, out, err) = run(&["--check-config", example]);
    assert_eq!(code, Some(0), "{err:?}");
    assert!(out.ends_with(": ok\n"), "{out}");
}

/// Each case: the file's text, and the one stderr line expected after `FILE:`.
#[test]
fn every_kind_of_error_is_one_line_with_its_place_and_exit_2() {
    let setup = Setup::new();
    let cases: &[(&str, &str)] = &[
        (
            "root = \"ROOT\"\nlistin = true\n",
            "2:1: unknown key 'listin' (did you mean 'listen'?)",
        ),
        (
            "\n  wrokers = 2\n",
            "2:3: unknown key 'wrokers' (did you mean 'workers'?)",
        ),
        ("colour = \"red\"\n", "1:1: unknown key 'colour'"),
        (
            "workers = \"2\"\n",
            "1:11: workers: expected an integer, found string",
        ),
        (
            "listing = \"yes\"\n",
            "1:11: listing: expected a boolean, found string",
        ),
        (
            "listen = \"127.0.0.1:80\"\n",
            "1:10: listen: expected an array of strings, found string",
        ),
        (
            "header-timeout = \"5\"\n",
            "1:18: header-timeout: expected a number, found string",
        ),
        (
            "workers = 0\n",
            "1:11: invalid value '0' for '--workers <N>': 0 is not in 1..=65535",
        ),
        (
            "mode = \"fast\"\n",
            "1:8: invalid value 'fast' for '--mode <MODE>' [possible values: uring, threaded]",
        ),
        (
            "listen = [\"127.0.0.1:80\", \"nowhere\"]\n",
            "1:27: invalid value 'nowhere' for '--listen <ADDR>': 'nowhere' is not an address: use IP:PORT, [IPv6]:PORT or unix:/path",
        ),
        (
            "workers = \n",
            "1:11: string values must be quoted, expected literal string",
        ),
        (
            "[[headers]]\npattern = \"/a/**\"\nset = { \"ETag\" = \"x\" }\n",
            "3:9: header ETag cannot be set by a rule: conditional requests depend on it",
        ),
        (
            "[[headers]]\npattern = \"/a/\"\nset = { \"X-A\" = \"x\" }\n",
            "2:11: pattern \"/a/\": ends with '/': a directory is served as its index.html",
        ),
        (
            "[[headers]]\npatern = \"/a\"\n",
            "2:1: unknown key 'headers.patern' (did you mean 'headers.pattern'?)",
        ),
        (
            "[[headers]]\npattern = \"/a\"\n[headers.set]\nX-A = \"\"\n",
            "4:7: the value of X-A must be non-empty visible ASCII (spaces and tabs inside)",
        ),
        ("[nested]\nkey = 1\n", "1:2: unknown key 'nested'"),
    ];
    for (text, want) in cases {
        let file = setup.file(text);
        for flag in ["--check-config", "--config"] {
            let (code, _, err) = run(&[flag, &file]);
            assert_eq!(code, Some(2), "{flag} {text:?}: {err:?}");
            assert_eq!(
                err,
                [format!("ringserve: error: {file}:{want}")],
                "{flag} {text:?}"
            );
        }
    }
}

#[test]
fn an_unreadable_file_and_a_bad_root_are_one_line_without_a_place() {
    let setup = Setup::new();
    let missing = setup.dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    let (code, _, err) = run(&["--check-config", missing]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        [format!(
            "ringserve: error: {missing}: No such file or directory"
        )]
    );

    let file = setup.file("root = \"ROOT/nope\"\n");
    let (code, _, err) = run(&["--check-config", &file]);
    assert_eq!(code, Some(2));
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!("ringserve: error: {file}: cannot serve ")),
        "{err:?}"
    );
}

#[test]
fn header_rules_that_touch_framing_are_refused_at_start_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    for name in [
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Content-Range",
        "Content-Encoding",
        "ETag",
        "Last-Modified",
        "Date",
        "content-length",
    ] {
        let rule = format!("/**={name}: 1");
        let (code, _, err) = run(&["--header", &rule, root.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name}: {err:?}");
        let text = err.join("\n");
        assert!(text.contains("cannot be set by a rule"), "{name}: {text}");
    }
    for bad in ["/**=X-A", "/a/=X-A: 1", "/**=Bad Name: 1", "/**=X-A: "] {
        let (code, _, err) = run(&["--header", bad, root.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{bad}: {err:?}");
    }
}
