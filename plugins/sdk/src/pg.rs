//! PostgreSQL column types and comparing values as COPY text prints them.

use std::cmp::Ordering;

/// How a plugin should treat a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// `text`, `character varying(n)`, `character(n)`, `name`, `citext`.
    Text,
    /// `smallint`, `integer`, `bigint`.
    Integer,
    /// `numeric(p,s)`, `real`, `double precision`.
    Number,
    /// `boolean` (COPY prints `t` / `f`).
    Boolean,
    /// Anything else: dates, JSON, arrays, enums, domains...
    Other,
}

impl TypeClass {
    /// Whether values compare as numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, TypeClass::Integer | TypeClass::Number)
    }
}

/// The class of a type name as `format_type` prints it.
pub fn type_class(type_name: &str) -> TypeClass {
    let t = type_name.trim();
    if t.ends_with(']') {
        return TypeClass::Other; // arrays
    }
    // `public.citext` and the like: the schema does not matter here.
    let t = match t.rsplit_once('.') {
        Some((_, name)) if !t.contains('"') => name,
        _ => t,
    };
    let base = t.split_once('(').map_or(t, |(b, _)| b).trim();
    match base {
        "text" | "character varying" | "varchar" | "character" | "char" | "bpchar" | "name"
        | "citext" => TypeClass::Text,
        "smallint" | "integer" | "bigint" | "int" | "int2" | "int4" | "int8" => TypeClass::Integer,
        "numeric" | "decimal" | "real" | "double precision" | "float4" | "float8" => {
            TypeClass::Number
        }
        "boolean" | "bool" => TypeClass::Boolean,
        _ => TypeClass::Other,
    }
}

/// The declared length of `character varying(n)` or `character(n)`.
pub fn text_length_limit(type_name: &str) -> Option<usize> {
    if type_class(type_name) != TypeClass::Text {
        return None;
    }
    let (_, rest) = type_name.split_once('(')?;
    rest.strip_suffix(')')?.trim().parse().ok()
}

/// Reads a boolean as PostgreSQL does (`t`, `true`, `yes`, `on`, `1`, ...).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A number as text, split for exact comparison.
enum Num<'a> {
    NegInf,
    /// Sign, integer digits without leading zeros, fraction digits without trailing zeros.
    Finite(bool, &'a str, &'a str),
    PosInf,
    NaN,
}

fn parse_num(s: &str) -> Option<Num<'_>> {
    let s = s.trim();
    match s.to_ascii_lowercase().as_str() {
        "nan" => return Some(Num::NaN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Some(Num::PosInf),
        "-infinity" | "-inf" => return Some(Num::NegInf),
        _ => {}
    }
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let neg = neg && !(int.is_empty() && frac.is_empty()); // -0 is 0
    Some(Num::Finite(neg, int, frac))
}

/// Compares two numbers given as text (`12`, `-0.50`, `1e3`, `NaN`,
/// `Infinity`), exactly for plain decimals of any length; `None` if either
/// is not a number. Like PostgreSQL, `NaN` equals itself and sorts above
/// everything else.
pub fn compare_numbers(a: &str, b: &str) -> Option<Ordering> {
    match (parse_num(a), parse_num(b)) {
        (Some(x), Some(y)) => Some(compare_parsed(&x, &y)),
        // Exponents (real / double precision print `1e+20`): compare as floats.
        _ => {
            let (x, y) = (float(a)?, float(b)?);
            Some(match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => x.partial_cmp(&y)?,
            })
        }
    }
}

fn float(s: &str) -> Option<f64> {
    let s = s.trim();
    match parse_num(s) {
        Some(Num::NaN) => Some(f64::NAN),
        Some(Num::PosInf) => Some(f64::INFINITY),
        Some(Num::NegInf) => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

fn rank(n: &Num<'_>) -> u8 {
    match n {
        Num::NegInf => 0,
        Num::Finite(..) => 1,
        Num::PosInf => 2,
        Num::NaN => 3,
    }
}

fn compare_parsed(x: &Num<'_>, y: &Num<'_>) -> Ordering {
    let (Num::Finite(xn, xi, xf), Num::Finite(yn, yi, yf)) = (x, y) else {
        return rank(x).cmp(&rank(y));
    };
    let magnitude = xi
        .len()
        .cmp(&yi.len())
        .then_with(|| xi.cmp(yi))
        .then_with(|| xf.cmp(yf));
    match (xn, yn) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// Compares two values of a column of class `class`: as numbers for numeric
/// classes, as booleans for `Boolean`, otherwise as text (byte order, which
/// is right for ISO dates and timestamps printed with the same offset).
/// `None` when a value does not parse for its class.
pub fn compare(class: TypeClass, a: &str, b: &str) -> Option<Ordering> {
    match class {
        TypeClass::Integer | TypeClass::Number => compare_numbers(a, b),
        TypeClass::Boolean => Some(parse_bool(a)?.cmp(&parse_bool(b)?)),
        TypeClass::Text | TypeClass::Other => Some(a.cmp(b)),
    }
}

/// Checks that `value` can be compared with values of class `class`.
pub fn check_value(class: TypeClass, value: &str) -> Result<(), String> {
    match class {
        TypeClass::Integer | TypeClass::Number if compare_numbers(value, value).is_none() => {
            Err(format!("`{value}` is not a number"))
        }
        TypeClass::Boolean if parse_bool(value).is_none() => {
            Err(format!("`{value}` is not a boolean"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn classes() {
        for (t, c) in [
            ("text", TypeClass::Text),
            ("character varying(20)", TypeClass::Text),
            ("character(3)", TypeClass::Text),
            ("public.citext", TypeClass::Text),
            ("integer", TypeClass::Integer),
            ("bigint", TypeClass::Integer),
            ("numeric(10,2)", TypeClass::Number),
            ("double precision", TypeClass::Number),
            ("boolean", TypeClass::Boolean),
            ("text[]", TypeClass::Other),
            ("timestamp with time zone", TypeClass::Other),
            ("\"char\"", TypeClass::Other),
            ("public.mood", TypeClass::Other),
        ] {
            assert_eq!(type_class(t), c, "{t}");
        }
        assert_eq!(text_length_limit("character varying(20)"), Some(20));
        assert_eq!(text_length_limit("character(3)"), Some(3));
        assert_eq!(text_length_limit("text"), None);
        assert_eq!(text_length_limit("numeric(10,2)"), None);
    }

    #[test]
    fn numbers_compare_exactly() {
        for (a, b, want) in [
            ("1", "1.0", Equal),
            ("-0", "0.000", Equal),
            ("2", "10", Less),
            ("-2", "-10", Greater),
            ("0.5", "0.45", Greater),
            ("-0.5", "0.1", Less),
            ("9223372036854775807", "9223372036854775806", Greater),
            (
                "12345678901234567890.000000000000000001",
                "12345678901234567890",
                Greater,
            ),
            ("007", "7", Equal),
            (".5", "0.5", Equal),
            ("NaN", "Infinity", Greater),
            ("-Infinity", "-1e308", Less),
            ("1e3", "999", Greater),
            ("1.5e-07", "0.00000015", Equal),
            ("NaN", "NaN", Equal),
        ] {
            assert_eq!(compare_numbers(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare_numbers(b, a), Some(want.reverse()), "{b} vs {a}");
        }
        for bad in ["", "-", ".", "1.2.3", "abc", "1,5", "0x10"] {
            assert_eq!(compare_numbers(bad, "1"), None, "{bad}");
        }
    }

    #[test]
    fn typed_compare() {
        assert_eq!(compare(TypeClass::Integer, "10", "9"), Some(Greater));
        assert_eq!(compare(TypeClass::Text, "10", "9"), Some(Less));
        assert_eq!(compare(TypeClass::Boolean, "t", "true"), Some(Equal));
        assert_eq!(
            compare(TypeClass::Other, "2020-01-02", "2020-01-10"),
            Some(Less)
        );
        assert!(check_value(TypeClass::Integer, "x").is_err());
        assert!(check_value(TypeClass::Boolean, "yes").is_ok());
        assert!(check_value(TypeClass::Text, "anything").is_ok());
    }
}
