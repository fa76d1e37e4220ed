//! Schema versions as they appear in migration file names: dot-separated
//! parts compared numerically when both are numbers (`0.10.0` > `0.9.9`), as
//! text otherwise, and a word (`unreleased`) after any number.

use std::cmp::Ordering;

/// A schema version such as `0.2.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Accepts letters, digits, `.` and `_`; nothing that could be confused
    /// with the `--` and `-` separators of file names.
    pub fn parse(text: &str) -> Result<Version, String> {
        let ok = !text.is_empty()
            && !text.starts_with('.')
            && !text.ends_with('.')
            && !text.contains("..")
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
        if ok {
            Ok(Version(text.to_string()))
        } else {
            Err(format!(
                "'{text}' is not a version (dot-separated letters and digits, e.g. 0.2.0)"
            ))
        }
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Version, String> {
        Version::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let mut a = self.0.split('.');
        let mut b = other.0.split('.');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return self.0.cmp(&other.0),
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn orders_numerically_then_words_last() {
        assert!(v("0.10.0") > v("0.9.9"));
        assert!(v("1.0") < v("1.0.1"));
        assert!(v("0.9.9") < v("unreleased"));
        assert!(v("2") > v("1.99"));
        assert_eq!(v("0.2.0").cmp(&v("0.2.0")), Ordering::Equal);
    }

    #[test]
    fn refuses_separators() {
        for bad in ["", "1--2", "1-2", "a b", ".1", "1.", "1..2", "1/2"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }
}
