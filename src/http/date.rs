//! HTTP dates (RFC 9110 §5.6.7): formatting IMF-fixdate, parsing all three accepted forms,
//! and a per-worker cache so `Date` is formatted at most once a second.
//!
//! The rule: senders produce only IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); recipients
//! accept IMF-fixdate, the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and the
//! asctime form (`Sun Nov  6 08:49:37 1994`). Anything else is not a date (`None`), and the
//! caller ignores the header that carried it.
//!
//! Choices this module makes, where the RFC leaves room:
//! - Names of days and months are matched case-sensitively, as the grammar spells them.
//! - The day-of-week name must be the right *kind* for the form (`Sun` vs `Sunday`) but is not
//!   checked against the date: a wrong weekday is a client bug that changes nothing we compute.
//! - RFC 850 two-digit years use a fixed pivot, not the clock: `00`–`69` → 20xx, `70`–`99` →
//!   19xx. Years before 1970 cannot be represented anyway, and a fixed pivot keeps parsing
//!   deterministic (no `SystemTime::now()` in the sans-I/O core). RFC 9110's "more than 50
//!   years in the future" rule gives the same answer for every year until 2020 + 50.
//! - A leap second (`:60`) is clamped to `:59`: Unix time has no leap seconds, and the clamp
//!   keeps the value ordered correctly against its neighbours.
//! - Dates before 1970-01-01 and after 9999-12-31 are `None`.
//!
//! Calendar arithmetic is done here by hand (proleptic Gregorian, days counted from the epoch);
//! this module owns no clock — callers pass the time in.

use std::time::{Instant, SystemTime};

/// A point in time with the one-second resolution HTTP dates have: seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpDate(u64);

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// Length of a Common Log Format timestamp, e.g. `21/Nov/2026:23:21:28 +0000`.
pub const CLF_LEN: usize = 26;

/// The last second a four-digit year can name: 9999-12-31T23:59:59Z. Later instants are
/// written as this one so that [`HttpDate::write_imf`] always emits [`IMF_FIXDATE_LEN`] bytes.
pub const MAX_UNIX: u64 = 253_402_300_799;

const SECS_PER_DAY: u64 = 86_400;

const DAY_SHORT: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const DAY_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A broken-down UTC time. `month` is 1..=12, `day` 1..=31.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date with `year >= 1970`.
///
/// Years are shifted to start in March so that the leap day is the last day of the shifted
/// year; a 400-year era then has exactly 146 097 days.
fn days_from_civil(year: u64, month: u8, day: u8) -> u64 {
    let m = u64::from(month);
    let d = u64::from(day);
    // Shifted year: Jan and Feb belong to the previous March-based year. year >= 1970, no underflow.
    let y = if m <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400; // 0..=399
    let mp = (m + 9) % 12; // March = 0 .. February = 11
    let doy = (153 * mp + 2) / 5 + d - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    // 719 468 = days from 0000-03-01 to 1970-01-01.
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of `days` since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March-based
    let day = doy - (153 * mp + 2) / 5 + 1; // 1..=31
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // 1..=12
    let year = era * 400 + yoe + u64::from(month <= 2);
    // Both fit in u8 by the ranges noted above.
    (year, month as u8, day as u8)
}

impl Civil {
    fn from_unix(secs: u64) -> Self {
        let secs = secs.min(MAX_UNIX);
        let (year, month, day) = civil_from_days(secs / SECS_PER_DAY);
        let tod = secs % SECS_PER_DAY;
        Civil {
            year,
            month,
            day,
            // tod < 86 400, so each field is < 60 (or < 24).
            hour: (tod / 3600) as u8,
            minute: (tod / 60 % 60) as u8,
            second: (tod % 60) as u8,
        }
    }

    /// Checks ranges and converts; `None` before the epoch or for impossible fields.
    fn to_unix(self) -> Option<u64> {
        let ok = (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60;
        if !ok {
            return None;
        }
        // Leap second clamp: see the module doc.
        let second = u64::from(self.second.min(59));
        let days = days_from_civil(self.year, self.month, self.day);
        Some(
            days * SECS_PER_DAY
                + u64::from(self.hour) * 3600
                + u64::from(self.minute) * 60
                + second,
        )
    }
}

/// A tiny cursor over the input; every step either consumes exactly what it expects or fails.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.rest = self.rest.strip_prefix(s)?;
        Some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u64> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        let mut v = 0u64;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(b - b'0');
        }
        self.rest = tail;
        Some(v)
    }

    fn two(&mut self) -> Option<u8> {
        // Two digits are at most 99.
        self.digits(2).map(|v| v as u8)
    }

    /// One of the names in `names`; returns its index.
    fn one_of(&mut self, names: &[&[u8]]) -> Option<usize> {
        let i = names.iter().position(|n| self.rest.starts_with(n))?;
        self.rest = self.rest.get(names.get(i)?.len()..)?;
        Some(i)
    }

    fn month(&mut self) -> Option<u8> {
        let names: [&[u8]; 12] = MONTHS.map(|m| m.as_slice());
        // Index < 12.
        self.one_of(&names).map(|i| i as u8 + 1)
    }

    /// `HH:MM:SS`
    fn time_of_day(&mut self) -> Option<(u8, u8, u8)> {
        let h = self.two()?;
        self.lit(b":")?;
        let m = self.two()?;
        self.lit(b":")?;
        let s = self.two()?;
        Some((h, m, s))
    }

    fn end(&self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf(c: &mut Cursor<'_>) -> Option<Civil> {
    let names: [&[u8]; 7] = DAY_SHORT.map(|d| d.as_slice());
    c.one_of(&names)?;
    c.lit(b", ")?;
    let day = c.two()?;
    c.lit(b" ")?;
    let month = c.month()?;
    c.lit(b" ")?;
    let year = c.digits(4)?;
    c.lit(b" ")?;
    let (hour, minute, second) = c.time_of_day()?;
    c.lit(b" GMT")?;
    c.end()?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850(c: &mut Cursor<'_>) -> Option<Civil> {
    c.one_of(&DAY_LONG)?;
    c.lit(b", ")?;
    let day = c.two()?;
    c.lit(b"-")?;
    let month = c.month()?;
    c.lit(b"-")?;
    let yy = c.digits(2)?;
    // Fixed pivot; see the module doc.
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    c.lit(b" ")?;
    let (hour, minute, second) = c.time_of_day()?;
    c.lit(b" GMT")?;
    c.end()?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `Sun Nov  6 08:49:37 1994` (the day is two digits or a space and one digit).
fn parse_asctime(c: &mut Cursor<'_>) -> Option<Civil> {
    let names: [&[u8]; 7] = DAY_SHORT.map(|d| d.as_slice());
    c.one_of(&names)?;
    c.lit(b" ")?;
    let month = c.month()?;
    c.lit(b" ")?;
    let day = if c.lit(b" ").is_some() {
        // One digit is at most 9.
        c.digits(1)? as u8
    } else {
        c.two()?
    };
    c.lit(b" ")?;
    let (hour, minute, second) = c.time_of_day()?;
    c.lit(b" ")?;
    let year = c.digits(4)?;
    c.end()?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// Appends `HH:MM:SS`.
fn push_time(out: &mut Vec<u8>, c: &Civil) {
    push_2(out, c.hour);
    out.push(b':');
    push_2(out, c.minute);
    out.push(b':');
    push_2(out, c.second);
}

fn push_2(out: &mut Vec<u8>, v: u8) {
    out.push(b'0' + v / 10 % 10);
    out.push(b'0' + v % 10);
}

fn push_4(out: &mut Vec<u8>, v: u64) {
    // Callers clamp to year 9999, so `v % 10` etc. fit a digit; the modulo keeps it total.
    for div in [1000, 100, 10, 1] {
        out.push(b'0' + (v / div % 10) as u8);
    }
}

impl HttpDate {
    pub const fn from_unix(secs: u64) -> Self {
        HttpDate(secs)
    }
    pub const fn unix(self) -> u64 {
        self.0
    }
    /// Times before the epoch clamp to the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        HttpDate(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
    /// Parses IMF-fixdate, RFC 850 and asctime forms; `None` for anything else.
    ///
    /// The input must be exactly the date: callers trim the field value's surrounding
    /// whitespace first.
    pub fn parse(bytes: &[u8]) -> Option<HttpDate> {
        // The three forms differ by what follows the day name: ", " + digit (IMF), a longer
        // name + ", " (RFC 850), or " " + month (asctime). Each parser rejects the others.
        let civil = parse_imf(&mut Cursor { rest: bytes })
            .or_else(|| parse_rfc850(&mut Cursor { rest: bytes }))
            .or_else(|| parse_asctime(&mut Cursor { rest: bytes }))?;
        civil.to_unix().map(HttpDate)
    }
    /// Appends the IMF-fixdate form (exactly [`IMF_FIXDATE_LEN`] bytes).
    ///
    /// Instants after [`MAX_UNIX`] are written as [`MAX_UNIX`].
    pub fn write_imf(self, out: &mut Vec<u8>) {
        let c = Civil::from_unix(self.0);
        // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
        let weekday = (self.0.min(MAX_UNIX) / SECS_PER_DAY + 4) % 7;
        out.reserve(IMF_FIXDATE_LEN);
        out.extend_from_slice(DAY_SHORT[weekday as usize]);
        out.extend_from_slice(b", ");
        push_2(out, c.day);
        out.push(b' ');
        // civil_from_days yields month in 1..=12, so the index is in bounds.
        out.extend_from_slice(MONTHS[usize::from(c.month - 1)]);
        out.push(b' ');
        push_4(out, c.year);
        out.push(b' ');
        push_time(out, &c);
        out.extend_from_slice(b" GMT");
    }
    /// Appends the Common Log Format timestamp `21/Nov/2026:23:21:28 +0000` (always UTC).
    ///
    /// Instants after [`MAX_UNIX`] are written as [`MAX_UNIX`].
    pub fn write_clf(self, out: &mut Vec<u8>) {
        let c = Civil::from_unix(self.0);
        out.reserve(CLF_LEN);
        push_2(out, c.day);
        out.push(b'/');
        out.extend_from_slice(MONTHS[usize::from(c.month - 1)]);
        out.push(b'/');
        push_4(out, c.year);
        out.push(b':');
        push_time(out, &c);
        out.extend_from_slice(b" +0000");
    }

    fn imf_array(self) -> [u8; IMF_FIXDATE_LEN] {
        let mut v = Vec::with_capacity(IMF_FIXDATE_LEN);
        self.write_imf(&mut v);
        let mut text = [0u8; IMF_FIXDATE_LEN];
        // write_imf always emits exactly IMF_FIXDATE_LEN bytes (tested).
        text.copy_from_slice(&v);
        text
    }
}

/// A worker's clock as the core sees it: the current `Date` value, reformatted only when the
/// second changes, and the monotonic instant of the same reading (deadlines run on it). One
/// per worker; the driver moves it, the core only reads it.
#[derive(Debug)]
pub struct DateCache {
    now: HttpDate,
    text: [u8; IMF_FIXDATE_LEN],
    instant: Instant,
}

impl DateCache {
    /// A clock reading `wall`, with the monotonic instant taken now.
    pub fn new(wall: SystemTime) -> Self {
        DateCache::at(wall, Instant::now())
    }

    /// A clock reading `wall` and `instant`.
    pub fn at(wall: SystemTime, instant: Instant) -> Self {
        let now = HttpDate::from_system_time(wall);
        DateCache {
            now,
            text: now.imf_array(),
            instant,
        }
    }

    /// Moves the clock; reformats only if the second changed.
    pub fn update(&mut self, wall: SystemTime, instant: Instant) {
        self.instant = instant;
        let now = HttpDate::from_system_time(wall);
        if now != self.now {
            self.now = now;
            self.text = now.imf_array();
        }
    }

    /// The monotonic time of the last reading.
    pub fn instant(&self) -> Instant {
        self.instant
    }

    pub fn now(&self) -> HttpDate {
        self.now
    }
    /// The IMF-fixdate text of [`DateCache::now`].
    pub fn imf(&self) -> &[u8] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn imf(secs: u64) -> String {
        let mut v = Vec::new();
        HttpDate::from_unix(secs).write_imf(&mut v);
        String::from_utf8(v).unwrap()
    }

    fn clf(secs: u64) -> String {
        let mut v = Vec::new();
        HttpDate::from_unix(secs).write_clf(&mut v);
        String::from_utf8(v).unwrap()
    }

    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn known_vectors() {
        let cases: [(u64, &str); 8] = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (NOV_6_1994, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (MAX_UNIX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, text) in cases {
            assert_eq!(imf(secs), text, "secs {secs}");
            assert_eq!(
                HttpDate::parse(text.as_bytes()),
                Some(HttpDate(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn beyond_year_9999_clamps_and_keeps_length() {
        for secs in [MAX_UNIX + 1, u64::MAX] {
            assert_eq!(imf(secs), "Fri, 31 Dec 9999 23:59:59 GMT");
            assert_eq!(clf(secs).len(), CLF_LEN);
        }
    }

    #[test]
    fn clf_format() {
        assert_eq!(clf(NOV_6_1994), "06/Nov/1994:08:49:37 +0000");
        assert_eq!(clf(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf(1_795_303_288), "21/Nov/2026:23:21:28 +0000");
    }

    #[test]
    fn parse_table() {
        let cases: [(&str, Option<u64>); 43] = [
            // The three forms of the same instant.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(NOV_6_1994)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(NOV_6_1994)),
            ("Sun Nov  6 08:49:37 1994", Some(NOV_6_1994)),
            ("Sun Nov 06 08:49:37 1994", Some(NOV_6_1994)),
            // Weekday is not checked against the date.
            ("Mon, 06 Nov 1994 08:49:37 GMT", Some(NOV_6_1994)),
            ("Wednesday, 06-Nov-94 08:49:37 GMT", Some(NOV_6_1994)),
            // RFC 850 pivot: 00-69 → 20xx, 70-99 → 19xx.
            ("Thursday, 01-Jan-70 00:00:00 GMT", Some(0)),
            ("Saturday, 01-Jan-00 00:00:00 GMT", Some(946_684_800)),
            ("Tuesday, 31-Dec-69 23:59:59 GMT", Some(3_155_759_999)),
            // Leap second clamps to :59.
            ("Wed, 31 Dec 2008 23:59:60 GMT", Some(1_230_767_999)),
            ("Wed, 31 Dec 2008 23:59:59 GMT", Some(1_230_767_999)),
            // Leap days.
            ("Thu, 29 Feb 2024 12:00:00 GMT", Some(1_709_208_000)),
            ("Tue Feb 29 00:00:00 2000", Some(951_782_400)),
            // Wrong day-name kind for the form.
            ("Sunday, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06-Nov-94 08:49:37 GMT", None),
            ("Sunday Nov  6 08:49:37 1994", None),
            ("Sux, 06 Nov 1994 08:49:37 GMT", None),
            // Case matters.
            ("sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 gmt", None),
            // Bad month, out-of-range fields.
            ("Sun, 06 Nox 1994 08:49:37 GMT", None),
            ("Sun, 00 Nov 1994 08:49:37 GMT", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 29 Feb 2023 08:49:37 GMT", None),
            ("Sun, 29 Feb 1900 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:60:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:61 GMT", None),
            // Before the epoch.
            ("Wed, 31 Dec 1969 23:59:59 GMT", None),
            ("Sun Nov  6 08:49:37 1960", None),
            // Shape errors and trailing garbage.
            ("Sun, 06 Nov 1994 08:49:37 GMT ", None),
            (" Sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 94 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 8:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37", None),
            ("Sun Nov  6 08:49:37 1994 GMT", None),
            ("Sun Nov 6 08:49:37 1994", None),
            ("Sunday, 06-Nov-1994 08:49:37 GMT", None),
            ("Sun, +6 Nov 1994 08:49:37 GMT", None),
            ("", None),
            ("1994-11-06T08:49:37Z", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                HttpDate::parse(text.as_bytes()),
                want.map(HttpDate),
                "{text:?}"
            );
        }
    }

    #[test]
    fn date_cache_reformats_only_on_new_second() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(NOV_6_1994);
        let mut cache = DateCache::new(t0 + Duration::from_millis(100));
        assert_eq!(cache.imf(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.now(), HttpDate(NOV_6_1994));

        cache.update(t0 + Duration::from_millis(999), Instant::now());
        assert_eq!(cache.imf(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.now(), HttpDate(NOV_6_1994));

        cache.update(t0 + Duration::from_secs(1), Instant::now());
        assert_eq!(cache.imf(), b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(cache.now(), HttpDate(NOV_6_1994 + 1));

        // A clock that steps back still gets the right text.
        cache.update(t0, Instant::now());
        assert_eq!(cache.imf(), b"Sun, 06 Nov 1994 08:49:37 GMT");

        // Before the epoch clamps to the epoch.
        let early = DateCache::new(SystemTime::UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(early.imf(), b"Thu, 01 Jan 1970 00:00:00 GMT");
    }

    proptest! {
        #[test]
        fn imf_round_trips(secs in 0u64..=MAX_UNIX) {
            let text = imf(secs);
            prop_assert_eq!(text.len(), IMF_FIXDATE_LEN);
            prop_assert_eq!(HttpDate::parse(text.as_bytes()), Some(HttpDate(secs)));
            prop_assert_eq!(clf(secs).len(), CLF_LEN);
        }

        #[test]
        fn asctime_and_rfc850_agree_with_imf(secs in 0u64..=MAX_UNIX) {
            let c = Civil::from_unix(secs);
            let wd = ((secs / SECS_PER_DAY + 4) % 7) as usize;
            let day = String::from_utf8(DAY_SHORT[wd].to_vec()).unwrap();
            let mon = String::from_utf8(MONTHS[usize::from(c.month - 1)].to_vec()).unwrap();
            let asc = format!(
                "{day} {mon} {:>2} {:02}:{:02}:{:02} {:04}",
                c.day, c.hour, c.minute, c.second, c.year
            );
            prop_assert_eq!(HttpDate::parse(asc.as_bytes()), Some(HttpDate(secs)));
            if (1970..2070).contains(&c.year) {
                let long = String::from_utf8(DAY_LONG[wd].to_vec()).unwrap();
                let rfc850 = format!(
                    "{long}, {:02}-{mon}-{:02} {:02}:{:02}:{:02} GMT",
                    c.day, c.year % 100, c.hour, c.minute, c.second
                );
                prop_assert_eq!(HttpDate::parse(rfc850.as_bytes()), Some(HttpDate(secs)));
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = HttpDate::parse(&bytes);
        }

        #[test]
        fn days_round_trip(days in 0u64..=2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
