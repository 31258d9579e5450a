//! A per-worker cache of served files, so that a hot file costs no file system call per
//! request: the open descriptor, its [`Meta`] (size, mtime, ETag, content type) and, for small
//! files, the whole body in memory.
//!
//! Freshness: an entry is trusted for [`REVALIDATE_EVERY`]; after that the next request for it
//! compares the path's current identity (`fstatat`: device, inode, size, mtime) with the
//! cached one and drops the entry if they differ. So a file changed or replaced on disk (an
//! in-place edit, or the usual deploy by rename) is served fresh within one second. A body
//! held in memory is a consistent snapshot meanwhile; a file served from its descriptor is
//! also `fstat`ed on every hit, so an in-place edit never makes its length and bytes disagree.
//!
//! Confinement: entries are created only from files opened through [`Root::open_entry`]
//! (`openat2` beneath the root). Revalidation opens nothing; it only tells whether the path
//! still names the same inode. A path that now leads elsewhere (even outside the root through
//! a new symlink) has a different identity, so the entry is dropped and the file reopened the
//! confined way.
//!
//! Not shared: each io_uring worker owns one (`Rc`, no locks). Bounded in entries, in memory
//! for bodies, and in open descriptors; when full, an arbitrary entry is evicted (`HashMap`
//! order, effectively random), which is as good as LRU for the skewed popularity of web
//! files and costs nothing per hit.
//!
//! Sidecars: an entry also holds what was found under its precompressed sidecar names
//! ([`CachedSidecar`], attached with [`FileCache::attach_sidecars`]): usable ones with their
//! bytes, stale and absent ones with the identity their path had. They follow the entry's
//! rules: a sidecar served from its descriptor is `fstat`ed on every hit, and revalidation
//! compares every sidecar path's identity too, so a sidecar that appears, changes or goes
//! away drops the entry like a change of the file itself.

use super::sidecar::{Coding, Found, Sidecar};
use super::{FileEntry, Meta, Root, SafePath};
use crate::sys::fs::{Identity, identity_at};
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long an entry is served without looking at the disk.
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

/// Bodies up to this size are kept in memory (and sent without touching the file).
pub const IN_MEMORY_MAX: u64 = 16 * 1024;

/// Entries per worker; each larger file keeps one descriptor open (fewer with
/// [`FileCache::with_max_files`], when the descriptor limit is tight).
pub(crate) const MAX_ENTRIES: usize = 1024;

/// Body bytes kept in memory per worker.
const MAX_MEMORY: usize = 32 * 1024 * 1024;

/// Where a cached file's bytes are.
#[derive(Clone, Debug)]
pub enum Content {
    /// The whole body, read once.
    Memory(Rc<[u8]>),
    /// The open file.
    File(Rc<File>),
}

#[derive(Debug)]
struct Entry {
    meta: Meta,
    content: Content,
    identity: Identity,
    checked_at: Instant,
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

/// The cache of one worker. `now` is set by the owner once per event-loop turn, so a hit
/// reads no clock.
#[derive(Debug)]
pub struct FileCache {
    entries: HashMap<Box<[u8]>, Entry, BuildHasherDefault<Fnv>>,
    memory: usize,
    /// Entries holding an open descriptor ([`Content::File`]), and their bound.
    files: usize,
    max_files: usize,
    now: Instant,
    stats: CacheStats,
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache::new()
    }
}

impl FileCache {
    pub fn new() -> FileCache {
        FileCache::with_max_files(MAX_ENTRIES)
    }

    /// A cache that keeps at most `max_files` descriptors open (its share of the descriptor
    /// budget, `server::fdbudget`); small files in memory hold none and are not counted.
    pub fn with_max_files(max_files: usize) -> FileCache {
        FileCache {
            entries: HashMap::default(),
            memory: 0,
            files: 0,
            max_files,
            now: Instant::now(),
            stats: CacheStats::default(),
        }
    }

    /// The time freshness is judged against.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
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

    /// The cached file `path` names, if it is cached and still the same file. A miss is
    /// counted here; the caller opens the file and offers it to [`FileCache::insert`].
    pub fn get(&mut self, root: &Root, path: &SafePath) -> Option<Hit> {
        let key = path.rel().as_os_str().as_bytes();
        let now = self.now;
        let fresh = match self.entries.get_mut(key) {
            None => false,
            // A file served from its descriptor is checked on every hit (one `fstat`, small
            // next to sending more than 16 KiB): edited in place, its promised length and
            // its bytes would disagree.
            Some(Entry {
                content: Content::File(f),
                identity,
                ..
            }) if f.metadata().map(|md| Identity::of(&md)).ok() != Some(*identity) => false,
            Some(e) if !sidecar_descriptors_current(e) => false,
            Some(e) if now.saturating_duration_since(e.checked_at) < REVALIDATE_EVERY => true,
            Some(e) => {
                let same = identity_at(root.dir.as_fd(), path.rel())
                    .is_ok_and(|id| id == e.identity)
                    && sidecars_unchanged(root, path, e);
                if same {
                    e.checked_at = now;
                }
                same
            }
        };
        if !fresh {
            if let Some(old) = self.entries.remove(key) {
                self.forget(&old);
            }
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

    /// Caches a file just opened for `path` and returns its content: small bodies are read
    /// into memory (a file that cannot be read whole is served from its descriptor and not
    /// cached).
    pub fn insert(&mut self, path: &SafePath, entry: FileEntry) -> Content {
        let FileEntry { file, meta } = entry;
        let Ok(identity) = file.metadata().map(|md| Identity::of(&md)) else {
            return Content::File(Rc::new(file));
        };
        if identity.size != meta.size {
            // Changed between open and now: serve this once, cache the next one.
            return Content::File(Rc::new(file));
        }
        let content = if meta.size <= IN_MEMORY_MAX {
            let mut body = vec![0u8; meta.size as usize];
            if file.read_exact_at(&mut body, 0).is_err() {
                return Content::File(Rc::new(file));
            }
            Content::Memory(Rc::from(body))
        } else {
            Content::File(Rc::new(file))
        };
        let (bytes, files) = match &content {
            Content::Memory(b) => (b.len(), 0),
            Content::File(_) => (0, 1),
        };
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_ENTRIES
                || self.memory + bytes > MAX_MEMORY
                || self.files + files > self.max_files)
        {
            self.evict_one();
        }
        if bytes > MAX_MEMORY || self.files + files > self.max_files {
            return content;
        }
        let key: Box<[u8]> = path.rel().as_os_str().as_bytes().into();
        self.memory += bytes;
        self.files += files;
        let new = Entry {
            meta,
            content: content.clone(),
            identity,
            checked_at: self.now,
            prebuilt: None,
            sidecars: None,
        };
        if let Some(old) = self.entries.insert(key, new) {
            self.forget(&old);
        }
        content
    }

    fn evict_one(&mut self) {
        let Some(key) = self.entries.keys().next().cloned() else {
            return;
        };
        if let Some(old) = self.entries.remove(&key) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, old: &Entry) {
        match &old.content {
            Content::Memory(b) => self.memory -= b.len(),
            Content::File(_) => self.files -= 1,
        }
        self.memory -= old.sidecars.as_deref().map_or(0, sidecar_memory);
    }
}

// ---------------------------------------------------------------------------------------------
// Precompressed sidecars (issue 13): kept with their file's entry, revalidated with it.

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
    /// Turns sidecars just looked up for the cached file `path` into their cached form
    /// (small bodies read into memory, like files) and keeps them with its entry, if it is
    /// cached. Returns them either way, for serving this request.
    pub fn attach_sidecars(&mut self, path: &SafePath, found: Vec<Sidecar>) -> Rc<[CachedSidecar]> {
        let sidecars: Rc<[CachedSidecar]> = found.into_iter().map(cached_sidecar).collect();
        let key = path.rel().as_os_str().as_bytes();
        let bytes = sidecar_memory(&sidecars);
        if !self.entries.contains_key(key) {
            return sidecars;
        }
        while self.memory + bytes > MAX_MEMORY {
            let Some(other) = self.entries.keys().find(|k| &***k != key).cloned() else {
                return sidecars;
            };
            if let Some(old) = self.entries.remove(&other) {
                self.forget(&old);
            }
        }
        if let Some(e) = self.entries.get_mut(key) {
            let old = e.sidecars.replace(Rc::clone(&sidecars));
            self.memory = self.memory + bytes - old.as_deref().map_or(0, sidecar_memory);
        }
        sidecars
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

/// Every sidecar served from its descriptor is still the file it was (one `fstat` each, as
/// for the file itself).
fn sidecar_descriptors_current(e: &Entry) -> bool {
    e.sidecars
        .as_deref()
        .unwrap_or_default()
        .iter()
        .all(|s| match &s.state {
            SidecarState::Usable {
                content: Content::File(f),
                ..
            } => f.metadata().map(|md| Identity::of(&md)).ok() == s.identity,
            _ => true,
        })
}

/// Every sidecar path of the entry still names what it named when looked up (nothing
/// included).
fn sidecars_unchanged(root: &Root, path: &SafePath, e: &Entry) -> bool {
    e.sidecars.as_deref().unwrap_or_default().iter().all(|s| {
        let now = path.sidecar(s.coding).and_then(|p| root.identity_of(&p));
        now == s.identity
    })
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

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("small.txt"), b"hello").unwrap();
        std::fs::write(dir.path().join("large.bin"), vec![1u8; 100_000]).unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    fn open(root: &Root, p: &SafePath) -> FileEntry {
        match root.open_entry(p).unwrap() {
            FsEntry::File(f) => f,
            FsEntry::Dir(_) => panic!("a directory"),
        }
    }

    fn path(p: &str) -> SafePath {
        resolve(p.as_bytes(), Dotfiles::Hidden).unwrap()
    }

    #[test]
    fn small_files_are_held_in_memory_and_large_ones_open() {
        let (_d, root) = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        assert!(cache.get(&root, &small).is_none());
        match cache.insert(&small, open(&root, &small)) {
            Content::Memory(b) => assert_eq!(&*b, b"hello"),
            Content::File(_) => panic!("small file not in memory"),
        }
        let hit = cache.get(&root, &small).expect("hit");
        assert!(matches!(hit.content, Content::Memory(_)));
        assert_eq!(hit.meta.size, 5);
        assert!(hit.prebuilt.is_none());
        cache.attach(&small, Rc::from(&b"fields"[..]));
        let hit = cache.get(&root, &small).expect("hit");
        assert_eq!(hit.prebuilt.as_deref(), Some(&b"fields"[..]));
        let large = path("/large.bin");
        assert!(matches!(
            cache.insert(&large, open(&root, &large)),
            Content::File(_)
        ));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 1 });
    }

    #[test]
    fn open_descriptors_stay_within_the_budget() {
        let (dir, root) = setup();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("l{i}.bin")), vec![2u8; 20_000]).unwrap();
        }
        let mut cache = FileCache::with_max_files(2);
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        for i in 0..5 {
            let p = path(&format!("/l{i}.bin"));
            assert!(matches!(
                cache.insert(&p, open(&root, &p)),
                Content::File(_)
            ));
            assert!(cache.files <= 2, "{} descriptors cached", cache.files);
        }
        let open_entries = cache
            .entries
            .values()
            .filter(|e| matches!(e.content, Content::File(_)))
            .count();
        assert_eq!(open_entries, cache.files);
        // No budget: large files are served but never kept open.
        let mut none = FileCache::with_max_files(0);
        let large = path("/large.bin");
        assert!(matches!(
            none.insert(&large, open(&root, &large)),
            Content::File(_)
        ));
        assert!(none.is_empty());
        assert!(matches!(
            none.insert(&small, open(&root, &small)),
            Content::Memory(_)
        ));
        assert_eq!(none.len(), 1);
    }

    #[test]
    fn a_changed_file_is_dropped_once_the_interval_has_passed() {
        let (dir, root) = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        // Replaced by rename, the usual deploy.
        std::fs::write(dir.path().join("new.txt"), b"hello, world").unwrap();
        std::fs::rename(dir.path().join("new.txt"), dir.path().join("small.txt")).unwrap();
        // Within the interval the cached version is still served…
        assert!(cache.get(&root, &small).is_some());
        // …and after it, the change is noticed.
        cache.set_now(Instant::now() + REVALIDATE_EVERY);
        assert!(cache.get(&root, &small).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn an_unchanged_file_survives_revalidation() {
        let (_d, root) = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        cache.set_now(Instant::now() + REVALIDATE_EVERY * 3);
        assert!(cache.get(&root, &small).is_some());
    }

    #[test]
    fn a_large_file_edited_in_place_is_dropped_at_once() {
        let (dir, root) = setup();
        let mut cache = FileCache::new();
        let large = path("/large.bin");
        cache.insert(&large, open(&root, &large));
        std::fs::write(dir.path().join("large.bin"), b"short now").unwrap();
        assert!(cache.get(&root, &large).is_none());
    }

    #[test]
    fn a_deleted_file_is_dropped() {
        let (dir, root) = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        std::fs::remove_file(dir.path().join("small.txt")).unwrap();
        cache.set_now(Instant::now() + REVALIDATE_EVERY);
        assert!(cache.get(&root, &small).is_none());
    }

    fn sidecars_of(root: &Root, p: &SafePath) -> Vec<Sidecar> {
        let meta = open(root, p).meta;
        Coding::ALL
            .into_iter()
            .map(|c| root.open_sidecar(p, &meta, c))
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

    #[test]
    fn sidecars_are_kept_with_the_entry_and_counted_in_memory() {
        let (dir, root) = setup();
        std::fs::write(dir.path().join("small.txt.br"), b"BR").unwrap();
        std::fs::write(dir.path().join("small.txt.gz"), vec![7u8; 20_000]).unwrap();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        let list = cache.attach_sidecars(&small, sidecars_of(&root, &small));
        // Small sidecars in memory, large ones from their descriptor; the absent one listed.
        assert_eq!(usable(&list), [(Coding::Br, true), (Coding::Gzip, false)]);
        assert_eq!(list.len(), 3);
        assert_eq!(cache.memory, 5 + 2);
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
        // Dropping the entry gives the sidecars' memory back.
        std::fs::remove_file(dir.path().join("small.txt")).unwrap();
        cache.set_now(Instant::now() + REVALIDATE_EVERY);
        assert!(cache.get(&root, &small).is_none());
        assert_eq!(cache.memory, 0);
    }

    #[test]
    fn a_sidecar_that_appears_or_changes_drops_the_entry_at_revalidation() {
        let (dir, root) = setup();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        cache.attach_sidecars(&small, sidecars_of(&root, &small));
        cache.set_now(Instant::now() + REVALIDATE_EVERY);
        assert!(cache.get(&root, &small).is_some(), "nothing changed");
        std::fs::write(dir.path().join("small.txt.zst"), b"ZS").unwrap();
        // Within the interval the entry stands; after it the new sidecar is noticed.
        assert!(cache.get(&root, &small).is_some());
        cache.set_now(Instant::now() + REVALIDATE_EVERY * 2);
        assert!(cache.get(&root, &small).is_none());
        cache.insert(&small, open(&root, &small));
        let list = cache.attach_sidecars(&small, sidecars_of(&root, &small));
        assert_eq!(usable(&list), [(Coding::Zstd, true)]);
        std::fs::write(dir.path().join("small.txt.zst"), b"ZSTD").unwrap();
        cache.set_now(Instant::now() + REVALIDATE_EVERY * 3);
        assert!(cache.get(&root, &small).is_none(), "a changed sidecar");
    }

    #[test]
    fn a_large_sidecar_edited_in_place_drops_the_entry_at_once() {
        let (dir, root) = setup();
        std::fs::write(dir.path().join("small.txt.gz"), vec![7u8; 20_000]).unwrap();
        let mut cache = FileCache::new();
        let small = path("/small.txt");
        cache.insert(&small, open(&root, &small));
        cache.attach_sidecars(&small, sidecars_of(&root, &small));
        assert!(cache.get(&root, &small).is_some());
        std::fs::write(dir.path().join("small.txt.gz"), b"short now").unwrap();
        assert!(cache.get(&root, &small).is_none());
    }

    #[test]
    fn entries_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 10 {
            std::fs::write(dir.path().join(format!("{i}.txt")), b"x").unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        let mut cache = FileCache::new();
        for i in 0..MAX_ENTRIES + 10 {
            let p = path(&format!("/{i}.txt"));
            cache.insert(&p, open(&root, &p));
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(cache.memory, MAX_ENTRIES);
    }
}
