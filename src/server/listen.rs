//! Listening sockets: binding TCP addresses and Unix-domain socket paths, and the small
//! `Listener`/`Stream` enums the threaded driver accepts and serves through.
//!
//! Owns: the socket file of a Unix listener — its creation, permissions, stale-file
//! detection and removal. Must not: read or write a byte of HTTP.
//!
//! A Unix socket path:
//! 1. An existing file at the path is probed. A socket that accepts a connection belongs to a
//!    live server: refused, with a clear error. A socket that refuses (`ECONNREFUSED`) is stale
//!    (its server crashed) and is replaced. Anything that is not a socket is never deleted.
//! 2. The socket is bound under a temporary name in the same directory, given mode `0660`,
//!    then renamed over the path. The rename is atomic, so nobody can connect while the mode
//!    is still the umask's, and there is no moment without a socket at the path.
//!    `0660` and not `0666`: a process that can connect can bypass the proxy, and with
//!    `--trusted-proxy unix:` it could claim any client address; the proxy's user joins the
//!    server's group instead (`usermod -aG ringserve www-data`).
//! 3. [`SocketPath`] removes the file on shutdown (and on drop), but only while the file at the
//!    path is still the one it created: a new instance that already took the path over during
//!    a rolling restart keeps its socket.
//!
//! A socket passed by systemd (or an embedding program) is a [`PassedSocket`]: checked at
//! start, shared with whoever passed it, and never shut down, closed-and-rebound or unlinked
//! by this process (see its docs).
//!
//! For a driver that accepts on raw descriptors (the io_uring mode): [`UnixSocket`] owns the
//! listening `UnixListener` (blocking; `AsFd`/`AsRawFd`), and its path guard. One such socket
//! is shared by every worker: each arms its accept on the same descriptor.

use super::error::StartError;
use crate::http::Peer;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Mode of a Unix socket file: owner and group may connect (see the module docs).
pub const SOCKET_MODE: u32 = 0o660;

/// The listeners a server starts with.
#[derive(Debug, Default)]
pub struct Bound {
    pub tcp: Vec<TcpListener>,
    pub unix: Vec<UnixSocket>,
}

/// Binds every TCP address and Unix path; a failure leaves nothing behind (listeners bound so
/// far are closed and their socket files removed as `Bound` drops).
/// `defer_accept` is the listeners' `TCP_DEFER_ACCEPT` in seconds (0: off).
pub fn bind_all(
    tcp: &[SocketAddr],
    unix: &[PathBuf],
    defer_accept: u32,
) -> Result<Bound, StartError> {
    let mut bound = Bound::default();
    for &addr in tcp {
        let listener = bind_tcp(addr)?;
        crate::sys::net::set_defer_accept(listener.as_fd(), defer_accept)
            .map_err(|source| StartError::Bind { addr, source })?;
        bound.tcp.push(listener);
    }
    for path in unix {
        bound.unix.push(bind_unix(path)?);
    }
    Ok(bound)
}

/// Binds `addr` (std's bind: `SO_REUSEADDR`, no `SO_REUSEPORT`), waiting out a port that is
/// busy only because a previous instance is still going away ([`retry_busy`]).
pub fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, StartError> {
    retry_busy(|| TcpListener::bind(addr)).map_err(|source| StartError::Bind { addr, source })
}

/// How long a bind that fails with `EADDRINUSE` is retried. A killed io_uring server's
/// listening sockets stay open until the kernel has torn its rings down, which happens after
/// the process is gone, on a kernel worker: measured 5–11 ms on an idle machine (Linux 6.18,
/// SIGKILL with connections open), so half of all immediate restarts failed. Two seconds is
/// ~200 times that, room for a loaded machine; a port held by a live process is still
/// reported, 2 s later (nginx waits 2.5 s: five tries 500 ms apart).
pub const BIND_RETRY_FOR: Duration = Duration::from_secs(2);

/// Pause between two tries: short against the typical teardown, and at most 80 tries in all.
const BIND_RETRY_EVERY: Duration = Duration::from_millis(25);

/// Runs `bind` until it succeeds, fails with anything but `AddrInUse`, or
/// [`BIND_RETRY_FOR`] has passed (then the last `AddrInUse` is returned).
pub fn retry_busy<T>(mut bind: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = std::time::Instant::now() + BIND_RETRY_FOR;
    loop {
        match bind() {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && std::time::Instant::now() + BIND_RETRY_EVERY < deadline =>
            {
                std::thread::sleep(BIND_RETRY_EVERY);
            }
            result => return result,
        }
    }
}

/// A listening Unix-domain socket and the guard that removes its file.
#[derive(Debug)]
pub struct UnixSocket {
    // Field order: the listener closes before the file is removed.
    listener: UnixListener,
    path: SocketPath,
}

impl UnixSocket {
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    pub fn path(&self) -> &SocketPath {
        &self.path
    }
}

impl AsFd for UnixSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl AsRawFd for UnixSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

/// The socket file of a [`UnixSocket`], removed once (by [`SocketPath::remove`] or on drop) if
/// it is still the file this process created.
#[derive(Debug)]
pub struct SocketPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
    removed: AtomicBool,
}

impl SocketPath {
    pub fn as_path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file unless it was removed already or replaced by someone else.
    /// Connections already accepted are unaffected; new connects fail with `ENOENT`.
    pub fn remove(&self) {
        if self.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        self.remove();
    }
}

fn unix_error(path: &Path, source: io::Error) -> StartError {
    StartError::BindUnix {
        path: path.to_path_buf(),
        source,
    }
}

/// Binds a Unix socket at `path` as the module docs describe.
pub fn bind_unix(path: &Path) -> Result<UnixSocket, StartError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(unix_error(
                    path,
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another process is listening on it",
                    ),
                ));
            }
            // Nobody listens: a stale socket from a crashed server, replaced below.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(unix_error(path, e)),
        },
        Ok(_) => {
            return Err(unix_error(
                path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(unix_error(path, e)),
    }
    let temp = temp_name(path);
    // A leftover from a crash of a process that had our pid; never a live socket of ours.
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(|e| unix_error(path, e))?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(SOCKET_MODE))
        .and_then(|()| std::fs::rename(&temp, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    match placed {
        Ok(meta) => Ok(UnixSocket {
            listener,
            path: SocketPath {
                path: path.to_path_buf(),
                dev: meta.dev(),
                ino: meta.ino(),
                removed: AtomicBool::new(false),
            },
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(unix_error(path, e))
        }
    }
}

/// `dir/.name.PID.tmp`: in the same directory (so the rename is atomic), unique per process.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "sock".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A listening socket this process did not bind: passed by systemd's socket activation
/// ([`systemd_sockets`]) or handed over by an embedding program ([`PassedSocket::from_fd`]).
///
/// A passed socket is shared, not owned: the service manager keeps it open across restarts
/// and connections wait in its backlog while no instance runs. So a server never
/// `shutdown(2)`s it (that would reset the queued connections and end the socket for the next
/// instance too), never removes a Unix socket's file, and stops accepting only by no longer
/// asking for connections. Every uring worker accepts on its own duplicate of the descriptor,
/// as with a Unix socket the server bound itself.
#[derive(Clone, Debug)]
pub struct PassedSocket {
    fd: Arc<OwnedFd>,
    addr: PassedAddr,
    name: Option<String>,
}

/// Where a [`PassedSocket`] listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassedAddr {
    Tcp(SocketAddr),
    /// A Unix-domain socket; `None` for an abstract or unnamed one.
    Unix(Option<PathBuf>),
}

impl PassedSocket {
    /// Checks that `fd` is a listening stream socket (TCP over IPv4 or IPv6, or Unix-domain)
    /// and takes it.
    pub fn from_fd(fd: OwnedFd) -> Result<PassedSocket, StartError> {
        Self::checked(fd, None)
    }

    fn checked(fd: OwnedFd, name: Option<String>) -> Result<PassedSocket, StartError> {
        let number = fd.as_raw_fd();
        let bad = |why: String| StartError::Passed(format!("descriptor {number}: {why}"));
        let kind = crate::sys::activation::socket_kind(fd.as_fd()).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTSOCK) {
                bad("not a socket".into())
            } else {
                bad(e.to_string())
            }
        })?;
        if kind.kind != libc::SOCK_STREAM {
            return Err(bad(
                "not a stream socket (use ListenStream=, not ListenDatagram=)".into(),
            ));
        }
        if !kind.listening {
            return Err(bad("not a listening socket (set Accept=no)".into()));
        }
        let dup = fd.try_clone().map_err(|e| bad(e.to_string()))?;
        let addr = match kind.family {
            libc::AF_INET | libc::AF_INET6 => PassedAddr::Tcp({
                crate::sys::activation::set_nodelay(fd.as_fd()).map_err(|e| bad(e.to_string()))?;
                TcpListener::from(dup)
                    .local_addr()
                    .map_err(|e| bad(e.to_string()))?
            }),
            libc::AF_UNIX => PassedAddr::Unix(
                UnixListener::from(dup)
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf)),
            ),
            other => {
                return Err(bad(format!(
                    "address family {other} is not IPv4, IPv6 or Unix"
                )));
            }
        };
        Ok(PassedSocket {
            fd: Arc::new(fd),
            addr,
            name,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> &PassedAddr {
        &self.addr
    }

    /// Its name from `LISTEN_FDNAMES` (systemd's `FileDescriptorName=`), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `127.0.0.1:8080` or `unix:/run/ringserve.sock`, for messages.
    pub fn describe(&self) -> String {
        match &self.addr {
            PassedAddr::Tcp(a) => a.to_string(),
            PassedAddr::Unix(Some(p)) => format!("unix:{}", p.display()),
            PassedAddr::Unix(None) => "unix:(unnamed)".into(),
        }
    }

    pub(crate) fn is_unix(&self) -> bool {
        matches!(self.addr, PassedAddr::Unix(_))
    }

    /// A new descriptor for the same socket (close-on-exec), for one worker or acceptor.
    pub(crate) fn duplicate(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

/// The listening sockets systemd passed to this process (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`, as `sd_listen_fds(3)` defines them), checked like
/// [`PassedSocket::from_fd`]; empty when none were passed to this process. Succeeds once
/// per process: the descriptors are taken (and made close-on-exec) by the first call.
pub fn systemd_sockets() -> Result<Vec<PassedSocket>, StartError> {
    let passed = crate::sys::activation::take_passed()
        .map_err(|e| StartError::Passed(format!("{e} (LISTEN_FDS)")))?;
    passed
        .into_iter()
        .map(|(fd, name)| PassedSocket::checked(fd, name))
        .collect()
}

/// A passed socket as the threaded driver accepts on it: non-blocking, with a wake-up pair
/// so that [`Listener::stop`] can end a waiting `accept` without touching the shared socket.
#[derive(Debug)]
pub struct PassedListener {
    socket: PassedSocket,
    listener: PassedKind,
    /// `stop` writes a byte to the first; `accept` waits on the listener and the second.
    wake: (UnixStream, UnixStream),
}

#[derive(Debug)]
enum PassedKind {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl PassedListener {
    /// Sets the shared socket non-blocking (another instance waiting on it, or a connection a
    /// peer instance took first, must never leave an acceptor blocked where `stop` cannot
    /// reach it) and prepares the wake-up pair.
    pub fn new(socket: &PassedSocket) -> io::Result<PassedListener> {
        let fd = socket.duplicate()?;
        crate::sys::activation::set_nonblocking(fd.as_fd(), true)?;
        let listener = if socket.is_unix() {
            PassedKind::Unix(UnixListener::from(fd))
        } else {
            PassedKind::Tcp(TcpListener::from(fd))
        };
        Ok(PassedListener {
            socket: socket.clone(),
            listener,
            wake: UnixStream::pair()?,
        })
    }

    fn raw(&self) -> BorrowedFd<'_> {
        match &self.listener {
            PassedKind::Tcp(l) => l.as_fd(),
            PassedKind::Unix(l) => l.as_fd(),
        }
    }

    fn accept(&self) -> io::Result<(Stream, Peer)> {
        use crate::sys::activation::{Ready, wait_readable};
        loop {
            if wait_readable(self.raw(), self.wake.1.as_fd())? == Ready::Second {
                return Err(io::Error::other("stopped"));
            }
            let accepted = match &self.listener {
                PassedKind::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Peer::from(a))),
                PassedKind::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), Peer::Unix)),
            };
            match accepted {
                // Another instance (or acceptor) took it first.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Blocking, as connection threads want it: on Linux an accepted socket does
                // not inherit the listener's O_NONBLOCK.
                result => return result,
            }
        }
    }
}

/// A listener of either kind, for the threaded driver.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
    Passed(PassedListener),
}

impl Listener {
    /// Blocks for the next connection.
    pub fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Peer::from(a))),
            Listener::Unix(u) => u
                .listener()
                .accept()
                .map(|(s, _)| (Stream::Unix(s), Peer::Unix)),
            Listener::Passed(p) => p.accept(),
        }
    }

    /// Wakes a thread blocked in [`Listener::accept`] for good: `shutdown(2)` makes a blocked
    /// `accept` fail on TCP and Unix listeners alike. A Unix listener's file is removed too,
    /// so a replacement instance can bind the path while this one drains.
    ///
    /// A passed socket is left as it is (see [`PassedSocket`]): a byte on the wake-up pair
    /// ends the wait instead, and connections still queued stay for the next instance.
    pub fn stop(&self) {
        match self {
            Listener::Passed(p) => {
                let _ = (&p.wake.0).write(&[1]);
            }
            Listener::Tcp(_) | Listener::Unix(_) => {
                crate::sys::net::shutdown_raw(self.as_raw_fd(), crate::sys::net::Direction::Both);
            }
        }
        if let Listener::Unix(u) = self {
            u.path().remove();
        }
    }

    /// `127.0.0.1:8080` or `unix:/path`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string()),
            Listener::Unix(u) => format!("unix:{}", u.path.as_path().display()),
            Listener::Passed(p) => p.socket.describe(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(u) => u.as_raw_fd(),
            Listener::Passed(p) => p.raw().as_raw_fd(),
        }
    }
}

/// A connected socket of either kind; the methods are the std ones of both.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

impl From<Stream> for std::os::fd::OwnedFd {
    fn from(s: Stream) -> Self {
        match s {
            Stream::Tcp(s) => s.into(),
            Stream::Unix(s) => s.into(),
        }
    }
}

impl Stream {
    /// `TCP_NODELAY` on TCP; Unix sockets have no Nagle delay to turn off.
    pub fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(true),
            Stream::Unix(_) => Ok(()),
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl std::os::fd::IntoRawFd for Stream {
    fn into_raw_fd(self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.into_raw_fd(),
            Stream::Unix(s) => s.into_raw_fd(),
        }
    }
}

impl Stream {
    /// Who is on the other end, for the access log: an IP address, or a Unix-socket peer.
    pub fn peer(&self) -> Option<Peer> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(Peer::from),
            Stream::Unix(_) => Some(Peer::Unix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_busy_port_is_retried_until_it_is_free_and_reported_if_it_stays_busy() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(BIND_RETRY_EVERY * 3);
            drop(held);
        });
        assert!(bind_tcp(addr).is_ok(), "the port freed meanwhile is bound");
        releaser.join().unwrap();

        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = bind_tcp(held.local_addr().unwrap()).unwrap_err();
        assert!(
            matches!(&err, StartError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse),
            "{err}"
        );
        // Other errors are not retried: one call.
        let mut calls = 0;
        let r: io::Result<()> = retry_busy(|| {
            calls += 1;
            Err(io::ErrorKind::PermissionDenied.into())
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_unix_socket_is_created_0660_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let sock = bind_unix(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, SOCKET_MODE);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        let mut client = UnixStream::connect(&path).unwrap();
        let (mut served, _) = sock.listener().accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        served.read_exact(&mut b).unwrap();
        drop(sock);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // A crashed server leaves its socket file behind: bound, then closed without unlink.
        drop(UnixListener::bind(&path).unwrap());
        let live = bind_unix(&path).unwrap();
        let err = bind_unix(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot listen on unix:{}: another process is listening on it",
                path.display()
            )
        );
        assert!(
            path.exists(),
            "the refused attempt left the live socket alone"
        );
        drop(live);
    }

    #[test]
    fn a_regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"precious").unwrap();
        let err = bind_unix(&path).unwrap_err().to_string();
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn a_socket_taken_over_by_another_instance_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let old = bind_unix(&path).unwrap();
        // The old instance stops (its file goes), a new one binds the path, then the old
        // instance's guard drops: the new socket must survive.
        old.path().remove();
        let new = bind_unix(&path).unwrap();
        drop(old);
        assert!(UnixStream::connect(&path).is_ok());
        drop(new);
    }

    #[test]
    fn a_passed_socket_reports_where_it_listens_and_stop_leaves_it_listening() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let passed = PassedSocket::from_fd(OwnedFd::from(tcp.try_clone().unwrap())).unwrap();
        assert_eq!(passed.addr(), &PassedAddr::Tcp(addr));
        assert_eq!(passed.describe(), addr.to_string());
        let listener = std::sync::Arc::new(Listener::Passed(PassedListener::new(&passed).unwrap()));
        let l2 = std::sync::Arc::clone(&listener);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(l2.accept().is_err());
        });
        listener.stop();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        // Not shut down: a connection still queues on the socket, for the next instance.
        let _client = TcpStream::connect(addr).unwrap();
        tcp.set_nonblocking(false).unwrap();
        assert!(tcp.accept().is_ok());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let unix = UnixListener::bind(&path).unwrap();
        let passed = PassedSocket::from_fd(OwnedFd::from(unix)).unwrap();
        assert_eq!(passed.addr(), &PassedAddr::Unix(Some(path.clone())));
        let listener = Listener::Passed(PassedListener::new(&passed).unwrap());
        listener.stop();
        drop(listener);
        drop(passed);
        assert!(path.exists(), "a passed socket's file is never removed");
    }

    #[test]
    fn stop_wakes_a_blocked_unix_accept() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::sync::Arc::new(Listener::Unix(
            bind_unix(&dir.path().join("s.sock")).unwrap(),
        ));
        let l2 = std::sync::Arc::clone(&listener);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(l2.accept().is_err());
        });
        std::thread::sleep(Duration::from_millis(50));
        listener.stop();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        assert!(!dir.path().join("s.sock").exists());
    }
}
