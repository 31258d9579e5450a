//! Conditional requests, evaluated in the order of RFC 9110 §13.2.2.
//!
//! SKELETON STUB — to be implemented (owner: helper A). Signatures are the contract.

use super::date::HttpDate;

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

/// Evaluates the preconditions for a GET or HEAD (the only methods that reach it).
pub fn evaluate(_pre: &Preconditions<'_>, _v: &Validators<'_>) -> Outcome {
    unimplemented!("helper A")
}

/// `If-Range` (RFC 9110 §13.1.5): true when a `Range` header should be honoured.
/// Absent → true; a strong entity-tag equal to ours → true; an HTTP-date exactly equal to
/// `Last-Modified` → true; anything else (weak tag, other tag, other date, garbage) → false.
pub fn if_range_allows(_if_range: Option<&[u8]>, _v: &Validators<'_>) -> bool {
    unimplemented!("helper A")
}
