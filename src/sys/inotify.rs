//! inotify(7): the kernel's change notifications on directories and files, used by the file
//! cache to learn that what it holds is stale (see `fs::watch`).
//!
//! Owns: the four system calls (`inotify_init1`, `inotify_add_watch`, `inotify_rm_watch`, and a
//! non-blocking `read`) and the decoding of the event records `read` returns. Must not: decide
//! what an event means for the cache.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct inotify_event` without its name: `wd`, `mask`, `cookie`, `len` (4 bytes each).
const EVENT_HEAD: usize = 16;

/// One event as read from the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The watch it belongs to (-1 for `IN_Q_OVERFLOW`).
    pub wd: i32,
    pub mask: u32,
    /// The name of the directory entry concerned, for events on a watched directory's
    /// children; empty for events on the watched object itself.
    pub name: &'a [u8],
}

/// A new inotify instance: non-blocking (a read never waits), closed on exec.
pub fn init() -> io::Result<OwnedFd> {
    // SAFETY: no pointers are passed; the flags are valid for inotify_init1.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watches the object `fd` refers to (any descriptor, `O_PATH` included), through its
/// `/proc/self/fd` link: inotify has no `*at` form, and naming the open descriptor watches
/// exactly the inode that was opened rather than whatever a path names by now.
pub fn add_watch_fd(inotify: BorrowedFd<'_>, fd: BorrowedFd<'_>, mask: u32) -> io::Result<i32> {
    add_watch(inotify, &format!("/proc/self/fd/{}", fd.as_raw_fd()), mask)
}

/// Watches what `path` names now (following symlinks unless `mask` has `IN_DONT_FOLLOW`).
pub fn add_watch(inotify: BorrowedFd<'_>, path: &str, mask: u32) -> io::Result<i32> {
    let path = CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in path"))?;
    // SAFETY: `path` is a NUL-terminated string borrowed for this synchronous call.
    let wd = unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

/// Stops watch `wd` (an error means it was gone already, which is what the caller wanted).
pub fn rm_watch(inotify: BorrowedFd<'_>, wd: i32) {
    // SAFETY: no pointers are passed; an unknown `wd` only yields EINVAL.
    let _ = unsafe { libc::inotify_rm_watch(inotify.as_raw_fd(), wd) };
}

/// Reads queued events into `buf` without waiting: `Ok(0)` when the queue is empty.
pub fn read(inotify: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes for this synchronous
        // call; the kernel writes at most that many.
        let n = unsafe { libc::read(inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(0),
            Some(libc::EINTR) => {}
            _ => return Err(e),
        }
    }
}

/// A read buffer holds at least one event with the longest name (`NAME_MAX`, plus its NUL),
/// which is what the kernel needs to return anything at all (else EINVAL).
pub const MIN_BUFFER: usize = EVENT_HEAD + 256;

/// The events in `buf` (as filled by [`read`]); a truncated record ends the list.
pub fn events(buf: &[u8]) -> impl Iterator<Item = Event<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let word = |i: usize| -> Option<[u8; 4]> { rest.get(i..i + 4)?.try_into().ok() };
        let wd = i32::from_ne_bytes(word(0)?);
        let mask = u32::from_ne_bytes(word(4)?);
        let len = u32::from_ne_bytes(word(12)?) as usize;
        let name = rest.get(EVENT_HEAD..EVENT_HEAD + len)?;
        rest = &rest[EVENT_HEAD + len..];
        // The name is NUL-padded to an alignment boundary.
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(Event {
            wd,
            mask,
            name: &name[..end],
        })
    })
}

/// Encodes one event the way the kernel does (for tests of the code that reads them).
#[cfg(test)]
pub fn encode(wd: i32, mask: u32, name: &[u8], out: &mut Vec<u8>) {
    let padded = if name.is_empty() {
        0
    } else {
        (name.len() + 1).next_multiple_of(EVENT_HEAD)
    };
    out.extend_from_slice(&wd.to_ne_bytes());
    out.extend_from_slice(&mask.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&(padded as u32).to_ne_bytes());
    out.extend_from_slice(name);
    out.resize(out.len() + padded - name.len(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn encoded_events_decode_back() {
        let mut buf = Vec::new();
        encode(3, libc::IN_MODIFY, b"a.txt", &mut buf);
        encode(-1, libc::IN_Q_OVERFLOW, b"", &mut buf);
        encode(7, libc::IN_MOVED_TO, b"sixteen-bytes-xx", &mut buf);
        let got: Vec<_> = events(&buf).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].wd, got[0].mask, got[0].name),
            (3, libc::IN_MODIFY, &b"a.txt"[..])
        );
        assert_eq!((got[1].wd, got[1].name), (-1, &b""[..]));
        assert_eq!(got[2].name, b"sixteen-bytes-xx");
        // A truncated record is not decoded.
        assert_eq!(events(&buf[..buf.len() - 1]).count(), 2);
    }

    #[test]
    fn a_rename_in_a_watched_directory_is_queued_before_rename_returns() {
        let dir = tempfile::tempdir().unwrap();
        let fd = init().unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let wd = add_watch_fd(fd.as_fd(), d.as_fd(), libc::IN_MOVED_TO).unwrap();
        let mut buf = vec![0u8; 4096];
        assert_eq!(read(fd.as_fd(), &mut buf).unwrap(), 0);
        std::fs::write(dir.path().join("new"), b"x").unwrap();
        std::fs::rename(dir.path().join("new"), dir.path().join("a.txt")).unwrap();
        let n = read(fd.as_fd(), &mut buf).unwrap();
        let got: Vec<_> = events(&buf[..n]).collect();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].wd, got[0].name), (wd, &b"a.txt"[..]));
    }
}
