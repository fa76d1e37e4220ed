//! RFC 3339 date-times (`2020-12-11T22:38:32.125Z`), as STAC requires them,
//! parsed strictly and turned into microseconds since the Unix epoch.

use std::fmt::Write;

/// Parses an RFC 3339 date-time (section 5.6: `T` or `t` between date and
/// time, `Z`/`z` or `±HH:MM` offset) into UTC microseconds since 1970,
/// rounding sub-microsecond fractions to the nearest microsecond.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let bad = |what: &str| format!("'{s}' is not an RFC 3339 date-time ({what})");
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        } else {
            None
        }
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad("expected digits in YYYY-MM-DDTHH:MM:SS"));
    };
    if year == 0 {
        return Err(bad("year 0000 is not supported"));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    // 60 is a leap second; it counts as the next second, as PostgreSQL does.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("time out of range"));
    }
    let mut i = 19;
    let mut micros = 0i64;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad("no digits after the decimal point"));
        }
        let digits = &b[start..i];
        for k in 0..7 {
            let d = digits.get(k).map_or(0, |d| i64::from(d - b'0'));
            if k < 6 {
                micros = micros * 10 + d;
            } else if d >= 5 {
                micros += 1;
            }
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (Some(h), Some(m)) = (num(i + 1..i + 3), num(i + 4..i + 6)) else {
                return Err(bad("bad offset"));
            };
            if h > 23 || m > 59 {
                return Err(bad("offset out of range"));
            }
            let m = h * 60 + m;
            if *sign == b'-' { -m } else { m }
        }
        _ => return Err(bad("expected Z or an offset like +02:00 at the end")),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000_000 + micros)
}

/// Appends the instant as PostgreSQL `timestamptz` input in UTC
/// (`2020-12-11 22:38:32.125+00`), whatever the session's time zone.
pub fn write_timestamptz(out: &mut Vec<u8>, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(32);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        let _ = write!(s, ".{frac:06}");
    }
    s.push_str("+00");
    out.extend_from_slice(s.as_bytes());
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(micros: i64) -> String {
        let mut v = Vec::new();
        write_timestamptz(&mut v, micros);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn parses_and_normalizes_to_utc() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        let t = parse_rfc3339("2020-12-11T22:38:32.125Z").unwrap();
        assert_eq!(text(t), "2020-12-11 22:38:32.125000+00");
        let t = parse_rfc3339("2020-12-12t01:38:32.125+03:00").unwrap();
        assert_eq!(text(t), "2020-12-11 22:38:32.125000+00");
        let t = parse_rfc3339("2000-02-29T23:00:00-02:30").unwrap();
        assert_eq!(text(t), "2000-03-01 01:30:00+00");
        assert_eq!(
            text(parse_rfc3339("1969-12-31T23:59:59.5Z").unwrap()),
            "1969-12-31 23:59:59.500000+00"
        );
        // Nanoseconds round to the nearest microsecond.
        assert_eq!(
            parse_rfc3339("2020-01-01T00:00:00.0000015Z").unwrap() % 1_000_000,
            2
        );
        // A leap second is the next second.
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z").unwrap(),
            parse_rfc3339("2017-01-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn refuses_what_rfc3339_does_not_allow() {
        for bad in [
            "2020-12-11",
            "2020-12-11 22:38:32Z",
            "2020-12-11T22:38:32",
            "2020-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-12-11T24:00:00Z",
            "2020-12-11T22:38:32.Z",
            "2020-12-11T22:38:32+0200",
            "0000-01-01T00:00:00Z",
            "20201211T223832Z",
            "2020-12-11T22:38:32Zjunk",
            "2020-1a-11T22:38:32Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000, -1, 0, 1, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
