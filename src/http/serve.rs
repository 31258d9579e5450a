//! Deciding the response to one parsed request. Every HTTP decision the server makes about a
//! well-formed request is made here, once, for both I/O modes.
//!
//! Order of decisions for a request:
//! 1. Method: OPTIONS → 204 + `Allow`; anything but GET/HEAD → 405 + `Allow`.
//! 2. Target: `*` → 400 (only OPTIONS may use it). The health and status paths, when
//!    configured → [`super::probe`]. `/favicon.ico` → the root's, else embedded.
//! 3. Path: [`crate::fs::resolve()`] (400 for bad encoding, NUL or climbing above the root; 404
//!    for hidden dotfiles), then open beneath the root (404 / 403 / 500).
//! 4. Directory: `/dir` → 301 with the relative `Location: dir/` (query kept); `/dir/` →
//!    `index.html`, else the listing when enabled, else 404.
//! 5. Representation: when the file has usable precompressed sidecars (see
//!    [`crate::fs::sidecar`]), `Accept-Encoding` picks one or the file itself
//!    ([`super::encoding`]); every response for such a file carries `Vary: Accept-Encoding`.
//!    Everything after this applies to the selected representation: its ETag, its length.
//! 6. File: preconditions (RFC 9110 §13.2.2, see [`super::conditional`]) → 412 / 304; then
//!    `Range` on GET, gated by `If-Range` → 206 / multipart 206 / 416; else 200. An encoded
//!    representation answers a request for several ranges with the whole 200 (which ranges
//!    are allowed to do): a multipart body cannot say that its parts, not itself, are encoded.
//!    For a negotiated file, `If-Range` must carry the representation's entity-tag; a date
//!    (shared by every representation) never allows the range.
//! 7. Nothing to serve (a 404 of steps 3–4): the app fallback page, the site's 404 page or
//!    the built-in one ([`pages`] has the rule).

use super::conditional::{self, Outcome, Preconditions, Validators};
use super::date::{DateCache, HttpDate};
use super::encoding::Precompressed;
use super::header_rules::HeaderRules;
use super::lifecycle::Lifecycle;
use super::probe::{self, Metrics, Probes};
use super::range::{self, RangeDecision};
use super::request::{Method, Request, Target, Version};
use super::response::{self, After, Body, Confirm, HeadBuilder, Part, Response};
use super::status::Status;
use crate::fs::cache::{Content, FileCache, Hit, SharedRoot, SidecarState};
use crate::fs::sidecar::{Coding, Found, Sidecar};
use crate::fs::{
    self, ContentType, Dotfiles, Entry, FileEntry, Meta, OpenError, PathError, Root, RootDir,
};
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::sync::Arc;

pub mod pages;
mod representation;
use pages::Missing;
use representation::{Negotiated, cached_response, uncached_response};

/// Whether directories without `index.html` are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Listing {
    #[default]
    Off,
    On,
}

/// Whether request fields are copied out for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Logging {
    #[default]
    Off,
    On,
}

/// Site-wide settings the HTTP core reads.
#[derive(Clone, Debug)]
pub struct SiteOptions {
    pub listing: Listing,
    pub dotfiles: Dotfiles,
    /// `Cache-Control` for files (validated as a field value by the caller).
    pub cache_control: Option<String>,
    /// Request heads larger than this get 431 (414 when the request line alone is).
    pub max_head: usize,
    pub logging: Logging,
    /// Test hook: a GET or HEAD of exactly this path panics inside the core, to prove that a
    /// bug's panic costs one connection and nothing else. Never set outside tests.
    #[doc(hidden)]
    pub fault_path: Option<String>,
    /// Which precompressed sidecars are served, in order of preference.
    pub precompressed: Precompressed,
    /// The site's 404 page: a URL path beneath the root (`--not-found`; see [`pages`]).
    pub not_found: Option<String>,
    /// The app fallback page (`--fallback`; see [`pages`]).
    pub fallback: Option<String>,
    /// The operator's per-path header fields for files (see [`super::header_rules`]).
    pub header_rules: HeaderRules,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            listing: Listing::Off,
            dotfiles: Dotfiles::Hidden,
            cache_control: None,
            max_head: DEFAULT_MAX_HEAD,
            logging: Logging::Off,
            fault_path: None,
            precompressed: Precompressed::DEFAULT,
            not_found: None,
            fallback: None,
            header_rules: HeaderRules::default(),
        }
    }
}

/// 8 KiB holds any browser's request head with room for large cookies; nginx's default
/// `client_header_buffer_size` is 1 KiB growing to 8 KiB buffers.
pub const DEFAULT_MAX_HEAD: usize = 8 * 1024;

/// What is served: the root and the options. Immutable after start-up (but for the shared
/// root of cache-less requests, which follows the root's path), shared by workers.
#[derive(Debug)]
pub struct Site {
    pub(crate) root: Root,
    /// The root as its path names now, for requests served without a cache.
    shared_root: SharedRoot,
    pub(crate) options: SiteOptions,
    favicon: Meta,
    probes: Probes,
    metrics: Arc<dyn Metrics>,
}

impl Site {
    pub fn new(root: Root, options: SiteOptions) -> Site {
        let size = fs::favicon::EMBEDDED.len() as u64;
        let mtime = fs::favicon::EMBEDDED_MTIME;
        let favicon = Meta {
            size,
            mtime_secs: mtime,
            mtime_nanos: 0,
            etag: fs::ETag::for_file(size, mtime, 0),
            content_type: ContentType::ICON,
        };
        Site {
            root,
            shared_root: SharedRoot::new(),
            options,
            favicon,
            probes: Probes::default(),
            metrics: Arc::new(probe::NoMetrics),
        }
    }

    /// Answers the health and status paths in `probes` (checked with
    /// [`probe::check_path`] and against the root's contents by the caller).
    pub fn with_probes(mut self, probes: Probes) -> Site {
        self.probes = probes;
        self
    }

    /// What the status path renders (the drivers' counters; by default nothing).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Site {
        self.metrics = metrics;
        self
    }

    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    pub fn metrics(&self) -> &dyn Metrics {
        &*self.metrics
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn options(&self) -> &SiteOptions {
        &self.options
    }
}

/// Per-response context: how the head ends and whether the body is sent.
struct Cx<'a> {
    date: &'a DateCache,
    after: After,
    confirm: Confirm,
    method: Method,
}

impl Cx<'_> {
    fn finish(&self, status: Status, head: HeadBuilder, body: Body) -> Response {
        let head = head.finish(self.after, self.confirm);
        // HEAD: the same head as GET (Content-Length included), no content.
        let body = if self.method == Method::Head {
            Body::Empty
        } else {
            body
        };
        Response {
            status,
            head,
            body,
            after: self.after,
            log: None,
        }
    }

    /// A status with the small HTML body.
    fn message(&self, status: Status) -> Response {
        self.message_with(status, &[])
    }

    fn message_with(&self, status: Status, extra: &[(&str, &[u8])]) -> Response {
        let mut head = HeadBuilder::new(status, self.date);
        for &(name, value) in extra {
            head.header(name, value);
        }
        let body = response::html_message(status);
        head.content_type(ContentType::HTML)
            .content_length(body.len() as u64);
        self.finish(status, head, Body::Bytes(body))
    }
}

/// The response to a request head that could not be parsed: always closes the connection.
pub fn error_response(status: Status, date: &DateCache) -> Response {
    let cx = Cx {
        date,
        after: After::Close,
        confirm: Confirm::Implicit,
        method: Method::Get,
    };
    cx.message(status)
}

/// The answer to a connection over the connection cap: 503, retry in a second, close.
pub fn busy_response(date: &DateCache) -> Response {
    let cx = Cx {
        date,
        after: After::Close,
        confirm: Confirm::Implicit,
        method: Method::Get,
    };
    cx.message_with(Status::ServiceUnavailable, &[("Retry-After", b"1")])
}

/// Decides the response to `req`. With a `cache`, hot files are served from it (see
/// [`crate::fs::cache`]).
pub fn respond(
    site: &Site,
    mut cache: Option<&mut FileCache>,
    req: &Request<'_>,
    date: &DateCache,
    life: Lifecycle,
) -> Response {
    // A body we will not read would be parsed as the next request: answer, then close.
    let after = if req.wants_keep_alive() && !req.body.has_body() && life == Lifecycle::Serving {
        After::KeepAlive
    } else {
        After::Close
    };
    let confirm = match (req.version, after) {
        (Version::Http10, After::KeepAlive) => Confirm::KeepAlive,
        _ => Confirm::Implicit,
    };
    let cx = Cx {
        date,
        after,
        confirm,
        method: req.method,
    };
    match (req.method, req.target) {
        (Method::Options, _) => {
            let mut head = HeadBuilder::new(Status::NoContent, date);
            head.header("Allow", response::ALLOW.as_bytes());
            cx.finish(Status::NoContent, head, Body::Empty)
        }
        (Method::Other, _) => cx.message_with(
            Status::MethodNotAllowed,
            &[("Allow", response::ALLOW.as_bytes())],
        ),
        (Method::Get | Method::Head, Target::Asterisk) => cx.message(Status::BadRequest),
        (Method::Get | Method::Head, Target::Path { path, query }) => {
            if site
                .options
                .fault_path
                .as_deref()
                .is_some_and(|f| f.as_bytes() == path)
            {
                panic!(
                    "injected fault (test hook) on {}",
                    String::from_utf8_lossy(path)
                );
            }
            match probe::answer(site.probes(), site.metrics(), path, date, life) {
                Some((status, head, body)) => cx.finish(status, head, body),
                None => match get(site, cache.as_deref_mut(), &cx, req, path, query) {
                    Ok(response) => response,
                    Err(missing) => pages::missing(site, cache, &cx, req, path, missing),
                },
            }
        }
    }
}

fn get(
    site: &Site,
    mut cache: Option<&mut FileCache>,
    cx: &Cx<'_>,
    req: &Request<'_>,
    path: &[u8],
    query: Option<&[u8]>,
) -> Result<Response, Missing> {
    // The root as its path names it now (so that a swapped release is served at once): the
    // cache's watched copy, or (threaded mode) the shared watched copy.
    let root = match cache.as_deref_mut() {
        Some(cache) => cache.root(&site.root),
        None => site.shared_root.current(&site.root),
    };
    let mut root = match root {
        Ok(root) => root,
        Err(e) => return Ok(open_failure(cx, &e)),
    };
    if path == b"/favicon.ico" {
        return Ok(favicon(site, &root, cx, req));
    }
    let safe = match fs::resolve(path, site.options.dotfiles) {
        Ok(safe) => safe,
        // SECURITY: a hidden dotfile is reported as absent, not as forbidden.
        Err(PathError::Hidden) => return Err(Missing::Absent),
        Err(
            PathError::NotAbsolute
            | PathError::BadPercentEncoding
            | PathError::Nul
            | PathError::AboveRoot,
        ) => return Ok(cx.message(Status::BadRequest)),
    };
    // The file a hit would be: the path itself, or the index of a directory-form path.
    // Borrowed rather than cloned for the common file-form request: this runs on every GET.
    let index;
    let file_path = if safe.is_dir_form() {
        index = safe.index();
        &index
    } else {
        &safe
    };
    if let Some(cache) = cache.as_deref_mut()
        && let Some(hit) = cache.get(&root, file_path)
    {
        return Ok(cached_response(site, &root, cx, req, cache, file_path, hit));
    }
    // Opened here, served once, and offered to the cache.
    let serve_file =
        |cache: Option<&mut FileCache>, root: &RootDir, f: FileEntry, key: &fs::SafePath| {
            match cache {
                Some(cache) => {
                    let meta = f.meta;
                    let content = cache.insert(root, key, f);
                    let hit = Hit {
                        content,
                        meta,
                        prebuilt: None,
                        sidecars: None,
                    };
                    cached_response(site, root, cx, req, cache, key, hit)
                }
                None => uncached_response(site, root, cx, req, f, key),
            }
        };
    match open_fresh(site, cache.as_deref_mut(), &mut root, &safe) {
        // `/file.txt/` names a directory that is not there.
        Ok(Entry::File(_)) if safe.is_dir_form() => Err(Missing::Absent),
        Ok(Entry::File(f)) => Ok(serve_file(cache, &root, f, &safe)),
        Ok(Entry::Dir(_)) if !safe.is_dir_form() => Ok(redirect_to_dir(cx, path, query)),
        Ok(Entry::Dir(dir)) => match open_fresh(site, cache.as_deref_mut(), &mut root, file_path) {
            Ok(Entry::File(f)) => Ok(serve_file(cache, &root, f, file_path)),
            Err(OpenError::NotFound) if site.options.listing == Listing::On => {
                Ok(listing(site, cx, &dir, path))
            }
            Ok(Entry::Dir(_)) | Err(OpenError::NotFound) => Err(Missing::NoIndex),
            Err(e) => Ok(open_failure(cx, &e)),
        },
        Err(OpenError::NotFound) => Err(Missing::Absent),
        Err(e) => Ok(open_failure(cx, &e)),
    }
}

/// Opens `path` beneath `root`; if it is not found, looks at the root once more first. The
/// root was taken when the request was read, and under a deploy that swaps releases and then
/// deletes old ones, the release it names may be gone by the time a file is opened (a worker
/// preempted for a while): a file present in every release must not get a 404 then. Costs one
/// more non-blocking `read` of the change queue on a real 404.
fn open_fresh(
    site: &Site,
    cache: Option<&mut FileCache>,
    root: &mut Arc<RootDir>,
    path: &fs::SafePath,
) -> Result<Entry, OpenError> {
    match root.open_entry(path) {
        Err(OpenError::NotFound) => {
            let again = match cache {
                Some(cache) => {
                    cache.apply_changes();
                    cache.root(&site.root)
                }
                None => site.shared_root.current(&site.root),
            };
            match again {
                Ok(newer) if !Arc::ptr_eq(&newer, root) => {
                    *root = newer;
                    root.open_entry(path)
                }
                _ => Err(OpenError::NotFound),
            }
        }
        opened => opened,
    }
}

/// The operator's header fields for one file: its `Cache-Control` (a rule's, else the one
/// given for every file), a rule's `Content-Type`, and the fields rules add. Matched only when
/// a head is built, so a cached full 200 (whose fields are prebuilt) matches nothing.
#[derive(Clone, Copy)]
struct FileHeaders<'a> {
    rules: &'a HeaderRules,
    /// The file served, relative to the root, decoded (what patterns match).
    rel: &'a [u8],
    cache_control: Option<&'a [u8]>,
}

impl<'a> FileHeaders<'a> {
    fn new(site: &'a Site, path: &'a fs::SafePath) -> FileHeaders<'a> {
        FileHeaders {
            rules: &site.options.header_rules,
            rel: path.rel().as_os_str().as_bytes(),
            cache_control: site.options.cache_control.as_deref().map(str::as_bytes),
        }
    }

    fn cache_control(&self) -> Option<&'a [u8]> {
        if self.rules.is_empty() {
            return self.cache_control;
        }
        self.rules.cache_control(self.rel).or(self.cache_control)
    }

    fn content_type(&self) -> Option<&'a [u8]> {
        if self.rules.is_empty() {
            return None;
        }
        self.rules.content_type(self.rel)
    }

    /// `ETag`, `Last-Modified`, `Cache-Control` (if any), `Vary` (if negotiated), then the
    /// fields rules add: the part every file head shares.
    fn write_common(&self, head: &mut HeadBuilder, meta: &Meta, lm: &[u8], neg: Negotiated) {
        head.header("ETag", meta.etag.as_bytes())
            .header("Last-Modified", lm);
        if let Some(cc) = self.cache_control() {
            head.header("Cache-Control", cc);
        }
        if neg.vary {
            head.header(Negotiated::VARY.0, Negotiated::VARY.1);
        }
        if !self.rules.is_empty() {
            for (name, value) in self.rules.added(self.rel) {
                head.header(name, value);
            }
        }
    }

    /// `Content-Type`: a rule's, else by extension.
    fn write_content_type(&self, head: &mut HeadBuilder, meta: &Meta) {
        match self.content_type() {
            Some(ct) => head.header("Content-Type", ct),
            None => head.content_type(meta.content_type),
        };
    }
}

fn open_failure(cx: &Cx<'_>, e: &OpenError) -> Response {
    match e {
        OpenError::NotFound => cx.message(Status::NotFound),
        OpenError::Forbidden => cx.message(Status::Forbidden),
        OpenError::Io(_) => cx.message(Status::InternalServerError),
    }
}

/// `/a/dir` → `Location: dir/` — relative, so it survives a proxy that strips a prefix.
/// The last segment is reused as the client sent it (still percent-encoded).
fn redirect_to_dir(cx: &Cx<'_>, raw_path: &[u8], query: Option<&[u8]>) -> Response {
    let segment = raw_path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let mut location = Vec::with_capacity(segment.len() + 8);
    // A first segment with `:` would read as a URI scheme (RFC 3986 §4.2); `./` prevents it.
    if segment.contains(&b':') {
        location.extend_from_slice(b"./");
    }
    location.extend_from_slice(segment);
    location.push(b'/');
    if let Some(q) = query {
        location.push(b'?');
        location.extend_from_slice(q);
    }
    cx.message_with(Status::MovedPermanently, &[("Location", &location)])
}

fn listing(site: &Site, cx: &Cx<'_>, dir: &fs::Directory, raw_path: &[u8]) -> Response {
    match fs::listing::render(dir, raw_path, site.options.dotfiles) {
        Ok(html) => {
            let mut head = HeadBuilder::new(Status::Ok, cx.date);
            head.content_type(ContentType::HTML)
                .content_length(html.len() as u64);
            cx.finish(Status::Ok, head, Body::Bytes(html))
        }
        // A large directory is still being read on a helper thread: come back in a moment.
        Err(fs::listing::ListingError::NotYet) => {
            cx.message_with(Status::ServiceUnavailable, &[("Retry-After", b"1")])
        }
        Err(fs::listing::ListingError::Io(_)) => cx.message(Status::InternalServerError),
    }
}

fn favicon(site: &Site, root: &RootDir, cx: &Cx<'_>, req: &Request<'_>) -> Response {
    let cc = FileHeaders {
        rules: &site.options.header_rules,
        rel: b"favicon.ico",
        cache_control: Some(fs::favicon::CACHE_CONTROL.as_bytes()),
    };
    match root.open_favicon() {
        Some(FileEntry { file, meta }) => file_response(
            cx,
            req,
            Source::File(Rc::new(file)),
            &meta,
            cc,
            None,
            Negotiated::default(),
        ),
        None => file_response(
            cx,
            req,
            Source::Static(fs::favicon::EMBEDDED),
            &site.favicon,
            cc,
            None,
            Negotiated::default(),
        ),
    }
}

/// Where the bytes of a representation come from.
enum Source {
    File(Rc<File>),
    Shared(Rc<[u8]>),
    Static(&'static [u8]),
}

impl From<Content> for Source {
    fn from(c: Content) -> Source {
        match c {
            Content::File(f) => Source::File(f),
            Content::Memory(m) => Source::Shared(m),
        }
    }
}

impl Source {
    fn body(self, range: Range<u64>) -> Body {
        match self {
            Source::File(file) => Body::File { file, range },
            Source::Shared(bytes) => Body::Shared { bytes, range },
            Source::Static(bytes) => Body::Static(clamped_slice(bytes, &range)),
        }
    }

    fn multipart(self, parts: Vec<Part>, trailer: Vec<u8>) -> Body {
        match self {
            Source::File(file) => Body::Multipart {
                file,
                parts,
                trailer,
            },
            Source::Static(bytes) => in_memory_multipart(bytes, &parts, &trailer),
            Source::Shared(bytes) => in_memory_multipart(&bytes, &parts, &trailer),
        }
    }
}

fn in_memory_multipart(bytes: &[u8], parts: &[Part], trailer: &[u8]) -> Body {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&part.header);
        out.extend_from_slice(clamped_slice(bytes, &part.range));
    }
    out.extend_from_slice(trailer);
    Body::Bytes(out)
}

/// `range` was checked against the length by `range::decide`; clamp anyway rather than panic.
pub fn clamped_slice<'a>(bytes: &'a [u8], range: &Range<u64>) -> &'a [u8] {
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
    &bytes[start..end]
}

/// The header fields of a full 200 for a file, in the order [`file_response`] writes them:
/// `ETag`, `Last-Modified`, `Cache-Control` (if any), `Vary` (if negotiated), the fields
/// header rules add, `Content-Type`, `Content-Encoding` (if encoded), `Content-Length`.
fn full_fields(meta: &Meta, fh: FileHeaders<'_>, neg: Negotiated) -> Vec<u8> {
    let mut lm = Vec::with_capacity(32);
    HttpDate::from_unix(meta.last_modified_secs()).write_imf(&mut lm);
    let mut fields = HeadBuilder::fields();
    fh.write_common(&mut fields, meta, &lm, neg);
    fh.write_content_type(&mut fields, meta);
    if let Some(coding) = neg.encoding {
        fields.header("Content-Encoding", coding.token().as_bytes());
    }
    fields.content_length(meta.size);
    fields.into_fields()
}

/// The fields of a [`full_fields`] block before its `Content-Type` (what
/// [`FileHeaders::write_common`] wrote). `Content-Type` is never the first field (`ETag` is),
/// no value holds a CR or LF, and a rule cannot add a field of that name (it replaces the
/// type), so the first `CRLF Content-Type: ` is the one [`FileHeaders::write_content_type`]
/// wrote.
fn common_fields(full: &[u8]) -> Option<&[u8]> {
    memchr::memmem::find(full, b"\r\nContent-Type: ").map(|i| &full[..i + 2])
}

/// The response for a file, or for the representation `neg` says (`meta` and `source` are
/// then the sidecar's). `full_200_fields`, when given, is [`full_fields`] for it, prebuilt by
/// the caller (a worker's cache keeps it per file version).
fn file_response(
    cx: &Cx<'_>,
    req: &Request<'_>,
    source: Source,
    meta: &Meta,
    fh: FileHeaders<'_>,
    full_200_fields: Option<&[u8]>,
    neg: Negotiated,
) -> Response {
    let last_modified = HttpDate::from_unix(meta.last_modified_secs());
    let validators = Validators {
        etag: meta.etag.as_bytes(),
        last_modified,
    };
    let h = &req.headers;
    let pre = Preconditions {
        if_match: &h.if_match,
        if_none_match: &h.if_none_match,
        if_modified_since: h.if_modified_since,
        if_unmodified_since: h.if_unmodified_since,
    };
    // With header rules, a prebuilt full 200 already holds the matched fields: its part
    // before `Content-Type` is what every other head for the file starts with, so a 304 or
    // 206 of a cached file matches no rule either.
    // Looked for only when a head other than the full 200 is built.
    let with_validators = |status: Status| {
        let mut head = HeadBuilder::new(status, cx.date);
        let prebuilt_common = full_200_fields
            .filter(|_| !fh.rules.is_empty())
            .and_then(common_fields);
        match prebuilt_common {
            Some(common) => {
                head.raw(common);
            }
            None => {
                // Formatted only here: a cached full 200 has it in its prebuilt fields.
                let mut lm = Vec::with_capacity(32);
                last_modified.write_imf(&mut lm);
                fh.write_common(&mut head, meta, &lm, neg);
            }
        }
        head
    };
    match conditional::evaluate(&pre, &validators) {
        Outcome::NotModified => {
            let head = with_validators(Status::NotModified);
            return cx.finish(Status::NotModified, head, Body::Empty);
        }
        Outcome::PreconditionFailed => {
            return cx.message_with(Status::PreconditionFailed, neg.extra());
        }
        Outcome::Proceed => {}
    }
    // A date names no single representation of a negotiated file (they share
    // `Last-Modified`), so with `Vary` only an entity-tag in `If-Range` can allow a range:
    // bytes of one coding are never sent to complete another.
    let if_range_allows = match h.if_range {
        Some(value) if neg.vary && !value.starts_with(b"\"") => false,
        _ => conditional::if_range_allows(h.if_range, &validators),
    };
    let decision = match (req.method, h.range) {
        // RFC 9110 §14.2: range handling is defined for GET only.
        (Method::Get, Some(range)) if if_range_allows => {
            match range::decide(range, meta.size) {
                // See the module docs: an encoded representation is not split into parts.
                RangeDecision::Multi(_) if neg.encoding.is_some() => RangeDecision::Full,
                decision => decision,
            }
        }
        _ => RangeDecision::Full,
    };
    match decision {
        RangeDecision::Full => {
            let head = match full_200_fields {
                Some(fields) => {
                    let mut head = HeadBuilder::new(Status::Ok, cx.date);
                    head.raw(fields);
                    head
                }
                None => {
                    let mut head = with_validators(Status::Ok);
                    fh.write_content_type(&mut head, meta);
                    if let Some(coding) = neg.encoding {
                        head.header("Content-Encoding", coding.token().as_bytes());
                    }
                    head.content_length(meta.size);
                    head
                }
            };
            cx.finish(Status::Ok, head, source.body(0..meta.size))
        }
        RangeDecision::Single(range) => {
            let mut head = with_validators(Status::PartialContent);
            fh.write_content_type(&mut head, meta);
            if let Some(coding) = neg.encoding {
                head.header("Content-Encoding", coding.token().as_bytes());
            }
            head.content_range(&range, meta.size)
                .content_length(range.end - range.start);
            cx.finish(Status::PartialContent, head, source.body(range))
        }
        RangeDecision::Multi(ranges) => {
            let boundary = meta.etag.hex();
            let (parts, trailer) = multipart_parts(&ranges, boundary, meta, fh.content_type());
            let mut content_type = b"multipart/byteranges; boundary=".to_vec();
            content_type.extend_from_slice(boundary);
            let mut head = with_validators(Status::PartialContent);
            head.header("Content-Type", &content_type);
            let body = source.multipart(parts, trailer);
            head.content_length(body.len());
            // `multipart` already copied static bytes; HEAD is not ranged, so no waste here.
            cx.finish(Status::PartialContent, head, body)
        }
        RangeDecision::Unsatisfiable => {
            let mut unsatisfied = Vec::with_capacity(32);
            let _ = write!(unsatisfied, "bytes */{}", meta.size);
            let mut extra: Vec<(&str, &[u8])> = vec![("Content-Range", &unsatisfied)];
            extra.extend_from_slice(neg.extra());
            cx.message_with(Status::RangeNotSatisfiable, &extra)
        }
    }
}

/// The part headers and closing delimiter of a `multipart/byteranges` body. The boundary is
/// the ETag's hex digits: stable for a file version, and the same on every instance.
/// `content_type`: a header rule's, else the type by extension.
fn multipart_parts(
    ranges: &[Range<u64>],
    boundary: &[u8],
    meta: &Meta,
    content_type: Option<&[u8]>,
) -> (Vec<Part>, Vec<u8>) {
    let parts = ranges
        .iter()
        .enumerate()
        .map(|(i, range)| {
            let mut header = Vec::with_capacity(128);
            if i > 0 {
                header.extend_from_slice(b"\r\n");
            }
            header.extend_from_slice(b"--");
            header.extend_from_slice(boundary);
            header.extend_from_slice(b"\r\nContent-Type: ");
            match content_type {
                Some(ct) => header.extend_from_slice(ct),
                None => {
                    header.extend_from_slice(meta.content_type.essence.as_bytes());
                    if meta.content_type.utf8 {
                        header.extend_from_slice(b"; charset=utf-8");
                    }
                }
            }
            let _ = write!(
                header,
                "\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                range.start,
                range.end - 1,
                meta.size
            );
            Part {
                header,
                range: range.clone(),
            }
        })
        .collect();
    let mut trailer = b"\r\n--".to_vec();
    trailer.extend_from_slice(boundary);
    trailer.extend_from_slice(b"--\r\n");
    (parts, trailer)
}
