//! The checks behind ringserve's fuzz targets, kept apart from the AFL++ entry points
//! (`fuzz_targets/*.rs`, each one line) so they build and run on the stable toolchain with a
//! plain `cargo build`, and so a crash input can be replayed without AFL (`replay` binary).
//!
//! Each check takes arbitrary bytes and panics when an invariant breaks:
//! - [`conn`]: the whole sans-I/O connection (`http::Conn`). The bytes are fed in chunks whose
//!   sizes the input chooses; every response must be well framed (status line, CRLF field
//!   lines, one `Content-Length` equal to the body, `Connection: close` exactly when the
//!   connection ends), answer the request it follows (a HEAD gets no body, a refused head gets
//!   the status of its parse error), and after a closing response nothing more is answered.
//! - [`ranges`]: `http::range::decide` — ranges inside the representation, ascending,
//!   coalesced, capped; whether a header is ignored never depends on the length.
//! - [`conditionals`]: `http::conditional` — the step order of RFC 9110 §13.2.2 seen from
//!   outside: a matching `If-None-Match` gives 304 unless a precondition failed first, a `*`
//!   or matching `If-Match` passes step 1 and skips step 2, `If-Range` honours our own
//!   validators and never a weak tag, and every date that parses prints and parses back.
//! - [`parse_resolve`]: a request head's path through the resolver never leaves the root.

use ringserve::fs::{Dotfiles, Root, resolve};
use ringserve::http::conditional::{self, Outcome, Preconditions, Validators};
use ringserve::http::range::{self, COALESCE_GAP, MAX_RANGE_SPECS, RangeDecision};
use ringserve::http::request::{self, Method, Parsed, Target};
use ringserve::http::{After, Body, Conn, DateCache, HttpDate, Lifecycle, Logging, Response};
use ringserve::http::{Listing, Site, SiteOptions, Step};
use std::os::unix::ffi::OsStrExt;
use std::path::Component;
use std::time::SystemTime;

// ---------------------------------------------------------------------------------------------
// The whole connection.

/// The served tree, made once per process (AFL runs many inputs in one process).
struct Fixture {
    _dir: tempfile::TempDir,
    sites: Vec<Site>,
    date: DateCache,
}

/// Site variants an input picks from: default limits, a small head limit (so 414/431 paths
/// are reached by short inputs), listings and logging on.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("fuzz fixture: tempdir");
    let root = dir.path();
    let write = |rel: &str, content: &[u8]| {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("fuzz fixture: mkdir");
        }
        std::fs::write(path, content).expect("fuzz fixture: write");
    };
    write("index.html", b"<!DOCTYPE html><title>i</title>\n");
    write("a.txt", b"aaaa");
    write(".hidden", b"h");
    write("dir/index.html", b"<p>dir</p>\n");
    write("noindex/x.txt", b"x");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    write("big.bin", &big);
    let site =
        |options: SiteOptions| Site::new(Root::open(root).expect("fuzz fixture: root"), options);
    let sites = vec![
        site(SiteOptions::default()),
        site(SiteOptions {
            max_head: 256,
            ..SiteOptions::default()
        }),
        site(SiteOptions {
            listing: Listing::On,
            dotfiles: Dotfiles::Served,
            logging: Logging::On,
            cache_control: Some("max-age=60".into()),
            ..SiteOptions::default()
        }),
    ];
    Fixture {
        _dir: dir,
        sites,
        date: DateCache::new(SystemTime::now()),
    }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

/// A tiny deterministic generator for chunk sizes, seeded by the input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Input layout: byte 0 picks the site and lifecycle, byte 1 seeds the chunking (0: the
/// whole input at once), the rest is what the client sends.
pub fn conn(data: &[u8]) {
    let [config, chunking, stream @ ..] = data else {
        return;
    };
    FIXTURE.with(|f| {
        let site = &f.sites[usize::from(config % 3)];
        let life = match config / 3 % 8 {
            0 => Lifecycle::Draining,
            1 => Lifecycle::Announcing,
            _ => Lifecycle::Serving,
        };
        let chunked = run_conn(site, &f.date, life, *chunking, stream);
        if *chunking != 0 && !chunked.delayed {
            // Where the stream is cut does not change a single byte of the answers.
            let whole = run_conn(site, &f.date, life, 0, stream);
            assert_eq!(
                chunked.answers, whole.answers,
                "chunking changed the answers"
            );
        }
    });
}

/// What one run of a stream through a `Conn` produced.
struct Run {
    /// Each response's head and body length, in order (the 408 of a timeout included).
    answers: Vec<(Vec<u8>, u64)>,
    /// A refusal was put off by Conn's empty-line pre-check (see [`run_conn`]), so the
    /// answers may differ from the same stream fed at once.
    delayed: bool,
}

fn run_conn(site: &Site, date: &DateCache, life: Lifecycle, chunking: u8, stream: &[u8]) -> Run {
    let mut run = Run {
        answers: Vec::new(),
        delayed: false,
    };
    let mut rng = Rng(u64::from(chunking) | 0x9e37_79b9_0000_0000);
    let mut conn = Conn::new(date.instant());
    // Our own view of the stream, to know which request each response answers.
    let mut sent = 0usize;
    let mut answered = 0usize;
    let max_head = site.options().max_head;
    let mut closed = false;
    while sent < stream.len() && !closed {
        let n = match chunking {
            0 => stream.len() - sent,
            _ => 1 + (rng.next() % 64) as usize,
        }
        .min(stream.len() - sent);
        conn.receive(&stream[sent..sent + n], date.instant());
        sent += n;
        // Bounded: each response consumes a head or ends the connection.
        for _ in 0..=stream.len() {
            match conn.poll(site, date, life) {
                Step::Respond(response) => {
                    let expected = expected_answer(&stream[answered..sent], max_head);
                    check_response(&response, expected);
                    run.answers
                        .push((response.head.clone(), response.body_len()));
                    match expected {
                        Expected::Answer { len, .. } => answered += len,
                        Expected::Refused(_) => {
                            assert_eq!(response.after, After::Close, "a refused head must close");
                        }
                        Expected::Nothing => unreachable!("checked in check_response"),
                    }
                    if response.after == After::Close {
                        assert!(
                            matches!(conn.poll(site, date, life), Step::Close),
                            "answered again after a closing response"
                        );
                        closed = true;
                        break;
                    }
                }
                Step::NeedMore => {
                    let pending = &stream[answered..sent];
                    match expected_answer(pending, max_head) {
                        Expected::Nothing => {}
                        // Conn re-parses a head that was once partial only when an empty line
                        // may have arrived (so a dribbled head is not parsed from its start on
                        // every byte): a head that turned invalid before its end is refused at
                        // its end, at the size limit or at the header timeout instead.
                        Expected::Refused(_)
                            if pending.len() < max_head && !has_empty_line(pending) =>
                        {
                            run.delayed = true;
                        }
                        other => panic!("asked for more with {other:?} buffered"),
                    }
                    break;
                }
                Step::Close => {
                    closed = true;
                    break;
                }
            }
        }
    }
    if !closed && let Some(response) = conn.timed_out(site, date) {
        assert!(answered < sent, "408 with nothing pending");
        check_framing(&response, false);
        assert_eq!(response.status.code(), 408);
        assert_eq!(response.after, After::Close);
        run.answers
            .push((response.head.clone(), response.body_len()));
    }
    run
}

/// What the next response must answer, from parsing the unanswered bytes ourselves.
#[derive(Clone, Copy, Debug)]
enum Expected {
    /// A complete head of `len` bytes; `head` says the method was HEAD.
    Answer { len: usize, head: bool },
    /// A refused head: this status.
    Refused(u16),
    /// No complete head yet.
    Nothing,
}

fn expected_answer(pending: &[u8], max_head: usize) -> Expected {
    match request::parse(pending, max_head) {
        Ok(Parsed::Complete { request, len }) => Expected::Answer {
            len,
            head: request.method == Method::Head,
        },
        Ok(Parsed::Partial) => Expected::Nothing,
        Err(e) => Expected::Refused(e.status().code()),
    }
}

fn check_response(response: &Response, expected: Expected) {
    match expected {
        Expected::Nothing => panic!("a response with no complete head buffered"),
        Expected::Refused(status) => {
            assert_eq!(
                response.status.code(),
                status,
                "refused head answered with another status"
            );
            check_framing(response, false);
        }
        Expected::Answer { head, .. } => check_framing(response, head),
    }
}

/// The head is a status line and CRLF-terminated field lines with token names; exactly one
/// `Content-Length` matching the body (none on 204 and 304); `Connection: close` exactly when
/// the connection ends; file ranges inside their files.
pub fn check_framing(response: &Response, head_request: bool) {
    let head = &response.head;
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end with an empty line"
    );
    let lines = split_crlf(&head[..head.len() - 4]);
    for line in &lines {
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in {line:?}"
        );
    }
    let expected_line = format!(
        "HTTP/1.1 {} {}",
        response.status.code(),
        response.status.reason()
    );
    assert_eq!(lines[0], expected_line.as_bytes(), "status line");
    let mut lengths = Vec::new();
    let mut close = false;
    for line in &lines[1..] {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .expect("field line without a colon");
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        assert!(
            !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic()),
            "bad field name {name:?}"
        );
        assert!(value.starts_with(b" "), "no space after the colon");
        assert!(
            value.iter().all(|&b| b == b'\t' || b >= 0x20 && b != 0x7f),
            "control in a value"
        );
        let value = &value[1..];
        if name.eq_ignore_ascii_case(b"content-length") {
            let n: u64 = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("Content-Length is not a number");
            lengths.push(n);
        }
        if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    let body = response.body_len();
    if response.status.has_content() {
        assert_eq!(lengths.len(), 1, "{} Content-Length lines", lengths.len());
        if head_request {
            assert_eq!(body, 0, "a HEAD response with a body");
        } else {
            assert_eq!(lengths[0], body, "Content-Length differs from the body");
        }
    } else {
        assert!(
            lengths.is_empty(),
            "Content-Length on {}",
            response.status.code()
        );
        assert_eq!(body, 0, "a body on {}", response.status.code());
    }
    assert_eq!(
        close,
        response.after == After::Close,
        "Connection: close vs after"
    );
    match &response.body {
        Body::File { file, range } => {
            let len = file.metadata().expect("fuzz: file metadata").len();
            assert!(
                range.start <= range.end && range.end <= len,
                "file range {range:?} of {len}"
            );
        }
        Body::Shared { bytes, range } => {
            assert!(range.start <= range.end && range.end <= bytes.len() as u64);
        }
        Body::Multipart { file, parts, .. } => {
            let len = file.metadata().expect("fuzz: file metadata").len();
            assert!(parts.len() >= 2, "multipart with {} parts", parts.len());
            for p in parts {
                assert!(
                    p.range.start < p.range.end && p.range.end <= len,
                    "part {:?}",
                    p.range
                );
            }
        }
        Body::Empty | Body::Static(_) | Body::Bytes(_) => {}
    }
}

/// Whether `bytes` hold `\n\n` or `\n\r\n` (the ends of a head Conn looks for) after the
/// empty lines a request may start with.
fn has_empty_line(mut bytes: &[u8]) -> bool {
    while let Some(rest) = bytes.strip_prefix(b"\r\n") {
        bytes = rest;
    }
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

/// `text` split at each CRLF.
fn split_crlf(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        out.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    out.push(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Ranges.

/// Input layout: bytes 0..8 the representation length (little-endian; the top byte picks
/// a small length half of the time, where most of the decisions are), the rest the header.
pub fn ranges(data: &[u8]) {
    let Some((len_bytes, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let raw = u64::from_le_bytes(*len_bytes);
    let len = if raw >> 63 == 0 { raw % 4096 } else { raw };
    let decision = range::decide(header, len);
    let check = |r: &std::ops::Range<u64>| {
        assert!(r.start < r.end && r.end <= len, "range {r:?} of {len}");
    };
    match &decision {
        RangeDecision::Full | RangeDecision::Unsatisfiable => {}
        RangeDecision::Single(r) => check(r),
        RangeDecision::Multi(parts) => {
            assert!(
                (2..=MAX_RANGE_SPECS).contains(&parts.len()),
                "{} parts",
                parts.len()
            );
            parts.iter().for_each(check);
            for pair in parts.windows(2) {
                assert!(
                    pair[1].start >= pair[0].end.saturating_add(COALESCE_GAP),
                    "parts not ascending and coalesced: {pair:?}"
                );
            }
        }
    }
    if len == 0 {
        assert!(
            matches!(decision, RangeDecision::Full | RangeDecision::Unsatisfiable),
            "{decision:?} of an empty representation"
        );
    }
    // Whether the header is ignored is a matter of syntax, never of the length.
    for other in [0, 1, len / 2, len.saturating_add(1), u64::MAX] {
        let full = matches!(range::decide(header, other), RangeDecision::Full);
        assert_eq!(
            full,
            matches!(decision, RangeDecision::Full),
            "Full at {len} but not {other}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Conditionals.

/// Our validators in the conditionals target.
const ETAG: &[u8] = b"\"0123456789abcdef\"";

/// Input layout: byte 0 chooses which of the four lists/dates each later line fills; the
/// rest is split on `\n` into header values.
pub fn conditionals(data: &[u8]) {
    let [selector, rest @ ..] = data else {
        return;
    };
    let mut if_match = Vec::new();
    let mut if_none_match = Vec::new();
    let mut if_modified_since = None;
    let mut if_unmodified_since = None;
    let mut if_range = None;
    for (i, value) in rest.split(|&b| b == b'\n').enumerate().take(16) {
        match (selector >> (i % 4 * 2)) & 3 ^ (i as u8 / 4 % 4) {
            0 => if_match.push(value),
            1 => if_none_match.push(value),
            2 if i % 2 == 0 => if_modified_since = Some(value),
            2 => if_range = Some(value),
            _ => if_unmodified_since = Some(value),
        }
    }
    let last_modified = HttpDate::from_unix(1_704_164_645);
    let v = Validators {
        etag: ETAG,
        last_modified,
    };
    let pre = Preconditions {
        if_match: &if_match,
        if_none_match: &if_none_match,
        if_modified_since,
        if_unmodified_since,
    };
    let base = conditional::evaluate(&pre, &v);

    // Nothing conditional: proceed.
    let none = Preconditions::default();
    assert_eq!(conditional::evaluate(&none, &v), Outcome::Proceed);

    // Adding our tag to If-None-Match: 304, unless step 1 or 2 already failed.
    let mut inm = if_none_match.clone();
    inm.push(ETAG);
    let with_inm = conditional::evaluate(
        &Preconditions {
            if_none_match: &inm,
            ..pre
        },
        &v,
    );
    if base == Outcome::PreconditionFailed {
        assert_eq!(
            with_inm,
            Outcome::PreconditionFailed,
            "If-None-Match changed step 1/2"
        );
    } else {
        assert_eq!(
            with_inm,
            Outcome::NotModified,
            "our tag in If-None-Match is not a 304"
        );
    }

    // `*` or our tag in If-Match: step 1 passes and step 2 is skipped.
    for pass in [&b"*"[..], ETAG, b" \"0123456789abcdef\"\t"] {
        let mut im = if_match.clone();
        im.push(pass);
        let got = conditional::evaluate(
            &Preconditions {
                if_match: &im,
                ..pre
            },
            &v,
        );
        let without_step_2 = conditional::evaluate(
            &Preconditions {
                if_match: &[],
                if_unmodified_since: None,
                ..pre
            },
            &v,
        );
        assert_eq!(got, without_step_2, "If-Match {pass:?} did not pass step 1");
    }

    // If-Range: our own validators are honoured, a weak tag never is.
    let _ = conditional::if_range_allows(if_range, &v);
    let mut imf = Vec::new();
    last_modified.write_imf(&mut imf);
    assert!(conditional::if_range_allows(Some(ETAG), &v));
    assert!(conditional::if_range_allows(Some(&imf), &v));
    assert!(!conditional::if_range_allows(
        Some(b"W/\"0123456789abcdef\""),
        &v
    ));
    if let Some(value) = if_range
        && value.starts_with(b"W/")
    {
        assert!(
            !conditional::if_range_allows(Some(value), &v),
            "a weak If-Range honoured"
        );
    }

    // Dates: whatever parses prints as IMF-fixdate and parses back to the same instant.
    for value in [if_modified_since, if_unmodified_since, if_range]
        .into_iter()
        .flatten()
    {
        if let Some(date) = HttpDate::parse(value) {
            let mut out = Vec::new();
            date.write_imf(&mut out);
            assert_eq!(HttpDate::parse(&out), Some(date), "{value:?} → {out:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths.

fn check_path(raw: &[u8], dotfiles: Dotfiles) {
    let Ok(safe) = resolve(raw, dotfiles) else {
        return;
    };
    let rel = safe.rel();
    assert!(rel.is_relative(), "absolute result for {raw:?}");
    assert!(
        !rel.as_os_str().as_bytes().contains(&0),
        "NUL in result for {raw:?}"
    );
    for component in rel.components() {
        let Component::Normal(name) = component else {
            panic!("non-normal component {component:?} for {raw:?}");
        };
        if dotfiles == Dotfiles::Hidden {
            assert!(
                !name.as_bytes().starts_with(b"."),
                "dotfile served for {raw:?}"
            );
        }
    }
}

/// Arbitrary bytes as a request head: any path it yields is refused by the resolver or comes
/// out as a path that cannot leave the root.
pub fn parse_resolve(data: &[u8]) {
    if let Ok(Parsed::Complete { request, len }) = request::parse(data, 8 * 1024) {
        assert!(len <= data.len());
        if let Target::Path { path, .. } = request.target {
            check_path(path, Dotfiles::Hidden);
            check_path(path, Dotfiles::Served);
        }
    }
    check_path(data, Dotfiles::Hidden);
}

/// One target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay binary and `tests/fuzz_seeds.rs`.
pub const TARGETS: &[(&str, Check)] = &[
    ("conn", conn),
    ("ranges", ranges),
    ("conditionals", conditionals),
    ("parse_resolve", parse_resolve),
];
