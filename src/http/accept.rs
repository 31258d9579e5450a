//! `Accept` (RFC 9110 §12.5.1), only as far as the app fallback needs it: does the request
//! accept `text/html`? (See [`super::serve`], `--fallback`.)
//!
//! Owns: keeping the field lines (borrowed, read only when a missing path asks) and the
//! answer. Must not: choose among representations; nothing else is negotiated by `Accept`.
//!
//! The rule, in order:
//! 1. No `Accept` field, or only empty ones → `text/html` is accepted (RFC 9110: a request
//!    without the field accepts any media type).
//! 2. All `Accept` lines form one list. Type, subtype and `q` are case-insensitive; spaces
//!    and tabs around `,` and `;` are ignored; empty elements are skipped.
//! 3. An element we cannot read (no `type/subtype`, a bad qvalue such as `q=2`) is skipped.
//!    So is an element with a media-type parameter before its weight (`text/html;level=1`):
//!    it names a narrower type than the page, whose parameters are not compared. Parameters
//!    after the weight are ignored.
//! 4. The most specific range that matches decides: `text/html`, else `text/*`, else `*/*`;
//!    a range listed twice counts with its lowest weight (a `q=0` anywhere refuses it).
//! 5. `text/html` is accepted when that weight is above 0. When no element matches (e.g.
//!    `Accept: application/json`), it is not.

use super::encoding::{FULL, Weight, qvalue, trim};

/// The `Accept` lines of a request, kept as sent; [`Accept::allows_html`] reads them.
/// Parsing waits for a request that needs it (a missing path with a fallback): most
/// requests never ask, and browsers send long values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept<'a> {
    first: Option<&'a [u8]>,
    /// Further lines, rare: no allocation unless a request sends two.
    more: Vec<&'a [u8]>,
}

/// The ranges that can match `text/html`, from most specific.
#[derive(Clone, Copy)]
enum Matching {
    Html = 0,
    TextAny = 1,
    Any = 2,
}

impl<'a> Accept<'a> {
    /// Adds one header line's value (OWS already trimmed).
    pub fn add_field(&mut self, value: &'a [u8]) {
        match self.first {
            None => self.first = Some(value),
            Some(_) => self.more.push(value),
        }
    }

    /// Whether a `text/html` response is acceptable (see the module docs for the rule).
    pub fn allows_html(&self) -> bool {
        let mut weights: [Option<Weight>; 3] = [None; 3];
        let mut elements = 0usize;
        let lines = self.first.into_iter().chain(self.more.iter().copied());
        for element in lines.flat_map(|line| line.split(|&b| b == b',')) {
            if trim(element).is_empty() {
                continue;
            }
            elements += 1;
            let Some((range, weight)) = read_element(element) else {
                continue;
            };
            if let Some(range) = range {
                let slot = &mut weights[range as usize];
                *slot = Some(slot.map_or(weight, |w| w.min(weight)));
            }
        }
        if elements == 0 {
            return true;
        }
        weights.iter().flatten().next().is_some_and(|&w| w > 0)
    }
}

/// One list element: which matching range it is (`None`: one that cannot match
/// `text/html`) and its weight; `None` for an element that is skipped (rule 3).
fn read_element(element: &[u8]) -> Option<(Option<Matching>, Weight)> {
    let mut parts = element.split(|&b| b == b';');
    let range = trim(parts.next()?);
    let slash = range.iter().position(|&b| b == b'/')?;
    let (ty, sub) = (&range[..slash], &range[slash + 1..]);
    let token = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| b.is_ascii_graphic() && b != b'/');
    if !token(ty) || !token(sub) {
        return None;
    }
    let mut weight = FULL;
    if let Some(param) = parts.next() {
        let param = trim(param);
        let value = param
            .strip_prefix(b"q=")
            .or_else(|| param.strip_prefix(b"Q="))?;
        weight = qvalue(value)?;
    }
    let matching = if ty.eq_ignore_ascii_case(b"text") && sub.eq_ignore_ascii_case(b"html") {
        Some(Matching::Html)
    } else if ty.eq_ignore_ascii_case(b"text") && sub == b"*" {
        Some(Matching::TextAny)
    } else if ty == b"*" && sub == b"*" {
        Some(Matching::Any)
    } else {
        None
    };
    Some((matching, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(lines: &[&str]) -> bool {
        let mut accept = Accept::default();
        for l in lines {
            accept.add_field(trim(l.as_bytes()));
        }
        accept.allows_html()
    }

    /// `Accept` lines → whether `text/html` is accepted.
    #[test]
    fn html_acceptance_table() {
        let cases: &[(&[&str], bool)] = &[
            (&[], true),
            (&[""], true),
            (&[" , ,"], true),
            (&["text/html"], true),
            (&["TEXT/HTML"], true),
            (&["text/*"], true),
            (&["*/*"], true),
            (&["text/html;q=0"], false),
            (&["text/html; q=0.000"], false),
            (&["text/html;Q=0.001"], true),
            (&["application/json"], false),
            (&["application/json, text/plain"], false),
            (&["image/*"], false),
            // Firefox and Chrome navigations.
            (
                &["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
                true,
            ),
            // fetch()'s default and curl's.
            (&["*/*"], true),
            // The most specific range decides, whichever way.
            (&["*/*, text/html;q=0"], false),
            (&["*/*;q=0, text/html"], true),
            (&["text/*;q=0, text/html;q=0.5"], true),
            (&["text/html;q=0, text/*"], false),
            (&["text/*;q=0, */*"], false),
            // A range listed twice counts with its lowest weight.
            (&["text/html", "text/html;q=0"], false),
            // Unreadable elements are skipped; nothing matching left refuses.
            (&["text/html;q=2"], false),
            (&["text/html;q=2, */*"], true),
            (&["html"], false),
            (&["text/html;level=1"], false),
            (&["text/html;level=1, text/*;q=0.1"], true),
            (&["text/html;q=0.5;ext=1"], true),
            // Several lines form one list.
            (&["application/json", "text/html"], true),
            (&["application/json", ""], false),
        ];
        for (lines, want) in cases {
            assert_eq!(allows(lines), *want, "{lines:?}");
        }
    }
}
