//! Request path → [`SafePath`]: the only way to name a file under the root.
//!
//! Owns: turning the path part of a request target (raw bytes from the wire, query already
//! stripped) into a normalized path relative to the root, and every lexical path-safety rule:
//!
//! 1. The path must start with `/` ([`PathError::NotAbsolute`]).
//! 2. It is percent-decoded exactly once: `%2e%2e` becomes `..`, `%2f` becomes a separator,
//!    and `%252e` becomes the three literal bytes `%2e` (never decoded a second time). A `%` not
//!    followed by two hex digits is [`PathError::BadPercentEncoding`]; a NUL byte, raw or
//!    decoded, is [`PathError::Nul`].
//! 3. The decoded bytes are split on `/`. Empty and `.` segments are dropped, `..` removes the
//!    previous segment, and a `..` with nothing left to remove is [`PathError::AboveRoot`].
//! 4. With [`Dotfiles::Hidden`], a remaining segment starting with `.` is [`PathError::Hidden`].
//!
//! Bytes other than `/` and NUL have no meaning here: on Linux a backslash is an ordinary
//! filename byte, so `..\..\etc` is one odd file name, not a way up. Non-UTF-8 bytes are kept
//! as they are.
//!
//! Must not: touch the file system (symlinks are the opener's business: `sys::fs::open_beneath`
//! keeps them beneath the root), or know about HTTP statuses.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Whether names starting with `.` may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dotfiles {
    #[default]
    Hidden,
    Served,
}

/// Why a request path cannot name a file under the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// A `..` that would climb above the root.
    AboveRoot,
    /// A segment starting with `.` while dotfiles are hidden.
    Hidden,
}

/// A normalized path relative to the root: no leading `/`, no empty, `.` or `..` segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafePath {
    rel: PathBuf,
    dir_form: bool,
}

/// The file served for a request path in directory form.
const INDEX_FILE: &str = "index.html";

impl SafePath {
    /// The relative path (`""` for the root itself).
    pub fn rel(&self) -> &Path {
        &self.rel
    }
    /// True when the request path ended with `/` (after normalization).
    pub fn is_dir_form(&self) -> bool {
        self.dir_form
    }
    /// `self` + `index.html`.
    pub fn index(&self) -> SafePath {
        // SECURITY: `index.html` is one plain segment, so the result keeps every invariant.
        SafePath {
            rel: self.rel.join(INDEX_FILE),
            dir_form: false,
        }
    }

    /// The precompressed sidecar of this file for `coding` (`app.js` → `app.js.br`); `None`
    /// for the root and for directory-form paths, which name no file.
    pub fn sidecar(&self, coding: super::sidecar::Coding) -> Option<SafePath> {
        if self.dir_form || self.rel.as_os_str().is_empty() {
            return None;
        }
        // SECURITY: the suffix is one of three fixed strings, `.` followed by ASCII letters,
        // appended to the last segment: no `/`, NUL or new segment appears, the segment cannot
        // become `.` or `..`, and a name that did not start with `.` still does not.
        let mut rel = self.rel.clone().into_os_string();
        rel.push(coding.suffix());
        Some(SafePath {
            rel: PathBuf::from(rel),
            dir_form: false,
        })
    }
}

/// Percent-decodes `raw_path` once and normalizes it (see module docs).
pub fn resolve(raw_path: &[u8], dotfiles: Dotfiles) -> Result<SafePath, PathError> {
    // SECURITY: only absolute request paths are accepted, so there is no ambiguity about
    // what the first segment is relative to.
    if raw_path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // SECURITY: decode exactly once, before splitting, so that `%2f` separates and `%2e%2e`
    // is a `..` that the normalization below sees and handles. The decoded bytes are never
    // decoded again.
    let mut buf = percent_decode(raw_path)?;

    // Normalised in place: segments are copied down over what was read, so the decoded
    // buffer becomes the relative path (`a/b/c`) without another allocation. Writing never
    // overtakes reading: every segment read consumed a `/` more than was written for it.
    let len = buf.len();
    let mut written = 0;
    let mut depth = 0usize;
    let mut dir_form = false;
    let mut read = 0;
    while read <= len {
        let end = memchr::memchr(b'/', &buf[read..]).map_or(len, |i| read + i);
        // A path names a directory when its last segment is empty (trailing `/`), `.` or `..`;
        // any other segment resets that.
        match &buf[read..end] {
            b"" | b"." => dir_form = true,
            b".." => {
                dir_form = true;
                // SECURITY: `..` may only remove a segment this path added; climbing above the
                // root is refused outright rather than clamped, so it cannot be mistaken for
                // a request for something else.
                if depth == 0 {
                    return Err(PathError::AboveRoot);
                }
                depth -= 1;
                written = buf[..written].iter().rposition(|&b| b == b'/').unwrap_or(0);
            }
            // A backslash is an ordinary byte here: on Linux `..\..\x` is one (strange) file
            // name and cannot leave the directory it is looked up in.
            _ => {
                dir_form = false;
                if depth > 0 {
                    buf[written] = b'/';
                    written += 1;
                }
                buf.copy_within(read..end, written);
                written += end - read;
                depth += 1;
            }
        }
        read = end + 1;
    }
    buf.truncate(written);

    // SECURITY: dotfiles (`.git`, `.env`, `.htpasswd`, …) are checked on every remaining
    // segment, directories included, so `/.git/config` is refused as well as `/.env`.
    if dotfiles == Dotfiles::Hidden && buf.split(|&b| b == b'/').any(|s| s.first() == Some(&b'.')) {
        return Err(PathError::Hidden);
    }

    Ok(SafePath {
        rel: PathBuf::from(OsString::from_vec(buf)),
        dir_form,
    })
}

/// Decodes every `%XX` in `raw` once; rejects malformed escapes and NUL bytes.
fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let byte = if b == b'%' {
            let hi = raw.get(i + 1).and_then(|&h| hex_value(h));
            let lo = raw.get(i + 2).and_then(|&l| hex_value(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadPercentEncoding);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        // SECURITY: NUL would truncate the name at the system-call boundary; refuse it whether
        // it arrived raw or as `%00`.
        if byte == 0 {
            return Err(PathError::Nul);
        }
        out.push(byte);
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    /// The plain way to normalise (a list of segments, joined), which `resolve` does in place.
    fn reference(raw_path: &[u8], dotfiles: Dotfiles) -> Result<SafePath, PathError> {
        if raw_path.first() != Some(&b'/') {
            return Err(PathError::NotAbsolute);
        }
        let decoded = percent_decode(raw_path)?;
        let mut segments: Vec<&[u8]> = Vec::new();
        let mut dir_form = false;
        for segment in decoded.split(|&b| b == b'/') {
            match segment {
                b"" | b"." => dir_form = true,
                b".." => {
                    dir_form = true;
                    if segments.pop().is_none() {
                        return Err(PathError::AboveRoot);
                    }
                }
                name => {
                    dir_form = false;
                    segments.push(name);
                }
            }
        }
        if dotfiles == Dotfiles::Hidden && segments.iter().any(|s| s.first() == Some(&b'.')) {
            return Err(PathError::Hidden);
        }
        Ok(SafePath {
            rel: PathBuf::from(OsStr::from_bytes(&segments.join(&b'/'))),
            dir_form,
        })
    }

    const H: Dotfiles = Dotfiles::Hidden;
    const S: Dotfiles = Dotfiles::Served;

    /// `Ok((rel, dir_form))` or the error.
    type Expected = Result<(&'static [u8], bool), PathError>;

    fn check(input: &[u8], dotfiles: Dotfiles, expected: Expected) {
        let got = resolve(input, dotfiles);
        let got = got
            .as_ref()
            .map(|p| (p.rel().as_os_str().as_bytes(), p.is_dir_form()));
        let expected = expected.as_ref().map(|&(r, d)| (r, d));
        assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn table() {
        use PathError::*;
        let cases: &[(&[u8], Dotfiles, Expected)] = &[
            (b"/", H, Ok((b"", true))),
            (b"//", H, Ok((b"", true))),
            (b"/a", H, Ok((b"a", false))),
            (b"/a/b", H, Ok((b"a/b", false))),
            (b"/a//b/", H, Ok((b"a/b", true))),
            (b"/a/./b", H, Ok((b"a/b", false))),
            (b"/a/.", H, Ok((b"a", true))),
            (b"/.", H, Ok((b"", true))),
            (b"/a/../b", H, Ok((b"b", false))),
            (b"/a/b/..", H, Ok((b"a", true))),
            (b"/a/..", H, Ok((b"", true))),
            (b"/a/b/../../c/", H, Ok((b"c", true))),
            // Climbing above the root.
            (b"/..", H, Err(AboveRoot)),
            (b"/../a", H, Err(AboveRoot)),
            (b"/a/../../b", H, Err(AboveRoot)),
            (b"/%2e%2e/x", H, Err(AboveRoot)),
            (b"/%2E%2E/x", H, Err(AboveRoot)),
            (b"/.%2e", H, Err(AboveRoot)),
            (b"/a%2f..%2f..%2fb", H, Err(AboveRoot)),
            // Dotfile checks happen after normalization; above-root wins over hidden.
            (b"/.env/../..", S, Err(AboveRoot)),
            (b"/.env/../..", H, Err(AboveRoot)),
            // `%2f` is a separator once decoded.
            (b"/a%2fb", H, Ok((b"a/b", false))),
            (b"/a%2F", H, Ok((b"a", true))),
            // NUL, raw or encoded.
            (b"/%00", H, Err(Nul)),
            (b"/a\0b", H, Err(Nul)),
            (b"/a/%00/..", H, Err(Nul)),
            // Malformed escapes.
            (b"/%zz", H, Err(BadPercentEncoding)),
            (b"/%2", H, Err(BadPercentEncoding)),
            (b"/%", H, Err(BadPercentEncoding)),
            (b"/a%g0", H, Err(BadPercentEncoding)),
            (b"/a%0g", H, Err(BadPercentEncoding)),
            // Decoded once: `%25` is a literal `%`, and the rest is not decoded again.
            (b"/%252e%252e/", H, Ok((b"%2e%2e", true))),
            (b"/%2500", H, Ok((b"%00", false))),
            (b"/a%20b", H, Ok((b"a b", false))),
            // Dotfiles.
            (b"/.env", H, Err(Hidden)),
            (b"/.env", S, Ok((b".env", false))),
            (b"/%2eenv", H, Err(Hidden)),
            (b"/a/.git/config", H, Err(Hidden)),
            (b"/a/.git/config", S, Ok((b"a/.git/config", false))),
            (b"/...", H, Err(Hidden)),
            (b"/.git/../a", H, Ok((b"a", false))),
            (b"/a.b/c.", H, Ok((b"a.b/c.", false))),
            // Backslash is an ordinary byte on Linux: one strange name, which starts with a dot.
            (b"/..%5c..%5cetc", S, Ok((b"..\\..\\etc", false))),
            (b"/..%5c..%5cetc", H, Err(Hidden)),
            (b"/a\\..\\..\\b", H, Ok((b"a\\..\\..\\b", false))),
            (b"/..\\..\\etc", S, Ok((b"..\\..\\etc", false))),
            // Non-UTF-8 bytes, raw or encoded.
            (b"/caf\xe9", H, Ok((b"caf\xe9", false))),
            (b"/%ff%fe/x", H, Ok((b"\xff\xfe/x", false))),
            // Not absolute.
            (b"", H, Err(NotAbsolute)),
            (b"a/b", H, Err(NotAbsolute)),
            (b"%2fa", H, Err(NotAbsolute)),
            (b"*", H, Err(NotAbsolute)),
        ];
        for &(input, dotfiles, expected) in cases {
            check(input, dotfiles, expected);
        }
    }

    #[test]
    fn index_appends_index_html() {
        let root = resolve(b"/", H).expect("root resolves");
        let idx = root.index();
        assert_eq!(idx.rel(), Path::new("index.html"));
        assert!(!idx.is_dir_form());

        let dir = resolve(b"/docs/", H).expect("dir resolves");
        let idx = dir.index();
        assert_eq!(idx.rel(), Path::new("docs/index.html"));
        assert!(!idx.is_dir_form());
    }

    /// Bytes that exercise the interesting paths far more often than uniform bytes would.
    fn path_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            4 => prop::sample::select(b"/.%2eEfF05ab\\".to_vec()),
            1 => any::<u8>(),
        ]
    }

    fn arbitrary_path() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(path_byte(), 0..48),
            prop::collection::vec(any::<u8>(), 0..48),
        ]
        .prop_map(|mut v| {
            v.insert(0, b'/');
            v
        })
    }

    fn assert_safe(p: &SafePath, dotfiles: Dotfiles) {
        let bytes = p.rel().as_os_str().as_bytes();
        assert!(p.rel().is_relative());
        assert!(!bytes.contains(&0));
        if bytes.is_empty() {
            return;
        }
        for seg in bytes.split(|&b| b == b'/') {
            assert!(
                !seg.is_empty() && seg != b"." && seg != b"..",
                "bad segment in {bytes:?}"
            );
            if dotfiles == Dotfiles::Hidden {
                assert_ne!(seg.first(), Some(&b'.'), "dotfile in {bytes:?}");
            }
        }
    }

    /// Percent-encodes every byte that is not unreserved, so resolving the result is exact.
    fn encode(rel: &[u8]) -> Vec<u8> {
        let mut out = b"/".to_vec();
        for &b in rel {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
        out
    }

    proptest! {
        #[test]
        fn never_panics_and_ok_is_safe(raw in arbitrary_path()) {
            for dotfiles in [H, S] {
                if let Ok(p) = resolve(&raw, dotfiles) {
                    assert_safe(&p, dotfiles);
                    // A resolved path, encoded again, resolves to itself.
                    let again = resolve(&encode(p.rel().as_os_str().as_bytes()), dotfiles);
                    prop_assert_eq!(again.map(|q| q.rel), Ok(p.rel.clone()));
                }
            }
        }

        #[test]
        fn in_place_normalisation_matches_the_segment_list(raw in arbitrary_path()) {
            for dotfiles in [H, S] {
                prop_assert_eq!(resolve(&raw, dotfiles), reference(&raw, dotfiles));
            }
        }

        #[test]
        fn hidden_only_narrows(raw in arbitrary_path()) {
            // Whatever Hidden accepts, Served accepts identically.
            if let Ok(p) = resolve(&raw, H) {
                prop_assert_eq!(resolve(&raw, S), Ok(p));
            }
        }
    }
}
