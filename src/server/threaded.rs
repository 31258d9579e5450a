//! The thread-per-connection mode: blocking sockets, one thread per connection, `sendfile(2)`
//! for file bodies. The classic model the event-driven mode is measured against, and its
//! fallback where io_uring is unavailable.
//!
//! Lifecycle of a connection thread: read → [`Conn::poll`] until it needs more → flush the
//! coalesced output → read again, with the read timeout set to the deadline the core says
//! applies ([`Conn::deadline`]; a stalled write is bounded by the socket's write timeout). A
//! response that ends the connection is followed by a lingering close.
//!
//! Shutdown, with a drain delay configured: first an *announcing* phase of that length, in which
//! the core sees [`Lifecycle::Announcing`](crate::http::Lifecycle::Announcing) (the health path
//! answers 503, responses close their connections) while new connections are still accepted, so a
//! proxy's health check takes the instance out of rotation before it stops listening. Then (at once
//! without a delay) a flag, and `shutdown(2)` on the listeners (wakes `accept`; a Unix socket's
//! file is removed; a passed socket is not shut down but its acceptor woken through a pair) and the
//! read side of every idle keep-alive connection (wakes idle readers; writes in flight continue; a
//! connection not yet answered gets its first request answered). The registry that makes the second
//! possible holds raw descriptors; an entry is removed under the lock before its socket is closed,
//! so a descriptor in it is always the socket it names.
//!
//! Counters: this mode has no workers, so every event is counted under worker 0 of the
//! site's [`crate::stats::Stats`], from whichever thread sees it.

use super::accesslog::{self, Sink};
use super::lifecycle::{self, Shutdown};
use super::listen::{Listener, Stream};
use super::lower::{self, wire_len};
use super::policy::{
    ACCEPT_ERROR_LOG_EVERY, ACCEPT_RETRY, FLUSH_AT, LINGER_FOR, LINGER_MAX_BYTES, Settings,
};
use crate::http::response::After;
use crate::http::{Closing, Conn, DateCache, Peer, Response, Site, Step};
use crate::stats::{Stats, WorkerStats};
use crate::sys::net::{self, Direction, More};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    shutdown: Shutdown,
    stats: Arc<Stats>,
    registry: Mutex<Registry>,
    /// Signalled when the registry becomes empty.
    emptied: Condvar,
    shutdown_at: Mutex<Option<Instant>>,
    /// The zero of the connections' [`IdleMark`]s.
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Entry>,
    /// Entries whose connection was told to close to make room (see [`Registry::reclaim`]):
    /// they no longer count against the cap.
    evicting: usize,
}

#[derive(Debug)]
struct Entry {
    fd: RawFd,
    idle: Arc<IdleMark>,
    evicted: bool,
}

/// Since when a connection has been reclaimable (waiting for a request with nothing
/// buffered, or connected without sending a byte), in nanoseconds since the server started,
/// plus one; 0 while it is busy. Written by the connection's thread without the lock.
///
/// The flag: the connection has answered a request, so a drain may close it while it is idle
/// (one not yet answered is left to get its first answer).
#[derive(Debug, Default)]
struct IdleMark(AtomicU64, AtomicBool);

impl IdleMark {
    /// Marks the connection idle from `since`, unless it already is (it stays queued from
    /// the first moment).
    fn set_idle(&self, since: Instant, epoch: Instant) {
        if self.0.load(Ordering::Relaxed) == 0 {
            let nanos =
                u64::try_from(since.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX - 1);
            self.0.store(nanos + 1, Ordering::Relaxed);
        }
    }

    fn set_busy(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    fn set_answered(&self) {
        self.1.store(true, Ordering::Relaxed);
    }

    /// Idle between requests, with at least one answered: a drain closes it.
    fn closable_by_drain(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0 && self.1.load(Ordering::Relaxed)
    }
}

impl Registry {
    /// Connections that count against `--max-conns`.
    fn counted(&self) -> usize {
        self.open.len() - self.evicting
    }

    /// At the cap: wakes the longest-idle reclaimable connection's thread by shutting its
    /// read side (its read returns 0 and it closes), and stops counting it. A linear scan, in
    /// the mode that makes no claim to scale. `false` when every connection is busy.
    fn reclaim(&mut self) -> bool {
        let oldest = self
            .open
            .values_mut()
            .filter(|e| !e.evicted)
            .map(|e| (e.idle.0.load(Ordering::Relaxed), e))
            .filter(|(since, _)| *since > 0)
            .min_by_key(|(since, _)| *since);
        let Some((_, entry)) = oldest else {
            return false;
        };
        entry.evicted = true;
        net::shutdown_raw(entry.fd, Direction::Read);
        self.evicting += 1;
        true
    }
}

impl Shared {
    /// Stops accepting and wakes idle connections (idempotent).
    fn stop(&self) {
        let reg = self.registry();
        if !self.shutdown.begin_drain() {
            return;
        }
        // Pairs with the fence in `serve` (see there).
        std::sync::atomic::fence(Ordering::SeqCst);
        *self.shutdown_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        for listener in &self.listeners {
            listener.stop();
        }
        // Idle keep-alive connections only: one that is busy closes after its response
        // (the core says so while draining), and one not yet answered gets its first answer.
        for e in reg.open.values().filter(|e| e.idle.closable_by_drain()) {
            net::shutdown_raw(e.fd, Direction::Read);
        }
    }

    /// Worker 0's counters (see the module docs).
    fn stats(&self) -> &WorkerStats {
        self.stats.worker(0)
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
    idle: Arc<IdleMark>,
}

impl Admission {
    /// Registers `stream` unless the server is full. Also while draining: a connection the
    /// acceptor took just as the drain began was told by the kernel it is connected, and is
    /// served its first request (a drain's sweep leaves unanswered connections alone anyway).
    /// At the cap, an idle connection is closed to make room first (see [`Registry::reclaim`]).
    fn try_new(shared: &Arc<Shared>, stream: &Stream) -> Option<Admission> {
        let mut reg = shared.registry();
        if reg.counted() >= shared.settings.max_conns {
            if !reg.reclaim() {
                return None;
            }
            shared.stats().reclaimed();
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let idle = Arc::new(IdleMark::default());
        reg.open.insert(
            id,
            Entry {
                fd: stream.as_raw_fd(),
                idle: Arc::clone(&idle),
                evicted: false,
            },
        );
        shared.stats().opened();
        Some(Admission {
            shared: Arc::clone(shared),
            id,
            idle,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.stats().closed();
        let mut reg = self.shared.registry();
        if reg.open.remove(&self.id).is_some_and(|e| e.evicted) {
            reg.evicting -= 1;
        }
        if reg.open.is_empty() {
            self.shared.emptied.notify_all();
        }
    }
}

/// Field order matters: the admission is dropped (deregistered) before the stream closes.
struct Connection {
    admission: Admission,
    stream: Stream,
    peer: Peer,
}

impl Threaded {
    pub fn start(
        listeners: Vec<Listener>,
        site: Site,
        settings: Settings,
        log: Option<Sink>,
        stats: Arc<Stats>,
    ) -> io::Result<Threaded> {
        let count = listeners.len();
        let shared = Arc::new(Shared {
            site,
            settings,
            log,
            listeners,
            shutdown: Shutdown::new(),
            stats,
            registry: Mutex::new(Registry::default()),
            emptied: Condvar::new(),
            shutdown_at: Mutex::new(None),
            epoch: Instant::now(),
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
        if !self.shared.shutdown.announce() {
            return;
        }
        let later = Arc::clone(&self.shared);
        lifecycle::after_delay(self.shared.settings.drain_delay, move || later.stop());
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
            for e in self.shared.registry().open.values() {
                net::shutdown_raw(e.fd, Direction::Both);
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
                            admission,
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
                            std::thread::sleep(ACCEPT_RETRY);
                        }
                    }
                    None => {
                        date.update(SystemTime::now(), Instant::now());
                        super::refuse::reject_busy(stream, &date, shared.stats());
                    }
                }
            }
            Err(_) if shared.shutdown.is_draining() => return,
            Err(e) => match e.kind() {
                // The peer gave up between SYN and accept, or a signal: nothing to report.
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {}
                _ => {
                    log_accept_error(&mut last_error_log, listener, &e);
                    std::thread::sleep(ACCEPT_RETRY);
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
    let timeouts = shared.settings.timeouts;
    let _ = stream.set_nodelay();
    // A client that stops reading cannot hold the thread longer than an idle client could.
    let _ = stream.set_write_timeout(Some(timeouts.idle));
    let mut date = DateCache::new(SystemTime::now());
    let mut conn = Conn::new(date.instant());
    let mut input = vec![0u8; READ_SIZE];
    let mut out = Output {
        stream,
        stall: timeouts.idle,
        buf: Vec::new(),
        pending: Vec::new(),
        peer: conn_io.peer,
    };
    // The read timeout last set: `setsockopt` is skipped when it would not change (the common
    // case between keep-alive requests), saving a system call per request.
    let mut read_timeout: Option<Duration> = None;
    loop {
        date.update(SystemTime::now(), Instant::now());
        let began = conn.request_began();
        match conn.poll(&shared.site, &date, shared.shutdown.state()) {
            Step::Respond(response) => {
                conn_io.admission.idle.set_answered();
                let after = response.after;
                if out.push(response, began, shared, &date).is_err() {
                    return;
                }
                if after == After::Close {
                    if out.flush(shared, &date).is_ok() && conn.closing() == Closing::Linger {
                        linger(stream);
                    }
                    return;
                }
            }
            Step::Close => {
                let _ = out.flush(shared, &date);
                return;
            }
            Step::NeedMore => {
                // Reclaimable from before the flush: a client that has its answer may rely on
                // this connection counting as idle (a reclaim only shuts the read side, so the
                // flush still completes).
                let idle = &conn_io.admission.idle;
                if !conn.has_partial_request() {
                    idle.set_idle(Instant::now(), shared.epoch);
                }
                let wrote = !out.buf.is_empty();
                if out.flush(shared, &date).is_err() {
                    return;
                }
                if wrote {
                    conn.progressed(Instant::now());
                }
                // A drain that began after the poll above, but whose sweep ran before this
                // connection was marked idle, did not wake it: poll again, the core closes it.
                // The fence pairs with the one in `Shared::stop`: either the sweep sees this
                // connection idle, or this check sees the drain.
                std::sync::atomic::fence(Ordering::SeqCst);
                if conn.answered() > 0
                    && !conn.has_partial_request()
                    && shared.shutdown.is_draining()
                {
                    continue;
                }
                // Output is flushed: the header or idle deadline applies (a stalled write is
                // bounded by the socket's write timeout).
                let deadline = conn.deadline(timeouts, false);
                let left = deadline.at().saturating_duration_since(Instant::now());
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
                        idle.set_busy();
                        conn.receive(&input[..n], Instant::now());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        shared.stats().timed_out();
                        let began = conn.request_began();
                        if let Some(response) = conn.timed_out(&shared.site, &date)
                            && out.push(response, began, shared, &date).is_ok()
                        {
                            let _ = out.flush(shared, &date);
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
struct Output<'a> {
    stream: &'a Stream,
    /// How long a file send may wait for a client that reads nothing (the idle timeout).
    stall: Duration,
    buf: Vec<u8>,
    pending: Vec<accesslog::Logged>,
    peer: Peer,
}

impl Output<'_> {
    fn push(
        &mut self,
        mut response: Response,
        started: Instant,
        shared: &Shared,
        date: &DateCache,
    ) -> io::Result<()> {
        let status = response.status;
        let (wire, body_bytes) = (wire_len(&response), response.body_len());
        let fields = response.log.take();
        lower::lower(&response.head, response.body, self)?;
        // Counted once its bytes are in the output: a later failed send closes the connection,
        // and the response is then as lost as one the kernel dropped.
        shared.stats().response(status, wire);
        if shared.log.is_some() {
            self.pending.push(accesslog::Logged {
                fields,
                status,
                body_bytes,
                started,
            });
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush(shared, date)?;
        }
        Ok(())
    }

    fn flush(&mut self, shared: &Shared, date: &DateCache) -> io::Result<()> {
        if !self.buf.is_empty() {
            net::send_all(self.stream.as_fd(), &self.buf, More::No)?;
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

impl lower::Output for Output<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn small_file(&mut self, file: &File, range: Range<u64>) -> io::Result<()> {
        super::lower::append_file_range(file, range, &mut self.buf)
    }

    fn file(&mut self, file: Rc<File>, range: Range<u64>) -> io::Result<()> {
        net::send_all(self.stream.as_fd(), &self.buf, More::Yes)?;
        self.buf.clear();
        // Non-blocking for the transfer, so a client that stops reading is cut after the idle
        // timeout (a blocking `sendfile` ignores the socket's send timeout).
        self.stream.set_nonblocking(true)?;
        let sent = net::sendfile_all_within(self.stream.as_fd(), file.as_fd(), range, self.stall);
        self.stream.set_nonblocking(false)?;
        sent
    }
}

/// Half-closes, then reads and discards until the client closes or a bound is reached.
fn linger(stream: &Stream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
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
