//! Precompressed sidecars (issue 13): `Accept-Encoding` negotiation, `Vary`, per-representation
//! validators, conditionals and ranges on the encoded bytes, and the sidecars that must be
//! ignored (stale, escaping the root, turned off).

use crate::common::*;
use ringserve::Precompressed;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// The originals' mtime; sidecars get the same (equal is "not older") unless a case says.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_717_000_000, 250_000_000)
}

/// `Last-Modified` of every file here.
const T0_HTTP: &str = "Wed, 29 May 2024 16:26:40 GMT";

/// The three codings: token, suffix, command that compresses stdin to stdout, and the one
/// that decompresses.
const CODINGS: [(&str, &str, &[&str], &[&str]); 3] = [
    (
        "br",
        "br",
        &["brotli", "-q", "11", "-c"],
        &["brotli", "-d", "-c"],
    ),
    (
        "zstd",
        "zst",
        &["zstd", "-q", "-19", "-c"],
        &["zstd", "-q", "-d", "-c"],
    ),
    (
        "gzip",
        "gz",
        &["gzip", "-9", "-n", "-c"],
        &["gzip", "-d", "-c"],
    ),
];

/// `scripts/test.sh` installs brotli, zstd and gzip and sets this: then a missing tool fails
/// the decode test instead of skipping it.
fn codecs_required() -> bool {
    std::env::var_os("RINGSERVE_REQUIRE_CODECS").is_some_and(|v| v == "1")
}

/// Runs `cmd` with `input` on stdin; `None` if the program is not installed.
fn pipe(cmd: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    // Written from another thread: a large output could otherwise fill the pipe and block.
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait for the codec");
    writer
        .join()
        .expect("writer thread")
        .expect("write to the codec");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// Text that compresses like real text (a word list picked by an LCG).
fn text(len: usize, seed: u32) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "static", "file", "server", "ring", "kernel", "socket", "cache", "header", "range",
        "entity", "tag", "proxy", "origin", "worker", "buffer", "request",
    ];
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        out.extend_from_slice(WORDS[(x >> 16) as usize % WORDS.len()].as_bytes());
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Bytes that do not compress (so the `.gz` of it is larger than the in-memory limit of a
/// worker's cache, and is served from its descriptor).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 7;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A served tree with sidecars:
///
/// ```text
/// base/outside                       SECRET, outside the root
/// base/www/
///   app.js      + .br .zst .gz       40 KB text (file from its descriptor, sidecars small)
///   big.bin     + .gz                64 KiB noise (its .gz is larger than 16 KiB)
///   only-gz.css + .gz
///   stale.css   + .gz                the .gz one second older than the file
///   escape.css  + .br -> ../outside  a sidecar symlink out of the root
///   plain.txt                        no sidecars
///   dir/index.html + .br
/// ```
struct Site {
    _base: TempDir,
    root: PathBuf,
}

impl Site {
    fn new() -> Site {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("www");
        std::fs::create_dir_all(root.join("dir")).expect("mkdir");
        std::fs::write(base.path().join("outside"), b"SECRET").expect("write outside");
        let site = Site { _base: base, root };
        site.with_sidecars("app.js", &text(40_000, 1), &["br", "zst", "gz"]);
        site.with_sidecars("big.bin", &noise(64 * 1024), &["gz"]);
        site.with_sidecars("only-gz.css", &text(3000, 2), &["gz"]);
        site.with_sidecars("stale.css", &text(3000, 3), &["gz"]);
        set_mtime(&site.path("stale.css.gz"), t0() - Duration::from_secs(1));
        site.with_sidecars("escape.css", &text(3000, 4), &[]);
        std::os::unix::fs::symlink(
            site._base.path().join("outside"),
            site.path("escape.css.br"),
        )
        .expect("symlink");
        site.with_sidecars("plain.txt", &text(3000, 5), &[]);
        site.with_sidecars("dir/index.html", &text(2000, 6), &["br"]);
        site
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Writes `rel` and its sidecars with the suffixes given, all with mtime [`t0`]. A sidecar
    /// is made by the real compressor when installed, else it is a stand-in (the server never
    /// looks inside; only the decode test needs real bytes).
    fn with_sidecars(&self, rel: &str, content: &[u8], suffixes: &[&str]) {
        write_at(&self.path(rel), content, t0());
        for suffix in suffixes {
            let (_, _, compress, _) = CODINGS.iter().find(|c| c.1 == *suffix).expect("suffix");
            let bytes = pipe(compress, content).unwrap_or_else(|| {
                let mut fake = format!("{suffix} stand-in for {rel}: ").into_bytes();
                fake.extend_from_slice(&content[..content.len().min(100)]);
                fake
            });
            write_at(&self.path(&format!("{rel}.{suffix}")), &bytes, t0());
        }
    }
}

fn write_at(path: &Path, content: &[u8], mtime: SystemTime) {
    std::fs::write(path, content).expect("write");
    set_mtime(path, mtime);
}

fn serve(ctx: &Ctx, site: &Site) -> TestServer {
    ctx.serve(&site.root, |c| c)
}

/// `GET path` with `Accept-Encoding: ae` (none when `ae` is `None`) and more header lines.
fn get(srv: &TestServer, path: &str, ae: Option<&str>, more: &[&str]) -> Response {
    get_lines(srv, path, &headers(ae, more))
}

/// `GET path` with these header lines.
fn get_lines(srv: &TestServer, path: &str, lines: &[String]) -> Response {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    srv.get_with(path, &refs)
}

fn headers<'a>(ae: Option<&'a str>, more: &[&'a str]) -> Vec<String> {
    let mut h: Vec<String> = ae
        .map(|v| format!("Accept-Encoding: {v}"))
        .into_iter()
        .collect();
    h.extend(more.iter().map(|s| s.to_string()));
    h
}

/// The suffix of the file a `Content-Encoding` token is served from.
fn suffix_of(token: &str) -> &'static str {
    CODINGS
        .iter()
        .find(|c| c.0 == token)
        .map(|c| c.1)
        .unwrap_or_else(|| panic!("unexpected Content-Encoding {token:?}"))
}

/// Asserts a full 200 of `rel` in `coding` (`None`: identity), with everything a
/// precompressed response must carry.
fn assert_served(site: &Site, r: &Response, rel: &str, coding: Option<&str>, content_type: &str) {
    assert_eq!(r.status, 200, "{:#?}", r.headers);
    r.assert_common_headers();
    assert_eq!(r.header("content-encoding"), coding, "{:#?}", r.headers);
    assert!(
        r.count("content-encoding") <= 1,
        "doubled: {:#?}",
        r.headers
    );
    let file = match coding {
        Some(token) => format!("{rel}.{}", suffix_of(token)),
        None => rel.to_string(),
    };
    let bytes = site.read(&file);
    assert!(r.body == bytes, "body of {rel} in {coding:?} is not {file}");
    assert_eq!(r.must("content-length"), bytes.len().to_string());
    assert_eq!(r.must("content-type"), content_type);
    assert_eq!(r.must("last-modified"), T0_HTTP);
    assert_eq!(r.must("vary"), "Accept-Encoding");
    assert_eq!(r.count("vary"), 1);
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

each_mode! {
    /// The negotiation table, end to end: `Accept-Encoding` values → the coding served, with
    /// all three sidecars of `/app.js` present.
    fn negotiation_table(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (None, None),
            (Some(""), None),
            (Some("identity"), None),
            (Some("gzip"), Some("gzip")),
            (Some("br"), Some("br")),
            (Some("zstd"), Some("zstd")),
            (Some("gzip, deflate, br"), Some("br")),
            (Some("gzip, deflate, br, zstd"), Some("br")),
            (Some("deflate"), None),
            (Some("zst"), None),
            (Some("x-gzip"), Some("gzip")),
            (Some("GZip"), Some("gzip")),
            (Some("BR;Q=1.0"), Some("br")),
            (Some("br;q=0.5, gzip;q=0.8"), Some("gzip")),
            (Some("br;q=0.8, zstd;q=0.8, gzip;q=0.8"), Some("br")),
            (Some("br;q=0, gzip"), Some("gzip")),
            (Some("br;q=0, zstd;q=0, gzip;q=0"), None),
            (Some("*"), Some("br")),
            (Some("*;q=0"), None),
            (Some("*;q=0, gzip"), Some("gzip")),
            (Some("*, br;q=0"), Some("zstd")),
            (Some("identity;q=0"), None),
            (Some("identity;q=0, *;q=0"), None),
            (Some("gzip;q=0.5, identity"), None),
            (Some("gzip, identity;q=0"), Some("gzip")),
            (Some("  gzip ;  q=0.4 ,\tzstd\t;q=0.5  "), Some("zstd")),
            (Some(",,gzip,,"), Some("gzip")),
            (Some("gzip;q=2"), None),
            (Some("gzip;q=0.1234, zstd"), Some("zstd")),
            (Some("gzip;level=9"), None),
        ];
        assert!(cases.len() >= 25);
        for &(ae, expected) in cases {
            let r = get(&srv, "/app.js", ae, &[]);
            assert_eq!(r.header("content-encoding"), expected, "Accept-Encoding {ae:?}");
            assert_served(&site, &r, "app.js", expected, JS);
        }
    }

    /// Several `Accept-Encoding` lines form one list; a `q=0` on any line excludes.
    fn repeated_fields_are_one_list(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        let two = |a: &str, b: &str| {
            let more = [format!("Accept-Encoding: {a}"), format!("Accept-Encoding: {b}")];
            get_lines(&srv, "/app.js", &more)
        };
        assert_served(&site, &two("gzip", "zstd"), "app.js", Some("zstd"), JS);
        assert_served(&site, &two("br", "br;q=0"), "app.js", None, JS);
        assert_served(&site, &two("gzip;q=0.1", "identity;q=0"), "app.js", Some("gzip"), JS);
    }

    /// `identity;q=0` with nothing else acceptable: served as identity (not 406), still with
    /// `Vary`. The choice and its reasons are in `src/http/encoding.rs`.
    fn excluded_identity_still_gets_identity(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        for ae in ["identity;q=0", "*;q=0", "deflate, identity;q=0"] {
            assert_served(&site, &get(&srv, "/app.js", Some(ae), &[]), "app.js", None, JS);
        }
        // Only a .gz exists; br is asked for: identity, varying.
        let r = get(&srv, "/only-gz.css", Some("br, identity;q=0"), &[]);
        assert_served(&site, &r, "only-gz.css", None, CSS);
    }

    /// The server's order decides ties, and `--precompressed` changes it.
    fn the_configured_order_breaks_ties(ctx) {
        let site = Site::new();
        let srv = ctx.serve(&site.root, |c| c.precompressed("gzip,br".parse().unwrap()));
        let r = get(&srv, "/app.js", Some("br, zstd, gzip"), &[]);
        assert_served(&site, &r, "app.js", Some("gzip"), JS);
        // zstd is not configured: never served, even alone.
        let r = get(&srv, "/app.js", Some("zstd"), &[]);
        assert_served(&site, &r, "app.js", None, JS);
    }

    /// Each representation's bytes decode, with the real decoder, to the original.
    fn representations_decode_to_the_original(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        for (token, _, compress, decompress) in CODINGS {
            if pipe(compress, b"probe").is_none() {
                assert!(!codecs_required(), "RINGSERVE_REQUIRE_CODECS=1 but {} is missing", compress[0]);
                eprintln!("skipped: decoding {token}: {} is not installed", compress[0]);
                continue;
            }
            let r = get(&srv, "/app.js", Some(token), &[]);
            assert_eq!(r.must("content-encoding"), token);
            let decoded = pipe(decompress, &r.body).expect("decoder");
            assert!(decoded == site.read("app.js"), "{token} does not decode to app.js");
        }
        if pipe(&["gzip", "-c"], b"probe").is_some() {
            let r = get(&srv, "/big.bin", Some("gzip"), &[]);
            assert_eq!(r.must("content-encoding"), "gzip");
            assert_eq!(r.must("content-type"), "application/octet-stream");
            let decoded = pipe(&["gzip", "-d", "-c"], &r.body).expect("gzip");
            assert!(decoded == site.read("big.bin"), "big.bin.gz does not decode to big.bin");
        }
    }

    /// Four representations, four strong ETags, the same on another instance.
    fn etags_differ_per_representation_and_agree_across_instances(ctx) {
        let site = Site::new();
        let a = serve(&ctx, &site);
        let b = serve(&ctx, &site);
        let tags = |srv: &TestServer| -> Vec<String> {
            [None, Some("br"), Some("zstd"), Some("gzip")]
                .iter()
                .map(|ae| get(srv, "/app.js", *ae, &[]).must("etag").to_string())
                .collect()
        };
        let ta = tags(&a);
        for t in &ta {
            assert_etag_shape(t);
        }
        for i in 0..ta.len() {
            for j in i + 1..ta.len() {
                assert_ne!(ta[i], ta[j], "representations {i} and {j} share a tag");
            }
        }
        assert_eq!(ta, tags(&b), "another instance, other tags");
        assert_eq!(ta, tags(&a), "the same instance, other tags");
    }

    /// `If-None-Match` is evaluated against the selected representation.
    fn not_modified_per_representation(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        let tag = |ae: Option<&str>| get(&srv, "/app.js", ae, &[]).must("etag").to_string();
        let (identity, br, gzip) = (tag(None), tag(Some("br")), tag(Some("gzip")));
        let inm = |t: &str| format!("If-None-Match: {t}");
        for (ae, t, expect_304) in [
            (Some("br"), &br, true),
            (Some("gzip"), &br, false),
            (None, &br, false),
            (Some("gzip"), &gzip, true),
            (None, &identity, true),
            (Some("br"), &identity, false),
        ] {
            let r = get_lines(&srv, "/app.js", &headers(ae, &[&inm(t)]));
            if expect_304 {
                assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified", "{ae:?} {t}");
                r.assert_common_headers();
                assert_eq!(r.must("etag"), t.as_str());
                assert_eq!(r.must("vary"), "Accept-Encoding");
                assert_eq!(r.must("last-modified"), T0_HTTP);
                assert_eq!(r.header("content-length"), None);
                assert!(r.body.is_empty());
            } else {
                assert_eq!(r.status, 200, "{ae:?} {t}");
                assert_eq!(r.must("vary"), "Accept-Encoding");
            }
        }
        // A list naming the br tag among others; HEAD too.
        let list = format!("If-None-Match: \"x\", {br}");
        let r = srv.request(&request("HEAD", "/app.js", &["Accept-Encoding: br", &list]));
        assert_eq!(r.status, 304);
        assert_eq!(r.must("etag"), br);
        // If-Match with another representation's tag fails, with Vary.
        let r = get(&srv, "/app.js", Some("gzip"), &[&format!("If-Match: {br}")]);
        assert_eq!(r.status, 412);
        assert_eq!(r.must("vary"), "Accept-Encoding");
    }

    /// `Range` selects bytes of the encoded file, whether it is held in memory or served from
    /// its descriptor.
    fn ranges_select_encoded_bytes(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        for (path, token, file) in [
            ("/big.bin", "gzip", "big.bin.gz"),
            ("/app.js", "br", "app.js.br"),
            ("/app.js", "zstd", "app.js.zst"),
        ] {
            let bytes = site.read(file);
            let len = bytes.len();
            for (spec, first, last) in [
                ("bytes=0-9".to_string(), 0, 9),
                ("bytes=-7".to_string(), len - 7, len - 1),
                (format!("bytes={}-", len - 20), len - 20, len - 1),
            ] {
                let r = get(&srv, path, Some(token), &[&format!("Range: {spec}")]);
                assert_eq!(r.status_line, "HTTP/1.1 206 Partial Content", "{file} {spec}");
                r.assert_common_headers();
                assert_eq!(r.must("content-encoding"), token);
                assert_eq!(r.must("content-range"), format!("bytes {first}-{last}/{len}"));
                assert_eq!(r.must("content-length"), (last - first + 1).to_string());
                assert_eq!(r.must("vary"), "Accept-Encoding");
                assert!(r.body == bytes[first..=last], "{file} {spec}: wrong bytes");
            }
            // Beyond the encoded length: 416 against the encoded length, varying.
            let r = get(&srv, path, Some(token), &[&format!("Range: bytes={len}-")]);
            assert_eq!(r.status, 416, "{file}");
            assert_eq!(r.must("content-range"), format!("bytes */{len}"));
            assert_eq!(r.must("vary"), "Accept-Encoding");
            assert_eq!(r.header("content-encoding"), None);
            // Several ranges of an encoded representation: the whole 200.
            let multi = format!("Range: bytes=0-1,{}-", len - 2);
            let r = get(&srv, path, Some(token), &[&multi]);
            assert_served(&site, &r, path.trim_start_matches('/'), Some(token), r.must("content-type"));
        }
        // Identity ranges on a negotiated file: the file's bytes, varying; multipart as usual.
        let original = site.read("app.js");
        let r = get(&srv, "/app.js", None, &["Range: bytes=100-199"]);
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.must("vary"), "Accept-Encoding");
        assert_eq!(r.must("content-range"), format!("bytes 100-199/{}", original.len()));
        assert!(r.body == original[100..200]);
        let r = get(&srv, "/app.js", None, &["Range: bytes=0-1,1000-1001"]);
        assert_eq!(r.status, 206);
        assert!(r.must("content-type").starts_with("multipart/byteranges"));
    }

    /// `If-Range` compares against the selected representation's entity-tag.
    fn if_range_uses_the_selected_representation(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        let tag = |ae: Option<&str>| get(&srv, "/big.bin", ae, &[]).must("etag").to_string();
        let (identity, gzip) = (tag(None), tag(Some("gzip")));
        let gz = site.read("big.bin.gz");
        let ranged = |ae: Option<&str>, if_range: &str| {
            get(&srv, "/big.bin", ae, &["Range: bytes=10-19", &format!("If-Range: {if_range}")])
        };
        let r = ranged(Some("gzip"), &gzip);
        assert_eq!(r.status, 206);
        assert_eq!(r.must("content-encoding"), "gzip");
        assert!(r.body == gz[10..20]);
        // The identity tag with gzip selected: the whole gzip representation.
        let r = ranged(Some("gzip"), &identity);
        assert_served(&site, &r, "big.bin", Some("gzip"), "application/octet-stream");
        // The gzip tag with identity selected: the whole file.
        let r = ranged(None, &gzip);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), None);
        assert!(r.body == site.read("big.bin"));
        let r = ranged(None, &identity);
        assert_eq!(r.status, 206);
        assert!(r.body == site.read("big.bin")[10..20]);
        // A date is shared by every representation, so it never allows the range here.
        let r = ranged(Some("gzip"), T0_HTTP);
        assert_eq!(r.status, 200);
        assert_eq!(r.must("content-encoding"), "gzip");
        // …while on a file without sidecars the exact date still does.
        let r = get(&srv, "/plain.txt", None, &["Range: bytes=0-9", &format!("If-Range: {T0_HTTP}")]);
        assert_eq!(r.status, 206);
    }

    /// HEAD answers with GET's head for every representation.
    fn head_matches_get(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        for ae in [None, Some("br"), Some("zstd"), Some("gzip"), Some("deflate")] {
            let h = headers(ae, &[]);
            let refs: Vec<&str> = h.iter().map(String::as_str).collect();
            let head = srv.head_with("/app.js", &refs);
            let get = get_lines(&srv, "/app.js", &h);
            assert_eq!(head.status, 200);
            assert!(head.body.is_empty());
            assert_eq!(head.headers_without_date(), get.headers_without_date(), "{ae:?}");
        }
    }

    /// `Vary` only where a usable sidecar exists: not on files without one, nor on a file
    /// whose only sidecar is stale or leads out of the root, nor on anything but files.
    fn vary_only_where_a_sidecar_is_usable(ctx) {
        let site = Site::new();
        let srv = ctx.serve(&site.root, |c| c.status_path("/_status"));
        for (path, ae) in [
            ("/plain.txt", Some("br, gzip")),
            ("/plain.txt", None),
            ("/stale.css", Some("gzip")),
            ("/stale.css", None),
            ("/escape.css", Some("br")),
            ("/nope.js", Some("br")),
            ("/dir", Some("br")),
        ] {
            let r = get(&srv, path, ae, &[]);
            assert_eq!(r.header("vary"), None, "{path} {ae:?}: {:#?}", r.headers);
            assert_eq!(r.header("content-encoding"), None, "{path} {ae:?}");
            assert!(!r.body.windows(6).any(|w| w == b"SECRET"), "{path}: the outside file leaked");
        }
        let r = get(&srv, "/stale.css", Some("gzip"), &[]);
        assert!(r.body == site.read("stale.css"));
        let r = get(&srv, "/escape.css", Some("br"), &[]);
        assert!(r.body == site.read("escape.css"));
        // The stale sidecar is counted: three requests for stale.css so far, each passed it over.
        let status = srv.get("/_status").body_str();
        let stale = status
            .lines()
            .find_map(|l| l.strip_prefix("ringserve_precompressed_stale_total "))
            .unwrap_or_else(|| panic!("no stale counter in\n{status}"));
        assert_eq!(stale, "3", "{status}");
        // A directory index with a sidecar negotiates like any file.
        let r = get(&srv, "/dir/", Some("br"), &[]);
        assert_served(&site, &r, "dir/index.html", Some("br"), "text/html; charset=utf-8");
    }

    /// A sidecar asked for by name is a file like any other: its own type, no
    /// `Content-Encoding`, no `Vary`, its own ETag.
    fn a_sidecar_requested_directly_is_served_as_itself(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        for ae in [None, Some("gzip"), Some("br")] {
            let r = get(&srv, "/app.js.gz", ae, &[]);
            assert_eq!(r.status, 200);
            r.assert_common_headers();
            assert_eq!(r.must("content-type"), "application/gzip");
            assert_eq!(r.header("content-encoding"), None);
            assert_eq!(r.header("vary"), None);
            assert!(r.body == site.read("app.js.gz"));
            let encoded = get(&srv, "/app.js", Some("gzip"), &[]);
            assert_ne!(r.must("etag"), encoded.must("etag"));
        }
    }

    /// `--precompressed off`: files only as they are, no `Vary` anywhere.
    fn off_serves_files_only_as_they_are(ctx) {
        let site = Site::new();
        let srv = ctx.serve(&site.root, |c| c.precompressed(Precompressed::OFF));
        for ae in [None, Some("br"), Some("gzip, zstd, br"), Some("*")] {
            let r = get(&srv, "/app.js", ae, &[]);
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-encoding"), None);
            assert_eq!(r.header("vary"), None);
            assert!(r.body == site.read("app.js"));
        }
    }

    /// A sidecar that appears, changes, goes stale or goes away is seen (a caching worker
    /// revalidates within a second; polled against a deadline).
    fn sidecar_changes_are_seen(ctx) {
        let site = Site::new();
        let srv = serve(&ctx, &site);
        let poll = |what: &str, ok: &dyn Fn(&Response) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let r = get(&srv, "/plain.txt", Some("br"), &[]);
                if ok(&r) {
                    return r;
                }
                assert!(Instant::now() < deadline, "{what} not seen: {:#?}", r.headers);
            }
        };
        // Each condition names the whole expected state: with several workers, each with its
        // own cache, one may still answer from the previous state for up to a second.
        let ce = |r: &Response| r.header("content-encoding").map(str::to_string);
        let r = poll("no sidecar", &|r| r.header("vary").is_none());
        assert_eq!(ce(&r), None);
        write_at(&site.path("plain.txt.br"), b"first", t0());
        poll("a new sidecar", &|r| ce(r).as_deref() == Some("br") && r.body == b"first");
        write_at(&site.path("plain.txt.br"), b"second!", t0() + Duration::from_secs(5));
        let r = poll("a changed sidecar", &|r| ce(r).as_deref() == Some("br") && r.body == b"second!");
        assert_eq!(r.must("content-length"), "7");
        // The original changes after its sidecar: the sidecar is stale now.
        write_at(&site.path("plain.txt"), b"new text", t0() + Duration::from_secs(10));
        poll("a stale sidecar", &|r| {
            r.header("vary").is_none() && ce(r).is_none() && r.body == b"new text"
        });
        std::fs::remove_file(site.path("plain.txt.br")).expect("remove");
        write_at(&site.path("plain.txt.gz"), b"gz", t0() + Duration::from_secs(10));
        poll("a gz sidecar, br asked for", &|r| {
            r.header("vary").is_some() && ce(r).is_none() && r.body == b"new text"
        });
    }
}

/// The two modes answer every precompressed request with the same head (Date aside) and body.
#[test]
fn every_mode_negotiates_alike() {
    let site = Site::new();
    let mut reqs = Vec::new();
    for path in [
        "/app.js",
        "/big.bin",
        "/only-gz.css",
        "/stale.css",
        "/escape.css",
        "/dir/",
    ] {
        for ae in [
            None,
            Some("br"),
            Some("gzip;q=0.5, zstd"),
            Some("identity;q=0"),
        ] {
            let h = headers(ae, &[]);
            let refs: Vec<&str> = h.iter().map(String::as_str).collect();
            reqs.push(request("GET", path, &refs));
            reqs.push(request("HEAD", path, &refs));
            let mut ranged = refs.clone();
            ranged.push("Range: bytes=3-40");
            reqs.push(request("GET", path, &ranged));
        }
    }
    assert_modes_answer_alike(&reqs, |ctx| serve(ctx, &site));
}
