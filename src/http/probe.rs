//! The two built-in endpoints a reverse proxy or a monitor asks for: health and status.
//!
//! Owns: which request paths they answer and the bytes of their answers. Must not: count
//! anything (the drivers do, in [`crate::stats`]), or shadow a file — `Server::bind` refuses
//! to start when a probe path names something under the root, so matching here is exact on
//! the raw request path (query ignored) and nothing else is ever intercepted.
//!
//! - Health: `200 ok` while serving; `503 draining` once a graceful shutdown has begun (the
//!   connection then closes), so a proxy health check takes the instance out of rotation
//!   before it goes away.
//! - Status: the counters of [`crate::stats::Stats`] in the Prometheus text format 0.0.4.
//!
//! Both are `Cache-Control: no-store` (a caching proxy must never answer them itself) and
//! answer HEAD with the GET head, as files do.

use super::date::DateCache;
use super::lifecycle::Lifecycle;
use super::response::{Body, HeadBuilder};
use super::status::Status;
use crate::fs::ContentType;

const TEXT: ContentType = ContentType {
    essence: "text/plain",
    utf8: true,
};

/// The media type Prometheus scrapers ask for (`Accept: text/plain;version=0.0.4`).
const PROMETHEUS: ContentType = ContentType {
    essence: "text/plain; version=0.0.4",
    utf8: true,
};

/// The endpoints' paths, each `None` unless configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    pub health: Option<String>,
    pub status: Option<String>,
}

/// Why a probe path is unusable (checked before start-up).
pub fn check_path(flag: &str, path: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
    if !path.starts_with('/') || path.len() < 2 {
        return Err(format!(
            "{flag} {path:?} must start with '/' and name something below the root"
        ));
    }
    if !path.bytes().all(allowed) {
        return Err(format!(
            "{flag} {path:?} may only contain letters, digits and -._~!$&'()*+,;=:@/ \
             (no percent-encoding, query or fragment)"
        ));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    // A trailing `/` (an empty last segment) is fine: `/status/` is a valid path.
    if segments
        .iter()
        .enumerate()
        .any(|(i, seg)| (seg.is_empty() && i != last) || *seg == "." || *seg == "..")
    {
        return Err(format!(
            "{flag} {path:?} must not contain empty, '.' or '..' segments"
        ));
    }
    Ok(())
}

/// What the status path renders: implemented by the drivers' counters
/// ([`crate::stats::Stats`]), so the core never depends on them.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// Appends the Prometheus text exposition.
    fn render_prometheus(&self, out: &mut Vec<u8>);

    /// A precompressed sidecar older than its file was passed over (see
    /// [`crate::fs::sidecar`]). Called from the request path; by default counts nothing.
    fn precompressed_stale(&self) {}
}

/// No counters: the status path renders an empty exposition.
#[derive(Debug)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn render_prometheus(&self, _out: &mut Vec<u8>) {}
}

/// The answer when `path` is a probe path; `None` otherwise.
pub(super) fn answer(
    probes: &Probes,
    metrics: &dyn Metrics,
    path: &[u8],
    date: &DateCache,
    life: Lifecycle,
) -> Option<(Status, HeadBuilder, Body)> {
    let is = |p: &Option<String>| p.as_deref().is_some_and(|p| p.as_bytes() == path);
    let (status, content_type, body) = if is(&probes.health) {
        match life {
            Lifecycle::Serving => (Status::Ok, TEXT, Body::Static(b"ok\n")),
            Lifecycle::Announcing | Lifecycle::Draining => (
                Status::ServiceUnavailable,
                TEXT,
                Body::Static(b"draining\n"),
            ),
        }
    } else if is(&probes.status) {
        let mut text = Vec::with_capacity(4096);
        metrics.render_prometheus(&mut text);
        (Status::Ok, PROMETHEUS, Body::Bytes(text))
    } else {
        return None;
    };
    let mut head = HeadBuilder::new(status, date);
    head.header("Cache-Control", b"no-store")
        .content_type(content_type)
        .content_length(body.len());
    Some((status, head, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Root;
    use crate::http::request::{self, Parsed};
    use crate::http::response::After;
    use crate::http::serve::{self, Site, SiteOptions};
    use std::time::SystemTime;

    fn answer_to(site: &Site, raw: &[u8], life: Lifecycle) -> (String, Vec<u8>, After) {
        let date = DateCache::new(SystemTime::now());
        let Ok(Parsed::Complete { request, .. }) = request::parse(raw, 8192) else {
            panic!("request did not parse");
        };
        let r = serve::respond(site, None, &request, &date, life);
        let body = match r.body {
            Body::Static(b) => b.to_vec(),
            Body::Bytes(b) => b,
            Body::Empty => Vec::new(),
            other => panic!("unexpected body {other:?}"),
        };
        (String::from_utf8(r.head).unwrap(), body, r.after)
    }

    #[test]
    fn health_is_503_and_closes_while_draining() {
        let dir = tempfile::tempdir().unwrap();
        #[derive(Debug)]
        struct OneCounter;
        impl Metrics for OneCounter {
            fn render_prometheus(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(b"ringserve_requests_total 7\n");
            }
        }
        let site = Site::new(Root::open(dir.path()).unwrap(), SiteOptions::default())
            .with_probes(Probes {
                health: Some("/healthz".into()),
                status: Some("/status".into()),
            })
            .with_metrics(std::sync::Arc::new(OneCounter));
        let get = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
        let (head, body, after) = answer_to(&site, get, Lifecycle::Serving);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!((body.as_slice(), after), (&b"ok\n"[..], After::KeepAlive));
        for life in [Lifecycle::Announcing, Lifecycle::Draining] {
            let (head, body, after) = answer_to(&site, get, life);
            assert!(
                head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{head}"
            );
            assert!(head.contains("\r\nCache-Control: no-store\r\n"), "{head}");
            assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
            assert_eq!((body.as_slice(), after), (&b"draining\n"[..], After::Close));
        }
        // HEAD: the GET head, no body.
        let (head, body, _) = answer_to(
            &site,
            b"HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
            Lifecycle::Serving,
        );
        assert!(head.contains("\r\nContent-Length: 3\r\n"), "{head}");
        assert!(body.is_empty());
        // Other methods are treated as for any path.
        let (head, _, _) = answer_to(
            &site,
            b"POST /status HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            Lifecycle::Serving,
        );
        assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
        let (head, body, _) = answer_to(
            &site,
            b"GET /status HTTP/1.1\r\nHost: h\r\n\r\n",
            Lifecycle::Serving,
        );
        assert!(
            head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("ringserve_requests_total 7\n")
        );
    }

    #[test]
    fn probe_paths_are_checked() {
        for ok in [
            "/healthz",
            "/-/status",
            "/a/b/",
            "/.well-known/health",
            "/x:y@z",
        ] {
            assert_eq!(check_path("--health-path", ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("healthz", "must start with '/'"),
            ("/", "must start with '/'"),
            ("", "must start with '/'"),
            ("/a%20b", "no percent-encoding"),
            ("/a?b", "no percent-encoding"),
            ("/a b", "no percent-encoding"),
            ("/a//b", "empty, '.' or '..'"),
            ("/a//b/", "empty, '.' or '..'"),
            ("/a/../b", "empty, '.' or '..'"),
            ("/./b", "empty, '.' or '..'"),
        ] {
            let err = check_path("--health-path", bad).unwrap_err();
            assert!(
                err.contains(why) && err.starts_with("--health-path"),
                "{bad}: {err}"
            );
        }
    }
}
