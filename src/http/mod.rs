//! The sans-I/O HTTP/1.1 core: bytes in ([`Conn::receive`]), responses out ([`Conn::poll`]).
//!
//! Owns: every protocol decision — parsing and framing, methods, paths to files, validators,
//! conditionals, ranges, the exact bytes of every head. Must not: touch sockets, read the
//! clock (time comes in through [`DateCache`]), or know which I/O mode drives it.

pub mod accept;
pub mod conditional;
pub mod conn;
pub mod date;
pub mod encoding;
pub mod etag;
pub mod forwarded;
pub mod header_rules;
pub mod lifecycle;
pub mod probe;
pub mod range;
pub mod request;
pub mod request_line;
pub mod response;
pub mod serve;
pub mod status;

pub use conn::{Closing, Conn, Step};
pub use conn::{Deadline, Timeouts};
pub use date::{DateCache, HttpDate};
pub use encoding::{AcceptEncoding, Precompressed};
pub use forwarded::{ClientAddr, Peer, TrustedProxies, TrustedProxy};
pub use header_rules::{HeaderRule, HeaderRules};
pub use lifecycle::Lifecycle;
pub use probe::Metrics;
pub use response::{After, Body, LogFields, Response};
pub use serve::{Listing, Logging, Site, SiteOptions};
pub use status::Status;
