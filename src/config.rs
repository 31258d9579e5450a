//! The validated server configuration, and its builder (the library's way in; the CLI in
//! `main.rs` maps flags onto the same builder).

use crate::fs::Dotfiles;
use crate::http::Precompressed;
use crate::http::forwarded::{TrustedProxies, TrustedProxy};
use crate::http::header_rules::{HeaderRule, HeaderRules};
use crate::http::probe::{self, Probes};
use crate::http::{Listing, serve::DEFAULT_MAX_HEAD};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How bytes move between sockets and the HTTP core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// One pinned worker per core with its own io_uring (the default; where io_uring is
    /// unavailable the server says why in one line and runs the threaded mode).
    #[default]
    Uring,
    /// One thread per connection, blocking sockets, `sendfile(2)`.
    Threaded,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Uring => "uring",
            Mode::Threaded => "threaded",
        })
    }
}

/// Whether the uring mode pins each worker thread to a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pin {
    /// Pin only when the process was given a CPU set of its own (`taskset`, a cgroup
    /// cpuset): its cores are then its own. On a machine whose cores are shared with a proxy,
    /// the load generator or other services, a pinned worker cannot move off a busy core
    /// (measured: 0.7× the unpinned throughput with the defaults), so threads stay free.
    #[default]
    Auto,
    On,
    Off,
}

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLog {
    Stdout,
    /// Appended to; created if missing.
    File(PathBuf),
}

impl AccessLog {
    /// The path as shown in messages (`-` for stdout).
    pub fn display_path(&self) -> PathBuf {
        match self {
            AccessLog::File(p) => p.clone(),
            AccessLog::Stdout => PathBuf::from("-"),
        }
    }
}

/// Where to listen: a TCP address, or a Unix-domain socket path (`unix:/run/site.sock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => a.fmt(f),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    /// `127.0.0.1:8080`, `[::1]:8080`, or `unix:/path/to.sock` (an absolute path, so the
    /// socket does not move with the working directory).
    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "'{s}': a Unix socket path must be absolute (unix:/path)"
                ));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("'{s}' is not an address: use IP:PORT, [IPv6]:PORT or unix:/path"))
    }
}

/// Default [`Config::defer_accept`], as h2o sets it: 1 s.
pub const DEFAULT_DEFER_ACCEPT: u32 = 1;

/// The default address: loopback only, so a first run exposes nothing.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Everything a server needs to start. Build with [`Config::new`] and the chained setters.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) root: PathBuf,
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) listen_unix: Vec<PathBuf>,
    /// Listening sockets handed over (systemd socket activation).
    pub(crate) passed: Vec<crate::server::listen::PassedSocket>,
    pub(crate) mode: Mode,
    pub(crate) workers: usize,
    pub(crate) listing: Listing,
    pub(crate) dotfiles: Dotfiles,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) header_timeout: Duration,
    /// Seconds of `TCP_DEFER_ACCEPT` on the TCP listeners this server binds; 0 is off.
    pub(crate) defer_accept: u32,
    pub(crate) idle_timeout: Duration,
    /// `None`: derived from the descriptor limit at start (`server::fdbudget`).
    pub(crate) max_conns: Option<usize>,
    pub(crate) max_head: usize,
    pub(crate) cache_control: Option<String>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) probes: Probes,
    pub(crate) drain_delay: Duration,
    pub(crate) fault_path: Option<String>,
    pub(crate) pin: Pin,
    pub(crate) precompressed: Precompressed,
    pub(crate) not_found: Option<String>,
    pub(crate) fallback: Option<String>,
    pub(crate) header_rules: HeaderRules,
}

impl Config {
    /// Serves `root` with the defaults: 127.0.0.1:8080, uring mode, one worker per available
    /// core, no listing, dotfiles hidden, no access log, 1 s `TCP_DEFER_ACCEPT`, 10 s header
    /// timeout, 60 s idle timeout, as many connections as the descriptor limit allows (at most
    /// 65,536), 8 KiB heads, 10 s shutdown grace, precompressed sidecars served in the order
    /// br, zstd, gzip.
    pub fn new(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            listen: Vec::new(),
            listen_unix: Vec::new(),
            passed: Vec::new(),
            mode: Mode::default(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            listing: Listing::Off,
            dotfiles: Dotfiles::Hidden,
            access_log: None,
            header_timeout: Duration::from_secs(10),
            defer_accept: DEFAULT_DEFER_ACCEPT,
            idle_timeout: Duration::from_secs(60),
            max_conns: None,
            max_head: DEFAULT_MAX_HEAD,
            cache_control: None,
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: TrustedProxies::default(),
            probes: Probes::default(),
            drain_delay: Duration::ZERO,
            fault_path: None,
            pin: Pin::Auto,
            precompressed: Precompressed::DEFAULT,
            not_found: None,
            fallback: None,
            header_rules: HeaderRules::default(),
        }
    }

    /// Whether uring workers are pinned to cores (default [`Pin::Auto`]).
    pub fn pin(mut self, pin: Pin) -> Config {
        self.pin = pin;
        self
    }

    /// Test hook: a request for exactly `path` panics inside the HTTP core (see
    /// `SiteOptions::fault_path`). For tests of panic isolation only.
    #[doc(hidden)]
    pub fn inject_fault_on(mut self, path: impl Into<String>) -> Config {
        self.fault_path = Some(path.into());
        self
    }

    /// Adds a listening address (repeatable). Port 0 picks a free port. Without any address
    /// (TCP or Unix), [`DEFAULT_LISTEN`] is used.
    pub fn listen(mut self, addr: SocketAddr) -> Config {
        self.listen.push(addr);
        self
    }

    /// Adds a Unix-domain listening socket at `path` (repeatable), shared by all workers.
    /// The socket file is created with mode `0660` (owner and group may connect: put the
    /// proxy's user in the server's group), replaces a stale socket left by a crash, refuses
    /// a socket another process still listens on, and is removed on shutdown.
    pub fn listen_unix(mut self, path: impl Into<PathBuf>) -> Config {
        self.listen_unix.push(path.into());
        self
    }

    /// Listens on a socket this process did not bind (repeatable): one systemd passed
    /// ([`crate::systemd_sockets`]) or another program handed over
    /// ([`crate::PassedSocket::from_fd`]). Shared by all workers, never shut down or
    /// unlinked by the server, so the next instance on the same socket finds the
    /// connections that queued meanwhile. Cannot be combined with [`Config::listen`] or
    /// [`Config::listen_unix`].
    pub fn listen_passed(mut self, socket: crate::server::listen::PassedSocket) -> Config {
        self.passed.push(socket);
        self
    }

    /// Adds either kind of address.
    pub fn listen_addr(self, addr: ListenAddr) -> Config {
        match addr {
            ListenAddr::Tcp(a) => self.listen(a),
            ListenAddr::Unix(p) => self.listen_unix(p),
        }
    }

    /// Believes `X-Forwarded-For` / `X-Real-IP` from peers in this block (repeatable), for the
    /// client address in the access log; `TrustedProxy::Unix` trusts Unix-socket peers. See
    /// [`crate::http::forwarded`] for the exact rule.
    pub fn trusted_proxy(mut self, proxy: TrustedProxy) -> Config {
        self.trusted_proxies.add(proxy);
        self
    }

    /// Answers `path` with `200 ok` while serving and `503` once shutting down. The path must
    /// not name anything under the root ([`crate::Server::bind`] refuses to start if it does).
    pub fn health_path(mut self, path: impl Into<String>) -> Config {
        self.probes.health = Some(path.into());
        self
    }

    /// Answers `path` with the counters in the Prometheus text format (same rules as
    /// [`Config::health_path`]).
    pub fn status_path(mut self, path: impl Into<String>) -> Config {
        self.probes.status = Some(path.into());
        self
    }

    pub fn mode(mut self, mode: Mode) -> Config {
        self.mode = mode;
        self
    }

    /// Worker threads for the uring mode (at least 1).
    pub fn workers(mut self, n: usize) -> Config {
        self.workers = n;
        self
    }

    /// Lists directories that have no `index.html`.
    pub fn enable_listing(mut self) -> Config {
        self.listing = Listing::On;
        self
    }

    /// Serves files and directories whose names start with `.`.
    pub fn serve_dotfiles(mut self) -> Config {
        self.dotfiles = Dotfiles::Served;
        self
    }

    /// Writes one combined-log-format line per response, plus the time taken in µs.
    pub fn access_log(mut self, log: AccessLog) -> Config {
        self.access_log = Some(log);
        self
    }

    /// How long a client may take to send a complete request head (408 after that).
    pub fn header_timeout(mut self, t: Duration) -> Config {
        self.header_timeout = t;
        self
    }

    /// How long the kernel holds a new TCP connection that has sent nothing before handing it
    /// over (`TCP_DEFER_ACCEPT`, in whole seconds, rounded up by the kernel to its SYN-ACK
    /// retransmission schedule of 1, 3, 7… s; measured 1.0–1.1 s for 1). A connection whose
    /// first bytes arrive is handed over at once, with them, which saves the server a wake-up
    /// and a receive per connection; one that stays silent costs it nothing until then, and
    /// its header timeout starts only when it is handed over. 0 hands every connection over
    /// at once. Sockets passed by systemd keep their own setting (`DeferAcceptSec=`).
    pub fn defer_accept(mut self, secs: u32) -> Config {
        self.defer_accept = secs;
        self
    }

    /// How long a keep-alive connection may sit idle between requests.
    pub fn idle_timeout(mut self, t: Duration) -> Config {
        self.idle_timeout = t;
        self
    }

    /// Connections served at once; beyond it a new connection gets 503 and is closed. A
    /// value above what the descriptor limit allows is clamped with one warning line.
    pub fn max_conns(mut self, n: usize) -> Config {
        self.max_conns = Some(n);
        self
    }

    /// Largest request head in bytes (431 beyond; 414 if the request line alone is).
    pub fn max_head(mut self, bytes: usize) -> Config {
        self.max_head = bytes;
        self
    }

    /// `Cache-Control` value sent with files (200, 206 and 304).
    pub fn cache_control(mut self, value: impl Into<String>) -> Config {
        self.cache_control = Some(value.into());
        self
    }

    /// How long a graceful shutdown waits for responses in flight.
    pub fn shutdown_grace(mut self, t: Duration) -> Config {
        self.shutdown_grace = t;
        self
    }

    /// On shutdown, keep accepting for this long while the health path answers 503 and every
    /// response closes its connection, so a proxy's health check takes this instance out of
    /// rotation before it stops listening; then shut down as usual. Default: zero.
    pub fn drain_delay(mut self, t: Duration) -> Config {
        self.drain_delay = t;
        self
    }

    /// Which precompressed sidecars (`app.js.br`, `app.js.zst`, `app.js.gz` next to `app.js`)
    /// are served to clients whose `Accept-Encoding` allows them, in the server's order of
    /// preference; [`Precompressed::OFF`] serves files only as they are. Default:
    /// [`Precompressed::DEFAULT`] (br, zstd, gzip). See [`crate::http::encoding`] for the
    /// negotiation and [`crate::fs::sidecar`] for when a sidecar is used.
    pub fn precompressed(mut self, p: Precompressed) -> Config {
        self.precompressed = p;
        self
    }

    /// The site's 404 page: `page` is a URL path beneath the root (`/404.html`), sent with
    /// status 404 for every missing path. [`crate::Server::bind`] refuses to start unless it
    /// names a regular file. See [`crate::http::serve::pages`] for the rules.
    pub fn not_found_page(mut self, page: impl Into<String>) -> Config {
        self.not_found = Some(page.into());
        self
    }

    /// The app fallback page (single-page apps): a GET or HEAD of a missing path whose last
    /// segment has no `.` and whose `Accept` allows `text/html` gets `page` (a URL path
    /// beneath the root, e.g. `/index.html`) with status 200. Checked at start like
    /// [`Config::not_found_page`]; see [`crate::http::serve::pages`] for the exact rule.
    pub fn fallback_page(mut self, page: impl Into<String>) -> Config {
        self.fallback = Some(page.into());
        self
    }

    /// Adds a per-path header rule (repeatable): files matching its pattern are sent with its
    /// field on 200, 206, 304 and HEAD; for each header name the last matching rule added
    /// wins. A rule's `Cache-Control` replaces [`Config::cache_control`] for its files. See
    /// [`crate::http::header_rules`] for the pattern language and what cannot be set.
    pub fn header_rule(mut self, rule: HeaderRule) -> Config {
        self.header_rules.add(rule);
        self
    }

    /// Worker threads the uring mode will start.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// The TCP addresses to listen on, with the default filled in when no address of either
    /// kind was given.
    pub(crate) fn listen_addrs(&self) -> Vec<SocketAddr> {
        if self.listen.is_empty() && self.listen_unix.is_empty() && self.passed.is_empty() {
            vec![DEFAULT_LISTEN]
        } else {
            self.listen.clone()
        }
    }

    /// The Unix socket paths to listen on.
    pub(crate) fn unix_paths(&self) -> &[PathBuf] {
        &self.listen_unix
    }

    /// Checks the values that can be wrong independently of the machine.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let binds_too = !self.listen.is_empty() || !self.listen_unix.is_empty();
        if !self.passed.is_empty() && binds_too {
            // One place says where the server listens: the .socket unit, or the flags.
            return Err(
                "--listen cannot be combined with sockets passed by systemd (LISTEN_FDS)".into(),
            );
        }
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.max_conns == Some(0) {
            return Err("--max-conns must be at least 1".into());
        }
        // Below this not even a plain browser request fits.
        const MIN_HEAD: usize = 256;
        if self.max_head < MIN_HEAD {
            return Err(format!("the head limit must be at least {MIN_HEAD} bytes"));
        }
        for (name, t) in [
            ("--header-timeout", self.header_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if t.is_zero() {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if let Some(cc) = &self.cache_control {
            let valid =
                !cc.is_empty() && cc.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            if !valid || cc.starts_with([' ', '\t']) || cc.ends_with([' ', '\t']) {
                return Err(format!(
                    "--cache-control {cc:?} is not a valid header value"
                ));
            }
        }
        if let Some(p) = &self.probes.health {
            probe::check_path("--health-path", p)?;
        }
        if let Some(p) = &self.probes.status {
            probe::check_path("--status-path", p)?;
        }
        for (flag, page) in [
            ("--not-found", &self.not_found),
            ("--fallback", &self.fallback),
        ] {
            if let Some(page) = page
                && !page.starts_with('/')
            {
                return Err(format!(
                    "{flag} '{page}': give a URL path beneath the root, starting with '/'"
                ));
            }
        }
        if self.probes.health.is_some() && self.probes.health == self.probes.status {
            return Err("--health-path and --status-path must differ".into());
        }
        for (i, p) in self.listen_unix.iter().enumerate() {
            if !p.is_absolute() {
                return Err(format!(
                    "unix:{}: a Unix socket path must be absolute",
                    p.display()
                ));
            }
            if self.listen_unix[..i].contains(p) {
                return Err(format!("unix:{} is given twice", p.display()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_listen_on_loopback_8080() {
        let c = Config::new("www");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.listen_addrs(), vec![DEFAULT_LISTEN]);
        assert_eq!(DEFAULT_LISTEN.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn a_unix_socket_alone_replaces_the_default_tcp_address() {
        let c = Config::new("www").listen_unix("/tmp/s.sock");
        assert_eq!(c.listen_addrs(), Vec::<SocketAddr>::new());
        assert_eq!(c.unix_paths(), [PathBuf::from("/tmp/s.sock")]);
    }

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "unix:/run/a.sock".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("/run/a.sock".into()))
        );
        assert_eq!(
            "[::1]:80".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("[::1]:80".parse().unwrap()))
        );
        assert_eq!(
            ListenAddr::Unix("/run/a.sock".into()).to_string(),
            "unix:/run/a.sock"
        );
        for bad in ["unix:rel.sock", "unix:", "localhost:80", "1.2.3.4"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_values_are_refused_with_the_flag_name() {
        let cases: &[(Config, &str)] = &[
            (Config::new("w").workers(0), "--workers"),
            (Config::new("w").max_conns(0), "--max-conns"),
            (Config::new("w").max_head(10), "head limit"),
            (
                Config::new("w").header_timeout(Duration::ZERO),
                "--header-timeout",
            ),
            (
                Config::new("w").idle_timeout(Duration::ZERO),
                "--idle-timeout",
            ),
            (
                Config::new("w").cache_control("a\r\nSet-Cookie: x"),
                "--cache-control",
            ),
            (Config::new("w").cache_control(""), "--cache-control"),
            (Config::new("w").health_path("health"), "--health-path"),
            (Config::new("w").status_path("/a/../b"), "--status-path"),
            (
                Config::new("w").health_path("/x").status_path("/x"),
                "must differ",
            ),
            (Config::new("w").listen_unix("rel.sock"), "must be absolute"),
            (Config::new("w").not_found_page("404.html"), "--not-found"),
            (Config::new("w").fallback_page(""), "--fallback"),
            (
                Config::new("w")
                    .listen_unix("/a.sock")
                    .listen_unix("/a.sock"),
                "given twice",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.contains(flag), "{err}");
        }
    }
}
