//! The one rule by which `host` reads RFC 3339 date-times: in items and
//! collections it loads, in search requests, and in plugins (through the SDK).
//!
//! - `YYYY-MM-DD`, then `T`, `t` or a space (RFC 3339 §5.6 allows the space
//!   "for the sake of readability"), then `HH:MM:SS`, an optional fraction of
//!   any length, then `Z`, `z` or an offset `±HH:MM`.
//! - Years 0001 to 9999, real calendar days, hours 00–23, minutes 00–59,
//!   seconds 00–60; a leap second `:60` is the next second, and may carry a
//!   fraction only if it rounds to nothing (as PostgreSQL reads it).
//! - The fraction is rounded to the microsecond exactly as PostgreSQL rounds
//!   it: the fraction is read as a double and `rint(fraction * 1e6)` taken
//!   (nearest, ties to even). So the instant computed here is the instant
//!   PostgreSQL stores for the same text, digit for digit.
//!
//! ```
//! assert_eq!(rfc3339::parse("1970-01-01T00:00:01.5Z"), Ok(1_500_000));
//! assert_eq!(rfc3339::parse("1970-01-01 02:00:00+02:00"), Ok(0));
//! // 0.0000005 s is below half a microsecond as a double: PostgreSQL stores 0.
//! assert_eq!(rfc3339::parse("1970-01-01T00:00:00.0000005Z"), Ok(0));
//! assert_eq!(rfc3339::format(1_500_000), "1970-01-01T00:00:01.500000Z");
//! ```

use std::fmt;

/// Microseconds in a second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Why a text is not a date-time (or date) by the rule above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not shaped `YYYY-MM-DD[T ]HH:MM:SS`.
    Shape,
    /// Year 0000.
    Year,
    /// Month outside 01–12.
    Month,
    /// Day outside the month.
    Day,
    /// Hour, minute or second out of range.
    Time,
    /// A `.` with no digits after it.
    Fraction,
    /// A leap second with a fraction that does not round to nothing.
    LeapSecond,
    /// No `Z` or offset at the end, or something after it.
    Zone,
    /// An offset out of range.
    Offset,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Shape => "expected YYYY-MM-DDTHH:MM:SS",
            Error::Year => "year 0000 is not supported",
            Error::Month => "month out of range",
            Error::Day => "day out of range",
            Error::Time => "time out of range",
            Error::Fraction => "no digits after the decimal point",
            Error::LeapSecond => "a leap second cannot have a fraction",
            Error::Zone => "expected Z or an offset like +02:00 at the end",
            Error::Offset => "offset out of range",
        })
    }
}

impl std::error::Error for Error {}

/// Parses a date-time into microseconds since 1970-01-01T00:00:00Z.
pub fn parse(s: &str) -> Result<i64, Error> {
    let b = s.as_bytes();
    let days = date(b.get(..10).ok_or(Error::Shape)?)?;
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(Error::Shape);
    }
    let (hour, minute, second) = (
        digits(&b[11..13]).ok_or(Error::Shape)?,
        digits(&b[14..16]).ok_or(Error::Shape)?,
        b.get(17..19).and_then(digits).ok_or(Error::Shape)?,
    );
    if hour > 23 || minute > 59 || second > 60 {
        return Err(Error::Time);
    }
    let mut i = 19;
    let mut micros = 0;
    if sep(i, b".") {
        let start = i;
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start + 1 {
            return Err(Error::Fraction);
        }
        micros = fraction_micros(&s[start..i]);
    }
    if second == 60 && micros % MICROS_PER_SEC != 0 {
        return Err(Error::LeapSecond);
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (Some(h), Some(m)) = (digits(&b[i + 1..i + 3]), digits(&b[i + 4..i + 6])) else {
                return Err(Error::Offset);
            };
            if h > 23 || m > 59 {
                return Err(Error::Offset);
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return Err(Error::Zone),
    };
    let seconds = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * MICROS_PER_SEC + micros)
}

/// Parses a `YYYY-MM-DD` date into days since 1970-01-01.
pub fn parse_date(s: &str) -> Result<i64, Error> {
    if s.len() != 10 {
        return Err(Error::Shape);
    }
    date(s.as_bytes())
}

/// The instant as RFC 3339 text in UTC: `2020-12-11T22:38:32Z`, with six
/// fraction digits when it has a fraction. [`parse`] reads it back exactly.
pub fn format(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let rem = secs.rem_euclid(SECS_PER_DAY);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        out.push_str(&format!(".{frac:06}"));
    }
    out.push('Z');
    out
}

/// The fraction `.ddd` in microseconds, as PostgreSQL computes it:
/// `rint(strtod(".ddd") * 1e6)` (both correctly rounded, ties to even).
fn fraction_micros(frac: &str) -> i64 {
    let f: f64 = frac.parse().expect("a dot and digits read as a float");
    (f * 1e6).round_ties_even() as i64
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn date(b: &[u8]) -> Result<i64, Error> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(Error::Shape);
    }
    let (y, m, d) = match (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(Error::Shape),
    };
    if y == 0 {
        return Err(Error::Year);
    }
    if !(1..=12).contains(&m) {
        return Err(Error::Month);
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err(Error::Day);
    }
    Ok(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_utc() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        let t = parse("2020-12-11T22:38:32.125Z").unwrap();
        assert_eq!(format(t), "2020-12-11T22:38:32.125000Z");
        assert_eq!(parse("2020-12-12t01:38:32.125+03:00"), Ok(t));
        assert_eq!(parse("2020-12-11 22:38:32.125z"), Ok(t));
        assert_eq!(
            format(parse("2000-02-29T23:00:00-02:30").unwrap()),
            "2000-03-01T01:30:00Z"
        );
        assert_eq!(
            format(parse("1969-12-31T23:59:59.5Z").unwrap()),
            "1969-12-31T23:59:59.500000Z"
        );
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
        assert_eq!(
            parse("2016-12-31T23:59:60.0000001Z"),
            parse("2017-01-01T00:00:00Z")
        );
        assert_eq!(parse("2016-12-31T23:59:60.5Z"), Err(Error::LeapSecond));
        assert_eq!(parse_date("2000-03-01"), Ok(11_017));
    }

    /// What PostgreSQL 15 stores for these fractions (`SELECT to_char(
    /// s::timestamptz, 'US')`), ties included: the rule is its rule.
    #[test]
    fn fractions_round_as_postgresql_rounds_them() {
        for (frac, micros) in [
            (".0000005", 0),
            (".0000015", 2),
            (".0000025", 2),
            (".0000035", 4),
            (".9999995", 1_000_000),
            (".12345650000001", 123_457),
            (".1234565", 123_456),
            (".1234575", 123_458),
            (".5", 500_000),
            (".000001", 1),
        ] {
            let t = parse(&format!("1970-01-01T00:00:00{frac}Z")).unwrap();
            assert_eq!(t, micros, "{frac}");
        }
        assert_eq!(
            format(parse("2020-12-31T23:59:59.9999999Z").unwrap()),
            "2021-01-01T00:00:00Z"
        );
    }

    #[test]
    fn refuses_what_the_rule_does_not_allow() {
        for (bad, why) in [
            ("2020-12-11", Error::Shape),
            ("2020-12-11T22:38:32", Error::Zone),
            ("2020-13-01T00:00:00Z", Error::Month),
            ("2021-02-29T00:00:00Z", Error::Day),
            ("2020-12-11T24:00:00Z", Error::Time),
            ("2020-12-11T22:38:32.Z", Error::Fraction),
            ("2020-12-11T22:38:32+0200", Error::Zone),
            ("2020-12-11T22:38:32+24:00", Error::Offset),
            ("0000-01-01T00:00:00Z", Error::Year),
            ("20201211T223832Z", Error::Shape),
            ("2020-12-11T22:38:32Zjunk", Error::Zone),
            ("2020-1a-11T22:38:32Z", Error::Shape),
            ("2020-12-11_22:38:32Z", Error::Shape),
            ("2020-12-11T22:38", Error::Shape),
            ("", Error::Shape),
            ("2020-12-11T22:38:32Z'; drop table x", Error::Zone),
        ] {
            assert_eq!(parse(bad), Err(why), "{bad}");
        }
        assert_eq!(parse_date("2020-1-01"), Err(Error::Shape));
        assert_eq!(parse_date("2020-01-011"), Err(Error::Shape));
    }

    #[test]
    fn text_round_trips() {
        for t in [
            0,
            1,
            -1,
            951_868_800_000_000,
            253_402_300_799_999_999,
            -62_135_596_800_000_000,
        ] {
            assert_eq!(parse(&format(t)), Ok(t), "{}", format(t));
        }
        for days in [-800_000, -1, 0, 1, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
