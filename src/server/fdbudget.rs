//! How many connections the descriptor limit (`RLIMIT_NOFILE`) leaves room for: the default
//! `--max-conns`, and the ceiling an explicit one is clamped to.
//!
//! Owns: the formula. Must not: change the limit (`sys::rlimit::raise_nofile`, called by the
//! binary at start) or count descriptors at run time.
//!
//! ```text
//! reserve   = 32                               process-wide: stdio, root dir, access log, …
//!           + workers × (listeners + 4)        each worker's listeners, ring, waker pair
//!           + uring: workers × min(1024, limit / 4 / workers)   the file caches' descriptors
//! max_conns = (limit − reserve) / 2            a socket + the file its response is sending
//! default   = min(max_conns, 65 536)
//! ```
//!
//! Two descriptors per connection: its socket, and the file of a response in progress (the
//! threaded mode opens one per file response; in the uring mode a file evicted from the cache
//! stays open until its response is sent). A connection refused at the cap still costs a
//! socket for a moment, so the cap keeps `accept` clear of `EMFILE` in all but a flood, where
//! accepting backs off without spinning.
//!
//! The file caches may keep up to 1024 descriptors per uring worker. On a tight limit they
//! are granted at most a quarter of it, shared among the workers ([`Budget::cache_files`],
//! which each worker's cache is built with), so that a limit of 1024 still serves a few
//! hundred connections.
//!
//! The default stops at 65 536 although a high hard limit (524 288 under systemd) allows
//! more: in the threaded mode every connection is a thread, and past this many a machine
//! runs out of threads or memory before descriptors. An explicit `--max-conns` may go up to
//! what the limit allows.

use crate::config::Mode;
use crate::fs::cache::MAX_ENTRIES;

/// Descriptors of the whole process besides workers and connections (18 measured at start
/// in the uring mode with 2 workers, of which 2 are stdio redirections a service may not have).
const BASE_RESERVE: u64 = 32;
/// Per worker besides its listeners: a ring, the two ends of its wake-up socket, and one spare.
const PER_WORKER: u64 = 4;
/// Per connection: its socket and the file its response is sending.
const PER_CONN: u64 = 2;
/// The default's ceiling (see the module docs).
pub const DEFAULT_CEILING: usize = 65_536;

/// The connection cap a server runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The soft descriptor limit it was derived from.
    pub limit: u64,
    pub max_conns: usize,
    /// An explicit `--max-conns` larger than the limit allows, and clamped.
    pub clamped_from: Option<usize>,
    /// Descriptors each uring worker's file cache may keep open.
    pub cache_files: usize,
}

/// Descriptors each of `workers` file caches may keep open under `limit`.
fn cache_files(limit: u64, workers: usize) -> usize {
    let share = limit / 4 / (workers.max(1) as u64);
    usize::try_from(share)
        .unwrap_or(usize::MAX)
        .min(MAX_ENTRIES)
}

/// The most connections `limit` descriptors serve with `workers` workers of `listeners`
/// listeners each; at least 1.
pub fn allowed(limit: u64, mode: Mode, workers: usize, listeners: usize) -> usize {
    let workers = workers as u64;
    let caches = match mode {
        Mode::Uring => workers * cache_files(limit, workers as usize) as u64,
        Mode::Threaded => 0,
    };
    let reserve = BASE_RESERVE + workers * (listeners as u64 + PER_WORKER) + caches;
    let conns = limit.saturating_sub(reserve) / PER_CONN;
    usize::try_from(conns).unwrap_or(usize::MAX).max(1)
}

/// The cap for `requested` (`None`: the default).
pub fn plan(
    requested: Option<usize>,
    limit: u64,
    mode: Mode,
    workers: usize,
    listeners: usize,
) -> Budget {
    let most = allowed(limit, mode, workers, listeners);
    let cache_files = cache_files(limit, workers);
    match requested {
        None => Budget {
            limit,
            max_conns: most.min(DEFAULT_CEILING),
            clamped_from: None,
            cache_files,
        },
        Some(n) if n > most => Budget {
            limit,
            max_conns: most,
            clamped_from: Some(n),
            cache_files,
        },
        Some(n) => Budget {
            limit,
            max_conns: n,
            clamped_from: None,
            cache_files,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formula_in_the_module_docs() {
        // (20 000 − 32 − 2 × (1 + 4) − min(2048, 5000)) / 2
        assert_eq!(allowed(20_000, Mode::Uring, 2, 1), 8955);
        // (20 000 − 32 − 1 × (1 + 4)) / 2
        assert_eq!(allowed(20_000, Mode::Threaded, 1, 1), 9981);
        // A soft limit of 1024: the caches get a quarter, a few hundred connections remain.
        assert_eq!(allowed(1024, Mode::Uring, 2, 1), (1024 - 32 - 10 - 256) / 2);
        assert_eq!(plan(None, 1024, Mode::Uring, 2, 1).cache_files, 128);
        assert_eq!(
            plan(None, 1 << 20, Mode::Uring, 2, 1).cache_files,
            MAX_ENTRIES
        );
        // Nothing left: still one.
        assert_eq!(allowed(10, Mode::Threaded, 1, 1), 1);
    }

    #[test]
    fn the_default_is_derived_and_capped_and_an_explicit_value_clamped() {
        let big = plan(None, 1 << 20, Mode::Threaded, 1, 1);
        assert_eq!(big.max_conns, DEFAULT_CEILING);
        assert_eq!(big.clamped_from, None);
        let small = plan(None, 256, Mode::Threaded, 1, 1);
        assert_eq!(small.max_conns, (256 - 37) / 2);
        let clamped = plan(Some(5000), 256, Mode::Threaded, 1, 1);
        assert_eq!(clamped.max_conns, (256 - 37) / 2);
        assert_eq!(clamped.clamped_from, Some(5000));
        // An explicit value may exceed the default's ceiling when the limit allows it.
        let high = plan(Some(100_000), 1 << 20, Mode::Threaded, 1, 1);
        assert_eq!((high.max_conns, high.clamped_from), (100_000, None));
    }
}
