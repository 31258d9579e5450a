//! HTTP integration tests: raw bytes over real loopback sockets against a running server, each
//! case once per I/O mode (see `each_mode!` in `common`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod basics;
mod conditional;
mod connection;
mod deploy;
mod errors;
mod fallback;
mod faults;
mod favicon;
mod flood;
mod header_rules;
mod limits;
mod methods;
mod modes;
mod notfound;
mod paths;
mod precompressed;
mod proxy;
mod ranges;
mod smuggling;
mod stress;
