//! Counters for `--status-path`: one cache-line-aligned block per worker, rendered in the
//! Prometheus text exposition format (version 0.0.4).
//!
//! Owns: the counters and their rendering. Must not: be written by anyone but the worker
//! that owns a block, so the hot path never shares a cache line between cores.
//!
//! # For I/O drivers
//!
//! A driver with workers takes [`Stats::worker`]`(i)` once per worker and calls, from that
//! worker's thread only:
//! - [`WorkerStats::accepted`] for each accepted connection (also the ones refused over the
//!   connection cap), then [`WorkerStats::opened`] / [`WorkerStats::closed`] around the life
//!   of each connection it serves (the `active` gauge);
//! - [`WorkerStats::response`] once per response handed to the kernel, with its status and
//!   the bytes it put on the wire (head + body);
//! - [`WorkerStats::timed_out`] when a connection ends on a header or idle timeout;
//! - [`WorkerStats::reclaimed`] when an idle connection is closed to admit a new one;
//! - [`WorkerStats::cache_hit`] / [`WorkerStats::cache_miss`] from the worker's file cache,
//!   or [`WorkerStats::set_cache`] with the totals a cache counts itself (the io_uring
//!   worker publishes its `FileCache::stats` once per loop turn, before it waits).
//!
//! [`Stats::fallback`] is process-wide: `Server::bind` calls it when the io_uring mode is
//! unavailable and the threaded mode runs instead.
//!
//! The threaded mode has no workers: it counts everything under worker 0 from many threads.
//! The counters are atomics, so that is correct, only not contention-free (and it is the
//! mode that makes no claim to be).
//!
//! Every update is a `Relaxed` `fetch_add`: the counters order nothing, and a scrape may see
//! one counter a moment ahead of another. Counters never go down (`_total`); `active` is a
//! gauge.

use crate::http::{Metrics, Status};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One worker's counters, alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerStats {
    accepted: AtomicU64,
    active: AtomicU64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    by_class: [AtomicU64; 5],
    not_modified: AtomicU64,
    bytes_sent: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    timeouts: AtomicU64,
    reclaimed: AtomicU64,
}

impl WorkerStats {
    /// A connection was accepted.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    /// A connection starts being served (`active` + 1).
    pub fn opened(&self) {
        self.active.fetch_add(1, Relaxed);
    }

    /// A connection counted by [`WorkerStats::opened`] has ended (`active` − 1).
    pub fn closed(&self) {
        self.active.fetch_sub(1, Relaxed);
    }

    /// A response was sent: counts its status class (and 304s) and `wire_bytes`, the head and
    /// body bytes written.
    pub fn response(&self, status: Status, wire_bytes: u64) {
        let class = usize::from(status.code() / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        if status == Status::NotModified {
            self.not_modified.fetch_add(1, Relaxed);
        }
        self.bytes_sent.fetch_add(wire_bytes, Relaxed);
    }

    /// A connection ended on a header or idle timeout.
    pub fn timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    /// An idle connection was closed to make room for a new one at the connection cap.
    pub fn reclaimed(&self) {
        self.reclaimed.fetch_add(1, Relaxed);
    }

    /// The worker's file cache answered without touching the file system.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    /// The worker's file cache had to open or revalidate the file.
    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    /// Publishes totals a cache keeps itself (plain counters, owned by the worker): replaces
    /// the hit and miss counts. Use either this or the increments, not both.
    pub fn set_cache(&self, hits: u64, misses: u64) {
        self.cache_hits.store(hits, Relaxed);
        self.cache_misses.store(misses, Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            by_class: std::array::from_fn(|i| self.by_class[i].load(Relaxed)),
            not_modified: self.not_modified.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            reclaimed: self.reclaimed.load(Relaxed),
        }
    }
}

/// A consistent-enough copy of one worker's counters (each loaded once).
#[derive(Clone, Copy, Debug, Default)]
struct Snapshot {
    accepted: u64,
    active: u64,
    by_class: [u64; 5],
    not_modified: u64,
    bytes_sent: u64,
    cache_hits: u64,
    cache_misses: u64,
    timeouts: u64,
    reclaimed: u64,
}

impl Snapshot {
    fn add(&mut self, o: &Snapshot) {
        self.accepted += o.accepted;
        self.active += o.active;
        for (a, b) in self.by_class.iter_mut().zip(o.by_class) {
            *a += b;
        }
        self.not_modified += o.not_modified;
        self.bytes_sent += o.bytes_sent;
        self.cache_hits += o.cache_hits;
        self.cache_misses += o.cache_misses;
        self.timeouts += o.timeouts;
        self.reclaimed += o.reclaimed;
    }
}

/// Every worker's counters plus the process-wide ones. Shared as `Arc<Stats>`.
#[derive(Debug)]
pub struct Stats {
    workers: Box<[WorkerStats]>,
    fallbacks: AtomicU64,
    /// Process-wide, not per worker: it moves only while a deploy left a sidecar older than
    /// its file, so sharing its cache line costs nothing on the usual hot path.
    precompressed_stale: AtomicU64,
}

/// A metric family: name, type, help, and how to read it from a snapshot.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Snapshot) -> u64,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "ringserve_connections_accepted_total",
        kind: "counter",
        help: "Connections accepted (including those refused over the connection cap).",
        value: |s| s.accepted,
    },
    Family {
        name: "ringserve_connections_active",
        kind: "gauge",
        help: "Connections being served now.",
        value: |s| s.active,
    },
    Family {
        name: "ringserve_not_modified_total",
        kind: "counter",
        help: "304 Not Modified responses (also counted in class 3xx).",
        value: |s| s.not_modified,
    },
    Family {
        name: "ringserve_sent_bytes_total",
        kind: "counter",
        help: "Response bytes written, heads and bodies.",
        value: |s| s.bytes_sent,
    },
    Family {
        name: "ringserve_cache_hits_total",
        kind: "counter",
        help: "File cache lookups answered from memory.",
        value: |s| s.cache_hits,
    },
    Family {
        name: "ringserve_cache_misses_total",
        kind: "counter",
        help: "File cache lookups that went to the file system.",
        value: |s| s.cache_misses,
    },
    Family {
        name: "ringserve_timeouts_total",
        kind: "counter",
        help: "Connections ended by the header or idle timeout.",
        value: |s| s.timeouts,
    },
    Family {
        name: "ringserve_connections_reclaimed_total",
        kind: "counter",
        help: "Idle connections closed to make room for new ones at the connection cap.",
        value: |s| s.reclaimed,
    },
];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Stats {
    /// Counters for `workers` workers (at least one).
    pub fn new(workers: usize) -> Stats {
        Stats {
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            fallbacks: AtomicU64::new(0),
            precompressed_stale: AtomicU64::new(0),
        }
    }

    /// Worker `i`'s counters. Panics if `i >= worker_count()`: the driver that created the
    /// `Stats` with its worker count only hands out indices below it.
    pub fn worker(&self, i: usize) -> &WorkerStats {
        &self.workers[i]
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Connections accepted so far, all workers together (including those refused at the cap).
    pub fn accepted_total(&self) -> u64 {
        self.workers.iter().map(|w| w.accepted.load(Relaxed)).sum()
    }

    /// Responses sent so far, all workers and status classes together.
    pub fn responses(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.by_class.iter().map(|c| c.load(Relaxed)).sum::<u64>())
            .sum()
    }

    /// The io_uring mode fell back to the threaded mode.
    pub fn fallback(&self) {
        self.fallbacks.fetch_add(1, Relaxed);
    }

    /// Appends the Prometheus text format: for each counter family a `# HELP` and `# TYPE`
    /// line, one sample per worker, then the total.
    pub fn render_prometheus(&self, out: &mut Vec<u8>) {
        self.render(out);
    }

    /// Appends the Prometheus text format: for each family a `# HELP` and `# TYPE` line, one
    /// sample per worker labelled `worker="N"`, then the total over all workers without a
    /// `worker` label (select `{worker=""}` for totals, `{worker!=""}` to aggregate yourself).
    fn render(&self, out: &mut Vec<u8>) {
        let snaps: Vec<Snapshot> = self.workers.iter().map(WorkerStats::snapshot).collect();
        let mut total = Snapshot::default();
        for s in &snaps {
            total.add(s);
        }
        // Writes into a Vec cannot fail; `write!` results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP ringserve_requests_total Responses sent, by status class.\n\
             # TYPE ringserve_requests_total counter"
        );
        for (class_index, class) in CLASSES.iter().enumerate() {
            for (w, s) in snaps.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ringserve_requests_total{{class=\"{class}\",worker=\"{w}\"}} {}",
                    s.by_class[class_index]
                );
            }
            let _ = writeln!(
                out,
                "ringserve_requests_total{{class=\"{class}\"}} {}",
                total.by_class[class_index]
            );
        }
        for f in FAMILIES {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                f.name, f.help, f.name, f.kind
            );
            for (w, s) in snaps.iter().enumerate() {
                let _ = writeln!(out, "{}{{worker=\"{w}\"}} {}", f.name, (f.value)(s));
            }
            let _ = writeln!(out, "{} {}", f.name, (f.value)(&total));
        }
        let _ = writeln!(
            out,
            "# HELP ringserve_uring_fallbacks_total Times the io_uring mode was unavailable and \
             the threaded mode ran instead.\n\
             # TYPE ringserve_uring_fallbacks_total counter\n\
             ringserve_uring_fallbacks_total {}",
            self.fallbacks.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ringserve_precompressed_stale_total Responses that passed over a \
             precompressed sidecar older than its file.\n\
             # TYPE ringserve_precompressed_stale_total counter\n\
             ringserve_precompressed_stale_total {}",
            self.precompressed_stale.load(Relaxed)
        );
    }
}

/// The status path renders these counters; the core sees them only through this trait.
impl Metrics for Stats {
    fn render_prometheus(&self, out: &mut Vec<u8>) {
        self.render(out);
    }

    fn precompressed_stale(&self) {
        self.precompressed_stale.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(stats: &Stats) -> String {
        let mut out = Vec::new();
        stats.render_prometheus(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn worker_blocks_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<WorkerStats>(), 64);
        assert_eq!(std::mem::size_of::<WorkerStats>() % 64, 0);
    }

    #[test]
    fn counters_render_per_worker_and_in_total() {
        let stats = Stats::new(2);
        let (w0, w1) = (stats.worker(0), stats.worker(1));
        w0.accepted();
        w0.opened();
        w1.accepted();
        w1.opened();
        w1.closed();
        w0.response(Status::Ok, 100);
        w1.response(Status::Ok, 50);
        w1.response(Status::NotModified, 20);
        w1.response(Status::NotFound, 30);
        w0.response(Status::ServiceUnavailable, 5);
        w0.timed_out();
        w1.cache_hit();
        w1.cache_hit();
        w0.cache_miss();
        stats.fallback();
        Metrics::precompressed_stale(&stats);
        assert_eq!(stats.responses(), 5);
        let text = render(&stats);
        for line in [
            "# TYPE ringserve_requests_total counter",
            "ringserve_requests_total{class=\"2xx\",worker=\"0\"} 1",
            "ringserve_requests_total{class=\"2xx\",worker=\"1\"} 1",
            "ringserve_requests_total{class=\"2xx\"} 2",
            "ringserve_requests_total{class=\"3xx\"} 1",
            "ringserve_requests_total{class=\"4xx\",worker=\"1\"} 1",
            "ringserve_requests_total{class=\"5xx\"} 1",
            "ringserve_requests_total{class=\"1xx\"} 0",
            "ringserve_connections_accepted_total 2",
            "# TYPE ringserve_connections_active gauge",
            "ringserve_connections_active{worker=\"0\"} 1",
            "ringserve_connections_active{worker=\"1\"} 0",
            "ringserve_connections_active 1",
            "ringserve_not_modified_total 1",
            "ringserve_sent_bytes_total{worker=\"0\"} 105",
            "ringserve_sent_bytes_total 205",
            "ringserve_cache_hits_total{worker=\"1\"} 2",
            "ringserve_cache_misses_total 1",
            "ringserve_timeouts_total 1",
            "ringserve_uring_fallbacks_total 1",
            "ringserve_precompressed_stale_total 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_text_format_is_well_formed() {
        let text = render(&Stats::new(3));
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
                typed.push(name.to_string());
            } else if !line.starts_with("# HELP ") {
                // A sample: name{labels} value, of a family typed above it.
                let (series, value) = line.rsplit_once(' ').unwrap();
                value.parse::<u64>().unwrap();
                let name = series.split('{').next().unwrap();
                assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(text.ends_with('\n'));
    }
}
