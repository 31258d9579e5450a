//! The sans-I/O HTTP/1.1 core.

pub mod conditional;
pub mod date;
pub mod etag;
pub mod range;
