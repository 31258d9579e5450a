//! Deadlines of one worker: header and idle timeouts, write stalls, lingering closes, and
//! accept retries after an error, in one min-heap.
//!
//! A connection's deadline moves with every request, so the heap is lazy: an entry is pushed
//! only when a connection's deadline moves earlier than the one it is already waiting for, so
//! moving it later costs nothing on the hot path. When an entry comes due, the owner skips it
//! if it is stale (its connection closed, or an earlier entry superseded it), else compares it
//! with the connection's current deadline and either acts or pushes an entry for the later
//! deadline.
//!
//! The invariant: a connection has at most one live entry, the one its `timer_at` names, and
//! has one whenever it waits for a deadline; stale entries remain until they come due, so the
//! heap may hold many more entries than there are connections. The owner bounds them: whenever a connection closes, the
//! worker's `compact_timers` drops the stale entries ([`Timers::retain`]) if the heap holds
//! more than four entries per open connection plus 4096, so the heap stays proportional to the
//! connections open rather than to those closed within the last timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline belongs to. `generation` tells a reused connection slot from its previous
/// occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Conn {
        slot: u32,
        generation: u32,
    },
    /// Re-arm accepting on the listener with this index.
    Accept(u32),
}

/// A min-heap of `(deadline, key)`.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    pub fn push(&mut self, deadline: Instant, key: Key) {
        self.heap.push(Reverse((deadline, key)));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries `keep` approves, and gives back memory the heap no longer
    /// needs. Linear; the owner calls it rarely (when stale entries dominate).
    pub fn retain(&mut self, mut keep: impl FnMut(Instant, Key) -> bool) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|Reverse((at, key))| keep(*at, *key));
        if entries.capacity() > 2 * entries.len() + 64 {
            entries.shrink_to_fit();
        }
        self.heap = BinaryHeap::from(entries);
    }

    /// Removes and returns an entry due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Key)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_entries_come_out_earliest_first_and_others_stay() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        let key = |slot| Key::Conn {
            slot,
            generation: 0,
        };
        t.push(t0 + Duration::from_secs(3), key(3));
        t.push(t0 + Duration::from_secs(1), key(1));
        t.push(t0 + Duration::from_secs(2), Key::Accept(0));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(t.pop_due(now).map(|e| e.1), Some(key(1)));
        assert_eq!(t.pop_due(now).map(|e| e.1), Some(Key::Accept(0)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn retain_drops_entries_and_keeps_the_order() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        for slot in 0..1000u32 {
            t.push(
                t0 + Duration::from_millis(u64::from(1000 - slot)),
                Key::Conn {
                    slot,
                    generation: 0,
                },
            );
        }
        t.retain(|_, key| matches!(key, Key::Conn { slot, .. } if slot % 100 == 0));
        assert_eq!(t.len(), 10);
        let mut last = None;
        while let Some((at, _)) = t.pop_due(t0 + Duration::from_secs(2)) {
            assert!(last.is_none_or(|l| l <= at));
            last = Some(at);
        }
        assert_eq!(t.len(), 0);
    }
}
