//! Which cached things a change on disk makes stale: one inotify instance per cache, and the
//! map from its watches back to the cache keys that depend on them.
//!
//! Owns: walking a path the way the kernel resolves it (component by component, expanding
//! symlinks) to learn every directory a lookup passes through, watching those directories
//! (and each cached file itself), and turning the events read back into "these keys are
//! stale", "the root moved" or "events were lost". Must not: decide what to do about it (the
//! cache does), or open anything for serving (watching a path proves nothing about
//! confinement; files are opened only through `sys::fs::open_beneath`).
//!
//! What a key depends on is a list of (watched directory, name) pairs — every name looked up
//! on the way, symlink targets included — plus the file's own inode, which reports writes
//! made through any hard link. Each watch is installed *before* the lookup it covers, so a
//! change is either already visible to the lookup or queued as an event afterwards; the
//! caller closes the remaining gap by checking, once the walk is done, that the path still
//! names the file it opened.

use crate::sys::fs::{Kind, kind_at, open_dir_at, open_dir_path, readlink_at};
use crate::sys::inotify;
use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// A cache key: the path relative to the root (`Arc`, so that the threaded mode's shared
/// root watcher can move between threads; keys are cloned only when entries come and go).
pub type Key = Arc<[u8]>;

/// One dependency: a name looked up in a watched directory, or (empty name) any event on
/// the watched object itself.
pub type Dep = (i32, Box<[u8]>);

/// On a directory: its entries appearing, disappearing, being renamed over, written to,
/// truncated, or changing mode or times (a `chmod` or a `touch` of a child).
const DIR_MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_ONLYDIR;

/// On a cached file: a write or truncation (through any of its names), a mode, time or
/// link-count change, its deletion.
const FILE_MASK: u32 =
    libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;

/// The kernel's limit on symlinks followed in one path walk (`ELOOP` beyond it).
const MAX_SYMLINKS: u32 = 40;

/// One read takes this much: room for many events, and always at least one of the largest.
const READ_BUFFER: usize = 16 * 1024;

/// File systems where inotify sees only the changes made through this machine's mount:
/// network and cluster file systems, and FUSE (whose server may change files behind the
/// kernel's back). Magic numbers from `linux/magic.h` and the file systems' sources.
const WITHOUT_REMOTE_EVENTS: &[(u64, &str)] = &[
    (0x6969, "nfs"),
    (0x517b, "smb"),
    (0xff53_4d42, "cifs"),
    (0xfe53_4d42, "smb2"),
    (0x6573_5546, "fuse"),
    (0x00c3_6400, "ceph"),
    (0x0102_1997, "9p"),
    (0x5346_414f, "afs"),
    (0x0116_1970, "gfs2"),
    (0x7461_636f, "ocfs2"),
    (0x0bd0_0bd0, "lustre"),
];

/// The name of the file system `fd` is on when inotify cannot be trusted there (changes made
/// by other machines or by a FUSE server raise no event); None for local file systems.
pub fn without_remote_events(fd: BorrowedFd<'_>) -> Option<&'static str> {
    let magic = crate::sys::fs::fs_type(fd).ok()?;
    remote_name(magic)
}

fn remote_name(magic: u64) -> Option<&'static str> {
    WITHOUT_REMOTE_EVENTS
        .iter()
        .find(|&&(m, _)| m == magic)
        .map(|&(_, name)| name)
}

/// Why a path could not be watched.
#[derive(Debug)]
pub enum WatchError {
    /// The kernel's watch limit (`ENOSPC`; `fs.inotify.max_user_watches`) or the cache's own.
    Limit,
    /// The walk cannot be repeated in user space the way the kernel did it (the path changed
    /// meanwhile, leaves the root, or `/proc` is not mounted).
    Unwatchable,
}

/// What [`Watcher::drain`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The queue overflowed: events were lost, so anything may have changed.
    pub overflow: bool,
    /// Something on the root's own path changed (a release swap, say).
    pub root: bool,
    /// Keys whose files or paths changed.
    pub stale: Vec<Key>,
}

/// One inotify instance and what depends on each of its watches.
#[derive(Debug)]
pub struct Watcher {
    fd: OwnedFd,
    /// wd → name → keys; the empty name stands for the watched object itself.
    deps: HashMap<i32, HashMap<Box<[u8]>, HashSet<Key>>>,
    /// The most watches this instance holds at once (below the kernel's own limit).
    limit: usize,
    buf: Vec<u8>,
}

/// The key the root's own path is registered under (no cached file has an empty path).
pub fn root_key() -> Key {
    Arc::from(&b""[..])
}

impl Watcher {
    /// A new inotify instance holding at most `limit` watches.
    pub fn new(limit: usize) -> io::Result<Watcher> {
        Ok(Watcher {
            fd: inotify::init()?,
            deps: HashMap::new(),
            limit,
            buf: vec![0; READ_BUFFER.max(inotify::MIN_BUFFER)],
        })
    }

    /// The descriptor that becomes readable when events are queued.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Watches every directory on `path` (absolute; symlinks followed the way `open` would)
    /// under [`root_key`], and returns the directory it names, opened `O_PATH`.
    pub fn watch_root(&mut self, path: &Path) -> Result<OwnedFd, WatchError> {
        let key = root_key();
        let slash = open_dir_path(Path::new("/")).map_err(|_| WatchError::Unwatchable)?;
        let mut deps = Vec::new();
        let path = path.as_os_str().as_bytes();
        let walked = self.walk(slash.as_fd(), path, &key, &mut deps, Walk::Anywhere);
        match walked {
            Ok(Some(dir)) => Ok(dir),
            Ok(None) => {
                self.forget(&key, &deps);
                Err(WatchError::Unwatchable)
            }
            Err(e) => {
                self.forget(&key, &deps);
                Err(e)
            }
        }
    }

    /// Watches what `key` (a path relative to `root`, naming the open `file`) depends on and
    /// returns the dependencies, to be handed back to [`Watcher::forget`] when the entry goes.
    pub fn watch_entry(
        &mut self,
        root: BorrowedFd<'_>,
        file: BorrowedFd<'_>,
        key: &Key,
    ) -> Result<Vec<Dep>, WatchError> {
        let mut deps = Vec::new();
        let result = self
            .walk(root, key, key, &mut deps, Walk::Beneath)
            .and_then(|_| self.add(file, FILE_MASK, &[], key, &mut deps));
        match result {
            Ok(()) => Ok(deps),
            Err(e) => {
                self.forget(key, &deps);
                Err(e)
            }
        }
    }

    /// Makes `key` depend on `path` too (a precompressed sidecar of the cached file): every
    /// directory on its way, its last name even while it does not exist, and, when it is
    /// open (`file`), its inode. The dependencies are appended to `deps`.
    pub fn watch_also(
        &mut self,
        root: BorrowedFd<'_>,
        key: &Key,
        path: &[u8],
        file: Option<BorrowedFd<'_>>,
        deps: &mut Vec<Dep>,
    ) -> Result<(), WatchError> {
        self.walk(root, path, key, deps, Walk::MayBeMissing)?;
        match file {
            Some(file) => self.add(file, FILE_MASK, &[], key, deps),
            None => Ok(()),
        }
    }

    /// Drops `key`'s dependencies; a watch nothing depends on any more is removed.
    pub fn forget(&mut self, key: &Key, deps: &[Dep]) {
        for (wd, name) in deps {
            let Some(names) = self.deps.get_mut(wd) else {
                continue;
            };
            if let Some(keys) = names.get_mut(name) {
                keys.remove(key);
                if keys.is_empty() {
                    names.remove(name);
                }
            }
            if names.is_empty() {
                self.deps.remove(wd);
                inotify::rm_watch(self.fd.as_fd(), *wd);
            }
        }
    }

    /// Removes every watch.
    pub fn clear(&mut self) {
        for wd in std::mem::take(&mut self.deps).into_keys() {
            inotify::rm_watch(self.fd.as_fd(), wd);
        }
    }

    /// Watches held now.
    pub fn watches(&self) -> usize {
        self.deps.len()
    }

    /// Reads every queued event (without waiting) and says what they make stale.
    pub fn drain(&mut self) -> Changes {
        let mut changes = Changes::default();
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            match inotify::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.apply(&buf[..n], &mut changes);
                    // A read returns every queued event that fits; with room for the largest
                    // one left over, the queue was empty when it returned.
                    if buf.len() - n >= inotify::MIN_BUFFER {
                        break;
                    }
                }
                // Unreadable: as good as lost events.
                Err(_) => {
                    changes.overflow = true;
                    break;
                }
            }
        }
        self.buf = buf;
        changes
    }

    /// Applies the events encoded in `bytes` (as `sys::inotify::read` returns them).
    pub fn apply(&mut self, bytes: &[u8], changes: &mut Changes) {
        let root = root_key();
        for ev in inotify::events(bytes) {
            if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                changes.overflow = true;
                continue;
            }
            if ev.mask & libc::IN_IGNORED != 0 {
                // The watch is gone (its inode was deleted or unmounted, or we removed it):
                // everything that depended on it is stale.
                if let Some(names) = self.deps.remove(&ev.wd) {
                    for keys in names.into_values() {
                        changes.stale.extend(keys);
                    }
                }
                continue;
            }
            let Some(names) = self.deps.get(&ev.wd) else {
                continue;
            };
            for name in [ev.name, &[][..]] {
                if let Some(keys) = names.get(name) {
                    changes.stale.extend(keys.iter().cloned());
                }
                if ev.name.is_empty() {
                    break;
                }
            }
        }
        if changes.stale.contains(&root) {
            changes.root = true;
        }
    }

    /// Watches `fd` for `mask` and records that `key` depends on `name` there.
    fn add(
        &mut self,
        fd: BorrowedFd<'_>,
        mask: u32,
        name: &[u8],
        key: &Key,
        deps: &mut Vec<Dep>,
    ) -> Result<(), WatchError> {
        if self.deps.len() >= self.limit {
            return Err(WatchError::Limit);
        }
        let wd = match inotify::add_watch_fd(self.fd.as_fd(), fd, mask) {
            Ok(wd) => wd,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Err(WatchError::Limit),
            Err(_) => return Err(WatchError::Unwatchable),
        };
        let keys = self
            .deps
            .entry(wd)
            .or_default()
            .entry(name.into())
            .or_default();
        if keys.insert(Arc::clone(key)) {
            deps.push((wd, name.into()));
        }
        Ok(())
    }

    /// Walks `path` from `base` as the kernel would, watching each directory before looking
    /// a name up in it. Returns the directory the path ends at (None if it ends at anything
    /// else).
    fn walk(
        &mut self,
        base: BorrowedFd<'_>,
        path: &[u8],
        key: &Key,
        deps: &mut Vec<Dep>,
        how: Walk,
    ) -> Result<Option<OwnedFd>, WatchError> {
        let unwatchable = |_: io::Error| WatchError::Unwatchable;
        // The directories entered below `base`; the last one is where the next name is
        // looked up.
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut todo: Vec<Box<[u8]>> = Vec::new();
        push_components(&mut todo, path);
        let mut symlinks = 0;
        let mut ends_at_dir = true;
        while let Some(name) = todo.pop() {
            ends_at_dir = true;
            if &*name == b".." {
                if dirs.pop().is_none() && how != Walk::Anywhere {
                    // SECURITY: the opener refuses this too (RESOLVE_BENEATH); never watch
                    // above the root.
                    return Err(WatchError::Unwatchable);
                }
                continue;
            }
            let cur = dirs.last().map_or(base, AsFd::as_fd);
            self.add(cur, DIR_MASK, &name, key, deps)?;
            let kind = match kind_at(cur, &name) {
                // A missing last name is watched all the same (its directory reports it
                // appearing) when the walk allows it: a sidecar that does not exist yet.
                Err(e)
                    if how == Walk::MayBeMissing
                        && todo.is_empty()
                        && e.raw_os_error() == Some(libc::ENOENT) =>
                {
                    return Ok(None);
                }
                other => other.map_err(unwatchable)?,
            };
            let (next, absolute) = match kind {
                Kind::Symlink => {
                    symlinks += 1;
                    if symlinks > MAX_SYMLINKS {
                        return Err(WatchError::Unwatchable);
                    }
                    let target = readlink_at(cur, &name).map_err(unwatchable)?;
                    push_components(&mut todo, &target);
                    (None, target.first() == Some(&b'/'))
                }
                Kind::Dir => (
                    Some(open_dir_at(Some(cur), &name).map_err(unwatchable)?),
                    false,
                ),
                Kind::Other if todo.is_empty() => {
                    ends_at_dir = false;
                    (None, false)
                }
                Kind::Other => return Err(WatchError::Unwatchable),
            };
            if absolute {
                if how != Walk::Anywhere {
                    // SECURITY: RESOLVE_BENEATH refuses absolute symlinks as well.
                    return Err(WatchError::Unwatchable);
                }
                // `base` is `/` for walks that may go anywhere.
                dirs.clear();
            }
            dirs.extend(next);
        }
        if !ends_at_dir {
            return Ok(None);
        }
        match dirs.pop() {
            Some(d) => Ok(Some(d)),
            None => base.try_clone_to_owned().map(Some).map_err(unwatchable),
        }
    }
}

/// Whether a walk may leave the directory it starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walk {
    /// The root's own path: anywhere, like `open`.
    Anywhere,
    /// A path inside the root: like `openat2` with `RESOLVE_BENEATH`.
    Beneath,
    /// As `Beneath`, and the last name may not exist (yet).
    MayBeMissing,
}

/// Pushes the components of `path` onto `todo` so that the first one is popped first.
fn push_components(todo: &mut Vec<Box<[u8]>>, path: &[u8]) {
    let start = todo.len();
    todo.extend(
        path.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(Box::from),
    );
    todo[start..].reverse();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn key(s: &str) -> Key {
        Arc::from(s.as_bytes())
    }

    fn open(path: &Path) -> fs::File {
        fs::File::open(path).unwrap()
    }

    #[test]
    fn network_file_systems_are_known_and_local_ones_trusted() {
        assert_eq!(remote_name(0x6969), Some("nfs"));
        assert_eq!(remote_name(0x6573_5546), Some("fuse"));
        // ext4, tmpfs, xfs, btrfs, overlayfs.
        for local in [0xef53, 0x0102_1994, 0x5846_5342, 0x9123_683e, 0x794c_7630] {
            assert_eq!(remote_name(local), None, "{local:#x}");
        }
        let dir = tempfile::tempdir().unwrap();
        let f = fs::File::open(dir.path()).unwrap();
        // The test machine's temporary directory is local.
        assert_eq!(without_remote_events(f.as_fd()), None);
    }

    #[test]
    fn a_rename_over_a_watched_file_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.txt"), b"one").unwrap();
        fs::write(dir.path().join("sub/b.txt"), b"other").unwrap();
        let mut w = Watcher::new(100).unwrap();
        let root = open(dir.path());
        let a = key("sub/a.txt");
        let deps = w
            .watch_entry(
                root.as_fd(),
                open(&dir.path().join("sub/a.txt")).as_fd(),
                &a,
            )
            .unwrap();
        // The root (for "sub"), sub (for "a.txt") and the file itself.
        assert_eq!(deps.len(), 3);
        assert_eq!(w.drain(), Changes::default());
        // A change to a sibling is not ours.
        fs::write(dir.path().join("sub/b.txt"), b"changed").unwrap();
        assert!(w.drain().stale.is_empty());
        fs::write(dir.path().join("sub/new"), b"two").unwrap();
        fs::rename(dir.path().join("sub/new"), dir.path().join("sub/a.txt")).unwrap();
        let changes = w.drain();
        assert!(changes.stale.contains(&a), "{changes:?}");
        assert!(!changes.root);
    }

    #[test]
    fn a_swap_of_a_directory_symlink_on_the_path_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["v1", "v2"] {
            fs::create_dir(dir.path().join(v)).unwrap();
            fs::write(dir.path().join(v).join("a.txt"), v).unwrap();
        }
        symlink("v1", dir.path().join("static")).unwrap();
        let mut w = Watcher::new(100).unwrap();
        let root = open(dir.path());
        let a = key("static/a.txt");
        let deps = w
            .watch_entry(
                root.as_fd(),
                open(&dir.path().join("static/a.txt")).as_fd(),
                &a,
            )
            .unwrap();
        // "static" and "v1" in the root, "a.txt" in v1, the file.
        assert_eq!(deps.len(), 4, "{deps:?}");
        symlink("v2", dir.path().join("static.tmp")).unwrap();
        fs::rename(dir.path().join("static.tmp"), dir.path().join("static")).unwrap();
        assert!(w.drain().stale.contains(&a));
        // Forgetting removes the watches nothing else needs.
        w.forget(&a, &deps);
        assert_eq!(w.watches(), 0);
    }

    #[test]
    fn the_roots_own_path_is_watched_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("releases/v1")).unwrap();
        fs::create_dir_all(dir.path().join("releases/v2")).unwrap();
        symlink("releases/v1", dir.path().join("current")).unwrap();
        let mut w = Watcher::new(100).unwrap();
        let root = w.watch_root(&dir.path().join("current")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let v1 = fs::metadata(dir.path().join("releases/v1")).unwrap();
        assert_eq!(fs::File::from(root).metadata().unwrap().ino(), v1.ino());
        // An unrelated change in the same directory is not the root's.
        fs::write(dir.path().join("releases/other"), b"x").unwrap();
        assert!(!w.drain().root);
        symlink("releases/v2", dir.path().join("current.tmp")).unwrap();
        fs::rename(dir.path().join("current.tmp"), dir.path().join("current")).unwrap();
        assert!(w.drain().root);
    }

    #[test]
    fn paths_leaving_the_root_are_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::write(dir.path().join("outside"), b"x").unwrap();
        symlink("../outside", dir.path().join("root/up")).unwrap();
        symlink(dir.path().join("outside"), dir.path().join("root/abs")).unwrap();
        let mut w = Watcher::new(100).unwrap();
        let root = open(&dir.path().join("root"));
        let file = open(&dir.path().join("outside"));
        for k in ["up", "abs"] {
            let r = w.watch_entry(root.as_fd(), file.as_fd(), &key(k));
            assert!(matches!(r, Err(WatchError::Unwatchable)), "{k}: {r:?}");
        }
        assert_eq!(w.watches(), 0);
    }

    #[test]
    fn the_watch_limit_is_reported_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/c"), b"x").unwrap();
        let mut w = Watcher::new(2).unwrap();
        let root = open(dir.path());
        let r = w.watch_entry(
            root.as_fd(),
            open(&dir.path().join("a/b/c")).as_fd(),
            &key("a/b/c"),
        );
        assert!(matches!(r, Err(WatchError::Limit)), "{r:?}");
        assert_eq!(w.watches(), 0);
    }

    #[test]
    fn an_overflow_and_a_removed_watch_are_reported() {
        let mut w = Watcher::new(100).unwrap();
        let mut changes = Changes::default();
        let mut bytes = Vec::new();
        inotify::encode(-1, libc::IN_Q_OVERFLOW, b"", &mut bytes);
        w.apply(&bytes, &mut changes);
        assert!(changes.overflow);

        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f"), b"x").unwrap();
        let root = open(dir.path());
        let f = key("d/f");
        w.watch_entry(root.as_fd(), open(&dir.path().join("d/f")).as_fd(), &f)
            .unwrap();
        fs::remove_file(dir.path().join("d/f")).unwrap();
        fs::remove_dir(dir.path().join("d")).unwrap();
        let changes = w.drain();
        assert!(changes.stale.contains(&f));
    }
}
