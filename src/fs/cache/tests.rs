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
