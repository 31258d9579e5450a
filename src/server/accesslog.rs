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
//!
//! Rotation: [`Reopener::reopen`] (SIGUSR1 in the binary) opens the log's path again and
//! swaps it in under the same lock every write takes. Each write is whole lines under that
//! lock, so a line is in the old file or the new one, never split or lost: `mv access.log
//! access.log.1; kill -USR1 PID` and the old file is complete once the server says so.

use crate::config::AccessLog;
use crate::http::forwarded::{self, ClientAddr, Peer, TrustedProxies};
use crate::http::{HttpDate, LogFields, Status};
use std::fs::OpenOptions;
use std::io::{self, LineWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
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
    out: Arc<Output>,
    trusted: TrustedProxies,
}

/// Where a sink's lines go, and where they went when it was opened (for reopening).
struct Output {
    writer: Mutex<LineWriter<Box<dyn Write + Send>>>,
    target: AccessLog,
}

/// Reopens a sink's file from any thread, for log rotation (see the module docs).
#[derive(Clone)]
pub struct Reopener {
    out: Arc<Output>,
}

impl std::fmt::Debug for Reopener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reopener")
    }
}

impl Reopener {
    /// Opens the log's path again (append, create) and sends every later line there; lines
    /// written before this returns are in the file the path named before. Returns the path,
    /// or `None` for stdout (nothing to reopen). On an error the old file stays in use.
    pub fn reopen(&self) -> io::Result<Option<PathBuf>> {
        let AccessLog::File(path) = &self.out.target else {
            return Ok(None);
        };
        let file = open_append(path)?;
        let old = {
            let mut writer = self.out.writer.lock().unwrap_or_else(|p| p.into_inner());
            // Whole lines only are written, so nothing is buffered; flush in case a failed
            // write left a remainder, which belongs to the old file.
            let _ = writer.flush();
            std::mem::replace(&mut *writer, LineWriter::new(Box::new(file)))
        };
        // The old file closes outside the lock.
        drop(old);
        Ok(Some(path.clone()))
    }
}

fn open_append(path: &std::path::Path) -> io::Result<std::fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
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
            AccessLog::File(path) => Box::new(open_append(path)?),
        };
        Ok(Sink {
            out: Arc::new(Output {
                writer: Mutex::new(LineWriter::new(out)),
                target: target.clone(),
            }),
            trusted,
        })
    }

    /// A handle that reopens this sink's file (log rotation) from another thread.
    pub fn reopener(&self) -> Reopener {
        Reopener {
            out: Arc::clone(&self.out),
        }
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
        let mut out = self.out.writer.lock().unwrap_or_else(|p| p.into_inner());
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
    fn reopening_sends_later_lines_to_the_path_and_keeps_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let sink = Sink::open(&AccessLog::File(path.clone()), TrustedProxies::default()).unwrap();
        sink.write(b"one\n");
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        sink.write(b"two\n");
        assert_eq!(sink.reopener().reopen().unwrap(), Some(path.clone()));
        sink.write(b"three\nfour\n");
        let old = std::fs::read_to_string(dir.path().join("access.log.1")).unwrap();
        assert_eq!(old, "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\nfour\n");
        // A path that cannot be opened keeps the current file.
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(sink.reopener().reopen().is_err());
        let stdout = Sink::open(&AccessLog::Stdout, TrustedProxies::default()).unwrap();
        assert_eq!(stdout.reopener().reopen().unwrap(), None);
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
