//! The opt-in HTML directory listing (`--listing`).
//!
//! Owns: reading an open directory and rendering it as one small, self-contained HTML5 page,
//! with every client- or disk-derived byte escaped for where it lands (HTML text, or a
//! percent-encoded link).
//!
//! Must not: follow a symlink out of the root, list what the server would refuse to serve, or
//! do unbounded work for a huge directory. Concretely:
//! - Entries are read through `/proc/self/fd/N` of the already-open directory (so `/proc` must
//!   be mounted; without it the listing fails with an I/O error), never by path from the root.
//! - `.` and `..` are skipped; dotfiles are skipped unless [`Dotfiles::Served`].
//! - Regular files and directories are described with `lstat` data. A symlink is described
//!   by what it points to, opened with `sys::fs::open_beneath`: one that leaves the root or
//!   dangles is left out, exactly as the server would answer 404 for it.
//! - FIFOs, sockets and devices are left out: they are never served.
//! - Which entries: the first [`MAX_LISTED`] visible names in byte order, chosen while the
//!   names stream in (a bounded max-heap keeps the smallest; nothing is `stat`ed yet), from at
//!   most [`MAX_SCANNED`] directory entries. Past either bound the page says "listing
//!   truncated"; past [`MAX_SCANNED`] the names are the first of those read, not of the whole
//!   directory. Only the chosen names are described (`lstat`, and symlinks followed), so an
//!   entry that is left out then (a FIFO, a dangling link) shortens the page instead of
//!   being replaced.
//! - Order on the page: directories first, then files; each group by name, byte by byte.
//! - Cost: reading the names of a 100,000-entry directory takes 0.1–0.2 s (the kernel's
//!   `getdents`), far too long for a uring worker, whose other connections would wait. So:
//!   - Results are kept, process-wide, for the last [`CACHED_DIRS`] directories, keyed by the
//!     directory's identity and its modification and change times to the nanosecond (which
//!     every creation, removal or rename of an entry updates). The rows' sizes and dates are
//!     described afresh once they are [`REVALIDATE_EVERY`] old.
//!   - A directory small enough to read at once (`st_size` at most [`INLINE_MAX_BYTES`]) is
//!     read by the caller. A larger one is read, and later re-described, by a helper thread
//!     (at most [`MAX_HELPERS`] at once); the caller waits at most [`HELPER_WAIT`] and then
//!     answers [`ListingError::NotYet`] (the core sends 503 with `Retry-After: 1`), or the
//!     previous rows while they are being re-described.
//!   - A result read while the directory had changed within the last [`RACY_FOR`] is reused
//!     for [`REVALIDATE_EVERY`] only: its timestamp has the file system's tick, so a change in
//!     the same tick as the read would otherwise go unseen (git's "racily clean").

use super::{Directory, resolve::Dotfiles};
use crate::sys;
use crate::sys::fs::EntryKind;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a listing's rows (sizes, dates) are reused before they are described afresh;
/// the names themselves follow the directory's identity and times (see the module docs).
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

/// Entries shown at most. Each is `lstat`ed on every request (about a microsecond each), and
/// a page of 1,000 rows is about 150 KB, already more than anyone reads.
pub const MAX_LISTED: usize = 1_000;
/// Directory entries read at most, hidden ones included, so a directory of millions of
/// entries costs no more than this many `readdir` results.
pub const MAX_SCANNED: usize = 100_000;
/// Directories whose listings are kept (process-wide).
pub const CACHED_DIRS: usize = 8;
/// Directories up to this `st_size` are read by the caller: at most a few hundred entries on
/// ext4 (4 KiB blocks of ~32-byte entries), about 800 on tmpfs (20 bytes per entry), read and
/// described within a millisecond or two.
pub const INLINE_MAX_BYTES: u64 = 16 * 1024;
/// How long a caller waits for a helper's reading before answering "not yet".
pub const HELPER_WAIT: Duration = Duration::from_millis(2);
/// Helper threads reading directories at once; past this, "not yet" without starting one.
pub const MAX_HELPERS: usize = 4;
/// How long after its last change a directory's names are not cached (well above the
/// timestamp tick of any Linux file system).
pub const RACY_FOR: Duration = Duration::from_secs(2);

/// Why a listing cannot be rendered now.
#[derive(Debug)]
pub enum ListingError {
    /// A helper thread is still reading this large directory (or too many are busy): try
    /// again in a moment.
    NotYet,
    Io(io::Error),
}

/// Renders the listing of `dir`, whose request path (raw, as the client sent it, without the
/// query) is `url_path`. Names are HTML-escaped and percent-encoded in links, sorted, with
/// size and mtime; dotfiles appear only when served.
pub fn render(
    dir: &Directory,
    url_path: &[u8],
    dotfiles: Dotfiles,
) -> Result<Vec<u8>, ListingError> {
    let bounds = Bounds {
        dotfiles,
        max_listed: MAX_LISTED,
        max_scanned: MAX_SCANNED,
        inline_max_bytes: INLINE_MAX_BYTES,
    };
    let listing = listing_of(&KEPT, dir, bounds)?;
    Ok(page(&listing.rows, listing.truncated, url_path))
}

/// One row of the listing.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    name: Vec<u8>,
    is_dir: bool,
    size: u64,
    mtime_secs: i64,
}

/// How a directory is read; part of what a kept result is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bounds {
    dotfiles: Dotfiles,
    max_listed: usize,
    max_scanned: usize,
    inline_max_bytes: u64,
}

/// A directory read: its first visible names (sorted), whether any were left out, and the
/// rows describing them, with when they were described.
#[derive(Debug)]
struct Listing {
    names: Arc<[Vec<u8>]>,
    truncated: bool,
    rows: Arc<[Row]>,
    described_at: Instant,
}

/// What a kept result is valid for: the same directory, unchanged, read the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    bounds: Bounds,
}

/// One directory's result, or the reading in progress.
#[derive(Debug)]
struct Kept {
    key: Key,
    /// When the reading began, and whether the directory had been still for [`RACY_FOR`].
    read_at: Instant,
    settled: bool,
    state: Mutex<State>,
    done: Condvar,
    /// The list it is kept in, to leave it when no helper can read it.
    kept_in: &'static Mutex<Vec<Arc<Kept>>>,
}

#[derive(Debug)]
enum State {
    /// A helper reads (or re-describes); `previous` is served meanwhile.
    Reading {
        previous: Option<Arc<Listing>>,
    },
    Ready(Arc<Listing>),
    Failed(io::ErrorKind),
}

/// Kept results, most recent last; at most [`CACHED_DIRS`] (a listing is not a hot path, so
/// one lock for the process is fine).
static KEPT: Mutex<Vec<Arc<Kept>>> = Mutex::new(Vec::new());

/// Helper threads reading now, across the process (bounded by [`MAX_HELPERS`]).
static HELPERS: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The listing of `dir`, from what is kept when it is still valid, else read (see the module
/// docs for who reads and how long the caller waits).
fn listing_of(
    kept_dirs: &'static Mutex<Vec<Arc<Kept>>>,
    dir: &Directory,
    bounds: Bounds,
) -> Result<Arc<Listing>, ListingError> {
    let meta = dir.file().metadata().map_err(ListingError::Io)?;
    let key = Key {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        bounds,
    };
    let inline = meta.len() <= bounds.inline_max_bytes;
    let now = Instant::now();
    let kept = {
        let mut all = lock(kept_dirs);
        let found = all.iter().find(|k| {
            k.key == key
                && (k.settled || now.saturating_duration_since(k.read_at) < REVALIDATE_EVERY)
        });
        match found {
            Some(k) => Arc::clone(k),
            None => {
                let settled = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age >= RACY_FOR);
                let k = Arc::new(Kept {
                    key,
                    read_at: now,
                    settled,
                    state: Mutex::new(State::Reading { previous: None }),
                    done: Condvar::new(),
                    kept_in: kept_dirs,
                });
                all.retain(|o| (o.key.dev, o.key.ino, o.key.bounds) != (key.dev, key.ino, bounds));
                while all.len() >= CACHED_DIRS {
                    all.remove(0);
                }
                all.push(Arc::clone(&k));
                drop(all);
                return start_reading(dir, k, None, inline);
            }
        }
    };
    let mut state = lock(&kept.state);
    match &*state {
        State::Ready(l) if now.saturating_duration_since(l.described_at) < REVALIDATE_EVERY => {
            Ok(Arc::clone(l))
        }
        State::Ready(l) => {
            // Stale sizes and dates: describe again.
            let previous = Arc::clone(l);
            *state = State::Reading {
                previous: Some(Arc::clone(&previous)),
            };
            drop(state);
            start_reading(dir, kept, Some(previous), inline)
        }
        State::Reading {
            previous: Some(previous),
        } => Ok(Arc::clone(previous)),
        State::Reading { previous: None } => {
            drop(state);
            wait(&kept)
        }
        State::Failed(kind) => Err(ListingError::Io(io::Error::from(*kind))),
    }
}

/// Reads (or, with `previous`, re-describes) into `kept`: inline, or on a helper thread that
/// the caller waits for at most [`HELPER_WAIT`]. With `previous`, the caller gets it at once.
fn start_reading(
    dir: &Directory,
    kept: Arc<Kept>,
    previous: Option<Arc<Listing>>,
    inline: bool,
) -> Result<Arc<Listing>, ListingError> {
    if inline {
        finish(
            &kept,
            read(dir.file(), kept.key.bounds, previous.as_deref()),
        );
        return wait(&kept);
    }
    if HELPERS.fetch_add(1, Ordering::AcqRel) >= MAX_HELPERS {
        HELPERS.fetch_sub(1, Ordering::AcqRel);
        return match previous {
            // Re-described later; the rows so far meanwhile.
            Some(p) => {
                *lock(&kept.state) = State::Ready(Arc::clone(&p));
                Ok(p)
            }
            None => {
                lock(kept.kept_in).retain(|k| !Arc::ptr_eq(k, &kept));
                Err(ListingError::NotYet)
            }
        };
    }
    let helper = Arc::clone(&kept);
    let prior = previous.clone();
    let spawned = dir.file().try_clone().and_then(|file| {
        std::thread::Builder::new()
            .name("ringserve-listing".into())
            .spawn(move || {
                let result = read(&file, helper.key.bounds, prior.as_deref());
                finish(&helper, result);
                HELPERS.fetch_sub(1, Ordering::AcqRel);
            })
    });
    if let Err(e) = spawned {
        HELPERS.fetch_sub(1, Ordering::AcqRel);
        finish(&kept, Err(e));
    }
    match previous {
        Some(p) => Ok(p),
        None => wait(&kept),
    }
}

/// Stores a reading's result and wakes whoever waits for it.
fn finish(kept: &Kept, result: io::Result<Listing>) {
    *lock(&kept.state) = match result {
        Ok(l) => State::Ready(Arc::new(l)),
        Err(e) => State::Failed(e.kind()),
    };
    kept.done.notify_all();
}

/// Waits at most [`HELPER_WAIT`] for `kept` to be read.
fn wait(kept: &Kept) -> Result<Arc<Listing>, ListingError> {
    let state = lock(&kept.state);
    let (state, _) = kept
        .done
        .wait_timeout_while(state, HELPER_WAIT, |s| {
            matches!(s, State::Reading { previous: None })
        })
        .unwrap_or_else(|p| p.into_inner());
    match &*state {
        State::Ready(l) => Ok(Arc::clone(l)),
        State::Reading { previous: Some(p) } => Ok(Arc::clone(p)),
        State::Reading { previous: None } => Err(ListingError::NotYet),
        State::Failed(kind) => Err(ListingError::Io(io::Error::from(*kind))),
    }
}

/// Reads `dir` (the names, unless `previous` has them) and describes the chosen names.
fn read(dir: &std::fs::File, bounds: Bounds, previous: Option<&Listing>) -> io::Result<Listing> {
    let (names, truncated) = match previous {
        Some(p) => (Arc::clone(&p.names), p.truncated),
        None => {
            let (names, truncated) = choose(dir, bounds)?;
            (Arc::from(names), truncated)
        }
    };
    let rows = describe(dir, &names).into();
    Ok(Listing {
        names,
        truncated,
        rows,
        described_at: Instant::now(),
    })
}

/// `lstat`s each of `names` (following symlinks that stay beneath `dir`) into rows sorted for
/// the page; entries that vanished or are never served are left out.
fn describe(dir: &std::fs::File, names: &[Vec<u8>]) -> Vec<Row> {
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        // An entry that vanished or cannot be described meanwhile is simply left out.
        let Ok((kind, size, mtime_secs)) =
            sys::fs::lstat_entry(dir.as_fd(), Path::new(std::ffi::OsStr::from_bytes(name)))
        else {
            continue;
        };
        let (is_dir, size, mtime_secs) = match kind {
            EntryKind::File => (false, size, mtime_secs),
            EntryKind::Dir => (true, size, mtime_secs),
            EntryKind::Symlink => match follow_beneath(dir, name) {
                Some(meta) if meta.is_dir() || meta.is_file() => {
                    (meta.is_dir(), meta.len(), meta.mtime())
                }
                _ => continue,
            },
            // SECURITY: only what the server would serve is listed; FIFOs, sockets and
            // devices are not.
            EntryKind::Other => continue,
        };
        rows.push(Row {
            name: name.clone(),
            is_dir,
            size,
            mtime_secs,
        });
    }
    // Directories first, then by name, byte order (the names are sorted already).
    rows.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// Streams the names of `dir` and keeps the `max_listed` smallest visible ones, sorted;
/// returns them and whether any were left out.
fn choose(dir: &std::fs::File, bounds: Bounds) -> io::Result<(Vec<Vec<u8>>, bool)> {
    let Bounds {
        dotfiles,
        max_listed,
        max_scanned,
        ..
    } = bounds;
    let fd = dir.as_raw_fd();
    // SECURITY: the magic link names the directory that is already open (and was opened
    // beneath the root); no path from the root is looked up again.
    let mut read_dir = std::fs::read_dir(format!("/proc/self/fd/{fd}"))?;
    // A max-heap: its top is the largest name kept, the first to go when a smaller one comes.
    let mut heap: BinaryHeap<Vec<u8>> = BinaryHeap::with_capacity(max_listed.min(4096) + 1);
    let mut scanned = 0;
    let mut left_out = false;
    let truncated = loop {
        if scanned >= max_scanned {
            break read_dir.next().is_some();
        }
        let Some(entry) = read_dir.next() else {
            break false;
        };
        let entry = entry?;
        scanned += 1;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        // SECURITY: hidden names are not even shown while dotfiles are not served.
        if dotfiles == Dotfiles::Hidden && name.first() == Some(&b'.') {
            continue;
        }
        if heap.len() < max_listed {
            heap.push(name.to_vec());
        } else if heap.peek().is_some_and(|largest| name < largest.as_slice()) {
            heap.pop();
            heap.push(name.to_vec());
            left_out = true;
        } else {
            left_out = true;
        }
    };
    Ok((heap.into_sorted_vec(), truncated || left_out))
}

/// Describes what the symlink `name` in `dir` points to, if it stays beneath `dir`.
fn follow_beneath(dir: &std::fs::File, name: &[u8]) -> Option<Metadata> {
    // SECURITY: the same RESOLVE_BENEATH open the server uses, so a link that leaves the root
    // is neither listed nor stat'ed (its size and mtime would leak information).
    let fd =
        sys::fs::open_beneath(dir.as_fd(), Path::new(std::ffi::OsStr::from_bytes(name))).ok()?;
    std::fs::File::from(fd).metadata().ok()
}

fn page(rows: &[Row], truncated: bool, url_path: &[u8]) -> Vec<u8> {
    let shown = html_escape(&String::from_utf8_lossy(url_path));
    let mut out = String::with_capacity(512 + rows.len() * 160);
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {shown}</title>\n\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em 0 0}}\
         td.s{{text-align:right}}</style>\n</head>\n<body>\n<h1>Index of {shown}</h1>\n\
         <table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n"
    );
    if url_path != b"/" {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td class=\"s\">-</td><td></td></tr>\n");
    }
    for row in rows {
        let slash = if row.is_dir { "/" } else { "" };
        let href = percent_encode_segment(&row.name);
        let name = html_escape(&String::from_utf8_lossy(&row.name));
        let size = if row.is_dir {
            "-".to_owned()
        } else {
            row.size.to_string()
        };
        let mtime = format_utc_minutes(row.mtime_secs);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"s\">{size}</td><td>{mtime}</td></tr>"
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if truncated {
        let _ = writeln!(
            out,
            "<p>listing truncated: only {} entries shown</p>",
            rows.len()
        );
    }
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// Escapes the five characters that matter in HTML text and quoted attributes.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a name for use as one path segment of a relative link: everything but the
/// RFC 3986 unreserved characters is encoded, so `/`, `?`, `#`, `:` and `%` in a name (or
/// non-UTF-8 bytes) cannot change what the link means. The result is plain ASCII that needs no
/// HTML escaping.
fn percent_encode_segment(name: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` in UTC for seconds since the epoch (negative before it).
fn format_utc_minutes(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60
    )
}

/// Proleptic Gregorian (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
///
/// The calendar repeats every 400 years (146,097 days). Counting from 0000-03-01 puts the leap
/// day at the end of each year, so within a 400-year cycle the year is found from the day by
/// removing the leap days before it (one per 4 years, less one per 100, plus one per 400), and
/// months from March on follow a fixed 153-days-per-5-months pattern.
fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let days = days_since_epoch + 719_468;
    let cycle = days.div_euclid(146_097);
    let day_of_cycle = days.rem_euclid(146_097); // 0..=146_096
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + i64::from(month <= 2);
    // Both are small by construction (1..=31 and 1..=12).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests;
