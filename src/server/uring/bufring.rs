//! The provided-buffer ring: a pool of receive buffers the kernel picks from when a multishot
//! `recv` completes, so a connection holds no receive buffer while it waits. Each completion
//! names the buffer it filled; the worker copies the bytes into the connection's protocol
//! state at once and hands the buffer back ([`BufRing::recycle`]), publishing the new ring
//! tail once per loop iteration ([`BufRing::publish`]).
//!
//! Memory: the ring of entries (16 bytes each) is the only memory the kernel pins; the
//! buffers are ordinary anonymous memory, committed page by page as the kernel first writes
//! into them. Both mappings outlive the ring registration: [`BufRing`] is dropped only after
//! the worker has destroyed its io_uring (see `Worker`), or is leaked if that cannot be
//! guaranteed.

use io_uring::IoUring;
use io_uring::types::BufRingEntry;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// An anonymous private mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no
        // existing memory; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no reference into the
        // mapping outlives `self` (slices handed out borrow the owning `BufRing`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A registered provided-buffer ring and its buffers.
#[derive(Debug)]
pub struct BufRing {
    entries: Mapping,
    buffers: Mapping,
    count: u16,
    buf_size: usize,
    /// Our copy of the tail; the kernel sees it after [`BufRing::publish`].
    tail: u16,
    published: u16,
    group: u16,
}

impl BufRing {
    /// Maps `count` buffers of `buf_size` bytes (`count` a power of two, at most 32768) and
    /// registers them with `ring` as buffer group `group`.
    pub fn new(ring: &IoUring, count: u16, buf_size: usize, group: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 1 << 15);
        let entries = Mapping::new(usize::from(count) * size_of::<BufRingEntry>())?;
        let buffers = Mapping::new(usize::from(count) * buf_size)?;
        let mut this = BufRing {
            entries,
            buffers,
            count,
            buf_size,
            tail: 0,
            published: 0,
            group,
        };
        // SAFETY: the entry mapping is page-aligned, `count` entries long, and lives until
        // this `BufRing` is dropped, which the worker does only after the io_uring instance
        // holding the registration is gone.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                this.entries.ptr.as_ptr() as u64,
                count,
                group,
                0,
            )?;
        }
        for id in 0..count {
            this.recycle(id);
        }
        this.publish();
        Ok(this)
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes the kernel wrote into buffer `id`.
    pub fn get(&self, id: u16, len: usize) -> &[u8] {
        let id = usize::from(id % self.count);
        let len = len.min(self.buf_size);
        // SAFETY: buffer `id` lies inside the mapping; the kernel finished writing it before
        // posting the completion that named it, and will not pick it again until `recycle`
        // hands it back, which needs `&mut self` and so cannot happen while this borrow lives.
        unsafe {
            std::slice::from_raw_parts(self.buffers.ptr.as_ptr().add(id * self.buf_size), len)
        }
    }

    /// Hands buffer `id` back to the kernel (visible after the next [`BufRing::publish`]).
    pub fn recycle(&mut self, id: u16) {
        let id = id % self.count;
        let slot = usize::from(self.tail & (self.count - 1));
        let base = self.entries.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `slot < count`, so the entry lies inside the mapping. The kernel reads only
        // entries between its head and the published tail; this one is past the published
        // tail, so nothing reads it concurrently.
        let entry = unsafe { &mut *base.add(slot) };
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(id) * self.buf_size as u64;
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel.
    pub fn publish(&mut self) {
        if self.published == self.tail {
            return;
        }
        let base = self.entries.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail field overlays the first entry's reserved field (the kernel's
        // layout), is 2-byte aligned inside the page-aligned mapping, and the kernel reads it
        // atomically; we are its only writer.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(base).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
    }
}
