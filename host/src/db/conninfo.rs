//! Taking the options tokio-postgres does not know (libpq's TLS options) out
//! of a connection string, in either of libpq's forms, leaving the rest as
//! written for tokio-postgres to parse.

/// Removes `keys` from `text` (a `postgres[ql]://` URL's query string, or
/// `key=value` pairs) and returns what is left and the removed pairs, decoded.
pub fn take(text: &str, keys: &[&str]) -> Result<(String, Vec<(String, String)>), String> {
    if text.starts_with("postgresql://") || text.starts_with("postgres://") {
        Ok(take_from_url(text, keys))
    } else {
        take_from_pairs(text, |k| keys.contains(&k))
    }
}

/// Every `key=value` pair of a connection string in that form, decoded.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    take_from_pairs(text, |_| true).map(|(_, all)| all)
}

fn take_from_url(text: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = text.split_once('?') else {
        return (text.to_string(), Vec::new());
    };
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    for segment in query.split('&') {
        match url::form_urlencoded::parse(segment.as_bytes()).next() {
            Some((k, v)) if keys.contains(&k.as_ref()) => {
                taken.push((k.into_owned(), v.into_owned()))
            }
            _ => kept.push(segment),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

/// `key = value` pairs separated by spaces; a value is either single-quoted
/// (with `\'` and `\\`) or runs to the next space (with `\` escapes).
fn take_from_pairs(
    text: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<(String, Vec<(String, String)>), String> {
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start();
        let Some(after_eq) = rest.strip_prefix('=') else {
            return Err(format!("missing `=` after `{key}`"));
        };
        rest = after_eq.trim_start();
        let (value, after) = match rest.strip_prefix('\'') {
            Some(quoted) => match unescape_until(quoted, |c| c == '\'') {
                (value, Some(end)) => (value, &quoted[end + 1..]),
                (_, None) => return Err(format!("unterminated quoted value for `{key}`")),
            },
            None => {
                let (value, end) = unescape_until(rest, char::is_whitespace);
                (value, &rest[end.unwrap_or(rest.len())..])
            }
        };
        rest = after;
        let pair = &start[..start.len() - rest.len()];
        if wanted(key) {
            taken.push((key.to_string(), value));
        } else {
            kept.push(pair);
        }
        rest = rest.trim_start();
    }
    Ok((kept.join(" "), taken))
}

/// The text of `s` up to the first unescaped character that `stop` accepts,
/// with `\` escapes removed, and where that character is (if anywhere).
fn unescape_until(s: &str, stop: impl Fn(char) -> bool) -> (String, Option<usize>) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c if stop(c) => return (value, Some(i)),
            c => value.push(c),
        }
    }
    (value, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["sslmode", "sslrootcert"];

    #[test]
    fn urls_lose_only_the_taken_keys() {
        let (rest, taken) = take(
            "postgresql://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca%20one.crt",
            KEYS,
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u:p@h:5/db?application_name=x");
        assert_eq!(
            taken,
            [
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/tmp/ca one.crt".to_string())
            ]
        );
        let (rest, taken) = take("postgres://h/db?sslmode=require", KEYS).unwrap();
        assert_eq!((rest.as_str(), taken.len()), ("postgres://h/db", 1));
        let (rest, taken) = take("postgresql://h1:5,h2:6/db", KEYS).unwrap();
        assert_eq!(
            (rest.as_str(), taken.len()),
            ("postgresql://h1:5,h2:6/db", 0)
        );
    }

    #[test]
    fn pairs_keep_their_quoting() {
        let (rest, taken) = take(
            "host=h  sslmode = 'verify-ca' password='it\\'s x' sslrootcert=/a\\ b.crt dbname=d",
            KEYS,
        )
        .unwrap();
        assert_eq!(rest, "host=h password='it\\'s x' dbname=d");
        assert_eq!(
            taken,
            [
                ("sslmode".to_string(), "verify-ca".to_string()),
                ("sslrootcert".to_string(), "/a b.crt".to_string())
            ]
        );
        let parsed: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"it's x"[..]));
    }

    #[test]
    fn malformed_pairs_are_errors() {
        assert!(take("host", KEYS).unwrap_err().contains("host"));
        assert!(
            take("sslrootcert='/a", KEYS)
                .unwrap_err()
                .contains("unterminated")
        );
        assert_eq!(take("", KEYS).unwrap(), (String::new(), Vec::new()));
    }
}
