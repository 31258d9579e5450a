//! Every system call the standard library does not wrap. With `server/uring`, the only place
//! `unsafe` may appear; each block says why it is sound.

pub mod activation;
pub mod cpu;
pub mod fs;
pub mod inotify;
pub mod net;
pub mod rlimit;
pub mod signal;
