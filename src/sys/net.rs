//! Socket system calls std does not offer: `send` with flags, `sendfile`, `shutdown` by raw
//! descriptor (for waking blocked threads at shutdown).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Whether more data follows immediately (lets the kernel merge a head with the file bytes
/// that follow it into full segments: `MSG_MORE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    Yes,
    No,
}

/// Sends all of `buf` on a blocking socket. Never raises SIGPIPE (`MSG_NOSIGNAL`): a peer
/// that went away is an `EPIPE` error like any other.
pub fn send_all(sock: BorrowedFd<'_>, mut buf: &[u8], more: More) -> io::Result<()> {
    let flags = libc::MSG_NOSIGNAL | if more == More::Yes { libc::MSG_MORE } else { 0 };
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice for the duration of the call and `sock` is a borrowed,
        // open descriptor; send only reads `buf.len()` bytes from it.
        let n = unsafe { libc::send(sock.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags) };
        match usize::try_from(n) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(sent) => buf = buf.get(sent..).unwrap_or_default(),
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Sends up to `len` bytes of `file` from `*offset` on the non-blocking socket `sock` with one
/// `sendfile(2)` call, advancing `*offset`. `Ok(0)` means the file ended early; a full socket
/// buffer is a `WouldBlock` error (the caller waits for `POLLOUT` and calls again).
pub fn sendfile_some(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    len: u64,
) -> io::Result<u64> {
    // Linux transfers at most 0x7ffff000 bytes per call.
    const MAX_CHUNK: u64 = 0x7fff_f000;
    let mut off = i64::try_from(*offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let chunk = usize::try_from(len.min(MAX_CHUNK)).unwrap_or(usize::MAX);
    // SAFETY: both descriptors are borrowed and open for the call; `off` is a live local the
    // kernel updates in place.
    let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, chunk) };
    match u64::try_from(n) {
        Ok(sent) => {
            *offset += sent;
            Ok(sent)
        }
        Err(_) => Err(io::Error::last_os_error()),
    }
}

/// Sends `range` of `file` on the *non-blocking* socket `sock`, waiting for room with `poll`
/// for at most `stall` each time the socket is full: a client that stops reading for that long
/// gets `TimedOut`. (A blocking `sendfile` does not honour `SO_SNDTIMEO`: measured on Linux
/// 6.18, one call sat 3 s on a full socket with a 1 s send timeout.)
pub fn sendfile_all_within(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    range: Range<u64>,
    stall: std::time::Duration,
) -> io::Result<()> {
    let mut offset = range.start;
    let timeout = i32::try_from(stall.as_millis()).unwrap_or(i32::MAX).max(1);
    while offset < range.end {
        let left = range.end - offset;
        match sendfile_some(sock, file, &mut offset, left) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: `pfd` is one live pollfd for the duration of the call.
                let ready = unsafe { libc::poll(&mut pfd, 1, timeout) };
                match ready {
                    0 => return Err(io::ErrorKind::TimedOut.into()),
                    n if n > 0 => {}
                    _ => {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A TCP listener with `SO_REUSEPORT` (and `SO_REUSEADDR`, `TCP_NODELAY`, close-on-exec,
/// `TCP_DEFER_ACCEPT` of `defer_accept` seconds: [`set_defer_accept`]),
/// so that each io_uring worker can own a listener on the same address and the kernel spreads
/// connections among them. Accepted sockets inherit `TCP_NODELAY`, which saves a system call
/// per connection.
pub fn reuseport_listener(
    addr: SocketAddr,
    backlog: i32,
    defer_accept: u32,
) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket takes no pointers; a non-negative result is a new descriptor we own.
    let raw = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    for (level, name) in [
        (libc::SOL_SOCKET, libc::SO_REUSEADDR),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY),
    ] {
        set_int_option(fd.as_fd(), level, name, 1)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the duration of the call.
    if unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    set_defer_accept(fd.as_fd(), defer_accept)?;
    // SAFETY: listen takes no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

/// Sets `TCP_DEFER_ACCEPT` on a TCP listener: the kernel completes the handshake but hands
/// the connection over only once its first bytes have arrived, or after about `secs` seconds
/// (rounded up to the SYN-ACK retransmissions: after 1, 3, 7… s) if none do. The
/// accept and the first receive then complete together. 0 hands every connection over at once.
pub fn set_defer_accept(fd: BorrowedFd<'_>, secs: u32) -> io::Result<()> {
    let secs = libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX);
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, secs)
}

/// `setsockopt(2)` of an `int`-valued option.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives for the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Which directions [`shutdown_raw`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Blocked and future reads return end-of-file (wakes a thread waiting for a request).
    Read,
    /// Both directions; on a listening socket this wakes a thread blocked in `accept`.
    Both,
}

/// `shutdown(2)` on a raw descriptor. The caller guarantees `fd` is open and still refers to
/// the socket it means (the registry in `server::threaded` removes a descriptor under its lock
/// before the socket is closed). Errors (e.g. ENOTCONN) are ignored: the goal is only to wake.
pub fn shutdown_raw(fd: RawFd, how: Direction) {
    let how = match how {
        Direction::Read => libc::SHUT_RD,
        Direction::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers; per the contract above `fd` is an open socket, and
    // on any other descriptor the call fails harmlessly with ENOTSOCK/EBADF.
    unsafe {
        libc::shutdown(fd, how);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    }

    #[test]
    fn send_all_and_sendfile_deliver_exact_bytes() {
        let (server, mut client) = pair();
        let mut file = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&content).unwrap();
        send_all(server.as_fd(), b"head:", More::Yes).unwrap();
        server.set_nonblocking(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        let stall = std::time::Duration::from_secs(5);
        sendfile_all_within(server.as_fd(), file.as_fd(), 10..90_010, stall).unwrap();
        drop(server);
        let got = reader.join().unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(&got[5..], &content[10..90_010]);
    }

    #[test]
    fn sendfile_past_the_end_is_an_error() {
        let (server, _client) = pair();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"short").unwrap();
        server.set_nonblocking(true).unwrap();
        let stall = std::time::Duration::from_secs(5);
        let err = sendfile_all_within(server.as_fd(), file.as_fd(), 0..10, stall).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_reader_that_stops_makes_sendfile_time_out() {
        let (server, _client) = pair();
        server.set_nonblocking(true).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 32 << 20]).unwrap();
        let stall = std::time::Duration::from_millis(200);
        let err =
            sendfile_all_within(server.as_fd(), file.as_fd(), 0..32 << 20, stall).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn reuseport_listeners_share_a_port() {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap(), 16, 0).unwrap();
        let addr = first.local_addr().unwrap();
        let second = reuseport_listener(addr, 16, 0).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        // A plain listener cannot join them.
        assert!(TcpListener::bind(addr).is_err());
        let v6 = reuseport_listener("[::1]:0".parse().unwrap(), 16, 0);
        if let Ok(v6) = v6 {
            assert!(v6.local_addr().unwrap().is_ipv6());
        }
    }

    #[test]
    fn sendfile_some_reports_a_full_socket_as_would_block() {
        let (server, _client) = pair();
        server.set_nonblocking(true).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 8 << 20]).unwrap();
        let mut offset = 0;
        let err = loop {
            match sendfile_some(server.as_fd(), file.as_fd(), &mut offset, 8 << 20) {
                Ok(0) => panic!("file ended early at {offset}"),
                Ok(_) => assert!(offset < 8 << 20, "an unread 8 MiB fit in the socket"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(offset > 0);
    }

    #[test]
    fn shutdown_read_wakes_a_blocked_reader() {
        let (server, _client) = pair();
        let fd = server.as_raw_fd();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            (&server).read(&mut buf).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        shutdown_raw(fd, Direction::Read);
        assert_eq!(reader.join().unwrap(), 0);
    }
}
