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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

// ---------------------------------------------------------------------------------------------
// Precompressed sidecars: kept with their file's entry, watched with it.

/// A sidecar as cached with its file's entry.
#[derive(Clone, Debug)]
pub struct CachedSidecar {
    pub coding: Coding,
    pub state: SidecarState,
    /// What the sidecar's path named when looked up (see [`Sidecar::identity`]).
    identity: Option<Identity>,
}

/// What a cached sidecar is.
#[derive(Clone, Debug)]
pub enum SidecarState {
    Absent,
    /// Older than the file: ignored (the caller counts it).
    Stale,
    Usable {
        content: Content,
        /// The representation served from it (see [`super::sidecar`]).
        meta: Meta,
        /// Bytes the HTTP layer derived from `meta`, attached with
        /// [`FileCache::attach_sidecar_fields`]; opaque here.
        prebuilt: Option<Rc<[u8]>>,
    },
}

impl FileCache {
    /// Turns sidecars just looked up (beneath `root`) for the cached file `path` into their
    /// cached form (small bodies read into memory, like files) and keeps them with its entry,
    /// after making the entry depend on their names. Returns them either way, for serving
    /// this request. If a sidecar changed while its watches were set up, nothing is kept (the
    /// next request looks them up again).
    pub fn attach_sidecars(
        &mut self,
        root: &RootDir,
        path: &SafePath,
        found: Vec<Sidecar>,
    ) -> Rc<[CachedSidecar]> {
        let sidecars: Rc<[CachedSidecar]> = found.into_iter().map(cached_sidecar).collect();
        let key = path.rel().as_os_str().as_bytes();
        let bytes = sidecar_memory(&sidecars);
        let files = sidecar_files(&sidecars);
        if !self.entries.contains_key(key) {
            return sidecars;
        }
        while self.memory + bytes > MAX_MEMORY || self.files + files > self.max_files {
            let Some(other) = self.entries.keys().find(|k| &***k != key).cloned() else {
                return sidecars;
            };
            self.remove(&other);
        }
        if !self.watch_sidecars(root, path, &sidecars) {
            return sidecars;
        }
        if let Some(e) = self.entries.get_mut(key) {
            let old = e.sidecars.replace(Rc::clone(&sidecars));
            let old = old.as_deref().unwrap_or_default();
            self.memory = self.memory + bytes - sidecar_memory(old);
            self.files = self.files + files - sidecar_files(old);
        }
        sidecars
    }

    /// Makes `path`'s entry depend on its sidecars' names (and open sidecars' inodes), then
    /// checks that every sidecar path still names what was found. `false`: do not keep them.
    fn watch_sidecars(
        &mut self,
        root: &RootDir,
        path: &SafePath,
        sidecars: &[CachedSidecar],
    ) -> bool {
        let key = path.rel().as_os_str().as_bytes();
        let Some((key, mut entry)) = self.entries.remove_entry(key) else {
            return false;
        };
        if let (Check::Watched(deps), Some(watcher)) = (&mut entry.check, self.watcher.as_mut()) {
            let mut failed = false;
            for s in sidecars {
                let Some(p) = path.sidecar(s.coding) else {
                    continue;
                };
                let file = match &s.state {
                    SidecarState::Usable {
                        content: Content::File(f),
                        ..
                    } => Some(f.as_fd()),
                    _ => None,
                };
                let rel = p.rel().as_os_str().as_bytes();
                if watcher
                    .watch_also(root.fd(), &key, rel, file, deps)
                    .is_err()
                {
                    failed = true;
                    break;
                }
            }
            if failed {
                // The entry's own watches stay valid, but its sidecars' are incomplete:
                // check the entry (and its sidecars) with `stat` from now on.
                watcher.forget(&key, deps);
                entry.check = Check::Stat;
            }
        }
        let unchanged = sidecars.iter().all(|s| {
            let now = path
                .sidecar(s.coding)
                .and_then(|p| identity_at(root.fd(), p.rel()).ok());
            now == s.identity
        });
        self.entries.insert(key, entry);
        unchanged
    }

    /// Attaches bytes derived from the `index`th sidecar's metadata of `path`'s entry,
    /// returned with every later hit until the entry changes.
    pub fn attach_sidecar_fields(&mut self, path: &SafePath, index: usize, prebuilt: Rc<[u8]>) {
        let Some(e) = self.entries.get_mut(path.rel().as_os_str().as_bytes()) else {
            return;
        };
        let Some(list) = &e.sidecars else { return };
        // Once per sidecar version: copying the short list is cheaper than a cell per slot.
        let mut list = list.to_vec();
        if let Some(CachedSidecar {
            state: SidecarState::Usable { prebuilt: slot, .. },
            ..
        }) = list.get_mut(index)
        {
            *slot = Some(prebuilt);
            e.sidecars = Some(list.into());
        }
    }
}

fn cached_sidecar(s: Sidecar) -> CachedSidecar {
    let state = match s.found {
        Found::Absent => SidecarState::Absent,
        Found::Stale => SidecarState::Stale,
        Found::Usable(FileEntry { file, meta }) => {
            let whole =
                meta.size <= IN_MEMORY_MAX && s.identity.is_some_and(|id| id.size == meta.size);
            let mut body = vec![0u8; if whole { meta.size as usize } else { 0 }];
            let content = if whole && file.read_exact_at(&mut body, 0).is_ok() {
                Content::Memory(Rc::from(body))
            } else {
                Content::File(Rc::new(file))
            };
            SidecarState::Usable {
                content,
                meta,
                prebuilt: None,
            }
        }
    };
    CachedSidecar {
        coding: s.coding,
        state,
        identity: s.identity,
    }
}

/// Body bytes the sidecars hold in memory.
fn sidecar_memory(sidecars: &[CachedSidecar]) -> usize {
    sidecars
        .iter()
        .map(|s| match &s.state {
            SidecarState::Usable {
                content: Content::Memory(b),
                ..
            } => b.len(),
            _ => 0,
        })
        .sum()
}

/// Descriptors the sidecars hold open.
fn sidecar_files(sidecars: &[CachedSidecar]) -> usize {
    sidecars
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                SidecarState::Usable {
                    content: Content::File(_),
                    ..
                }
            )
        })
        .count()
}

/// Every sidecar path of the entry still names what it named when looked up (nothing
/// included): the `stat` rule for entries that are not watched.
fn sidecars_unchanged(root: &RootDir, path: &SafePath, e: &Entry) -> bool {
    e.sidecars.as_deref().unwrap_or_default().iter().all(|s| {
        let now = path
            .sidecar(s.coding)
            .and_then(|p| identity_at(root.fd(), p.rel()).ok());
        now == s.identity
    })
}

/// The root for a driver without per-worker caches (the threaded mode): one watched copy
/// shared by every connection thread, checked with one non-blocking `read` of its inotify
/// queue per request under a lock. The same ordering argument as the cache's holds: the event
/// of a change is queued before the change returns, so a request that arrives later either
/// reads it or finds the root already replaced by the thread that read it (under the lock).
/// Without inotify, or where the root's path cannot be watched, the path is opened for each
/// request instead.
#[derive(Debug, Default)]
pub struct SharedRoot {
    state: Mutex<SharedState>,
}

#[derive(Debug, Default)]
struct SharedState {
    watcher: Option<Watcher>,
    dir: Option<Arc<RootDir>>,
    /// Watching failed (or is pointless here) once: open per request from now on.
    unwatched: bool,
}

impl SharedRoot {
    pub fn new() -> SharedRoot {
        SharedRoot::default()
    }

    /// The directory `root`'s path names now.
    pub fn current(&self, root: &Root) -> Result<Arc<RootDir>, OpenError> {
        // A panic elsewhere while holding the lock leaves nothing half-done that matters:
        // the state is re-derived from the file system whenever it is unsure.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.unwatched {
            drop(state);
            return root.reopen().map(Arc::new);
        }
        if state.watcher.is_none() {
            // The root's path alone: a few directories, however many symlinks it crosses.
            match Watcher::new(64) {
                Ok(w) => state.watcher = Some(w),
                Err(e) => {
                    state.unwatched = true;
                    log_once(
                        &LOGGED_NO_INOTIFY,
                        format_args!(
                            "no inotify instance ({e}): the root is opened again for every \
                             request"
                        ),
                    );
                    drop(state);
                    return root.reopen().map(Arc::new);
                }
            }
        }
        let SharedState { watcher, dir, .. } = &mut *state;
        let Some(watcher) = watcher.as_mut() else {
            return root.reopen().map(Arc::new);
        };
        let changes = watcher.drain();
        if changes.root || changes.overflow {
            *dir = None;
            watcher.clear();
        }
        if let Some(d) = dir {
            return Ok(Arc::clone(d));
        }
        match watcher.watch_root(root.path()) {
            Ok(fd) if without_remote_events(fd.as_fd()).is_none() => {
                let d = Arc::new(RootDir::from_fd(fd));
                *dir = Some(Arc::clone(&d));
                Ok(d)
            }
            // Not watchable, or on a file system whose changes inotify may not see.
            Ok(_) | Err(_) => {
                watcher.clear();
                let d = root.reopen()?;
                state.unwatched = true;
                log_once(
                    &LOGGED_ROOT,
                    format_args!(
                        "cannot watch the root's path {}: it is opened again for every request",
                        root.path().display()
                    ),
                );
                Ok(Arc::new(d))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Dotfiles, Entry as FsEntry, resolve};
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// `base/current -> v1`, each release holding `small.txt` (its name), `large.bin`
    /// (100 000 bytes of the release's digit) and `sub/f.txt`; the root is `current`.
    struct Site {
        dir: tempfile::TempDir,
        root: Root,
    }

    fn release(base: &Path, v: &str) {
        std::fs::create_dir_all(base.join(v).join("sub")).unwrap();
        std::fs::write(base.join(v).join("small.txt"), v).unwrap();
        let digit = v.as_bytes()[1];
        std::fs::write(base.join(v).join("large.bin"), vec![digit; 100_000]).unwrap();
        std::fs::write(base.join(v).join("sub/f.txt"), v).unwrap();
    }

    fn setup() -> Site {
        let dir = tempfile::tempdir().unwrap();
        release(dir.path(), "v1");
        release(dir.path(), "v2");
        symlink("v1", dir.path().join("current")).unwrap();
        let root = Root::open(&dir.path().join("current")).unwrap();
        Site { dir, root }
    }

    impl Site {
        fn file(&self, rel: &str) -> std::path::PathBuf {
            self.dir.path().join("current").join(rel)
        }

        /// What a request does: the root, a hit, or open + insert. Returns the body (read
        /// through the descriptor for large files) and whether it was a hit.
        fn fetch(&self, cache: &mut FileCache, p: &str) -> Option<(Vec<u8>, bool)> {
            let root = cache.root(&self.root).ok()?;
            let sp = path(p);
            if let Some(hit) = cache.get(&root, &sp) {
                return Some((body(&hit.content, hit.meta.size), true));
            }
            let FsEntry::File(f) = root.open_entry(&sp).ok()? else {
                return None;
            };
            let size = f.meta.size;
            Some((body(&cache.insert(&root, &sp, f), size), false))
        }
    }

    fn body(c: &Content, size: u64) -> Vec<u8> {
        match c {
            Content::Memory(b) => b.to_vec(),
            Content::File(f) => {
                let mut v = vec![0; size as usize];
                f.read_exact_at(&mut v, 0).unwrap();
                v
            }
        }
    }

    fn path(p: &str) -> SafePath {
        resolve(p.as_bytes(), Dotfiles::Hidden).unwrap()
    }

    fn replace(path: &Path, content: &[u8]) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn swap(base: &Path, link: &str, to: &str) {
        let tmp = base.join(format!("{link}.tmp"));
        symlink(to, &tmp).unwrap();
        std::fs::rename(&tmp, base.join(link)).unwrap();
    }

    #[test]
    fn small_files_are_held_in_memory_and_large_ones_open() {
        let site = setup();
        let mut cache = FileCache::new();
        let root = cache.root(&site.root).unwrap();
        let small = path("/small.txt");
        assert!(cache.get(&root, &small).is_none());
        let FsEntry::File(f) = root.open_entry(&small).unwrap() else {
            panic!("a directory")
        };
        match cache.insert(&root, &small, f) {
            Content::Memory(b) => assert_eq!(&*b, b"v1"),
            Content::File(_) => panic!("small file not in memory"),
        }
        cache.attach(&small, Rc::from(&b"fields"[..]));
        let hit = cache.get(&root, &small).expect("hit");
        assert_eq!(hit.prebuilt.as_deref(), Some(&b"fields"[..]));
        let large = path("/large.bin");
        let FsEntry::File(f) = root.open_entry(&large).unwrap() else {
            panic!("a directory")
        };
        assert!(matches!(cache.insert(&root, &large, f), Content::File(_)));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1 });
    }

    #[test]
    fn a_hit_needs_no_time_window_and_a_change_is_seen_at_once() {
        let site = setup();
        let mut cache = FileCache::new();
        assert!(cache.watch_fd().is_some(), "inotify is available here");
        for p in ["/small.txt", "/large.bin", "/sub/f.txt"] {
            assert!(!site.fetch(&mut cache, p).unwrap().1);
            assert!(site.fetch(&mut cache, p).unwrap().1, "{p}");
        }
        // Rename-replace, in-place write, truncate: each seen by the next lookup.
        replace(&site.file("small.txt"), b"new small");
        std::fs::write(site.file("large.bin"), vec![b'x'; 50_000]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(site.file("sub/f.txt"))
            .unwrap()
            .set_len(1)
            .unwrap();
        cache.apply_changes();
        assert_eq!(
            site.fetch(&mut cache, "/small.txt").unwrap(),
            (b"new small".to_vec(), false)
        );
        assert_eq!(
            site.fetch(&mut cache, "/large.bin").unwrap(),
            (vec![b'x'; 50_000], false)
        );
        assert_eq!(
            site.fetch(&mut cache, "/sub/f.txt").unwrap(),
            (b"v".to_vec(), false)
        );
        // Deleted: gone at once.
        std::fs::remove_file(site.file("small.txt")).unwrap();
        cache.apply_changes();
        assert!(site.fetch(&mut cache, "/small.txt").is_none());
    }

    #[test]
    fn a_swap_of_the_root_or_of_a_directory_inside_is_seen_at_once() {
        let site = setup();
        let mut cache = FileCache::new();
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v1");
        assert_eq!(
            site.fetch(&mut cache, "/small.txt").unwrap(),
            (b"v1".to_vec(), true)
        );
        swap(site.dir.path(), "current", "v2");
        cache.apply_changes();
        assert_eq!(
            site.fetch(&mut cache, "/small.txt").unwrap(),
            (b"v2".to_vec(), false)
        );

        // A directory inside the root that is itself a symlink, swapped.
        let v2 = site.dir.path().join("v2");
        std::fs::create_dir(v2.join("a")).unwrap();
        std::fs::create_dir(v2.join("b")).unwrap();
        std::fs::write(v2.join("a/x.txt"), b"from a").unwrap();
        std::fs::write(v2.join("b/x.txt"), b"from b").unwrap();
        symlink("a", v2.join("static")).unwrap();
        assert_eq!(
            site.fetch(&mut cache, "/static/x.txt").unwrap().0,
            b"from a"
        );
        assert!(site.fetch(&mut cache, "/static/x.txt").unwrap().1);
        swap(&v2, "static", "b");
        cache.apply_changes();
        assert_eq!(
            site.fetch(&mut cache, "/static/x.txt").unwrap(),
            (b"from b".to_vec(), false)
        );
    }

    #[test]
    fn an_unchanged_file_stays_a_hit_whatever_changes_beside_it() {
        let site = setup();
        let mut cache = FileCache::new();
        site.fetch(&mut cache, "/small.txt").unwrap();
        std::fs::write(site.file("other.txt"), b"unrelated").unwrap();
        replace(&site.file("sub/f.txt"), b"unrelated too");
        cache.apply_changes();
        assert!(site.fetch(&mut cache, "/small.txt").unwrap().1);
    }

    #[test]
    fn a_mode_change_drops_the_entry() {
        let site = setup();
        let mut cache = FileCache::new();
        site.fetch(&mut cache, "/small.txt").unwrap();
        assert!(site.fetch(&mut cache, "/small.txt").unwrap().1);
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o000);
        std::fs::set_permissions(site.file("small.txt"), mode).unwrap();
        cache.apply_changes();
        // Reopened (which root may still do, with CAP_DAC_OVERRIDE), not served from memory.
        assert!(
            site.fetch(&mut cache, "/small.txt")
                .is_none_or(|(_, hit)| !hit)
        );
    }

    #[test]
    fn a_cache_that_stops_watching_falls_back_to_stat() {
        let site = setup();
        let mut cache = FileCache::new();
        site.fetch(&mut cache, "/small.txt").unwrap();
        cache.stop_watching(std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(cache.watch_fd().is_none());
        assert!(cache.is_empty());
        site.fetch(&mut cache, "/small.txt").unwrap();
        replace(&site.file("small.txt"), b"changed");
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"changed");
    }

    #[test]
    fn a_file_written_through_another_hard_link_is_seen() {
        let site = setup();
        let mut cache = FileCache::new();
        let other = site.dir.path().join("elsewhere.txt");
        std::fs::hard_link(site.file("small.txt"), &other).unwrap();
        site.fetch(&mut cache, "/small.txt").unwrap();
        std::fs::write(&other, b"via the other name").unwrap();
        cache.apply_changes();
        assert_eq!(
            site.fetch(&mut cache, "/small.txt").unwrap(),
            (b"via the other name".to_vec(), false)
        );
    }

    #[test]
    fn past_the_watch_limit_entries_are_checked_with_stat() {
        let site = setup();
        // Enough for the root's path, not for the files.
        let depth = site.dir.path().components().count();
        let mut cache = FileCache::with_watch_limit(depth + 1);
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v1");
        assert!(
            site.fetch(&mut cache, "/small.txt").unwrap().1,
            "still cached"
        );
        // Not watched, yet never stale: no apply_changes at all here.
        replace(&site.file("small.txt"), b"changed");
        assert_eq!(
            site.fetch(&mut cache, "/small.txt").unwrap(),
            (b"changed".to_vec(), false)
        );
        std::fs::write(site.file("small.txt"), b"in place").unwrap();
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"in place");
    }

    #[test]
    fn the_shared_root_follows_a_swap_on_the_next_call() {
        let site = setup();
        let shared = SharedRoot::new();
        let small = path("/small.txt");
        let read = |dir: &RootDir| match dir.open_entry(&small).unwrap() {
            FsEntry::File(f) => body(&Content::File(Rc::new(f.file)), f.meta.size),
            FsEntry::Dir(_) => panic!("a directory"),
        };
        let first = shared.current(&site.root).unwrap();
        assert_eq!(read(&first), b"v1");
        // Unchanged: the same directory, no new walk.
        assert!(Arc::ptr_eq(&first, &shared.current(&site.root).unwrap()));
        for (round, v) in ["v2", "v1", "v2"].into_iter().enumerate() {
            swap(site.dir.path(), "current", v);
            assert_eq!(
                read(&shared.current(&site.root).unwrap()),
                v.as_bytes(),
                "{round}"
            );
        }
        // An in-flight user of the old directory keeps it.
        assert_eq!(read(&first), b"v1");
    }

    #[test]
    fn a_root_whose_path_cannot_be_watched_is_opened_per_request() {
        let site = setup();
        // Not even the root's path fits.
        let mut cache = FileCache::with_watch_limit(1);
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v1");
        assert!(site.fetch(&mut cache, "/small.txt").unwrap().1);
        swap(site.dir.path(), "current", "v2");
        // No events to apply: the next lookup sees the swap by itself.
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v2");
    }

    #[test]
    fn without_inotify_every_hit_is_checked_and_the_root_reopened() {
        let site = setup();
        let mut cache = FileCache::unwatched();
        assert!(cache.watch_fd().is_none());
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v1");
        assert!(site.fetch(&mut cache, "/small.txt").unwrap().1);
        replace(&site.file("small.txt"), b"changed");
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"changed");
        swap(site.dir.path(), "current", "v2");
        assert_eq!(site.fetch(&mut cache, "/small.txt").unwrap().0, b"v2");
    }

    #[test]
    fn a_queue_overflow_empties_the_cache() {
        let Ok(max) = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events") else {
            eprintln!("skipped: no /proc/sys/fs/inotify/max_queued_events");
            return;
        };
        let max: usize = max.trim().parse().unwrap();
        // Bounded: a machine with a huge queue limit is not flooded.
        if max > 100_000 {
            eprintln!("skipped: max_queued_events {max} too large to overflow quickly");
            return;
        }
        let site = setup();
        let mut cache = FileCache::new();
        site.fetch(&mut cache, "/small.txt").unwrap();
        site.fetch(&mut cache, "/sub/f.txt").unwrap();
        assert_eq!(cache.len(), 2);
        // Alternating files so the kernel cannot merge consecutive identical events.
        let a = std::fs::File::options()
            .append(true)
            .open(site.file("sub/f.txt"))
            .unwrap();
        let b = std::fs::File::options()
            .append(true)
            .open(site.file("small.txt"))
            .unwrap();
        for _ in 0..max / 2 + 10 {
            std::io::Write::write_all(&mut &a, b"a").unwrap();
            std::io::Write::write_all(&mut &b, b"b").unwrap();
        }
        cache.apply_changes();
        assert!(cache.is_empty());
        assert!(cache.root.is_none(), "the root is resolved again");
        assert!(
            site.fetch(&mut cache, "/small.txt")
                .unwrap()
                .0
                .starts_with(b"v1b")
        );
    }

    #[test]
    fn entries_and_watches_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 10 {
            std::fs::write(dir.path().join(format!("{i}.txt")), b"x").unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        let mut cache = FileCache::new();
        let rd = cache.root(&root).unwrap();
        for i in 0..MAX_ENTRIES + 10 {
            let p = path(&format!("/{i}.txt"));
            let FsEntry::File(f) = rd.open_entry(&p).unwrap() else {
                panic!("a directory")
            };
            cache.insert(&rd, &p, f);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(cache.memory, MAX_ENTRIES);
        let watches = cache.watcher.as_ref().unwrap().watches();
        // One per file, the root directory, and the root's own path.
        assert!(
            watches <= MAX_ENTRIES + 1 + dir.path().components().count(),
            "{watches}"
        );
    }

    fn sidecars_of(root: &RootDir, p: &SafePath) -> Vec<Sidecar> {
        let FsEntry::File(f) = root.open_entry(p).unwrap() else {
            panic!("a directory")
        };
        Coding::ALL
            .into_iter()
            .map(|c| root.open_sidecar(p, &f.meta, c))
            .collect()
    }

    fn usable(list: &[CachedSidecar]) -> Vec<(Coding, bool)> {
        list.iter()
            .filter_map(|s| match &s.state {
                SidecarState::Usable { content, .. } => {
                    Some((s.coding, matches!(content, Content::Memory(_))))
                }
                _ => None,
            })
            .collect()
    }

    /// Caches `p` and looks its sidecars up, as a request would.
    fn cache_with_sidecars(site: &Site, cache: &mut FileCache, p: &str) -> Rc<[CachedSidecar]> {
        let root = cache.root(&site.root).unwrap();
        let sp = path(p);
        let FsEntry::File(f) = root.open_entry(&sp).unwrap() else {
            panic!("a directory")
        };
        cache.insert(&root, &sp, f);
        let found = sidecars_of(&root, &sp);
        cache.attach_sidecars(&root, &sp, found)
    }

    #[test]
    fn sidecars_are_kept_with_the_entry_and_counted() {
        let site = setup();
        std::fs::write(site.file("small.txt.br"), b"BR").unwrap();
        std::fs::write(site.file("small.txt.gz"), vec![7u8; 20_000]).unwrap();
        let mut cache = FileCache::new();
        let list = cache_with_sidecars(&site, &mut cache, "/small.txt");
        // Small sidecars in memory, large ones from their descriptor; the absent one listed.
        assert_eq!(usable(&list), [(Coding::Br, true), (Coding::Gzip, false)]);
        assert_eq!(list.len(), 3);
        assert_eq!((cache.memory, cache.files), (2 + 2, 1));
        let root = cache.root(&site.root).unwrap();
        let small = path("/small.txt");
        let hit = cache.get(&root, &small).expect("hit");
        assert_eq!(
            usable(hit.sidecars.as_deref().expect("attached")),
            usable(&list)
        );
        cache.attach_sidecar_fields(&small, 0, Rc::from(&b"br fields"[..]));
        let hit = cache.get(&root, &small).expect("hit");
        match &hit.sidecars.as_deref().expect("attached")[0].state {
            SidecarState::Usable { prebuilt, .. } => {
                assert_eq!(prebuilt.as_deref(), Some(&b"br fields"[..]));
            }
            other => panic!("{other:?}"),
        }
        // Dropping the entry gives the sidecars' memory and descriptor back.
        std::fs::remove_file(site.file("small.txt")).unwrap();
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_none());
        assert_eq!((cache.memory, cache.files), (0, 0));
    }

    #[test]
    fn a_sidecar_that_appears_changes_or_goes_drops_the_entry_at_once() {
        let site = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache_with_sidecars(&site, &mut cache, "/small.txt");
        let root = cache.root(&site.root).unwrap();
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_some(), "nothing changed");
        // Appears (a name that did not exist when the entry was made).
        std::fs::write(site.file("small.txt.zst"), b"ZS").unwrap();
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_none(), "a new sidecar");
        let list = cache_with_sidecars(&site, &mut cache, "/small.txt");
        assert_eq!(usable(&list), [(Coding::Zstd, true)]);
        // Replaced by rename.
        replace(&site.file("small.txt.zst"), b"ZSTD");
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_none(), "a changed sidecar");
        cache_with_sidecars(&site, &mut cache, "/small.txt");
        // Removed.
        std::fs::remove_file(site.file("small.txt.zst")).unwrap();
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_none(), "a removed sidecar");
    }

    #[test]
    fn a_large_sidecar_written_in_place_drops_the_entry_at_once() {
        let site = setup();
        std::fs::write(site.file("small.txt.gz"), vec![7u8; 20_000]).unwrap();
        let mut cache = FileCache::new();
        cache_with_sidecars(&site, &mut cache, "/small.txt");
        let root = cache.root(&site.root).unwrap();
        let small = path("/small.txt");
        assert!(cache.get(&root, &small).is_some());
        std::fs::OpenOptions::new()
            .write(true)
            .open(site.file("small.txt.gz"))
            .unwrap()
            .set_len(9)
            .unwrap();
        cache.apply_changes();
        assert!(cache.get(&root, &small).is_none());
    }

    #[test]
    fn unwatched_sidecars_are_checked_on_every_hit() {
        let site = setup();
        let mut cache = FileCache::unwatched();
        cache_with_sidecars(&site, &mut cache, "/small.txt");
        let root = cache.root(&site.root).unwrap();
        let small = path("/small.txt");
        assert!(cache.get(&root, &small).is_some());
        std::fs::write(site.file("small.txt.br"), b"BR").unwrap();
        assert!(
            cache.get(&root, &small).is_none(),
            "stat sees the new sidecar"
        );
    }

    #[test]
    fn open_descriptors_stay_within_the_budget() {
        let site = setup();
        for i in 0..5 {
            std::fs::write(site.file(&format!("l{i}.bin")), vec![2u8; 20_000]).unwrap();
        }
        let mut cache = FileCache::with_max_files(2);
        assert!(!site.fetch(&mut cache, "/small.txt").unwrap().1);
        for i in 0..5 {
            site.fetch(&mut cache, &format!("/l{i}.bin")).unwrap();
            assert!(cache.files <= 2, "{} descriptors cached", cache.files);
        }
        let open_entries = cache
            .entries
            .values()
            .filter(|e| matches!(e.content, Content::File(_)))
            .count();
        assert_eq!(open_entries, cache.files);
        // No budget: large files are served but never kept open; small ones still cached.
        let mut none = FileCache::with_max_files(0);
        assert!(!site.fetch(&mut none, "/large.bin").unwrap().1);
        assert!(none.is_empty());
        assert!(!site.fetch(&mut none, "/small.txt").unwrap().1);
        assert_eq!(none.len(), 1);
    }
}
