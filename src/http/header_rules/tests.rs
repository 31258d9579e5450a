use super::*;
use proptest::prelude::*;

fn matches(pattern: &str, path: &str) -> bool {
    let p = Pattern::parse(pattern).unwrap();
    p.matches(path.strip_prefix('/').unwrap().as_bytes())
}

#[test]
fn the_pattern_language_by_example() {
    let cases: &[(&str, &str, bool)] = &[
        ("/assets/**", "/assets/a.js", true),
        ("/assets/**", "/assets/x/y.css", true),
        ("/assets/**", "/assets", true),
        ("/assets/**", "/assetsx/a.js", false),
        ("/assets/**", "/a/assets/a.js", false),
        ("/**", "/a", true),
        ("/**", "/a/b/c", true),
        ("/**/*.css", "/a.css", true),
        ("/**/a.css", "/a.css", true),
        ("/**/a.css", "/x/a.css", true),
        ("/**/a.css", "/xa.css", false),
        ("/**/*.css", "/x/y/a.css", true),
        ("/**/*.css", "/x/y/a.js", false),
        ("/a/**/b", "/a/b", true),
        ("/a/**/b", "/a/x/y/b", true),
        ("/a/**/b", "/a/x/y/bb", false),
        ("/a/**/b/**/c", "/a/1/b/2/b/3/c", true),
        ("/x/*/y.css", "/x/q/y.css", true),
        ("/x/*/y.css", "/x/q/r/y.css", false),
        ("/x/*/y.css", "/x/y.css", false),
        ("/*.html", "/index.html", true),
        ("/*.html", "/a/index.html", false),
        ("/a?c", "/abc", true),
        ("/a?c", "/a/c", false),
        ("/a?c", "/ac", false),
        ("*.html", "/index.html", true),
        ("*.html", "/docs/a/index.html", true),
        ("*.html", "/docs/a.htm", false),
        ("index.*", "/docs/index.html", true),
        ("*", "/x/y", true),
        ("a*b*c", "/aXbYbZc", true),
        ("a*b*c", "/aXbYbZ", false),
        ("/exact.txt", "/exact.txt", true),
        ("/exact.txt", "/exact.txtx", false),
    ];
    for &(pattern, path, want) in cases {
        assert_eq!(matches(pattern, path), want, "{pattern} vs {path}");
    }
}

#[test]
fn malformed_patterns_are_refused() {
    for bad in [
        "", "/", "/a/", "/a//b", "a/b", "/a/../b", "/./a", "/a**", "/**x/b", "**", "*.**", "/a=b",
    ] {
        assert!(Pattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rules_parse_from_the_flag_form() {
    let r: HeaderRule = "/a/**=Cache-Control:  max-age=60 ".parse().unwrap();
    assert_eq!(
        (r.pattern(), r.name(), r.value()),
        ("/a/**", "Cache-Control", "max-age=60")
    );
    assert_eq!(r.to_string(), "/a/**=Cache-Control: max-age=60");
    assert_eq!("*.html".parse::<HeaderRule>(), Err(RuleError::Shape));
    assert_eq!("*.html=X".parse::<HeaderRule>(), Err(RuleError::Shape));
    assert!(matches!(
        "*.html=X Y: 1".parse::<HeaderRule>(),
        Err(RuleError::BadName(_))
    ));
    for bad_value in [
        "*.html=X: ",
        "*.html=X: a\r\nB: c",
        "*.html=X: a\0",
        "*.html=X: é",
    ] {
        assert!(
            matches!(
                bad_value.parse::<HeaderRule>(),
                Err(RuleError::BadValue { .. })
            ),
            "{bad_value:?}"
        );
    }
}

#[test]
fn framing_and_validator_fields_are_refused_in_any_case() {
    for name in [
        "Content-Length",
        "transfer-encoding",
        "CONNECTION",
        "Content-Range",
        "Content-Encoding",
        "etag",
        "Last-Modified",
        "Date",
    ] {
        let err = HeaderRule::new("/**", name, "x").unwrap_err();
        assert!(
            matches!(&err, RuleError::Refused { name: n, .. } if n.eq_ignore_ascii_case(name)),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("cannot be set"), "{err}");
    }
}

#[test]
fn the_last_matching_rule_wins_per_header() {
    let mut rules = HeaderRules::default();
    for r in [
        "/**=Cache-Control: no-cache",
        "/assets/**=Cache-Control: immutable",
        "*.html=cache-control: no-store",
        "/**=X-A: 1",
        "/assets/**=X-B: 2",
        "/assets/**=x-a: 3",
        "*.json=Content-Type: application/problem+json",
    ] {
        rules.add(r.parse().unwrap());
    }
    assert_eq!(rules.cache_control(b"a.txt"), Some(&b"no-cache"[..]));
    assert_eq!(rules.cache_control(b"assets/a.js"), Some(&b"immutable"[..]));
    assert_eq!(
        rules.cache_control(b"assets/a.html"),
        Some(&b"no-store"[..])
    );
    assert_eq!(rules.content_type(b"a.txt"), None);
    assert_eq!(
        rules.content_type(b"x/a.json"),
        Some(&b"application/problem+json"[..])
    );
    let added: Vec<_> = rules.added(b"assets/a.js").collect();
    assert_eq!(added, [("x-a", &b"3"[..]), ("X-B", &b"2"[..])]);
    let added: Vec<_> = rules.added(b"b.js").collect();
    assert_eq!(added, [("X-A", &b"1"[..])]);
}

/// A plain recursive matcher, the specification the scanning matcher is checked against.
fn reference(pattern: &str, rel: &str) -> bool {
    fn seg(g: &[u8], t: &[u8]) -> bool {
        match (g.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => seg(&g[1..], t) || (!t.is_empty() && seg(g, &t[1..])),
            (Some(b'?'), Some(_)) => seg(&g[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => seg(&g[1..], &t[1..]),
            _ => false,
        }
    }
    fn segs(p: &[&str], t: &[&str]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(&"**"), _) => segs(&p[1..], t) || (!t.is_empty() && segs(p, &t[1..])),
            (Some(g), Some(s)) => seg(g.as_bytes(), s.as_bytes()) && segs(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let t: Vec<&str> = rel.split('/').collect();
    match pattern.strip_prefix('/') {
        Some(rest) => segs(&rest.split('/').collect::<Vec<_>>(), &t),
        None => seg(pattern.as_bytes(), t.last().unwrap().as_bytes()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_matcher_agrees_with_the_reference(
        segments in proptest::collection::vec(
            prop_oneof!["\\*\\*", "a", "b", "ab", "\\*", "\\?", "a\\*", "\\*b", "\\?a", "\\*a\\*"], 1..5),
        is_path in any::<bool>(),
        // Only what the server asks about: a normalized file path.
        path in proptest::collection::vec("[ab]{1,3}", 1..5),
    ) {
        let pattern = if is_path {
            format!("/{}", segments.join("/"))
        } else {
            segments[0].clone()
        };
        let path = path.join("/");
        // Malformed patterns are refused at start-up (tested above); nothing to compare.
        if let Ok(p) = Pattern::parse(&pattern) {
            prop_assert_eq!(p.matches(path.as_bytes()), reference(&pattern, &path), "{} vs {}", pattern, path);
        }
    }
}
