//! Refusing a connection over `--max-conns` when no idle one can make room: a 503 sent
//! without blocking, then a close that does not reset what the client sent.

use super::listen::Stream;
use crate::stats::WorkerStats;
use std::io::Read;
use std::net::Shutdown;
use std::os::fd::AsFd;

/// Over `--max-conns`: answer 503, best effort and without blocking, and close. Counted in
/// `stats` when the bytes were handed to the kernel.
pub fn reject_busy(stream: impl Into<Stream>, date: &crate::http::DateCache, stats: &WorkerStats) {
    use crate::sys::net::{self, More};
    let stream = stream.into();
    let response = crate::http::serve::busy_response(date);
    if stream.set_nonblocking(true).is_ok() {
        let sent =
            net::send_all(stream.as_fd(), &response.head, More::Yes).and_then(|()| match &response
                .body
            {
                crate::http::Body::Bytes(body) => net::send_all(stream.as_fd(), body, More::No),
                _ => Ok(()),
            });
        if sent.is_ok() {
            stats.response(
                response.status,
                response.head.len() as u64 + response.body_len(),
            );
        }
        let _ = stream.shutdown(Shutdown::Write);
        // Discard a request that has already arrived, so closing does not reset.
        let mut scratch = [0u8; 4096];
        let _ = (&stream).read(&mut scratch);
    }
}
