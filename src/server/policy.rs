//! The policy both I/O modes carry out: the limits an operator sets ([`Settings`]) and the
//! constants that shape output and closing. One copy, so the two drivers can differ only in
//! how bytes move. Which deadline applies when is the core's rule ([`crate::http::Conn::deadline`]).

use crate::http::Timeouts;
use std::time::Duration;

/// What an operator sets, the same for both drivers.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub timeouts: Timeouts,
    /// Open connections at once, across workers; more get 503.
    pub max_conns: usize,
    /// How long a graceful shutdown waits for responses in flight.
    pub grace: Duration,
    /// How long a shutdown is announced (health 503, responses close) before accepting stops.
    pub drain_delay: Duration,
}

/// In-memory output stops growing past this: a connection stops answering pipelined requests
/// until the client has read what is queued (and the threaded mode flushes).
pub const FLUSH_AT: usize = 64 * 1024;

/// File bodies up to this size are read into the output buffer instead of `sendfile`d: one
/// `pread` plus the shared `send` costs less than a `send(MSG_MORE)` + `sendfile` pair, and
/// pipelined responses for small files leave in one write. The same threshold decides which
/// bodies the file cache keeps in memory; 64 KiB from memory measured 14.2 µs CPU/request
/// against 11.7 with `sendfile` (benches/results/HISTORY.md).
pub const COPY_BELOW: u64 = crate::fs::cache::IN_MEMORY_MAX;

/// Lingering close (as nginx's `lingering_close`): when the core says the client may still be
/// sending, keep reading and discarding for up to this long after the last response, so unread
/// request bytes do not make the kernel reset the connection and destroy the response before
/// the client has read it.
pub const LINGER_FOR: Duration = Duration::from_secs(2);
pub const LINGER_MAX_BYTES: usize = 256 * 1024;

/// After an accept error (EMFILE, ENFILE, ENOBUFS), accepting resumes after this pause, so a
/// descriptor shortage cannot spin a core; the error is logged at most this often.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);
pub const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(1);
