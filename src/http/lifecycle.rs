//! Where the server is in its life, as the core sees it: serving, announcing a shutdown, or
//! draining. The drivers decide when it changes (`server::lifecycle`); the core only reads it.

/// Whether the server is shutting down: responses then close their connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Serving,
    /// A shutdown is coming (the drain delay): new connections are still accepted and their
    /// first request awaited, but the health path answers 503 and every response closes its
    /// connection, so a proxy moves away before the listeners stop.
    Announcing,
    /// The listeners are stopped: responses close their connection, idle keep-alive
    /// connections close; a connection not yet answered still gets its first request answered.
    Draining,
}
