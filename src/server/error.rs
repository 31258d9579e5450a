//! Why a server could not start, as one line fit for a terminal.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server could not start. Each variant displays as one line fit for a terminal.
#[derive(Debug)]
pub enum StartError {
    /// The root directory is missing, unreadable or not a directory.
    Root { path: PathBuf, source: io::Error },
    /// A listening address could not be bound.
    Bind { addr: SocketAddr, source: io::Error },
    /// A Unix socket path could not be bound (including: another process listens on it).
    BindUnix { path: PathBuf, source: io::Error },
    /// The access log file could not be opened.
    AccessLog { path: PathBuf, source: io::Error },
    /// A configuration value is out of range.
    Invalid(String),
    /// Threads could not be started.
    Spawn(io::Error),
    /// A passed listening socket (systemd's `LISTEN_FDS`, or [`crate::Config::listen_passed`])
    /// is unusable: not open, not a socket, not listening, not a stream.
    Passed(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Root { path, source } => {
                write!(f, "cannot serve {}: {}", path.display(), plain(source))
            }
            StartError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {}", plain(source))
            }
            StartError::BindUnix { path, source } => {
                write!(
                    f,
                    "cannot listen on unix:{}: {}",
                    path.display(),
                    plain(source)
                )
            }
            StartError::AccessLog { path, source } => {
                write!(
                    f,
                    "cannot open access log {}: {}",
                    path.display(),
                    plain(source)
                )
            }
            StartError::Invalid(why) => f.write_str(why),
            StartError::Spawn(e) => write!(f, "cannot start threads: {}", plain(e)),
            StartError::Passed(why) => write!(f, "cannot use a passed socket: {why}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Root { source, .. }
            | StartError::Bind { source, .. }
            | StartError::BindUnix { source, .. }
            | StartError::AccessLog { source, .. }
            | StartError::Spawn(source) => Some(source),
            StartError::Invalid(_) | StartError::Passed(_) => None,
        }
    }
}

/// `Address already in use (os error 98)` → `address already in use`.
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
