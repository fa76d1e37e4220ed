//! libpq's password file: `PGPASSFILE`, else `~/.pgpass`, consulted when
//! neither the connection string nor `PGPASSWORD` gives a password.
//!
//! Each line is `hostname:port:database:username:password`; `*` matches
//! anything, `\` escapes `:` and `\`, and the first matching line wins. As
//! with libpq, a file that group or others can read is ignored, with a warning.

use std::path::{Path, PathBuf};

/// What a password is looked up for.
#[derive(Debug)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The password file's entry for `target`, if there is a usable file and a matching line.
pub fn lookup(target: &Target<'_>) -> Option<String> {
    let path = file()?;
    let text = std::fs::read_to_string(&path).ok()?;
    if !private(&path) {
        tracing::warn!(
            "password file {} has group or world access; permissions should be u=rw (0600) or less: ignored",
            path.display()
        );
        return None;
    }
    find(&text, target)
}

fn file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => dirs::home_dir().map(|h| h.join(".pgpass")),
    }
}

#[cfg(unix)]
fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private(_path: &Path) -> bool {
    true
}

fn find(text: &str, target: &Target<'_>) -> Option<String> {
    let port = target.port.to_string();
    let wanted = [target.host, port.as_str(), target.dbname, target.user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w);
            // The password is the rest of the line, colons included.
            matches.then(|| fields[4..].join(":"))
        })
}

/// Splits at unescaped `:`, removing the escapes.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field").extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(host: &'a str, port: u16, dbname: &'a str, user: &'a str) -> Target<'a> {
        Target {
            host,
            port,
            dbname,
            user,
        }
    }

    const FILE: &str = "\
# comment
db.example.org:5432:app:alice:first
*:5433:*:bob:b\\:c\\\\d
localhost:*:*:*:fallback:with:colons
";

    #[test]
    fn first_matching_line_wins() {
        assert_eq!(
            find(FILE, &t("db.example.org", 5432, "app", "alice")).as_deref(),
            Some("first")
        );
        assert_eq!(
            find(FILE, &t("anywhere", 5433, "x", "bob")).as_deref(),
            Some("b:c\\d")
        );
        assert_eq!(
            find(FILE, &t("localhost", 1, "x", "carol")).as_deref(),
            Some("fallback:with:colons")
        );
        assert_eq!(find(FILE, &t("db.example.org", 5432, "app", "bob")), None);
        assert_eq!(find(FILE, &t("other", 5432, "app", "alice")), None);
    }
}
