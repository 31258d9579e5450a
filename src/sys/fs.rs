//! File-system system calls: opening a path strictly beneath a directory descriptor.
//!
//! Owns: the `openat2(2)` call with `RESOLVE_BENEATH`, the detection of whether the kernel
//! (or a seccomp filter) allows it, and the stricter fallback used when it does not.
//!
//! Must not: make path-policy decisions beyond "stay beneath the directory" (percent-decoding,
//! `..` removal and dotfiles belong to `fs::resolve`), or block on what it opens (every open is
//! `O_NONBLOCK`, so a FIFO cannot hang a worker).
//!
//! Two ways to open, chosen once per process:
//! - **`openat2`** (Linux ≥ 5.6): the kernel walks the path and fails with `EXDEV` as soon as
//!   a `..` or a symlink would take it out of the directory, and with `ELOOP` on `/proc`-style
//!   magic links. Symlinks that stay inside are followed.
//! - **Fallback walk**, when `openat2` is missing (`ENOSYS`) or forbidden by a seccomp filter
//!   (`EPERM`, or `ENOSYS` again): one `openat` per component, each with `O_NOFOLLOW`. It
//!   follows **no symlinks at all**, not even ones that would stay inside; that is stricter than
//!   `openat2`, never looser.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// Flags for the final open: read only; `O_NONBLOCK` so that opening a FIFO returns at once
/// instead of waiting for a writer; `O_NOCTTY` so that a terminal device can never become the
/// process's controlling terminal.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;

/// `RESOLVE_BENEATH`: no `..`, absolute path or symlink may leave `dir` (fails with `EXDEV`).
/// `RESOLVE_NO_MAGICLINKS`: no `/proc/<pid>/fd/*`-style links, which jump anywhere (`ELOOP`).
const RESOLVE_FLAGS: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// With `RESOLVE_BENEATH` the kernel returns `EAGAIN` when a concurrent rename or mount means it
/// cannot prove the walk stayed beneath the directory; retrying is the documented answer. A
/// few tries are plenty; a directory renamed in a tight loop by an attacker gets an error
/// rather than an unbounded loop.
const MAX_EAGAIN_RETRIES: u32 = 8;

/// Whether `openat2` works here: not probed yet, usable, or unusable.
const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

/// The kernel's `struct open_how` (include/uapi/linux/openat2.h), first version: three `u64`s,
/// 24 bytes. `libc::open_how` exists but is `#[non_exhaustive]`, so it cannot be built with a
/// struct literal; this copy has the same layout and is passed with its own size, which the
/// kernel accepts as `OPEN_HOW_SIZE_VER0`.
#[repr(C)]
#[derive(Debug)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const _: () = assert!(size_of::<OpenHow>() == 24);

/// Opens `rel` (relative; `""` means the directory itself) beneath `dir` for reading:
/// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, `O_RDONLY | O_CLOEXEC |
/// O_NONBLOCK | O_NOCTTY` (non-blocking so a FIFO cannot hang a worker). Symlinks are followed
/// only while they stay beneath `dir`.
///
/// Where `openat2` is unusable (see [`openat2_available`]), a component-by-component `openat`
/// walk is used instead, which follows no symlinks at all.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    if openat2_available() {
        if rel.as_os_str().is_empty() {
            openat2_beneath(dir, c".")
        } else {
            openat2_beneath(dir, &c_path(rel)?)
        }
    } else {
        walk_beneath(dir, rel)
    }
}

/// What identifies a version of a file for the per-worker cache: device, inode, size and
/// modification time to the nanosecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
}

impl Identity {
    pub fn of(md: &std::fs::Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_secs: md.mtime(),
            mtime_nanos: md.mtime_nsec(),
        }
    }
}

/// `fstatat(dir, rel)`, following symlinks: the identity of what `rel` names now. Used only
/// to tell whether a cached file is still the one a path names; it opens nothing, so it needs
/// none of [`open_beneath`]'s confinement (a path that now leads elsewhere has another
/// identity, and the caller reopens it through [`open_beneath`]).
pub fn identity_at(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<Identity> {
    let path = c_path(rel)?;
    // SAFETY: stat is plain old data; all zeroes is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a live, writable stat buffer, both
    // valid for the duration of the call.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), path.as_ptr(), &mut st, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Identity {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_secs: st.st_mtime,
        mtime_nanos: st.st_mtime_nsec,
    })
}

/// What a directory entry is, by `lstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// FIFOs, sockets, devices.
    Other,
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)` of one entry of `dir`: its kind, size and mtime
/// (seconds). For the directory listing, which describes a bounded number of entries by name.
pub fn lstat_entry(dir: BorrowedFd<'_>, name: &Path) -> io::Result<(EntryKind, u64, i64)> {
    let path = c_path(name)?;
    // SAFETY: stat is plain old data; all zeroes is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a live, writable stat buffer, both
    // valid for the duration of the call.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            path.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Ok((kind, u64::try_from(st.st_size).unwrap_or(0), st.st_mtime))
}

/// What a directory entry is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    Other,
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: what the single entry `name` in `dir` is.
pub fn kind_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Kind> {
    let name = c_name(name)?;
    // SAFETY: stat is plain old data; all zeroes is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a NUL-terminated string and `st` a live, writable stat buffer, both
    // valid for the duration of the call.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    })
}

/// The target of the symlink `name` in `dir`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let name = c_name(name)?;
    // PATH_MAX: the kernel never returns a longer target.
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `name` is NUL-terminated and `buf` a live, writable buffer of `buf.len()`
    // bytes, both valid for this synchronous call; the kernel writes at most that many.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Opens the directory entry `name` in `dir` as an `O_PATH` directory descriptor, following
/// no symlink (the caller walks symlinks itself); `dir` None means the working directory.
pub fn open_dir_at(dir: Option<BorrowedFd<'_>>, name: &[u8]) -> io::Result<OwnedFd> {
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    openat_retrying(at, &c_name(name)?, flags)
}

/// Opens the directory `path` names now, following symlinks, as an `O_PATH` descriptor: a
/// handle to look names up beneath, which needs no read permission on the directory.
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    openat_retrying(libc::AT_FDCWD, &c_path(path)?, flags)
}

/// The type of the file system `fd` is on (`f_type` of `fstatfs`, a `*_SUPER_MAGIC` number).
pub fn fs_type(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: statfs is plain old data; all zeroes is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable statfs buffer for the duration of the call.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // The magic numbers are 32-bit values; the field's signedness differs by architecture.
    Ok(st.f_type as u64 & 0xffff_ffff)
}

/// True when [`open_beneath`] uses `openat2`; false when it uses the symlink-refusing fallback
/// walk. Probed once per process; meant for a start-up log line.
pub fn openat2_available() -> bool {
    match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_YES => true,
        OPENAT2_NO => false,
        _ => {
            // Several threads may probe at once; they all reach the same answer.
            let yes = probe_openat2();
            OPENAT2.store(
                if yes { OPENAT2_YES } else { OPENAT2_NO },
                Ordering::Relaxed,
            );
            yes
        }
    }
}

/// Asks the kernel for `.` relative to the working directory with `O_PATH` (which needs no
/// permission on the directory itself). Only `ENOSYS` (old kernel, or a seccomp profile that
/// answers unknown calls so) and `EPERM` (a seccomp profile that answers so) mean "unusable";
/// any other outcome shows the call exists.
fn probe_openat2() -> bool {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH,
    };
    match openat2(libc::AT_FDCWD, c".", &how) {
        Ok(_fd) => true,
        Err(e) => !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)),
    }
}

fn openat2_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    let how = OpenHow {
        // Non-negative flag bits; the kernel takes them as u64.
        flags: OPEN_FLAGS as u64,
        mode: 0,
        // SECURITY: the kernel refuses (EXDEV/ELOOP) any walk that would leave `dir`.
        resolve: RESOLVE_FLAGS,
    };
    let mut eagain = 0;
    loop {
        match openat2(dir.as_raw_fd(), path, &how) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && eagain < MAX_EAGAIN_RETRIES => {
                eagain += 1;
            }
            result => return result,
        }
    }
}

/// One raw `openat2(2)` call.
fn openat2(dir: RawFd, path: &CStr, how: &OpenHow) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated string and `how` a fully initialized `open_how`, both
    // borrowed for the duration of the call, which is synchronous; the size passed is exactly
    // that of the struct. The kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            std::ptr::from_ref(how),
            size_of::<OpenHow>(),
        )
    };
    own_fd(ret as libc::c_int, ret < 0)
}

/// The fallback: walks `rel` one component at a time, refusing every symlink.
fn walk_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let bytes = rel.as_os_str().as_bytes();
    // SECURITY: the walker has no kernel help, so it refuses by itself what `openat2` would:
    // an absolute path, and any `..` (which `fs::resolve` has removed already; this is a
    // second line of defence). EXDEV matches what RESOLVE_BENEATH reports.
    if bytes.first() == Some(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let mut components = bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".");
    if components.clone().any(|c| c == b"..") {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let Some(mut name) = components.next() else {
        return openat_retrying(dir.as_raw_fd(), c".", OPEN_FLAGS);
    };
    // `current` is None while we are still at `dir` itself.
    let mut current: Option<OwnedFd> = None;
    for next in components {
        let at = current.as_ref().map_or(dir.as_raw_fd(), AsRawFd::as_raw_fd);
        // SECURITY: intermediates are opened with O_NOFOLLOW | O_DIRECTORY, so a symlink in
        // the middle of the path fails (ENOTDIR) instead of being followed. O_PATH needs only
        // search permission on the directory, as a kernel path walk does.
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        current = Some(openat_retrying(at, &c_name(name)?, flags)?);
        name = next;
    }
    let at = current.as_ref().map_or(dir.as_raw_fd(), AsRawFd::as_raw_fd);
    // SECURITY: O_NOFOLLOW on the last component: a symlink fails with ELOOP.
    openat_retrying(at, &c_name(name)?, OPEN_FLAGS | libc::O_NOFOLLOW)
}

fn openat_retrying(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `name` is a NUL-terminated string borrowed for this synchronous call; no
        // mode argument is read because `flags` never contains O_CREAT or O_TMPFILE.
        let ret = unsafe { libc::openat(dir, name.as_ptr(), flags) };
        match own_fd(ret, ret < 0) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            result => return result,
        }
    }
}

/// Takes ownership of a descriptor a system call just returned, or reads `errno`.
fn own_fd(ret: libc::c_int, failed: bool) -> io::Result<OwnedFd> {
    if failed {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so `ret` is a fresh descriptor that nothing else owns;
    // the returned OwnedFd becomes its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

fn c_path(rel: &Path) -> io::Result<CString> {
    CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in path"))
}

fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, symlink};

    /// A temporary directory holding `root/` (the served directory) and `outside.txt` beside it.
    struct Fixture {
        _tmp: tempfile::TempDir,
        root: File,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root_path = tmp.path().join("root");
        fs::create_dir_all(root_path.join("sub/deeper")).expect("mkdir");
        fs::write(root_path.join("a.txt"), b"inside a").expect("write");
        fs::write(root_path.join("sub/deeper/b.txt"), b"inside b").expect("write");
        fs::write(tmp.path().join("outside.txt"), b"OUTSIDE").expect("write");
        symlink("a.txt", root_path.join("link-in")).expect("symlink");
        symlink("sub", root_path.join("dirlink-in")).expect("symlink");
        symlink(tmp.path().join("outside.txt"), root_path.join("link-abs")).expect("symlink");
        symlink("../outside.txt", root_path.join("link-up")).expect("symlink");
        symlink(
            "../../../outside.txt",
            root_path.join("sub/deeper/link-up3"),
        )
        .expect("symlink");
        let root = File::open(&root_path).expect("open root");
        Fixture { _tmp: tmp, root }
    }

    fn read(fd: OwnedFd) -> Vec<u8> {
        let mut buf = Vec::new();
        File::from(fd).read_to_end(&mut buf).expect("read");
        buf
    }

    fn errno(r: io::Result<OwnedFd>) -> i32 {
        match r {
            Ok(_) => panic!("opened, expected an error"),
            Err(e) => e.raw_os_error().expect("an OS error"),
        }
    }

    #[test]
    fn opens_files_and_the_directory_itself() {
        let f = fixture();
        let dir = f.root.as_fd();
        assert_eq!(
            read(open_beneath(dir, Path::new("a.txt")).expect("a")),
            b"inside a"
        );
        let b = open_beneath(dir, Path::new("sub/deeper/b.txt")).expect("b");
        assert_eq!(read(b), b"inside b");
        let me = File::from(open_beneath(dir, Path::new("")).expect("root itself"));
        assert!(me.metadata().expect("stat").is_dir());
    }

    #[test]
    fn missing_file_is_enoent() {
        let f = fixture();
        assert_eq!(
            errno(open_beneath(f.root.as_fd(), Path::new("nope"))),
            libc::ENOENT
        );
        assert_eq!(
            errno(walk_beneath(f.root.as_fd(), Path::new("nope"))),
            libc::ENOENT
        );
    }

    #[test]
    fn symlink_inside_the_root_is_followed() {
        if !openat2_available() {
            eprintln!("skipped: openat2 unavailable, the fallback follows no symlinks");
            return;
        }
        let f = fixture();
        let dir = f.root.as_fd();
        assert_eq!(
            read(open_beneath(dir, Path::new("link-in")).expect("link")),
            b"inside a"
        );
        let b = open_beneath(dir, Path::new("dirlink-in/deeper/b.txt")).expect("dir link");
        assert_eq!(read(b), b"inside b");
    }

    #[test]
    fn symlink_leaving_the_root_is_refused() {
        let f = fixture();
        let dir = f.root.as_fd();
        for rel in ["link-abs", "link-up", "sub/deeper/link-up3"] {
            let e = errno(open_beneath(dir, Path::new(rel)));
            assert!(e == libc::EXDEV || e == libc::ELOOP, "{rel}: errno {e}");
        }
    }

    #[test]
    fn absolute_and_dotdot_paths_are_refused() {
        let f = fixture();
        let dir = f.root.as_fd();
        for rel in ["/etc/passwd", "../outside.txt", "sub/../../outside.txt"] {
            assert_eq!(
                errno(open_beneath(dir, Path::new(rel))),
                libc::EXDEV,
                "{rel}"
            );
            assert_eq!(
                errno(walk_beneath(dir, Path::new(rel))),
                libc::EXDEV,
                "{rel}"
            );
        }
    }

    #[test]
    fn fifo_opens_without_blocking() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fifo = CString::new(tmp.path().join("fifo").as_os_str().as_bytes()).expect("path");
        // SAFETY: `fifo` is a NUL-terminated path that outlives this synchronous call.
        let rc = unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo: {}", io::Error::last_os_error());
        let root = File::open(tmp.path()).expect("open root");
        // Without O_NONBLOCK these would wait forever for a writer.
        let fd = open_beneath(root.as_fd(), Path::new("fifo")).expect("fifo");
        assert!(
            File::from(fd)
                .metadata()
                .expect("stat")
                .file_type()
                .is_fifo()
        );
        walk_beneath(root.as_fd(), Path::new("fifo")).expect("fifo via walker");
    }

    #[test]
    fn walker_opens_plain_paths() {
        let f = fixture();
        let dir = f.root.as_fd();
        assert_eq!(
            read(walk_beneath(dir, Path::new("a.txt")).expect("a")),
            b"inside a"
        );
        let b = walk_beneath(dir, Path::new("sub//./deeper/b.txt")).expect("b");
        assert_eq!(read(b), b"inside b");
        let me = File::from(walk_beneath(dir, Path::new("")).expect("root itself"));
        assert!(me.metadata().expect("stat").is_dir());
    }

    #[test]
    fn walker_refuses_every_symlink() {
        let f = fixture();
        let dir = f.root.as_fd();
        // Last component: ELOOP from O_NOFOLLOW, even for a link that stays inside.
        assert_eq!(errno(walk_beneath(dir, Path::new("link-in"))), libc::ELOOP);
        assert_eq!(errno(walk_beneath(dir, Path::new("link-abs"))), libc::ELOOP);
        assert_eq!(errno(walk_beneath(dir, Path::new("link-up"))), libc::ELOOP);
        // Intermediate component: ENOTDIR from O_DIRECTORY | O_NOFOLLOW.
        let e = errno(walk_beneath(dir, Path::new("dirlink-in/deeper/b.txt")));
        assert!(e == libc::ENOTDIR || e == libc::ELOOP, "errno {e}");
    }

    #[test]
    fn nul_in_path_is_invalid_input() {
        let f = fixture();
        let err = open_beneath(f.root.as_fd(), Path::new("a\0b")).expect_err("NUL");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_openat2_probe_agrees_with_a_direct_call() {
        // The probe's verdict must match what the kernel does with a real `RESOLVE_BENEATH`
        // open of an existing file: where openat2 works, an escape is refused with EXDEV;
        // where it is missing or forbidden (ENOSYS, EPERM), the walker fallback is used and
        // still refuses the escape.
        let f = fixture();
        let inside = open_beneath(f.root.as_fd(), Path::new("a.txt"));
        assert_eq!(read(inside.expect("a.txt beneath the root")), b"inside a");
        let escape = errno(open_beneath(f.root.as_fd(), Path::new("link-up")));
        if openat2_available() {
            assert_eq!(
                escape,
                libc::EXDEV,
                "openat2 refuses a climb out with EXDEV"
            );
        } else {
            eprintln!("note: openat2 unavailable here; the walker fallback refused with {escape}");
            assert!(
                escape == libc::ELOOP || escape == libc::EXDEV,
                "errno {escape}"
            );
        }
    }
}
