//! The file system side of serving: naming files safely ([`resolve()`] → [`SafePath`]), opening
//! them beneath the root, and describing them (size, mtime, [`ETag`], [`ContentType`]).
//!
//! Owns: every path-safety decision. Must not: do socket I/O or know about HTTP statuses; the
//! `http` core maps [`PathError`] and [`OpenError`] to responses.

pub mod cache;
pub mod etag;
pub mod favicon;
pub mod listing;
pub mod mime;
pub mod resolve;
pub mod sidecar;
pub mod watch;

pub use etag::ETag;
pub use mime::ContentType;
pub use resolve::{Dotfiles, PathError, SafePath, resolve};

use crate::sys;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The served directory: the path it was given as (symlinks not resolved, so that a later
/// swap of a symlink on it is seen), and the directory it named at start-up.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: RootDir,
}

/// The root directory as one lookup resolved it, held open: every lookup of a file is
/// relative to this descriptor, so nothing can redirect it while it is in use.
#[derive(Debug)]
pub struct RootDir {
    dir: OwnedFd,
}

/// What a [`SafePath`] names.
#[derive(Debug)]
pub enum Entry {
    File(FileEntry),
    Dir(Directory),
}

/// An open regular file and what the response needs to know about it.
#[derive(Debug)]
pub struct FileEntry {
    pub file: File,
    pub meta: Meta,
}

/// Metadata of a file as served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    /// Modification time, seconds since the epoch (negative before it).
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
    pub etag: ETag,
    pub content_type: ContentType,
}

/// An open directory.
#[derive(Debug)]
pub struct Directory {
    pub(crate) dir: File,
}

impl Directory {
    /// The open directory (for listing it).
    pub fn file(&self) -> &File {
        &self.dir
    }
}

/// Why a [`SafePath`] could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Absent, not a regular file or directory, or reached through a symlink that leaves
    /// the root.
    NotFound,
    /// The server may not read it.
    Forbidden,
    /// Anything else (EMFILE, EIO, …).
    Io(io::Error),
}

impl Root {
    /// Opens `path` as the root; it must be a readable directory. Relative paths are taken
    /// against the working directory now; symlinks on the path are kept, not resolved.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = std::path::absolute(path)?;
        let dir = File::open(&path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Root {
            path,
            dir: RootDir { dir: dir.into() },
        })
    }

    /// The absolute path the root was given as (symlinks kept).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory the path named at start-up (for start-up checks; serving uses
    /// [`Root::reopen`] or a cache's watched copy, so that a swapped release is seen).
    pub fn at_start(&self) -> &RootDir {
        &self.dir
    }

    /// The directory the root's path names now: one `open` of the path (`O_PATH`, which
    /// needs no read permission and reads nothing).
    pub fn reopen(&self) -> Result<RootDir, OpenError> {
        match sys::fs::open_dir_path(&self.path) {
            Ok(dir) => Ok(RootDir { dir }),
            Err(e) => Err(open_error(e)),
        }
    }

    /// Opens what `path` names beneath the directory opened at start-up.
    pub fn open_entry(&self, path: &SafePath) -> Result<Entry, OpenError> {
        self.dir.open_entry(path)
    }
}

impl RootDir {
    /// Wraps a directory descriptor obtained by a watched walk of the root's path.
    pub(crate) fn from_fd(dir: OwnedFd) -> RootDir {
        RootDir { dir }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Opens what `path` names, beneath this directory.
    pub fn open_entry(&self, path: &SafePath) -> Result<Entry, OpenError> {
        // SECURITY: `open_beneath` resolves with RESOLVE_BENEATH on the root descriptor, so
        // neither `..` (already removed by `resolve`) nor a symlink can leave the root.
        let fd = sys::fs::open_beneath(self.dir.as_fd(), path.rel()).map_err(open_error)?;
        let file = File::from(fd);
        let md = file.metadata().map_err(OpenError::Io)?;
        if md.is_dir() {
            return Ok(Entry::Dir(Directory { dir: file }));
        }
        if !md.is_file() {
            // SECURITY: FIFOs, sockets and devices are never served.
            return Err(OpenError::NotFound);
        }
        let meta = Meta::new(&md, ContentType::for_path(path.rel()));
        Ok(Entry::File(FileEntry { file, meta }))
    }

    /// Opens `favicon.ico` in the root, if there is one.
    pub fn open_favicon(&self) -> Option<FileEntry> {
        let path = resolve(b"/favicon.ico", Dotfiles::Hidden).ok()?;
        match self.open_entry(&path) {
            Ok(Entry::File(mut f)) => {
                f.meta.content_type = ContentType::ICON;
                Some(f)
            }
            _ => None,
        }
    }
}

impl Meta {
    /// Describes a file from its metadata, served as `content_type`.
    pub fn new(md: &std::fs::Metadata, content_type: ContentType) -> Meta {
        let size = md.len();
        let mtime_secs = md.mtime();
        // The kernel keeps nanoseconds in 0..1e9.
        let mtime_nanos = u32::try_from(md.mtime_nsec()).unwrap_or(0);
        Meta {
            size,
            mtime_secs,
            mtime_nanos,
            etag: ETag::for_file(size, mtime_secs, mtime_nanos),
            content_type,
        }
    }

    /// Seconds since the epoch for `Last-Modified` (pre-epoch files clamp to 0).
    pub fn last_modified_secs(&self) -> u64 {
        u64::try_from(self.mtime_secs).unwrap_or(0)
    }
}

fn open_error(e: io::Error) -> OpenError {
    match e.raw_os_error() {
        // EXDEV: RESOLVE_BENEATH refused a path (e.g. an absolute or escaping symlink).
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EXDEV | libc::ENAMETOOLONG) => {
            OpenError::NotFound
        }
        Some(libc::EACCES | libc::EPERM) => OpenError::Forbidden,
        _ => OpenError::Io(e),
    }
}
