//! The request line (RFC 9112 §3): `method SP request-target SP HTTP-version CRLF`, checked
//! byte by byte before httparse reads the header block.
//!
//! Strict on purpose: a request line a front-end proxy might split differently is a
//! smuggling vector, so anything but exactly one space between exactly three parts is a 400.
//! - `method` is a token; `request-target` is one or more visible ASCII characters (no
//!   spaces, tabs, controls or raw non-ASCII bytes: clients percent-encode those).
//! - `HTTP-version` is `HTTP/` DIGIT `.` DIGIT, case-sensitive (RFC 9112 §2.3). Major version
//!   1 with minor 0 is HTTP/1.0; any higher minor (`HTTP/1.2`…) is processed as HTTP/1.1, as
//!   RFC 9110 §2.5 asks of a recipient that implements a lower minor version of the same
//!   major. Any other major (`HTTP/0.9`, `HTTP/2.0`) is well-formed but unsupported: 505.
//! - The line ends with CRLF. A bare LF is refused although RFC 9112 §2.2 lets a recipient
//!   accept it: a proxy that does not split lines on LF alone would read the bytes after it
//!   as part of the same field, which is how requests are smuggled. A CR anywhere else is a
//!   400 too.
//! - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2: a server SHOULD
//!   ignore at least one); the head limit bounds how many.
//!
//! Errors are reported as soon as the bytes received so far cannot start a valid line, so
//! garbage is refused without waiting for its end.

use super::request::{RequestError, Version};

/// A complete, valid request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: Version,
    /// Bytes consumed: skipped empty lines, the line and its line end.
    pub len: usize,
}

/// Parses the request line at the start of `buf`: `Ok(None)` when it is not complete yet and
/// nothing seen so far is invalid.
pub fn parse(buf: &[u8]) -> Result<Option<RequestLine<'_>>, RequestError> {
    let mut start = 0;
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..] | [b'\r', _, ..]) => return Err(RequestError::Malformed),
            Some([] | [b'\r']) | None => return Ok(None),
            Some(_) => break,
        }
    }
    // `start` only advanced over bytes matched above, so it is within `buf`.
    let rest = &buf[start..];
    let Some(lf) = memchr::memchr(b'\n', rest) else {
        // A trailing CR may be the first half of the line's CRLF.
        let seen = rest.strip_suffix(b"\r").unwrap_or(rest);
        check_prefix(seen)?;
        return Ok(None);
    };
    let Some(line) = rest[..lf].strip_suffix(b"\r") else {
        return Err(RequestError::Malformed); // a bare LF
    };
    let (method, target, version) = split(line)?;
    let version = match version {
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', _] => Version::Http11,
        _ => return Err(RequestError::VersionNotSupported),
    };
    // Both parts were checked to be ASCII above; from_utf8 cannot fail on them.
    let method = std::str::from_utf8(method).map_err(|_| RequestError::Malformed)?;
    let target = std::str::from_utf8(target).map_err(|_| RequestError::Malformed)?;
    Ok(Some(RequestLine {
        method,
        target,
        version,
        len: start + lf + 1,
    }))
}

/// The three parts of a request line: method, target, version.
type Parts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Splits a complete line (without its line end) into its three parts, each checked.
fn split(line: &[u8]) -> Result<Parts<'_>, RequestError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    let valid = !method.is_empty()
        && method.iter().copied().all(is_tchar)
        && !target.is_empty()
        && target.iter().copied().all(is_vchar)
        && version.len() == VERSION_SHAPE.len()
        && is_version_prefix(version);
    if valid {
        Ok((method, target, version))
    } else {
        Err(RequestError::Malformed)
    }
}

/// Checks an incomplete line: every part seen so far must be a valid beginning.
fn check_prefix(seen: &[u8]) -> Result<(), RequestError> {
    let mut parts = seen.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().copied().all(is_tchar) {
        return Err(RequestError::Malformed);
    }
    let Some(target) = parts.next() else {
        return Ok(());
    };
    if method.is_empty() || !target.iter().copied().all(is_vchar) {
        return Err(RequestError::Malformed);
    }
    let Some(version) = parts.next() else {
        return Ok(());
    };
    if target.is_empty() || version.len() > VERSION_SHAPE.len() || !is_version_prefix(version) {
        return Err(RequestError::Malformed);
    }
    Ok(())
}

/// `HTTP/` DIGIT `.` DIGIT, with `#` standing for a digit.
const VERSION_SHAPE: &[u8; 8] = b"HTTP/#.#";

/// Whether `v` is a prefix of (or all of) the `HTTP-version` shape.
fn is_version_prefix(v: &[u8]) -> bool {
    v.iter().zip(VERSION_SHAPE).all(|(&b, &shape)| match shape {
        b'#' => b.is_ascii_digit(),
        _ => b == shape,
    }) && v.len() <= VERSION_SHAPE.len()
}

/// `tchar` of RFC 9110 §5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Visible ASCII: the characters a request-target may contain.
fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_lines() {
        let cases: &[(&[u8], &str, &str, Version, usize)] = &[
            (b"GET / HTTP/1.1\r\n", "GET", "/", Version::Http11, 16),
            (b"GET / HTTP/1.1\r\nHost", "GET", "/", Version::Http11, 16),
            (
                b"HEAD /a?b HTTP/1.0\r\n",
                "HEAD",
                "/a?b",
                Version::Http10,
                20,
            ),
            (
                b"\r\n\r\nGET * HTTP/1.1\r\n",
                "GET",
                "*",
                Version::Http11,
                20,
            ),
            (b"M-1 /%20 HTTP/1.2\r\n", "M-1", "/%20", Version::Http11, 19),
            (b"GET / HTTP/1.9\r\n", "GET", "/", Version::Http11, 16),
        ];
        for &(raw, method, target, version, len) in cases {
            let expected = RequestLine {
                method,
                target,
                version,
                len,
            };
            assert_eq!(parse(raw), Ok(Some(expected)), "{raw:?}");
        }
    }

    #[test]
    fn malformed_lines_are_400_and_unsupported_versions_505() {
        let malformed: &[&[u8]] = &[
            b"GET /a b HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / HTTP/1.1 \r\n",
            b" GET / HTTP/1.1\r\n",
            b"GET\t/ HTTP/1.1\r\n",
            b"GET /\tHTTP/1.1\r\n",
            b"GET  HTTP/1.1\r\n",
            b"GET /\rHTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\r\n",
            b"GET / HTTP/1.1\rHost: x\r\n",
            b"\rGET / HTTP/1.1\r\n",
            b"GET /\x7f HTTP/1.1\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n",
            b"GET /\0 HTTP/1.1\r\n",
            b"G\0T / HTTP/1.1\r\n",
            b"GET / http/1.1\r\n",
            b"GET / HTTP/1.10\r\n",
            b"GET / HTTP/11\r\n",
            b"GET / HTTP/1.x\r\n",
            b"GET / HTTP/1\r\n",
            b"GET /\r\n",
            b"GET\r\n",
            b" \r\n",
            b"G(T / HTTP/1.1\r\n",
            b"GET / HTTP/1.1 extra\r\n",
            b"GET / HTTP/1.1\n",
            b"GET /\nHTTP/1.1\r\n",
            b"\nGET / HTTP/1.1\r\n",
            b"\r\n\nGET / HTTP/1.1\r\n",
        ];
        for raw in malformed {
            assert_eq!(parse(raw), Err(RequestError::Malformed), "{raw:?}");
        }
        for raw in [
            &b"GET / HTTP/2.0\r\n"[..],
            b"GET / HTTP/0.9\r\n",
            b"GET / HTTP/3.1\r\n",
        ] {
            assert_eq!(
                parse(raw),
                Err(RequestError::VersionNotSupported),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn prefixes_of_valid_lines_are_partial_and_garbage_fails_early() {
        let raw = b"\r\nGET /x?y HTTP/1.1\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        for early in [
            &b"G\tT"[..],
            b"GET /a b",
            b"GET / HTTP/1.1 ",
            b"GET / HTTQ",
            b"\x16\x03\x01",
            b"GET\t",
            b"GET /\r ",
        ] {
            assert_eq!(parse(early), Err(RequestError::Malformed), "{early:?}");
        }
    }
}
