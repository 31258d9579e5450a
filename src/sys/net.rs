//! Socket system calls.
