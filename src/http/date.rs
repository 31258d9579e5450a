//! HTTP dates (RFC 9110 §5.6.7): formatting IMF-fixdate, parsing all three accepted forms,
//! and a per-worker cache so `Date` is formatted at most once a second.
//!
//! SKELETON STUB — to be implemented (owner: helper A). Signatures are the contract.

use std::time::SystemTime;

/// A point in time with the one-second resolution HTTP dates have: seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpDate(u64);

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

impl HttpDate {
    pub const fn from_unix(secs: u64) -> Self {
        HttpDate(secs)
    }
    pub const fn unix(self) -> u64 {
        self.0
    }
    /// Times before the epoch clamp to the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        HttpDate(t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
    /// Parses IMF-fixdate, RFC 850 and asctime forms; `None` for anything else.
    pub fn parse(_bytes: &[u8]) -> Option<HttpDate> {
        unimplemented!("helper A")
    }
    /// Appends the IMF-fixdate form (exactly [`IMF_FIXDATE_LEN`] bytes).
    pub fn write_imf(self, _out: &mut Vec<u8>) {
        unimplemented!("helper A")
    }
    /// Appends the Common Log Format timestamp `21/Nov/2026:23:21:28 +0000` (always UTC).
    pub fn write_clf(self, _out: &mut Vec<u8>) {
        unimplemented!("helper A")
    }
}

/// The current `Date` value, reformatted only when the second changes. One per worker.
#[derive(Debug)]
pub struct DateCache {
    now: HttpDate,
    text: [u8; IMF_FIXDATE_LEN],
}

impl DateCache {
    pub fn new(_now: SystemTime) -> Self {
        unimplemented!("helper A")
    }
    /// Moves the clock; reformats only if the second changed.
    pub fn update(&mut self, _now: SystemTime) {
        unimplemented!("helper A")
    }
    pub fn now(&self) -> HttpDate {
        self.now
    }
    /// The IMF-fixdate text of [`DateCache::now`].
    pub fn imf(&self) -> &[u8] {
        &self.text
    }
}
