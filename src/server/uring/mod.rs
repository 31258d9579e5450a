//! The io_uring mode: one worker thread per core, pinned, each with its own io_uring, its own
//! `SO_REUSEPORT` listener per address, its own receive buffers, timers and send-buffer pool.
//! Workers share nothing on the hot path; the only shared state is the site (read-only), the
//! access log sink, the shutdown flag and the connection count behind `--max-conns` (one
//! atomic add per accepted connection).
//!
//! Start-up ([`Uring::start`]): bind every worker's listeners on the calling thread (so bind
//! errors reach the caller, and port 0 is resolved by the first bind), spawn the workers,
//! and wait until each reports its ring ready. If any cannot set up io_uring, all stop and
//! the caller falls back to the threaded mode with the reason ([`Unavailable`]).
//!
//! Shutdown: a flag, then one byte down each worker's wake-up socket; each worker stops
//! accepting, finishes responses in flight, closes idle connections and exits when it has no
//! connections left or the grace period has passed.

mod bufring;
mod cursor;
mod timers;
mod worker;

use super::StartError;
use super::accesslog::Sink;
use super::listen::{self, UnixSocket};
use crate::http::Site;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

pub use worker::{SQ_ENTRIES, Settings};

/// How file bodies larger than the in-memory threshold are sent. `Sendfile` is the default;
/// `ReadSend` exists to measure against it (`RINGSERVE_LARGE_FILES=read-send`, see
/// ARCHITECTURE.md for the numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LargeFiles {
    /// `sendfile(2)` on the non-blocking socket; a `POLLOUT` poll on the ring when it is full.
    Sendfile,
    /// `pread` 256 KiB at a time into memory, then `send` through the ring.
    ReadSend,
}

impl LargeFiles {
    /// From `RINGSERVE_LARGE_FILES` (`sendfile`, the default, or `read-send`).
    pub fn from_env() -> LargeFiles {
        match std::env::var("RINGSERVE_LARGE_FILES").as_deref() {
            Ok("read-send") => LargeFiles::ReadSend,
            _ => LargeFiles::Sendfile,
        }
    }
}

/// What every worker of one server shares.
#[derive(Debug)]
pub struct Shared {
    pub site: Site,
    pub log: Option<Sink>,
    /// A shutdown was asked for and the drain delay runs: the core answers with
    /// `Lifecycle::Announcing` while the workers still accept.
    pub announcing: AtomicBool,
    pub draining: AtomicBool,
    /// Open connections across workers, for `--max-conns`.
    pub active: AtomicUsize,
    /// The Unix sockets listened on: their files are removed when accepting stops.
    pub unix: Vec<UnixSocket>,
}

/// Why the io_uring mode cannot run here.
#[derive(Debug)]
pub struct Unavailable {
    pub reason: String,
    /// The site and log, handed back for the threaded mode.
    pub shared: Shared,
}

/// The running io_uring server.
#[derive(Debug)]
pub struct Uring {
    shared: Arc<Shared>,
    wakers: Vec<UnixStream>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// How the rings were set up, for the start-up line.
    pub detail: String,
    /// How long [`Uring::shutdown`] announces before it stops the workers.
    drain_delay: std::time::Duration,
}

/// Backlog of each listening socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// A listening socket as a worker holds it.
#[derive(Debug)]
pub struct Listening {
    pub fd: OwnedFd,
    /// Accepted connections are Unix-domain sockets.
    pub unix: bool,
    /// `127.0.0.1:8080` or `unix:/path`, for messages.
    pub label: String,
}

/// What [`bind_listeners`] bound.
#[derive(Debug)]
pub struct Bound {
    /// Each worker's listeners, in the order given (TCP addresses, then Unix paths).
    pub per_worker: Vec<Vec<Listening>>,
    /// The TCP addresses actually bound (port 0 resolved).
    pub tcp: Vec<SocketAddr>,
    /// The Unix sockets, whose files are removed when the server stops.
    pub unix: Vec<UnixSocket>,
}

/// Binds one TCP listener per worker for each address: the first bind of an address resolves
/// port 0, the others reuse the port. An explicit port already taken by anyone (even another
/// `SO_REUSEPORT` server of the same user) is refused, as a plain bind would be. A Unix
/// socket is bound once and shared: every worker accepts on a duplicate of its descriptor.
pub fn bind_listeners(
    addrs: &[SocketAddr],
    unix_paths: &[PathBuf],
    workers: usize,
) -> Result<Bound, StartError> {
    let mut bound = Bound {
        per_worker: (0..workers).map(|_| Vec::new()).collect(),
        tcp: Vec::with_capacity(addrs.len()),
        unix: Vec::with_capacity(unix_paths.len()),
    };
    for &addr in addrs {
        let fail = |source| StartError::Bind { addr, source };
        if addr.port() != 0 {
            // Without SO_REUSEPORT this bind fails if anything holds the port; a dying
            // instance's port is waited for (`listen::bind_tcp` retries).
            drop(listen::bind_tcp(addr)?);
        }
        let first = crate::sys::net::reuseport_listener(addr, BACKLOG).map_err(fail)?;
        let actual = first.local_addr().map_err(fail)?;
        bound.tcp.push(actual);
        let label = actual.to_string();
        let mut next = Some(first);
        for list in &mut bound.per_worker {
            let listener = match next.take() {
                Some(l) => l,
                None => crate::sys::net::reuseport_listener(actual, BACKLOG).map_err(fail)?,
            };
            list.push(Listening {
                fd: listener.into(),
                unix: false,
                label: label.clone(),
            });
        }
    }
    for path in unix_paths {
        let socket = listen::bind_unix(path)?;
        let label = format!("unix:{}", path.display());
        for list in &mut bound.per_worker {
            let fd = socket
                .listener()
                .try_clone()
                .map_err(|source| StartError::BindUnix {
                    path: path.clone(),
                    source,
                })?;
            list.push(Listening {
                fd: fd.into(),
                unix: true,
                label: label.clone(),
            });
        }
        bound.unix.push(socket);
    }
    Ok(bound)
}

impl Uring {
    /// Starts `listeners.len()` workers. Fails with [`Unavailable`] (handing the site back)
    /// when this machine cannot run io_uring, or with an error when threads cannot start.
    pub fn start(
        listeners: Vec<Vec<Listening>>,
        shared: Shared,
        settings: Settings,
    ) -> Result<Uring, StartFailure> {
        if let Err(reason) = probe() {
            return Err(StartFailure::Unavailable(Box::new(Unavailable {
                reason,
                shared,
            })));
        }
        let shared = Arc::new(shared);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, worker::Ready)>();
        let mut wakers = Vec::new();
        let mut handles = Vec::new();
        let count = listeners.len();
        for (index, list) in listeners.into_iter().enumerate() {
            let (waker, wake) = UnixStream::pair().map_err(StartFailure::Spawn)?;
            waker.set_nonblocking(true).map_err(StartFailure::Spawn)?;
            wakers.push(waker);
            let for_worker = Arc::clone(&shared);
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ringserve-w{index}"))
                .spawn(move || {
                    if let Some(core) = core {
                        // Pinning is an optimisation; a refusal (e.g. a cpuset) is not fatal.
                        core_affinity::set_for_current(core);
                    }
                    match worker::Worker::new(index, for_worker, settings, list, wake) {
                        Ok((w, detail)) => {
                            let _ = ready.send((index, Ok(detail)));
                            w.run();
                        }
                        Err(e) => {
                            let _ = ready.send((index, Err(e)));
                        }
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let this = Uring {
                        shared,
                        wakers,
                        workers: Mutex::new(handles),
                        detail: String::new(),
                        drain_delay: settings.drain_delay,
                    };
                    stop(&this.shared, &this.wakers);
                    this.join();
                    return Err(StartFailure::Spawn(e));
                }
            }
        }
        drop(ready_tx);
        let mut detail = String::new();
        let mut failure = None;
        for _ in 0..count {
            match ready_rx.recv() {
                Ok((_, Ok(d))) => detail = d,
                Ok((index, Err(e))) => failure = Some(format!("worker {index}: {e}")),
                Err(_) => failure = Some("a worker thread ended during start-up".into()),
            }
        }
        let this = Uring {
            shared,
            wakers,
            workers: Mutex::new(handles),
            detail,
            drain_delay: settings.drain_delay,
        };
        if let Some(reason) = failure {
            stop(&this.shared, &this.wakers);
            this.join();
            let shared = Arc::try_unwrap(this.shared).map_err(|_| {
                StartFailure::Spawn(io::Error::other("workers still hold the site"))
            })?;
            return Err(StartFailure::Unavailable(Box::new(Unavailable {
                reason: format!("io_uring set-up failed ({reason})"),
                shared,
            })));
        }
        Ok(this)
    }

    pub fn site(&self) -> &Site {
        &self.shared.site
    }

    /// Idempotent: sets the flag and wakes every worker.
    pub fn shutdown(&self) {
        if self.shared.announcing.swap(true, Ordering::AcqRel) {
            return;
        }
        let delay = self.drain_delay;
        if delay.is_zero() {
            stop(&self.shared, &self.wakers);
            return;
        }
        // Announce for the drain delay, then stop, from a timer thread with its own handles
        // on the wakers.
        let wakers: io::Result<Vec<UnixStream>> =
            self.wakers.iter().map(UnixStream::try_clone).collect();
        let shared = Arc::clone(&self.shared);
        let timer = wakers.and_then(|wakers| {
            std::thread::Builder::new()
                .name("ringserve-drain".into())
                .spawn(move || {
                    std::thread::sleep(delay);
                    stop(&shared, &wakers);
                })
        });
        if timer.is_err() {
            // No timer: stop now rather than never.
            stop(&self.shared, &self.wakers);
        }
    }

    /// Waits for every worker to exit (each enforces the grace period itself).
    pub fn join(&self) {
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for h in workers {
            let _ = h.join();
        }
    }
}

/// Stops accepting: the flag every worker checks, then a byte on each worker's waker.
fn stop(shared: &Shared, wakers: &[UnixStream]) {
    if shared.draining.swap(true, Ordering::AcqRel) {
        return;
    }
    // A replacement instance may bind the paths while this one drains.
    for socket in &shared.unix {
        socket.path().remove();
    }
    for w in wakers {
        let _ = (&*w).write(&[1]);
    }
}

/// Why [`Uring::start`] failed.
#[derive(Debug)]
pub enum StartFailure {
    Unavailable(Box<Unavailable>),
    Spawn(io::Error),
}

/// Checks, on the calling thread, that this kernel lets us set up a ring with the operations
/// and features the workers use. The reason is one line for the log.
fn probe() -> Result<(), String> {
    let ring = match io_uring::IoUring::new(8) {
        Ok(r) => r,
        Err(e) => return Err(setup_error(&e)),
    };
    let mut probe = io_uring::Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(format!("cannot probe io_uring operations: {e}"));
    }
    use io_uring::opcode;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::AsyncCancel::CODE, "cancel"),
        (opcode::Close::CODE, "close"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("this kernel's io_uring lacks the {name} operation"));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err(
            "this kernel's io_uring cannot wait with a timeout (EXT_ARG, Linux 5.11+)".into(),
        );
    }
    // Multishot recv with provided-buffer rings needs Linux 6.0; the probe above cannot see
    // it (the opcode is the plain recv), so the release is checked.
    if let Some((major, minor)) = kernel_release()
        && (major, minor) < (6, 0)
    {
        return Err(format!(
            "Linux {major}.{minor} lacks multishot recv (6.0 or later is needed)"
        ));
    }
    Ok(())
}

/// The running kernel's `major.minor`, from `uname`.
fn kernel_release() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn setup_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring (ENOSYS)".into(),
        Some(libc::EPERM) if disabled > 0 => {
            format!("io_uring is disabled by kernel.io_uring_disabled={disabled} (EPERM)")
        }
        Some(libc::EPERM) => {
            "io_uring_setup is not permitted (EPERM; a seccomp profile or kernel.io_uring_disabled)"
                .into()
        }
        Some(libc::ENOMEM) => {
            "io_uring_setup ran out of locked memory (ENOMEM; raise RLIMIT_MEMLOCK)".into()
        }
        _ => format!("io_uring_setup failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_runs_io_uring_or_says_why_in_one_line() {
        match probe() {
            Ok(()) => assert!(kernel_release().is_some_and(|v| v >= (6, 0))),
            Err(why) => assert!(!why.is_empty() && !why.contains('\n'), "{why}"),
        }
    }

    #[test]
    fn setup_errors_read_as_one_line_each() {
        for errno in [libc::ENOSYS, libc::EPERM, libc::ENOMEM, libc::EINVAL] {
            let line = setup_error(&io::Error::from_raw_os_error(errno));
            assert!(!line.contains('\n') && line.len() > 10, "{line}");
        }
        assert!(setup_error(&io::Error::from_raw_os_error(libc::ENOSYS)).contains("ENOSYS"));
    }
}
