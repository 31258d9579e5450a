//! The icon served for `/favicon.ico` when the root has none: browsers ask for it on every
//! page, and a 404 there fills logs and defeats caching.

/// A 16×16 32-bit ICO (a teal ring), 1150 bytes.
pub static EMBEDDED: &[u8] = include_bytes!("favicon.ico");

/// `Cache-Control` sent with the favicon, embedded or from the root.
pub const CACHE_CONTROL: &str = "public, max-age=86400";

/// `Last-Modified` of the embedded icon: fixed, so its validators are stable across builds.
pub const EMBEDDED_MTIME: i64 = 1_763_683_200; // 2025-11-21T00:00:00Z
