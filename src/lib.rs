//! ringserve: a static-file HTTP/1.1 origin server for Linux.
//!
//! Module map (dependencies point one way: `server → {http, fs}`, `http → fs`):
//! - [`http`]: the sans-I/O protocol core — bytes in, responses out.
//! - [`fs`]: safe path resolution and file metadata; no sockets.
//! - `server`: the I/O drivers (thread-per-connection today) and the public [`Server`] API.
//! - `sys`: the system calls std lacks; with the uring driver, the only home of `unsafe`.

mod config;
pub mod fs;
pub mod http;
mod server;
pub mod stats;
mod sys;

pub use config::{AccessLog, Config, DEFAULT_LISTEN, ListenAddr, Mode};
pub use http::forwarded::{Cidr, TrustedProxy};
pub use server::{Handle, Server, StartError, Trigger};
pub use sys::signal::{Termination, TerminationSignals};
