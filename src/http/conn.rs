//! One connection's protocol state, without I/O: bytes in ([`Conn::receive`]), steps out
//! ([`Conn::poll`]). The drivers own the sockets and carry out the steps; they never look
//! inside a request.
//!
//! Pipelining falls out of the design: `poll` answers one complete request per call, in
//! order, and asks for more bytes only when no complete head is buffered.

use super::date::DateCache;
use super::lifecycle::Lifecycle;
use super::request::{self, Parsed, Request, Version};
use super::response::{LogFields, Response};
use super::serve::{self, Logging, Site};
use super::status::Status;
use crate::fs::cache::FileCache;
use std::time::{Duration, Instant};

/// What the driver must do next for a connection.
#[derive(Debug)]
pub enum Step {
    /// Send this response (and close afterwards if `response.after` says so).
    Respond(Response),
    /// No complete request is buffered: read more bytes.
    NeedMore,
    /// Nothing more will be answered: close the connection.
    Close,
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading and answering requests.
    Open,
    /// A response that ends the connection was handed out; nothing more is parsed.
    Done(Closing),
}

/// How a finished connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Nothing unread is expected from the client: close at once.
    Immediate,
    /// The client may still be sending (a request body we did not read, pipelined bytes
    /// after the last answered request, a head we refused): shut the write side and discard
    /// input for a while before closing, or the kernel answers the unread bytes with a reset
    /// that can destroy the response before the client reads it.
    Linger,
}

/// Request bytes kept for the access log's request line when the head could not be parsed.
const MAX_LOGGED_LINE: usize = 2048;

/// A read buffer larger than this is freed when it empties, so a connection that once
/// received a burst does not keep the memory while idle.
const SHRINK_ABOVE: usize = 16 * 1024;

/// The time limits every driver enforces, the same in both I/O modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To receive a whole request head, from the accept (first request) or from the first
    /// byte of the request (later ones; a pipelined one from the previous response).
    pub header: Duration,
    /// Between requests with nothing owed either way, and for a client that stops reading.
    pub idle: Duration,
}

/// The deadline a connection is under now (see [`Conn::deadline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// A request head is due: a timeout now answers 408 if one had begun.
    Header(Instant),
    /// Between requests: a timeout closes silently.
    Idle(Instant),
    /// Output waits for the client to read it: a timeout cuts the connection.
    Write(Instant),
}

impl Deadline {
    pub fn at(self) -> Instant {
        match self {
            Deadline::Header(at) | Deadline::Idle(at) | Deadline::Write(at) => at,
        }
    }
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Conn {
    buf: Vec<u8>,
    /// Start of the first unanswered byte in `buf`.
    start: usize,
    /// Bytes of `buf[start..]` already known not to contain the end of a head.
    scanned: usize,
    state: State,
    /// When the current request began: the header timeout runs from here.
    began: Instant,
    /// The last time bytes moved either way: the idle and write timeouts run from here.
    active: Instant,
    answered: u64,
}

impl Conn {
    /// A connection accepted at `now`; holds no buffer until bytes arrive.
    pub fn new(now: Instant) -> Conn {
        Conn {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            state: State::Open,
            began: now,
            active: now,
            answered: 0,
        }
    }

    /// When the current request began (for the access log's request time).
    pub fn request_began(&self) -> Instant {
        self.began
    }

    /// Responses handed out so far.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// The one rule for which time limit applies, asked by both drivers after every event
    /// (as quinn-proto's `poll_timeout`): while output is pending (`writing`) the client must
    /// keep reading; while a head is incomplete, or before the first request, the header
    /// timeout runs; otherwise the connection is idle.
    pub fn deadline(&self, timeouts: Timeouts, writing: bool) -> Deadline {
        if writing {
            Deadline::Write(self.active + timeouts.idle)
        } else if self.has_partial_request() || self.answered == 0 {
            Deadline::Header(self.began + timeouts.header)
        } else {
            Deadline::Idle(self.active + timeouts.idle)
        }
    }

    /// Output moved at `now` (the kernel took bytes): the write and idle timeouts restart.
    pub fn progressed(&mut self, now: Instant) {
        self.active = now;
    }

    /// Appends bytes received from the peer at `now`. The first byte of a request after the
    /// first starts its header timeout.
    pub fn receive(&mut self, data: &[u8], now: Instant) {
        if self.start == self.buf.len() && self.answered > 0 {
            self.began = now;
        }
        self.active = now;
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// True when part of a request has arrived but not yet a complete head: a timeout now
    /// deserves a 408 rather than a silent close.
    pub fn has_partial_request(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Bytes received and not yet answered (a driver pauses reading when this grows while
    /// its output is blocked).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Frees the read buffer if nothing is buffered, so an idle connection holds no memory
    /// for input (the io_uring driver calls this when a connection goes idle).
    pub fn release_idle_buffer(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// How to close once [`Conn::poll`] has said [`Step::Close`] or handed out a response
    /// that ends the connection (`Immediate` while the connection is still open).
    pub fn closing(&self) -> Closing {
        match self.state {
            State::Open => Closing::Immediate,
            State::Done(closing) => closing,
        }
    }

    /// The next step. Call until it returns [`Step::NeedMore`] or [`Step::Close`].
    pub fn poll(&mut self, site: &Site, date: &DateCache, life: Lifecycle) -> Step {
        self.poll_with(site, None, date, life)
    }

    /// [`Conn::poll`], serving hot files from a worker's `cache`.
    pub fn poll_with(
        &mut self,
        site: &Site,
        cache: Option<&mut FileCache>,
        date: &DateCache,
        life: Lifecycle,
    ) -> Step {
        if let State::Done(_) = self.state {
            return Step::Close;
        }
        if self.start == self.buf.len() {
            self.reset_buffer();
            return match life {
                // Announcing: a connection accepted now still gets its first request answered.
                Lifecycle::Serving | Lifecycle::Announcing => Step::NeedMore,
                // Draining, a connection that has had no answer yet still gets its first
                // request answered: it was accepted, so its client has sent or is sending a
                // request and could not tell a close from a lost request (the header timeout
                // bounds the wait). Closing is for keep-alive connections between requests,
                // the one close HTTP lets a client retry after (RFC 9112 §9.3.1).
                Lifecycle::Draining if self.answered == 0 => Step::NeedMore,
                Lifecycle::Draining => {
                    self.state = State::Done(Closing::Immediate);
                    Step::Close
                }
            };
        }
        let max_head = site.options().max_head;
        // Only a head already found partial is pre-checked: the common head that arrives
        // whole is scanned once, by the parser.
        let pending = self.buf.len() - self.start;
        if self.scanned > 0 && pending < max_head && !self.head_may_be_complete() {
            return Step::NeedMore;
        }
        let (response, closing) = match request::parse(&self.buf[self.start..], max_head) {
            Ok(Parsed::Partial) => {
                self.scanned = pending;
                return Step::NeedMore;
            }
            Ok(Parsed::Complete { request, len }) => {
                let mut response = serve::respond(site, cache, &request, date, life);
                if site.options().logging == Logging::On {
                    response.log = Some(Box::new(log_fields(&request)));
                }
                let unread = request.body.has_body() || self.start + len < self.buf.len();
                self.start += len;
                self.scanned = 0;
                (
                    response,
                    if unread {
                        Closing::Linger
                    } else {
                        Closing::Immediate
                    },
                )
            }
            Err(e) => (self.error(e.status(), site, date), Closing::Linger),
        };
        if response.after == super::response::After::Close {
            self.state = State::Done(closing);
        }
        self.answered += 1;
        // A pipelined request already buffered is timed from this response.
        self.began = date.instant();
        Step::Respond(response)
    }

    /// The answer to a client that did not finish its head in time: 408 if it had started
    /// one, otherwise nothing (an idle keep-alive connection is closed silently).
    pub fn timed_out(&mut self, site: &Site, date: &DateCache) -> Option<Response> {
        let partial = self.state == State::Open && self.has_partial_request();
        // The client went quiet: there is nothing in flight to linger for.
        self.state = State::Done(Closing::Immediate);
        partial.then(|| self.error(Status::RequestTimeout, site, date))
    }

    fn error(&self, status: Status, site: &Site, date: &DateCache) -> Response {
        let mut response = serve::error_response(status, date);
        if site.options().logging == Logging::On {
            let pending = &self.buf[self.start..];
            let line_end = memchr::memchr2(b'\r', b'\n', pending).unwrap_or(pending.len());
            let request_line = pending[..line_end.min(MAX_LOGGED_LINE)].to_vec();
            response.log = Some(Box::new(LogFields {
                request_line,
                ..LogFields::default()
            }));
        }
        response
    }

    /// Cheap pre-check so a head dribbled in byte by byte is not re-parsed from its start on
    /// every byte: looks for an empty line (`\n\n` or `\n\r\n`) in the bytes not yet scanned
    /// (`scanned` counts bytes the parser or this check already found to hold no head end).
    fn head_may_be_complete(&mut self) -> bool {
        let pending = &self.buf[self.start..];
        // Back up two bytes: the terminator may straddle the previous scan's end.
        let from = self.scanned.saturating_sub(2);
        let found = memchr::memchr_iter(b'\n', &pending[from..]).any(|i| {
            let rest = &pending[from + i + 1..];
            rest.starts_with(b"\n") || rest.starts_with(b"\r\n")
        });
        self.scanned = pending.len();
        found
    }

    fn reset_buffer(&mut self) {
        self.start = 0;
        self.scanned = 0;
        if self.buf.capacity() > SHRINK_ABOVE {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

fn log_fields(req: &Request<'_>) -> LogFields {
    let version: &[u8] = match req.version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    };
    let mut request_line =
        Vec::with_capacity(req.method_raw.len() + req.target_raw.len() + version.len() + 2);
    request_line.extend_from_slice(req.method_raw.as_bytes());
    request_line.push(b' ');
    request_line.extend_from_slice(req.target_raw.as_bytes());
    request_line.push(b' ');
    request_line.extend_from_slice(version);
    LogFields {
        request_line,
        referer: req.headers.referer.map(<[u8]>::to_vec),
        user_agent: req.headers.user_agent.map(<[u8]>::to_vec),
        x_forwarded_for: (!req.headers.x_forwarded_for.is_empty())
            .then(|| req.headers.x_forwarded_for.join(&b", "[..])),
        x_real_ip: req.headers.x_real_ip.map(<[u8]>::to_vec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Root;
    use crate::http::response::{After, Body};
    use crate::http::serve::SiteOptions;
    use std::time::SystemTime;

    struct Fixture {
        _dir: tempfile::TempDir,
        site: Site,
        date: DateCache,
    }

    fn fixture(options: SiteOptions) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"aaaa").unwrap();
        std::fs::write(dir.path().join("b.txt"), b"bb").unwrap();
        let site = Site::new(Root::open(dir.path()).unwrap(), options);
        Fixture {
            _dir: dir,
            site,
            date: DateCache::new(SystemTime::now()),
        }
    }

    #[test]
    fn one_deadline_rule_for_header_idle_and_write() {
        let f = fixture(SiteOptions::default());
        let t = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut conn = Conn::new(t0);
        // Before the first request the header timeout runs from the accept, even once bytes
        // have begun to arrive.
        assert_eq!(conn.deadline(t, false), Deadline::Header(at(10)));
        conn.receive(b"GET /a.txt HT", at(3));
        assert_eq!(conn.deadline(t, false), Deadline::Header(at(10)));
        // Output waiting for the client: the write deadline, from the last progress.
        assert_eq!(conn.deadline(t, true), Deadline::Write(at(63)));
        conn.receive(b"TP/1.1\r\nHost: x\r\n\r\n", at(4));
        let date = DateCache::at(SystemTime::now(), at(5));
        assert!(matches!(
            conn.poll(&f.site, &date, Lifecycle::Serving),
            Step::Respond(_)
        ));
        // Answered, nothing buffered: idle, from the last bytes moved.
        conn.progressed(at(6));
        assert_eq!(conn.deadline(t, false), Deadline::Idle(at(66)));
        // The first byte of the next request starts its own header timeout.
        conn.receive(b"GET /b", at(20));
        assert_eq!(conn.deadline(t, false), Deadline::Header(at(30)));
        assert_eq!(Deadline::Header(at(30)).at(), at(30));
    }

    #[test]
    fn a_pipelined_request_is_timed_from_the_previous_response() {
        let f = fixture(SiteOptions::default());
        let t = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let mut conn = Conn::new(t0);
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b", t0);
        let date = DateCache::at(SystemTime::now(), t0 + Duration::from_secs(7));
        assert!(matches!(
            conn.poll(&f.site, &date, Lifecycle::Serving),
            Step::Respond(_)
        ));
        assert_eq!(
            conn.deadline(t, false),
            Deadline::Header(t0 + Duration::from_secs(17))
        );
    }

    #[test]
    fn buffered_counts_unanswered_bytes_and_idle_buffers_are_freed() {
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        conn.receive(
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b",
            Instant::now(),
        );
        assert_eq!(conn.buffered(), 38);
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Serving),
            Step::Respond(_)
        ));
        assert_eq!(conn.buffered(), 6);
        // Not idle: a partial request is kept.
        conn.release_idle_buffer();
        assert_eq!(conn.buffered(), 6);
        conn.receive(b".txt HTTP/1.1\r\nHost: x\r\n\r\n", Instant::now());
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Serving),
            Step::Respond(_)
        ));
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Serving),
            Step::NeedMore
        ));
        conn.release_idle_buffer();
        assert_eq!((conn.buffered(), conn.buf.capacity()), (0, 0));
    }

    /// A release swapped and the old one deleted after the worker last applied its change
    /// queue (a worker preempted mid-batch): a file present in both releases is not a 404.
    #[test]
    fn a_deleted_old_release_is_not_a_404_for_a_file_the_new_one_has() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["v1", "v2"] {
            std::fs::create_dir(dir.path().join(v)).unwrap();
            std::fs::write(dir.path().join(v).join("a.txt"), v).unwrap();
        }
        std::os::unix::fs::symlink("v1", dir.path().join("current")).unwrap();
        let root = Root::open(&dir.path().join("current")).unwrap();
        let site = Site::new(root, SiteOptions::default());
        let date = DateCache::new(SystemTime::now());
        let mut cache = FileCache::new();
        let status = |cache: Option<&mut FileCache>| {
            let mut conn = Conn::new(Instant::now());
            conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", Instant::now());
            match conn.poll_with(&site, cache, &date, Lifecycle::Serving) {
                Step::Respond(r) => r.head[9..12].to_vec(),
                other => panic!("unexpected step {other:?}"),
            }
        };
        // The worker's cache and the shared root both hold v1 now.
        assert_eq!(status(Some(&mut cache)), b"200");
        assert_eq!(status(None), b"200");
        std::os::unix::fs::symlink("v2", dir.path().join("tmp")).unwrap();
        std::fs::rename(dir.path().join("tmp"), dir.path().join("current")).unwrap();
        std::fs::remove_dir_all(dir.path().join("v1")).unwrap();
        // No apply_changes in between: the open finds v1 gone and looks again.
        assert_eq!(status(Some(&mut cache)), b"200");
        assert_eq!(status(None), b"200");
    }

    #[test]
    fn the_cache_serves_the_same_answer_as_the_disk() {
        let f = fixture(SiteOptions::default());
        let mut cache = FileCache::new();
        let req = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut answers = Vec::new();
        for use_cache in [false, true, true] {
            let mut conn = Conn::new(Instant::now());
            conn.receive(req, Instant::now());
            let cache = use_cache.then_some(&mut cache);
            match conn.poll_with(&f.site, cache, &f.date, Lifecycle::Serving) {
                Step::Respond(r) => {
                    let body = match r.body {
                        Body::File { file, range } => {
                            let mut b = vec![0u8; (range.end - range.start) as usize];
                            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut b, range.start)
                                .unwrap();
                            b
                        }
                        Body::Shared { bytes, range } => {
                            bytes[range.start as usize..range.end as usize].to_vec()
                        }
                        other => panic!("unexpected body {other:?}"),
                    };
                    answers.push((r.head, body));
                }
                other => panic!("unexpected step {other:?}"),
            }
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[1], answers[2]);
        assert_eq!(answers[0].1, b"aaaa");
        assert_eq!(
            cache.stats(),
            crate::fs::cache::CacheStats { hits: 1, misses: 1 }
        );
    }

    /// Feeds `input` in chunks of `chunk` bytes, collecting every response's status line.
    fn run(f: &Fixture, input: &[u8], chunk: usize) -> (Vec<String>, Step) {
        let mut conn = Conn::new(Instant::now());
        let mut statuses = Vec::new();
        let mut last = Step::NeedMore;
        for piece in input.chunks(chunk) {
            conn.receive(piece, Instant::now());
            loop {
                match conn.poll(&f.site, &f.date, Lifecycle::Serving) {
                    Step::Respond(r) => {
                        let head = String::from_utf8(r.head).unwrap();
                        statuses.push(head.lines().next().unwrap().to_string());
                        if r.after == After::Close {
                            last = conn.poll(&f.site, &f.date, Lifecycle::Serving);
                            return (statuses, last);
                        }
                    }
                    step => {
                        last = step;
                        break;
                    }
                }
            }
        }
        (statuses, last)
    }

    #[test]
    fn three_pipelined_requests_are_answered_in_order() {
        let f = fixture(SiteOptions::default());
        let input =
            b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /missing HTTP/1.1\r\nHost: h\r\n\r\n\
                      HEAD /b.txt HTTP/1.1\r\nHost: h\r\n\r\n";
        let (statuses, last) = run(&f, input, input.len());
        assert_eq!(
            statuses,
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 404 Not Found",
                "HTTP/1.1 200 OK"
            ]
        );
        assert!(matches!(last, Step::NeedMore));
    }

    #[test]
    fn a_request_dribbled_byte_by_byte_is_answered_once() {
        let f = fixture(SiteOptions::default());
        let input = b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: h\r\n\r\n";
        let (statuses, _) = run(&f, input, 1);
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
    }

    #[test]
    fn a_bad_request_ends_the_connection_after_earlier_ones_are_answered() {
        let f = fixture(SiteOptions::default());
        let input = b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\nBAD\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: h\r\n\r\n";
        let (statuses, last) = run(&f, input, input.len());
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]);
        assert!(matches!(last, Step::Close));
    }

    #[test]
    fn a_body_we_do_not_read_closes_the_connection() {
        let f = fixture(SiteOptions::default());
        let input = b"GET /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyzGET /b.txt HTTP/1.1\r\n\r\n";
        let (statuses, last) = run(&f, input, input.len());
        assert_eq!(statuses, ["HTTP/1.1 200 OK"]);
        assert!(matches!(last, Step::Close));
    }

    #[test]
    fn draining_closes_after_the_request_in_hand() {
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n", Instant::now());
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Draining) else {
            panic!("expected a response");
        };
        assert_eq!(r.after, After::Close);
        assert!(
            String::from_utf8(r.head)
                .unwrap()
                .contains("Connection: close\r\n")
        );
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Draining),
            Step::Close
        ));
    }

    #[test]
    fn lingering_only_when_the_client_may_still_be_sending() {
        let f = fixture(SiteOptions::default());
        let cases: &[(&[u8], Closing)] = &[
            (
                b"GET /a.txt HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                Closing::Immediate,
            ),
            (b"GET /a.txt HTTP/1.0\r\n\r\n", Closing::Immediate),
            (
                b"POST /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
                Closing::Linger,
            ),
            (
                b"GET /a.txt HTTP/1.0\r\n\r\nGET /b.txt HTTP/1.0\r\n\r\n",
                Closing::Linger,
            ),
            (b"BAD\r\n\r\n", Closing::Linger),
        ];
        for &(input, expected) in cases {
            let mut conn = Conn::new(Instant::now());
            conn.receive(input, Instant::now());
            assert_eq!(
                conn.closing(),
                Closing::Immediate,
                "open connections close at once"
            );
            let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Serving) else {
                panic!("expected a response");
            };
            assert_eq!(r.after, After::Close);
            assert_eq!(
                conn.closing(),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn an_idle_connection_draining_is_closed_without_a_response() {
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n", Instant::now());
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Serving),
            Step::Respond(_)
        ));
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Draining),
            Step::Close
        ));
    }

    #[test]
    fn a_new_connection_draining_still_gets_its_first_request_answered() {
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Draining),
            Step::NeedMore
        ));
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n", Instant::now());
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Draining) else {
            panic!("expected a response");
        };
        assert_eq!(r.after, After::Close);
    }

    #[test]
    fn an_idle_connection_announcing_waits_for_its_request_which_then_closes() {
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        assert!(matches!(
            conn.poll(&f.site, &f.date, Lifecycle::Announcing),
            Step::NeedMore
        ));
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n", Instant::now());
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Announcing) else {
            panic!("expected a response");
        };
        assert_eq!(r.after, After::Close);
    }

    #[test]
    fn timeout_gives_408_only_mid_request() {
        let f = fixture(SiteOptions::default());
        let mut idle = Conn::new(Instant::now());
        assert!(idle.timed_out(&f.site, &f.date).is_none());
        let mut partial = Conn::new(Instant::now());
        partial.receive(b"GET /a.txt HTT", Instant::now());
        let r = partial.timed_out(&f.site, &f.date).unwrap();
        assert_eq!(r.status, Status::RequestTimeout);
        assert_eq!(r.after, After::Close);
    }

    #[test]
    fn oversized_heads_are_refused_without_waiting_for_their_end() {
        let options = SiteOptions {
            max_head: 512,
            ..SiteOptions::default()
        };
        let f = fixture(options);
        let mut conn = Conn::new(Instant::now());
        conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: h\r\nX: ", Instant::now());
        conn.receive(&[b'a'; 600], Instant::now());
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Serving) else {
            panic!("expected a response");
        };
        assert_eq!(r.status, Status::HeaderFieldsTooLarge);
        let mut long_line = Conn::new(Instant::now());
        long_line.receive(&[b'G'; 600], Instant::now());
        let Step::Respond(r) = long_line.poll(&f.site, &f.date, Lifecycle::Serving) else {
            panic!("expected a response");
        };
        assert_eq!(r.status, Status::UriTooLong);
    }

    #[test]
    fn access_log_fields_are_captured_only_when_logging() {
        let f = fixture(SiteOptions {
            logging: Logging::On,
            ..SiteOptions::default()
        });
        let mut conn = Conn::new(Instant::now());
        conn.receive(
            b"GET /a.txt?x HTTP/1.0\r\nUser-Agent: t\r\n\r\n",
            Instant::now(),
        );
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Serving) else {
            panic!("expected a response");
        };
        let log = r.log.unwrap();
        assert_eq!(log.request_line, b"GET /a.txt?x HTTP/1.0");
        assert_eq!(log.user_agent.as_deref(), Some(&b"t"[..]));
        assert!(matches!(r.body, Body::File { .. }));
        let f = fixture(SiteOptions::default());
        let mut conn = Conn::new(Instant::now());
        conn.receive(b"GET /a.txt HTTP/1.0\r\n\r\n", Instant::now());
        let Step::Respond(r) = conn.poll(&f.site, &f.date, Lifecycle::Serving) else {
            panic!("expected a response");
        };
        assert!(r.log.is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_in_arbitrary_chunks_never_panic(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            chunk in 1usize..300,
        ) {
            let f = fixture(SiteOptions { max_head: 1024, ..SiteOptions::default() });
            let mut conn = Conn::new(Instant::now());
            for piece in data.chunks(chunk) {
                conn.receive(piece, Instant::now());
                // Bounded: each poll either consumes a head, stops, or ends the connection.
                for _ in 0..64 {
                    match conn.poll(&f.site, &f.date, Lifecycle::Serving) {
                        Step::Respond(r) => proptest::prop_assert!(r.head.ends_with(b"\r\n\r\n")),
                        Step::NeedMore | Step::Close => break,
                    }
                }
            }
        }

        #[test]
        fn where_a_request_is_split_does_not_change_the_answer(cut in 0usize..60) {
            let f = fixture(SiteOptions::default());
            let input = b"GET /a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n\r\n";
            let cut = cut.min(input.len());
            let mut whole = Conn::new(Instant::now());
            whole.receive(input, Instant::now());
            let Step::Respond(expected) = whole.poll(&f.site, &f.date, Lifecycle::Serving) else {
                panic!("complete request not answered");
            };
            let mut split = Conn::new(Instant::now());
            split.receive(&input[..cut], Instant::now());
            if cut < input.len() {
                proptest::prop_assert!(matches!(split.poll(&f.site, &f.date, Lifecycle::Serving), Step::NeedMore));
                split.receive(&input[cut..], Instant::now());
            }
            let Step::Respond(got) = split.poll(&f.site, &f.date, Lifecycle::Serving) else {
                panic!("split request not answered");
            };
            proptest::prop_assert_eq!(got.head, expected.head);
        }
    }
}
