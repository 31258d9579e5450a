//! Request heads: framing checks and a typed view of the headers the server uses.
//!
//! `httparse` tokenizes; this module decides. After [`parse`] no other code compares header
//! names: everything downstream reads [`Headers`]. "Need more bytes" is the normal
//! [`Parsed::Partial`], never an error.
//!
//! Framing rules enforced here (RFC 9112): a malformed request line (see [`request_line`]),
//! both `Content-Length` and `Transfer-Encoding`, a `Transfer-Encoding` on HTTP/1.0 or whose
//! final coding is not `chunked` (or lists `chunked` twice), differing `Content-Length`
//! values, obs-fold, a bad header name or value, a missing or repeated `Host` on HTTP/1.1 →
//! 400, and the connection closes after it. A head over the limit → 431, or 414 when the
//! request line alone is over it. A well-formed version with a major other than 1 → 505;
//! `HTTP/1.2` and higher minors are served as HTTP/1.1.

use super::accept::Accept;
use super::encoding::AcceptEncoding;
use super::request_line;
use super::status::Status;

/// Header lines beyond this make the head "too large" (431), whatever its size in bytes.
pub const MAX_HEADERS: usize = 64;

/// Why a request head is refused. Each maps to exactly one status in [`RequestError::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not HTTP/1.x syntax: request line, header name or value, obs-fold.
    Malformed,
    /// `Content-Length` and `Transfer-Encoding` together, differing or invalid lengths, TE on
    /// 1.0, or a TE list whose final coding is not `chunked`.
    AmbiguousFraming,
    /// HTTP/1.1 without `Host`, or several `Host` lines.
    BadHost,
    /// A request target that is neither origin-form, absolute-form nor `*` (for OPTIONS).
    BadTarget,
    /// The whole head exceeds the limit, or has more than [`MAX_HEADERS`] lines.
    HeadTooLarge,
    /// The request line alone exceeds the head limit.
    UriTooLong,
    /// A well-formed version with a major other than 1: `HTTP/2.0`, `HTTP/0.9`, …
    VersionNotSupported,
}

impl RequestError {
    /// The one place request errors become statuses.
    pub fn status(self) -> Status {
        match self {
            RequestError::Malformed
            | RequestError::AmbiguousFraming
            | RequestError::BadHost
            | RequestError::BadTarget => Status::BadRequest,
            RequestError::HeadTooLarge => Status::HeaderFieldsTooLarge,
            RequestError::UriTooLong => Status::UriTooLong,
            RequestError::VersionNotSupported => Status::VersionNotSupported,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    /// Any other (syntactically valid) method: answered 405.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Http10,
    Http11,
}

/// The request target, reduced to what a static server needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/path?query` (absolute-form targets are reduced to this; their authority is ignored).
    Path {
        path: &'a [u8],
        query: Option<&'a [u8]>,
    },
    /// `*` (only meaningful for OPTIONS).
    Asterisk,
}

/// What the request says about a body we never read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    /// `Transfer-Encoding` present (on 1.1, without `Content-Length`).
    Chunked,
}

impl BodyFraming {
    /// A body follows the head. We never read request bodies, so its bytes would be taken for
    /// the next request: such a connection is answered and then closed.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyFraming::None | BodyFraming::Length(0))
    }
}

/// What the `Connection` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConnectionOption {
    #[default]
    Unspecified,
    KeepAlive,
    Close,
}

/// The headers the server acts on, parsed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers<'a> {
    pub host: Option<&'a [u8]>,
    pub connection: ConnectionOption,
    pub if_match: Vec<&'a [u8]>,
    pub if_none_match: Vec<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    /// `None` also when the header appears more than once (ambiguous: served in full).
    pub range: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// Every `X-Forwarded-For` line, in order (only the access log reads them).
    pub x_forwarded_for: Vec<&'a [u8]>,
    /// The last `X-Real-IP` line.
    pub x_real_ip: Option<&'a [u8]>,
    /// Every `Accept-Encoding` line, parsed as one list (see [`super::encoding`]).
    pub accept_encoding: AcceptEncoding,
    /// Every `Accept` line, read only by the app fallback (see [`super::accept`]).
    pub accept: Accept<'a>,
}

/// A parsed request head, borrowing the connection's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// The method token as sent (for the access log).
    pub method_raw: &'a str,
    /// The request target as sent (for the access log).
    pub target_raw: &'a str,
    pub target: Target<'a>,
    pub version: Version,
    pub body: BodyFraming,
    pub headers: Headers<'a>,
}

impl Request<'_> {
    /// Whether the client wants the connection kept open after this exchange.
    pub fn wants_keep_alive(&self) -> bool {
        match (self.version, self.headers.connection) {
            (_, ConnectionOption::Close) => false,
            (Version::Http11, _) => true,
            (Version::Http10, ConnectionOption::KeepAlive) => true,
            (Version::Http10, ConnectionOption::Unspecified) => false,
        }
    }
}

/// The outcome of parsing the start of a buffer.
// The large variant is the common one and lives on the stack for one call; boxing it would
// add an allocation per request to save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A complete head of `len` bytes.
    Complete { request: Request<'a>, len: usize },
    /// The head is not complete yet.
    Partial,
}

/// Parses the request head at the start of `buf`, which must not start with a partial head
/// that has already been refused. `max_head` bounds the head size in bytes.
pub fn parse(buf: &[u8], max_head: usize) -> Result<Parsed<'_>, RequestError> {
    parse_visiting(buf, max_head, |_, _| {})
}

/// [`parse`], also handing every header field line of an accepted head to `visit` (name as
/// sent, value without surrounding whitespace), in order. For differential testing against
/// other parsers (`examples/parse_verdict.rs`); the server itself calls [`parse`].
#[doc(hidden)]
pub fn parse_visiting<'a>(
    buf: &'a [u8],
    max_head: usize,
    mut visit: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<Parsed<'a>, RequestError> {
    let window = &buf[..buf.len().min(max_head)];
    let line = match request_line::parse(window)? {
        Some(line) => line,
        // Not even the request line fits in the limit.
        None if buf.len() >= max_head => return Err(RequestError::UriTooLong),
        None => return Ok(Parsed::Partial),
    };
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    // `line.len` counts bytes of `window` the line parser consumed, so the slice is in bounds;
    // likewise `fields_len` counts bytes httparse consumed after it.
    let (fields_len, fields) = match httparse::parse_headers(&window[line.len..], &mut slots) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            return Err(RequestError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(_) => return Err(RequestError::Malformed),
    };
    if has_bare_lf(&window[line.len..line.len + fields_len]) {
        return Err(RequestError::Malformed);
    }
    let method = match line.method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    let target = parse_target(line.target.as_bytes())?;
    let (headers, body) = typed_headers(fields, line.version)?;
    if line.version == Version::Http11 && headers.host.is_none() {
        return Err(RequestError::BadHost);
    }
    for field in fields {
        visit(field.name.as_bytes(), trim_ows(field.value));
    }
    let request = Request {
        method,
        method_raw: line.method,
        target_raw: line.target,
        target,
        version: line.version,
        body,
        headers,
    };
    Ok(Parsed::Complete {
        request,
        len: line.len + fields_len,
    })
}

/// httparse accepts a bare LF as a field line's end (RFC 9112 §2.2 allows it); we do not,
/// for the reason given in [`request_line`].
fn has_bare_lf(block: &[u8]) -> bool {
    // `i` indexes a byte of `block`, so `i - 1` does too once `i > 0`.
    memchr::memchr_iter(b'\n', block).any(|i| i == 0 || block[i - 1] != b'\r')
}

fn parse_target(raw: &[u8]) -> Result<Target<'_>, RequestError> {
    let path_and_query = match raw {
        b"*" => return Ok(Target::Asterisk),
        [b'/', ..] => raw,
        _ => absolute_form_path(raw).ok_or(RequestError::BadTarget)?,
    };
    Ok(match memchr::memchr(b'?', path_and_query) {
        Some(q) => Target::Path {
            path: &path_and_query[..q],
            query: Some(&path_and_query[q + 1..]),
        },
        None => Target::Path {
            path: path_and_query,
            query: None,
        },
    })
}

/// `http://authority/path?q` → `/path?q` (RFC 9112 §3.2.2: a server MUST accept
/// absolute-form). The authority is ignored: we serve one site.
fn absolute_form_path(raw: &[u8]) -> Option<&[u8]> {
    let rest = strip_prefix_ignore_case(raw, b"http://")
        .or_else(|| strip_prefix_ignore_case(raw, b"https://"))?;
    let authority_end = memchr::memchr2(b'/', b'?', rest).unwrap_or(rest.len());
    if authority_end == 0 {
        return None;
    }
    match rest.get(authority_end) {
        Some(b'/') => Some(&rest[authority_end..]),
        // `http://host` or `http://host?q`: the path is empty, which means `/`.
        _ => Some(b"/"),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn typed_headers<'a>(
    raw: &[httparse::Header<'a>],
    version: Version,
) -> Result<(Headers<'a>, BodyFraming), RequestError> {
    let mut h = Headers::default();
    let mut host_lines = 0usize;
    let mut range_lines = 0usize;
    let mut content_length: Option<(u64, &[u8])> = None;
    let mut transfer_encoding: Option<TransferCoding> = None;
    for header in raw {
        let name = header.name.as_bytes();
        let value = trim_ows(header.value);
        // Dispatch on length first: one compare of a usize rules out almost every name.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                host_lines += 1;
                h.host = Some(value);
            }
            5 if name.eq_ignore_ascii_case(b"range") => {
                range_lines += 1;
                h.range = Some(value);
            }
            6 if name.eq_ignore_ascii_case(b"accept") => h.accept.add_field(value),
            7 if name.eq_ignore_ascii_case(b"referer") => h.referer = Some(value),
            8 if name.eq_ignore_ascii_case(b"if-match") => h.if_match.push(value),
            8 if name.eq_ignore_ascii_case(b"if-range") => h.if_range = Some(value),
            9 if name.eq_ignore_ascii_case(b"x-real-ip") => h.x_real_ip = Some(value),
            10 if name.eq_ignore_ascii_case(b"connection") => {
                h.connection = merge_connection(h.connection, value);
            }
            10 if name.eq_ignore_ascii_case(b"user-agent") => h.user_agent = Some(value),
            13 if name.eq_ignore_ascii_case(b"if-none-match") => h.if_none_match.push(value),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let (n, digits) = parse_content_length(value)?;
                if content_length.is_some_and(|(_, prev)| prev != digits) {
                    return Err(RequestError::AmbiguousFraming);
                }
                content_length = Some((n, digits));
            }
            15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => h.x_forwarded_for.push(value),
            15 if name.eq_ignore_ascii_case(b"accept-encoding") => {
                h.accept_encoding.add_field(value);
            }
            17 if name.eq_ignore_ascii_case(b"if-modified-since") => {
                h.if_modified_since = Some(value);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding = Some(add_transfer_codings(transfer_encoding, value)?);
            }
            19 if name.eq_ignore_ascii_case(b"if-unmodified-since") => {
                h.if_unmodified_since = Some(value);
            }
            _ => {}
        }
    }
    // RFC 9112 §3.2: more than one Host line, or an invalid value, is a 400.
    if host_lines > 1 || h.host.is_some_and(|host| !is_valid_host(host)) {
        return Err(RequestError::BadHost);
    }
    if range_lines > 1 {
        h.range = None;
    }
    let body = match (transfer_encoding, content_length) {
        (Some(_), Some(_)) => return Err(RequestError::AmbiguousFraming),
        (Some(_), None) if version == Version::Http10 => {
            return Err(RequestError::AmbiguousFraming);
        }
        (Some(TransferCoding::Chunked), None) => BodyFraming::Chunked,
        // RFC 9112 §6.3: a request whose final coding is not chunked has no knowable end.
        (Some(TransferCoding::Other | TransferCoding::Empty), None) => {
            return Err(RequestError::AmbiguousFraming);
        }
        (None, Some((n, _))) => BodyFraming::Length(n),
        (None, None) => BodyFraming::None,
    };
    Ok((h, body))
}

/// The last transfer coding listed so far in a request's `Transfer-Encoding` lines (all lines
/// read as one list, RFC 9110 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TransferCoding {
    /// No coding yet (only empty list elements).
    Empty,
    Chunked,
    Other,
}

/// Adds one `Transfer-Encoding` line to the codings seen so far. Each element must be a
/// coding name (a token, with parameters except on `chunked`); `chunked` may only come
/// last, so anything after it — another coding, or `chunked` again (a duplicated
/// `Transfer-Encoding: chunked` line) — is a framing error (RFC 9112 §6.1).
fn add_transfer_codings(
    seen: Option<TransferCoding>,
    value: &[u8],
) -> Result<TransferCoding, RequestError> {
    let mut last = seen.unwrap_or(TransferCoding::Empty);
    for element in value.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue; // RFC 9110 §5.6.1: empty list elements are ignored
        }
        if last == TransferCoding::Chunked {
            return Err(RequestError::AmbiguousFraming);
        }
        let (name, params) = match memchr::memchr(b';', element) {
            Some(semi) => (trim_ows(&element[..semi]), true),
            None => (element, false),
        };
        if name.is_empty() || !name.iter().copied().all(request_line::is_tchar) {
            return Err(RequestError::AmbiguousFraming);
        }
        last = if name.eq_ignore_ascii_case(b"chunked") {
            if params {
                return Err(RequestError::AmbiguousFraming);
            }
            TransferCoding::Chunked
        } else {
            TransferCoding::Other
        };
    }
    Ok(last)
}

/// `Content-Length` is `1*DIGIT`; a list of identical values (`5, 5`) is tolerated as RFC
/// 9110 §8.6 allows, anything else is a framing error. Returns the length and its digits as
/// sent: other `Content-Length` lines must repeat exactly those digits (`5` and `05` are not
/// identical field values).
fn parse_content_length(value: &[u8]) -> Result<(u64, &[u8]), RequestError> {
    let mut result: Option<(u64, &[u8])> = None;
    for item in value.split(|&b| b == b',') {
        let item = trim_ows(item);
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(RequestError::AmbiguousFraming);
        }
        let mut n: u64 = 0;
        for &d in item {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(RequestError::AmbiguousFraming)?;
        }
        if result.is_some_and(|(_, prev)| prev != item) {
            return Err(RequestError::AmbiguousFraming);
        }
        result = Some((n, item));
    }
    result.ok_or(RequestError::AmbiguousFraming)
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), checked by alphabet: the characters of a
/// reg-name (unreserved, `%`-escapes, sub-delims), `:` before the port and `[]` around an
/// IP literal. Empty is allowed (RFC 9112 §3.2 for targets without authority). Anything else
/// — spaces, `/`, `@`, `\`, quotes, controls, non-ASCII — is refused.
fn is_valid_host(host: &[u8]) -> bool {
    host.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            )
    })
}

/// `close` anywhere wins; otherwise `keep-alive` anywhere.
fn merge_connection(current: ConnectionOption, value: &[u8]) -> ConnectionOption {
    let mut option = current;
    for token in value.split(|&b| b == b',') {
        let token = trim_ows(token);
        if token.eq_ignore_ascii_case(b"close") {
            return ConnectionOption::Close;
        }
        if token.eq_ignore_ascii_case(b"keep-alive") {
            option = ConnectionOption::KeepAlive;
        }
    }
    option
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests;
