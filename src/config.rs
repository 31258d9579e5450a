//! The validated server configuration, and its builder (the library's way in; the CLI in
//! `main.rs` maps flags onto the same builder).

use crate::fs::Dotfiles;
use crate::http::{Listing, serve::DEFAULT_MAX_HEAD};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How bytes move between sockets and the HTTP core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// One pinned worker per core with its own io_uring (the default once built; until then
    /// it runs the threaded mode and says so).
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

/// The default address: loopback only, so a first run exposes nothing.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Everything a server needs to start. Build with [`Config::new`] and the chained setters.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) root: PathBuf,
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) mode: Mode,
    pub(crate) workers: usize,
    pub(crate) listing: Listing,
    pub(crate) dotfiles: Dotfiles,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_conns: usize,
    pub(crate) max_head: usize,
    pub(crate) cache_control: Option<String>,
    pub(crate) shutdown_grace: Duration,
}

impl Config {
    /// Serves `root` with the defaults: 127.0.0.1:8080, uring mode, one worker per available
    /// core, no listing, dotfiles hidden, no access log, 10 s header timeout, 60 s idle
    /// timeout, 1024 connections, 8 KiB heads, 10 s shutdown grace.
    pub fn new(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            listen: Vec::new(),
            mode: Mode::default(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            listing: Listing::Off,
            dotfiles: Dotfiles::Hidden,
            access_log: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_conns: 1024,
            max_head: DEFAULT_MAX_HEAD,
            cache_control: None,
            shutdown_grace: Duration::from_secs(10),
        }
    }

    /// Adds a listening address (repeatable). Port 0 picks a free port. Without any,
    /// [`DEFAULT_LISTEN`] is used.
    pub fn listen(mut self, addr: SocketAddr) -> Config {
        self.listen.push(addr);
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

    /// How long a keep-alive connection may sit idle between requests.
    pub fn idle_timeout(mut self, t: Duration) -> Config {
        self.idle_timeout = t;
        self
    }

    /// Connections served at once; beyond it a new connection gets 503 and is closed.
    pub fn max_conns(mut self, n: usize) -> Config {
        self.max_conns = n;
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

    /// Worker threads the uring mode will start.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// The addresses to listen on, with the default filled in.
    pub(crate) fn listen_addrs(&self) -> Vec<SocketAddr> {
        if self.listen.is_empty() {
            vec![DEFAULT_LISTEN]
        } else {
            self.listen.clone()
        }
    }

    /// Checks the values that can be wrong independently of the machine.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.max_conns == 0 {
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
        ];
        for (config, flag) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.contains(flag), "{err}");
        }
    }
}
