//! A per-worker cache of served files, so that a hot file costs no file system call per
//! request: the open descriptor, its [`Meta`] (size, mtime, ETag, content type) and, for small
//! files, the whole body in memory.
//!
//! # Freshness: the kernel says what changed
//!
//! Each cache owns an inotify instance ([`super::watch`]). An entry depends on every
//! directory its path is looked up through (each name, symlinks followed, watched before it
//! is looked up) and on the file's own inode; the root's own path is watched the same way
//! from `/`, so a release swap (`current -> v1` renamed to `current -> v2`) is seen, and so
//! is the swap of any directory on the path inside the root. [`FileCache::apply_changes`]
//! reads the queued events (one non-blocking `read`) and drops what they name; a change on
//! the root's path drops everything and re-resolves the root. A hit makes no system call.
//!
//! # Ordering: why "the next request" sees a change
//!
//! fsnotify queues an event synchronously inside the system call that changes the tree
//! (`rename`, `write`, `truncate`, `unlink`, `chmod`, `symlink` …), before that call returns.
//! So if the owner calls [`FileCache::apply_changes`] after a request arrived and before it
//! answers it, a request sent after the change returned is answered from the new state.
//!
//! The io_uring worker does not read the queue on every turn. It polls the descriptor
//! ([`FileCache::watch_fd`], multishot `PollAdd`) in its ring and applies the changes before
//! handling a batch of completions that holds that poll's completion. Queuing the event wakes
//! the poll, which queues the poll's task work inside the changing call; a recv of a request
//! sent afterwards completes through task work queued later, and the kernel runs a ring's task
//! work in FIFO order, so the poll's completion is in the same batch or an earlier one. Not
//! covered by that: a recv completing inline when it is submitted, or inside a task work item
//! already running when the request came, and task work the kernel leaves for the next enter
//! (with `DEFER_TASKRUN` it runs at most 20 items per wait). In each of those the poll's task
//! work is still pending after the batch was read, which the ring's `IORING_SQ_TASKRUN` flag
//! shows (set up with `IORING_SETUP_TASKRUN_FLAG`); so the worker also applies the changes when
//! that flag is set and the batch holds a recv. (Without `DEFER_TASKRUN` the kernel runs all
//! task work before the enter returns, and the first rule suffices.) A request received in an
//! earlier batch and answered later (pipelined, or after a send) was covered when it arrived.
//! The threaded mode has no cache; see [`SharedRoot`].
//!
//! # When the kernel cannot tell us
//!
//! Never silently stale. Each case is logged once per process and falls back to a rule that
//! is safe without events:
//! - no inotify instance (`inotify_init1` fails, e.g. `fs.inotify.max_user_instances`): every
//!   hit is checked with `stat`, and the root's path is opened again for every request;
//! - the watch limit (`ENOSPC`, or the cache's own [`MAX_WATCHES`]) or a path the watcher
//!   cannot follow: that entry is checked with `stat` on every hit;
//! - the root's path cannot be watched: it is opened again for every request, and every hit
//!   is checked with `stat`;
//! - the queue overflowed (`IN_Q_OVERFLOW`): events were lost, so the whole cache is dropped;
//! - the root (or a file) is on a network file system or FUSE, where inotify sees only the
//!   changes made through this machine's mount: the root is opened per request / that file is
//!   checked with `stat` on every hit.
//!
//! A `stat` check compares the path's current identity (`fstatat` from the current root:
//! device, inode, size, mtime) with the cached one.
//!
//! Responses already under way keep what they hold: a body in memory is an `Rc` snapshot and
//! a large file an `Rc<File>` of the version opened, so dropping an entry never changes or
//! truncates a response in flight.
//!
//! # Confinement
//!
//! Entries are created only from files opened through [`RootDir::open_entry`] (`openat2`
//! beneath the root). Watching and revalidation open nothing for serving; they only tell
//! whether the path still names the same inode. A path that now leads elsewhere (even outside
//! the root through a new symlink) has a different identity or an event, so the entry is
//! dropped and the file reopened the confined way.
//!
//! # Sidecars
//!
//! An entry also holds what was found under its precompressed sidecar names
//! ([`CachedSidecar`], attached with [`FileCache::attach_sidecars`]): usable ones with their
//! bytes, stale and absent ones with the identity their path had. The entry depends on those
//! names as on its own (watched the same way, a missing name included), so a sidecar that
//! appears, changes or goes away drops the entry; with the `stat` fallback every sidecar path
//! is compared on each hit.
//!
//! Not shared: each io_uring worker owns one (`Rc`, no locks). Bounded in entries, in memory
//! for bodies, in open descriptors and in watches; when full, an arbitrary entry is evicted
//! (`HashMap` order, effectively random), which is as good as LRU for the skewed popularity
//! of web files and costs nothing per hit.

use super::sidecar::{Coding, Found, Sidecar};
use super::watch::{Dep, Key, WatchError, Watcher, without_remote_events};
use super::{FileEntry, Meta, OpenError, Root, RootDir, SafePath};
use crate::sys::fs::{Identity, identity_at};
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bodies up to this size are kept in memory (and sent without touching the file).
pub const IN_MEMORY_MAX: u64 = 16 * 1024;

/// Entries per worker; each larger file keeps one descriptor open (fewer with
/// [`FileCache::with_max_files`], when the descriptor limit is tight).
pub(crate) const MAX_ENTRIES: usize = 1024;

/// Body bytes kept in memory per worker.
const MAX_MEMORY: usize = 32 * 1024 * 1024;

/// Watches per worker: one per cached file plus the directories they share. The kernel's
/// limit (`fs.inotify.max_user_watches`, often 8192 to 1M) is per user, shared by every worker
/// and every other process; past either limit an entry falls back to `stat` on every hit.
pub const MAX_WATCHES: usize = 4 * MAX_ENTRIES;

/// Where a cached file's bytes are.
#[derive(Clone, Debug)]
pub enum Content {
    /// The whole body, read once.
    Memory(Rc<[u8]>),
    /// The open file.
    File(Rc<File>),
}

/// How an entry learns that it is stale.
#[derive(Debug)]
enum Check {
    /// From events on these watches: a hit costs nothing.
    Watched(Vec<Dep>),
    /// From `fstatat` on every hit.
    Stat,
}

#[derive(Debug)]
struct Entry {
    meta: Meta,
    content: Content,
    identity: Identity,
    check: Check,
    /// Bytes the HTTP layer derived from `meta` once (the header fields of a full response)
    /// and attached with [`FileCache::attach`]; opaque here.
    prebuilt: Option<Rc<[u8]>>,
    /// The sidecars, once looked up ([`FileCache::attach_sidecars`]); `None` before.
    sidecars: Option<Rc<[CachedSidecar]>>,
}

/// A cache hit.
#[derive(Clone, Debug)]
pub struct Hit {
    pub content: Content,
    pub meta: Meta,
    pub prebuilt: Option<Rc<[u8]>>,
    /// `None` when the sidecars were never looked up for this entry.
    pub sidecars: Option<Rc<[CachedSidecar]>>,
}

/// Hit and miss counts since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// The cache of one worker.
#[derive(Debug)]
pub struct FileCache {
    entries: HashMap<Key, Entry, BuildHasherDefault<Fnv>>,
    memory: usize,
    /// Descriptors held open by entries ([`Content::File`], files and sidecars), and their
    /// bound (the worker's share of the descriptor budget, `server::fdbudget`).
    files: usize,
    max_files: usize,
    stats: CacheStats,
    /// None when the kernel gives no inotify instance.
    watcher: Option<Watcher>,
    /// The root as resolved by a watched walk of its path; None until resolved, after a
    /// change on that path, or when it cannot be watched (then it is opened per request).
    root: Option<Arc<RootDir>>,
    /// The root's path could not be watched (or is on a file system without remote events):
    /// it is opened per request from then on, without trying to watch it again.
    root_unwatched: bool,
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache::new()
    }
}

/// One log line per process for each way the kernel can fail to tell us about changes.
static LOGGED_NO_INOTIFY: AtomicBool = AtomicBool::new(false);
static LOGGED_LIMIT: AtomicBool = AtomicBool::new(false);
static LOGGED_ROOT: AtomicBool = AtomicBool::new(false);
static LOGGED_OVERFLOW: AtomicBool = AtomicBool::new(false);
static LOGGED_REMOTE: AtomicBool = AtomicBool::new(false);

fn log_once(flag: &AtomicBool, line: std::fmt::Arguments<'_>) {
    if !flag.swap(true, Ordering::Relaxed) {
        eprintln!("ringserve: {line}");
    }
}

impl FileCache {
    /// A cache that learns about changes from inotify (or, where the kernel refuses an
    /// instance, checks every hit with `stat`; logged once).
    pub fn new() -> FileCache {
        FileCache::with_watch_limit(MAX_WATCHES)
    }

    /// [`FileCache::new`] keeping at most `max_files` descriptors open; small files in memory
    /// hold none and are not counted.
    pub fn with_max_files(max_files: usize) -> FileCache {
        let mut cache = FileCache::new();
        cache.max_files = max_files;
        cache
    }

    /// [`FileCache::new`] holding at most `limit` watches (tests lower it to reach the limit).
    pub fn with_watch_limit(limit: usize) -> FileCache {
        let watcher = match Watcher::new(limit) {
            Ok(w) => Some(w),
            Err(e) => {
                log_once(
                    &LOGGED_NO_INOTIFY,
                    format_args!(
                        "no inotify instance ({e}): cached files are checked with stat on \
                         every request and the root is opened again for each"
                    ),
                );
                None
            }
        };
        FileCache::with_watcher(watcher)
    }

    /// A cache without change notifications, as when the kernel refuses an instance.
    pub fn unwatched() -> FileCache {
        FileCache::with_watcher(None)
    }

    fn with_watcher(watcher: Option<Watcher>) -> FileCache {
        FileCache {
            entries: HashMap::default(),
            memory: 0,
            files: 0,
            max_files: MAX_ENTRIES,
            stats: CacheStats::default(),
            watcher,
            root: None,
            root_unwatched: false,
        }
    }

    /// The descriptor that becomes readable when changes are queued; the owner calls
    /// [`FileCache::apply_changes`] when it is (see the module docs, "Ordering"). None when
    /// the cache is not watching.
    pub fn watch_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watcher.as_ref().map(Watcher::fd)
    }

    /// Reads the queued changes (one non-blocking `read`) and drops what they make stale.
    pub fn apply_changes(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let changes = watcher.drain();
        if changes.overflow {
            log_once(
                &LOGGED_OVERFLOW,
                format_args!(
                    "inotify queue overflowed (fs.inotify.max_queued_events): file cache \
                     emptied (logged once)"
                ),
            );
        }
        if changes.overflow || changes.root {
            self.reset();
            return;
        }
        for key in changes.stale {
            self.remove(&key);
        }
    }

    /// Stops relying on events (the owner cannot poll the descriptor, `why`): from now on
    /// the cache behaves as if the kernel had refused an instance (logged once).
    pub fn stop_watching(&mut self, why: std::io::Error) {
        if self.watcher.is_none() {
            return;
        }
        log_once(
            &LOGGED_NO_INOTIFY,
            format_args!(
                "cannot wait for inotify events ({why}): cached files are checked with stat \
                 on every request and the root is opened again for each"
            ),
        );
        self.reset();
        self.watcher = None;
    }

    /// Drops every entry and watch; the root is resolved again by the next request.
    fn reset(&mut self) {
        self.entries.clear();
        self.memory = 0;
        self.files = 0;
        self.root = None;
        if let Some(w) = self.watcher.as_mut() {
            w.clear();
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The root directory to serve this request from: the watched one (no system call), or,
    /// where the root's path cannot be watched, the one its path names now.
    pub fn root(&mut self, root: &Root) -> Result<Arc<RootDir>, OpenError> {
        if let Some(dir) = &self.root {
            return Ok(Arc::clone(dir));
        }
        let Some(watcher) = self.watcher.as_mut().filter(|_| !self.root_unwatched) else {
            return root.reopen().map(Arc::new);
        };
        match watcher.watch_root(root.path()) {
            Ok(fd) => {
                if let Some(fs) = without_remote_events(fd.as_fd()) {
                    log_once(
                        &LOGGED_REMOTE,
                        format_args!(
                            "the root {} is on {fs}, where inotify does not see changes made \
                             elsewhere: it is opened again for every request and cached files \
                             are checked with stat",
                            root.path().display()
                        ),
                    );
                    watcher.clear();
                    self.root_unwatched = true;
                    return Ok(Arc::new(RootDir::from_fd(fd)));
                }
                let dir = Arc::new(RootDir::from_fd(fd));
                self.root = Some(Arc::clone(&dir));
                Ok(dir)
            }
            Err(e) => {
                // A root missing for the moment (a swap done in two steps) is no reason to
                // stop watching: this request fails, the next one tries again.
                let dir = root.reopen()?;
                log_once(
                    &LOGGED_ROOT,
                    format_args!(
                        "cannot watch the root's path {} ({}): it is opened again for every \
                         request and cached files are checked with stat",
                        root.path().display(),
                        why(&e)
                    ),
                );
                self.root_unwatched = true;
                Ok(Arc::new(dir))
            }
        }
    }

    /// True when hits need no check beyond the events already applied.
    fn watching(&self) -> bool {
        self.watcher.is_some() && self.root.is_some()
    }

    /// The cached file `path` names, if it is cached and still the same file. `root` is what
    /// [`FileCache::root`] returned for this request. A miss is counted here; the caller
    /// opens the file and offers it to [`FileCache::insert`].
    pub fn get(&mut self, root: &RootDir, path: &SafePath) -> Option<Hit> {
        let key = path.rel().as_os_str().as_bytes();
        let watching = self.watching();
        let fresh = match self.entries.get(key) {
            None => false,
            Some(e) => match e.check {
                Check::Watched(_) if watching => true,
                // Not watched (or the root is not): the path must still name the very file.
                Check::Watched(_) | Check::Stat => {
                    identity_at(root.fd(), path.rel()).is_ok_and(|id| id == e.identity)
                        && sidecars_unchanged(root, path, e)
                }
            },
        };
        if !fresh {
            self.remove(key);
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        self.entries.get(key).map(|e| Hit {
            content: e.content.clone(),
            meta: e.meta,
            prebuilt: e.prebuilt.clone(),
            sidecars: e.sidecars.clone(),
        })
    }

    /// Attaches bytes derived from the entry's metadata, returned with every later hit until
    /// the entry changes.
    pub fn attach(&mut self, path: &SafePath, prebuilt: Rc<[u8]>) {
        if let Some(e) = self.entries.get_mut(path.rel().as_os_str().as_bytes()) {
            e.prebuilt = Some(prebuilt);
        }
    }

    /// Caches a file just opened for `path` beneath `root` and returns its content: small
    /// bodies are read into memory. A file that changed since it was opened, or cannot be
    /// read whole, is served from its descriptor this once and not cached.
    pub fn insert(&mut self, root: &RootDir, path: &SafePath, entry: FileEntry) -> Content {
        let FileEntry { file, meta } = entry;
        let Ok(identity) = file.metadata().map(|md| Identity::of(&md)) else {
            return Content::File(Rc::new(file));
        };
        if !same_version(&identity, &meta) {
            // Changed between open and now: serve this once, cache the next one.
            return Content::File(Rc::new(file));
        }
        let in_memory = meta.size <= IN_MEMORY_MAX;
        let bytes = if in_memory { meta.size as usize } else { 0 };
        let files = usize::from(!in_memory);
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_ENTRIES
                || self.memory + bytes > MAX_MEMORY
                || self.files + files > self.max_files)
        {
            self.evict_one();
        }
        if self.files + files > self.max_files {
            // No descriptor budget left (or none at all): served, not kept open.
            return Content::File(Rc::new(file));
        }
        let key: Key = path.rel().as_os_str().as_bytes().into();
        // Watches first, then the body and the final check, so that a change either shows
        // in what is read or is queued as an event.
        let check = self.watch(root, &key, &file);
        let content = if in_memory {
            let mut body = vec![0u8; bytes];
            if file.read_exact_at(&mut body, 0).is_err() {
                self.forget(&key, &check);
                return Content::File(Rc::new(file));
            }
            Content::Memory(Rc::from(body))
        } else {
            Content::File(Rc::new(file))
        };
        // Every watch is in place: if the path still names what was opened, any later
        // change is queued as an event (or, for `Check::Stat`, seen by the next hit).
        if identity_at(root.fd(), path.rel()).ok() != Some(identity) {
            self.forget(&key, &check);
            return content;
        }
        self.remove(&key);
        self.memory += bytes;
        self.files += files;
        let new = Entry {
            meta,
            content: content.clone(),
            identity,
            check,
            prebuilt: None,
            sidecars: None,
        };
        self.entries.insert(key, new);
        content
    }

    /// Sets up the watches `key` (naming the open `file`) depends on, or says why it has to
    /// be checked by `stat`.
    fn watch(&mut self, root: &RootDir, key: &Key, file: &File) -> Check {
        if !self.watching() {
            return Check::Stat;
        }
        let Some(watcher) = self.watcher.as_mut() else {
            return Check::Stat;
        };
        // A file on a network file system below a local root (a mount inside it).
        if let Some(fs) = without_remote_events(file.as_fd()) {
            log_once(
                &LOGGED_REMOTE,
                format_args!(
                    "files on {fs} under the root are checked with stat on every request \
                     (inotify does not see changes made elsewhere)"
                ),
            );
            return Check::Stat;
        }
        match watcher.watch_entry(root.fd(), file.as_fd(), key) {
            Ok(deps) => Check::Watched(deps),
            Err(e) => {
                if matches!(e, WatchError::Limit) {
                    log_once(
                        &LOGGED_LIMIT,
                        format_args!(
                            "inotify watch limit reached (fs.inotify.max_user_watches or \
                             {MAX_WATCHES} per worker): further cached files are checked with \
                             stat on every request"
                        ),
                    );
                }
                Check::Stat
            }
        }
    }

    fn forget(&mut self, key: &Key, check: &Check) {
        if let (Check::Watched(deps), Some(w)) = (check, self.watcher.as_mut()) {
            w.forget(key, deps);
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some((key, old)) = self.entries.remove_entry(key) {
            match &old.content {
                Content::Memory(b) => self.memory -= b.len(),
                Content::File(_) => self.files -= 1,
            }
            let list = old.sidecars.as_deref().unwrap_or_default();
            self.memory -= sidecar_memory(list);
            self.files -= sidecar_files(list);
            if let (Check::Watched(deps), Some(w)) = (&old.check, self.watcher.as_mut()) {
                w.forget(&key, deps);
            }
        }
    }

    fn evict_one(&mut self) {
        let Some(key) = self.entries.keys().next().cloned() else {
            return;
        };
        self.remove(&key);
    }
}

/// True when `id` (from `fstat`) is the version `meta` describes.
fn same_version(id: &Identity, meta: &Meta) -> bool {
    id.size == meta.size
        && id.mtime_secs == meta.mtime_secs
        && id.mtime_nanos == i64::from(meta.mtime_nanos)
}

fn why(e: &WatchError) -> &'static str {
    match e {
        WatchError::Limit => "watch limit reached",
        WatchError::Unwatchable => "the path cannot be followed",
    }
}

/// FNV-1a: a few cycles for a short path, where SipHash costs more than the lookup. Keys are
/// paths of files that exist (an entry is created only after a successful open) and the map
/// is bounded, so a client cannot fill it with colliding keys; SipHash's flooding resistance
/// buys nothing here.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

mod shared_root;
mod sidecars;

pub use shared_root::SharedRoot;
pub use sidecars::{CachedSidecar, SidecarState};
use sidecars::{sidecar_files, sidecar_memory, sidecars_unchanged};

#[cfg(test)]
mod tests;
