//! What the workers of one io_uring server share (the site, read-only; the log sink; the
//! shutdown flags; the connection count), and a listening socket as a worker holds it.

use super::output::LargeFiles;
use crate::config::Pin;
use crate::http::Site;
use crate::server::accesslog::Sink;
use crate::server::lifecycle::Shutdown;
use crate::server::listen::UnixSocket;
use crate::server::policy;
use crate::stats::Stats;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// What every worker of one server shares.
#[derive(Debug)]
pub struct Shared {
    pub site: Site,
    pub log: Option<Sink>,
    pub shutdown: Shutdown,
    /// One block of counters per worker.
    pub stats: Arc<Stats>,
    /// Open connections across workers, for `--max-conns`.
    pub active: AtomicUsize,
    /// The Unix sockets listened on: their files are removed when accepting stops.
    pub unix: Vec<UnixSocket>,
}

/// A listening socket as a worker holds it.
#[derive(Debug)]
pub struct Listening {
    pub fd: OwnedFd,
    /// Accepted connections are Unix-domain sockets.
    pub unix: bool,
    /// A passed socket, shared with other instances and set non-blocking: when this worker's
    /// accept on it has been cancelled, the connections still queued are taken and served
    /// (`Worker::sweep`).
    pub passed: bool,
    /// `127.0.0.1:8080` or `unix:/path`, for messages.
    pub label: String,
}

/// Settings of the io_uring mode: the policy both modes share, and this mode's own knobs.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub policy: policy::Settings,
    pub large_files: LargeFiles,
    /// Submission queue size ([`super::SQ_ENTRIES`]; tests make it tiny to exercise a full queue).
    pub sq_entries: u32,
    pub pin: Pin,
    /// Descriptors each worker's file cache may keep open (`server::fdbudget`).
    pub cache_files: usize,
}
