//! How the operands of a comparison (`=`, `<>`, `<`, `<=`, `>`, `>=`,
//! `between`, `in`) are read: one documented rule for both catalogs, the
//! one STAC API users see from pgstac (its `cql2_query` with the queryables
//! pgstac installs: `id`, `geometry`, `datetime`).
//!
//! | the operands include | read as | e.g. |
//! |---|---|---|
//! | `datetime`, `start_datetime` or `end_datetime` | instants; other operands must be timestamps | `datetime >= "2021-01-01T00:00:00Z"` |
//! | `id` or `collection` | text; other operands must be strings | `id = "a"` |
//! | a number | numbers: a property's number, or its string read as a number (`"2013"` is 2013) | `naip:year = 2013` matches `"2013"` |
//! | otherwise | text: a property's string, or its number or boolean as text | `naip:year = "2013"` |
//!
//! An item whose property is missing or `null` never matches. Read as a
//! number, a property holding a string that is not a number is an error,
//! in pgstac and here alike (PostgreSQL's "invalid input syntax for type
//! double precision"). An item's `datetime` is pgstac's: the start of its
//! range when it has one.
//!
//! Refused, because pgstac cannot answer them (it errors, or silently
//! matches nothing): comparing `datetime` with a `{"date": ...}` (use
//! `t_intersects`), a property with a timestamp or date (use the temporal
//! operators, which read the property as a time), mixing numbers with
//! strings, booleans or timestamps, a number with `id`/`collection`, and
//! geometries or intervals anywhere here.

use super::SearchError;
use super::cql2::{Arg, Operand, Property};

/// How a comparison reads its operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Instants (`timestamptz`).
    Time,
    /// The text columns `id` and `collection`, and strings.
    Column,
    /// Double precision numbers.
    Number,
    /// Text.
    Text,
}

/// An operand as messages name it ("a number", "a property").
pub(super) fn describe(v: &Operand) -> &'static str {
    match v {
        Operand::Property(Property::Geometry) => "the geometry",
        Operand::Property(_) => "a property",
        Operand::Text(_) => "a string",
        Operand::Number(_) => "a number",
        Operand::Bool(_) => "a boolean",
        Operand::Timestamp(_) => "a timestamp",
        Operand::Date(..) => "a date",
        Operand::Interval(_) => "an interval",
        Operand::Geometry(_) | Operand::Bbox(_) => "a geometry",
    }
}

fn is_time(p: &Property) -> bool {
    matches!(
        p,
        Property::Datetime | Property::StartDatetime | Property::EndDatetime
    )
}

/// The mode of a comparison of `args` by `op`, or why it is refused.
pub fn mode(args: &[&Arg], op: &str) -> Result<Mode, SearchError> {
    let refuse = |arg: &Arg, why: String| Err(SearchError::new(&arg.path, why));
    for arg in args {
        if matches!(
            arg.value,
            Operand::Geometry(_)
                | Operand::Bbox(_)
                | Operand::Interval(_)
                | Operand::Property(Property::Geometry)
        ) {
            return refuse(
                arg,
                format!(
                    "'{op}' cannot take {}; use s_intersects or t_intersects",
                    describe(&arg.value)
                ),
            );
        }
    }
    let has = |f: &dyn Fn(&Operand) -> bool| args.iter().any(|a| f(&a.value));
    let mode = if has(&|v| matches!(v, Operand::Property(p) if is_time(p))) {
        Mode::Time
    } else if has(&|v| matches!(v, Operand::Property(Property::Id | Property::Collection))) {
        Mode::Column
    } else if has(&|v| matches!(v, Operand::Number(_))) {
        Mode::Number
    } else {
        Mode::Text
    };
    for arg in args {
        let ok = match (mode, &arg.value) {
            (Mode::Time, Operand::Property(p)) => is_time(p),
            (Mode::Time, Operand::Timestamp(_)) => true,
            (Mode::Time, Operand::Text(s)) => rfc3339::parse(s).is_ok(),
            (Mode::Column, Operand::Property(p)) => {
                matches!(p, Property::Id | Property::Collection)
            }
            (Mode::Column, Operand::Text(_)) => true,
            (Mode::Number, Operand::Property(Property::Json(_)) | Operand::Number(_)) => true,
            (
                Mode::Text,
                Operand::Property(Property::Json(_)) | Operand::Text(_) | Operand::Bool(_),
            ) => true,
            _ => false,
        };
        if ok {
            continue;
        }
        let what = describe(&arg.value);
        let why = match (mode, &arg.value) {
            (Mode::Time, Operand::Date(..)) => format!(
                "'{op}' compares instants, and a date is a whole day; use t_intersects \
                 (or a timestamp)"
            ),
            (Mode::Time, Operand::Text(s)) => format!(
                "'{op}' compares instants: {s:?} is not an RFC 3339 date-time \
                 (expected e.g. 2011-08-25T00:00:00Z)"
            ),
            (Mode::Time, _) => format!("'{op}' cannot compare {what} with a timestamp"),
            (Mode::Column, _) => format!("'{op}' cannot compare {what} with a string"),
            (Mode::Number, Operand::Property(_)) => {
                format!("'{op}' cannot compare a column with a number")
            }
            (Mode::Number, _) => format!("'{op}' cannot compare {what} with a number"),
            (Mode::Text, Operand::Timestamp(_) | Operand::Date(..)) => format!(
                "'{op}' reads a property as text, not as a time; to compare it with {what} use \
                 t_before, t_after or t_intersects, which read it as a time"
            ),
            (Mode::Text, _) => format!("'{op}' cannot compare {what} with a string"),
        };
        return refuse(arg, why);
    }
    Ok(mode)
}

/// Checks the operands of `like`: text (a property, `id`, `collection`, a string).
pub fn like(args: &[&Arg]) -> Result<(), SearchError> {
    for arg in args {
        match &arg.value {
            Operand::Property(Property::Json(_) | Property::Id | Property::Collection)
            | Operand::Text(_) => {}
            other => {
                return Err(SearchError::new(
                    &arg.path,
                    format!("'like' compares text, not {}", describe(other)),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::cql2::parse_operand;
    use serde_json::{Value, json};

    fn m(args: &[Value]) -> Result<Mode, String> {
        let parsed: Vec<Arg> = args
            .iter()
            .enumerate()
            .map(|(i, v)| parse_operand(v, &format!("a[{i}]")).unwrap())
            .collect();
        let refs: Vec<&Arg> = parsed.iter().collect();
        mode(&refs, "=").map_err(|e| e.to_string())
    }

    #[test]
    fn the_operands_decide() {
        let p = |n: &str| json!({"property": n});
        assert_eq!(m(&[p("naip:year"), json!(2013)]), Ok(Mode::Number));
        assert_eq!(m(&[p("naip:year"), json!("2013")]), Ok(Mode::Text));
        assert_eq!(m(&[p("flag"), json!(true)]), Ok(Mode::Text));
        assert_eq!(m(&[p("a"), p("b")]), Ok(Mode::Text));
        assert_eq!(m(&[p("id"), json!("x")]), Ok(Mode::Column));
        assert_eq!(
            m(&[p("datetime"), json!("2020-01-01T00:00:00Z")]),
            Ok(Mode::Time)
        );
        assert_eq!(
            m(&[
                json!({"timestamp": "2020-01-01T00:00:00Z"}),
                p("end_datetime")
            ]),
            Ok(Mode::Time)
        );
        for (args, msg) in [
            (
                vec![p("id"), json!(3)],
                "a[1]: '=' cannot compare a number with a string",
            ),
            (
                vec![p("x"), json!(3), json!("a")],
                "a[2]: '=' cannot compare a string with a number",
            ),
            (
                vec![p("x"), json!(3), json!(true)],
                "a[2]: '=' cannot compare a boolean with a number",
            ),
            (
                vec![p("datetime"), json!({"date": "2020-01-01"})],
                "a date is a whole day",
            ),
            (
                vec![p("datetime"), json!("yesterday")],
                "not an RFC 3339 date-time",
            ),
            (
                vec![p("datetime"), json!(5)],
                "cannot compare a number with a timestamp",
            ),
            (
                vec![p("x"), json!({"timestamp": "2020-01-01T00:00:00Z"})],
                "use t_before",
            ),
            (vec![p("geometry"), json!("x")], "cannot take the geometry"),
            (
                vec![p("id"), p("x")],
                "cannot compare a property with a string",
            ),
        ] {
            let e = m(&args).unwrap_err();
            assert!(e.contains(msg), "{args:?}: {e}");
        }
    }
}
