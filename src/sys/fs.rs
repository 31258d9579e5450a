//! File-system system calls: opening a path strictly beneath a directory descriptor.
//!
//! SKELETON STUB — to be implemented (owner: helper B). Signatures are the contract.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

/// Opens `rel` (relative; `""` means the directory itself) beneath `dir` for reading:
/// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, `O_RDONLY | O_CLOEXEC |
/// O_NONBLOCK | O_NOCTTY` (non-blocking so a FIFO cannot hang a worker). Symlinks are followed
/// only while they stay beneath `dir`.
pub fn open_beneath(_dir: BorrowedFd<'_>, _rel: &Path) -> io::Result<OwnedFd> {
    unimplemented!("helper B")
}
