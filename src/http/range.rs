//! `Range: bytes=…` (RFC 9110 §14): parse, check against the representation length, coalesce,
//! and cap the work one header can cause.
//!
//! SKELETON STUB — to be implemented (owner: helper A). Signatures are the contract.

use std::ops::Range;

/// More range-specs than this in one header: the header is ignored and the full 200 is sent.
pub const MAX_RANGE_SPECS: usize = 32;

/// What to send for a `Range` header on a GET of a representation of `len` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore the header (absent, malformed, unknown unit, too many specs): send 200 with all.
    Full,
    /// One satisfiable range (half-open, `start < end <= len`): 206 with `Content-Range`.
    Single(Range<u64>),
    /// Two or more disjoint ranges after coalescing, ascending: 206 `multipart/byteranges`.
    Multi(Vec<Range<u64>>),
    /// Syntactically valid, but no range overlaps the representation: 416, `bytes */len`.
    Unsatisfiable,
}

/// Decides how to answer the `Range` header value `header` for a representation of `len` bytes.
pub fn decide(_header: &[u8], _len: u64) -> RangeDecision {
    unimplemented!("helper A")
}
