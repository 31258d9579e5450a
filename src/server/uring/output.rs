//! One connection's output queue: the chunks of its responses in order (in-memory bytes,
//! cached bodies shared with the file cache, file ranges), what the next send takes from them,
//! and how a completion advances them.
//!
//! While an operation is in flight, the front [`Output::in_flight`] chunks are the kernel's:
//! they are neither changed nor dropped until its completion. Appending never writes into a
//! chunk in flight; it opens a new one. The partial-send arithmetic is [`cursor`]'s.

use super::cursor::{self, Overrun, Pending, SendBuf};
use crate::server::listen::Stream;
use crate::server::lower;
use crate::sys::net;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsFd;
use std::rc::Rc;

/// Up to this many chunks leave in one `sendmsg` (a head and a cached body, for a few
/// pipelined responses).
const GATHER_MAX: usize = 8;

/// Cached bodies at least this large are sent from the cache's memory rather than copied
/// into the send buffer (below it a copy is cheaper than another iovec).
const SHARE_FROM: u64 = 2048;

/// Send buffers kept for reuse, and the largest capacity worth keeping.
const POOL_MAX: usize = 256;
const POOL_BUFFER_MAX: usize = 4 * crate::server::policy::FLUSH_AT;

/// A worker's spare send buffers.
#[derive(Debug, Default)]
pub struct Pool {
    spare: Vec<Vec<u8>>,
}

impl Pool {
    fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn give_back(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < POOL_MAX && buf.capacity() <= POOL_BUFFER_MAX {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

/// How file bodies larger than the in-memory threshold are sent. `Sendfile` is the default;
/// `ReadSend` exists to measure against it (`RINGSERVE_LARGE_FILES=read-send`, see
/// benches/results/HISTORY.md for the numbers).
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

/// A piece of output, in order.
enum Chunk {
    Mem(SendBuf),
    /// A cached body (or part of one) sent straight from the cache's memory.
    Shared(SharedSend),
    /// A file range sent with `sendfile(2)`.
    File(FileSend),
}

struct SharedSend {
    bytes: Rc<[u8]>,
    /// Next byte to send and the end, as offsets into `bytes`.
    next: usize,
    end: usize,
}

struct FileSend {
    /// Shared by the parts of a `multipart/byteranges` body.
    file: Rc<File>,
    offset: u64,
    end: u64,
}

impl Pending for Chunk {
    /// The bytes a send would take from this chunk now (none for a file).
    fn pending(&self) -> &[u8] {
        match self {
            Chunk::Mem(b) => b.pending(),
            Chunk::Shared(s) => &s.bytes[s.next..s.end],
            Chunk::File(_) => &[],
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Mem(b) => {
                let _ = b.advance(n);
            }
            Chunk::Shared(s) => s.next = (s.next + n).min(s.end),
            Chunk::File(_) => {}
        }
    }
}

/// The `sendmsg` arguments of a gathered send. Boxed so its address is stable while the
/// kernel reads it; the iovecs point into the front chunks of the queue.
struct Gather {
    msg: libc::msghdr,
    iov: [libc::iovec; GATHER_MAX],
}

/// What to do next to move the queue along.
pub enum Next<'a> {
    /// Everything is sent.
    Drained,
    /// Send these bytes (the front chunk), with these `send` flags.
    Send { bytes: &'a [u8], flags: i32 },
    /// Send the front chunks gathered: `msg` stays valid until [`Output::sent`].
    Gather {
        msg: *const libc::msghdr,
        flags: i32,
    },
    /// A file body filled the socket buffer: wait until it is writable, then ask again.
    WaitWritable,
}

#[derive(Default)]
pub struct Output {
    chunks: VecDeque<Chunk>,
    /// In-memory bytes queued.
    queued: usize,
    /// Front chunks an operation in flight is using; 0 when none is.
    in_flight: usize,
    gather: Option<Box<Gather>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("chunks", &self.chunks.len())
            .field("queued", &self.queued)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// In-memory bytes waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// An operation (a send, or the poll of a file send) is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight > 0
    }

    /// The front chunk is a file: what is in flight is a poll, not a send.
    pub fn front_is_file(&self) -> bool {
        matches!(self.chunks.front(), Some(Chunk::File(_)))
    }

    pub fn has_file(&self) -> bool {
        self.chunks.iter().any(|c| matches!(c, Chunk::File(_)))
    }

    /// Appends a response (head, then body) behind what is queued.
    pub fn append(&mut self, response: crate::http::Response, pool: &mut Pool) -> io::Result<()> {
        lower::lower(&response.head, response.body, &mut Tail { out: self, pool })
    }

    /// Decides the next step. File ranges at the front go out here with `sendfile(2)` on the
    /// non-blocking socket, which copies nothing in user space and returns at once; `moved`
    /// is set when it sent anything. A `Send` or `Gather` marks its chunks in flight until
    /// [`Output::sent`]; `WaitWritable` marks the file until [`Output::writable`].
    pub fn next(
        &mut self,
        stream: &Stream,
        large_files: LargeFiles,
        pool: &mut Pool,
        moved: &mut bool,
    ) -> io::Result<Next<'_>> {
        debug_assert_eq!(self.in_flight, 0, "next() with an operation in flight");
        loop {
            match self.chunks.front_mut() {
                None => return Ok(Next::Drained),
                Some(Chunk::Mem(buf)) if buf.is_empty() => {
                    if let Some(Chunk::Mem(buf)) = self.chunks.pop_front() {
                        pool.give_back(buf.into_inner());
                    }
                }
                Some(Chunk::Shared(s)) if s.next == s.end => {
                    self.chunks.pop_front();
                }
                Some(Chunk::Mem(_) | Chunk::Shared(_)) => return Ok(self.next_send()),
                Some(Chunk::File(f)) if large_files == LargeFiles::ReadSend => {
                    // The bytes become an in-memory chunk in front of the rest of the file.
                    let bytes = read_file_chunk(f)?;
                    if f.offset == f.end {
                        self.chunks.pop_front();
                    }
                    self.queued += bytes.len();
                    self.chunks.push_front(Chunk::Mem(SendBuf::new(bytes)));
                }
                Some(Chunk::File(f)) => {
                    let done = send_file_some(stream, f, moved)?;
                    if !done {
                        self.in_flight = 1;
                        return Ok(Next::WaitWritable);
                    }
                    self.chunks.pop_front();
                }
            }
        }
    }

    /// A send of the in-memory chunks up to the first file (at most [`GATHER_MAX`]).
    fn next_send(&mut self) -> Next<'_> {
        let count = self
            .chunks
            .iter()
            .take(GATHER_MAX)
            .take_while(|c| !matches!(c, Chunk::File(_)))
            .count();
        let more_follows = self.chunks.len() > count;
        let flags = libc::MSG_NOSIGNAL | if more_follows { libc::MSG_MORE } else { 0 };
        self.in_flight = count;
        if count == 1 {
            return Next::Send {
                bytes: self.chunks[0].pending(),
                flags,
            };
        }
        let gather = self.gather.get_or_insert_with(|| {
            Box::new(Gather {
                // SAFETY: msghdr is plain old data; all zeroes is a valid (empty) value.
                msg: unsafe { std::mem::zeroed() },
                iov: [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; GATHER_MAX],
            })
        });
        for (iov, chunk) in gather.iov.iter_mut().zip(self.chunks.iter()) {
            let bytes = chunk.pending();
            *iov = libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            };
        }
        gather.msg.msg_iov = gather.iov.as_mut_ptr();
        gather.msg.msg_iovlen = count;
        Next::Gather {
            msg: &raw const gather.msg,
            flags,
        }
    }

    /// Applies a send's completion of `n` bytes to the chunks it covered.
    pub fn sent(&mut self, n: usize, pool: &mut Pool) -> Result<(), Overrun> {
        let used = std::mem::take(&mut self.in_flight);
        cursor::consume(&mut self.chunks, used, n, |chunk| {
            if let Chunk::Mem(buf) = chunk {
                pool.give_back(buf.into_inner());
            }
        })?;
        self.queued = self.queued.saturating_sub(n);
        Ok(())
    }

    /// The operation in flight ended without sending (a failed send to retry, or the poll
    /// of a file send).
    pub fn writable(&mut self) {
        self.in_flight = 0;
    }

    /// Everything is sent: the count of queued bytes must agree.
    pub fn drained(&mut self) {
        debug_assert_eq!(self.queued, 0, "output drained, bytes still counted");
        self.queued = 0;
    }

    /// Drops what is queued (the connection closes), keeping the buffers. Only when nothing
    /// is in flight.
    pub fn release(self, pool: &mut Pool) {
        debug_assert_eq!(self.in_flight, 0, "released with an operation in flight");
        for chunk in self.chunks {
            if let Chunk::Mem(buf) = chunk {
                pool.give_back(buf.into_inner());
            }
        }
    }
}

/// Appending to the last in-memory chunk, never to one in flight.
struct Tail<'a> {
    out: &'a mut Output,
    pool: &'a mut Pool,
}

impl Tail<'_> {
    fn tail(&mut self) -> &mut SendBuf {
        let out = &mut *self.out;
        let writable = match out.chunks.back() {
            // Never a chunk an in-flight send is reading.
            Some(Chunk::Mem(_)) => out.chunks.len() > out.in_flight,
            _ => false,
        };
        if !writable {
            out.chunks
                .push_back(Chunk::Mem(SendBuf::new(self.pool.take())));
        }
        match out.chunks.back_mut() {
            Some(Chunk::Mem(buf)) => buf,
            _ => unreachable!("a memory chunk was just ensured"),
        }
    }
}

impl lower::Output for Tail<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tail().extend(bytes);
        self.out.queued += bytes.len();
        Ok(())
    }

    fn shared(&mut self, bytes: Rc<[u8]>, range: Range<u64>) -> io::Result<()> {
        if range.end - range.start < SHARE_FROM {
            return self.bytes(crate::http::serve::clamped_slice(&bytes, &range));
        }
        let end = usize::try_from(range.end)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let next = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
        self.out.queued += end - next;
        self.out
            .chunks
            .push_back(Chunk::Shared(SharedSend { bytes, next, end }));
        Ok(())
    }

    fn small_file(&mut self, file: &File, range: Range<u64>) -> io::Result<()> {
        let len = (range.end - range.start) as usize;
        lower::append_file_range(file, range, self.tail().vec_mut())?;
        self.out.queued += len;
        Ok(())
    }

    fn file(&mut self, file: Rc<File>, range: Range<u64>) -> io::Result<()> {
        self.out.chunks.push_back(Chunk::File(FileSend {
            file,
            offset: range.start,
            end: range.end,
        }));
        Ok(())
    }
}

/// `sendfile(2)` until the range is sent (`true`) or the socket is full (`false`: wait for
/// `POLLOUT`). A file that shrank under us ends the connection (`UnexpectedEof`).
fn send_file_some(stream: &Stream, f: &mut FileSend, moved: &mut bool) -> io::Result<bool> {
    while f.offset < f.end {
        let left = f.end - f.offset;
        match net::sendfile_some(stream.as_fd(), f.file.as_fd(), &mut f.offset, left) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => *moved = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The alternative measured against `sendfile`: read the next 256 KiB of the file into memory
/// and send it through the ring like any other bytes.
fn read_file_chunk(f: &mut FileSend) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 256 * 1024;
    let len = (f.end - f.offset).min(CHUNK) as usize;
    let mut buf = vec![0u8; len];
    f.file.read_exact_at(&mut buf, f.offset)?;
    f.offset += len as u64;
    Ok(buf)
}
