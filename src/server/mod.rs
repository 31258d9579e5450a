//! Starting, running and stopping a server: the public [`Server`] API over the I/O drivers.
//!
//! Owns: sockets, threads, timeouts, shutdown, the access log. Must not: make HTTP decisions;
//! every byte sent is decided by [`crate::http`].

pub(crate) mod accesslog;
mod fdbudget;
pub mod listen;
mod threaded;
mod uring;

use crate::config::{Config, Mode};
use crate::fs::Root;
use crate::http::{Logging, Site, SiteOptions};
use crate::stats::{Stats, WorkerStats};
use std::fmt;
use std::io;
use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

/// Why a server could not start. Each variant displays as one line fit for a terminal.
#[derive(Debug)]
pub enum StartError {
    /// The root directory is missing, unreadable or not a directory.
    Root { path: PathBuf, source: io::Error },
    /// A listening address could not be bound.
    Bind { addr: SocketAddr, source: io::Error },
    /// A Unix socket path could not be bound (including: another process listens on it).
    BindUnix { path: PathBuf, source: io::Error },
    /// The access log file could not be opened.
    AccessLog { path: PathBuf, source: io::Error },
    /// A configuration value is out of range.
    Invalid(String),
    /// Threads could not be started.
    Spawn(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Root { path, source } => {
                write!(f, "cannot serve {}: {}", path.display(), plain(source))
            }
            StartError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {}", plain(source))
            }
            StartError::BindUnix { path, source } => {
                write!(
                    f,
                    "cannot listen on unix:{}: {}",
                    path.display(),
                    plain(source)
                )
            }
            StartError::AccessLog { path, source } => {
                write!(
                    f,
                    "cannot open access log {}: {}",
                    path.display(),
                    plain(source)
                )
            }
            StartError::Invalid(why) => f.write_str(why),
            StartError::Spawn(e) => write!(f, "cannot start threads: {}", plain(e)),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Root { source, .. }
            | StartError::Bind { source, .. }
            | StartError::BindUnix { source, .. }
            | StartError::AccessLog { source, .. }
            | StartError::Spawn(source) => Some(source),
            StartError::Invalid(_) => None,
        }
    }
}

/// `Address already in use (os error 98)` → `address already in use`.
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The entry point: [`Server::bind`] validates, binds and starts serving.
///
/// ```
/// use ringserve::{Config, Server};
/// let handle = Server::bind(Config::new("www").listen("127.0.0.1:0".parse()?))?;
/// println!("serving on http://{}/", handle.local_addr());
/// handle.shutdown();
/// handle.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Checks `config`, opens the root, binds every address and starts serving in background
    /// threads. Returns once the server accepts connections.
    pub fn bind(config: Config) -> Result<Handle, StartError> {
        config.validate().map_err(StartError::Invalid)?;
        let root = Root::open(&config.root).map_err(|source| StartError::Root {
            path: config.root.clone(),
            source,
        })?;
        check_probes_shadow_nothing(&config, &root)?;
        let budget = connection_budget(&config);
        let log = config
            .access_log
            .as_ref()
            .map(|target| {
                accesslog::Sink::open(target, config.trusted_proxies.clone()).map_err(|source| {
                    StartError::AccessLog {
                        path: target.display_path(),
                        source,
                    }
                })
            })
            .transpose()?;
        let options = SiteOptions {
            listing: config.listing,
            dotfiles: config.dotfiles,
            cache_control: config.cache_control.clone(),
            max_head: config.max_head,
            logging: if log.is_some() {
                Logging::On
            } else {
                Logging::Off
            },
        };
        // One block of counters per uring worker; the threaded mode counts under worker 0.
        let stats = Arc::new(Stats::new(match config.mode {
            Mode::Uring => config.workers,
            Mode::Threaded => 1,
        }));
        let site = Site::new(root, options)
            .with_probes(config.probes.clone())
            .with_stats(Arc::clone(&stats));
        let addrs = config.listen_addrs();
        let unix_paths = config.unix_paths().to_vec();
        let (site, log) = match config.mode {
            Mode::Threaded => (site, log),
            Mode::Uring => {
                let bound = uring::bind_listeners(&addrs, &unix_paths, config.workers)?;
                let shared = uring::Shared {
                    site,
                    log,
                    announcing: AtomicBool::new(false),
                    draining: AtomicBool::new(false),
                    active: AtomicUsize::new(0),
                    unix: bound.unix,
                };
                let settings = uring::Settings {
                    header_timeout: config.header_timeout,
                    idle_timeout: config.idle_timeout,
                    max_conns: budget.max_conns,
                    grace: config.shutdown_grace,
                    drain_delay: config.drain_delay,
                    large_files: uring::LargeFiles::from_env(),
                    sq_entries: uring::SQ_ENTRIES,
                    cache_files: budget.cache_files,
                };
                match uring::Uring::start(bound.per_worker, shared, settings) {
                    Ok(driver) => {
                        return Ok(Handle {
                            detail: format!("{} workers, {}", config.workers, driver.detail),
                            driver: Arc::new(Driver::Uring(driver)),
                            addrs: bound.tcp,
                            unix_paths,
                            mode: Mode::Uring,
                            grace: config.shutdown_grace,
                            budget,
                        });
                    }
                    Err(uring::StartFailure::Spawn(e)) => return Err(StartError::Spawn(e)),
                    Err(uring::StartFailure::Unavailable(u)) => {
                        eprintln!(
                            "ringserve: io_uring is unavailable: {}; running the threaded mode",
                            u.reason
                        );
                        stats.fallback();
                        // Its listeners close (and socket files go) here; the threaded mode
                        // binds its own below.
                        let uring::Unavailable { shared, .. } = *u;
                        drop(shared.unix);
                        (shared.site, shared.log)
                    }
                }
            }
        };
        let bound = listen::bind_all(&addrs, &unix_paths)?;
        let mut local = Vec::new();
        for (listener, &addr) in bound.tcp.iter().zip(&addrs) {
            local.push(
                listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?,
            );
        }
        let listeners = bound
            .tcp
            .into_iter()
            .map(listen::Listener::Tcp)
            .chain(bound.unix.into_iter().map(listen::Listener::Unix))
            .collect();
        let settings = threaded::Settings {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_conns: budget.max_conns,
            drain_delay: config.drain_delay,
        };
        let driver =
            threaded::Threaded::start(listeners, site, settings, log).map_err(StartError::Spawn)?;
        Ok(Handle {
            driver: Arc::new(Driver::Threaded(driver)),
            addrs: local,
            unix_paths,
            mode: Mode::Threaded,
            grace: config.shutdown_grace,
            budget,
            detail: "one thread per connection".into(),
        })
    }
}

/// Raises the soft descriptor limit (`RLIMIT_NOFILE`) to the hard one, as Go's runtime does,
/// and returns the soft limit now in force. The `ringserve` binary calls it before
/// [`Server::bind`], which derives the connection cap from the limit; an embedding program
/// decides for itself.
pub fn raise_fd_limit() -> io::Result<u64> {
    crate::sys::rlimit::raise_nofile().map(|l| l.soft)
}

/// The connection cap: `--max-conns`, or what the soft descriptor limit allows; an explicit
/// value beyond the limit is clamped with one warning line.
fn connection_budget(config: &Config) -> fdbudget::Budget {
    let limit = crate::sys::rlimit::nofile().map_or(u64::MAX, |l| l.soft);
    let workers = match config.mode {
        Mode::Uring => config.workers,
        Mode::Threaded => 1,
    };
    let listeners = config.listen_addrs().len() + config.unix_paths().len();
    let budget = fdbudget::plan(config.max_conns, limit, config.mode, workers, listeners);
    if let Some(asked) = budget.clamped_from {
        eprintln!(
            "ringserve: warning: --max-conns {asked} needs more descriptors than the limit of \
             {limit} allows; serving at most {} connections",
            budget.max_conns
        );
    }
    budget
}

/// A health or status path must not hide a file or directory of the site: refused at start.
fn check_probes_shadow_nothing(config: &Config, root: &Root) -> Result<(), StartError> {
    let probes = &config.probes;
    for (flag, path) in [
        ("--health-path", &probes.health),
        ("--status-path", &probes.status),
    ] {
        let Some(path) = path else { continue };
        // Dotfiles counted as served: a hidden file is still a file the path would hide.
        let shadows = crate::fs::resolve(path.as_bytes(), crate::fs::Dotfiles::Served)
            .is_ok_and(|safe| root.open_entry(&safe).is_ok());
        if shadows {
            return Err(StartError::Invalid(format!(
                "{flag} {path} would hide {} (choose a path that is not in the root)",
                root.path().join(path.trim_start_matches('/')).display()
            )));
        }
    }
    Ok(())
}

/// The I/O driver behind a [`Handle`].
#[derive(Debug)]
enum Driver {
    Threaded(threaded::Threaded),
    Uring(uring::Uring),
}

impl Driver {
    fn site(&self) -> &Site {
        match self {
            Driver::Threaded(d) => d.site(),
            Driver::Uring(d) => d.site(),
        }
    }

    fn shutdown(&self) {
        match self {
            Driver::Threaded(d) => d.shutdown(),
            Driver::Uring(d) => d.shutdown(),
        }
    }

    fn join(&self, grace: Duration) {
        match self {
            Driver::Threaded(d) => d.join(grace),
            Driver::Uring(d) => d.join(),
        }
    }
}

/// Appends `range` of `file` to `out` (small bodies go out with the heads before them). A file
/// that shrank since its length was promised is an error and leaves `out` as it was: the
/// connection must close rather than send a short body.
pub(crate) fn append_file_range(
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(range.end - range.start).map_err(|_| io::ErrorKind::InvalidInput)?;
    let start = out.len();
    out.resize(start + len, 0);
    let read = file.read_exact_at(&mut out[start..], range.start);
    if read.is_err() {
        out.truncate(start);
    }
    read
}

/// Over `--max-conns`: answer 503, best effort and without blocking, and close. Counted in
/// `stats` when the bytes were handed to the kernel.
pub(crate) fn reject_busy(
    stream: impl Into<listen::Stream>,
    date: &crate::http::DateCache,
    stats: &WorkerStats,
) {
    use crate::sys::net::{self, More};
    let stream = stream.into();
    let response = crate::http::serve::busy_response(date);
    if stream.set_nonblocking(true).is_ok() {
        let sent =
            net::send_all(stream.as_fd(), &response.head, More::Yes).and_then(|()| match &response
                .body
            {
                crate::http::Body::Bytes(body) => net::send_all(stream.as_fd(), body, More::No),
                _ => Ok(()),
            });
        if sent.is_ok() {
            stats.response(
                response.status,
                response.head.len() as u64 + response.body_len(),
            );
        }
        let _ = stream.shutdown(Shutdown::Write);
        // Discard a request that has already arrived, so closing does not reset.
        let mut scratch = [0u8; 4096];
        let _ = (&stream).read(&mut scratch);
    }
}

/// A running server. Dropping it does not stop the server; call [`Handle::shutdown`] and
/// [`Handle::join`].
#[derive(Debug)]
pub struct Handle {
    driver: Arc<Driver>,
    addrs: Vec<SocketAddr>,
    unix_paths: Vec<PathBuf>,
    mode: Mode,
    grace: Duration,
    detail: String,
    budget: fdbudget::Budget,
}

impl Handle {
    /// The first TCP listening address, with the real port when port 0 was asked for.
    ///
    /// # Panics
    ///
    /// If the server listens on Unix sockets only; use [`Handle::local_addrs`] then.
    pub fn local_addr(&self) -> SocketAddr {
        *self
            .addrs
            .first()
            .expect("local_addr: this server listens on Unix sockets only")
    }

    /// Every TCP listening address, in the order given (empty when only Unix sockets are).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The server's counters (what `--status-path` renders), e.g. to watch
    /// [`Stats::responses`] from the embedding program.
    pub fn stats(&self) -> &Arc<Stats> {
        self.driver.site().stats()
    }

    /// Every Unix socket path listened on, in the order given.
    pub fn unix_paths(&self) -> &[PathBuf] {
        &self.unix_paths
    }

    /// The I/O mode actually running (the uring mode may fall back to threaded).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How the running mode is set up, in a few words (for the start-up line): worker
    /// count and ring flags for the uring mode.
    /// Connections served at once (`--max-conns`, derived or clamped; see
    /// [`raise_fd_limit`]).
    pub fn max_conns(&self) -> usize {
        self.budget.max_conns
    }

    /// The soft descriptor limit the connection cap was derived from.
    pub fn fd_limit(&self) -> u64 {
        self.budget.limit
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The site being served (its root and options).
    pub fn root_path(&self) -> &std::path::Path {
        self.driver.site().root().path()
    }

    /// Starts a graceful shutdown: for the drain delay ([`Config::drain_delay`], default
    /// none) the health path answers 503 and responses close their connections while new
    /// connections are still accepted; then stop accepting, let responses in flight finish,
    /// close idle connections. Returns at once; [`Handle::join`] waits for the end.
    pub fn shutdown(&self) {
        self.driver.shutdown();
    }

    /// A cloneable, `Send` trigger for [`Handle::shutdown`] (e.g. for a signal thread).
    pub fn trigger(&self) -> Trigger {
        Trigger {
            driver: Arc::clone(&self.driver),
        }
    }

    /// Waits until the server has stopped: after a shutdown, until every connection is done
    /// or the grace period has passed (then the rest are cut).
    pub fn join(self) {
        self.driver.join(self.grace);
    }
}

/// Starts a graceful shutdown from any thread.
#[derive(Clone, Debug)]
pub struct Trigger {
    driver: Arc<Driver>,
}

impl Trigger {
    pub fn shutdown(&self) {
        self.driver.shutdown();
    }
}
