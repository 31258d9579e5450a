//! The thread-per-connection mode: blocking sockets, one thread per connection, `sendfile(2)`
//! for file bodies. The classic model the event-driven mode is measured against, and its
//! fallback where io_uring is unavailable.
//!
//! Lifecycle of a connection thread: read → [`Conn::poll`] until it needs more → flush the
//! coalesced output → read again, with the read timeout set to whichever deadline applies
//! (header timeout while a head is incomplete or before the first request, idle timeout
//! between requests). A response that ends the connection is followed by a lingering close.
//!
//! Shutdown, with a drain delay configured: first an *announcing* phase of that length, in
//! which the core sees [`Lifecycle::Announcing`] (the health path answers 503, responses close
//! their connections) while new connections are still accepted, so a proxy's health check
//! takes the instance out of rotation before it stops listening. Then (at once without a
//! delay) a flag, and `shutdown(2)` on the listeners (wakes `accept`; a Unix socket's
//! file is removed) and the read side of every open connection (wakes idle readers; writes in
//! flight continue). The registry that makes the second possible holds raw descriptors; an
//! entry is removed under the lock before its socket is closed, so a descriptor in it is
//! always the socket it names.
//!
//! Counters: this mode has no workers, so every event is counted under worker 0 of the
//! site's [`crate::stats::Stats`], from whichever thread sees it.

use super::accesslog::{self, Sink};
use super::listen::{Listener, Stream};
use crate::http::response::{After, Body};
use crate::http::{Closing, Conn, DateCache, Lifecycle, Peer, Response, Site, Step};
use crate::stats::WorkerStats;
use crate::sys::net::{self, Direction, More};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Stack of a connection thread. The deepest path (parse + respond + format) needs a few
/// KiB; 256 KiB leaves room for debug builds while 10,000 threads reserve only 2.5 GiB of
/// address space (and commit far less).
const STACK_SIZE: usize = 256 * 1024;

/// One `read` takes at most this much: a full head under the default 8 KiB limit plus
/// pipelined neighbours.
const READ_SIZE: usize = 16 * 1024;

/// Coalesced in-memory output is flushed once it grows past this, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;

/// File bodies up to this size are read into the output buffer instead of `sendfile`d: one
/// `pread` plus the shared `send` costs less than a `send(MSG_MORE)` + `sendfile` pair, and
/// lets the responses to pipelined requests for small files leave in one write.
const COPY_BELOW: u64 = 16 * 1024;

/// Lingering close (as nginx's `lingering_close`): when the core says the client may still be
/// sending ([`Closing::Linger`]), keep reading and discarding for up to this long after the
/// last response, so that unread request bytes do not make the kernel reset the connection
/// and destroy the response before the client has read it.
const LINGER_FOR: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// Accept errors (EMFILE, ENOBUFS, …) are logged at most this often, then retried after a
/// pause, so a descriptor shortage cannot spin a core or flood the log.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(1);

/// Time limits and caps of the threaded mode.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_conns: usize,
    /// How long to announce the shutdown (health 503) before the listeners stop.
    pub drain_delay: Duration,
}

/// The running threaded server.
#[derive(Debug)]
pub struct Threaded {
    shared: Arc<Shared>,
    acceptors: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    site: Site,
    settings: Settings,
    log: Option<Sink>,
    listeners: Vec<Listener>,
    /// A shutdown was asked for: the core drains, new connections are still accepted.
    announcing: AtomicBool,
    /// The listeners are stopped: no new connections.
    draining: AtomicBool,
    registry: Mutex<Registry>,
    /// Signalled when the registry becomes empty.
    emptied: Condvar,
    shutdown_at: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, RawFd>,
}

impl Shared {
    fn lifecycle(&self) -> Lifecycle {
        if self.draining.load(Ordering::Acquire) {
            Lifecycle::Draining
        } else if self.announcing.load(Ordering::Acquire) {
            Lifecycle::Announcing
        } else {
            Lifecycle::Serving
        }
    }

    /// Stops accepting and wakes idle connections (idempotent).
    fn stop(&self) {
        let reg = self.registry();
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.shutdown_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        for listener in &self.listeners {
            listener.stop();
        }
        for &fd in reg.open.values() {
            net::shutdown_raw(fd, Direction::Read);
        }
    }

    /// Worker 0's counters (see the module docs).
    fn stats(&self) -> &WorkerStats {
        self.site.stats().worker(0)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // No code panics while holding the lock; recover the data if one ever did.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection's place in the registry; removing it is the first thing that happens when
/// the connection ends (it is declared before the stream in [`Connection`]).
struct Admission {
    shared: Arc<Shared>,
    id: u64,
}

impl Admission {
    /// Registers `stream` unless the server is full or draining. Checked under the registry
    /// lock, which `shutdown` also takes, so no connection slips past a shutdown sweep.
    fn try_new(shared: &Arc<Shared>, stream: &Stream) -> Option<Admission> {
        let mut reg = shared.registry();
        if shared.draining.load(Ordering::Acquire) || reg.open.len() >= shared.settings.max_conns {
            return None;
        }
        let id = reg.next_id;
        reg.next_id += 1;
        reg.open.insert(id, stream.as_raw_fd());
        shared.stats().opened();
        Some(Admission {
            shared: Arc::clone(shared),
            id,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.stats().closed();
        let mut reg = self.shared.registry();
        reg.open.remove(&self.id);
        if reg.open.is_empty() {
            self.shared.emptied.notify_all();
        }
    }
}

/// Field order matters: the admission is dropped (deregistered) before the stream closes.
struct Connection {
    _admission: Admission,
    stream: Stream,
    peer: Peer,
}

impl Threaded {
    pub fn start(
        listeners: Vec<Listener>,
        site: Site,
        settings: Settings,
        log: Option<Sink>,
    ) -> io::Result<Threaded> {
        let count = listeners.len();
        let shared = Arc::new(Shared {
            site,
            settings,
            log,
            listeners,
            announcing: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            registry: Mutex::new(Registry::default()),
            emptied: Condvar::new(),
            shutdown_at: Mutex::new(None),
        });
        let mut acceptors = Vec::with_capacity(count);
        for index in 0..count {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("ringserve-accept-{index}"))
                .spawn(move || accept_loop(&shared, index))?;
            acceptors.push(handle);
        }
        Ok(Threaded {
            shared,
            acceptors: Mutex::new(acceptors),
        })
    }

    pub fn site(&self) -> &Site {
        &self.shared.site
    }

    /// Idempotent. Announces the shutdown for the drain delay, then stops (see the module
    /// docs for what that wakes).
    pub fn shutdown(&self) {
        let shared = &self.shared;
        let delay = shared.settings.drain_delay;
        if shared.announcing.swap(true, Ordering::AcqRel) {
            return;
        }
        if delay.is_zero() {
            shared.stop();
            return;
        }
        let later = Arc::clone(shared);
        let timer = std::thread::Builder::new()
            .name("ringserve-drain".into())
            .spawn(move || {
                std::thread::sleep(delay);
                later.stop();
            });
        if timer.is_err() {
            // No thread for the delay: stop now rather than never.
            shared.stop();
        }
    }

    /// Waits for the acceptors (that is, for a shutdown), then for open connections until
    /// `grace` after the shutdown began; connections still open then are cut.
    pub fn join(&self, grace: Duration) {
        let acceptors =
            std::mem::take(&mut *self.acceptors.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in acceptors {
            let _ = handle.join();
        }
        let started = self
            .shared
            .shutdown_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Instant::now);
        if !self.wait_until_empty(started + grace) {
            for &fd in self.shared.registry().open.values() {
                net::shutdown_raw(fd, Direction::Both);
            }
            // Cut connections fail their next read or write at once; allow them a moment.
            self.wait_until_empty(Instant::now() + Duration::from_secs(1));
        }
    }

    fn wait_until_empty(&self, deadline: Instant) -> bool {
        let mut reg = self.shared.registry();
        while !reg.open.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            reg = self
                .shared
                .emptied
                .wait_timeout(reg, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

fn accept_loop(shared: &Arc<Shared>, index: usize) {
    let listener = &shared.listeners[index];
    let mut date = DateCache::new(SystemTime::now());
    let mut last_error_log: Option<Instant> = None;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                shared.stats().accepted();
                match Admission::try_new(shared, &stream) {
                    Some(admission) => {
                        let conn = Connection {
                            _admission: admission,
                            stream,
                            peer,
                        };
                        let shared_for_thread = Arc::clone(shared);
                        let spawned = std::thread::Builder::new()
                            .name("ringserve-conn".into())
                            .stack_size(STACK_SIZE)
                            .spawn(move || serve(&shared_for_thread, &conn));
                        if let Err(e) = spawned {
                            // The closure (and with it the connection) was dropped: it is closed.
                            log_accept_error(&mut last_error_log, listener, &e);
                            std::thread::sleep(ACCEPT_ERROR_PAUSE);
                        }
                    }
                    None if shared.draining.load(Ordering::Acquire) => drop(stream),
                    None => {
                        date.update(SystemTime::now());
                        super::reject_busy(stream, &date, shared.stats());
                    }
                }
            }
            Err(_) if shared.draining.load(Ordering::Acquire) => return,
            Err(e) => match e.kind() {
                // The peer gave up between SYN and accept, or a signal: nothing to report.
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {}
                _ => {
                    log_accept_error(&mut last_error_log, listener, &e);
                    std::thread::sleep(ACCEPT_ERROR_PAUSE);
                }
            },
        }
    }
}

fn log_accept_error(last: &mut Option<Instant>, listener: &Listener, e: &io::Error) {
    if last.is_none_or(|t| t.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
        let addr = listener.describe();
        eprintln!("ringserve: accepting on {addr} failed: {e}; retrying");
        *last = Some(Instant::now());
    }
}

/// The life of one connection.
fn serve(shared: &Shared, conn_io: &Connection) {
    let stream = &conn_io.stream;
    let settings = shared.settings;
    let _ = stream.set_nodelay();
    // A client that stops reading cannot hold the thread longer than an idle client could.
    let _ = stream.set_write_timeout(Some(settings.idle_timeout));
    let mut conn = Conn::new();
    let mut date = DateCache::new(SystemTime::now());
    let mut input = vec![0u8; READ_SIZE];
    let mut out = Output {
        buf: Vec::new(),
        pending: Vec::new(),
        peer: conn_io.peer,
    };
    // Before the first request the header timeout applies from the accept.
    let mut deadline = Instant::now() + settings.header_timeout;
    let mut started = Instant::now();
    let mut answered: u64 = 0;
    // The read timeout last set: `setsockopt` is skipped when it would not change (the common
    // case between keep-alive requests), saving a system call per request.
    let mut read_timeout: Option<Duration> = None;
    loop {
        date.update(SystemTime::now());
        match conn.poll(&shared.site, &date, shared.lifecycle()) {
            Step::Respond(response) => {
                answered += 1;
                let after = response.after;
                if out.push(stream, response, started, shared, &date).is_err() {
                    return;
                }
                if after == After::Close {
                    if out.flush(stream, shared, &date).is_ok() && conn.closing() == Closing::Linger
                    {
                        linger(stream);
                    }
                    return;
                }
                // The next (pipelined) request, if any, is timed from here.
                started = Instant::now();
                deadline = started + settings.header_timeout;
            }
            Step::Close => {
                let _ = out.flush(stream, shared, &date);
                return;
            }
            Step::NeedMore => {
                if out.flush(stream, shared, &date).is_err() {
                    return;
                }
                let left = if conn.has_partial_request() || answered == 0 {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    settings.idle_timeout
                };
                let read = if left.is_zero() {
                    Err(io::ErrorKind::TimedOut.into())
                } else {
                    let set = if read_timeout == Some(left) {
                        Ok(())
                    } else {
                        read_timeout = Some(left);
                        stream.set_read_timeout(Some(left))
                    };
                    set.and_then(|()| (&*stream).read(&mut input))
                };
                match read {
                    Ok(0) => return,
                    Ok(n) => {
                        if !conn.has_partial_request() && answered > 0 {
                            started = Instant::now();
                            deadline = started + settings.header_timeout;
                        }
                        conn.receive(&input[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        shared.stats().timed_out();
                        if let Some(response) = conn.timed_out(&shared.site, &date)
                            && out.push(stream, response, started, shared, &date).is_ok()
                        {
                            let _ = out.flush(stream, shared, &date);
                        }
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    }
}

/// Responses on their way out: in-memory bytes are coalesced (pipelined responses leave in
/// one `send`), file bytes go by `sendfile` right behind whatever precedes them.
struct Output {
    buf: Vec<u8>,
    pending: Vec<accesslog::Logged>,
    peer: Peer,
}

impl Output {
    fn push(
        &mut self,
        stream: &Stream,
        response: Response,
        started: Instant,
        shared: &Shared,
        date: &DateCache,
    ) -> io::Result<()> {
        let body_bytes = response.body_len();
        let head_bytes = response.head.len() as u64;
        self.buf.extend_from_slice(&response.head);
        match response.body {
            Body::Empty => {}
            Body::Static(bytes) => self.buf.extend_from_slice(bytes),
            Body::Bytes(bytes) => self.buf.extend_from_slice(&bytes),
            Body::Shared { bytes, range } => self
                .buf
                .extend_from_slice(crate::http::serve::clamped_slice(&bytes, &range)),
            Body::File { file, range } if range.end - range.start <= COPY_BELOW => {
                super::append_file_range(&file, range, &mut self.buf)?;
            }
            Body::File { file, range } => {
                net::send_all(stream.as_fd(), &self.buf, More::Yes)?;
                self.buf.clear();
                net::sendfile_all(stream.as_fd(), file.as_fd(), range)?;
            }
            Body::Multipart {
                file,
                parts,
                trailer,
            } => {
                for part in parts {
                    self.buf.extend_from_slice(&part.header);
                    net::send_all(stream.as_fd(), &self.buf, More::Yes)?;
                    self.buf.clear();
                    net::sendfile_all(stream.as_fd(), file.as_fd(), part.range)?;
                }
                self.buf.extend_from_slice(&trailer);
            }
        }
        // Counted once its bytes are in the output: a later failed send closes the connection,
        // and the response is then as lost as one the kernel dropped.
        shared
            .stats()
            .response(response.status, head_bytes + body_bytes);
        if shared.log.is_some() {
            self.pending.push(accesslog::Logged {
                fields: response.log,
                status: response.status,
                body_bytes,
                started,
            });
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush(stream, shared, date)?;
        }
        Ok(())
    }

    fn flush(&mut self, stream: &Stream, shared: &Shared, date: &DateCache) -> io::Result<()> {
        if !self.buf.is_empty() {
            net::send_all(stream.as_fd(), &self.buf, More::No)?;
            self.buf.clear();
            if self.buf.capacity() > 4 * FLUSH_AT {
                self.buf = Vec::new();
            }
        }
        if let Some(sink) = &shared.log {
            sink.write_logged(self.peer, &mut self.pending, date.now(), Instant::now());
        }
        Ok(())
    }
}

/// Half-closes, then reads and discards until the client closes or a bound is reached.
fn linger(stream: &Stream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let until = Instant::now() + LINGER_FOR;
    let mut scratch = [0u8; 4096];
    let mut discarded = 0usize;
    while discarded < LINGER_MAX_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n,
        }
    }
}
