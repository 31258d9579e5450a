//! `Range: bytes=…` (RFC 9110 §14): parse, check against the representation length, coalesce,
//! and cap the work one header can cause.
//!
//! The rule (RFC 9110 §14.1.2, §14.2):
//! - The header is `bytes=` (unit matched case-insensitively) followed by a comma-separated list
//!   of range-specs: `first-last`, `first-` or `-suffix`, decimal digits only. Whitespace is
//!   allowed around the commas, and empty list elements are skipped (§5.6.1.2), but at least one
//!   spec must be present.
//! - Any syntax error — another unit, a missing `=`, a non-digit, a number that overflows `u64`,
//!   `last < first` — makes the whole header invalid, and an invalid header is ignored: the
//!   full representation is sent with 200. So is a header with more than [`MAX_RANGE_SPECS`]
//!   specs.
//! - A spec is satisfiable when `first < len` (`last` is clamped to `len - 1`) or it is a suffix
//!   with `suffix > 0` and `len > 0` (a suffix longer than the representation selects all of it).
//!   If no spec is satisfiable the answer is 416; with `len == 0` nothing is satisfiable.
//! - Satisfiable ranges are sorted and coalesced (overlapping, adjacent, or closer than
//!   [`COALESCE_GAP`]), so a response never repeats a byte and never has more parts than specs.
//!
//! Work is linear in the header length plus `O(n log n)` in the number of specs, which is capped.

use std::ops::Range;

/// More range-specs than this in one header: the header is ignored and the full 200 is sent.
pub const MAX_RANGE_SPECS: usize = 32;

/// Ranges separated by fewer bytes than this are merged into one. Each part of a
/// `multipart/byteranges` body costs roughly this much in boundary, `Content-Type` and
/// `Content-Range` lines, so sending the gap's bytes is no dearer than starting a new part —
/// and it stops a client from asking for many tiny slices to inflate our work.
pub const COALESCE_GAP: u64 = 80;

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

/// One syntactically valid range-spec, before it meets the representation length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-last` (`last` is `None` for `first-`); `last >= first` is already checked.
    From { first: u64, last: Option<u64> },
    /// `-suffix`: the last `suffix` bytes.
    Suffix(u64),
}

impl Spec {
    /// The bytes this spec selects from a representation of `len` bytes, if any.
    fn resolve(self, len: u64) -> Option<Range<u64>> {
        match self {
            Spec::From { first, last } if first < len => {
                // `last` may point past the end: clamp to `len - 1`, i.e. end at `len`.
                let end = last.map_or(len, |l| l.saturating_add(1).min(len));
                Some(first..end)
            }
            Spec::From { .. } => None,
            Spec::Suffix(n) if n > 0 && len > 0 => Some(len.saturating_sub(n)..len),
            Spec::Suffix(_) => None,
        }
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// `1*DIGIT` as a `u64`; `None` if empty, not all digits, or too large.
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn parse_spec(s: &[u8]) -> Option<Spec> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, rest) = s.split_at(dash);
    let last = rest.get(1..)?;
    if first.is_empty() {
        return number(last).map(Spec::Suffix);
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(Spec::From { first, last: None });
    }
    let last = number(last)?;
    (last >= first).then_some(Spec::From {
        first,
        last: Some(last),
    })
}

/// Why a header was ignored; kept apart so tests can tell them from each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ignore {
    Syntax,
    TooMany,
}

/// Parses the whole header into at most [`MAX_RANGE_SPECS`] specs.
fn parse(header: &[u8]) -> Result<Vec<Spec>, Ignore> {
    let header = trim_ows(header);
    let (unit, set) = header
        .iter()
        .position(|&b| b == b'=')
        .map(|i| header.split_at(i))
        .ok_or(Ignore::Syntax)?;
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Err(Ignore::Syntax);
    }
    let set = set.get(1..).ok_or(Ignore::Syntax)?;
    let mut specs = Vec::new();
    for element in set.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue; // Empty list elements are allowed and ignored.
        }
        if specs.len() == MAX_RANGE_SPECS {
            return Err(Ignore::TooMany);
        }
        specs.push(parse_spec(element).ok_or(Ignore::Syntax)?);
    }
    if specs.is_empty() {
        return Err(Ignore::Syntax);
    }
    Ok(specs)
}

/// Sorts and merges ranges closer than [`COALESCE_GAP`]; the result is ascending and every gap
/// between neighbours is at least [`COALESCE_GAP`].
fn coalesce(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if r.start < prev.end.saturating_add(COALESCE_GAP) => {
                prev.end = prev.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Decides how to answer the `Range` header value `header` for a representation of `len` bytes.
pub fn decide(header: &[u8], len: u64) -> RangeDecision {
    let Ok(specs) = parse(header) else {
        return RangeDecision::Full;
    };
    let ranges: Vec<Range<u64>> = specs.into_iter().filter_map(|s| s.resolve(len)).collect();
    let mut merged = coalesce(ranges);
    match merged.len() {
        0 => RangeDecision::Unsatisfiable,
        1 => merged
            .pop()
            .map_or(RangeDecision::Unsatisfiable, RangeDecision::Single),
        _ => RangeDecision::Multi(merged),
    }
}

#[cfg(test)]
mod tests {
    use super::RangeDecision::{Full, Multi, Single, Unsatisfiable};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decide_table() {
        let cases: [(&str, u64, RangeDecision); 50] = [
            // Single, open, suffix.
            ("bytes=0-0", 10, Single(0..1)),
            ("bytes=0-9", 10, Single(0..10)),
            ("bytes=2-5", 10, Single(2..6)),
            ("bytes=3-", 10, Single(3..10)),
            ("bytes=9-", 10, Single(9..10)),
            ("bytes=-3", 10, Single(7..10)),
            ("bytes=-10", 10, Single(0..10)),
            // Suffix longer than the representation: all of it.
            ("bytes=-11", 10, Single(0..10)),
            ("bytes=-18446744073709551615", 10, Single(0..10)),
            // `last` past the end is clamped.
            ("bytes=5-100", 10, Single(5..10)),
            ("bytes=0-18446744073709551615", 10, Single(0..10)),
            (
                "bytes=18446744073709551614-18446744073709551615",
                u64::MAX,
                Single(u64::MAX - 1..u64::MAX),
            ),
            // Unsatisfiable: answered with 416 and `Content-Range: bytes */len`.
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=-0,10-", 10, Unsatisfiable),
            // len 0: nothing is satisfiable.
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            // Unsatisfiable specs are dropped when another one is satisfiable.
            ("bytes=20-30,-0,2-3", 10, Single(2..4)),
            // Case-insensitive unit, whitespace around commas and the value, empty elements.
            ("BYTES=0-1", 10, Single(0..2)),
            ("Bytes=0-1", 10, Single(0..2)),
            ("bytes=0-1 , \t 500-", 1000, Multi(vec![0..2, 500..1000])),
            ("  bytes=0-1  ", 10, Single(0..2)),
            ("bytes=0-1,,500-501", 1000, Multi(vec![0..2, 500..502])),
            ("bytes=,0-1,", 10, Single(0..2)),
            // Invalid syntax: ignore the header.
            ("", 10, Full),
            ("bytes", 10, Full),
            ("bytes=", 10, Full),
            ("bytes=,", 10, Full),
            ("bytes=a-b", 10, Full),
            ("bytes=5-2", 10, Full),
            ("bytes=0-1,5-2", 10, Full),
            ("items=0-1", 10, Full),
            ("bytes 0-1", 10, Full),
            ("bytes = 0-1", 10, Full),
            ("bytes=0 - 1", 10, Full),
            ("bytes=-", 10, Full),
            ("bytes=1", 10, Full),
            ("bytes=1-2-3", 10, Full),
            ("bytes=+1-2", 10, Full),
            ("bytes=--1", 10, Full),
            ("bytes=0-1;2-3", 10, Full),
            ("bytes=99999999999999999999-", 10, Full),
            ("bytes=-99999999999999999999", 10, Full),
            ("bytes=0-99999999999999999999", 10, Full),
            // Overlapping, adjacent and near ranges coalesce.
            ("bytes=0-4,2-8", 1000, Single(0..9)),
            ("bytes=0-4,5-9", 1000, Single(0..10)),
            (
                "bytes=500-599,0-9,-1",
                1000,
                Multi(vec![0..10, 500..600, 999..1000]),
            ),
            ("bytes=0-9,89-99", 1000, Single(0..100)),
        ];
        for (header, len, want) in cases {
            assert_eq!(decide(header.as_bytes(), len), want, "{header:?} len {len}");
        }
    }

    #[test]
    fn gap_boundary() {
        // 10..90 is a gap of exactly COALESCE_GAP: kept apart. One byte less: merged.
        assert_eq!(
            decide(b"bytes=0-9,90-99", 1000),
            Multi(vec![0..10, 90..100])
        );
        assert_eq!(decide(b"bytes=0-9,89-99", 1000), Single(0..100));
        // A range contained in another is absorbed.
        assert_eq!(decide(b"bytes=0-999,200-300,-5", 1000), Single(0..1000));
    }

    #[test]
    fn spec_cap() {
        let specs = |n: usize| {
            let parts: Vec<String> = (0..n)
                .map(|i| format!("{}-{}", i * 1000, i * 1000))
                .collect();
            format!("bytes={}", parts.join(","))
        };
        let at_cap = decide(specs(MAX_RANGE_SPECS).as_bytes(), 1 << 20);
        assert!(
            matches!(at_cap, Multi(ref v) if v.len() == MAX_RANGE_SPECS),
            "{at_cap:?}"
        );
        assert_eq!(decide(specs(MAX_RANGE_SPECS + 1).as_bytes(), 1 << 20), Full);
        assert_eq!(
            parse(specs(MAX_RANGE_SPECS + 1).as_bytes()),
            Err(Ignore::TooMany)
        );
        // Empty elements do not count towards the cap.
        let empties = format!("bytes=0-0{}", ",".repeat(100));
        assert_eq!(decide(empties.as_bytes(), 10), Single(0..1));
    }

    fn spec_strategy() -> impl Strategy<Value = String> {
        let n = prop_oneof![0u64..2000, any::<u64>()];
        prop_oneof![
            (n.clone(), n.clone()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            n.clone().prop_map(|a| format!("{a}-")),
            n.prop_map(|a| format!("-{a}")),
        ]
    }

    fn check_ranges(decision: &RangeDecision, len: u64) -> Result<(), TestCaseError> {
        match decision {
            Single(r) => prop_assert!(r.start < r.end && r.end <= len, "{r:?}"),
            Multi(v) => {
                prop_assert!(v.len() >= 2);
                for r in v {
                    prop_assert!(r.start < r.end && r.end <= len, "{r:?}");
                }
                for w in v.windows(2) {
                    if let [a, b] = w {
                        prop_assert!(b.start >= a.end.saturating_add(COALESCE_GAP), "{v:?}");
                    }
                }
            }
            Full | Unsatisfiable => {}
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn valid_headers_give_sound_ranges(
            specs in proptest::collection::vec(spec_strategy(), 1..=MAX_RANGE_SPECS),
            len in prop_oneof![0u64..3000, any::<u64>()],
        ) {
            let header = format!("bytes={}", specs.join(", "));
            let d = decide(header.as_bytes(), len);
            prop_assert_ne!(&d, &Full, "{}", header);
            check_ranges(&d, len)?;
            if len == 0 {
                prop_assert_eq!(d, Unsatisfiable);
            }
        }

        #[test]
        fn too_many_specs_is_full(
            specs in proptest::collection::vec(spec_strategy(), MAX_RANGE_SPECS + 1..100),
            len in any::<u64>(),
        ) {
            let header = format!("bytes={}", specs.join(","));
            prop_assert_eq!(decide(header.as_bytes(), len), Full);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            len in any::<u64>(),
        ) {
            let mut header = b"bytes=".to_vec();
            header.extend_from_slice(&bytes);
            check_ranges(&decide(&header, len), len)?;
            check_ranges(&decide(&bytes, len), len)?;
        }

        #[test]
        fn range_alphabet_never_panics(
            s in "[bB]ytes=[0-9, \t,-]{0,40}",
            len in prop_oneof![0u64..100, any::<u64>()],
        ) {
            check_ranges(&decide(s.as_bytes(), len), len)?;
        }
    }
}
