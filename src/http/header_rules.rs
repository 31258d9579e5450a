//! Per-path response headers: rules `PATTERN=Name: value` chosen by the operator, and the
//! glob that matches a pattern against the file served.
//!
//! Owns: parsing and checking a rule (refusing the fields framing and validation depend on),
//! the pattern language, and which rule wins. Must not: allocate when matching (it runs per
//! request for 304 and 206; a worker's cache keeps the matched fields of a full 200).
//!
//! What a pattern is matched against: the path of the file served, decoded, beneath the root
//! (`/docs/` serves `/docs/index.html` and is matched as that), so the headers are a property
//! of the file, like the cached fields they are kept in. A sidecar (`app.js.br`) is matched as
//! the file it stands for (`/app.js`).
//!
//! The language, byte by byte (no regex):
//! - A pattern starting with `/` matches the whole path. `*` matches any bytes within one
//!   segment (never `/`), `?` one byte that is not `/`, and a segment `**` any number of whole
//!   segments, none included: `/assets/**` matches `/assets/a.js`, `/assets/x/y.css` (and a
//!   file named `/assets`); `/**/*.css` matches `/a.css` and `/x/y/a.css`.
//! - A pattern without `/` (`*.html`) matches the file's name, the last segment.
//! - `**` must be a whole segment of a path pattern; empty, `.` and `..` segments and a
//!   trailing `/` are refused (they would never match a file), and so is `=` (it ends the
//!   pattern in `PATTERN=Name: value`).
//!
//! Which rule wins: for each header name (case-insensitive) the last matching rule, in the
//! order the rules were added. `Cache-Control` and `Content-Type` replace the server's;
//! `Vary` is added beside the server's `Vary: Accept-Encoding` of a negotiated file (that one
//! stays: without it a cache would hand a compressed body to a client that cannot decode it);
//! any other name is added.

use std::fmt;
use std::str::FromStr;

/// Names a rule may not set, and why: framing and validators are the server's (a wrong
/// `Content-Length` would desynchronise the connection), hop-by-hop fields belong to one
/// connection, and the rest are on every response already.
const REFUSED: &[(&str, &str)] = &[
    ("Content-Length", "framing depends on it"),
    ("Transfer-Encoding", "framing depends on it"),
    ("Connection", "framing depends on it"),
    ("Content-Range", "framing depends on it"),
    ("Content-Encoding", "framing depends on it"),
    ("ETag", "conditional requests depend on it"),
    ("Last-Modified", "conditional requests depend on it"),
    ("Date", "the server sends the current one"),
    ("Keep-Alive", "it is hop-by-hop"),
    ("Upgrade", "it is hop-by-hop"),
    ("Trailer", "it is hop-by-hop"),
    ("TE", "it is hop-by-hop"),
    ("Proxy-Connection", "it is hop-by-hop"),
    ("Server", "the server sends it on every response"),
    ("Accept-Ranges", "the server sends it on every response"),
    (
        "X-Content-Type-Options",
        "the server sends it on every response",
    ),
];

/// Why a rule was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// `PATTERN=Name: value` without `=` or `:`.
    Shape,
    BadPattern {
        pattern: String,
        why: &'static str,
    },
    BadName(String),
    Refused {
        name: String,
        why: &'static str,
    },
    BadValue {
        name: String,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Shape => f.write_str("a header rule is 'PATTERN=Name: value'"),
            RuleError::BadPattern { pattern, why } => write!(f, "pattern {pattern:?}: {why}"),
            RuleError::BadName(name) => write!(f, "{name:?} is not a header name"),
            RuleError::Refused { name, why } => {
                write!(f, "header {name} cannot be set by a rule: {why}")
            }
            RuleError::BadValue { name } => write!(
                f,
                "the value of {name} must be non-empty visible ASCII (spaces and tabs inside)"
            ),
        }
    }
}

impl std::error::Error for RuleError {}

/// One rule: files matching `pattern` are sent with `name: value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRule {
    pattern: Pattern,
    name: String,
    value: String,
    role: Role,
}

impl HeaderRule {
    /// Checks and builds a rule (see the module docs for the pattern language).
    pub fn new(pattern: &str, name: &str, value: &str) -> Result<HeaderRule, RuleError> {
        let pattern = Pattern::parse(pattern)?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(RuleError::BadName(name.to_owned()));
        }
        if let Some(&(refused, why)) = REFUSED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(RuleError::Refused {
                name: refused.to_owned(),
                why,
            });
        }
        let value = value.trim_matches([' ', '\t']);
        let visible = value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if value.is_empty() || !visible {
            return Err(RuleError::BadValue {
                name: name.to_owned(),
            });
        }
        let role = if name.eq_ignore_ascii_case("Cache-Control") {
            Role::CacheControl
        } else if name.eq_ignore_ascii_case("Content-Type") {
            Role::ContentType
        } else {
            Role::Added
        };
        Ok(HeaderRule {
            pattern,
            name: name.to_owned(),
            value: value.to_owned(),
            role,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern.source
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for HeaderRule {
    type Err = RuleError;

    /// `PATTERN=Name: value`, split at the first `=` (so a pattern cannot contain one; a
    /// value may: `/a/**=Cache-Control: max-age=60`) and then at the first `:`.
    fn from_str(s: &str) -> Result<HeaderRule, RuleError> {
        let (pattern, field) = s.split_once('=').ok_or(RuleError::Shape)?;
        let (name, value) = field.split_once(':').ok_or(RuleError::Shape)?;
        HeaderRule::new(pattern, name, value)
    }
}

impl fmt::Display for HeaderRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: {}", self.pattern.source, self.name, self.value)
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// How the server treats a header a rule sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Replaces `--cache-control` (and the favicon's).
    CacheControl,
    /// Replaces the type by extension (not sent on 304, like the server's own).
    ContentType,
    /// Added to the head (`Vary` included: see the module docs).
    Added,
}

/// The rules of a site, grouped by header name so that the winner for each name is the first
/// match scanning its rules from the last.
#[derive(Clone, Debug, Default)]
pub struct HeaderRules {
    groups: Vec<Group>,
}

#[derive(Clone, Debug)]
struct Group {
    role: Role,
    rules: Vec<HeaderRule>,
}

impl HeaderRules {
    /// Adds a rule after the others: it wins over them for its header where both match.
    pub fn add(&mut self, rule: HeaderRule) {
        match self
            .groups
            .iter_mut()
            .find(|g| g.rules[0].name.eq_ignore_ascii_case(&rule.name))
        {
            Some(group) => group.rules.push(rule),
            None => self.groups.push(Group {
                role: rule.role,
                rules: vec![rule],
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every rule, grouped by header name.
    pub fn iter(&self) -> impl Iterator<Item = &HeaderRule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }

    /// The rule for `group` that wins for the file at `rel` (relative to the root, decoded).
    fn winner<'a>(group: &'a Group, rel: &[u8]) -> Option<&'a HeaderRule> {
        group.rules.iter().rev().find(|r| r.pattern.matches(rel))
    }

    fn value_of(&self, role: Role, rel: &[u8]) -> Option<&[u8]> {
        let group = self.groups.iter().find(|g| g.role == role)?;
        HeaderRules::winner(group, rel).map(|r| r.value.as_bytes())
    }

    /// The `Cache-Control` a rule sets for the file at `rel`.
    pub fn cache_control(&self, rel: &[u8]) -> Option<&[u8]> {
        self.value_of(Role::CacheControl, rel)
    }

    /// The `Content-Type` a rule sets for the file at `rel`.
    pub fn content_type(&self, rel: &[u8]) -> Option<&[u8]> {
        self.value_of(Role::ContentType, rel)
    }

    /// The fields rules add to the head for the file at `rel`, one per header name.
    pub fn added<'a>(&'a self, rel: &'a [u8]) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.groups
            .iter()
            .filter(|g| g.role == Role::Added)
            .filter_map(move |g| HeaderRules::winner(g, rel))
            .map(|r| (r.name.as_str(), r.value.as_bytes()))
    }
}

/// A compiled pattern (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    source: String,
    kind: PatternKind,
    /// Literal bytes every match starts with (of the path without its `/`, or of the name)
    /// and ends with: two comparisons that turn most rules away before the glob runs.
    prefix: Box<[u8]>,
    suffix: Box<[u8]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternKind {
    /// Matches the last segment.
    Name(Box<[u8]>),
    /// Matches the segments of the whole path.
    Path(Box<[Segment]>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments.
    Any,
    /// A glob of `*`, `?` and literal bytes within one segment.
    Glob(Box<[u8]>),
}

impl Pattern {
    fn parse(source: &str) -> Result<Pattern, RuleError> {
        let bad = |why| RuleError::BadPattern {
            pattern: source.to_owned(),
            why,
        };
        let check_segment = |seg: &str| match seg {
            "" => Err(bad("empty segment")),
            "." | ".." => Err(bad("'.' and '..' never name a served file")),
            s if s.contains("**") => Err(bad("'**' must be a whole segment, as in /a/**/b")),
            _ => Ok(()),
        };
        // `--header` splits at the first `=`; the file's rules go through the same flag.
        if source.contains('=') {
            return Err(bad(
                "contains '=', which ends a pattern in PATTERN=Name: value",
            ));
        }
        let kind = match source.strip_prefix('/') {
            Some("") => return Err(bad("'/' names no file; use /** for every file")),
            Some(rest) => {
                if rest.ends_with('/') {
                    return Err(bad(
                        "ends with '/': a directory is served as its index.html",
                    ));
                }
                let mut segments = Vec::new();
                for seg in rest.split('/') {
                    if seg == "**" {
                        // `/**/**` is the same as `/**`.
                        if segments.last() != Some(&Segment::Any) {
                            segments.push(Segment::Any);
                        }
                    } else {
                        check_segment(seg)?;
                        segments.push(Segment::Glob(seg.as_bytes().into()));
                    }
                }
                PatternKind::Path(segments.into())
            }
            None if source.contains('/') => {
                return Err(bad("a path pattern starts with '/'"));
            }
            None => {
                check_segment(source)?;
                PatternKind::Name(source.as_bytes().into())
            }
        };
        let (prefix, suffix) = literal_ends(source);
        Ok(Pattern {
            source: source.to_owned(),
            kind,
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    /// Whether the file at `rel` (relative to the root, no leading `/`, decoded) matches.
    fn matches(&self, rel: &[u8]) -> bool {
        match &self.kind {
            PatternKind::Name(glob) => {
                let name = rel.rsplit(|&b| b == b'/').next().unwrap_or_default();
                self.ends_fit(name) && glob_segment(glob, name)
            }
            PatternKind::Path(segments) => self.ends_fit(rel) && match_segments(segments, rel),
        }
    }

    fn ends_fit(&self, text: &[u8]) -> bool {
        text.len() >= self.prefix.len() + self.suffix.len()
            && text.starts_with(&self.prefix)
            && text.ends_with(&self.suffix)
    }
}

/// The literal bytes before the first wildcard and after the last one, as a match must start
/// and end with them (a path pattern's leading `/` dropped, as the path is relative). A `**`
/// segment may match no segment at all, taking one `/` beside it with it, so that `/` is not
/// part of the literal end: `/a/**` matches `a`, `/**/x.css` matches `x.css`.
fn literal_ends(source: &str) -> (&[u8], &[u8]) {
    let text = source.strip_prefix('/').unwrap_or(source).as_bytes();
    let wild = |b: &u8| *b == b'*' || *b == b'?';
    let (Some(first), Some(last)) = (text.iter().position(wild), text.iter().rposition(wild))
    else {
        // No wildcard: the glob compares the whole text anyway.
        return (text, b"");
    };
    let mut prefix = &text[..first];
    if text[first..].starts_with(b"**") {
        prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    }
    let mut suffix = &text[last + 1..];
    if last > 0 && text[last - 1] == b'*' {
        suffix = suffix.strip_prefix(b"/").unwrap_or(suffix);
    }
    (prefix, suffix)
}

/// `*` and `?` within one segment. The classic greedy scan: on a mismatch, go back to the
/// last `*` and let it take one byte more. Linear in practice, O(|glob|·|text|) at worst,
/// and correct because a later `*` can absorb whatever an earlier one would have.
fn glob_segment(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// The same scan one level up: segments are the units, `**` the star, and a unit matches a
/// path segment when its glob does.
fn match_segments(pattern: &[Segment], rel: &[u8]) -> bool {
    // The path segment starting at byte `at`, and where the next one starts.
    let segment_at = |at: usize| -> (&[u8], usize) {
        let rest = &rel[at..];
        match rest.iter().position(|&b| b == b'/') {
            Some(i) => (&rest[..i], at + i + 1),
            None => (rest, rel.len() + 1),
        }
    };
    // Byte offset of the current path segment; past the end (`len + 1`) once all are used.
    let end = rel.len() + 1;
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < end {
        match pattern.get(p) {
            Some(Segment::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Segment::Glob(glob)) if glob_segment(glob, segment_at(t).0) => {
                p += 1;
                t = segment_at(t).1;
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = segment_at(st).1;
                    p = sp + 1;
                    t = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|s| *s == Segment::Any)
}

#[cfg(test)]
mod tests;
