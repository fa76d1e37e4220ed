//! RFC 3339 instants, dates and intervals, checked in Rust so that a bad
//! value is reported with the place it came from. The original text is what
//! goes to PostgreSQL (as a bind parameter cast to `timestamptz`); the parsed
//! form is only used to validate and to compare interval ends.

use super::SearchError;

/// A valid RFC 3339 date-time, e.g. `2011-08-25T00:00:00Z` or `2011-08-25T02:00:00.5+02:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instant {
    /// The text as given (PostgreSQL parses it).
    pub text: String,
    /// Microseconds since 1970-01-01T00:00:00Z (sub-microsecond digits dropped), for ordering.
    pub micros: i64,
}

/// One end of an interval; `None` is open (`..` or empty).
pub type End = Option<Instant>;

/// A closed or half-open interval of time; both ends are inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub start: End,
    pub end: End,
}

impl Instant {
    /// Parses an RFC 3339 date-time (`T` or a space between date and time, `Z` or an offset).
    pub fn parse(text: &str, path: &str) -> Result<Instant, SearchError> {
        let bad = |why: &str| {
            SearchError::new(
                path,
                format!(
                    "invalid RFC 3339 date-time {text:?}: {why} (expected e.g. 2011-08-25T00:00:00Z)"
                ),
            )
        };
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(bad("too short"));
        }
        let days = parse_date(&b[..10]).ok_or_else(|| bad("bad date"))?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(bad("expected 'T' after the date"));
        }
        let (hh, mm, ss) = match (
            num(&b[11..13]),
            b[13],
            num(&b[14..16]),
            b[16],
            num(&b[17..19]),
        ) {
            (Some(h), b':', Some(m), b':', Some(s)) if h < 24 && m < 60 && s <= 60 => (h, m, s),
            _ => return Err(bad("bad time of day")),
        };
        let mut i = 19;
        let mut micros_frac: i64 = 0;
        if b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(bad("no digits after '.'"));
            }
            let digits = &text[start..i.min(start + 6)];
            micros_frac = digits.parse::<i64>().unwrap_or(0) * 10_i64.pow(6 - digits.len() as u32);
        }
        let offset_secs: i64 = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                match (num(&[*h1, *h2]), num(&[*m1, *m2])) {
                    (Some(h), Some(m)) if h < 24 && m < 60 => {
                        let s = h * 3600 + m * 60;
                        if *sign == b'-' { -s } else { s }
                    }
                    _ => return Err(bad("bad UTC offset")),
                }
            }
            [] => return Err(bad("missing time zone ('Z' or an offset such as +02:00)")),
            _ => return Err(bad("bad time zone")),
        };
        let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
        Ok(Instant {
            // Only `T`/`Z` can be letters here; PostgreSQL wants them upper case.
            text: text.to_ascii_uppercase(),
            micros: secs * 1_000_000 + micros_frac,
        })
    }

    /// The UTC midnight that starts a `YYYY-MM-DD` day, and the last microsecond of it.
    pub fn day(text: &str, path: &str) -> Result<(Instant, Instant), SearchError> {
        let days = (text.len() == 10)
            .then(|| parse_date(text.as_bytes()))
            .flatten()
            .ok_or_else(|| {
                SearchError::new(path, format!("invalid date {text:?} (expected YYYY-MM-DD)"))
            })?;
        let start = days * 86_400 * 1_000_000;
        let first = Instant {
            text: format!("{text}T00:00:00Z"),
            micros: start,
        };
        let last = Instant {
            text: format!("{text}T23:59:59.999999Z"),
            micros: start + 86_400 * 1_000_000 - 1,
        };
        Ok((first, last))
    }
}

impl Interval {
    /// The STAC `datetime` parameter: an instant, `a/b`, `../b`, `a/..` (an empty end is open too).
    pub fn parse_stac(text: &str, path: &str) -> Result<Interval, SearchError> {
        match text.split_once('/') {
            None => {
                let t = Instant::parse(text.trim(), path)?;
                Ok(Interval {
                    start: Some(t.clone()),
                    end: Some(t),
                })
            }
            Some((a, b)) => Interval::from_ends(a, b, path),
        }
    }

    /// An interval from two end texts, each an RFC 3339 date-time or `..`/empty for open.
    pub fn from_ends(a: &str, b: &str, path: &str) -> Result<Interval, SearchError> {
        let end = |s: &str| -> Result<End, SearchError> {
            let s = s.trim();
            if s.is_empty() || s == ".." {
                Ok(None)
            } else {
                Instant::parse(s, path).map(Some)
            }
        };
        let interval = Interval {
            start: end(a)?,
            end: end(b)?,
        };
        if let (Some(s), Some(e)) = (&interval.start, &interval.end)
            && s.micros > e.micros
        {
            return Err(SearchError::new(
                path,
                format!("interval start {} is after its end {}", s.text, e.text),
            ));
        }
        Ok(interval)
    }
}

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

/// `YYYY-MM-DD` to days since 1970-01-01, checking the calendar.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&b[..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y == 0 || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let t = Instant::parse("1970-01-01T00:00:00Z", "d").unwrap();
        assert_eq!(t.micros, 0);
        let a = Instant::parse("2011-08-25T02:00:00.5+02:00", "d").unwrap();
        let b = Instant::parse("2011-08-25T00:00:00.500000Z", "d").unwrap();
        assert_eq!(a.micros, b.micros);
        assert_eq!(
            Instant::parse("2000-03-01T00:00:00Z", "d").unwrap().micros,
            951_868_800_000_000
        );
        assert!(Instant::parse("2011-02-29T00:00:00Z", "d").is_err());
        assert!(Instant::parse("2012-02-29t00:00:00z", "d").is_ok());
        for bad in [
            "2011-08-25",
            "2011-08-25T00:00:00",
            "2011-13-01T00:00:00Z",
            "2011-08-25T24:00:00Z",
            "2011-08-25T00:00:00.Z",
            "2011-08-25T00:00:00+0200",
            "yesterday",
            "2011-08-25T00:00:00Z'; drop table x",
        ] {
            let e = Instant::parse(bad, "datetime").unwrap_err();
            assert!(
                e.to_string().starts_with("datetime: invalid RFC 3339"),
                "{e}"
            );
        }
    }

    #[test]
    fn intervals() {
        let i = Interval::parse_stac("2011-08-01T00:00:00Z/..", "datetime").unwrap();
        assert!(i.start.is_some() && i.end.is_none());
        let i = Interval::parse_stac("/2011-08-01T00:00:00Z", "datetime").unwrap();
        assert!(i.start.is_none() && i.end.is_some());
        let i = Interval::parse_stac("2011-08-01T00:00:00Z", "datetime").unwrap();
        assert_eq!(i.start, i.end);
        let e = Interval::parse_stac("2012-01-01T00:00:00Z/2011-01-01T00:00:00Z", "datetime")
            .unwrap_err();
        assert!(e.to_string().contains("after its end"), "{e}");
        let (a, b) = Instant::day("2011-08-25", "x").unwrap();
        assert_eq!(b.micros - a.micros, 86_400_000_000 - 1);
        assert!(Instant::day("2011-8-25", "x").is_err());
    }
}
