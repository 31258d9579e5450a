//! ringserve: a static-file HTTP/1.1 origin server for Linux, usable as a program or embedded
//! in another Rust program.
//!
//! # Embedding
//!
//! Build a [`Config`], start it with [`Server::bind`] (which returns once the server accepts
//! connections), and keep the [`Handle`]: it tells the bound addresses
//! ([`Handle::local_addr`], [`Handle::unix_paths`]), starts a graceful shutdown
//! ([`Handle::shutdown`], or [`Handle::trigger`] from another thread) and waits for it to end
//! ([`Handle::join`]). The server runs on its own threads; the calling thread is free.
//!
//! ```
//! use ringserve::{Config, Server};
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let site = tempfile::tempdir()?;
//! std::fs::write(site.path().join("hello.txt"), "hello, world\n")?;
//!
//! // Port 0: the kernel picks a free port; `local_addr` reports it.
//! let handle = Server::bind(Config::new(site.path()).listen("127.0.0.1:0".parse()?))?;
//!
//! let mut stream = TcpStream::connect(handle.local_addr())?;
//! stream.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut reply = String::new();
//! stream.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("\r\n\r\nhello, world\n"));
//!
//! handle.shutdown(); // stop accepting; responses in flight finish
//! handle.join(); // wait for the end (at most the shutdown grace period)
//! # Ok(())
//! # }
//! ```
//!
//! Behind a reverse proxy, the same builder sets a Unix-socket listener
//! ([`Config::listen_unix`]), the proxies whose `X-Forwarded-For` is believed
//! ([`Config::trusted_proxy`]), and the health and status paths ([`Config::health_path`],
//! [`Config::status_path`]); `examples/embed.rs` is a complete program.
//!
//! # Modules
//!
//! Dependencies point one way: `server → {http, fs, stats}`, `stats → http`, `http → fs`,
//! `fs → sys`; `http` and `fs` never name `server` or `stats` (`tests/layering.rs` checks it).
//! - `server`: the public [`Server`] API over two I/O drivers: io_uring (the default; one
//!   pinned worker per core, each with its own ring) and threaded (one thread per connection,
//!   also the fallback where io_uring is unavailable); listeners, timeouts, shutdown, the
//!   access log.
//! - [`stats`]: the counters the drivers update; the core renders them through
//!   [`http::Metrics`] without depending on this module.
//! - [`http`]: the sans-I/O protocol core — bytes in, responses out.
//! - [`fs`]: safe path resolution, file metadata and the per-worker file cache; no sockets.
//! - `sys`: the system calls std lacks; with `server`'s io_uring driver, the only home of
//!   `unsafe`.

mod config;
pub mod fs;
pub mod http;
mod server;
pub mod stats;
mod sys;

pub use config::{AccessLog, Config, DEFAULT_DEFER_ACCEPT, DEFAULT_LISTEN, ListenAddr, Mode, Pin};
pub use http::encoding::Precompressed;
pub use http::forwarded::{Cidr, TrustedProxy};
pub use http::header_rules::{HeaderRule, RuleError};
pub use server::listen::{PassedAddr, PassedSocket, systemd_sockets};
pub use server::{Handle, Server, StartError, Trigger, raise_fd_limit};
pub use stats::Stats;
pub use sys::signal::{Signal, Signals};
