//! The system calls of socket activation: taking the descriptors a service manager passed
//! (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, as systemd's `sd_listen_fds(3)` defines
//! them), and asking a descriptor what kind of socket it is.
//!
//! Owns: turning inherited descriptor numbers into `OwnedFd`s, once per process. Must not:
//! decide what a passed socket may be used for (the server's `listen` module does).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first passed descriptor: 0–2 are stdin, stdout and stderr (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// More passed sockets than this is a malformed environment, not a configuration: a
/// service with a thousand listening sockets does not exist, and the bound keeps a bad
/// `LISTEN_FDS` from making us claim every descriptor number.
const MAX_PASSED: usize = 1024;

/// Set by the first [`take_passed`] that finds variables meant for this process: the
/// descriptors are handed out once, so no two `OwnedFd`s ever own the same number.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the environment's passed sockets cannot be used.
#[derive(Debug)]
pub enum PassError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not a number (the variable's name, its value).
    Malformed(&'static str, String),
    /// `LISTEN_FDS` is larger than [`MAX_PASSED`].
    TooMany(usize),
    /// A descriptor `LISTEN_FDS` names is not open.
    NotOpen(RawFd),
    /// This process took its passed sockets already.
    AlreadyTaken,
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassError::Malformed(name, value) => write!(f, "{name}={value:?} is not a number"),
            PassError::TooMany(n) => write!(f, "LISTEN_FDS={n} is more than {MAX_PASSED}"),
            PassError::NotOpen(fd) => {
                write!(f, "descriptor {fd} named by LISTEN_FDS is not open")
            }
            PassError::AlreadyTaken => f.write_str("the passed sockets were taken already"),
        }
    }
}

/// The sockets the service manager passed to this process, each with its name from
/// `LISTEN_FDNAMES` (systemd's `FileDescriptorName=`), or an empty list when the variables
/// are absent or meant for another process (`LISTEN_PID` is not our pid: an ancestor's
/// variables that leaked into our environment). Each descriptor is made close-on-exec.
///
/// The variables are removed from the environment (so nothing this process starts sees
/// them), but only while this process has a single thread: removing an environment
/// variable while another thread may read the environment is undefined behaviour. With more
/// threads they stay, which is harmless: a child has another pid, so it ignores them.
pub fn take_passed() -> Result<Vec<(OwnedFd, Option<String>)>, PassError> {
    let Some(pid) = std::env::var_os("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    let pid = pid.to_string_lossy().into_owned();
    let ours = match pid.trim().parse::<u32>() {
        Ok(p) => p == std::process::id(),
        Err(_) => return Err(PassError::Malformed("LISTEN_PID", pid)),
    };
    if !ours {
        return Ok(Vec::new());
    }
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    let count = match count.trim().parse::<usize>() {
        Ok(n) if n > MAX_PASSED => return Err(PassError::TooMany(n)),
        Ok(n) => n,
        Err(_) => return Err(PassError::Malformed("LISTEN_FDS", count)),
    };
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Err(PassError::AlreadyTaken);
    }
    unset_if_single_threaded();
    let mut passed = Vec::with_capacity(count);
    for i in 0..count {
        // `i` is below MAX_PASSED, so the sum fits.
        let fd = LISTEN_FDS_START + i as RawFd;
        // SAFETY: F_GETFD takes no pointer; on a closed number it fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(PassError::NotOpen(fd));
        }
        // SAFETY: `fd` is open (F_GETFD succeeded) and, by the LISTEN_FDS protocol, was
        // handed to this process to own; `TAKEN` makes this the only place that ever wraps
        // it, and nothing else in this program names descriptors 3.. by number.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: F_SETFD with an integer argument; `fd` is open.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
        let name = names.get(i).filter(|n| !n.is_empty()).cloned();
        passed.push((owned, name));
    }
    Ok(passed)
}

/// Removes the three variables when this thread is the process's only one (see
/// [`take_passed`]).
fn unset_if_single_threaded() {
    let single = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.strip_prefix("Threads:").is_some_and(|n| n.trim() == "1"))
    });
    if !single {
        return;
    }
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: /proc says this process has one thread, the caller: no other thread
        // exists to read or write the environment during the call, and none can be started
        // before it returns.
        unsafe { std::env::remove_var(name) };
    }
}

/// What a descriptor is, as far as listening goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketKind {
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`, …
    pub family: i32,
    /// `SOCK_STREAM`, `SOCK_DGRAM`, …
    pub kind: i32,
    /// `listen(2)` was called on it.
    pub listening: bool,
}

/// Reads `SO_DOMAIN`, `SO_TYPE` and `SO_ACCEPTCONN`; fails with `ENOTSOCK` on a file that is
/// not a socket.
pub fn socket_kind(fd: BorrowedFd<'_>) -> io::Result<SocketKind> {
    let get = |name: libc::c_int| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` live for the call and `len` is `value`'s size.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(value)
        }
    };
    Ok(SocketKind {
        family: get(libc::SO_DOMAIN)?,
        kind: get(libc::SO_TYPE)?,
        listening: get(libc::SO_ACCEPTCONN)? != 0,
    })
}

/// Sets `TCP_NODELAY` on a listening TCP socket: the connections it accepts inherit it, which
/// the io_uring mode relies on (it sets nothing per connection).
pub fn set_nodelay(fd: BorrowedFd<'_>) -> io::Result<()> {
    super::net::set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// Sets or clears `O_NONBLOCK`. On a passed socket this changes the open file description
/// the service manager (and any other instance) shares.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with an integer argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes one connection waiting on the *non-blocking* listening socket `listener`, as a
/// non-blocking, close-on-exec socket; `WouldBlock` when none is waiting.
pub fn accept_now(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: null address pointers ask for no peer address; no other pointer is passed.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 just returned this new descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        // A connection the peer reset while it waited, or a signal: try the next one.
        if !matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR)) {
            return Err(e);
        }
    }
}

/// Which of two descriptors [`wait_readable`] found ready (the first wins a tie).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    First,
    Second,
}

/// Blocks until `first` or `second` is readable (for a listening socket: a connection is
/// waiting). `EINTR` is retried.
pub fn wait_readable(first: BorrowedFd<'_>, second: BorrowedFd<'_>) -> io::Result<Ready> {
    let mut fds = [
        libc::pollfd {
            fd: first.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: second.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is an array of two live pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            return Ok(Ready::First);
        }
        if fds[1].revents != 0 {
            return Ok(Ready::Second);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn socket_kind_tells_a_listener_from_a_connection_and_a_file() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let k = socket_kind(l.as_fd()).unwrap();
        assert_eq!(
            (k.family, k.kind, k.listening),
            (libc::AF_INET, libc::SOCK_STREAM, true)
        );
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(!socket_kind(c.as_fd()).unwrap().listening);
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(socket_kind(u.as_fd()).unwrap().kind, libc::SOCK_DGRAM);
        let f = tempfile::tempfile().unwrap();
        let e = socket_kind(f.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
    }

    #[test]
    fn wait_readable_says_which() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (c, d) = std::os::unix::net::UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &d, b"x").unwrap();
        assert_eq!(wait_readable(a.as_fd(), c.as_fd()).unwrap(), Ready::Second);
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        assert_eq!(wait_readable(a.as_fd(), c.as_fd()).unwrap(), Ready::First);
    }
}
