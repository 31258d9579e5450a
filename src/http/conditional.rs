//! Conditional requests, evaluated in the order of RFC 9110 §13.2.2.
//!
//! For a GET or HEAD of a representation that exists, with strong entity-tag `etag` and
//! `last_modified`, the steps are, in this order (the first that decides wins):
//!
//! 1. `If-Match` present: if no listed tag strongly matches (`*` always does, the file exists),
//!    answer 412 Precondition Failed; otherwise go to step 3.
//! 2. Only when `If-Match` is absent: `If-Unmodified-Since` present and a valid HTTP-date: if
//!    `last_modified` is later than that date, answer 412. An invalid date is ignored.
//! 3. `If-None-Match` present: if any listed tag weakly matches (or `*`), answer
//!    304 Not Modified (this module only sees GET and HEAD); otherwise go to step 5.
//! 4. Only when `If-None-Match` is absent: `If-Modified-Since` present and a valid HTTP-date:
//!    if `last_modified` is not later than that date, answer 304. An invalid date is ignored.
//! 5. Proceed. (RFC step 5, `Range` with `If-Range`, belongs to the caller, which asks
//!    [`if_range_allows`] whether to honour the `Range` header.)
//!
//! "Present" means at least one field line for the lists, `Some` for the dates. Field values
//! are trimmed of surrounding whitespace before they are parsed as dates or compared as tags.
//! This module decides only; it never builds a response.

use super::date::HttpDate;
use super::etag::{any_strong_match, any_weak_match};

/// The validators of the selected representation.
#[derive(Clone, Copy, Debug)]
pub struct Validators<'a> {
    /// The strong entity-tag, with its quotes.
    pub etag: &'a [u8],
    pub last_modified: HttpDate,
}

/// The raw conditional header values of a GET or HEAD request (field lines, unparsed).
#[derive(Clone, Copy, Debug, Default)]
pub struct Preconditions<'a> {
    pub if_match: &'a [&'a [u8]],
    pub if_none_match: &'a [&'a [u8]],
    pub if_modified_since: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
}

/// Result of evaluating the preconditions of a GET or HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the representation (200, or 206 if a range applies).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// Strips optional whitespace (SP / HTAB) from both ends of a field value.
fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// A field value that is exactly one HTTP-date (surrounding whitespace allowed).
fn date(value: &[u8]) -> Option<HttpDate> {
    HttpDate::parse(trim_ows(value))
}

/// Evaluates the preconditions for a GET or HEAD (the only methods that reach it).
pub fn evaluate(pre: &Preconditions<'_>, v: &Validators<'_>) -> Outcome {
    // Step 1: If-Match.
    if !pre.if_match.is_empty() {
        if !any_strong_match(pre.if_match, v.etag) {
            return Outcome::PreconditionFailed;
        }
    }
    // Step 2: If-Unmodified-Since, only without If-Match.
    else if let Some(since) = pre.if_unmodified_since.and_then(date)
        && v.last_modified > since
    {
        return Outcome::PreconditionFailed;
    }

    // Step 3: If-None-Match.
    if !pre.if_none_match.is_empty() {
        if any_weak_match(pre.if_none_match, v.etag) {
            return Outcome::NotModified;
        }
    }
    // Step 4: If-Modified-Since, only without If-None-Match.
    else if let Some(since) = pre.if_modified_since.and_then(date)
        && v.last_modified <= since
    {
        return Outcome::NotModified;
    }

    // Step 5: serve (the caller applies Range / If-Range).
    Outcome::Proceed
}

/// `If-Range` (RFC 9110 §13.1.5): true when a `Range` header should be honoured.
/// Absent → true; a strong entity-tag equal to ours → true; an HTTP-date exactly equal to
/// `Last-Modified` → true; anything else (weak tag, other tag, other date, garbage) → false.
pub fn if_range_allows(if_range: Option<&[u8]>, v: &Validators<'_>) -> bool {
    let Some(value) = if_range else {
        return true;
    };
    let value = trim_ows(value);
    if value.starts_with(b"\"") {
        // Strong comparison: ours is always a strong tag, so byte equality is enough.
        return value == v.etag;
    }
    if value.starts_with(b"W/") {
        // A weak validator can never make a range request safe.
        return false;
    }
    date(value) == Some(v.last_modified)
}

#[cfg(test)]
mod tests {
    use super::Outcome::{NotModified, PreconditionFailed, Proceed};
    use super::*;
    use proptest::prelude::*;

    const ETAG: &[u8] = br#""abc""#;
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const LM: u64 = 784_111_777;
    const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn v() -> Validators<'static> {
        Validators {
            etag: ETAG,
            last_modified: HttpDate::from_unix(LM),
        }
    }

    /// One request's conditional headers, as strings: If-Match lines, If-None-Match lines,
    /// If-Modified-Since, If-Unmodified-Since.
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn evaluate_table() {
        let cases: [(&str, Case, Outcome); 37] = [
            ("no conditionals", (&[], &[], None, None), Proceed),
            // Step 1: If-Match.
            ("IM strong match", (&[r#""abc""#], &[], None, None), Proceed),
            ("IM star", (&["*"], &[], None, None), Proceed),
            (
                "IM other tag",
                (&[r#""x""#], &[], None, None),
                PreconditionFailed,
            ),
            (
                "IM weak never matches",
                (&[r#"W/"abc""#], &[], None, None),
                PreconditionFailed,
            ),
            ("IM list", (&[r#""x", "abc""#], &[], None, None), Proceed),
            (
                "IM second line",
                (&[r#""x""#, r#""abc""#], &[], None, None),
                Proceed,
            ),
            (
                "IM garbage",
                (&["garbage"], &[], None, None),
                PreconditionFailed,
            ),
            (
                "IM empty line",
                (&[""], &[], None, None),
                PreconditionFailed,
            ),
            // Step 2: If-Unmodified-Since, only without If-Match.
            ("IUS equal", (&[], &[], None, Some(AT)), Proceed),
            ("IUS later", (&[], &[], None, Some(AFTER)), Proceed),
            (
                "IUS earlier",
                (&[], &[], None, Some(BEFORE)),
                PreconditionFailed,
            ),
            (
                "IUS invalid ignored",
                (&[], &[], None, Some("yesterday")),
                Proceed,
            ),
            (
                "IUS with OWS",
                (&[], &[], None, Some(" Sun, 06 Nov 1994 08:49:36 GMT ")),
                PreconditionFailed,
            ),
            (
                "IUS rfc850",
                (&[], &[], None, Some("Sunday, 06-Nov-94 08:49:36 GMT")),
                PreconditionFailed,
            ),
            (
                "IM passes, IUS ignored",
                (&[r#""abc""#], &[], None, Some(BEFORE)),
                Proceed,
            ),
            (
                "IM star, IUS ignored",
                (&["*"], &[], None, Some(BEFORE)),
                Proceed,
            ),
            (
                "IM fails, IUS would pass",
                (&[r#""x""#], &[], None, Some(AFTER)),
                PreconditionFailed,
            ),
            // Step 3: If-None-Match.
            ("INM match", (&[], &[r#""abc""#], None, None), NotModified),
            (
                "INM weak match",
                (&[], &[r#"W/"abc""#], None, None),
                NotModified,
            ),
            ("INM star", (&[], &["*"], None, None), NotModified),
            (
                "INM no match",
                (&[], &[r#""x", W/"y""#], None, None),
                Proceed,
            ),
            (
                "INM second line",
                (&[], &[r#""x""#, r#"W/"abc""#], None, None),
                NotModified,
            ),
            ("INM garbage", (&[], &["garbage"], None, None), Proceed),
            // Precedence of 412 over 304.
            (
                "IM fails beats INM match",
                (&[r#""x""#], &[r#""abc""#], None, None),
                PreconditionFailed,
            ),
            (
                "IUS fails beats INM match",
                (&[], &[r#""abc""#], None, Some(BEFORE)),
                PreconditionFailed,
            ),
            (
                "IUS fails beats IMS",
                (&[], &[], Some(AFTER), Some(BEFORE)),
                PreconditionFailed,
            ),
            (
                "IM passes, INM match",
                (&[r#""abc""#], &["*"], None, None),
                NotModified,
            ),
            // Step 4: If-Modified-Since, only without If-None-Match.
            ("IMS equal", (&[], &[], Some(AT), None), NotModified),
            ("IMS later", (&[], &[], Some(AFTER), None), NotModified),
            ("IMS earlier", (&[], &[], Some(BEFORE), None), Proceed),
            (
                "IMS invalid ignored",
                (&[], &[], Some("Sun, 06 Nov 1994"), None),
                Proceed,
            ),
            (
                "IMS asctime",
                (&[], &[], Some("Sun Nov  6 08:49:37 1994"), None),
                NotModified,
            ),
            (
                "INM no match, IMS ignored",
                (&[], &[r#""x""#], Some(AFTER), None),
                Proceed,
            ),
            (
                "INM garbage, IMS ignored",
                (&[], &["garbage"], Some(AFTER), None),
                Proceed,
            ),
            (
                "INM match, IMS earlier",
                (&[], &[r#""abc""#], Some(BEFORE), None),
                NotModified,
            ),
            (
                "all pass, IMS decides",
                (&["*"], &[], Some(AT), Some(AT)),
                NotModified,
            ),
        ];
        for (name, (im, inm, ims, ius), want) in cases {
            let im: Vec<&[u8]> = im.iter().map(|s| s.as_bytes()).collect();
            let inm: Vec<&[u8]> = inm.iter().map(|s| s.as_bytes()).collect();
            let pre = Preconditions {
                if_match: &im,
                if_none_match: &inm,
                if_modified_since: ims.map(str::as_bytes),
                if_unmodified_since: ius.map(str::as_bytes),
            };
            assert_eq!(evaluate(&pre, &v()), want, "{name}");
        }
    }

    #[test]
    fn default_preconditions_proceed() {
        assert_eq!(evaluate(&Preconditions::default(), &v()), Proceed);
    }

    #[test]
    fn if_range_table() {
        let cases: [(Option<&str>, bool); 17] = [
            (None, true),
            (Some(r#""abc""#), true),
            (Some(r#"  "abc"  "#), true),
            (Some(r#""abd""#), false),
            (Some(r#"W/"abc""#), false),
            (Some(r#""abc", "abc""#), false),
            (Some(r#""abc"x"#), false),
            (Some(r#""abc"#), false),
            (Some("*"), false),
            (Some(AT), true),
            (Some(" Sun, 06 Nov 1994 08:49:37 GMT\t"), true),
            (Some("Sunday, 06-Nov-94 08:49:37 GMT"), true),
            (Some("Sun Nov  6 08:49:37 1994"), true),
            (Some(BEFORE), false),
            (Some(AFTER), false),
            (Some("garbage"), false),
            (Some(""), false),
        ];
        for (value, want) in cases {
            assert_eq!(
                if_range_allows(value.map(str::as_bytes), &v()),
                want,
                "{value:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_panic(
            im in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..3),
            inm in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..3),
            ims in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
            ius in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
            lm in any::<u64>(),
        ) {
            let im: Vec<&[u8]> = im.iter().map(Vec::as_slice).collect();
            let inm: Vec<&[u8]> = inm.iter().map(Vec::as_slice).collect();
            let pre = Preconditions {
                if_match: &im,
                if_none_match: &inm,
                if_modified_since: ims.as_deref(),
                if_unmodified_since: ius.as_deref(),
            };
            let v = Validators { etag: ETAG, last_modified: HttpDate::from_unix(lm) };
            let _ = evaluate(&pre, &v);
            let _ = if_range_allows(ims.as_deref(), &v);
        }
    }
}
