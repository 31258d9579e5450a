//! One worker: a thread pinned to a core, its own io_uring, its own listeners, and the event
//! loop that moves bytes between sockets and the sans-I/O [`Conn`] of each connection.
//!
//! One loop iteration: publish recycled receive buffers, submit every queued SQE and wait for
//! at least one completion (or the next deadline) in a single `io_uring_enter`, handle the
//! completions, expire deadlines.
//!
//! Operations per connection (each tagged with [`Token`]):
//! - one multishot `recv` into the provided-buffer ring, armed from accept to close (paused
//!   and re-armed only when a client pipelines faster than it reads);
//! - at most one output operation at a time: a `send` of coalesced in-memory bytes, or a
//!   `poll` for `POLLOUT` while a file body goes out with `sendfile(2)` (see [`FileSend`]);
//! - at the end, `AsyncCancel` of the recv, then `close`.
//!
//! Memory handed to the kernel: the receive buffers (owned by the worker, outlive the ring),
//! and the bytes of an in-flight `send`, owned by the connection's output queue. A connection
//! with an operation in flight is never freed; see [`Worker::finish`].

use super::bufring::BufRing;
use super::cursor::{self, Pending, SendBuf};
use super::timers::{Key, Timers};
use super::{LargeFiles, Shared};
use crate::fs::cache::FileCache;
use crate::http::response::{After, Body};
use crate::http::serve::clamped_slice;
use crate::http::{Closing, Conn, DateCache, Lifecycle, Peer, Response, Step};
use crate::server::accesslog;
use crate::server::listen::Stream;
use crate::stats::WorkerStats;
use crate::sys::net;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as UnixConn;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Submission queue entries; a full queue is flushed with a submit and pushing resumes.
pub const SQ_ENTRIES: u32 = 512;
/// Completion queue entries: room for a burst of multishot completions between loop turns
/// (the kernel keeps overflow entries aside without dropping them, `FEAT_NODROP`).
const CQ_ENTRIES: u32 = 8192;

/// Receive buffers per worker and their size. 4 KiB holds a typical request head whole; a
/// larger one arrives in several buffers. 1024 × 4 KiB = 4 MiB of address space per worker,
/// committed only as the kernel writes into it.
const RECV_BUFFERS: u16 = 1024;
const RECV_BUFFER_SIZE: usize = 4096;
/// Fewer buffers are tried when registration fails with ENOMEM (a tight `RLIMIT_MEMLOCK`).
const MIN_RECV_BUFFERS: u16 = 64;
const BUFFER_GROUP: u16 = 0;

/// In-memory output stops growing past this: the connection stops answering pipelined
/// requests until the client has read what is queued.
const FLUSH_AT: usize = 64 * 1024;
/// Buffered, unanswered input beyond the head limit plus this pauses the recv.
const INPUT_SLACK: usize = 64 * 1024;
/// File bodies up to this size are read into the send buffer (one `pread`, and pipelined
/// responses for small files leave in one `send`); larger ones go out with `sendfile`.
const COPY_BELOW: u64 = 16 * 1024;
/// Send buffers kept for reuse, and the largest capacity worth keeping.
const POOL_MAX: usize = 256;
const POOL_BUFFER_MAX: usize = 4 * FLUSH_AT;

/// Lingering close, as in the threaded mode.
const LINGER_FOR: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// After an accept error (EMFILE, ENFILE, ENOBUFS), accepting resumes after this pause.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(1);

/// How long a stopping worker waits for cancelled operations to complete before it gives up
/// and leaks its receive buffers rather than unmap memory the kernel may still write.
const DRAIN_OPS_FOR: Duration = Duration::from_secs(2);

/// What a completion is about: kind, connection slot and generation packed in `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token {
    kind: Kind,
    slot: u32,
    generation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// Multishot accept on listener `slot`.
    Accept = 1,
    Recv = 2,
    Send = 3,
    /// `POLLOUT` while a file body waits for socket buffer space.
    Poll = 4,
    /// The shutdown wake-up pipe became readable.
    Wake = 5,
    /// Cancel, close, shutdown: posted only on failure (`CQE_SKIP_SUCCESS`), and ignored.
    Ignore = 6,
    /// Multishot poll on the file cache's inotify descriptor (issue 11).
    Watch = 7,
}

const GENERATION_MASK: u32 = 0x00ff_ffff;

impl Token {
    fn encode(self) -> u64 {
        (self.kind as u64) << 56
            | u64::from(self.generation & GENERATION_MASK) << 32
            | u64::from(self.slot)
    }

    fn decode(data: u64) -> Option<Token> {
        let kind = match data >> 56 {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Poll,
            5 => Kind::Wake,
            6 => Kind::Ignore,
            7 => Kind::Watch,
            _ => return None,
        };
        Some(Token {
            kind,
            slot: data as u32,
            generation: (data >> 32) as u32 & GENERATION_MASK,
        })
    }
}

/// State of a connection's multishot recv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recv {
    Armed,
    /// Cancelled; its final completion has not arrived yet.
    Cancelling,
    Off,
}

/// Where a connection is in its life, seen from the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and answering.
    Open,
    /// The last response is queued; close (or linger) once it is sent.
    Ending,
    /// Write side shut; discarding input until EOF, a byte cap or the deadline.
    Lingering { until: Instant, discarded: usize },
    /// Waiting for in-flight operations to complete before closing.
    Closing,
}

/// A piece of output, in order.
enum Chunk {
    Mem(SendBuf),
    /// A cached body (or part of one) sent straight from the cache's memory.
    Shared(SharedSend),
    /// A file range sent with `sendfile(2)` from `offset` to `end`.
    File(FileSend),
}

struct SharedSend {
    bytes: Rc<[u8]>,
    /// Next byte to send and the end, as offsets into `bytes`.
    next: usize,
    end: usize,
}

impl Pending for Chunk {
    /// The bytes a send would take from this chunk now (none for a file).
    fn pending(&self) -> &[u8] {
        match self {
            Chunk::Mem(b) => b.pending(),
            Chunk::Shared(s) => &s.bytes[s.next..s.end],
            Chunk::File(_) => &[],
        }
    }

    /// Records `n` bytes sent from this chunk (`n` at most `pending().len()`).
    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Mem(b) => {
                let _ = b.advance(n);
            }
            Chunk::Shared(s) => s.next = (s.next + n).min(s.end),
            Chunk::File(_) => {}
        }
    }
}

/// Up to this many chunks leave in one `sendmsg` (a head and a cached body, for a few
/// pipelined responses).
const GATHER_MAX: usize = 8;

/// The `sendmsg` arguments of a gathered send. Boxed so its address is stable while the
/// kernel reads it; the iovecs point into the front chunks of the output queue.
struct Gather {
    msg: libc::msghdr,
    iov: [libc::iovec; GATHER_MAX],
}

/// Cached bodies at least this large are sent from the cache's memory rather than copied
/// into the send buffer.
const SHARE_FROM: u64 = 2048;

struct FileSend {
    /// Shared by the parts of a `multipart/byteranges` body.
    file: Rc<File>,
    offset: u64,
    end: u64,
}

struct Connection {
    stream: Stream,
    generation: u32,
    http: Conn,
    peer: Option<Peer>,
    out: VecDeque<Chunk>,
    /// In-memory bytes queued in `out`.
    queued: usize,
    recv: Recv,
    /// Reading was paused for backpressure (re-armed when the backlog is answered).
    paused: bool,
    /// The client closed its side (recv returned 0).
    eof: bool,
    /// Front chunks of `out` an in-flight send (or poll, for a file) is using; 0 when no
    /// output operation is in flight. Those chunks are neither changed nor dropped until its
    /// completion.
    in_flight: usize,
    /// The `sendmsg` arguments while a gathered send is in flight.
    gather: Option<Box<Gather>>,
    phase: Phase,
    /// When the current request began (accept, first byte of a head, or the previous
    /// response for pipelined requests): the header timeout runs from here.
    started: Instant,
    /// The last time bytes moved: the idle and write timeouts run from here.
    active_at: Instant,
    answered: u64,
    /// The earliest deadline this connection has in the timer heap.
    timer_at: Option<Instant>,
    logs: Vec<accesslog::Logged>,
}

/// Settings of the io_uring mode (the same limits as the threaded mode).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_conns: usize,
    pub grace: Duration,
    /// How long a shutdown is announced (health 503) before the listeners stop.
    pub drain_delay: Duration,
    pub large_files: LargeFiles,
    /// Submission queue size ([`SQ_ENTRIES`]; tests make it tiny to exercise a full queue).
    pub sq_entries: u32,
}

/// What a worker reports once its ring is set up (or why it could not be).
pub type Ready = Result<String, io::Error>;

pub struct Worker {
    // Field order matters on drop: the ring goes first, so the kernel has let go of the
    // receive buffers before their memory is unmapped.
    ring: IoUring,
    bufs: Option<BufRing>,
    index: usize,
    shared: Arc<Shared>,
    settings: Settings,
    listeners: Vec<Option<super::Listening>>,
    wake: UnixStream,
    slots: Vec<Option<Connection>>,
    free: Vec<u32>,
    generations: Vec<u32>,
    open: usize,
    timers: Timers,
    date: DateCache,
    now: Instant,
    pool: Vec<Vec<u8>>,
    cache: FileCache,
    /// SQEs that found the submission queue full even after a submit.
    backlog: VecDeque<squeue::Entry>,
    /// Connections whose recv ended for lack of buffers, re-armed after recycling.
    rearm: Vec<(u32, u32)>,
    /// Multishot recvs whose final completion has not arrived (including those of freed
    /// slots): the buffers may not be unmapped while any remain.
    recvs_outstanding: usize,
    accepts_outstanding: usize,
    draining: bool,
    drain_deadline: Option<Instant>,
    last_accept_error_log: Option<Instant>,
    cqes: Vec<(u64, i32, u32)>,
    /// Completions handled since start.
    completions: u64,
}

impl Worker {
    /// Sets up the ring and buffers inside the worker's thread (the ring is then used only by
    /// this thread, which `SINGLE_ISSUER` requires).
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        settings: Settings,
        listeners: Vec<super::Listening>,
        wake: UnixStream,
    ) -> io::Result<(Worker, String)> {
        let (ring, flags) = build_ring(settings.sq_entries)?;
        let mut count = RECV_BUFFERS;
        let bufs = loop {
            match BufRing::new(&ring, count, RECV_BUFFER_SIZE, BUFFER_GROUP) {
                Ok(b) => break b,
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && count > MIN_RECV_BUFFERS => {
                    count /= 2;
                }
                Err(e) => return Err(e),
            }
        };
        let now = Instant::now();
        let detail = format!(
            "{flags}, {count} × {} KiB receive buffers",
            RECV_BUFFER_SIZE / 1024
        );
        let worker = Worker {
            ring,
            bufs: Some(bufs),
            index,
            shared,
            settings,
            listeners: listeners.into_iter().map(Some).collect(),
            wake,
            slots: Vec::new(),
            free: Vec::new(),
            generations: Vec::new(),
            open: 0,
            timers: Timers::new(),
            date: DateCache::new(SystemTime::now()),
            now,
            pool: Vec::new(),
            cache: FileCache::new(),
            backlog: VecDeque::new(),
            rearm: Vec::new(),
            recvs_outstanding: 0,
            accepts_outstanding: 0,
            draining: false,
            drain_deadline: None,
            last_accept_error_log: None,
            cqes: Vec::with_capacity(CQ_ENTRIES as usize),
            completions: 0,
        };
        Ok((worker, detail))
    }

    /// Runs until a shutdown has finished. Never panics on I/O errors: a failing connection is
    /// closed, a failing listener is retried, a failing ring stops this worker with a log line.
    pub fn run(mut self) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i as u32);
        }
        self.push(
            opcode::PollAdd::new(types::Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(
                    Token {
                        kind: Kind::Wake,
                        slot: 0,
                        generation: 0,
                    }
                    .encode(),
                ),
        );
        self.arm_watch();
        if self.shared.draining.load(Ordering::Acquire) {
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
            if self.draining && self.open == 0 {
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
        self.flush_backlog()?;
        let wait = self
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        let result = match wait {
            Some(left) => {
                let ts = types::Timespec::from(left.max(Duration::from_micros(1)));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        match result {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        self.now = Instant::now();
        self.date.update(SystemTime::now());
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        // Deploys (issue 11): apply file-system changes before answering any request in this
        // batch. fsnotify queues an event inside the changing system call, which wakes the
        // inotify poll (queues its task work) before the call returns; a request sent later
        // completes after that task work in FIFO order, so the poll's completion is in this
        // batch or an earlier one. Two exceptions: a recv that completes inline (armed this
        // turn, or retried inside a running task work), and task work left pending because
        // the kernel runs at most a few per enter. In both, task work is still pending when
        // the batch is read, which IORING_SQ_TASKRUN shows; then, if the batch holds a recv,
        // read the queue anyway. (A request received in an earlier batch was covered then.)
        let watch = token(Kind::Watch, 0, 0);
        let polled = cqes.iter().any(|&(data, ..)| data == watch);
        if polled
            || (self.ring.submission().taskrun()
                && cqes
                    .iter()
                    .any(|&(data, ..)| Token::decode(data).is_some_and(|t| t.kind == Kind::Recv)))
        {
            self.cache.apply_changes();
        }
        self.completions += cqes.len() as u64;
        for &(data, res, flags) in &cqes {
            self.complete(data, res, flags);
        }
        cqes.clear();
        self.cqes = cqes;
        for (slot, generation) in std::mem::take(&mut self.rearm) {
            if self.live(slot, generation) {
                self.arm_recv(slot);
            }
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

    // ---- submission ----------------------------------------------------------------------

    /// Queues an SQE. A full queue is submitted to make room; if the kernel cannot take more
    /// (EBUSY with completions overflowing), the entry waits in `backlog` for the next turn.
    ///
    /// Every caller keeps the memory its entry points at alive until the completion: see the
    /// SAFETY comment at each `build` site.
    fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(entry);
            return;
        }
        // SAFETY: the entry's buffers (if any) are owned by the connection or worker that
        // queued it and stay alive until its completion, as argued where it was built.
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            return;
        }
        if self.ring.submit().is_ok() {
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(entry);
    }

    fn flush_backlog(&mut self) -> io::Result<()> {
        while let Some(entry) = self.backlog.pop_front() {
            // SAFETY: queued by `push`, which the argument there covers.
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                self.ring.submit()?;
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_err() {
                    self.backlog.push_front(entry);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn arm_accept(&mut self, index: u32) {
        let Some(Some(listener)) = self.listeners.get(index as usize) else {
            return;
        };
        let entry = opcode::AcceptMulti::new(types::Fd(listener.fd.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(
                Token {
                    kind: Kind::Accept,
                    slot: index,
                    generation: 0,
                }
                .encode(),
            );
        self.accepts_outstanding += 1;
        self.push(entry);
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some(group) = self.bufs.as_ref().map(BufRing::group) else {
            return;
        };
        let Some(conn) = self.slots[slot as usize].as_mut() else {
            return;
        };
        if conn.recv != Recv::Off || conn.eof {
            return;
        }
        conn.recv = Recv::Armed;
        conn.paused = false;
        // SAFETY (memory): a multishot recv writes only into buffers of the worker's buffer
        // ring, which outlives the io_uring instance.
        let entry = opcode::RecvMulti::new(types::Fd(conn.stream.as_raw_fd()), group)
            .build()
            .user_data(token(Kind::Recv, slot, conn.generation));
        self.recvs_outstanding += 1;
        self.push(entry);
    }

    fn cancel(&mut self, target: Token) {
        let entry = opcode::AsyncCancel::new(target.encode())
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token(Kind::Ignore, target.slot, target.generation));
        self.push(entry);
    }

    // ---- completions ---------------------------------------------------------------------

    fn complete(&mut self, data: u64, res: i32, flags: u32) {
        let Some(t) = Token::decode(data) else {
            return;
        };
        match t.kind {
            Kind::Accept => self.on_accept(t.slot, res, flags),
            Kind::Recv => self.on_recv(t, res, flags),
            Kind::Send => self.on_send(t, res),
            Kind::Poll => self.on_poll(t, res),
            Kind::Wake => self.start_drain(),
            Kind::Ignore => {}
            // Applied in `turn` before the batch; re-armed if the kernel ended the poll, and
            // if it refused it, the cache stops relying on events (its logged fallback).
            Kind::Watch if res < 0 => self.cache.stop_watching(io::Error::from_raw_os_error(-res)),
            Kind::Watch if !cqueue::more(flags) => self.arm_watch(),
            Kind::Watch => {}
        }
    }

    /// Polls the file cache's inotify descriptor (multishot) so that changes on disk show up
    /// as completions (issue 11; applied in `turn`).
    fn arm_watch(&mut self) {
        let Some(fd) = self.cache.watch_fd() else {
            return;
        };
        let entry = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(token_of(Kind::Watch, 0, 0).encode());
        self.push(entry);
    }

    fn on_accept(&mut self, index: u32, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accepts_outstanding -= 1;
        }
        if res >= 0 {
            // SAFETY: a non-negative accept result is a new descriptor the kernel just
            // created for us; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.stats().accepted();
            let unix = self.listeners[index as usize]
                .as_ref()
                .is_some_and(|l| l.unix);
            self.admit(if unix {
                Stream::Unix(UnixConn::from(fd))
            } else {
                Stream::Tcp(TcpStream::from(fd))
            });
        } else if !self.draining && res != -libc::ECANCELED {
            let e = io::Error::from_raw_os_error(-res);
            if !matches!(-res, libc::ECONNABORTED | libc::EINTR) {
                self.log_accept_error(index, &e);
            }
            if !cqueue::more(flags) {
                self.timers
                    .push(self.now + ACCEPT_RETRY, Key::Accept(index));
            }
            return;
        }
        if !cqueue::more(flags) && !self.draining {
            self.arm_accept(index);
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

    fn admit(&mut self, stream: Stream) {
        if self.draining {
            return;
        }
        let active = &self.shared.active;
        if active.fetch_add(1, Ordering::AcqRel) >= self.settings.max_conns {
            active.fetch_sub(1, Ordering::AcqRel);
            super::super::reject_busy(
                stream,
                &self.date,
                self.shared.site.stats().worker(self.index),
            );
            return;
        }
        let peer = if self.shared.log.is_some() {
            stream.peer()
        } else {
            None
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.generations[slot as usize];
        self.slots[slot as usize] = Some(Connection {
            stream,
            generation,
            http: Conn::new(),
            peer,
            out: VecDeque::new(),
            queued: 0,
            recv: Recv::Off,
            paused: false,
            eof: false,
            in_flight: 0,
            gather: None,
            phase: Phase::Open,
            started: self.now,
            active_at: self.now,
            answered: 0,
            timer_at: None,
            logs: Vec::new(),
        });
        self.open += 1;
        self.stats().opened();
        self.arm_recv(slot);
        self.arm_timer(slot);
    }

    /// This worker's counters.
    fn stats(&self) -> &WorkerStats {
        self.shared.site.stats().worker(self.index)
    }

    fn live(&self, slot: u32, generation: u32) -> bool {
        matches!(self.slots.get(slot as usize), Some(Some(c)) if c.generation & GENERATION_MASK == generation & GENERATION_MASK)
    }

    fn on_recv(&mut self, t: Token, res: i32, flags: u32) {
        let last = !cqueue::more(flags);
        if last {
            self.recvs_outstanding -= 1;
        }
        let alive = self.live(t.slot, t.generation);
        // Take the bytes out and give the buffer back first, whatever becomes of them.
        if let (Some(id), Some(bufs)) = (cqueue::buffer_select(flags), &mut self.bufs) {
            let len = usize::try_from(res).unwrap_or(0);
            if alive && len > 0 {
                let conn = self.slots[t.slot as usize].as_mut().expect("live");
                receive(conn, bufs.get(id, len), self.now);
            }
            bufs.recycle(id);
        }
        if !alive {
            return;
        }
        let slot = t.slot;
        let conn = self.conn(slot);
        if last {
            conn.recv = Recv::Off;
        }
        match res {
            0 => conn.eof = true,
            n if n > 0 || -n == libc::ECANCELED => {}
            n if -n == libc::ENOBUFS => {
                self.rearm.push((slot, t.generation));
                return;
            }
            _ => {
                // ECONNRESET and friends: nothing more can be sent either.
                self.abort(slot);
                return;
            }
        }
        let conn = self.conn(slot);
        if let Phase::Lingering { discarded, .. } = conn.phase {
            let over = discarded >= LINGER_MAX_BYTES;
            if conn.eof || over || conn.recv == Recv::Off {
                self.finish(slot);
            }
            return;
        }
        if last && !conn.eof && !conn.paused && conn.phase == Phase::Open {
            // The kernel ended the multishot recv on its own (it may, e.g. on overflow).
            self.arm_recv(slot);
        }
        self.drive(slot);
    }

    fn on_send(&mut self, t: Token, res: i32) {
        if !self.live(t.slot, t.generation) {
            return;
        }
        let slot = t.slot;
        let now = self.now;
        let conn = self.slots[slot as usize].as_mut().expect("live");
        let used = std::mem::take(&mut conn.in_flight);
        if conn.phase == Phase::Closing {
            self.finish(slot);
            return;
        }
        let Ok(n) = usize::try_from(res) else {
            if -res == libc::EINTR || -res == libc::EAGAIN {
                self.drive(slot);
            } else {
                self.abort(slot);
            }
            return;
        };
        conn.active_at = now;
        let pool = &mut self.pool;
        let consumed = cursor::consume(&mut conn.out, used, n, |chunk| {
            if let Chunk::Mem(buf) = chunk {
                give_back(pool, buf.into_inner());
            }
        });
        if consumed.is_err() {
            eprintln!("ringserve: send reported more bytes than offered; closing");
            self.abort(slot);
            return;
        }
        conn.queued = conn.queued.saturating_sub(n);
        self.drive(slot);
    }

    fn on_poll(&mut self, t: Token, _res: i32) {
        if !self.live(t.slot, t.generation) {
            return;
        }
        let conn = self.conn(t.slot);
        conn.in_flight = 0;
        if conn.phase == Phase::Closing {
            self.finish(t.slot);
            return;
        }
        // Whatever the poll says (writable, error, hang-up), `sendfile` tells the truth.
        self.drive(t.slot);
    }

    fn conn(&mut self, slot: u32) -> &mut Connection {
        self.slots[slot as usize]
            .as_mut()
            .expect("slot checked live by the caller")
    }

    // ---- the protocol ----------------------------------------------------------------------

    /// Answers what is buffered, sends what is queued, and decides what the connection waits
    /// for next.
    fn drive(&mut self, slot: u32) {
        let life = if self.draining {
            Lifecycle::Draining
        } else if self.shared.announcing.load(Ordering::Acquire) {
            Lifecycle::Announcing
        } else {
            Lifecycle::Serving
        };
        loop {
            let now = self.now;
            let logging = self.shared.log.is_some();
            let stats = self.shared.site.stats().worker(self.index);
            let conn = self.slots[slot as usize].as_mut().expect("live");
            if matches!(conn.phase, Phase::Closing | Phase::Lingering { .. }) {
                return;
            }
            // Answer buffered requests while there is room; pipelined answers coalesce.
            let mut full = false;
            while conn.phase == Phase::Open {
                if conn.queued >= FLUSH_AT || conn.out.iter().any(|c| matches!(c, Chunk::File(_))) {
                    full = true;
                    break;
                }
                let cache = Some(&mut self.cache);
                match conn
                    .http
                    .poll_with(&self.shared.site, cache, &self.date, life)
                {
                    Step::Respond(response) => {
                        let last = response.after == After::Close;
                        let started = conn.started;
                        let (status, wire) = (response.status, wire_len(&response));
                        if queue(conn, response, &mut self.pool, logging, started).is_err() {
                            self.abort(slot);
                            return;
                        }
                        stats.response(status, wire);
                        conn.answered += 1;
                        // A pipelined request's header timeout runs from here.
                        conn.started = now;
                        if last {
                            conn.phase = Phase::Ending;
                        }
                    }
                    // Nothing more will arrive; a partial head is dropped, as in the threaded
                    // mode.
                    Step::NeedMore if conn.eof => conn.phase = Phase::Ending,
                    Step::NeedMore => break,
                    Step::Close => conn.phase = Phase::Ending,
                }
            }
            match self.send_some(slot) {
                Sent::InFlight => break,
                Sent::Failed => {
                    self.abort(slot);
                    return;
                }
                Sent::Drained => {
                    self.write_logs(slot);
                    let conn = self.conn(slot);
                    debug_assert_eq!(conn.queued, 0, "output drained, bytes still counted");
                    conn.queued = 0;
                    conn.active_at = now;
                    if conn.phase == Phase::Ending {
                        self.end(slot);
                        return;
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        self.regulate_input(slot);
        self.arm_timer(slot);
    }

    /// Pauses reading while a client's unanswered input piles up, resumes once it is answered.
    fn regulate_input(&mut self, slot: u32) {
        let limit = self.shared.site.options().max_head + INPUT_SLACK;
        let conn = self.conn(slot);
        if conn.phase != Phase::Open {
            return;
        }
        let buffered = conn.http.buffered();
        if buffered > limit && conn.recv == Recv::Armed {
            conn.recv = Recv::Cancelling;
            conn.paused = true;
            let target = token_of(Kind::Recv, slot, conn.generation);
            self.cancel(target);
        } else if conn.paused && buffered <= limit / 2 && conn.recv == Recv::Off {
            self.arm_recv(slot);
        } else if buffered == 0 && conn.out.is_empty() {
            conn.http.release_idle_buffer();
        }
    }

    /// Starts sending the front of the output queue. File bodies go out with `sendfile(2)`
    /// straight from the worker: on a non-blocking socket it copies nothing in user space and
    /// returns at once; when the socket buffer is full a `POLLOUT` poll on the ring waits for
    /// room (see ARCHITECTURE.md for how this compared with the alternatives).
    fn send_some(&mut self, slot: u32) -> Sent {
        let large_files = self.settings.large_files;
        let now = self.now;
        let conn = self.slots[slot as usize].as_mut().expect("live");
        if conn.in_flight > 0 {
            return Sent::InFlight;
        }
        loop {
            match conn.out.front_mut() {
                None => return Sent::Drained,
                Some(Chunk::Mem(buf)) if buf.is_empty() => {
                    if let Some(Chunk::Mem(buf)) = conn.out.pop_front() {
                        give_back(&mut self.pool, buf.into_inner());
                    }
                }
                Some(Chunk::Shared(s)) if s.next == s.end => {
                    conn.out.pop_front();
                }
                Some(Chunk::Mem(_) | Chunk::Shared(_)) => {
                    // In-memory chunks up to the first file leave together.
                    let count = conn
                        .out
                        .iter()
                        .take(GATHER_MAX)
                        .take_while(|c| !matches!(c, Chunk::File(_)))
                        .count();
                    let more_follows = conn.out.len() > count;
                    let flags = libc::MSG_NOSIGNAL | if more_follows { libc::MSG_MORE } else { 0 };
                    let fd = types::Fd(conn.stream.as_raw_fd());
                    let entry = if count == 1 {
                        let pending = conn.out[0].pending();
                        // SAFETY (memory): `pending` points into the front chunk of this
                        // connection's output queue (a pooled buffer or a cached body held by
                        // an `Rc`); chunks counted in `in_flight` are neither changed nor
                        // dropped until the completion, and a connection with an operation in
                        // flight is not freed (see `finish`), so the bytes outlive the send.
                        opcode::Send::new(
                            fd,
                            pending.as_ptr(),
                            u32::try_from(pending.len()).unwrap_or(u32::MAX),
                        )
                        .flags(flags)
                        .build()
                    } else {
                        let gather = conn.gather.get_or_insert_with(|| {
                            Box::new(Gather {
                                // SAFETY: msghdr is plain old data; all zeroes is a valid
                                // (empty) value.
                                msg: unsafe { std::mem::zeroed() },
                                iov: [libc::iovec {
                                    iov_base: std::ptr::null_mut(),
                                    iov_len: 0,
                                }; GATHER_MAX],
                            })
                        });
                        for (iov, chunk) in gather.iov.iter_mut().zip(conn.out.iter()) {
                            let bytes = chunk.pending();
                            *iov = libc::iovec {
                                iov_base: bytes.as_ptr().cast_mut().cast(),
                                iov_len: bytes.len(),
                            };
                        }
                        gather.msg.msg_iov = gather.iov.as_mut_ptr();
                        gather.msg.msg_iovlen = count;
                        // SAFETY (memory): the msghdr and iovecs live in the connection's
                        // boxed `Gather`, which is not touched again before the completion
                        // (the next gathered send needs `in_flight == 0`); the iovecs point
                        // into the first `count` chunks of the output queue, which the
                        // `in_flight` count protects as for a single send above.
                        opcode::SendMsg::new(fd, &raw const gather.msg)
                            .flags(flags as u32)
                            .build()
                    };
                    let data = token(Kind::Send, slot, conn.generation);
                    conn.in_flight = count;
                    self.push(entry.user_data(data));
                    return Sent::InFlight;
                }
                Some(Chunk::File(f)) if large_files == LargeFiles::ReadSend => {
                    // The bytes become an in-memory chunk in front of the rest of the file.
                    let Ok(bytes) = read_file_chunk(f) else {
                        return Sent::Failed;
                    };
                    if f.offset == f.end {
                        conn.out.pop_front();
                    }
                    conn.queued += bytes.len();
                    conn.out.push_front(Chunk::Mem(SendBuf::new(bytes)));
                }
                Some(Chunk::File(f)) => match send_file_some(&conn.stream, f) {
                    Ok(true) => {
                        conn.out.pop_front();
                        conn.active_at = now;
                    }
                    Ok(false) => {
                        conn.active_at = now;
                        let entry = opcode::PollAdd::new(
                            types::Fd(conn.stream.as_raw_fd()),
                            libc::POLLOUT as u32,
                        )
                        .build()
                        .user_data(token(
                            Kind::Poll,
                            slot,
                            conn.generation,
                        ));
                        conn.in_flight = 1;
                        self.push(entry);
                        return Sent::InFlight;
                    }
                    Err(_) => return Sent::Failed,
                },
            }
        }
    }

    fn write_logs(&mut self, slot: u32) {
        let Some(sink) = &self.shared.log else {
            return;
        };
        let conn = self.slots[slot as usize].as_mut().expect("live");
        // The peer address is looked up only when logging is on (at accept).
        let peer = conn
            .peer
            .unwrap_or(Peer::Ip(std::net::IpAddr::from([0, 0, 0, 0])));
        sink.write_logged(peer, &mut conn.logs, self.date.now(), self.now);
    }

    /// The last response is out: linger if the client may still be sending, else close.
    fn end(&mut self, slot: u32) {
        let now = self.now;
        let conn = self.conn(slot);
        if conn.http.closing() == Closing::Linger && conn.recv == Recv::Armed && !conn.eof {
            conn.phase = Phase::Lingering {
                until: now + LINGER_FOR,
                discarded: 0,
            };
            // A plain system call, not a ring operation: io_uring runs `shutdown` on a
            // worker thread that looks the descriptor up by number when it gets to it, by
            // which time the connection may be closed and its number reused by another
            // worker's new connection (measured: a later client got EPIPE). Lingering is
            // rare; one synchronous call is cheap.
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            self.arm_timer(slot);
        } else {
            self.finish(slot);
        }
    }

    /// Closes without sending what is queued (errors, stalls, the end of the grace period).
    fn abort(&mut self, slot: u32) {
        let conn = self.conn(slot);
        conn.logs.clear();
        self.finish(slot);
    }

    /// Closes the connection: cancels its operations, and once none is in flight closes the
    /// socket and frees the slot. A closed connection really closes: the recv holds a
    /// reference to the socket, so it is cancelled before the descriptor is closed.
    fn finish(&mut self, slot: u32) {
        let conn = self.conn(slot);
        conn.phase = Phase::Closing;
        let generation = conn.generation;
        let recv_armed = conn.recv == Recv::Armed;
        let writing = conn.in_flight > 0;
        if recv_armed {
            conn.recv = Recv::Cancelling;
            self.cancel(token_of(Kind::Recv, slot, generation));
        }
        if writing {
            // Cancelling a send or poll makes its completion arrive soon; `on_send` or
            // `on_poll` then calls `finish` again.
            let conn = self.conn(slot);
            let kind = if matches!(conn.out.front(), Some(Chunk::File(_))) {
                Kind::Poll
            } else {
                Kind::Send
            };
            self.cancel(token_of(kind, slot, generation));
            return;
        }
        let conn = self.slots[slot as usize].take().expect("live");
        let fd: RawFd = conn.stream.into_raw_fd();
        // The descriptor is closed by the ring, after the cancel queued above.
        let entry = opcode::Close::new(types::Fd(fd))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token(Kind::Ignore, slot, generation));
        self.push(entry);
        for chunk in conn.out {
            if let Chunk::Mem(buf) = chunk {
                give_back(&mut self.pool, buf.into_inner());
            }
        }
        self.generations[slot as usize] = generation.wrapping_add(1) & GENERATION_MASK;
        self.free.push(slot);
        self.open -= 1;
        self.compact_timers();
        self.stats().closed();
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }

    // ---- deadlines -------------------------------------------------------------------------

    /// The deadline that applies to a connection now.
    fn deadline_of(&self, conn: &Connection) -> Instant {
        let s = &self.settings;
        match conn.phase {
            Phase::Lingering { until, .. } => until,
            _ if !conn.out.is_empty() => conn.active_at + s.idle_timeout,
            _ if conn.http.has_partial_request() || conn.answered == 0 => {
                conn.started + s.header_timeout
            }
            _ => conn.active_at + s.idle_timeout,
        }
    }

    fn arm_timer(&mut self, slot: u32) {
        let Some(conn) = self.slots[slot as usize].as_ref() else {
            return;
        };
        let at = self.deadline_of(conn);
        if conn.timer_at.is_none_or(|t| at < t) {
            let key = Key::Conn {
                slot,
                generation: conn.generation,
            };
            self.timers.push(at, key);
            self.conn(slot).timer_at = Some(at);
        }
    }

    /// Entries of closed connections stay in the heap until they come due; under heavy
    /// churn (30,000 connections a second, 10 s header timeout) that is hundreds of thousands.
    /// When they outnumber the open connections by far, drop them: linear work, amortised
    /// over as many closes, and the heap stays proportional to the connections open.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 4 * self.open + 4096 {
            return;
        }
        let slots = &self.slots;
        self.timers.retain(|at, key| match key {
            Key::Accept(_) => true,
            Key::Conn { slot, generation } => slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| {
                    c.generation & GENERATION_MASK == generation & GENERATION_MASK
                        && c.timer_at == Some(at)
                }),
        });
    }

    fn expire(&mut self) {
        let now = self.now;
        if self.drain_deadline.is_some_and(|d| d <= now) {
            self.drain_deadline = None;
            self.abort_all();
        }
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                Key::Accept(index) => {
                    if !self.draining {
                        self.arm_accept(index);
                    }
                }
                Key::Conn { slot, generation } => {
                    if !self.live(slot, generation) {
                        continue;
                    }
                    let conn = self.slots[slot as usize].as_ref().expect("live");
                    if conn.timer_at != Some(at) {
                        continue; // superseded by an earlier entry
                    }
                    let deadline = self.deadline_of(conn);
                    self.conn(slot).timer_at = None;
                    if deadline > now {
                        self.arm_timer(slot);
                    } else {
                        self.timed_out(slot);
                    }
                }
            }
        }
    }

    fn timed_out(&mut self, slot: u32) {
        let conn = self.slots[slot as usize].as_mut().expect("live");
        match conn.phase {
            Phase::Lingering { .. } => self.finish(slot),
            Phase::Closing => {}
            _ if !conn.out.is_empty() => self.abort(slot), // the client stopped reading
            _ => {
                let stats = self.shared.site.stats().worker(self.index);
                stats.timed_out();
                let response = conn.http.timed_out(&self.shared.site, &self.date);
                match response {
                    Some(response) => {
                        stats.response(response.status, wire_len(&response));
                        let ok = queue(
                            conn,
                            response,
                            &mut self.pool,
                            self.shared.log.is_some(),
                            self.now,
                        );
                        conn.phase = Phase::Ending;
                        if ok.is_err() {
                            self.abort(slot);
                        } else {
                            self.drive(slot);
                        }
                    }
                    None => self.finish(slot),
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
        self.drain_deadline = Some(Instant::now() + self.settings.grace);
        for index in 0..self.listeners.len() as u32 {
            self.cancel(Token {
                kind: Kind::Accept,
                slot: index,
                generation: 0,
            });
        }
        // The accepts hold their own references; the listening sockets close when the
        // cancelled accepts complete.
        for l in &mut self.listeners {
            *l = None;
        }
        for slot in 0..self.slots.len() as u32 {
            if let Some(conn) = &self.slots[slot as usize]
                && conn.phase == Phase::Open
                && conn.in_flight == 0
            {
                self.drive(slot);
            }
        }
    }

    fn abort_all(&mut self) {
        for slot in 0..self.slots.len() as u32 {
            if let Some(conn) = &self.slots[slot as usize]
                && conn.phase != Phase::Closing
            {
                self.abort(slot);
            }
        }
    }

    /// Waits (bounded) until the kernel has finished every operation that may write into
    /// the receive buffers or holds a listening socket; if that does not happen, leaks them instead of unmapping memory
    /// the kernel might still write.
    fn wait_for_outstanding(&mut self) {
        let until = Instant::now() + DRAIN_OPS_FOR;
        // The accepts hold the listening sockets open until their cancellation completes:
        // wait for it, so that a stopped server refuses connections at once.
        while self.recvs_outstanding > 0 || self.accepts_outstanding > 0 || self.open > 0 {
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

enum Sent {
    InFlight,
    Drained,
    Failed,
}

/// Head and body bytes a response puts on the wire (for the counters).
fn wire_len(response: &Response) -> u64 {
    response.head.len() as u64 + response.body_len()
}

fn token(kind: Kind, slot: u32, generation: u32) -> u64 {
    token_of(kind, slot, generation).encode()
}

fn token_of(kind: Kind, slot: u32, generation: u32) -> Token {
    Token {
        kind,
        slot,
        generation: generation & GENERATION_MASK,
    }
}

fn receive(conn: &mut Connection, bytes: &[u8], now: Instant) {
    if let Phase::Lingering { discarded, until } = conn.phase {
        conn.phase = Phase::Lingering {
            until,
            discarded: discarded + bytes.len(),
        };
        return;
    }
    if conn.phase != Phase::Open {
        return;
    }
    if !conn.http.has_partial_request() && conn.out.is_empty() {
        // The first byte of a new request starts its header timeout.
        conn.started = now;
    }
    conn.active_at = now;
    conn.http.receive(bytes);
}

/// Appends a response to the connection's output queue.
fn queue(
    conn: &mut Connection,
    response: Response,
    pool: &mut Vec<Vec<u8>>,
    logging: bool,
    started: Instant,
) -> io::Result<()> {
    let body_bytes = response.body_len();
    let mut mem = MemTail { conn, pool };
    mem.extend(&response.head);
    match response.body {
        Body::Empty => {}
        Body::Static(bytes) => mem.extend(bytes),
        Body::Bytes(bytes) => mem.extend(&bytes),
        Body::Shared { bytes, range } if range.end - range.start < SHARE_FROM => {
            mem.extend(clamped_slice(&bytes, &range));
        }
        Body::Shared { bytes, range } => mem.shared(bytes, range),
        Body::File { file, range } if range.end - range.start <= COPY_BELOW => {
            mem.read_from(&file, range)?;
        }
        Body::File { file, range } => mem.file(file, range),
        Body::Multipart {
            file,
            parts,
            trailer,
        } => {
            for part in parts {
                mem.extend(&part.header);
                mem.file(Rc::clone(&file), part.range);
            }
            mem.extend(&trailer);
        }
    }
    if logging {
        conn.logs.push(accesslog::Logged {
            fields: response.log,
            status: response.status,
            body_bytes,
            started,
        });
    }
    Ok(())
}

/// Appending to the last in-memory chunk of a connection's output, never to one in flight.
struct MemTail<'a> {
    conn: &'a mut Connection,
    pool: &'a mut Vec<Vec<u8>>,
}

impl MemTail<'_> {
    fn tail(&mut self) -> &mut SendBuf {
        let conn = &mut *self.conn;
        let writable = match conn.out.back() {
            // Never a chunk an in-flight send is reading.
            Some(Chunk::Mem(_)) => conn.out.len() > conn.in_flight,
            _ => false,
        };
        if !writable {
            let buf = self.pool.pop().unwrap_or_default();
            conn.out.push_back(Chunk::Mem(SendBuf::new(buf)));
        }
        match conn.out.back_mut() {
            Some(Chunk::Mem(buf)) => buf,
            _ => unreachable!("a memory chunk was just ensured"),
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.tail().extend(bytes);
        self.conn.queued += bytes.len();
    }

    /// Reads `range` of `file` into the output (small bodies). A file that shrank since its
    /// length was promised is an error: the connection must close rather than send less.
    fn read_from(&mut self, file: &File, range: std::ops::Range<u64>) -> io::Result<()> {
        crate::server::append_file_range(file, range.clone(), self.tail().vec_mut())?;
        self.conn.queued += (range.end - range.start) as usize;
        Ok(())
    }

    fn shared(&mut self, bytes: Rc<[u8]>, range: std::ops::Range<u64>) {
        let end = usize::try_from(range.end)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let next = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
        self.conn.queued += end - next;
        self.conn
            .out
            .push_back(Chunk::Shared(SharedSend { bytes, next, end }));
    }

    fn file(&mut self, file: Rc<File>, range: std::ops::Range<u64>) {
        self.conn.out.push_back(Chunk::File(FileSend {
            file,
            offset: range.start,
            end: range.end,
        }));
    }
}

/// `sendfile(2)` until the range is sent (`true`) or the socket is full (`false`: wait for
/// `POLLOUT`).
fn send_file_some(stream: &Stream, f: &mut FileSend) -> io::Result<bool> {
    while f.offset < f.end {
        let left = f.end - f.offset;
        match net::sendfile_some(stream.as_fd(), f.file.as_fd(), &mut f.offset, left) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The alternative measured against `sendfile`: read the next 256 KiB of the file into memory
/// and send it through the ring like any other bytes.
fn read_file_chunk(f: &mut FileSend) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 256 * 1024;
    let len = (f.end - f.offset).min(CHUNK) as usize;
    let mut buf = vec![0u8; len];
    f.file.read_exact_at(&mut buf, f.offset)?;
    f.offset += len as u64;
    Ok(buf)
}

fn give_back(pool: &mut Vec<Vec<u8>>, mut buf: Vec<u8>) {
    if pool.len() < POOL_MAX && buf.capacity() <= POOL_BUFFER_MAX {
        buf.clear();
        pool.push(buf);
    }
}

/// A ring with the cheapest flags this kernel accepts: `SINGLE_ISSUER | DEFER_TASKRUN`
/// (completions are processed only when this thread enters the kernel, with no interrupts
/// of the running loop), else `SINGLE_ISSUER`, else none.
fn build_ring(sq_entries: u32) -> io::Result<(IoUring, &'static str)> {
    type Configure = fn(&mut io_uring::Builder);
    let attempts: [(&str, Configure); 3] = [
        // TASKRUN_FLAG (5.19, older than DEFER_TASKRUN): `turn` reads it (issue 11).
        ("SINGLE_ISSUER|DEFER_TASKRUN", |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }),
        ("SINGLE_ISSUER", |b| {
            b.setup_single_issuer();
        }),
        ("no setup flags", |_| {}),
    ];
    let mut last = None;
    for (name, configure) in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(CQ_ENTRIES).setup_submit_all();
        configure(&mut b);
        match b.build(sq_entries) {
            Ok(ring) => return Ok((ring, name)),
            // EINVAL: a flag this kernel does not know; anything else will not get better.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no io_uring setup worked")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Root;
    use crate::http::{Site, SiteOptions};
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[test]
    fn a_full_submission_queue_is_flushed_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::new(Root::open(dir.path()).unwrap(), SiteOptions::default());
        let shared = Arc::new(Shared {
            site,
            log: None,
            announcing: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            unix: Vec::new(),
        });
        let settings = Settings {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_conns: 10,
            grace: Duration::from_secs(1),
            drain_delay: Duration::ZERO,
            large_files: LargeFiles::Sendfile,
            sq_entries: 4,
        };
        let (_waker, wake) = UnixStream::pair().unwrap();
        let (mut worker, _) = match Worker::new(0, shared, settings, Vec::new(), wake) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("skipped: io_uring unavailable here: {e}");
                return;
            }
        };
        // 100 entries into a 4-entry queue between two turns; each cancel finds nothing and
        // completes with ENOENT, so every entry shows up as one completion.
        const ENTRIES: u64 = 100;
        for i in 0..ENTRIES {
            worker.push(
                opcode::AsyncCancel::new(u64::MAX - i)
                    .build()
                    .user_data(token(Kind::Ignore, 0, 0)),
            );
        }
        for _ in 0..200 {
            if worker.completions >= ENTRIES {
                break;
            }
            // Bound each wait.
            worker.drain_deadline = Some(Instant::now() + Duration::from_millis(50));
            worker.turn().unwrap();
        }
        assert_eq!(worker.completions, ENTRIES);
        assert!(worker.backlog.is_empty());
    }

    #[test]
    fn tokens_round_trip() {
        for kind in [
            Kind::Accept,
            Kind::Recv,
            Kind::Send,
            Kind::Poll,
            Kind::Wake,
            Kind::Ignore,
            Kind::Watch,
        ] {
            for (slot, generation) in [(0, 0), (u32::MAX, GENERATION_MASK), (7, 12345)] {
                let t = Token {
                    kind,
                    slot,
                    generation,
                };
                assert_eq!(Token::decode(t.encode()), Some(t));
            }
        }
        assert_eq!(Token::decode(0), None);
    }
}
