//! Access log lines: the combined log format plus the request time in microseconds.
//!
//! `203.0.113.7 - - [21/Nov/2026:23:21:28 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5" 153`
//!
//! Request-derived fields are escaped like nginx does (`"`, `\`, control and non-ASCII bytes
//! become `\xHH`), so a client cannot forge lines or break the quoting.
//!
//! The client address is the peer's, or the one a trusted proxy forwarded
//! ([`Sink::client`], which applies [`crate::http::forwarded::real_client`]); a Unix-socket
//! peer without a forwarded address is logged as `unix:`.

use crate::config::AccessLog;
use crate::http::forwarded::{self, ClientAddr, Peer, TrustedProxies};
use crate::http::{HttpDate, LogFields, Status};
use std::fs::OpenOptions;
use std::io::{self, LineWriter, Write};
use std::sync::Mutex;
use std::time::Instant;

/// A response waiting for its log line until its bytes are handed to the kernel.
#[derive(Debug)]
pub struct Logged {
    pub fields: Option<Box<LogFields>>,
    pub status: Status,
    pub body_bytes: u64,
    /// When the request began (its time taken is measured from here).
    pub started: Instant,
}

/// One exchange, as logged.
#[derive(Debug)]
pub struct Entry<'a> {
    pub client: ClientAddr,
    pub time: HttpDate,
    pub fields: Option<&'a LogFields>,
    pub status: Status,
    pub body_bytes: u64,
    pub micros: u128,
}

/// Formats one line (with its newline) into `out`.
pub fn format_line(e: &Entry<'_>, out: &mut Vec<u8>) {
    let _ = write!(out, "{} - - [", e.client);
    e.time.write_clf(out);
    out.extend_from_slice(b"] \"");
    let empty = LogFields::default();
    let fields = e.fields.unwrap_or(&empty);
    escape_into(&fields.request_line, out);
    let _ = write!(out, "\" {} {} \"", e.status.code(), e.body_bytes);
    escape_opt(fields.referer.as_deref(), out);
    out.extend_from_slice(b"\" \"");
    escape_opt(fields.user_agent.as_deref(), out);
    let _ = writeln!(out, "\" {}", e.micros);
}

fn escape_opt(value: Option<&[u8]>, out: &mut Vec<u8>) {
    match value {
        Some(v) if !v.is_empty() => escape_into(v, out),
        _ => out.push(b'-'),
    }
}

fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// A shared, line-buffered log sink, with the proxies whose forwarding headers it believes.
pub struct Sink {
    out: Mutex<LineWriter<Box<dyn Write + Send>>>,
    trusted: TrustedProxies,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    pub fn open(target: &AccessLog, trusted: TrustedProxies) -> io::Result<Sink> {
        let out: Box<dyn Write + Send> = match target {
            AccessLog::Stdout => Box::new(io::stdout()),
            AccessLog::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        Ok(Sink {
            out: Mutex::new(LineWriter::new(out)),
            trusted,
        })
    }

    /// The address to log for a request from `peer` (the real client behind a trusted proxy).
    pub fn client(&self, peer: Peer, fields: Option<&LogFields>) -> ClientAddr {
        forwarded::real_client(
            peer,
            fields.and_then(|f| f.x_forwarded_for.as_deref()),
            fields.and_then(|f| f.x_real_ip.as_deref()),
            &self.trusted,
        )
    }

    /// Writes one line for each of `pending` (emptying it): responses to `peer` sent at `time`,
    /// their duration measured up to `now`.
    pub fn write_logged(
        &self,
        peer: Peer,
        pending: &mut Vec<Logged>,
        time: HttpDate,
        now: Instant,
    ) {
        if pending.is_empty() {
            return;
        }
        let mut lines = Vec::with_capacity(200 * pending.len());
        for logged in pending.drain(..) {
            let entry = Entry {
                client: self.client(peer, logged.fields.as_deref()),
                time,
                fields: logged.fields.as_deref(),
                status: logged.status,
                body_bytes: logged.body_bytes,
                micros: now.saturating_duration_since(logged.started).as_micros(),
            };
            format_line(&entry, &mut lines);
        }
        self.write(&lines);
    }

    /// Writes complete lines. A failing log never stops serving: errors are dropped.
    pub fn write(&self, lines: &[u8]) {
        // A poisoned lock only means another thread panicked mid-write; the writer is fine.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn combined_format_with_micros_and_escaping() {
        let fields = LogFields {
            request_line: b"GET /a\"b HTTP/1.1".to_vec(),
            referer: None,
            user_agent: Some(b"ua\x01\xff".to_vec()),
            ..LogFields::default()
        };
        let entry = Entry {
            client: ClientAddr::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
            time: HttpDate::from_unix(784_111_777),
            fields: Some(&fields),
            status: Status::Ok,
            body_bytes: 512,
            micros: 153,
        };
        let mut line = Vec::new();
        format_line(&entry, &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a\\x22b HTTP/1.1\" 200 512 \"-\" \"ua\\x01\\xFF\" 153\n"
        );
    }

    #[test]
    fn missing_fields_are_dashes_and_empty_request_line_stays_empty() {
        let entry = Entry {
            client: ClientAddr::Ip("::1".parse().unwrap()),
            time: HttpDate::from_unix(0),
            fields: None,
            status: Status::BadRequest,
            body_bytes: 0,
            micros: 7,
        };
        let mut line = Vec::new();
        format_line(&entry, &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "::1 - - [01/Jan/1970:00:00:00 +0000] \"\" 400 0 \"-\" \"-\" 7\n"
        );
    }

    #[test]
    fn the_sink_logs_the_forwarded_client_of_trusted_peers_only() {
        let trusted: TrustedProxies = ["127.0.0.1".parse().unwrap(), "unix:".parse().unwrap()]
            .into_iter()
            .collect();
        let sink = Sink::open(&AccessLog::Stdout, trusted).unwrap();
        let fields = LogFields {
            x_forwarded_for: Some(b"198.51.100.23, 127.0.0.1".to_vec()),
            ..LogFields::default()
        };
        let local = Peer::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let remote = Peer::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(
            sink.client(local, Some(&fields)).to_string(),
            "198.51.100.23"
        );
        assert_eq!(
            sink.client(Peer::Unix, Some(&fields)).to_string(),
            "198.51.100.23"
        );
        assert_eq!(sink.client(remote, Some(&fields)).to_string(), "192.0.2.1");
        assert_eq!(sink.client(Peer::Unix, None).to_string(), "unix:");
    }
}
