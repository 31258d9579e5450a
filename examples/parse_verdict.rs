//! ringserve's verdict on request heads, for the differential test against h11
//! (`scripts/h11_diff.py`, run by `scripts/test.sh`).
//!
//! ```sh
//! cargo run --example parse_verdict < heads.hex
//! ```
//!
//! Reads one request head per line, hex-encoded, and prints one line per head:
//! - `accept <method> <target> <1.0|1.1> <name>=<value>,…` — every byte string hex-encoded,
//!   the fields in order as the parser saw them (values without surrounding whitespace);
//! - `reject <error>` — the head is refused with the status of that `RequestError`;
//! - `partial` — no complete head yet.
//!
//! It calls the same parser the server runs (`http::request`), with the default 8 KiB limit.

use ringserve::http::request::{self, Parsed, Version};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

/// The server's default head limit (`Config::max_head`).
const MAX_HEAD: usize = 8 * 1024;

fn main() -> ExitCode {
    let stdin = io::stdin();
    let mut out = BufWriter::new(io::stdout().lock());
    for (n, line) in stdin.lock().lines().enumerate() {
        let verdict = match line {
            Ok(line) => match unhex(line.trim()) {
                Some(head) => verdict(&head),
                None => {
                    eprintln!("parse_verdict: line {}: not hex", n + 1);
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("parse_verdict: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = writeln!(out, "{verdict}") {
            eprintln!("parse_verdict: writing stdout: {e}");
            return ExitCode::FAILURE;
        }
    }
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parse_verdict: writing stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verdict(head: &[u8]) -> String {
    let mut fields = Vec::new();
    match request::parse_visiting(head, MAX_HEAD, |name, value| fields.push((name, value))) {
        Ok(Parsed::Complete { request, .. }) => {
            let version = match request.version {
                Version::Http10 => "1.0",
                Version::Http11 => "1.1",
            };
            let mut line = format!(
                "accept {} {} {version} ",
                hex(request.method_raw.as_bytes()),
                hex(request.target_raw.as_bytes())
            );
            let fields: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{}={}", hex(name), hex(value)))
                .collect();
            line.push_str(&fields.join(","));
            line
        }
        Ok(Parsed::Partial) => "partial".to_string(),
        Err(e) => format!("reject {e:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
