//! RFC 3339 instants, dates and intervals, checked in Rust so that a bad
//! value is reported with the place it came from. Instants are read by the
//! rule every command uses ([`rfc3339`], as the loader reads item times) and
//! go to the database as the same instant in UTC text, which PostgreSQL reads
//! back exactly.

use super::SearchError;

/// A valid RFC 3339 date-time, e.g. `2011-08-25T00:00:00Z` or `2011-08-25T02:00:00.5+02:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instant {
    /// The instant in UTC as text (`2011-08-25T00:00:00Z`), what goes to the database.
    pub text: String,
    /// Microseconds since 1970-01-01T00:00:00Z, rounded as PostgreSQL rounds.
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
    /// Parses an RFC 3339 date-time by the rule every command uses ([`rfc3339`]).
    pub fn parse(text: &str, path: &str) -> Result<Instant, SearchError> {
        let micros = rfc3339::parse(text).map_err(|why| {
            SearchError::new(
                path,
                format!(
                    "invalid RFC 3339 date-time {text:?}: {why} (expected e.g. 2011-08-25T00:00:00Z)"
                ),
            )
        })?;
        Ok(Instant::at(micros))
    }

    /// The instant `micros` after 1970, as text PostgreSQL reads back exactly.
    pub fn at(micros: i64) -> Instant {
        Instant {
            text: rfc3339::format(micros),
            micros,
        }
    }

    /// The UTC midnight that starts a `YYYY-MM-DD` day, and the last microsecond of it.
    pub fn day(text: &str, path: &str) -> Result<(Instant, Instant), SearchError> {
        let days = rfc3339::parse_date(text).map_err(|_| {
            SearchError::new(path, format!("invalid date {text:?} (expected YYYY-MM-DD)"))
        })?;
        let start = days * 86_400 * rfc3339::MICROS_PER_SEC;
        Ok((
            Instant::at(start),
            Instant::at(start + 86_400 * rfc3339::MICROS_PER_SEC - 1),
        ))
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
