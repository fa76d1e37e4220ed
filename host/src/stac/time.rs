//! RFC 3339 date-times (`2020-12-11T22:38:32.125Z`) in items and collections,
//! read by the one rule every command uses ([`rfc3339`]): `T`, `t` or a space
//! between date and time, `Z` or an offset, and the fraction rounded to the
//! microsecond exactly as PostgreSQL rounds it.

/// Parses an RFC 3339 date-time into UTC microseconds since 1970.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    rfc3339::parse(s).map_err(|why| format!("'{s}' is not an RFC 3339 date-time ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value_and_the_reason() {
        assert_eq!(
            parse_rfc3339("2020-12-11 22:38:32Z"),
            Ok(1_607_726_312_000_000)
        );
        assert_eq!(
            parse_rfc3339("2020-12-11").unwrap_err(),
            "'2020-12-11' is not an RFC 3339 date-time (expected YYYY-MM-DDTHH:MM:SS)"
        );
    }
}
