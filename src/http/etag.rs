//! Entity-tag comparison for `If-Match`, `If-None-Match` and `If-Range` (RFC 9110 §8.8.3).
//! Tags are compared as raw bytes including their quotes; producing tags is `fs::etag`'s job.
//!
//! SKELETON STUB — to be implemented (owner: helper A). Signatures are the contract.

/// `If-Match`: true when `*` or any listed tag strongly matches `tag` (weak tags never match).
/// `values` are the header's field lines; each may be a comma-separated list.
pub fn any_strong_match(_values: &[&[u8]], _tag: &[u8]) -> bool {
    unimplemented!("helper A")
}

/// `If-None-Match`: true when `*` or any listed tag weakly matches `tag` (`W/` ignored).
pub fn any_weak_match(_values: &[&[u8]], _tag: &[u8]) -> bool {
    unimplemented!("helper A")
}
