//! The root for the threaded mode, which has no per-worker cache.

use super::*;
use std::sync::{Mutex, PoisonError};

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
