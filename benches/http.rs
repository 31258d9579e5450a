//! Micro-benchmarks of the pure HTTP core: parsing a request head, and answering a request
//! end to end in memory (parse + resolve + open + validators + head). Throughput is in
//! requests, so results read as requests per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringserve::fs::{Dotfiles, Root};
use ringserve::http::request::{self, Parsed};
use ringserve::http::{Conn, DateCache, Lifecycle, Site, SiteOptions, Step};
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

fn respond(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("assets")).expect("mkdir");
    std::fs::write(dir.path().join("assets/4k.txt"), vec![b'x'; 4096]).expect("write");
    let site = Site::new(
        Root::open(dir.path()).expect("root"),
        SiteOptions::default(),
    );
    let date = DateCache::new(SystemTime::now());
    let mut g = c.benchmark_group("respond");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_4k_200", |b| {
        b.iter(|| {
            let mut conn = Conn::new();
            conn.receive(black_box(BROWSER_GET));
            match conn.poll(&site, &date, Lifecycle::Serving) {
                Step::Respond(r) => r.head.len(),
                _ => unreachable!("the benchmark request is valid"),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, parse, respond);
criterion_main!(benches);
