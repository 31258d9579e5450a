//! The opt-in HTML directory listing (`--listing`).
//!
//! Owns: reading an open directory and rendering it as one small, self-contained HTML5 page,
//! with every client- or disk-derived byte escaped for where it lands (HTML text, or a
//! percent-encoded link).
//!
//! Must not: follow a symlink out of the root, list what the server would refuse to serve, or
//! do unbounded work for a huge directory. Concretely:
//! - Entries are read through `/proc/self/fd/N` of the already-open directory (so `/proc` must
//!   be mounted; without it the listing fails with an I/O error), never by path from the root.
//! - `.` and `..` are skipped; dotfiles are skipped unless [`Dotfiles::Served`].
//! - Regular files and directories are described with `lstat` data. A symlink is described
//!   by what it points to, opened with `sys::fs::open_beneath`: one that leaves the root or
//!   dangles is left out, exactly as the server would answer 404 for it.
//! - FIFOs, sockets and devices are left out: they are never served.
//! - Which entries: the first [`MAX_LISTED`] visible names in byte order, chosen while the
//!   names stream in (a bounded max-heap keeps the smallest; nothing is `stat`ed yet), from at
//!   most [`MAX_SCANNED`] directory entries. Past either bound the page says "listing
//!   truncated"; past [`MAX_SCANNED`] the names are the first of those read, not of the whole
//!   directory. Only the chosen names are described (`lstat`, and symlinks followed), so an
//!   entry that is left out then (a FIFO, a dangling link) shortens the page instead of
//!   being replaced.
//! - Order on the page: directories first, then files; each group by name, byte by byte.
//! - Cost: reading the names of a 100,000-entry directory takes tens of milliseconds (the
//!   kernel's `getdents`), too long for a uring worker to spend on every request. So each
//!   thread keeps the chosen names of its last [`CACHED_DIRS`] directories, keyed by the
//!   directory's identity and its modification and change times to the nanosecond, which
//!   every creation, removal or rename of an entry updates; a later request reads no names,
//!   and describes the chosen ones afresh at most once per [`REVALIDATE_EVERY`] (sizes and
//!   dates are as fresh as the file cache's), reusing the rows in between. A directory
//!   changed within the last [`RACY_FOR`] is not cached: its timestamp has the file system's
//!   tick, so a change in the same tick as the read would go unseen (git's "racily clean").

use super::cache::REVALIDATE_EVERY;
use super::{Directory, resolve::Dotfiles};
use crate::sys;
use crate::sys::fs::EntryKind;
use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Entries shown at most. Each is `lstat`ed on every request (about a microsecond each), and
/// a page of 1,000 rows is about 150 KB, already more than anyone reads.
pub const MAX_LISTED: usize = 1_000;
/// Directory entries read at most, hidden ones included, so a directory of millions of
/// entries costs no more than this many `readdir` results.
pub const MAX_SCANNED: usize = 100_000;
/// Directories whose chosen names each thread remembers.
pub const CACHED_DIRS: usize = 8;
/// How long after its last change a directory's names are not cached (well above the
/// timestamp tick of any Linux file system).
pub const RACY_FOR: Duration = Duration::from_secs(2);

/// Renders the listing of `dir`, whose request path (raw, as the client sent it, without the
/// query) is `url_path`. Names are HTML-escaped and percent-encoded in links, sorted, with
/// size and mtime; dotfiles appear only when served.
pub fn render(dir: &Directory, url_path: &[u8], dotfiles: Dotfiles) -> io::Result<Vec<u8>> {
    let (entries, truncated) = read_entries(dir, dotfiles, MAX_LISTED, MAX_SCANNED)?;
    Ok(page(&entries, truncated, url_path))
}

/// One row of the listing.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    name: Vec<u8>,
    is_dir: bool,
    size: u64,
    mtime_secs: i64,
}

/// The first visible names of a directory, sorted, and whether any were left out; and their
/// rows as last described, with when.
#[derive(Debug)]
struct Chosen {
    names: Vec<Vec<u8>>,
    truncated: bool,
    described: RefCell<Option<(Instant, Rc<[Row]>)>>,
}

/// What a cached [`Chosen`] is valid for: the same directory, unchanged, read the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    dotfiles: Dotfiles,
    max_listed: usize,
    max_scanned: usize,
}

thread_local! {
    /// Most recent last; at most [`CACHED_DIRS`].
    static CHOSEN: RefCell<Vec<(Key, Rc<Chosen>)>> = const { RefCell::new(Vec::new()) };
}

/// Describes up to `max_listed` visible entries, chosen from at most `max_scanned`, sorted
/// for the page. Returns whether entries were left out.
fn read_entries(
    dir: &Directory,
    dotfiles: Dotfiles,
    max_listed: usize,
    max_scanned: usize,
) -> io::Result<(Rc<[Row]>, bool)> {
    let chosen = chosen_names(dir, dotfiles, max_listed, max_scanned)?;
    let now = Instant::now();
    if let Some((at, rows)) = &*chosen.described.borrow()
        && now.duration_since(*at) < REVALIDATE_EVERY
    {
        return Ok((Rc::clone(rows), chosen.truncated));
    }
    let rows: Rc<[Row]> = describe(dir, &chosen.names).into();
    *chosen.described.borrow_mut() = Some((now, Rc::clone(&rows)));
    Ok((rows, chosen.truncated))
}

/// `lstat`s each of `names` (following symlinks that stay beneath `dir`) into rows sorted for
/// the page; entries that vanished or are never served are left out.
fn describe(dir: &Directory, names: &[Vec<u8>]) -> Vec<Row> {
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        // An entry that vanished or cannot be described meanwhile is simply left out.
        let Ok((kind, size, mtime_secs)) = sys::fs::lstat_entry(
            dir.file().as_fd(),
            Path::new(std::ffi::OsStr::from_bytes(name)),
        ) else {
            continue;
        };
        let (is_dir, size, mtime_secs) = match kind {
            EntryKind::File => (false, size, mtime_secs),
            EntryKind::Dir => (true, size, mtime_secs),
            EntryKind::Symlink => match follow_beneath(dir, name) {
                Some(meta) if meta.is_dir() || meta.is_file() => {
                    (meta.is_dir(), meta.len(), meta.mtime())
                }
                _ => continue,
            },
            // SECURITY: only what the server would serve is listed; FIFOs, sockets and
            // devices are not.
            EntryKind::Other => continue,
        };
        rows.push(Row {
            name: name.clone(),
            is_dir,
            size,
            mtime_secs,
        });
    }
    // Directories first, then by name, byte order (the names are sorted already).
    rows.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// The chosen names of `dir`: from this thread's cache while the directory is unchanged,
/// else read (and cached unless it changed moments ago).
fn chosen_names(
    dir: &Directory,
    dotfiles: Dotfiles,
    max_listed: usize,
    max_scanned: usize,
) -> io::Result<Rc<Chosen>> {
    let meta = dir.file().metadata()?;
    let key = Key {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        dotfiles,
        max_listed,
        max_scanned,
    };
    let hit = CHOSEN.with_borrow(|c| c.iter().find(|(k, _)| *k == key).map(|(_, v)| Rc::clone(v)));
    if let Some(chosen) = hit {
        return Ok(chosen);
    }
    let chosen = Rc::new(choose(dir, dotfiles, max_listed, max_scanned)?);
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= RACY_FOR);
    if settled {
        CHOSEN.with_borrow_mut(|c| {
            c.retain(|(k, _)| (k.dev, k.ino) != (key.dev, key.ino));
            if c.len() >= CACHED_DIRS {
                c.remove(0);
            }
            c.push((key, Rc::clone(&chosen)));
        });
    }
    Ok(chosen)
}

/// Streams the names of `dir` and keeps the `max_listed` smallest visible ones.
fn choose(
    dir: &Directory,
    dotfiles: Dotfiles,
    max_listed: usize,
    max_scanned: usize,
) -> io::Result<Chosen> {
    let fd = dir.file().as_raw_fd();
    // SECURITY: the magic link names the directory that is already open (and was opened
    // beneath the root); no path from the root is looked up again.
    let mut read_dir = std::fs::read_dir(format!("/proc/self/fd/{fd}"))?;
    // A max-heap: its top is the largest name kept, the first to go when a smaller one comes.
    let mut heap: BinaryHeap<Vec<u8>> = BinaryHeap::with_capacity(max_listed.min(4096) + 1);
    let mut scanned = 0;
    let mut left_out = false;
    let truncated = loop {
        if scanned >= max_scanned {
            break read_dir.next().is_some();
        }
        let Some(entry) = read_dir.next() else {
            break false;
        };
        let entry = entry?;
        scanned += 1;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        // SECURITY: hidden names are not even shown while dotfiles are not served.
        if dotfiles == Dotfiles::Hidden && name.first() == Some(&b'.') {
            continue;
        }
        if heap.len() < max_listed {
            heap.push(name.to_vec());
        } else if heap.peek().is_some_and(|largest| name < largest.as_slice()) {
            heap.pop();
            heap.push(name.to_vec());
            left_out = true;
        } else {
            left_out = true;
        }
    };
    Ok(Chosen {
        names: heap.into_sorted_vec(),
        truncated: truncated || left_out,
        described: RefCell::new(None),
    })
}

/// Describes what the symlink `name` in `dir` points to, if it stays beneath `dir`.
fn follow_beneath(dir: &Directory, name: &[u8]) -> Option<Metadata> {
    // SECURITY: the same RESOLVE_BENEATH open the server uses, so a link that leaves the root
    // is neither listed nor stat'ed (its size and mtime would leak information).
    let fd = sys::fs::open_beneath(
        dir.file().as_fd(),
        Path::new(std::ffi::OsStr::from_bytes(name)),
    )
    .ok()?;
    std::fs::File::from(fd).metadata().ok()
}

fn page(rows: &[Row], truncated: bool, url_path: &[u8]) -> Vec<u8> {
    let shown = html_escape(&String::from_utf8_lossy(url_path));
    let mut out = String::with_capacity(512 + rows.len() * 160);
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {shown}</title>\n\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em 0 0}}\
         td.s{{text-align:right}}</style>\n</head>\n<body>\n<h1>Index of {shown}</h1>\n\
         <table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n"
    );
    if url_path != b"/" {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td class=\"s\">-</td><td></td></tr>\n");
    }
    for row in rows {
        let slash = if row.is_dir { "/" } else { "" };
        let href = percent_encode_segment(&row.name);
        let name = html_escape(&String::from_utf8_lossy(&row.name));
        let size = if row.is_dir {
            "-".to_owned()
        } else {
            row.size.to_string()
        };
        let mtime = format_utc_minutes(row.mtime_secs);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"s\">{size}</td><td>{mtime}</td></tr>"
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if truncated {
        let _ = writeln!(
            out,
            "<p>listing truncated: only {} entries shown</p>",
            rows.len()
        );
    }
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// Escapes the five characters that matter in HTML text and quoted attributes.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a name for use as one path segment of a relative link: everything but the
/// RFC 3986 unreserved characters is encoded, so `/`, `?`, `#`, `:` and `%` in a name (or
/// non-UTF-8 bytes) cannot change what the link means. The result is plain ASCII that needs no
/// HTML escaping.
fn percent_encode_segment(name: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` in UTC for seconds since the epoch (negative before it).
fn format_utc_minutes(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60
    )
}

/// Proleptic Gregorian (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
///
/// The calendar repeats every 400 years (146,097 days). Counting from 0000-03-01 puts the leap
/// day at the end of each year, so within a 400-year cycle the year is found from the day by
/// removing the leap days before it (one per 4 years, less one per 100, plus one per 400), and
/// months from March on follow a fixed 153-days-per-5-months pattern.
fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let days = days_since_epoch + 719_468;
    let cycle = days.div_euclid(146_097);
    let day_of_cycle = days.rem_euclid(146_097); // 0..=146_096
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + i64::from(month <= 2);
    // Both are small by construction (1..=31 and 1..=12).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
    use std::os::unix::fs::symlink;
    use std::time::{Duration, UNIX_EPOCH};

    fn open(path: &Path) -> Directory {
        Directory {
            dir: File::open(path).expect("open dir"),
        }
    }

    fn render_str(path: &Path, url: &[u8], dotfiles: Dotfiles) -> String {
        let html = render(&open(path), url, dotfiles).expect("render");
        String::from_utf8(html).expect("listing is UTF-8")
    }

    /// The hrefs in page order.
    fn hrefs(html: &str) -> Vec<&str> {
        html.split("<a href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect()
    }

    #[test]
    fn escapes_and_encodes_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for name in [
            "<script>alert(1)",
            "a&b",
            "with space",
            "100%",
            "café",
            "q'\"x",
        ] {
            fs::write(tmp.path().join(name), b"x").expect("write");
        }
        fs::write(
            tmp.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")),
            b"x",
        )
        .expect("write");
        let html = render_str(tmp.path(), b"/files/", Dotfiles::Hidden);

        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("href=\"%3Cscript%3Ealert%281%29\">&lt;script&gt;alert(1)</a>"));
        assert!(html.contains("href=\"a%26b\">a&amp;b</a>"), "{html}");
        assert!(
            html.contains("href=\"with%20space\">with space</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"100%25\">100%</a>"), "{html}");
        assert!(html.contains("href=\"caf%C3%A9\">café</a>"), "{html}");
        assert!(
            html.contains("href=\"q%27%22x\">q&#39;&quot;x</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"bad%FF\">bad\u{FFFD}</a>"), "{html}");
    }

    #[test]
    fn directories_first_then_byte_order_with_trailing_slash() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for name in ["b.txt", "B.txt", "a.txt", "é.txt"] {
            fs::write(tmp.path().join(name), b"12345").expect("write");
        }
        fs::create_dir(tmp.path().join("zdir")).expect("mkdir");
        fs::create_dir(tmp.path().join("adir")).expect("mkdir");
        let html = render_str(tmp.path(), b"/x/", Dotfiles::Hidden);
        assert_eq!(
            hrefs(&html),
            [
                "../",
                "adir/",
                "zdir/",
                "B.txt",
                "a.txt",
                "b.txt",
                "%C3%A9.txt"
            ],
            "{html}"
        );
        assert!(
            html.contains(">adir/</a></td><td class=\"s\">-</td>"),
            "{html}"
        );
        assert!(
            html.contains(">a.txt</a></td><td class=\"s\">5</td>"),
            "{html}"
        );
    }

    #[test]
    fn dotfiles_hidden_or_shown() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join(".env"), b"SECRET=1").expect("write");
        fs::create_dir(tmp.path().join(".git")).expect("mkdir");
        fs::write(tmp.path().join("shown"), b"").expect("write");
        let hidden = render_str(tmp.path(), b"/", Dotfiles::Hidden);
        assert_eq!(hrefs(&hidden), ["shown"], "{hidden}");
        let served = render_str(tmp.path(), b"/", Dotfiles::Served);
        assert_eq!(hrefs(&served), [".git/", ".env", "shown"], "{served}");
    }

    #[test]
    fn parent_link_except_at_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = render_str(tmp.path(), b"/", Dotfiles::Hidden);
        assert!(!root.contains("../"), "{root}");
        assert!(root.contains("<title>Index of /</title>"), "{root}");
        let sub = render_str(tmp.path(), b"/sub/", Dotfiles::Hidden);
        assert_eq!(hrefs(&sub), ["../"]);
    }

    #[test]
    fn url_path_is_escaped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let html = render_str(
            tmp.path(),
            b"/<img src=x onerror=alert(1)>/&'\"\xff/",
            Dotfiles::Hidden,
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(
                "<h1>Index of /&lt;img src=x onerror=alert(1)&gt;/&amp;&#39;&quot;\u{FFFD}/</h1>"
            ),
            "{html}"
        );
    }

    #[test]
    fn mtime_is_utc_minutes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = File::create(tmp.path().join("f")).expect("create");
        f.set_modified(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .expect("set mtime");
        let html = render_str(tmp.path(), b"/", Dotfiles::Hidden);
        assert!(html.contains("<td>2023-11-14 22:13</td>"), "{html}");
    }

    #[test]
    fn symlinks_listed_only_when_they_stay_inside() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::write(root.join("target.txt"), b"abc").expect("write");
        fs::write(tmp.path().join("outside.txt"), b"outside").expect("write");
        symlink("target.txt", root.join("in-link")).expect("symlink");
        symlink("sub", root.join("in-dirlink")).expect("symlink");
        symlink("../outside.txt", root.join("out-link")).expect("symlink");
        symlink(tmp.path().join("outside.txt"), root.join("abs-link")).expect("symlink");
        symlink("missing", root.join("dangling")).expect("symlink");
        let html = render_str(&root, b"/", Dotfiles::Hidden);
        if sys::fs::openat2_available() {
            assert_eq!(
                hrefs(&html),
                ["in-dirlink/", "sub/", "in-link", "target.txt"],
                "{html}"
            );
            assert!(
                html.contains(">in-link</a></td><td class=\"s\">3</td>"),
                "{html}"
            );
        } else {
            // The fallback opener follows no symlink at all.
            eprintln!("skipped: openat2 unavailable, symlinks are never listed");
            assert_eq!(hrefs(&html), ["sub/", "target.txt"], "{html}");
        }
    }

    #[test]
    fn fifos_are_not_listed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("pipe"))
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        fs::write(tmp.path().join("file"), b"").expect("write");
        let html = render_str(tmp.path(), b"/", Dotfiles::Hidden);
        assert_eq!(hrefs(&html), ["file"], "{html}");
    }

    #[test]
    fn work_is_bounded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for i in 0..10 {
            fs::write(tmp.path().join(format!("f{i}")), b"").expect("write");
            fs::write(tmp.path().join(format!(".h{i}")), b"").expect("write");
        }
        let dir = open(tmp.path());
        let (rows, truncated) = read_entries(&dir, Dotfiles::Served, 5, 1000).expect("read");
        assert_eq!((rows.len(), truncated), (5, true));
        let (_, truncated) = read_entries(&dir, Dotfiles::Hidden, 1000, 20).expect("read");
        assert!(!truncated);
        let (rows, truncated) = read_entries(&dir, Dotfiles::Hidden, 1000, 12).expect("read");
        assert!(rows.len() <= 10 && truncated);
        let html = String::from_utf8(page(&rows, truncated, b"/")).expect("utf-8");
        assert!(html.contains("listing truncated"), "{html}");
        let (rows, truncated) = read_entries(&dir, Dotfiles::Hidden, 1000, 1000).expect("read");
        assert_eq!((rows.len(), truncated), (10, false));
    }

    #[test]
    fn the_first_names_in_byte_order_are_listed_not_an_arbitrary_subset() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Created in a scrambled order, so directory order is not name order.
        for i in 0..500u32 {
            let n = (i * 7919) % 500;
            fs::write(tmp.path().join(format!("f{n:03}")), b"").expect("write");
        }
        fs::create_dir(tmp.path().join("zdir")).expect("mkdir");
        fs::write(tmp.path().join(".hidden"), b"").expect("write");
        let dir = open(tmp.path());
        let (rows, truncated) = read_entries(&dir, Dotfiles::Hidden, 10, 10_000).expect("read");
        let names: Vec<String> = rows
            .iter()
            .map(|r| String::from_utf8_lossy(&r.name).into_owned())
            .collect();
        let want: Vec<String> = (0..10).map(|n| format!("f{n:03}")).collect();
        assert_eq!(names, want);
        assert!(truncated);
        // Dotfiles served: `.hidden` sorts first (b'.' < b'f'); `zdir` is never among the
        // first 10, so it is not listed even though directories come first on the page.
        let (rows, _) = read_entries(&dir, Dotfiles::Served, 3, 10_000).expect("read");
        let names: Vec<&[u8]> = rows.iter().map(|r| r.name.as_slice()).collect();
        assert_eq!(names, [&b".hidden"[..], b"f000", b"f001"]);
        // All of them: directories first, then every file in order.
        let (rows, truncated) = read_entries(&dir, Dotfiles::Hidden, 1000, 10_000).expect("read");
        assert!(!truncated);
        assert_eq!(rows.len(), 501);
        assert_eq!(rows[0].name, b"zdir");
        assert!(rows[1..].windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn chosen_names_are_reused_until_the_directory_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("a"), b"1").expect("write");
        let settle = |p: &Path| {
            let old = SystemTime::now() - Duration::from_secs(60);
            fs::File::open(p)
                .expect("open dir")
                .set_modified(old)
                .expect("set mtime");
        };
        settle(tmp.path());
        let dir = open(tmp.path());
        let first = chosen_names(&dir, Dotfiles::Hidden, 10, 100).expect("read");
        let again = chosen_names(&dir, Dotfiles::Hidden, 10, 100).expect("read");
        assert!(
            Rc::ptr_eq(&first, &again),
            "an unchanged directory is not read again"
        );
        // Sizes are read on every request, cached names or not.
        fs::write(tmp.path().join("a"), b"12345").expect("write");
        settle(tmp.path());
        let (rows, _) = read_entries(&dir, Dotfiles::Hidden, 10, 100).expect("read");
        assert_eq!(rows[0].size, 5);
        // A new entry changes the directory's times: read again.
        fs::write(tmp.path().join("b"), b"").expect("write");
        let fresh = chosen_names(&dir, Dotfiles::Hidden, 10, 100).expect("read");
        assert_eq!(fresh.names, [b"a".to_vec(), b"b".to_vec()]);
        // Changed just now: not cached (a change in the same timestamp tick would be missed).
        let next = chosen_names(&dir, Dotfiles::Hidden, 10, 100).expect("read");
        assert!(!Rc::ptr_eq(&fresh, &next));
    }

    #[test]
    fn civil_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01 00:00"),
            (-1, "1969-12-31 23:59"),
            (59, "1970-01-01 00:00"),
            (951_782_400, "2000-02-29 00:00"),
            (951_868_799, "2000-02-29 23:59"),
            (1_700_000_000, "2023-11-14 22:13"),
            (4_107_542_400, "2100-03-01 00:00"),
            (-2_208_988_800, "1900-01-01 00:00"),
            (253_402_300_799, "9999-12-31 23:59"),
        ];
        for &(secs, want) in cases {
            assert_eq!(format_utc_minutes(secs), want, "{secs}");
        }
        // Consecutive days never skip or repeat a date, across several 400-year cycles.
        let mut prev = civil_from_days(-200_000);
        for d in -199_999..200_000 {
            let cur = civil_from_days(d);
            assert!(cur > prev, "{d}: {prev:?} -> {cur:?}");
            assert!((1..=12).contains(&cur.1) && (1..=31).contains(&cur.2));
            prev = cur;
        }
        // Extreme mtimes do not panic.
        let _ = format_utc_minutes(i64::MAX);
        let _ = format_utc_minutes(i64::MIN);
    }
}
