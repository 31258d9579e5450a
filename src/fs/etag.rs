//! Strong entity-tags for files: `"` + hex MD5 of (size, mtime to the nanosecond) + `"`.
//!
//! The input is only metadata, never content, so the tag is cheap and every instance behind a
//! load balancer computes the same tag for the same file with the same mtime. The exact bytes
//! hashed are `"{size}-{secs}.{nanos:09}"`; changing them changes every tag in the field.
//!
//! A precompressed sidecar served with a `Content-Encoding` is another representation and
//! gets its own tag ([`ETag::for_encoded`]): the same recipe over the sidecar's size and mtime
//! with `-{coding}` appended, so it differs from the identity tag and from every other
//! coding's, and is still the same on every instance.

use md5::{Digest, Md5};

/// Quote + 32 hex digits + quote.
const LEN: usize = 34;

/// A strong entity-tag, quotes included, ready to be written into a header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ETag([u8; LEN]);

impl ETag {
    /// The tag of a file with this size and modification time.
    pub fn for_file(size: u64, mtime_secs: i64, mtime_nanos: u32) -> ETag {
        let mut input = Vec::with_capacity(48);
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(
            &mut input,
            format_args!("{size}-{mtime_secs}.{mtime_nanos:09}"),
        );
        ETag::of_input(&input)
    }

    /// The tag of a sidecar file (its own size and mtime) served with the content coding
    /// `coding` (`br`, `zstd`, `gzip`).
    pub fn for_encoded(size: u64, mtime_secs: i64, mtime_nanos: u32, coding: &str) -> ETag {
        let mut input = Vec::with_capacity(56);
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(
            &mut input,
            format_args!("{size}-{mtime_secs}.{mtime_nanos:09}-{coding}"),
        );
        ETag::of_input(&input)
    }

    fn of_input(input: &[u8]) -> ETag {
        let digest = Md5::digest(input);
        let mut tag = [b'"'; LEN];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in digest.iter().enumerate() {
            tag[1 + 2 * i] = HEX[usize::from(byte >> 4)];
            tag[2 + 2 * i] = HEX[usize::from(byte & 0xf)];
        }
        ETag(tag)
    }

    /// The tag with its quotes, e.g. `"9e107d9d372bb6826bd81d3542a419d6"`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The 32 hex digits without quotes.
    pub fn hex(&self) -> &[u8] {
        &self.0[1..LEN - 1]
    }
}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_quoted_lowercase_hex_md5_of_size_and_mtime() {
        let tag = ETag::for_file(5, 1_700_000_000, 123);
        let expected = format!("\"{:x}\"", Md5::digest(b"5-1700000000.000000123"));
        assert_eq!(tag.as_bytes(), expected.as_bytes());
        assert_eq!(tag.hex().len(), 32);
    }

    #[test]
    fn any_change_of_size_or_mtime_changes_the_tag() {
        let base = ETag::for_file(100, 10, 0);
        assert_ne!(base, ETag::for_file(101, 10, 0));
        assert_ne!(base, ETag::for_file(100, 11, 0));
        assert_ne!(base, ETag::for_file(100, 10, 1));
        assert_eq!(base, ETag::for_file(100, 10, 0));
    }

    #[test]
    fn encoded_tags_differ_from_the_identity_tag_and_from_each_other() {
        let identity = ETag::for_file(100, 10, 5);
        let br = ETag::for_encoded(100, 10, 5, "br");
        let gzip = ETag::for_encoded(100, 10, 5, "gzip");
        let zstd = ETag::for_encoded(100, 10, 5, "zstd");
        assert_ne!(identity, br);
        assert_ne!(br, gzip);
        assert_ne!(gzip, zstd);
        assert_ne!(identity, zstd);
        assert_eq!(br, ETag::for_encoded(100, 10, 5, "br"));
        let expected = format!("\"{:x}\"", Md5::digest(b"100-10.000000005-br"));
        assert_eq!(br.as_bytes(), expected.as_bytes());
    }
}
