//! Entity-tag comparison for `If-Match`, `If-None-Match` and `If-Range` (RFC 9110 §8.8.3).
//! Tags are compared as raw bytes including their quotes; producing tags is `fs::etag`'s job.
//!
//! The rule (RFC 9110 §8.8.3.2, §13.1.1, §13.1.2):
//! - An entity-tag is `"opaque"` (strong) or `W/"opaque"` (weak); opaque bytes are `%x21`,
//!   `%x23-7E` or obs-text `%x80-FF` — no `"`, no whitespace, no controls.
//! - *Strong* comparison (`If-Match`): both tags strong and byte-equal.
//! - *Weak* comparison (`If-None-Match`): the opaque parts are byte-equal, `W/` ignored on
//!   either side.
//! - `*` matches any current representation; a file we are about to serve always exists, so
//!   `*` always matches here.
//!
//! A header may arrive as several field lines, each a comma-separated list with optional
//! whitespace around the commas; empty elements are skipped. A malformed member never matches,
//! and scanning resumes at the first comma after the start of that member, so one bad member
//! cannot hide a good one that follows it. `*` is accepted anywhere in a list (the grammar
//! wants it alone; being lenient here can only turn a 412 into a success for a resource that
//! exists, which is what `*` asks for anyway). Work is linear in the input length.

/// One member of an entity-tag list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member<'a> {
    /// `*`
    Any,
    /// An entity-tag; `quoted` is the `"opaque"` part with its quotes, without any `W/`.
    Tag { weak: bool, quoted: &'a [u8] },
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `etagc = %x21 / %x23-7E / obs-text`
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

fn skip_ows(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_ows(b)).count();
    s.get(n..).unwrap_or_default()
}

/// Parses `"opaque"` at the start of `s`; returns it (with quotes) and what follows.
fn quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = s.strip_prefix(b"\"")?;
    let n = body.iter().take_while(|&&b| is_etagc(b)).count();
    if body.get(n) != Some(&b'"') {
        return None;
    }
    // Opening quote + n opaque bytes + closing quote; both ends were checked above.
    s.split_at_checked(n + 2)
}

/// Parses one member at the start of `s` (which starts with neither OWS nor a comma). On
/// success the remainder is empty or starts with `,`.
fn member(s: &[u8]) -> Option<(Member<'_>, &[u8])> {
    let (m, rest) = if let Some(rest) = s.strip_prefix(b"*") {
        (Member::Any, rest)
    } else if let Some(tail) = s.strip_prefix(b"W/") {
        let (q, rest) = quoted(tail)?;
        (
            Member::Tag {
                weak: true,
                quoted: q,
            },
            rest,
        )
    } else {
        let (q, rest) = quoted(s)?;
        (
            Member::Tag {
                weak: false,
                quoted: q,
            },
            rest,
        )
    };
    let rest = skip_ows(rest);
    match rest.first() {
        None | Some(b',') => Some((m, rest)),
        Some(_) => None,
    }
}

/// The well-formed members of all field lines, in order; malformed ones are skipped.
fn members<'a>(values: &'a [&'a [u8]]) -> impl Iterator<Item = Member<'a>> + 'a {
    values.iter().flat_map(|line| {
        let mut rest: &[u8] = line;
        std::iter::from_fn(move || {
            loop {
                let n = rest.iter().take_while(|&&b| b == b',' || is_ows(b)).count();
                let s = rest.get(n..).unwrap_or_default();
                if s.is_empty() {
                    rest = s;
                    return None;
                }
                match member(s) {
                    Some((m, after)) => {
                        rest = after;
                        return Some(m);
                    }
                    None => {
                        // Resynchronise at the next comma after this member's first byte.
                        let comma = s.iter().position(|&b| b == b',').unwrap_or(s.len());
                        rest = s.get(comma..).unwrap_or_default();
                    }
                }
            }
        })
    })
}

/// `If-Match`: true when `*` or any listed tag strongly matches `tag` (weak tags never match).
/// `values` are the header's field lines; each may be a comma-separated list.
pub fn any_strong_match(values: &[&[u8]], tag: &[u8]) -> bool {
    members(values).any(|m| match m {
        Member::Any => true,
        Member::Tag {
            weak: false,
            quoted,
        } => quoted == tag,
        Member::Tag { weak: true, .. } => false,
    })
}

/// `If-None-Match`: true when `*` or any listed tag weakly matches `tag` (`W/` ignored).
pub fn any_weak_match(values: &[&[u8]], tag: &[u8]) -> bool {
    let ours = tag.strip_prefix(b"W/").unwrap_or(tag);
    members(values).any(|m| match m {
        Member::Any => true,
        Member::Tag { quoted, .. } => quoted == ours,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OURS: &[u8] = br#""abc""#;

    #[test]
    fn match_table() {
        // (field lines, strong match, weak match) against our tag "abc".
        let cases: [(&[&str], bool, bool); 37] = [
            (&[], false, false),
            (&[""], false, false),
            (&["*"], true, true),
            (&[" * "], true, true),
            (&[r#""abc""#], true, true),
            (&[r#"W/"abc""#], false, true),
            (&[r#""abd""#], false, false),
            (&[r#"W/"abd""#], false, false),
            (&[r#""ABC""#], false, false),
            // Lists, whitespace, empty elements.
            (&[r#""x", "abc""#], true, true),
            (&[r#""x",W/"abc""#], false, true),
            (&[r#"W/"abc", "abc""#], true, true),
            (&[r#"  "x" ,	"abc"  "#], true, true),
            (&[r#",,"x",,"abc",,"#], true, true),
            (&[r#""x", *"#], true, true),
            // Several field lines.
            (&[r#""x""#, r#""abc""#], true, true),
            (&[r#""x""#, r#"W/"abc""#], false, true),
            (&[r#""x""#, "*"], true, true),
            (&["garbage", r#""abc""#], true, true),
            // Malformed members never match, and do not hide later ones.
            (&["abc"], false, false),
            (&[r#""abc"#], false, false),
            (&[r#"abc""#], false, false),
            (&[r#"w/"abc""#], false, false),
            (&[r#"W/ "abc""#], false, false),
            (&[r#"W"abc""#], false, false),
            (&[r#""ab c""#], false, false),
            (&[r#""abc"x"#], false, false),
            (&[r#""abc""abc""#], false, false),
            (&["**"], false, false),
            (&["*x"], false, false),
            (&[r#"*x, "abc""#], true, true),
            (&[r#""ab c", "abc""#], true, true),
            (&[r#"W/"ab"c", W/"abc""#], false, true),
            (&[r#""abc, "abc""#], true, true),
            // A comma is an opaque byte: this is one tag, `"a,b"`.
            (&[r#""a,b""#], false, false),
            // Our tag with a trailing comment-like suffix is malformed.
            (&[r#""abc";q=1"#], false, false),
            (&[r#""abc" ; "abc""#], false, false),
        ];
        for (lines, strong, weak) in cases {
            let values: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            assert_eq!(any_strong_match(&values, OURS), strong, "strong {lines:?}");
            assert_eq!(any_weak_match(&values, OURS), weak, "weak {lines:?}");
        }
    }

    #[test]
    fn opaque_alphabet() {
        // %x21, %x23-7E and obs-text are opaque bytes; `"`, space, DEL and controls are not.
        let ours = b"\"!#~\x80\xff\"";
        assert!(any_strong_match(&[ours.as_slice()], ours));
        for bad in [&b"\"a\x7fb\""[..], b"\"a\x00b\"", b"\"a\tb\"", b"\"a\"b\""] {
            assert!(!any_strong_match(&[bad], bad), "{bad:?}");
            assert!(!any_weak_match(&[bad], bad), "{bad:?}");
        }
        // The empty opaque string is a valid tag.
        assert!(any_strong_match(&[b"\"\"".as_slice()], b"\"\""));
    }

    #[test]
    fn comma_inside_tag() {
        let ours = br#""a,b""#;
        assert!(any_strong_match(&[br#""x", "a,b""#.as_slice()], ours));
        assert!(any_weak_match(&[br#"W/"a,b""#.as_slice()], ours));
    }

    #[test]
    fn weak_comparison_ignores_w_on_our_side_too() {
        assert!(any_weak_match(&[br#""abc""#.as_slice()], br#"W/"abc""#));
        assert!(!any_strong_match(
            &[br#"W/"abc""#.as_slice()],
            br#"W/"abc""#
        ));
    }

    proptest! {
        #[test]
        fn never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
            tag in proptest::collection::vec(any::<u8>(), 0..10),
        ) {
            let values: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            let _ = any_strong_match(&values, &tag);
            let _ = any_weak_match(&values, &tag);
        }

        #[test]
        fn listed_tag_is_found(
            before in "[\"W/a-z*, \t]{0,20}",
            opaque in "[a-z0-9]{0,8}",
            after in "[\"W/a-z*, \t]{0,20}",
        ) {
            // Our tag as its own list member, whatever noise surrounds it.
            let ours = format!("\"{opaque}\"");
            let line = format!("{before},{ours},{after}");
            prop_assert!(any_strong_match(&[line.as_bytes()], ours.as_bytes()), "{}", line);
            let weak_line = format!("{before},W/{ours},{after}");
            prop_assert!(any_weak_match(&[weak_line.as_bytes()], ours.as_bytes()), "{}", weak_line);
        }

        #[test]
        fn weak_never_strong(opaque in "[a-z0-9]{0,8}", noise in "[a-z, ]{0,10}") {
            let ours = format!("\"{opaque}\"");
            let line = format!("W/{ours}, {noise}");
            prop_assume!(!noise.contains('*'));
            prop_assert!(!any_strong_match(&[line.as_bytes()], ours.as_bytes()));
        }
    }
}
