//! A server's life after start, the same for both drivers: serving; *announcing* a shutdown
//! for the drain delay (the core's health path answers 503 and responses close their
//! connections, while new connections are still accepted); then *draining* (accepting stops,
//! responses in flight finish, idle connections close).
//!
//! Owns: the two flags and the drain-delay timer. Must not: touch sockets (each driver stops
//! its own listeners when [`Shutdown::begin_drain`] says so).

use crate::http::Lifecycle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The shutdown flags one server shares across its threads.
#[derive(Debug, Default)]
pub struct Shutdown {
    announcing: AtomicBool,
    draining: AtomicBool,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Where the server is, as the core must see it.
    pub fn state(&self) -> Lifecycle {
        if self.draining.load(Ordering::Acquire) {
            Lifecycle::Draining
        } else if self.announcing.load(Ordering::Acquire) {
            Lifecycle::Announcing
        } else {
            Lifecycle::Serving
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts announcing; `false` if a shutdown was already asked for (shutdown is idempotent).
    pub fn announce(&self) -> bool {
        !self.announcing.swap(true, Ordering::AcqRel)
    }

    /// Starts draining; `true` only for the caller that changed it, which stops accepting.
    pub fn begin_drain(&self) -> bool {
        !self.draining.swap(true, Ordering::AcqRel)
    }
}

/// Runs `stop` once `delay` has passed: at once when there is no delay, else on a timer
/// thread. If no thread can be started, stops at once rather than never.
pub fn after_delay(delay: Duration, stop: impl FnOnce() + Send + 'static) {
    if delay.is_zero() {
        stop();
        return;
    }
    // `stop` moves into the thread only if the spawn succeeds; keep a way to run it otherwise.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(stop)));
    let for_thread = std::sync::Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("ringserve-drain".into())
        .spawn(move || {
            std::thread::sleep(delay);
            if let Some(stop) = take(&for_thread) {
                stop();
            }
        });
    if spawned.is_err()
        && let Some(stop) = take(&slot)
    {
        stop();
    }
}

fn take<F>(slot: &std::sync::Mutex<Option<F>>) -> Option<F> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn announce_then_drain_once_each() {
        let s = Shutdown::new();
        assert_eq!(s.state(), Lifecycle::Serving);
        assert!(s.announce());
        assert!(!s.announce());
        assert_eq!(s.state(), Lifecycle::Announcing);
        assert!(s.begin_drain());
        assert!(!s.begin_drain());
        assert_eq!(s.state(), Lifecycle::Draining);
        assert!(s.is_draining());
    }

    #[test]
    fn stop_runs_at_once_without_delay_and_after_it_otherwise() {
        let (tx, rx) = mpsc::channel();
        after_delay(Duration::ZERO, move || tx.send(()).unwrap());
        assert!(rx.try_recv().is_ok(), "no delay: stopped before returning");

        let (tx, rx) = mpsc::channel();
        let asked = Instant::now();
        after_delay(Duration::from_millis(50), move || {
            tx.send(Instant::now()).unwrap()
        });
        let stopped = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(stopped.duration_since(asked) >= Duration::from_millis(50));
    }
}
