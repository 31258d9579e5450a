//! Precompressed sidecars in the file cache: kept with their file's entry, watched with it
//! (see the parent module's "Sidecars").

use super::*;

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
        /// The representation served from it (see [`crate::fs::sidecar`]).
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
pub(super) fn sidecar_memory(sidecars: &[CachedSidecar]) -> usize {
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
pub(super) fn sidecar_files(sidecars: &[CachedSidecar]) -> usize {
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
pub(super) fn sidecars_unchanged(root: &RootDir, path: &SafePath, e: &Entry) -> bool {
    e.sidecars.as_deref().unwrap_or_default().iter().all(|s| {
        let now = path
            .sidecar(s.coding)
            .and_then(|p| identity_at(root.fd(), p.rel()).ok());
        now == s.identity
    })
}
