//! Deploys (issue 11): once the system call that changes the tree has returned, every request
//! sent afterwards, on any worker, is answered from the new state; a response already under
//! way finishes with the version it started with.
//!
//! The servers run two workers (the test default), and connections are spread over them by
//! `SO_REUSEPORT`'s hash, so each check uses [`FRESH`] new connections (the chance that all of
//! them reach the same worker is 2⁻⁷) plus [`KEPT`] keep-alive connections opened before the
//! change, whose receive is already armed (the uring worker's two ways of seeing a request).
//! Every check is strict — the old version is never acceptable after the change returned —
//! and repeated for a number of rounds given beside each test, chosen so that a race between
//! the change and the request (which would show up as an occasional old response) has
//! hundreds of chances per mode while each test stays within a few seconds.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// New connections per check.
const FRESH: usize = 8;
/// Keep-alive connections opened before a change and used after it.
const KEPT: usize = 4;
/// A body the cache keeps in memory (≤ 16 KiB).
const SMALL: usize = 2 * 1024;
/// A body sent with `sendfile` from the cached descriptor.
const LARGE: usize = 1 << 20;
/// A download long enough to be in flight across a swap (32 MiB: far beyond the socket
/// buffers, and quick to write and compare).
const HUGE: usize = 32 << 20;

/// `base/current -> v1`, with `v1` and `v2` each holding `small.txt`, `large.bin` and
/// `static -> static-a` (`static-a/x.txt`, `static-b/x.txt`). The server serves `current`.
struct Releases {
    dir: TempDir,
}

/// The body of `name` in release `v`, round `round`: `len` bytes, different for each.
fn body(name: &str, v: &str, round: usize, len: usize) -> Vec<u8> {
    let tag = format!("{name} {v} round {round}\n");
    let mut out = tag.as_bytes().repeat(len / tag.len() + 1);
    out.truncate(len);
    out
}

impl Releases {
    fn new() -> Releases {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Releases { dir };
        for v in ["v1", "v2"] {
            let rel = r.base().join(v);
            std::fs::create_dir_all(rel.join("static-a")).unwrap();
            std::fs::create_dir_all(rel.join("static-b")).unwrap();
            std::fs::write(rel.join("small.txt"), body("small", v, 0, SMALL)).unwrap();
            std::fs::write(rel.join("large.bin"), body("large", v, 0, LARGE)).unwrap();
            std::fs::write(rel.join("static-a/x.txt"), format!("{v} static a")).unwrap();
            std::fs::write(rel.join("static-b/x.txt"), format!("{v} static b")).unwrap();
            symlink("static-a", rel.join("static")).unwrap();
        }
        symlink("v1", r.base().join("current")).unwrap();
        r
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.base().join("current")
    }

    /// A file of the release being served.
    fn file(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Points the symlink `dir/link` at `to` atomically (`ln -sfn to tmp && mv -T tmp link`).
    fn swap(dir: &Path, link: &str, to: &str) {
        let tmp = dir.join(format!(".{link}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        symlink(to, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(link)).unwrap();
    }

    /// Replaces `rel` by rename, the way rsync and most deploy tools do.
    fn replace(&self, rel: &str, content: &[u8]) {
        let path = self.file(rel);
        let tmp = path.with_file_name(".deploy.tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
}

/// A keep-alive GET on `conn`.
fn get_on(conn: &mut Conn, path: &str, headers: &[&str]) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    conn.send(req.as_bytes());
    conn.read_response(false)
}

/// Opens [`KEPT`] keep-alive connections and makes one request on each, so that every one is
/// established with a worker before the change.
fn kept(srv: &TestServer, path: &str) -> Vec<Conn> {
    (0..KEPT)
        .map(|_| {
            let mut c = srv.conn();
            assert_eq!(get_on(&mut c, path, &[]).status, 200);
            c
        })
        .collect()
}

/// Every response to `path`, on [`FRESH`] new connections and on each of `kept`.
fn everyone(srv: &TestServer, kept: &mut [Conn], path: &str, headers: &[&str]) -> Vec<Response> {
    let mut out: Vec<Response> = (0..FRESH).map(|_| srv.get_with(path, headers)).collect();
    out.extend(kept.iter_mut().map(|c| get_on(c, path, headers)));
    out
}

/// Asserts that every response is a 200 with exactly `want`.
fn all_serve(responses: &[Response], want: &[u8], what: &str) {
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r.status, 200, "{what}: response {i}: {}", r.status_line);
        assert!(
            r.body == want,
            "{what}: response {i} is stale or wrong: {:?}…",
            String::from_utf8_lossy(&r.body[..r.body.len().min(40)])
        );
    }
}

each_mode! {
    /// 40 rounds for the in-memory body and 8 for the sendfile one (each 12 checked
    /// responses; the large one moves 12 MiB per round).
    fn a_file_replaced_by_rename_is_served_new_by_every_worker(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        for (name, len, rounds) in [("small.txt", SMALL, 40), ("large.bin", LARGE, 8)] {
            let path = format!("/{name}");
            let mut conns = kept(&srv, &path);
            for round in 1..=rounds {
                // Every worker holds the current version…
                let old = body(name.split('.').next().unwrap(), "v1", round - 1, len);
                all_serve(&everyone(&srv, &mut conns, &path, &[]), &old, name);
                // …and after the rename has returned, nobody serves it any more.
                let new = body(name.split('.').next().unwrap(), "v1", round, len);
                r.replace(name, &new);
                all_serve(&everyone(&srv, &mut conns, &path, &[]), &new, name);
            }
        }
    }

    /// 20 rounds of an in-place rewrite and 20 of a truncation (12 responses each).
    fn a_file_written_in_place_or_truncated_is_served_new(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        let mut conns = kept(&srv, "/small.txt");
        for round in 1..=20 {
            let new = body("small", "in place", round, SMALL - round);
            // `fs::write` truncates and writes the same inode.
            std::fs::write(r.file("small.txt"), &new).unwrap();
            all_serve(&everyone(&srv, &mut conns, "/small.txt", &[]), &new, "rewritten");
            let f = std::fs::File::options().write(true).open(r.file("small.txt")).unwrap();
            f.set_len(100).unwrap();
            all_serve(&everyone(&srv, &mut conns, "/small.txt", &[]), &new[..100], "truncated");
        }
    }

    /// 20 rounds of delete → 404 everywhere, then a new file where there was a 404 → 200.
    fn a_deleted_file_is_gone_and_a_new_one_appears_at_once(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        let mut conns = kept(&srv, "/small.txt");
        for round in 1..=20 {
            std::fs::remove_file(r.file("small.txt")).unwrap();
            for (i, resp) in everyone(&srv, &mut conns, "/small.txt", &[]).iter().enumerate() {
                assert_eq!(resp.status, 404, "round {round}: response {i} after delete");
            }
            let new = body("small", "reborn", round, SMALL);
            r.replace("small.txt", &new);
            all_serve(&everyone(&srv, &mut conns, "/small.txt", &[]), &new, "recreated");
        }
    }

    /// 10 rounds. Running as root (CAP_DAC_OVERRIDE), mode 000 does not stop the server
    /// from reading a file, as it does not stop nginx running as root: then the file must
    /// still be served whole and current. Otherwise every worker answers 403.
    fn a_file_made_unreadable_is_refused_unless_the_server_may_read_it_anyway(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        let probe = r.base().join("probe");
        std::fs::write(&probe, b"x").unwrap();
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
        let overrides_modes = std::fs::File::open(&probe).is_ok();
        if overrides_modes {
            eprintln!("note: running with CAP_DAC_OVERRIDE (root): mode 000 files stay readable");
        }
        let mut conns = kept(&srv, "/small.txt");
        for round in 1..=10 {
            let new = body("small", "mode", round, SMALL);
            r.replace("small.txt", &new);
            all_serve(&everyone(&srv, &mut conns, "/small.txt", &[]), &new, "readable");
            let mode = std::fs::Permissions::from_mode(0o000);
            std::fs::set_permissions(r.file("small.txt"), mode).unwrap();
            let responses = everyone(&srv, &mut conns, "/small.txt", &[]);
            if overrides_modes {
                all_serve(&responses, &new, "mode 000 as root");
            } else {
                for (i, resp) in responses.iter().enumerate() {
                    assert_eq!(resp.status, 403, "round {round}: response {i} after chmod 000");
                }
            }
        }
    }

    /// 20 swaps of the root's symlink (alternating v1 and v2) and 20 of a directory symlink
    /// inside the root, each followed by 12 checked responses.
    fn a_swapped_release_or_directory_is_served_at_once(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        let mut conns = kept(&srv, "/small.txt");
        for round in 1..=20 {
            let v = if round % 2 == 1 { "v2" } else { "v1" };
            Releases::swap(r.base(), "current", v);
            all_serve(
                &everyone(&srv, &mut conns, "/small.txt", &[]),
                &body("small", v, 0, SMALL),
                "release swap",
            );
        }
        for round in 1..=20 {
            let (to, want) = if round % 2 == 1 { ("static-b", "b") } else { ("static-a", "a") };
            Releases::swap(&r.root(), "static", to);
            all_serve(
                &everyone(&srv, &mut conns, "/static/x.txt", &[]),
                format!("v1 static {want}").as_bytes(),
                "directory swap",
            );
        }
    }

    /// 2 downloads across a swap of the root and 2 across a swap of a directory inside it.
    fn a_download_in_flight_across_a_swap_finishes_with_its_version(ctx) {
        let r = Releases::new();
        let v1 = body("huge", "v1", 0, HUGE);
        let v2 = body("huge", "v2", 0, HUGE);
        std::fs::write(r.base().join("v1/huge.bin"), &v1).unwrap();
        std::fs::write(r.base().join("v1/static-a/huge.bin"), &v1).unwrap();
        std::fs::write(r.base().join("v2/huge.bin"), &v2).unwrap();
        std::fs::write(r.base().join("v1/static-b/huge.bin"), &v2).unwrap();
        let srv = ctx.serve(&r.root(), |c| c);
        for round in 0..4 {
            let (path, swap_root) = if round < 2 { ("/huge.bin", true) } else { ("/static/huge.bin", false) };
            let mut stream = TcpStream::connect(srv.addr).unwrap();
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            // Some of the body has arrived: the response is under way.
            let mut got = vec![0u8; 1 << 20];
            stream.read_exact(&mut got).unwrap();
            if swap_root {
                Releases::swap(r.base(), "current", "v2");
            } else {
                Releases::swap(&r.root(), "static", "static-b");
            }
            // New requests see the new version at once (its first bytes are enough)…
            let fresh = srv.get_with(path, &["Range: bytes=0-99"]);
            assert_eq!(fresh.status, 206);
            assert!(fresh.body == v2[..100], "round {round}: the old version after the swap");
            // …and the download in flight finishes with the old one, whole.
            stream.read_to_end(&mut got).unwrap();
            let Some(head_end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                panic!("round {round}: no response head");
            };
            assert!(got.starts_with(b"HTTP/1.1 200 "), "round {round}");
            let rest = &got[head_end + 4..];
            assert_eq!(rest.len(), HUGE, "round {round}: body length");
            assert!(rest == &v1[..], "round {round}: the download mixed versions");
            // Back to v1 everywhere for the next round.
            if swap_root {
                Releases::swap(r.base(), "current", "v1");
            } else {
                Releases::swap(&r.root(), "static", "static-a");
            }
        }
    }

    /// 20 rounds: after a change, the old ETag gets a 200 with the new body and the new
    /// ETag, and the new ETag gets a 304, on every worker.
    fn etags_follow_a_change_on_every_worker(ctx) {
        let r = Releases::new();
        let srv = ctx.serve(&r.root(), |c| c);
        let mut conns = kept(&srv, "/small.txt");
        let mut old_etag = srv.get("/small.txt").header("etag").unwrap().to_string();
        for round in 1..=20 {
            let new = body("small", "etag", round, SMALL);
            r.replace("small.txt", &new);
            let inm = format!("If-None-Match: {old_etag}");
            let responses = everyone(&srv, &mut conns, "/small.txt", &[&inm]);
            all_serve(&responses, &new, "old ETag");
            let new_etag = responses[0].header("etag").unwrap().to_string();
            assert_ne!(new_etag, old_etag, "round {round}");
            for (i, resp) in responses.iter().enumerate() {
                assert_eq!(resp.header("etag"), Some(new_etag.as_str()), "round {round}: {i}");
            }
            let inm = format!("If-None-Match: {new_etag}");
            for (i, resp) in everyone(&srv, &mut conns, "/small.txt", &[&inm]).iter().enumerate() {
                assert_eq!(resp.status, 304, "round {round}: response {i} with the new ETag");
            }
            old_etag = new_etag;
        }
    }
}
