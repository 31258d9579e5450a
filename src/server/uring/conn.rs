//! One connection as the io_uring worker holds it: the socket, the sans-I/O [`Conn`], the
//! output queue, and where the connection is in its life as one [`State`]. The event handlers
//! here answer, queue and send, and tell the worker with a [`Flow`] whether the connection
//! stays; closing (cancel, close, free the slot) is the worker's.

use super::output::LargeFiles;
use super::output::{Next, Output, Pool};
use super::ring::Ring;
use super::shared::Shared;
use super::token::{GENERATION_MASK, Kind, Token};
use crate::fs::cache::FileCache;
use crate::http::response::After;
use crate::http::{Closing, Conn, DateCache, Lifecycle, Peer, Step, Timeouts};
use crate::server::accesslog;
use crate::server::listen::Stream;
use crate::server::lower::wire_len;
use crate::server::policy::{FLUSH_AT, LINGER_FOR, LINGER_MAX_BYTES};
use crate::stats::WorkerStats;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Buffered, unanswered input beyond the head limit plus this pauses the recv.
const INPUT_SLACK: usize = 64 * 1024;

/// The connection's multishot receive, while the connection reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Armed,
    /// Paused while the client's unanswered input piles up; `cancelling` until the cancelled
    /// receive's last completion has arrived (it may be re-armed only after).
    Paused {
        cancelling: bool,
    },
    /// The kernel ended the receive on its own (no buffer free, overflow): re-arm.
    Stopped,
    /// The client closed its side.
    Eof,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Reading and answering.
    Open(Input),
    /// The last response is queued; close (or linger) once it is sent.
    Ending(Input),
    /// Write side shut; the receive discards input until EOF, a byte cap or the deadline.
    Lingering { until: Instant, discarded: usize },
    /// Waiting for operations in flight to complete before the socket closes.
    Closing,
}

/// What the worker does with a connection after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Flow {
    Keep,
    /// Close it: cancel what is in flight, then close the socket and free the slot.
    Close,
}

/// What the handlers borrow from the worker.
pub struct Io<'a> {
    pub ring: &'a mut Ring,
    pub pool: &'a mut Pool,
    pub cache: &'a mut FileCache,
    pub date: &'a DateCache,
    pub shared: &'a Shared,
    pub stats: &'a WorkerStats,
    pub now: Instant,
    pub life: Lifecycle,
    pub large_files: LargeFiles,
    /// The provided-buffer group receives use (`None` once the buffers are gone).
    pub group: Option<u16>,
    /// Multishot receives whose last completion has not arrived, worker-wide.
    pub recvs_outstanding: &'a mut usize,
}

pub struct Connection {
    pub stream: Stream,
    pub slot: u32,
    pub generation: u32,
    pub http: Conn,
    pub peer: Option<Peer>,
    pub out: Output,
    pub state: State,
    /// The earliest deadline this connection has in the worker's timer heap.
    pub timer_at: Option<Instant>,
    /// Since when the connection has been reclaimable (see [`Connection::reclaimable`]), as
    /// queued in the worker's idle queue; `None` while it is busy.
    pub idle_since: Option<Instant>,
    logs: Vec<accesslog::Logged>,
}

impl Connection {
    pub fn new(
        stream: Stream,
        slot: u32,
        generation: u32,
        peer: Option<Peer>,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            slot,
            generation,
            http: Conn::new(now),
            peer,
            out: Output::default(),
            state: State::Open(Input::Stopped),
            timer_at: None,
            idle_since: None,
            logs: Vec::new(),
        }
    }

    pub fn token(&self, kind: Kind) -> Token {
        Token::new(kind, self.slot, self.generation)
    }

    /// The connection's receive, if it has one in its current state.
    fn input(&self) -> Option<Input> {
        match self.state {
            State::Open(i) | State::Ending(i) => Some(i),
            State::Lingering { .. } | State::Closing => None,
        }
    }

    fn set_input(&mut self, input: Input) {
        match &mut self.state {
            State::Open(i) | State::Ending(i) => *i = input,
            State::Lingering { .. } | State::Closing => {}
        }
    }

    /// The deadline that applies now: the core's rule, or the end of a lingering close.
    pub fn deadline(&self, timeouts: Timeouts) -> Instant {
        match self.state {
            State::Lingering { until, .. } => until,
            _ => self.http.deadline(timeouts, !self.out.is_empty()).at(),
        }
    }

    /// Arms the multishot receive unless one is armed, being cancelled, or the client is done.
    pub fn arm_recv(&mut self, io: &mut Io<'_>) {
        let Some(group) = io.group else { return };
        if !matches!(
            self.input(),
            Some(Input::Stopped | Input::Paused { cancelling: false })
        ) {
            return;
        }
        self.set_input(Input::Armed);
        *io.recvs_outstanding += 1;
        let token = self.token(Kind::Recv);
        // SAFETY: the receive writes only into the worker's provided-buffer ring, which the
        // worker drops after its ring, and leaks instead if receives are still outstanding
        // when it stops (`Worker::wait_for_outstanding`).
        unsafe { io.ring.recv_multi(self.stream.as_raw_fd(), group, token) };
    }

    /// May be closed to make room at the connection cap: open, owing nothing and owed
    /// nothing — idle between requests, or connected without sending a byte. A client in the
    /// middle of a head is not (it keeps its slot until the header timeout).
    pub fn reclaimable(&self) -> bool {
        matches!(self.state, State::Open(_))
            && self.out.is_empty()
            && !self.http.has_partial_request()
    }

    /// Bytes from the receive.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        match &mut self.state {
            State::Lingering { discarded, .. } => *discarded += bytes.len(),
            State::Open(_) => {
                self.idle_since = None;
                self.http.receive(bytes, now);
            }
            State::Ending(_) | State::Closing => {}
        }
    }

    /// The receive's completion after its bytes: `last` when it posts no more, `eof` when the
    /// client closed.
    fn recv_ended(&mut self, last: bool, eof: bool) {
        if eof {
            self.set_input(Input::Eof);
        } else if last {
            match self.input() {
                Some(Input::Paused { .. }) => self.set_input(Input::Paused { cancelling: false }),
                Some(Input::Armed) => self.set_input(Input::Stopped),
                _ => {}
            }
        }
    }

    /// A receive event: lingering ends once the client closed, sent too much, or the receive
    /// ended; an open connection re-arms a receive the kernel ended, then answers.
    pub fn on_recv(&mut self, last: bool, eof: bool, io: &mut Io<'_>) -> Flow {
        self.recv_ended(last, eof);
        if let State::Lingering { discarded, .. } = self.state {
            let done = eof || last || discarded >= LINGER_MAX_BYTES;
            return if done { Flow::Close } else { Flow::Keep };
        }
        if self.state == State::Open(Input::Stopped) {
            self.arm_recv(io);
        }
        self.drive(io)
    }

    /// Answers what is buffered, sends what is queued, and decides what the connection waits
    /// for next.
    pub fn drive(&mut self, io: &mut Io<'_>) -> Flow {
        loop {
            if matches!(self.state, State::Closing | State::Lingering { .. }) {
                return Flow::Keep;
            }
            // Answer buffered requests while there is room; pipelined answers coalesce.
            let mut full = false;
            while let State::Open(input) = self.state {
                if self.out.queued() >= FLUSH_AT || self.out.has_file() {
                    full = true;
                    break;
                }
                let began = self.http.request_began();
                match self
                    .http
                    .poll_with(&io.shared.site, Some(&mut *io.cache), io.date, io.life)
                {
                    Step::Respond(mut response) => {
                        let last = response.after == After::Close;
                        let (status, wire) = (response.status, wire_len(&response));
                        let logged = io.shared.log.is_some().then(|| accesslog::Logged {
                            fields: response.log.take(),
                            status,
                            body_bytes: response.body_len(),
                            started: began,
                        });
                        if self.out.append(response, io.pool).is_err() {
                            return self.abort();
                        }
                        self.logs.extend(logged);
                        io.stats.response(status, wire);
                        if last {
                            self.state = State::Ending(input);
                        }
                    }
                    // Nothing more will arrive; a partial head is dropped, as in the threaded
                    // mode.
                    Step::NeedMore if input == Input::Eof => self.state = State::Ending(input),
                    Step::NeedMore => break,
                    Step::Close => self.state = State::Ending(input),
                }
            }
            if self.out.in_flight() {
                // Its completion drives the connection on.
                break;
            }
            let token_send = self.token(Kind::Send);
            let token_poll = self.token(Kind::Poll);
            let fd = self.stream.as_raw_fd();
            let mut moved = false;
            let next = self
                .out
                .next(&self.stream, io.large_files, io.pool, &mut moved);
            if moved {
                self.http.progressed(io.now);
            }
            match next {
                Err(_) => return self.abort(),
                Ok(Next::Send { bytes, flags }) => {
                    // SAFETY: `bytes` is the pending part of the front chunk of this
                    // connection's output (a pooled buffer, or a cached body held by an
                    // `Rc`); chunks in flight are neither changed nor dropped before the
                    // completion (`Output::sent`), and a connection with an operation in
                    // flight is never freed (`Worker::finish` cancels and waits).
                    unsafe { io.ring.send(fd, bytes, flags, token_send) };
                    break;
                }
                Ok(Next::Gather { msg, flags }) => {
                    // SAFETY: `msg` and its iovecs live in the output's boxed `Gather`, which
                    // is not touched before the completion (the next send needs nothing in
                    // flight); the iovecs point into the chunks in flight, kept alive as for
                    // a single send above.
                    unsafe { io.ring.send_msg(fd, msg, flags, token_send) };
                    break;
                }
                Ok(Next::WaitWritable) => {
                    io.ring.poll(fd, libc::POLLOUT, token_poll);
                    break;
                }
                Ok(Next::Drained) => {
                    self.write_logs(io);
                    self.out.drained();
                    self.http.progressed(io.now);
                    if let State::Ending(input) = self.state {
                        return self.end(input, io.now);
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        self.regulate_input(io);
        Flow::Keep
    }

    /// A send's completion.
    pub fn on_send(&mut self, res: i32, io: &mut Io<'_>) -> Flow {
        if self.state == State::Closing {
            self.out.writable();
            return Flow::Close;
        }
        let Ok(n) = usize::try_from(res) else {
            self.out.writable();
            if -res == libc::EINTR || -res == libc::EAGAIN {
                return self.drive(io);
            }
            return self.abort();
        };
        self.http.progressed(io.now);
        if self.out.sent(n, io.pool).is_err() {
            eprintln!("ringserve: send reported more bytes than offered; closing");
            return self.abort();
        }
        self.drive(io)
    }

    /// The `POLLOUT` poll of a file send completed: whatever it says (writable, error,
    /// hang-up), `sendfile` tells the truth.
    pub fn on_writable(&mut self, io: &mut Io<'_>) -> Flow {
        self.out.writable();
        if self.state == State::Closing {
            return Flow::Close;
        }
        self.drive(io)
    }

    /// The deadline passed.
    pub fn on_timeout(&mut self, io: &mut Io<'_>) -> Flow {
        match self.state {
            State::Lingering { .. } => Flow::Close,
            State::Closing => Flow::Keep,
            // The client stopped reading.
            _ if !self.out.is_empty() => self.abort(),
            State::Open(input) | State::Ending(input) => {
                io.stats.timed_out();
                let began = self.http.request_began();
                let Some(mut response) = self.http.timed_out(&io.shared.site, io.date) else {
                    return Flow::Close;
                };
                io.stats.response(response.status, wire_len(&response));
                if io.shared.log.is_some() {
                    self.logs.push(accesslog::Logged {
                        fields: response.log.take(),
                        status: response.status,
                        body_bytes: response.body_len(),
                        started: began,
                    });
                }
                self.state = State::Ending(input);
                if self.out.append(response, io.pool).is_err() {
                    return self.abort();
                }
                self.drive(io)
            }
        }
    }

    /// Pauses reading while a client's unanswered input piles up, resumes once it is answered.
    fn regulate_input(&mut self, io: &mut Io<'_>) {
        let State::Open(input) = self.state else {
            return;
        };
        let limit = io.shared.site.options().max_head + INPUT_SLACK;
        let buffered = self.http.buffered();
        match input {
            Input::Armed if buffered > limit => {
                self.state = State::Open(Input::Paused { cancelling: true });
                io.ring.cancel(self.token(Kind::Recv));
            }
            Input::Paused { cancelling: false } if buffered <= limit / 2 => self.arm_recv(io),
            _ if buffered == 0 && self.out.is_empty() => self.http.release_idle_buffer(),
            _ => {}
        }
    }

    /// The last response is out: linger if the client may still be sending, else close.
    fn end(&mut self, input: Input, now: Instant) -> Flow {
        if self.http.closing() != Closing::Linger || input != Input::Armed {
            return Flow::Close;
        }
        self.state = State::Lingering {
            until: now + LINGER_FOR,
            discarded: 0,
        };
        // A plain system call, not a ring operation: io_uring runs `shutdown` on a worker
        // thread that looks the descriptor up by number when it gets to it, by which time the
        // connection may be closed and its number reused by another worker's new connection
        // (measured: a later client got EPIPE). Lingering is rare; one call is cheap.
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        Flow::Keep
    }

    /// Closes without sending what is queued (errors, stalls, the end of the grace period).
    pub fn abort(&mut self) -> Flow {
        self.logs.clear();
        Flow::Close
    }

    fn write_logs(&mut self, io: &Io<'_>) {
        let Some(sink) = &io.shared.log else { return };
        // The peer address is looked up only when logging is on (at accept).
        let peer = self
            .peer
            .unwrap_or(Peer::Ip(std::net::IpAddr::from([0, 0, 0, 0])));
        sink.write_logged(peer, &mut self.logs, io.date.now(), io.now);
    }

    /// Starts closing: returns the operations to cancel (the receive, if armed; the output
    /// operation, if one is in flight). The connection may be freed once nothing is in flight.
    pub fn start_closing(&mut self) -> (Option<Token>, Option<Token>) {
        let recv_armed =
            matches!(self.state, State::Lingering { .. }) || self.input() == Some(Input::Armed);
        self.state = State::Closing;
        let recv = recv_armed.then(|| self.token(Kind::Recv));
        let output = self.out.in_flight().then(|| {
            self.token(if self.out.front_is_file() {
                Kind::Poll
            } else {
                Kind::Send
            })
        });
        (recv, output)
    }
}

/// The worker's connections by slot. A slot's generation changes each time it is freed, so a
/// late completion for a closed connection is recognised and ignored.
#[derive(Default)]
pub struct Slots {
    slots: Vec<Option<Connection>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    open: usize,
}

impl Slots {
    /// Puts a new connection in a free slot.
    pub fn insert(&mut self, make: impl FnOnce(u32, u32) -> Connection) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let i = slot as usize;
        self.slots[i] = Some(make(slot, self.generations[i]));
        self.open += 1;
        slot
    }

    /// The connection a completion's token names, if it is still the one in the slot.
    pub fn live(&mut self, slot: u32, generation: u32) -> Option<&mut Connection> {
        self.slots
            .get_mut(slot as usize)?
            .as_mut()
            .filter(|c| c.generation == generation & GENERATION_MASK)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Connection> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Frees a slot; its generation moves on.
    pub fn remove(&mut self, slot: u32) -> Option<Connection> {
        let conn = self.slots.get_mut(slot as usize)?.take()?;
        let i = slot as usize;
        self.generations[i] = self.generations[i].wrapping_add(1) & GENERATION_MASK;
        self.free.push(slot);
        self.open -= 1;
        Some(conn)
    }

    pub fn open(&self) -> usize {
        self.open
    }

    /// Every slot number, occupied or not.
    pub fn all(&self) -> std::ops::Range<u32> {
        0..self.slots.len() as u32
    }
}
