//! The io_uring mode: one worker thread per core (pinned when the process has cores of its
//! own, see [`Settings::pin`]), each with its own io_uring, its own
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
mod conn;
mod cursor;
mod output;
mod ring;
mod shared;
mod timers;
mod token;
mod worker;

use super::error::StartError;
use super::lifecycle;
use super::listen::{self, UnixSocket};
use crate::config::Pin;
use crate::http::Site;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

pub use output::LargeFiles;
pub use ring::SQ_ENTRIES;
pub use shared::{Listening, Settings, Shared};

/// The cores to pin worker `i` to (`cores[i % len]`; empty: not pinned), and the reason, for
/// the start-up line.
fn pinning(
    pin: Pin,
    allowed: Vec<core_affinity::CoreId>,
    online: usize,
) -> (Vec<core_affinity::CoreId>, String) {
    let n = allowed.len();
    match pin {
        Pin::Off => (Vec::new(), "not pinned (--pin off)".into()),
        Pin::On if allowed.is_empty() => (
            Vec::new(),
            "not pinned: this process's CPU set cannot be read".into(),
        ),
        Pin::On => (allowed, "pinned (--pin on)".into()),
        Pin::Auto if n > 0 && n < online => (
            allowed,
            format!("pinned: this process has {n} of the {online} CPUs to itself"),
        ),
        Pin::Auto => (
            Vec::new(),
            format!("not pinned: the {online} CPUs are shared with the rest of the machine"),
        ),
    }
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
    wakers: Arc<Vec<UnixStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// How the rings were set up, for the start-up line.
    pub detail: String,
    /// How long [`Uring::shutdown`] announces before it stops the workers.
    drain_delay: std::time::Duration,
}

/// Backlog of each listening socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

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
/// socket is bound once and shared: every worker accepts on a duplicate of its descriptor;
/// so is a passed socket (which is never bound, and whose file is never removed).
pub fn bind_listeners(
    addrs: &[SocketAddr],
    unix_paths: &[PathBuf],
    passed: &[listen::PassedSocket],
    workers: usize,
    defer_accept: u32,
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
        let first =
            crate::sys::net::reuseport_listener(addr, BACKLOG, defer_accept).map_err(fail)?;
        let actual = first.local_addr().map_err(fail)?;
        bound.tcp.push(actual);
        let label = actual.to_string();
        let mut next = Some(first);
        for list in &mut bound.per_worker {
            let listener = match next.take() {
                Some(l) => l,
                None => crate::sys::net::reuseport_listener(actual, BACKLOG, defer_accept)
                    .map_err(fail)?,
            };
            list.push(Listening {
                fd: listener.into(),
                unix: false,
                passed: false,
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
                passed: false,
                label: label.clone(),
            });
        }
        bound.unix.push(socket);
    }
    for socket in passed {
        let label = socket.describe();
        if let listen::PassedAddr::Tcp(addr) = socket.addr() {
            bound.tcp.push(*addr);
        }
        let fail = |e: io::Error| StartError::Passed(format!("{label}: {e}"));
        for list in &mut bound.per_worker {
            let fd = socket.duplicate().map_err(fail)?;
            // For the sweep after a drain's cancelled accept (`Worker::sweep`); the flag is
            // the shared description's, which the multishot accept does not mind.
            crate::sys::activation::set_nonblocking(std::os::fd::AsFd::as_fd(&fd), true)
                .map_err(fail)?;
            list.push(Listening {
                fd,
                unix: socket.is_unix(),
                passed: true,
                label: label.clone(),
            });
        }
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
        let (cores, pinned) = pinning(
            settings.pin,
            core_affinity::get_core_ids().unwrap_or_default(),
            crate::sys::cpu::online(),
        );
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
                        wakers: Arc::new(wakers),
                        workers: Mutex::new(handles),
                        detail: String::new(),
                        drain_delay: settings.policy.drain_delay,
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
                Ok((_, Ok(d))) => detail = format!("{pinned}, {d}"),
                Ok((index, Err(e))) => failure = Some(format!("worker {index}: {e}")),
                Err(_) => failure = Some("a worker thread ended during start-up".into()),
            }
        }
        let this = Uring {
            shared,
            wakers: Arc::new(wakers),
            workers: Mutex::new(handles),
            detail,
            drain_delay: settings.policy.drain_delay,
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

    /// Idempotent: announces for the drain delay, then stops every worker.
    pub fn shutdown(&self) {
        if !self.shared.shutdown.announce() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let wakers = Arc::clone(&self.wakers);
        lifecycle::after_delay(self.drain_delay, move || stop(&shared, &wakers));
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
    if !shared.shutdown.begin_drain() {
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
    fn auto_pins_only_a_process_with_cpus_of_its_own() {
        let ids = |n: usize| {
            (0..n)
                .map(|id| core_affinity::CoreId { id })
                .collect::<Vec<_>>()
        };
        let (cores, why) = pinning(Pin::Auto, ids(2), 2);
        assert!(cores.is_empty() && why.starts_with("not pinned"), "{why}");
        let (cores, why) = pinning(Pin::Auto, ids(1), 2);
        assert_eq!(cores.len(), 1, "{why}");
        assert!(why.starts_with("pinned"), "{why}");
        assert_eq!(pinning(Pin::On, ids(2), 2).0.len(), 2);
        assert!(pinning(Pin::On, Vec::new(), 2).0.is_empty());
        assert!(pinning(Pin::Off, ids(1), 2).0.is_empty());
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

/// For unit tests that need a real ring.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::OnceLock;

    /// A ring, or `None` after a `skipped: <why>` line when this machine cannot run io_uring.
    /// Where `RINGSERVE_REQUIRE_URING=1` (set by `scripts/test.sh` once its own probe found
    /// io_uring working) a missing io_uring fails the test instead of skipping it. The kernel
    /// is probed once per test binary.
    pub fn ring_or_skip(sq_entries: u32) -> Option<super::ring::Ring> {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        match PROBE.get_or_init(super::probe) {
            Ok(()) => Some(super::ring::Ring::new(sq_entries).expect("the probe passed")),
            Err(why) if std::env::var_os("RINGSERVE_REQUIRE_URING").is_some_and(|v| v == "1") => {
                panic!("io_uring is required here (RINGSERVE_REQUIRE_URING=1) but: {why}")
            }
            Err(why) => {
                eprintln!("skipped: io_uring unavailable: {why}");
                None
            }
        }
    }
}
