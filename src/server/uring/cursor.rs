//! Output on its way out through `send`/`sendmsg` completions. A send may take fewer bytes
//! than offered (a full socket buffer, a signal); the remainder is sent again from where the
//! kernel stopped. [`SendBuf`] is one buffer; [`consume`] applies one completion to a queue
//! of chunks a gathered send covered. The arithmetic lives here, tested, rather than inline
//! in the event loop.

use std::collections::VecDeque;

/// A piece of output a send takes bytes from.
pub trait Pending {
    /// The bytes not sent yet.
    fn pending(&self) -> &[u8];
    /// Records `n` more bytes sent; `n` is at most `pending().len()`.
    fn advance(&mut self, n: usize);
}

/// Applies a completion of `n` bytes to a send that covered the first `used` chunks of
/// `queue`: advances them in order and removes, handing each to `done`, the chunks sent
/// whole. More bytes than those chunks offered is an [`Overrun`], and changes nothing.
pub fn consume<T: Pending>(
    queue: &mut VecDeque<T>,
    used: usize,
    mut n: usize,
    mut done: impl FnMut(T),
) -> Result<(), Overrun> {
    let offered: usize = queue.iter().take(used).map(|c| c.pending().len()).sum();
    if n > offered {
        return Err(Overrun);
    }
    for _ in 0..used {
        let Some(front) = queue.front_mut() else {
            break;
        };
        let take = n.min(front.pending().len());
        front.advance(take);
        n -= take;
        if !front.pending().is_empty() {
            break;
        }
        if let Some(chunk) = queue.pop_front() {
            done(chunk);
        }
    }
    Ok(())
}

/// Bytes being sent, and how many the kernel has taken so far.
///
/// While a send is in flight the kernel reads from [`SendBuf::pending`]; the owner must not
/// touch the buffer until the completion arrives, which is why appending is a separate step
/// ([`SendBuf::extend`]) the event loop only takes when no send is in flight.
#[derive(Debug, Default)]
pub struct SendBuf {
    buf: Vec<u8>,
    sent: usize,
}

/// The result of [`SendBuf::advance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every byte was sent.
    Done,
    /// Some bytes remain: send [`SendBuf::pending`] again.
    Partial,
}

/// The kernel reported more bytes sent than were offered: a bug somewhere, never silently
/// absorbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overrun;

impl SendBuf {
    /// Wraps `buf` (which may hold bytes already); nothing is sent yet.
    pub fn new(buf: Vec<u8>) -> SendBuf {
        SendBuf { buf, sent: 0 }
    }

    /// The bytes still to send.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// Bytes not yet sent.
    pub fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Appends bytes behind the pending ones. Only while no send is in flight.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer itself, for appending in place (e.g. reading a file into it). Only while no
    /// send is in flight.
    pub fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Records that the kernel took `n` more bytes.
    pub fn advance(&mut self, n: usize) -> Result<Progress, Overrun> {
        if n > self.len() {
            return Err(Overrun);
        }
        self.sent += n;
        Ok(if self.is_empty() {
            Progress::Done
        } else {
            Progress::Partial
        })
    }

    /// Empties the buffer once everything is sent, keeping its capacity, and hands it back
    /// (e.g. to a pool).
    pub fn into_inner(mut self) -> Vec<u8> {
        self.buf.clear();
        self.buf
    }
}

impl Pending for SendBuf {
    fn pending(&self) -> &[u8] {
        SendBuf::pending(self)
    }

    fn advance(&mut self, n: usize) {
        let _ = SendBuf::advance(self, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queue(chunks: &[&[u8]]) -> VecDeque<SendBuf> {
        chunks.iter().map(|c| SendBuf::new(c.to_vec())).collect()
    }

    #[test]
    fn a_gathered_send_consumes_whole_chunks_then_part_of_one() {
        let mut q = queue(&[b"head", b"body", b"next"]);
        let mut sent_whole = 0;
        consume(&mut q, 3, 6, |_| sent_whole += 1).unwrap();
        assert_eq!(sent_whole, 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].pending(), b"dy");
        // Chunks beyond `used` are never touched, even when bytes would reach them.
        assert_eq!(consume(&mut q, 1, 3, |_| ()), Err(Overrun));
        consume(&mut q, 1, 2, |_| sent_whole += 1).unwrap();
        assert_eq!((sent_whole, q[0].pending()), (2, &b"next"[..]));
    }

    #[test]
    fn partial_sends_resume_where_the_kernel_stopped() {
        let mut b = SendBuf::new(b"hello world".to_vec());
        assert_eq!(b.advance(4), Ok(Progress::Partial));
        assert_eq!(b.pending(), b"o world");
        assert_eq!(b.advance(0), Ok(Progress::Partial));
        assert_eq!(b.advance(7), Ok(Progress::Done));
        assert!(b.is_empty());
        assert_eq!(b.pending(), b"");
    }

    #[test]
    fn overrun_is_an_error_and_changes_nothing() {
        let mut b = SendBuf::new(b"abc".to_vec());
        assert_eq!(b.advance(4), Err(Overrun));
        assert_eq!(b.pending(), b"abc");
    }

    #[test]
    fn extend_appends_behind_pending_bytes() {
        let mut b = SendBuf::new(b"ab".to_vec());
        assert_eq!(b.advance(1), Ok(Progress::Partial));
        b.extend(b"cd");
        assert_eq!(b.pending(), b"bcd");
        assert_eq!(b.len(), 3);
        assert!(b.into_inner().is_empty());
    }

    proptest! {
        /// However a queue of chunks is split across gathered sends of any width, the bytes
        /// that leave are the chunks' bytes, in order, each chunk removed once it is sent.
        #[test]
        fn any_gathered_split_sends_every_byte_once(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            sends in proptest::collection::vec((1usize..5, 0usize..900), 0..40),
        ) {
            let all: Vec<u8> = chunks.concat();
            let mut q: VecDeque<SendBuf> = chunks.into_iter().map(SendBuf::new).collect();
            let mut wire = Vec::new();
            for (width, want) in sends {
                let used = width.min(q.len());
                let offered: Vec<u8> = q.iter().take(used).flat_map(|c| c.pending().to_vec()).collect();
                let n = want.min(offered.len());
                wire.extend_from_slice(&offered[..n]);
                consume(&mut q, used, n, |c| assert!(c.is_empty())).unwrap();
            }
            // Whatever is left goes in one last wide send.
            while !q.is_empty() {
                let used = q.len();
                let offered: Vec<u8> = q.iter().flat_map(|c| c.pending().to_vec()).collect();
                wire.extend_from_slice(&offered);
                consume(&mut q, used, offered.len(), |_| ()).unwrap();
            }
            prop_assert_eq!(wire, all);
        }

        /// However the kernel splits the sends, the bytes that leave are the buffer, in order.
        #[test]
        fn any_split_sends_every_byte_once(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..700, 0..20),
        ) {
            let mut b = SendBuf::new(data.clone());
            let mut wire = Vec::new();
            for cut in cuts {
                let n = cut.min(b.len());
                wire.extend_from_slice(&b.pending()[..n]);
                let p = b.advance(n).unwrap();
                prop_assert_eq!(p == Progress::Done, b.is_empty());
            }
            let n = b.len();
            wire.extend_from_slice(b.pending());
            prop_assert_eq!(b.advance(n).unwrap(), Progress::Done);
            prop_assert_eq!(wire, data);
        }
    }
}
