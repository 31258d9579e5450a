//! Socket system calls std does not offer: `send` with flags, `sendfile`, `shutdown` by raw
//! descriptor (for waking blocked threads at shutdown).

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

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

/// Sends `range` of `file` on the blocking socket `sock` with `sendfile(2)` (no user-space
/// copy). Fails with `UnexpectedEof` if the file shrank under us: the head already promised
/// the length, so the caller must close the connection.
pub fn sendfile_all(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    range: Range<u64>,
) -> io::Result<()> {
    // Linux transfers at most 0x7ffff000 bytes per call.
    const MAX_CHUNK: u64 = 0x7fff_f000;
    let mut offset = i64::try_from(range.start).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut left = range.end.saturating_sub(range.start);
    while left > 0 {
        let chunk = usize::try_from(left.min(MAX_CHUNK)).unwrap_or(usize::MAX);
        // SAFETY: both descriptors are borrowed and open for the call; `offset` is a live
        // local the kernel updates in place.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut offset, chunk) };
        match u64::try_from(n) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(sent) => left = left.saturating_sub(sent),
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
        sendfile_all(server.as_fd(), file.as_fd(), 10..90_010).unwrap();
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(&got[5..], &content[10..90_010]);
    }

    #[test]
    fn sendfile_past_the_end_is_an_error() {
        let (server, _client) = pair();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"short").unwrap();
        let err = sendfile_all(server.as_fd(), file.as_fd(), 0..10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
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
