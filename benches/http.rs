//! Micro-benchmarks of the pure HTTP core: parsing a request head, resolving a path, the
//! conditional, range and `Accept-Encoding` decisions, building a response head, and answering a request end to
//! end in memory (parse + resolve + open + validators + head), with and without 50 header
//! rules, and matching those rules alone. Throughput is in requests (or
//! decisions), so results read as operations per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringserve::fs::{Dotfiles, Root};
use ringserve::http::request::{self, Parsed};
use ringserve::http::{
    Conn, DateCache, HeaderRule, HeaderRules, Lifecycle, Site, SiteOptions, Step,
};
use std::hint::black_box;
use std::time::SystemTime;

/// A typical browser request head (~450 bytes).
const BROWSER_GET: &[u8] = b"GET /assets/4k.txt HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
If-None-Match: \"00000000000000000000000000000000\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\r\n";

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("browser_get", |b| {
        b.iter(|| match request::parse(black_box(BROWSER_GET), 8192) {
            Ok(Parsed::Complete { len, .. }) => len,
            _ => unreachable!("the benchmark request is valid"),
        })
    });
    g.bench_function("resolve_path", |b| {
        b.iter(|| ringserve::fs::resolve(black_box(b"/assets/sub/../4k%2etxt"), Dotfiles::Hidden))
    });
    g.finish();
}

fn decisions(c: &mut Criterion) {
    use ringserve::http::conditional::{Preconditions, Validators, evaluate};
    use ringserve::http::{HttpDate, range};
    let etag = ringserve::fs::ETag::for_file(4096, 1_763_683_200, 0);
    let validators = Validators {
        etag: etag.as_bytes(),
        last_modified: HttpDate::from_unix(1_763_683_200),
    };
    let inm: [&[u8]; 1] = [b"W/\"0000\", \"1111\", \"9e107d9d372bb6826bd81d3542a419d6\""];
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("if_none_match_list", |b| {
        let pre = Preconditions {
            if_none_match: &inm,
            ..Preconditions::default()
        };
        b.iter(|| evaluate(black_box(&pre), black_box(&validators)))
    });
    g.bench_function("if_modified_since", |b| {
        let pre = Preconditions {
            if_modified_since: Some(b"Sat, 22 Nov 2025 00:00:00 GMT"),
            ..Preconditions::default()
        };
        b.iter(|| evaluate(black_box(&pre), black_box(&validators)))
    });
    g.bench_function("range_three_specs", |b| {
        b.iter(|| {
            range::decide(
                black_box(b"bytes=0-99, 5000-5999, -500"),
                black_box(1_000_000),
            )
        })
    });
    g.bench_function("accept_encoding", |b| {
        use ringserve::fs::sidecar::Coding;
        b.iter(|| {
            let mut ae = ringserve::http::AcceptEncoding::default();
            ae.add_field(black_box(b"gzip, deflate, br, zstd;q=0.9"));
            ae.choose(Coding::ALL)
        })
    });
    g.finish();
}

fn heads(c: &mut Criterion) {
    use ringserve::fs::ContentType;
    use ringserve::http::Status;
    use ringserve::http::response::{After, Confirm, HeadBuilder};
    let date = DateCache::new(SystemTime::now());
    let etag = ringserve::fs::ETag::for_file(4096, 1_763_683_200, 0);
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(1));
    g.bench_function("build_200", |b| {
        b.iter(|| {
            let mut head = HeadBuilder::new(Status::Ok, &date);
            head.header("ETag", etag.as_bytes())
                .header("Last-Modified", b"Fri, 21 Nov 2025 00:00:00 GMT")
                .content_type(ContentType::HTML)
                .content_length(black_box(4096));
            head.finish(After::KeepAlive, Confirm::Implicit)
        })
    });
    g.bench_function("etag_for_file", |b| {
        b.iter(|| ringserve::fs::ETag::for_file(black_box(4096), black_box(1_763_683_200), 0))
    });
    g.finish();
}

/// 50 realistic rules over 10 header names: versioned static trees, `/x/*/y.css`, extensions,
/// docs pages, and five that match `/assets/4k.txt` (as the load test's 50 rules match
/// `/assets/128b.txt`).
fn fifty_rules() -> HeaderRules {
    let names = [
        "X-Frame-Options",
        "X-Team",
        "Cache-Control",
        "Access-Control-Allow-Origin",
        "Referrer-Policy",
        "X-Robots-Tag",
        "Content-Security-Policy",
        "X-Tier",
        "Strict-Transport-Security",
        "Permissions-Policy",
    ];
    let mut patterns: Vec<String> = (0..15).map(|i| format!("/static/v{i}/**")).collect();
    patterns.extend((0..10).map(|i| format!("/x/*/y{i}.css")));
    for ext in [
        "html", "htm", "js", "css", "svg", "woff2", "json", "map", "xml", "webp",
    ] {
        patterns.push(format!("*.{ext}"));
    }
    patterns.extend((0..10).map(|i| format!("/docs/**/page{i}.html")));
    for p in [
        "/assets/**",
        "*.txt",
        "/assets/*.txt",
        "/**/4k.txt",
        "/assets/4k.txt",
    ] {
        patterns.push(p.to_owned());
    }
    let mut rules = HeaderRules::default();
    for (i, p) in patterns.iter().enumerate() {
        let rule = format!("{p}={}: value-{i}", names[i % names.len()]);
        rules.add(rule.parse::<HeaderRule>().expect("a valid rule"));
    }
    rules
}

fn header_rules(c: &mut Criterion) {
    let rules = fifty_rules();
    let mut g = c.benchmark_group("header_rules");
    g.throughput(Throughput::Elements(1));
    // What a 304 or 206 does per request (a cached 200 does none of it).
    g.bench_function("match_50_rules", |b| {
        b.iter(|| {
            let rel = black_box(&b"assets/4k.txt"[..]);
            let mut n = rules.cache_control(rel).map_or(0, <[u8]>::len);
            n += rules.content_type(rel).map_or(0, <[u8]>::len);
            n + rules.added(rel).map(|(_, v)| v.len()).sum::<usize>()
        })
    });
    g.finish();
}

fn respond(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("assets")).expect("mkdir");
    std::fs::write(dir.path().join("assets/4k.txt"), vec![b'x'; 4096]).expect("write");
    let date = DateCache::new(SystemTime::now());
    let mut g = c.benchmark_group("respond");
    g.throughput(Throughput::Elements(1));
    // Without a cache (as the threaded mode), so the rules are matched on every request.
    for (name, rules) in [
        ("get_4k_200", HeaderRules::default()),
        ("get_4k_200_50_rules", fifty_rules()),
    ] {
        let site = Site::new(
            Root::open(dir.path()).expect("root"),
            SiteOptions {
                header_rules: rules,
                ..SiteOptions::default()
            },
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut conn = Conn::new(std::time::Instant::now());
                conn.receive(black_box(BROWSER_GET), std::time::Instant::now());
                match conn.poll(&site, &date, Lifecycle::Serving) {
                    Step::Respond(r) => r.head.len(),
                    _ => unreachable!("the benchmark request is valid"),
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, decisions, heads, header_rules, respond);
criterion_main!(benches);
