//! One worker: a thread with its own io_uring, its own listeners, and the event loop that
//! moves bytes between sockets and the sans-I/O core of each connection.
//!
//! One loop iteration: publish recycled receive buffers, submit every queued entry and wait for
//! at least one completion (or the next deadline) in a single `io_uring_enter`, handle the
//! completions in order, expire deadlines.
//!
//! Operations per connection (each tagged with a [`Token`]):
//! - one multishot `recv` into the provided-buffer ring, armed from accept to close (paused
//!   and re-armed only when a client pipelines faster than it reads);
//! - at most one output operation at a time: a `send` of coalesced in-memory bytes, or a
//!   `poll` for `POLLOUT` while a file body goes out with `sendfile(2)` (see [`super::output`]);
//! - at the end, a cancel of the recv, then `close`.
//!
//! Memory handed to the kernel: the receive buffers (owned here, outliving the ring), and the
//! bytes of an in-flight send, owned by the connection's output queue. A connection with an
//! operation in flight is never freed; see [`Worker::finish`].

use super::bufring::BufRing;
use super::conn::{Connection, Flow, Io, Slots, State};
use super::output::Pool;
use super::ring::{Completion, Ring};
use super::shared::{Listening, Settings, Shared};
use super::timers::{Key, Timers};
use super::token::{Kind, Token};
use crate::fs::cache::FileCache;
use crate::http::DateCache;
use crate::server::listen::Stream;
use crate::server::policy::{ACCEPT_ERROR_LOG_EVERY, ACCEPT_RETRY};
use crate::stats::WorkerStats;
use io_uring::cqueue;
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Receive buffers per worker and their size. 4 KiB holds a typical request head whole; a
/// larger one arrives in several buffers. 1024 × 4 KiB = 4 MiB of address space per worker,
/// committed only as the kernel writes into it.
const RECV_BUFFERS: u16 = 1024;
const RECV_BUFFER_SIZE: usize = 4096;
/// Fewer buffers are tried when registration fails with ENOMEM (a tight `RLIMIT_MEMLOCK`).
const MIN_RECV_BUFFERS: u16 = 64;
const BUFFER_GROUP: u16 = 0;

/// How long a stopping worker waits for cancelled operations to complete before it gives up
/// and leaks its receive buffers rather than unmap memory the kernel may still write.
const DRAIN_OPS_FOR: Duration = Duration::from_secs(2);

/// What a worker reports once its ring is set up (or why it could not be).
pub type Ready = Result<String, io::Error>;

pub struct Worker {
    // Field order matters on drop: the ring goes first, so the kernel has let go of the
    // receive buffers before their memory is unmapped.
    ring: Ring,
    bufs: Option<BufRing>,
    index: usize,
    shared: Arc<Shared>,
    settings: Settings,
    listeners: Vec<Option<Listening>>,
    /// Whether listener `i` accepts Unix-domain sockets; kept after the listeners close,
    /// for the accepts that complete after a drain began.
    unix_listener: Vec<bool>,
    /// Readable when the server stops (a socketpair: the other end is the `Uring` handle's).
    wake: UnixStream,
    conns: Slots,
    timers: Timers,
    date: DateCache,
    now: Instant,
    pool: Pool,
    cache: FileCache,
    /// Connections whose recv ended for lack of buffers, re-armed after recycling.
    rearm: Vec<(u32, u32)>,
    /// Reclaimable connections in the order they became so (slot, generation, since): the
    /// front is the longest idle. Lazy: an entry whose connection has since been busy (its
    /// `idle_since` differs) or closed is skipped, and stale entries are dropped in bulk.
    idle: VecDeque<(u32, u32, Instant)>,
    /// Set while a reclaimed connection closes: its place passes to the newcomer.
    handing_over: bool,
    /// Multishot recvs whose final completion has not arrived (including those of freed
    /// slots): the buffers may not be unmapped while any remain.
    recvs_outstanding: usize,
    accepts_outstanding: usize,
    draining: bool,
    /// When a drain gives up on connections still open (and, while stopping, bounds a wait).
    drain_deadline: Option<Instant>,
    last_accept_error_log: Option<Instant>,
    cqes: Vec<Completion>,
}

impl Worker {
    /// Sets up the ring and buffers inside the worker's thread (the ring is then used only by
    /// this thread, which `SINGLE_ISSUER` requires).
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        settings: Settings,
        listeners: Vec<Listening>,
        wake: UnixStream,
    ) -> io::Result<(Worker, String)> {
        let ring = Ring::new(settings.sq_entries)?;
        let mut count = RECV_BUFFERS;
        let bufs = loop {
            match BufRing::new(ring.raw(), count, RECV_BUFFER_SIZE, BUFFER_GROUP) {
                Ok(b) => break b,
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && count > MIN_RECV_BUFFERS => {
                    count /= 2;
                }
                Err(e) => return Err(e),
            }
        };
        let detail = format!(
            "{}, {count} × {} KiB receive buffers",
            ring.flags(),
            RECV_BUFFER_SIZE / 1024
        );
        let now = Instant::now();
        let worker = Worker {
            ring,
            bufs: Some(bufs),
            index,
            shared,
            settings,
            unix_listener: listeners.iter().map(|l| l.unix).collect(),
            listeners: listeners.into_iter().map(Some).collect(),
            wake,
            conns: Slots::default(),
            timers: Timers::new(),
            date: DateCache::at(SystemTime::now(), now),
            now,
            pool: Pool::default(),
            cache: FileCache::with_max_files(settings.cache_files),
            rearm: Vec::new(),
            idle: VecDeque::new(),
            handing_over: false,
            recvs_outstanding: 0,
            accepts_outstanding: 0,
            draining: false,
            drain_deadline: None,
            last_accept_error_log: None,
            cqes: Vec::with_capacity(1024),
        };
        Ok((worker, detail))
    }

    /// Runs until a shutdown has finished. Never panics on I/O errors: a failing connection is
    /// closed, a failing listener is retried, a failing ring stops this worker with a log line.
    pub fn run(mut self) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i as u32);
        }
        self.ring.poll(
            self.wake.as_raw_fd(),
            libc::POLLIN,
            Token::new(Kind::Wake, 0, 0),
        );
        self.arm_watch();
        if self.shared.shutdown.is_draining() {
            self.start_drain();
        }
        loop {
            if let Err(e) = self.turn() {
                eprintln!(
                    "ringserve: worker {}: io_uring failed: {e}; this worker stops",
                    self.index
                );
                self.abort_all();
                break;
            }
            if self.draining && self.conns.open() == 0 {
                break;
            }
        }
        self.wait_for_outstanding();
    }

    /// One loop iteration.
    fn turn(&mut self) -> io::Result<()> {
        if let Some(bufs) = &mut self.bufs {
            bufs.publish();
        }
        // The cache counts in plain integers; publish them for the status path before waiting.
        let cached = self.cache.stats();
        self.stats().set_cache(cached.hits, cached.misses);
        let wait = self
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        self.ring.submit_and_wait(wait)?;
        self.now = Instant::now();
        self.date.update(SystemTime::now(), self.now);
        let mut cqes = std::mem::take(&mut self.cqes);
        self.ring.take_completions(&mut cqes);
        // Deploys: apply file-system changes before answering any request of this batch when
        // the batch holds the inotify poll's completion, or holds a recv while task work is
        // still pending (the cases where a request's completion can overtake the poll's; the
        // argument is in `fs::cache`, "Ordering").
        let watch = Token::new(Kind::Watch, 0, 0).encode();
        let polled = cqes.iter().any(|&(data, ..)| data == watch);
        if polled
            || (self.ring.taskrun_pending()
                && cqes
                    .iter()
                    .any(|&(data, ..)| Token::decode(data).is_some_and(|t| t.kind == Kind::Recv)))
        {
            self.cache.apply_changes();
        }
        for &(data, res, flags) in &cqes {
            self.complete(data, res, flags);
        }
        cqes.clear();
        self.cqes = cqes;
        for (slot, generation) in std::mem::take(&mut self.rearm) {
            self.with_conn(slot, generation, |conn, io| {
                conn.arm_recv(io);
                Flow::Keep
            });
        }
        self.expire();
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.timers.next(), self.drain_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// This worker's counters.
    fn stats(&self) -> &WorkerStats {
        self.shared.stats.worker(self.index)
    }

    /// Runs `handle` on the connection a token names (if it is still there) with what it may
    /// borrow from the worker, then re-arms its deadline or closes it as `handle` says.
    fn with_conn(
        &mut self,
        slot: u32,
        generation: u32,
        handle: impl FnOnce(&mut Connection, &mut Io<'_>) -> Flow,
    ) {
        let life = if self.draining {
            crate::http::Lifecycle::Draining
        } else {
            self.shared.shutdown.state()
        };
        let group = self.bufs.as_ref().map(BufRing::group);
        let Some(conn) = self.conns.live(slot, generation) else {
            return;
        };
        let mut io = Io {
            ring: &mut self.ring,
            pool: &mut self.pool,
            cache: &mut self.cache,
            date: &self.date,
            shared: &self.shared,
            stats: self.shared.stats.worker(self.index),
            now: self.now,
            life,
            large_files: self.settings.large_files,
            group,
            recvs_outstanding: &mut self.recvs_outstanding,
        };
        // A bug that panics while handling one connection costs that connection only: it is
        // closed (after its operations in flight complete, so no buffer is freed early), one
        // line is logged, and the worker goes on serving the others.
        let handled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(conn, &mut io)));
        let flow = handled.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            eprintln!(
                "ringserve: worker {}: closing one connection after a bug: {what}",
                self.index
            );
            Flow::Close
        });
        match flow {
            Flow::Keep => {
                self.arm_timer(slot);
                self.note_idle(slot);
            }
            Flow::Close => self.finish(slot),
        }
    }

    /// Queues a connection that has just become reclaimable.
    fn note_idle(&mut self, slot: u32) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.idle_since.is_none() && conn.reclaimable() {
            conn.idle_since = Some(now);
            self.idle.push_back((slot, conn.generation, now));
            if self.idle.len() > 4 * self.conns.open() + 4096 {
                let conns = &mut self.conns;
                self.idle.retain(|&(slot, generation, since)| {
                    conns
                        .live(slot, generation)
                        .is_some_and(|c| c.idle_since == Some(since))
                });
            }
        }
    }

    /// At the connection cap: closes this worker's longest-idle reclaimable connection and
    /// hands its place under `--max-conns` to the newcomer (the count never drops, so no
    /// other worker can take the place in between). `false` when it has none (every
    /// connection is busy or in the middle of a head).
    fn reclaim_one(&mut self) -> bool {
        while let Some((slot, generation, since)) = self.idle.pop_front() {
            let Some(conn) = self.conns.live(slot, generation) else {
                continue;
            };
            if conn.idle_since != Some(since) || !conn.reclaimable() {
                continue;
            }
            // Nothing is in flight on an idle connection: the slot frees at once, in `finish`,
            // which leaves the place counted for the newcomer.
            self.handing_over = true;
            self.with_conn(slot, generation, |c, _| c.abort());
            if self.handing_over {
                // It could not close at once after all: it gives its place back when it does.
                self.handing_over = false;
                continue;
            }
            self.stats().reclaimed();
            return true;
        }
        false
    }

    // ---- completions ---------------------------------------------------------------------

    fn complete(&mut self, data: u64, res: i32, flags: u32) {
        let Some(t) = Token::decode(data) else {
            return;
        };
        match t.kind {
            Kind::Accept => self.on_accept(t.slot, res, flags),
            Kind::Recv => self.on_recv(t, res, flags),
            Kind::Send => self.with_conn(t.slot, t.generation, |c, io| c.on_send(res, io)),
            Kind::Poll => self.with_conn(t.slot, t.generation, |c, io| c.on_writable(io)),
            Kind::Wake => self.start_drain(),
            Kind::Ignore => {}
            // Applied in `turn` before the batch; re-armed if the kernel ended the poll, and
            // if it refused it, the cache stops relying on events (its logged fallback).
            Kind::Watch if res < 0 => {
                self.cache.stop_watching(io::Error::from_raw_os_error(-res));
            }
            Kind::Watch if !cqueue::more(flags) => self.arm_watch(),
            Kind::Watch => {}
        }
    }

    /// Polls the file cache's inotify descriptor (multishot), so that changes on disk show up
    /// as completions (applied in `turn`).
    fn arm_watch(&mut self) {
        let Some(fd) = self.cache.watch_fd().map(|fd| fd.as_raw_fd()) else {
            return;
        };
        self.ring
            .poll_multi(fd, libc::POLLIN, Token::new(Kind::Watch, 0, 0));
    }

    fn arm_accept(&mut self, index: u32) {
        let Some(Some(listener)) = self.listeners.get(index as usize) else {
            return;
        };
        self.accepts_outstanding += 1;
        self.ring
            .accept_multi(listener.fd.as_raw_fd(), Token::new(Kind::Accept, index, 0));
    }

    fn on_accept(&mut self, index: u32, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.accepts_outstanding -= 1;
        }
        if res >= 0 {
            // SAFETY: a non-negative accept result is a new descriptor the kernel just
            // created for us; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.stats().accepted();
            let unix = self
                .unix_listener
                .get(index as usize)
                .copied()
                .unwrap_or(false);
            self.admit(if unix {
                Stream::Unix(UnixStream::from(fd))
            } else {
                Stream::Tcp(TcpStream::from(fd))
            });
        } else if !self.draining && res != -libc::ECANCELED {
            if !matches!(-res, libc::ECONNABORTED | libc::EINTR) {
                self.log_accept_error(index, &io::Error::from_raw_os_error(-res));
            }
            if !more {
                // EMFILE and friends: pause rather than spin.
                self.timers
                    .push(self.now + ACCEPT_RETRY, Key::Accept(index));
            }
            return;
        }
        if !more && !self.draining {
            self.arm_accept(index);
        }
        if !more && self.draining {
            self.sweep(index);
        }
    }

    /// Once a drain's cancelled accept on listener `index` has completed: serves the
    /// connections still queued on a passed socket, then closes this worker's descriptor.
    ///
    /// Why: io_uring waits for connections as an *exclusive* waiter (one arrival wakes one
    /// waiter). A wake-up that reached this worker's accept as it was being cancelled is
    /// spent, and the connection stays queued with no one woken for it: another instance
    /// sharing the socket would not take it until the next connection arrives (measured in
    /// `tests/activation.rs`, whose clients each wait for their answer: without this, a
    /// restart that overlapped the next instance left all of them waiting in 3 of 8 runs).
    /// Taking what is queued once our waiter is gone leaves no such connection; later
    /// arrivals wake the other instance.
    fn sweep(&mut self, index: u32) {
        let Some(Some(listener)) = self.listeners.get_mut(index as usize).map(Option::take) else {
            return;
        };
        if !listener.passed {
            return;
        }
        // Bounded: a busy socket could otherwise keep a stopping worker accepting forever;
        // a backlog's worth is what can be queued at the moment the accept was cancelled.
        for _ in 0..super::BACKLOG {
            match crate::sys::activation::accept_now(listener.fd.as_fd()) {
                Ok(fd) => {
                    self.stats().accepted();
                    self.admit(if listener.unix {
                        Stream::Unix(UnixStream::from(fd))
                    } else {
                        Stream::Tcp(TcpStream::from(fd))
                    });
                }
                Err(_) => break,
            }
        }
    }

    fn log_accept_error(&mut self, index: u32, e: &io::Error) {
        if self
            .last_accept_error_log
            .is_none_or(|t| self.now.duration_since(t) >= ACCEPT_ERROR_LOG_EVERY)
        {
            let addr = self.listeners[index as usize]
                .as_ref()
                .map_or("?", |l| l.label.as_str());
            eprintln!(
                "ringserve: worker {}: accepting on {addr} failed: {e}; retrying",
                self.index
            );
            self.last_accept_error_log = Some(self.now);
        }
    }

    /// Serves a new connection, also while draining: an accept that completed after the drain
    /// began (before its cancellation did) is a client the kernel told it was connected, and
    /// dropping it would fail its request. Its first request is awaited (the core's rule).
    fn admit(&mut self, stream: Stream) {
        if !self.take_a_place() {
            crate::server::refuse::reject_busy(
                stream,
                &self.date,
                self.shared.stats.worker(self.index),
            );
            return;
        }
        let peer = if self.shared.log.is_some() {
            stream.peer()
        } else {
            None
        };
        let now = self.now;
        let slot = self
            .conns
            .insert(|slot, generation| Connection::new(stream, slot, generation, peer, now));
        self.stats().opened();
        let generation = self.conns.get_mut(slot).map_or(0, |c| c.generation);
        self.with_conn(slot, generation, |conn, io| {
            conn.arm_recv(io);
            Flow::Keep
        });
    }

    /// Counts a new connection against `--max-conns`, closing an idle one of this worker's to
    /// make room if the cap is reached. `false`: refuse it.
    fn take_a_place(&mut self) -> bool {
        let max = self.settings.policy.max_conns;
        let active = &self.shared.active;
        if active.fetch_add(1, Ordering::AcqRel) < max {
            return true;
        }
        active.fetch_sub(1, Ordering::AcqRel);
        self.reclaim_one()
    }

    fn on_recv(&mut self, t: Token, res: i32, flags: u32) {
        let last = !cqueue::more(flags);
        if last {
            self.recvs_outstanding -= 1;
        }
        // Take the bytes out and give the buffer back first, whatever becomes of them.
        if let (Some(id), Some(bufs)) = (cqueue::buffer_select(flags), &mut self.bufs) {
            let len = usize::try_from(res).unwrap_or(0);
            if len > 0
                && let Some(conn) = self.conns.live(t.slot, t.generation)
            {
                conn.received(bufs.get(id, len), self.now);
            }
            bufs.recycle(id);
        }
        match res {
            n if n >= 0 || -n == libc::ECANCELED => {
                self.with_conn(t.slot, t.generation, |c, io| c.on_recv(last, n == 0, io));
            }
            n if -n == libc::ENOBUFS => {
                self.with_conn(t.slot, t.generation, |c, io| c.on_recv(last, false, io));
                self.rearm.push((t.slot, t.generation));
            }
            // ECONNRESET and friends: nothing more can be sent either.
            _ => self.with_conn(t.slot, t.generation, |c, _| c.abort()),
        }
    }

    /// Closes the connection in `slot`: cancels its operations, and once none is in flight
    /// closes the socket and frees the slot. A closed connection really closes: the recv
    /// holds a reference to the socket, so it is cancelled before the descriptor is closed.
    fn finish(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let (recv, output) = conn.start_closing();
        if let Some(recv) = recv {
            self.ring.cancel(recv);
        }
        if let Some(output) = output {
            // Its completion arrives soon and closes the connection again, for good.
            self.ring.cancel(output);
            return;
        }
        let Some(conn) = self.conns.remove(slot) else {
            return;
        };
        let ignore = conn.token(Kind::Ignore);
        // The ring closes the descriptor, after the cancel queued above.
        self.ring.close(OwnedFd::from(conn.stream), ignore);
        conn.out.release(&mut self.pool);
        self.compact_timers();
        self.stats().closed();
        if self.handing_over {
            // Reclaimed for a newcomer: the place passes to it (see `reclaim_one`).
            self.handing_over = false;
        } else {
            self.shared.active.fetch_sub(1, Ordering::AcqRel);
        }
    }

    // ---- deadlines -------------------------------------------------------------------------

    fn arm_timer(&mut self, slot: u32) {
        let timeouts = self.settings.policy.timeouts;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let at = conn.deadline(timeouts);
        if conn.timer_at.is_none_or(|t| at < t) {
            conn.timer_at = Some(at);
            let generation = conn.generation;
            self.timers.push(at, Key::Conn { slot, generation });
        }
    }

    /// Entries of closed connections stay in the heap until they come due; under heavy
    /// churn (30,000 connections a second, 10 s header timeout) that is hundreds of thousands.
    /// When they outnumber the open connections by far, drop them: linear work, amortised
    /// over as many closes, and the heap stays proportional to the connections open.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 4 * self.conns.open() + 4096 {
            return;
        }
        let conns = &mut self.conns;
        self.timers.retain(|at, key| match key {
            Key::Accept(_) => true,
            Key::Conn { slot, generation } => conns
                .live(slot, generation)
                .is_some_and(|c| c.timer_at == Some(at)),
        });
    }

    fn expire(&mut self) {
        let now = self.now;
        if self.drain_deadline.is_some_and(|d| d <= now) {
            self.drain_deadline = None;
            self.abort_all();
        }
        let timeouts = self.settings.policy.timeouts;
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                Key::Accept(index) => {
                    if !self.draining {
                        self.arm_accept(index);
                    }
                }
                Key::Conn { slot, generation } => {
                    let Some(conn) = self.conns.live(slot, generation) else {
                        continue;
                    };
                    if conn.timer_at != Some(at) {
                        continue; // superseded by an earlier entry
                    }
                    conn.timer_at = None;
                    if conn.deadline(timeouts) > now {
                        self.arm_timer(slot);
                    } else {
                        self.with_conn(slot, generation, |c, io| c.on_timeout(io));
                    }
                }
            }
        }
    }

    // ---- shutdown --------------------------------------------------------------------------

    fn start_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline = Some(Instant::now() + self.settings.policy.grace);
        for index in 0..self.listeners.len() as u32 {
            self.ring.cancel(Token::new(Kind::Accept, index, 0));
        }
        // Each listener closes when its cancelled accept completes (`Worker::sweep`); one
        // with no accept outstanding (waiting out an error) closes with the worker.
        // Idle connections close; busy ones close after their response.
        for slot in self.conns.all() {
            let Some(generation) = self.conns.get_mut(slot).map(|c| c.generation) else {
                continue;
            };
            self.with_conn(slot, generation, |conn, io| {
                if matches!(conn.state, State::Open(_)) && !conn.out.in_flight() {
                    conn.drive(io)
                } else {
                    Flow::Keep
                }
            });
        }
    }

    fn abort_all(&mut self) {
        for slot in self.conns.all() {
            if let Some(conn) = self.conns.get_mut(slot)
                && conn.state != State::Closing
            {
                let _ = conn.abort();
                self.finish(slot);
            }
        }
    }

    /// Waits (bounded) until the kernel has finished every operation that may write into the
    /// receive buffers or holds a listening socket; if that does not happen, leaks the buffers
    /// rather than unmap memory the kernel might still write.
    fn wait_for_outstanding(&mut self) {
        let until = Instant::now() + DRAIN_OPS_FOR;
        // The accepts hold the listening sockets open until their cancellation completes:
        // wait for it, so that a stopped server refuses connections at once.
        while self.recvs_outstanding > 0 || self.accepts_outstanding > 0 || self.conns.open() > 0 {
            if Instant::now() >= until {
                break;
            }
            self.drain_deadline = Some(Instant::now() + Duration::from_millis(50));
            if self.turn().is_err() {
                break;
            }
        }
        if self.recvs_outstanding > 0 {
            eprintln!(
                "ringserve: worker {}: {} receives still pending at exit; leaking their buffers",
                self.index, self.recvs_outstanding
            );
            std::mem::forget(self.bufs.take());
        }
    }
}
