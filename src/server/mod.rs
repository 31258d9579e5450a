//! Starting, running and stopping a server: the public [`Server`] API over the I/O drivers.
//!
//! Owns: sockets, threads, timeouts, shutdown, the access log. Must not: make HTTP decisions;
//! every byte sent is decided by [`crate::http`].

pub(crate) mod accesslog;
mod error;
mod fdbudget;
mod lifecycle;
pub mod listen;
mod lower;
mod policy;
mod refuse;
mod threaded;
mod uring;

pub use error::StartError;

use crate::config::{Config, Mode};
use crate::fs::Root;
use crate::http::{Logging, Site, SiteOptions};
use crate::stats::Stats;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// The entry point: [`Server::bind`] validates, binds and starts serving; [`Server::check`]
/// only validates.
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
    /// Checks `config` as [`Server::bind`] does before it binds anything: the values, the
    /// root (opened, then closed), the probe paths against it. Binds, creates and starts
    /// nothing (`ringserve --check-config`).
    pub fn check(config: &Config) -> Result<(), StartError> {
        Server::open_checked(config).map(drop)
    }

    fn open_checked(config: &Config) -> Result<Root, StartError> {
        config.validate().map_err(StartError::Invalid)?;
        let root = Root::open(&config.root).map_err(|source| StartError::Root {
            path: config.root.clone(),
            source,
        })?;
        check_probes_shadow_nothing(config, &root)?;
        check_pages(config, &root)?;
        Ok(root)
    }

    /// Checks `config`, opens the root, binds every address and starts serving in background
    /// threads. Returns once the server accepts connections.
    pub fn bind(config: Config) -> Result<Handle, StartError> {
        let root = Server::open_checked(&config)?;
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
        let reopener = log.as_ref().map(accesslog::Sink::reopener);
        let options = SiteOptions {
            listing: config.listing,
            dotfiles: config.dotfiles,
            cache_control: config.cache_control.clone(),
            max_head: config.max_head,
            precompressed: config.precompressed,
            logging: if log.is_some() {
                Logging::On
            } else {
                Logging::Off
            },
            fault_path: config.fault_path.clone(),
            not_found: config.not_found.clone(),
            fallback: config.fallback.clone(),
            header_rules: config.header_rules.clone(),
        };
        // One block of counters per uring worker; the threaded mode counts under worker 0.
        let stats = Arc::new(Stats::new(match config.mode {
            Mode::Uring => config.workers,
            Mode::Threaded => 1,
        }));
        let site = Site::new(root, options)
            .with_probes(config.probes.clone())
            .with_metrics(Arc::clone(&stats) as Arc<dyn crate::http::Metrics>);
        let policy = policy::Settings {
            timeouts: crate::http::Timeouts {
                header: config.header_timeout,
                idle: config.idle_timeout,
            },
            max_conns: budget.max_conns,
            grace: config.shutdown_grace,
            drain_delay: config.drain_delay,
        };
        let addrs = config.listen_addrs();
        let unix_paths = config.unix_paths().to_vec();
        let (site, log) = match config.mode {
            Mode::Threaded => (site, log),
            Mode::Uring => {
                let bound = uring::bind_listeners(
                    &addrs,
                    &unix_paths,
                    &config.passed,
                    config.workers,
                    config.defer_accept,
                )?;
                let shared = uring::Shared {
                    site,
                    log,
                    shutdown: lifecycle::Shutdown::new(),
                    stats: Arc::clone(&stats),
                    active: AtomicUsize::new(0),
                    unix: bound.unix,
                };
                let settings = uring::Settings {
                    policy,
                    large_files: uring::LargeFiles::from_env(),
                    sq_entries: uring::SQ_ENTRIES,
                    pin: config.pin,
                    cache_files: budget.cache_files,
                };
                match uring::Uring::start(bound.per_worker, shared, settings) {
                    Ok(driver) => {
                        return Ok(Handle {
                            detail: format!("{} workers, {}", config.workers, driver.detail),
                            stats,
                            driver: Arc::new(Driver::Uring(driver)),
                            addrs: bound.tcp,
                            unix_paths: passed_paths(&config.passed, unix_paths),
                            passed: !config.passed.is_empty(),
                            mode: Mode::Uring,
                            grace: config.shutdown_grace,
                            budget,
                            reopener,
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
        let bound = listen::bind_all(&addrs, &unix_paths, config.defer_accept)?;
        let mut local = Vec::new();
        for (listener, &addr) in bound.tcp.iter().zip(&addrs) {
            local.push(
                listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?,
            );
        }
        let mut listeners: Vec<listen::Listener> = bound
            .tcp
            .into_iter()
            .map(listen::Listener::Tcp)
            .chain(bound.unix.into_iter().map(listen::Listener::Unix))
            .collect();
        for socket in &config.passed {
            if let listen::PassedAddr::Tcp(addr) = socket.addr() {
                local.push(*addr);
            }
            let listener = listen::PassedListener::new(socket)
                .map_err(|e| StartError::Passed(format!("{}: {e}", socket.describe())))?;
            listeners.push(listen::Listener::Passed(listener));
        }
        let driver = threaded::Threaded::start(listeners, site, policy, log, Arc::clone(&stats))
            .map_err(StartError::Spawn)?;
        Ok(Handle {
            stats,
            driver: Arc::new(Driver::Threaded(driver)),
            addrs: local,
            unix_paths: passed_paths(&config.passed, unix_paths),
            passed: !config.passed.is_empty(),
            mode: Mode::Threaded,
            grace: config.shutdown_grace,
            budget,
            detail: "one thread per connection".into(),
            reopener,
        })
    }
}

/// Raises the soft descriptor limit (`RLIMIT_NOFILE`) to the hard one, as Go's runtime does,
/// and returns the soft limit now in force. The `ringserve` binary calls it before
/// [`Server::bind`], which derives the connection cap from the limit; an embedding program
/// decides for itself.
pub fn raise_fd_limit() -> std::io::Result<u64> {
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
    let listeners = config.listen_addrs().len() + config.unix_paths().len() + config.passed.len();
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

/// The Unix socket paths listened on: the ones bound, then the passed ones that have a path.
fn passed_paths(passed: &[listen::PassedSocket], mut bound: Vec<PathBuf>) -> Vec<PathBuf> {
    bound.extend(passed.iter().filter_map(|p| match p.addr() {
        listen::PassedAddr::Unix(path) => path.clone(),
        listen::PassedAddr::Tcp(_) => None,
    }));
    bound
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

/// The 404 and fallback pages must name regular files beneath the root: refused at start.
fn check_pages(config: &Config, root: &Root) -> Result<(), StartError> {
    for (flag, page) in [
        ("--not-found", &config.not_found),
        ("--fallback", &config.fallback),
    ] {
        let Some(page) = page else { continue };
        crate::http::serve::pages::check_page(root, page, config.dotfiles)
            .map_err(|why| StartError::Invalid(format!("{flag} '{page}': {why}")))?;
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

/// A running server. Dropping it does not stop the server; call [`Handle::shutdown`] and
/// [`Handle::join`].
#[derive(Debug)]
pub struct Handle {
    driver: Arc<Driver>,
    stats: Arc<Stats>,
    addrs: Vec<SocketAddr>,
    unix_paths: Vec<PathBuf>,
    /// Listening on sockets passed by systemd or the embedding program.
    passed: bool,
    mode: Mode,
    grace: Duration,
    detail: String,
    budget: fdbudget::Budget,
    /// Reopens the access log file (`None` without an access log).
    reopener: Option<accesslog::Reopener>,
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
        &self.stats
    }

    /// Every Unix socket path listened on, in the order given.
    pub fn unix_paths(&self) -> &[PathBuf] {
        &self.unix_paths
    }

    /// Whether the server listens on passed sockets ([`Config::listen_passed`], e.g. from
    /// systemd) rather than on addresses it bound.
    pub fn on_passed_sockets(&self) -> bool {
        self.passed
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

    /// Reopens the access log file at its path (log rotation: rename the file, then call
    /// this): lines written before it returns are in the renamed file, every later one in the
    /// new file at the path; no line is lost or split. Returns the path reopened, or `None`
    /// when there is no access log file (none, or stdout). On an error the old file stays in
    /// use. The `ringserve` binary calls it on SIGUSR1.
    pub fn reopen_logs(&self) -> std::io::Result<Option<PathBuf>> {
        reopen(self.reopener.as_ref())
    }

    /// A cloneable, `Send` trigger for [`Handle::shutdown`] and [`Handle::reopen_logs`]
    /// (e.g. for a signal thread).
    pub fn trigger(&self) -> Trigger {
        Trigger {
            driver: Arc::clone(&self.driver),
            reopener: self.reopener.clone(),
        }
    }

    /// Waits until the server has stopped: after a shutdown, until every connection is done
    /// or the grace period has passed (then the rest are cut).
    pub fn join(self) {
        self.driver.join(self.grace);
    }
}

/// Starts a graceful shutdown, or reopens the access log, from any thread.
#[derive(Clone, Debug)]
pub struct Trigger {
    driver: Arc<Driver>,
    reopener: Option<accesslog::Reopener>,
}

impl Trigger {
    pub fn shutdown(&self) {
        self.driver.shutdown();
    }

    /// See [`Handle::reopen_logs`].
    pub fn reopen_logs(&self) -> std::io::Result<Option<PathBuf>> {
        reopen(self.reopener.as_ref())
    }
}

fn reopen(reopener: Option<&accesslog::Reopener>) -> std::io::Result<Option<PathBuf>> {
    match reopener {
        Some(r) => r.reopen(),
        None => Ok(None),
    }
}
