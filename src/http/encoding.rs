//! `Accept-Encoding` (RFC 9110 §12.5.3): which content coding, if any, a response is sent
//! in, among the precompressed sidecars a file has.
//!
//! Owns: parsing the field into [`AcceptEncoding`] (once, in [`super::request`]), the server's
//! order of preference ([`Precompressed`]) and the choice ([`AcceptEncoding::choose`]). Must
//! not: touch files; the caller says which sidecars are usable.
//!
//! The rule, in order:
//! 1. No `Accept-Encoding` field → identity. (RFC 9110 would allow any coding; every client
//!    that can decode one says so, and an old client or script that sends nothing must get
//!    bytes it can read.)
//! 2. All `Accept-Encoding` lines form one list (RFC 9110 §5.3). Names and `q` are
//!    case-insensitive; spaces and tabs around `,` and `;` are ignored; empty elements are
//!    skipped. `x-gzip` means `gzip` (§8.4.1.3).
//! 3. An element that is not `token [ OWS ";" OWS "q=" qvalue ]` (a bad qvalue such as `q=2`
//!    or `q=0.1234`, another parameter, a non-token name) is ignored: a client is never sent
//!    a coding on the strength of an element we could not read.
//! 4. A coding listed twice gets its lowest weight (a `q=0` anywhere excludes it).
//! 5. A coding's weight: its own element's, else `*`'s, else 0 (not acceptable).
//! 6. Among the codings that have a usable sidecar, the highest weight above 0 wins; ties go
//!    to the server's order, `br` then `zstd` then `gzip` by default (`--precompressed`).
//! 7. That coding is sent unless identity is explicitly preferred: `identity;q=…` (or `*`
//!    when identity is not listed) with a strictly higher weight. Identity that is not
//!    mentioned at all is acceptable but least preferred.
//! 8. When no coding is chosen, identity is sent — **also when the client excluded it**
//!    (`identity;q=0` or `*;q=0` with nothing else acceptable). RFC 9110 §12.5.3 lets a
//!    server either answer 406 or disregard the field; we disregard it because (a) a file
//!    without sidecars is not negotiated at all, and answering 406 there would make a static
//!    file's availability depend on a header most servers ignore; (b) for a file with
//!    sidecars, identity bytes are always correct, whereas a 406 would break a client whose
//!    header is merely unusual; (c) nginx, Apache and Caddy behave the same way, so a proxy
//!    in front sees what it expects. The response still carries `Vary: Accept-Encoding`.

use crate::fs::sidecar::Coding;
use std::fmt;
use std::str::FromStr;

/// A weight in thousandths, 0..=1000 (`q=0.5` → 500).
pub(super) type Weight = u16;

pub(super) const FULL: Weight = 1000;

/// The codings served from sidecars, in the server's order of preference. `Copy`, no
/// allocation: it is read on every request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Precompressed {
    order: [Option<Coding>; 3],
}

impl Precompressed {
    /// No sidecars are looked for; no response varies by `Accept-Encoding`.
    pub const OFF: Precompressed = Precompressed { order: [None; 3] };

    /// `br, zstd, gzip`: the smallest output first (brotli and zstd at their highest levels
    /// beat gzip -9 on text by 15–25 %).
    pub const DEFAULT: Precompressed = Precompressed {
        order: [Some(Coding::Br), Some(Coding::Zstd), Some(Coding::Gzip)],
    };

    /// The codings in `order`, first preferred; each at most once.
    pub fn new(order: &[Coding]) -> Result<Precompressed, String> {
        let mut out = Precompressed::OFF;
        for (i, &c) in order.iter().enumerate() {
            if order[..i].contains(&c) {
                return Err(format!("{} is listed twice", c.token()));
            }
            // Three codings exist and none repeats, so `i < 3`.
            if let Some(slot) = out.order.get_mut(i) {
                *slot = Some(c);
            }
        }
        Ok(out)
    }

    /// The codings, most preferred first.
    pub fn codings(&self) -> impl Iterator<Item = Coding> + '_ {
        self.order.iter().flatten().copied()
    }

    pub fn is_off(&self) -> bool {
        self.order[0].is_none()
    }
}

impl Default for Precompressed {
    fn default() -> Self {
        Precompressed::DEFAULT
    }
}

impl fmt::Display for Precompressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            return f.write_str("off");
        }
        for (i, c) in self.codings().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(c.token())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Precompressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Precompressed {
    type Err = String;

    /// `off`, or a comma-separated list of `br`, `zstd`, `gzip` in order of preference.
    fn from_str(s: &str) -> Result<Precompressed, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Precompressed::OFF);
        }
        let mut order = Vec::with_capacity(3);
        for name in s.split(',').map(str::trim) {
            match Coding::from_token(name) {
                Some(c) => order.push(c),
                None => {
                    return Err(format!(
                        "'{name}' is not a coding: use off, or a list of br, zstd, gzip"
                    ));
                }
            }
        }
        Precompressed::new(&order)
    }
}

/// The `Accept-Encoding` lines of a request, reduced to the weights the server can act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    /// At least one `Accept-Encoding` line was sent (even an empty one).
    present: bool,
    br: Option<Weight>,
    zstd: Option<Weight>,
    gzip: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

impl AcceptEncoding {
    /// Parses `value` (one header line, OWS already trimmed) into `self`.
    pub fn add_field(&mut self, value: &[u8]) {
        self.present = true;
        for element in value.split(|&b| b == b',') {
            let (name, params) = match element.iter().position(|&b| b == b';') {
                Some(semi) => (&element[..semi], Some(&element[semi + 1..])),
                None => (element, None),
            };
            let name = trim(name);
            // Length first: one compare rules out most names. Names we do not serve
            // (`deflate`, `compress`, malformed ones) are skipped without reading further.
            let slot = match name.len() {
                1 if name == b"*" => &mut self.any,
                2 if name.eq_ignore_ascii_case(b"br") => &mut self.br,
                4 if name.eq_ignore_ascii_case(b"zstd") => &mut self.zstd,
                4 if name.eq_ignore_ascii_case(b"gzip") => &mut self.gzip,
                6 if name.eq_ignore_ascii_case(b"x-gzip") => &mut self.gzip,
                8 if name.eq_ignore_ascii_case(b"identity") => &mut self.identity,
                _ => continue,
            };
            let Some(weight) = weight(params) else {
                continue;
            };
            *slot = Some(slot.map_or(weight, |w| w.min(weight)));
        }
    }

    fn listed(&self, coding: Coding) -> Option<Weight> {
        match coding {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
        }
    }

    /// The coding to send, among `available` (the codings with a usable sidecar, most
    /// preferred first); `None` means identity. See the module docs for the rule.
    pub fn choose(&self, available: impl IntoIterator<Item = Coding>) -> Option<Coding> {
        if !self.present {
            return None;
        }
        let mut best: Option<(Coding, Weight)> = None;
        for c in available {
            let w = self.listed(c).or(self.any).unwrap_or(0);
            if w > 0 && best.is_none_or(|(_, bw)| w > bw) {
                best = Some((c, w));
            }
        }
        let (coding, weight) = best?;
        match self.identity.or(self.any) {
            Some(identity) if identity > weight => None,
            _ => Some(coding),
        }
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// The parameters after a coding's name: none → 1; `OWS "q=" qvalue` → its weight; anything
/// else (another parameter, a second one, a bad qvalue) → `None`, the element is ignored.
fn weight(params: Option<&[u8]>) -> Option<Weight> {
    let Some(param) = params else {
        return Some(FULL);
    };
    let param = trim(param);
    let value = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))?;
    // A second parameter leaves a `;` in the value, which `qvalue` refuses.
    qvalue(value)
}

/// RFC 9110 §12.4.2: `( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
pub(super) fn qvalue(v: &[u8]) -> Option<Weight> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for i in 0..3 {
        let digit = frac.get(i).map_or(0, |d| Weight::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(FULL),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(lines: &[&str]) -> AcceptEncoding {
        let mut ae = AcceptEncoding::default();
        for l in lines {
            ae.add_field(trim(l.as_bytes()));
        }
        ae
    }

    fn choose_all(lines: &[&str]) -> Option<Coding> {
        parse(lines).choose(Coding::ALL)
    }

    use Coding::{Br, Gzip, Zstd};

    /// `Accept-Encoding` lines → the choice when br, zstd and gzip sidecars all exist.
    #[test]
    fn negotiation_table() {
        let cases: &[(&[&str], Option<Coding>)] = &[
            (&[], None),
            (&[""], None),
            (&["identity"], None),
            (&["gzip"], Some(Gzip)),
            (&["br"], Some(Br)),
            (&["zstd"], Some(Zstd)),
            (&["gzip, deflate, br"], Some(Br)),
            (&["gzip, deflate, br, zstd"], Some(Br)),
            (&["deflate"], None),
            (&["compress, deflate"], None),
            (&["zst"], None),
            (&["x-gzip"], Some(Gzip)),
            (&["GZIP"], Some(Gzip)),
            (&["Br;Q=1"], Some(Br)),
            (&["br;q=0.5, gzip;q=0.8"], Some(Gzip)),
            (&["br;q=0.8, gzip;q=0.8"], Some(Br)),
            (&["br;q=0, gzip"], Some(Gzip)),
            (&["br;q=0.000, zstd;q=0.0, gzip;q=0."], None),
            (&["*"], Some(Br)),
            (&["*;q=0"], None),
            (&["*;q=0, gzip"], Some(Gzip)),
            (&["*, br;q=0"], Some(Zstd)),
            (&["*;q=0.5, gzip;q=0.4"], Some(Br)),
            (&["identity;q=0"], None),
            (&["identity;q=0, *;q=0"], None),
            (&["gzip, identity;q=0"], Some(Gzip)),
            (&["gzip;q=0.5, identity"], None),
            (&["gzip;q=1, identity;q=1"], Some(Gzip)),
            (&["gzip;q=0.5"], Some(Gzip)),
            (&["*;q=1, gzip;q=0.5"], Some(Br)),
            (&["  gzip  ;  q=0.5  ,  br ; q=0.6 "], Some(Br)),
            (&["\tgzip\t;\tq=1"], Some(Gzip)),
            (&[",, ,gzip,,"], Some(Gzip)),
            (&["gzip", "br"], Some(Br)),
            (&["br;q=0", "br"], None),
            (&["br", "br;q=0"], None),
            (&["gzip;q=2"], None),
            (&["gzip;q=0.1234"], None),
            (&["gzip;q=1.001"], None),
            (&["gzip;q=1.000"], Some(Gzip)),
            (&["gzip;q="], None),
            (&["gzip;q=.5"], None),
            (&["gzip;q = 0.5"], None),
            (&["gzip;level=9"], None),
            (&["gzip;q=0.5;x=1"], None),
            (&["gz\"ip"], None),
            (&["gzip;q=abc, br"], Some(Br)),
            (&["identity;q=0.9, br;q=0.8"], None),
            (&["identity;q=0.8, br;q=0.8"], Some(Br)),
        ];
        assert!(cases.len() >= 25);
        for (lines, expected) in cases {
            assert_eq!(choose_all(lines), *expected, "{lines:?}");
        }
    }

    #[test]
    fn only_available_codings_are_chosen_in_server_order() {
        let ae = parse(&["gzip, br, zstd"]);
        assert_eq!(ae.choose([]), None);
        assert_eq!(ae.choose([Gzip]), Some(Gzip));
        assert_eq!(ae.choose([Zstd, Gzip]), Some(Zstd));
        assert_eq!(ae.choose([Gzip, Br]), Some(Gzip));
        let ae = parse(&["br;q=0.9, gzip"]);
        assert_eq!(ae.choose([Br, Gzip]), Some(Gzip));
        assert_eq!(ae.choose([Br, Zstd]), Some(Br));
    }

    #[test]
    fn precompressed_flag_values() {
        assert_eq!("off".parse::<Precompressed>(), Ok(Precompressed::OFF));
        assert_eq!(
            "br,zstd,gzip".parse::<Precompressed>(),
            Ok(Precompressed::DEFAULT)
        );
        let p: Precompressed = "gzip, br".parse().unwrap();
        assert_eq!(p.codings().collect::<Vec<_>>(), [Gzip, Br]);
        assert_eq!(p.to_string(), "gzip,br");
        assert_eq!(Precompressed::OFF.to_string(), "off");
        assert_eq!(Precompressed::DEFAULT.to_string(), "br,zstd,gzip");
        for bad in ["", "zst", "gz", "br,br", "br,,gzip", "deflate"] {
            assert!(bad.parse::<Precompressed>().is_err(), "{bad}");
        }
    }

    #[test]
    fn qvalues() {
        let cases: &[(&str, Option<Weight>)] = &[
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.001", Some(1)),
            ("1", Some(1000)),
            ("1.", Some(1000)),
            ("1.0", Some(1000)),
            ("1.01", None),
            ("2", None),
            ("", None),
            ("-0", None),
            ("0.5x", None),
            ("00.5", None),
        ];
        for (v, expected) in cases {
            assert_eq!(qvalue(v.as_bytes()), *expected, "{v}");
        }
    }

    fn element() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("br"),
            Just("BR"),
            Just("zstd"),
            Just("gzip"),
            Just("x-gzip"),
            Just("identity"),
            Just("*"),
            Just("deflate"),
            Just("zst"),
        ];
        let weight = prop_oneof![
            Just(String::new()),
            (0u16..=1000).prop_map(|w| format!(";q={}.{:03}", w / 1000, w % 1000)),
            Just(";q=0".to_string()),
            Just(";q=2".to_string()),
            Just(";x=1".to_string()),
        ];
        let space = prop_oneof![Just(""), Just(" "), Just("\t "), Just("  ")];
        (space.clone(), name, space, weight).prop_map(|(s1, n, s2, w)| format!("{s1}{n}{s2}{w}"))
    }

    proptest! {
        /// Arbitrary bytes never panic and never produce a weight outside 0..=1000.
        #[test]
        fn any_bytes_parse(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut ae = AcceptEncoding::default();
            ae.add_field(&bytes);
            for w in [ae.br, ae.zstd, ae.gzip, ae.identity, ae.any].into_iter().flatten() {
                prop_assert!(w <= FULL);
            }
            let _ = ae.choose(Coding::ALL);
        }

        /// The choice is always available and never a coding the client gave weight 0 or
        /// (without `*`) did not list; splitting the list over several lines changes nothing;
        /// neither does case.
        #[test]
        fn choice_is_acceptable_and_stable(
            elements in proptest::collection::vec(element(), 0..6),
            split in 0usize..6,
            available in proptest::sample::subsequence(Coding::ALL.to_vec(), 0..=3),
        ) {
            let one = elements.join(",");
            let ae = parse(&[&one]);
            let choice = ae.choose(available.iter().copied());
            if let Some(c) = choice {
                prop_assert!(available.contains(&c));
                let w = ae.listed(c).or(ae.any);
                prop_assert!(w.is_some_and(|w| w > 0), "{one:?} chose {c:?}");
            }
            let split = split.min(elements.len());
            let (a, b) = elements.split_at(split);
            let two = parse(&[&a.join(","), &b.join(",")]);
            prop_assert_eq!(two.choose(available.iter().copied()), choice);
            let upper = parse(&[&one.to_ascii_uppercase()]);
            prop_assert_eq!(upper.choose(available.iter().copied()), choice);
        }
    }
}
