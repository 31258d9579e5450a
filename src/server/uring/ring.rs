//! One worker's io_uring: set-up with the cheapest flags the kernel accepts, the only code
//! that pushes submissions, the backlog for a full submission queue, and the wait.
//!
//! Fencing: an operation that hands the kernel a pointer (a send, a gathered send, a receive
//! into provided buffers) is pushed through an `unsafe fn` whose `# Safety` section states
//! who must keep the memory alive, so each caller writes its own `// SAFETY:` argument.
//! Operations that carry no pointer (accept, poll, cancel, close) have safe methods.

use super::token::{Kind, Token};
use io_uring::{IoUring, opcode, squeue, types};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Submission queue entries; a full queue is flushed with a submit and pushing resumes.
pub const SQ_ENTRIES: u32 = 512;
/// Completion queue entries: room for a burst of multishot completions between loop turns
/// (the kernel keeps overflow entries aside without dropping them, `FEAT_NODROP`).
const CQ_ENTRIES: u32 = 8192;

/// A completion as the worker handles it: `user_data`, result, flags.
pub type Completion = (u64, i32, u32);

pub struct Ring {
    ring: IoUring,
    /// Entries that found the submission queue full even after a submit; they go first at
    /// the next turn, in order.
    backlog: VecDeque<squeue::Entry>,
    /// Completions taken since start.
    completions: u64,
    /// The set-up flags the kernel accepted, for the start-up line.
    flags: &'static str,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("flags", &self.flags)
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

/// An attempt's flags as the start-up line names them, with and without `NO_SQARRAY`.
struct Named {
    with_no_sqarray: &'static str,
    plain: &'static str,
}

impl Ring {
    /// A ring with the cheapest flags this kernel accepts: `SINGLE_ISSUER | DEFER_TASKRUN`
    /// (completions are processed only when this thread enters the kernel, with no interrupts
    /// of the running loop), else `SINGLE_ISSUER`, else none. Must be called on the thread
    /// that will use it (`SINGLE_ISSUER`).
    pub fn new(sq_entries: u32) -> io::Result<Ring> {
        type Configure = fn(&mut io_uring::Builder);
        let attempts: [(Named, Configure); 3] = [
            // TASKRUN_FLAG (5.19, older than DEFER_TASKRUN): the worker reads it to know
            // whether task work is still pending after a batch (see `fs::cache`, "Ordering").
            (
                Named {
                    with_no_sqarray: "SINGLE_ISSUER|DEFER_TASKRUN|NO_SQARRAY",
                    plain: "SINGLE_ISSUER|DEFER_TASKRUN",
                },
                |b| {
                    b.setup_single_issuer()
                        .setup_defer_taskrun()
                        .setup_taskrun_flag();
                },
            ),
            (
                Named {
                    with_no_sqarray: "SINGLE_ISSUER|NO_SQARRAY",
                    plain: "SINGLE_ISSUER",
                },
                |b| {
                    b.setup_single_issuer();
                },
            ),
            (
                Named {
                    with_no_sqarray: "NO_SQARRAY",
                    plain: "no setup flags",
                },
                |_| {},
            ),
        ];
        let mut last = None;
        // NO_SQARRAY (6.6): the kernel reads submissions straight from the entry array,
        // without the index array in between; each attempt is tried with it first.
        for (flags, configure) in attempts {
            for no_sqarray in [true, false] {
                let mut b = IoUring::builder();
                b.setup_cqsize(CQ_ENTRIES).setup_submit_all();
                if no_sqarray {
                    b.setup_no_sqarray();
                }
                configure(&mut b);
                match b.build(sq_entries) {
                    Ok(ring) => {
                        return Ok(Ring {
                            ring,
                            backlog: VecDeque::new(),
                            completions: 0,
                            flags: if no_sqarray {
                                flags.with_no_sqarray
                            } else {
                                flags.plain
                            },
                        });
                    }
                    // EINVAL: a flag this kernel does not know; anything else will not get
                    // better.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no io_uring setup worked")))
    }

    pub fn flags(&self) -> &'static str {
        self.flags
    }

    /// The io-uring handle, for registering the provided-buffer ring.
    pub fn raw(&self) -> &IoUring {
        &self.ring
    }

    #[cfg(test)]
    pub fn completions(&self) -> u64 {
        self.completions
    }

    #[cfg(test)]
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Queues an entry. A full queue is submitted to make room; if the kernel cannot take
    /// more (completions overflowing), the entry waits in the backlog for the next turn.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points at (bytes to send, a `msghdr` and its iovecs, buffers to
    /// receive into) must stay valid, and unchanged where the kernel reads it, until the
    /// operation's last completion has been taken from this ring.
    pub unsafe fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(entry);
            return;
        }
        // SAFETY: the caller keeps the entry's memory alive until its completion.
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            return;
        }
        if self.ring.submit().is_ok() {
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(entry);
    }

    /// Pushes an entry that points at no memory.
    fn push_plain(&mut self, entry: squeue::Entry) {
        // SAFETY: the entries built by the safe methods below carry descriptors and flags
        // only, no pointer the kernel could read or write.
        unsafe { self.push(entry) }
    }

    /// Multishot accept on a listening socket; new sockets are non-blocking and close-on-exec.
    pub fn accept_multi(&mut self, listener: RawFd, token: Token) {
        let entry = opcode::AcceptMulti::new(types::Fd(listener))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(token.encode());
        self.push_plain(entry);
    }

    /// One-shot poll for `events` (`POLLIN`, `POLLOUT`) on a descriptor.
    pub fn poll(&mut self, fd: RawFd, events: libc::c_short, token: Token) {
        let entry = opcode::PollAdd::new(types::Fd(fd), events as u32)
            .build()
            .user_data(token.encode());
        self.push_plain(entry);
    }

    /// Multishot poll for `events` on a descriptor: a completion each time it is ready.
    pub fn poll_multi(&mut self, fd: RawFd, events: libc::c_short, token: Token) {
        let entry = opcode::PollAdd::new(types::Fd(fd), events as u32)
            .multi(true)
            .build()
            .user_data(token.encode());
        self.push_plain(entry);
    }

    /// Task work is pending in the kernel (`IORING_SQ_TASKRUN`; only with `TASKRUN_FLAG`).
    pub fn taskrun_pending(&mut self) -> bool {
        self.ring.submission().taskrun()
    }

    /// Cancels the operation tagged `target`; only a failure posts a completion (ignored).
    pub fn cancel(&mut self, target: Token) {
        let entry = opcode::AsyncCancel::new(target.encode())
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(Token::new(Kind::Ignore, target.slot, target.generation).encode());
        self.push_plain(entry);
    }

    /// Closes `fd` in order after what was queued before (a cancel of its receive, say).
    pub fn close(&mut self, fd: OwnedFd, token: Token) {
        // The ring owns the descriptor from here and closes it.
        let raw = fd.into_raw_fd();
        let entry = opcode::Close::new(types::Fd(raw))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token.encode());
        self.push_plain(entry);
    }

    /// A multishot receive into the provided-buffer ring `group`.
    ///
    /// # Safety
    ///
    /// The buffers registered as `group` must stay mapped until the receive's last
    /// completion (one without the `MORE` flag) has been taken from this ring.
    pub unsafe fn recv_multi(&mut self, fd: RawFd, group: u16, token: Token) {
        let entry = opcode::RecvMulti::new(types::Fd(fd), group)
            .build()
            .user_data(token.encode());
        // SAFETY: the entry points at no memory itself; the group's buffers are the
        // caller's to keep alive, as stated above.
        unsafe { self.push(entry) }
    }

    /// A `send` of `bytes`.
    ///
    /// # Safety
    ///
    /// `bytes` must stay valid and unchanged until the send's completion.
    pub unsafe fn send(&mut self, fd: RawFd, bytes: &[u8], flags: i32, token: Token) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(types::Fd(fd), bytes.as_ptr(), len)
            .flags(flags)
            .build()
            .user_data(token.encode());
        // SAFETY: the caller keeps `bytes` alive and unchanged until the completion.
        unsafe { self.push(entry) }
    }

    /// A gathered `sendmsg`.
    ///
    /// # Safety
    ///
    /// `msg`, its iovec array and every buffer the iovecs point at must stay valid and
    /// unchanged until the send's completion.
    pub unsafe fn send_msg(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        flags: i32,
        token: Token,
    ) {
        let entry = opcode::SendMsg::new(types::Fd(fd), msg)
            .flags(flags as u32)
            .build()
            .user_data(token.encode());
        // SAFETY: the caller keeps the message and what it points at alive until the
        // completion.
        unsafe { self.push(entry) }
    }

    /// Moves backlogged entries into the submission queue, in order, while there is room.
    pub fn flush_backlog(&mut self) -> io::Result<()> {
        while let Some(entry) = self.backlog.pop_front() {
            // SAFETY: every backlogged entry came through `push`, whose callers keep its
            // memory alive until its completion.
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                self.ring.submit()?;
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_err() {
                    self.backlog.push_front(entry);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Submits everything queued and waits for at least one completion, or until `timeout`:
    /// one `io_uring_enter`.
    pub fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.flush_backlog()?;
        let result = match timeout {
            Some(left) => {
                let ts = types::Timespec::from(left.max(Duration::from_micros(1)));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Appends every completion ready now to `out`.
    pub fn take_completions(&mut self, out: &mut Vec<Completion>) {
        let before = out.len();
        out.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        self.completions += (out.len() - before) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_submission_queue_is_flushed_and_loses_nothing() {
        let Some(mut ring) = crate::server::uring::test_support::ring_or_skip(4) else {
            return;
        };
        // 100 entries into a 4-entry queue between two waits; each cancel finds nothing and
        // fails with ENOENT, so every entry shows up as one completion.
        const ENTRIES: u64 = 100;
        for i in 0..ENTRIES {
            ring.cancel(Token::new(Kind::Send, u32::MAX - i as u32, 0));
        }
        let mut got = Vec::new();
        for _ in 0..200 {
            if got.len() as u64 >= ENTRIES {
                break;
            }
            ring.submit_and_wait(Some(Duration::from_millis(50)))
                .unwrap();
            ring.take_completions(&mut got);
        }
        assert_eq!(got.len() as u64, ENTRIES);
        assert_eq!(ring.completions(), ENTRIES);
        assert_eq!(ring.backlog_len(), 0);
        assert!(got.iter().all(|&(_, res, _)| res == -libc::ENOENT));
    }
}
