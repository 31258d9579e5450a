//! Precompressed sidecars: `app.js.br`, `app.js.zst` and `app.js.gz` written by a build tool
//! next to `app.js`, served in its place to clients that accept the coding.
//!
//! Owns: the names of the sidecars ([`Coding::suffix`]) and the rule for when one may be
//! used ([`RootDir::open_sidecar`]). Must not: negotiate (that is `http::encoding`) or know about
//! responses.
//!
//! A sidecar is **usable** when all of these hold, checked in this order:
//! 1. it opens beneath the root the same way as any served file ([`RootDir::open_entry`]:
//!    `openat2` with `RESOLVE_BENEATH`), so a symlink leading out of the root is not followed;
//! 2. it is a regular file (not a directory, FIFO, socket or device);
//! 3. it is readable by the server (the open succeeded);
//! 4. it is **not older** than the original (mtime to the nanosecond, `>=`): an original
//!    changed after its sidecars were made would otherwise be served in its old version. Such
//!    a sidecar is [`Found::Stale`]: ignored, and reported so the caller can count it.
//!
//! Anything else is [`Found::Absent`]. A usable sidecar is described as the representation it
//! serves: its own size and a strong ETag of its own ([`super::ETag::for_encoded`]), but the
//! original's content type and modification time (`Last-Modified` stays the original's).

use super::{Entry, FileEntry, Meta, RootDir, SafePath};
use crate::sys::fs::{Identity, identity_at};
use std::fs::File;
use std::os::fd::AsFd;

/// A content coding the server can serve from a sidecar file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// Every coding, in the default order of preference (smallest output first).
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The registered content-coding token (IANA HTTP Content Coding Registry), as sent in
    /// `Content-Encoding`: `br`, `zstd`, `gzip` (never the file suffix `zst`).
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The file-name suffix of the sidecar, as the usual command-line tools write it.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// The coding whose token is `name` (case-insensitive).
    pub fn from_token(name: &str) -> Option<Coding> {
        Coding::ALL
            .into_iter()
            .find(|c| c.token().eq_ignore_ascii_case(name))
    }

    /// Whether `path` itself has a sidecar suffix: such a file is served as what it is, and
    /// no sidecars of it are looked for.
    pub fn is_sidecar_name(path: &SafePath) -> bool {
        let name = path.rel().as_os_str().as_encoded_bytes();
        Coding::ALL
            .into_iter()
            .any(|c| name.ends_with(c.suffix().as_bytes()))
    }
}

/// What was found under one sidecar name.
#[derive(Debug)]
pub enum Found {
    /// Nothing usable: absent, not a regular file, unreadable, or reached through a symlink
    /// that leaves the root.
    Absent,
    /// A regular file older than the original: ignored.
    Stale,
    /// Usable: open, with the [`Meta`] of the representation it serves.
    Usable(FileEntry),
}

/// One sidecar looked up.
#[derive(Debug)]
pub struct Sidecar {
    pub coding: Coding,
    pub found: Found,
    /// What the sidecar's path named when it was looked at (`fstatat`, symlinks followed), or
    /// `None` if nothing: a cache compares it later to notice a sidecar that appeared,
    /// changed or went away.
    pub identity: Option<Identity>,
}

impl RootDir {
    /// Looks up the `coding` sidecar of the file `original` (already open, described by
    /// `meta`). See the module docs for the rule.
    pub fn open_sidecar(&self, original: &SafePath, meta: &Meta, coding: Coding) -> Sidecar {
        let Some(path) = original.sidecar(coding) else {
            return Sidecar {
                coding,
                found: Found::Absent,
                identity: None,
            };
        };
        // Nothing there at all is the common case: one `fstatat`, no open.
        let Some(seen) = self.identity_of(&path) else {
            return Sidecar {
                coding,
                found: Found::Absent,
                identity: None,
            };
        };
        let (found, identity) = match self.open_entry(&path) {
            Ok(Entry::File(FileEntry { file, meta: own })) => {
                // The open file's own identity: what the cache compares with later.
                let identity = file.metadata().ok().map(|md| Identity::of(&md));
                (usable_or_stale(file, &own, meta, coding), identity)
            }
            // SECURITY: a directory, a special file, an unreadable file or a symlink that
            // leaves the root is never served; what the path names is kept so that a cache
            // does not take it for a change on every revalidation.
            Ok(Entry::Dir(_)) | Err(_) => (Found::Absent, Some(seen)),
        };
        Sidecar {
            coding,
            found,
            identity,
        }
    }

    /// What `path` names now (symlinks followed), if anything.
    pub(crate) fn identity_of(&self, path: &SafePath) -> Option<Identity> {
        identity_at(self.dir.as_fd(), path.rel()).ok()
    }
}

/// Rule 4 and the representation's metadata.
fn usable_or_stale(file: File, own: &Meta, original: &Meta, coding: Coding) -> Found {
    if (own.mtime_secs, own.mtime_nanos) < (original.mtime_secs, original.mtime_nanos) {
        return Found::Stale;
    }
    let meta = Meta {
        size: own.size,
        // `Last-Modified` is the original's: it is one resource, whatever the coding.
        mtime_secs: original.mtime_secs,
        mtime_nanos: original.mtime_nanos,
        etag: super::ETag::for_encoded(own.size, own.mtime_secs, own.mtime_nanos, coding.token()),
        content_type: original.content_type,
    };
    Found::Usable(FileEntry { file, meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Dotfiles, resolve};
    use std::time::{Duration, SystemTime};

    fn set_mtime(path: &std::path::Path, when: SystemTime) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_modified(when).unwrap();
    }

    fn original(root: &RootDir, p: &SafePath) -> FileEntry {
        match root.open_entry(p).unwrap() {
            Entry::File(f) => f,
            Entry::Dir(_) => panic!("a directory"),
        }
    }

    #[test]
    fn usable_stale_absent_and_escaping_sidecars() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("www");
        std::fs::create_dir(&dir).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::write(dir.join("app.js"), b"console.log(1)").unwrap();
        std::fs::write(dir.join("app.js.br"), b"BR").unwrap();
        std::fs::write(dir.join("app.js.gz"), b"GZ").unwrap();
        std::fs::write(base.path().join("outside"), b"SECRET").unwrap();
        std::os::unix::fs::symlink(base.path().join("outside"), dir.join("app.js.zst")).unwrap();
        set_mtime(&dir.join("app.js"), t0);
        set_mtime(&dir.join("app.js.br"), t0);
        set_mtime(&dir.join("app.js.gz"), t0 - Duration::from_nanos(1));
        let root = crate::fs::Root::open(&dir).unwrap();
        let root = root.at_start();
        let p = resolve(b"/app.js", Dotfiles::Hidden).unwrap();
        let orig = original(root, &p);

        let br = root.open_sidecar(&p, &orig.meta, Coding::Br);
        let Found::Usable(entry) = br.found else {
            panic!("br not usable: {:?}", br.found)
        };
        assert_eq!(entry.meta.size, 2);
        assert_eq!(entry.meta.content_type, orig.meta.content_type);
        assert_eq!(
            (entry.meta.mtime_secs, entry.meta.mtime_nanos),
            (orig.meta.mtime_secs, orig.meta.mtime_nanos)
        );
        assert_ne!(entry.meta.etag, orig.meta.etag);
        assert!(br.identity.is_some());

        let gz = root.open_sidecar(&p, &orig.meta, Coding::Gzip);
        assert!(matches!(gz.found, Found::Stale), "{:?}", gz.found);

        // SECURITY: the symlink out of the root is refused, though it names a regular file.
        let zst = root.open_sidecar(&p, &orig.meta, Coding::Zstd);
        assert!(matches!(zst.found, Found::Absent), "{:?}", zst.found);
        assert!(zst.identity.is_some());

        std::fs::remove_file(dir.join("app.js.zst")).unwrap();
        let zst = root.open_sidecar(&p, &orig.meta, Coding::Zstd);
        assert!(matches!(zst.found, Found::Absent));
        assert!(zst.identity.is_none());
    }

    #[test]
    fn sidecar_names() {
        let p = |s: &str| resolve(s.as_bytes(), Dotfiles::Hidden).unwrap();
        assert_eq!(
            p("/a/app.js").sidecar(Coding::Zstd).unwrap().rel(),
            std::path::Path::new("a/app.js.zst")
        );
        assert!(p("/a/").sidecar(Coding::Br).is_none());
        assert!(p("/").sidecar(Coding::Br).is_none());
        assert!(Coding::is_sidecar_name(&p("/app.js.gz")));
        assert!(!Coding::is_sidecar_name(&p("/app.js")));
        assert_eq!(Coding::from_token("GZIP"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token("zst"), None);
    }
}
