//! Responses as the drivers see them: a prebuilt head, a body description, and what to do
//! with the connection afterwards. Building heads lives here too, so every response carries
//! the same common headers in the same order.

use super::date::DateCache;
use super::status::Status;
use crate::fs::ContentType;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::rc::Rc;

/// The value of `Server`.
pub const SERVER: &str = "ringserve";

/// `Allow` on 405 and OPTIONS responses.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// What happens to the connection once a response is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
}

/// A response ready to send: `head` is complete (status line to the blank line).
#[derive(Debug)]
pub struct Response {
    pub status: Status,
    pub head: Vec<u8>,
    pub body: Body,
    pub after: After,
    /// Request fields for the access log, present only when logging is on.
    pub log: Option<Box<LogFields>>,
}

impl Response {
    /// Bytes of content that follow the head.
    pub fn body_len(&self) -> u64 {
        self.body.len()
    }

    /// Adds the field line `name: value` at the end of the finished head (before the blank
    /// line). `value` must already be a valid field value.
    pub fn add_field(&mut self, name: &str, value: &[u8]) {
        let end = self.head.len().saturating_sub(2);
        let line = [name.as_bytes(), b": ", value, b"\r\n"].concat();
        self.head.splice(end..end, line);
    }
}

/// The content of a response.
#[derive(Debug)]
pub enum Body {
    Empty,
    Static(&'static [u8]),
    Bytes(Vec<u8>),
    /// `range` of a body held in memory by a worker's file cache.
    Shared {
        bytes: Rc<[u8]>,
        range: Range<u64>,
    },
    /// `range` of an open file, sent without a user-space copy where the driver can.
    File {
        file: Rc<File>,
        range: Range<u64>,
    },
    /// `multipart/byteranges`: each part is a small in-memory header then a file range,
    /// and `trailer` closes the body.
    Multipart {
        file: Rc<File>,
        parts: Vec<Part>,
        trailer: Vec<u8>,
    },
}

/// One part of a `multipart/byteranges` body.
#[derive(Debug)]
pub struct Part {
    pub header: Vec<u8>,
    pub range: Range<u64>,
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File { range, .. } | Body::Shared { range, .. } => range.end - range.start,
            Body::Multipart { parts, trailer, .. } => {
                let parts: u64 = parts
                    .iter()
                    .map(|p| p.header.len() as u64 + (p.range.end - p.range.start))
                    .sum();
                parts + trailer.len() as u64
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Request fields the access log needs, copied out of the connection buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFields {
    /// `METHOD target HTTP/1.x`, or empty when the request line could not be parsed.
    pub request_line: Vec<u8>,
    pub referer: Option<Vec<u8>>,
    pub user_agent: Option<Vec<u8>>,
    /// Every `X-Forwarded-For` line joined by `, `, in order (see [`super::forwarded`]).
    pub x_forwarded_for: Option<Vec<u8>>,
    pub x_real_ip: Option<Vec<u8>>,
}

/// Writes a response head. Every head starts with the status line, `Server` and `Date`, and
/// ends (in [`HeadBuilder::finish`]) with the headers every response carries.
#[derive(Debug)]
pub struct HeadBuilder {
    buf: Vec<u8>,
}

impl HeadBuilder {
    pub fn new(status: Status, date: &DateCache) -> HeadBuilder {
        let mut buf = Vec::with_capacity(320);
        // Built by hand rather than with `write!`: this runs for every response.
        buf.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(&mut buf, u64::from(status.code()));
        buf.push(b' ');
        buf.extend_from_slice(status.reason().as_bytes());
        buf.extend_from_slice(b"\r\nServer: ");
        buf.extend_from_slice(SERVER.as_bytes());
        buf.extend_from_slice(b"\r\nDate: ");
        buf.extend_from_slice(date.imf());
        buf.extend_from_slice(b"\r\n");
        HeadBuilder { buf }
    }

    /// A builder for header fields only (no status line), to prebuild a block of fields that
    /// [`HeadBuilder::raw`] inserts later.
    pub fn fields() -> HeadBuilder {
        HeadBuilder {
            buf: Vec::with_capacity(192),
        }
    }

    /// The fields written so far (for a builder from [`HeadBuilder::fields`]).
    pub fn into_fields(self) -> Vec<u8> {
        self.buf
    }

    /// Appends prebuilt header fields (each ending in CRLF).
    pub fn raw(&mut self, fields: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(fields);
        self
    }

    /// Adds `name: value`. `value` must already be a valid field value.
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn content_type(&mut self, ct: ContentType) -> &mut Self {
        self.buf.extend_from_slice(b"Content-Type: ");
        self.buf.extend_from_slice(ct.essence.as_bytes());
        if ct.utf8 {
            self.buf.extend_from_slice(b"; charset=utf-8");
        }
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn content_length(&mut self, len: u64) -> &mut Self {
        self.buf.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut self.buf, len);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// `Content-Range: bytes first-last/len` for a half-open `range`.
    pub fn content_range(&mut self, range: &Range<u64>, len: u64) -> &mut Self {
        let _ = write!(
            self.buf,
            "Content-Range: bytes {}-{}/{len}\r\n",
            range.start,
            range.end - 1
        );
        self
    }

    /// Appends the headers every response carries, the `Connection` header `after` and
    /// `confirm` call for, and the blank line.
    pub fn finish(mut self, after: After, confirm: Confirm) -> Vec<u8> {
        self.buf
            .extend_from_slice(b"Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n");
        match (after, confirm) {
            (After::Close, _) => self.buf.extend_from_slice(b"Connection: close\r\n"),
            (After::KeepAlive, Confirm::KeepAlive) => {
                self.buf.extend_from_slice(b"Connection: keep-alive\r\n");
            }
            (After::KeepAlive, Confirm::Implicit) => {}
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// Whether keep-alive must be stated in the response (HTTP/1.0 clients need it spelled out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    Implicit,
    KeepAlive,
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The small HTML body of an error or redirect response.
pub fn html_message(status: Status) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    let _ = write!(
        body,
        "<!doctype html>\n<html><head><title>{code} {reason}</title></head>\n\
         <body><h1>{code} {reason}</h1><hr><p>ringserve</p></body></html>\n",
        code = status.code(),
        reason = status.reason()
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn head_has_common_headers_in_order() {
        let date = DateCache::new(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777));
        let mut b = HeadBuilder::new(Status::NotFound, &date);
        b.content_type(ContentType::HTML).content_length(12);
        let head = b.finish(After::Close, Confirm::Implicit);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 404 Not Found\r\nServer: ringserve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Length: 12\r\n\
             Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_field_added_to_a_finished_head_goes_before_the_blank_line() {
        let date = DateCache::new(SystemTime::UNIX_EPOCH);
        let head = HeadBuilder::new(Status::Ok, &date).finish(After::KeepAlive, Confirm::Implicit);
        let mut r = Response {
            status: Status::Ok,
            head,
            body: Body::Empty,
            after: After::KeepAlive,
            log: None,
        };
        r.add_field("Vary", b"Accept");
        assert!(r.head.ends_with(b"nosniff\r\nVary: Accept\r\n\r\n"));
    }

    #[test]
    fn keep_alive_is_confirmed_only_when_asked() {
        let date = DateCache::new(SystemTime::UNIX_EPOCH);
        let head = HeadBuilder::new(Status::Ok, &date).finish(After::KeepAlive, Confirm::KeepAlive);
        assert!(head.ends_with(b"Connection: keep-alive\r\n\r\n"));
        let head = HeadBuilder::new(Status::Ok, &date).finish(After::KeepAlive, Confirm::Implicit);
        assert!(!head.windows(11).any(|w| w == b"Connection:"));
    }

    #[test]
    fn content_range_is_inclusive() {
        let date = DateCache::new(SystemTime::UNIX_EPOCH);
        let mut b = HeadBuilder::new(Status::PartialContent, &date);
        b.content_range(&(0..10), 100);
        let head = b.finish(After::KeepAlive, Confirm::Implicit);
        assert!(
            head.windows(29)
                .any(|w| w == b"Content-Range: bytes 0-9/100\r")
        );
    }

    #[test]
    fn decimals_match_display() {
        for n in [0, 1, 9, 10, 99, 100, 4096, 1 << 20, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn html_message_names_the_status() {
        let body = String::from_utf8(html_message(Status::MethodNotAllowed)).unwrap();
        assert!(body.contains("<title>405 Method Not Allowed</title>"));
    }
}
