//! A migration set: SQL files whose names say which version each produces,
//! and from which. *Base* files install a version from nothing, *incremental*
//! files move from one version to another.
//!
//! Two naming schemes, inferred from the files:
//! - [`Naming::Extension`] (PostgreSQL extension style, the built-in set):
//!   `host--0.2.0.sql` (base) and `host--0.1.0--0.2.0.sql` (incremental).
//! - [`Naming::Dotted`] (how pypgstac's wheel ships pgstac):
//!   `pgstac.0.9.0.sql` (base) and `pgstac.0.8.6-0.9.0.sql` (incremental).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Ledger, MigrateError, Version};

/// How file names carry the set's prefix and versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `PREFIX--VERSION.sql`, `PREFIX--FROM--TO.sql`.
    Extension,
    /// `PREFIX.VERSION.sql`, `PREFIX.FROM-TO.sql`.
    Dotted,
}

impl Naming {
    /// What file names of this scheme look like, for messages.
    pub fn pattern(self, prefix: &str) -> String {
        match self {
            Naming::Extension => format!("{prefix}--VERSION.sql or {prefix}--FROM--TO.sql"),
            Naming::Dotted => format!("{prefix}.VERSION.sql or {prefix}.FROM-TO.sql"),
        }
    }

    /// Splits a file name into (prefix, from, to); `None` if it does not follow the scheme.
    fn split(self, file: &str) -> Option<(&str, Option<&str>, &str)> {
        let stem = file.strip_suffix(".sql")?;
        match self {
            Naming::Extension => {
                let mut parts = stem.split("--");
                let prefix = parts.next()?;
                let a = parts.next()?;
                match (parts.next(), parts.next()) {
                    (None, _) => Some((prefix, None, a)),
                    (Some(b), None) => Some((prefix, Some(a), b)),
                    _ => None,
                }
            }
            Naming::Dotted => {
                let (prefix, rest) = stem.split_once('.')?;
                match rest.split_once('-') {
                    None => Some((prefix, None, rest)),
                    Some((a, b)) if !b.contains('-') => Some((prefix, Some(a), b)),
                    _ => None,
                }
            }
        }
    }

    /// The scheme a file name most likely uses.
    fn guess(file: &str) -> Naming {
        if file.contains("--") {
            Naming::Extension
        } else {
            Naming::Dotted
        }
    }
}

/// One SQL file of a set.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// File name (no directory).
    pub name: String,
    /// The version it starts from; `None` for a base file.
    pub from: Option<Version>,
    /// The version it produces.
    pub to: Version,
    /// The SQL, run as one batch inside the migration's transaction.
    pub sql: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

impl MigrationFile {
    /// The SQL to run inside the migration's own transaction: a file wrapped
    /// in `BEGIN; ... COMMIT;` (as pgstac's incremental files are) loses the
    /// wrapper, or its COMMIT would end that transaction half-way through a
    /// chain. Lines keep their numbers (for error messages).
    pub fn body(&self) -> Cow<'_, str> {
        unwrap_transaction(&self.sql)
    }

    /// `base` or `incremental`, as recorded in the ledger.
    pub fn kind(&self) -> &'static str {
        if self.from.is_some() {
            "incremental"
        } else {
            "base"
        }
    }
}

/// `sql` without a leading `BEGIN;` and a trailing `COMMIT;` (both or
/// neither; case-insensitive, like pypgstac). Only those statements are
/// cut, so the text keeps its line numbers.
fn unwrap_transaction(sql: &str) -> Cow<'_, str> {
    let body = sql.trim_start();
    let lead = &sql[..sql.len() - body.len()];
    let Some(rest) = strip_keyword(body, "BEGIN") else {
        return Cow::Borrowed(sql);
    };
    let Some(rest) = rest.trim_start().strip_prefix(';') else {
        return Cow::Borrowed(sql);
    };
    let Some(before) = rest.trim_end().strip_suffix(';') else {
        return Cow::Borrowed(sql);
    };
    let before = before.trim_end();
    let n = before.len();
    let ends_with_commit = n >= 6
        && before.is_char_boundary(n - 6)
        && before[n - 6..].eq_ignore_ascii_case("COMMIT")
        && !before[..n - 6].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if !ends_with_commit {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(format!("{lead}{}", &before[..n - 6]))
}

/// `text` after `word` (case-insensitive) when `word` is followed by a non-identifier character.
fn strip_keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word)
        && !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(rest)
}

/// A set of migration files and where the database records what was applied.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// The prefix of its file names, e.g. `host`.
    pub name: String,
    /// How its files are named.
    pub naming: Naming,
    /// Its files, sorted by name.
    pub files: Vec<MigrationFile>,
    /// Where the applied versions are kept.
    pub ledger: Ledger,
    /// Whose files these are.
    pub flavor: Flavor,
}

/// Whose migration files a set holds; pgstac's need a little more than running them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Files that leave bookkeeping to `migrate` ([`Ledger::own`]).
    Own,
    /// pgstac as pypgstac ships it (`pgstac.X.sql`, `pgstac.X-Y.sql`): the
    /// files record their version themselves, may wrap themselves in
    /// `BEGIN; ... COMMIT;`, and queue maintenance to be run once committed.
    Pgstac,
}

/// A chain of files from the database's version to a target.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The version the chain starts from (`None`: not installed).
    pub from: Option<Version>,
    /// The version it ends at.
    pub to: Version,
    /// The files to run, in order (empty when already at `to`).
    pub steps: Vec<&'a MigrationFile>,
}

impl MigrationSet {
    /// The schema built into this binary (the files in `migrations/`).
    pub fn builtin() -> MigrationSet {
        let files = super::embedded::FILES
            .iter()
            .map(|(name, sql)| (name.to_string(), sql.to_string()));
        MigrationSet::from_files("host", Naming::Extension, files)
            .expect("the built-in migration files are well named")
    }

    /// Reads the `*.sql` files of `dir`. `prefix` picks one set when the
    /// directory holds several; otherwise it is inferred from the names.
    /// The set keeps its bookkeeping in `PREFIX.migrations` (see [`Ledger::own`]).
    pub fn from_dir(dir: &Path, prefix: Option<&str>) -> Result<MigrationSet, MigrateError> {
        let shown = dir.display().to_string();
        let io = |e: std::io::Error| MigrateError::Dir {
            dir: shown.clone(),
            reason: e.to_string(),
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sql") && entry.file_type().map_err(io)?.is_file() {
                names.push(name);
            }
        }
        names.sort();
        let naming = names
            .first()
            .map_or(Naming::Extension, |n| Naming::guess(n));
        let prefix = match prefix {
            Some(p) => p.to_string(),
            None => {
                let mut found: Vec<&str> = names
                    .iter()
                    .filter_map(|n| naming.split(n).map(|(p, _, _)| p))
                    .collect();
                found.dedup();
                match found.as_slice() {
                    [one] => one.to_string(),
                    [] => {
                        return Err(MigrateError::Dir {
                            dir: shown,
                            reason: "no migration files (NAME--VERSION.sql) in it".into(),
                        });
                    }
                    many => {
                        return Err(MigrateError::Dir {
                            dir: shown,
                            reason: format!(
                                "it holds several migration sets ({}); choose one with --prefix",
                                many.join(", ")
                            ),
                        });
                    }
                }
            }
        };
        let mut files = Vec::new();
        for name in names {
            // Another set's files may share the directory (then --prefix chose ours);
            // a name following no scheme at all is refused below.
            if naming.split(&name).is_some_and(|(p, _, _)| p != prefix) {
                continue;
            }
            let sql = std::fs::read_to_string(dir.join(&name)).map_err(|e| MigrateError::Dir {
                dir: shown.clone(),
                reason: format!("{name}: {e}"),
            })?;
            files.push((name, sql));
        }
        let set = MigrationSet::from_files(&prefix, naming, files)?;
        if set.files.is_empty() {
            return Err(MigrateError::Dir {
                dir: shown,
                reason: format!("no files named {}", naming.pattern(&prefix)),
            });
        }
        Ok(set)
    }

    /// Builds a set from (file name, SQL) pairs; every name must follow `naming` with `prefix`.
    pub fn from_files(
        prefix: &str,
        naming: Naming,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<MigrationSet, MigrateError> {
        let flavor = if prefix == "pgstac" && naming == Naming::Dotted {
            Flavor::Pgstac
        } else {
            Flavor::Own
        };
        let ledger = match flavor {
            Flavor::Pgstac => Ledger::pgstac(),
            Flavor::Own => Ledger::own(prefix)?,
        };
        let mut out: Vec<MigrationFile> = Vec::new();
        for (name, sql) in files {
            let bad = |reason: String| MigrateError::BadName {
                file: name.clone(),
                expected: naming.pattern(prefix),
                reason,
            };
            let (p, from, to) = naming
                .split(&name)
                .ok_or_else(|| bad("the name does not follow the pattern".into()))?;
            if p != prefix {
                return Err(bad(format!("its prefix is '{p}', not '{prefix}'")));
            }
            let from = from.map(Version::parse).transpose().map_err(bad)?;
            let to = Version::parse(to).map_err(bad)?;
            if from.as_ref() == Some(&to) {
                return Err(bad("it goes from a version to itself".into()));
            }
            if let Some(other) = out.iter().find(|f| f.from == from && f.to == to) {
                return Err(MigrateError::Duplicate {
                    a: other.name.clone(),
                    b: name,
                });
            }
            let sha256 = hex::encode(Sha256::digest(sql.as_bytes()));
            out.push(MigrationFile {
                name,
                from,
                to,
                sql,
                sha256,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(MigrationSet {
            name: prefix.to_string(),
            naming,
            files: out,
            ledger,
            flavor,
        })
    }

    /// The newest version any file produces: what `migrate` installs by default.
    pub fn latest(&self) -> Option<&Version> {
        self.files.iter().map(|f| &f.to).max()
    }

    /// The oldest version the set knows: the lowest a file installs or
    /// upgrades from (what pypgstac calls its `initversion`).
    pub fn oldest(&self) -> Option<&Version> {
        self.files
            .iter()
            .map(|f| f.from.as_ref().unwrap_or(&f.to))
            .min()
    }

    /// Whether some file produces `v`.
    pub fn knows(&self, v: &Version) -> bool {
        self.files.iter().any(|f| &f.to == v)
    }

    /// The file with this name, if the set has it.
    pub fn file(&self, name: &str) -> Option<&MigrationFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The shortest chain of files from `from` (`None`: nothing installed, so
    /// the chain starts with a base file) to `to`. Among chains of equal
    /// length the one taking the biggest jumps first wins, so a base file of
    /// a later version beats an older base plus increments.
    pub fn plan(&self, from: Option<&Version>, to: &Version) -> Option<Plan<'_>> {
        let mut plan = Plan {
            from: from.cloned(),
            to: to.clone(),
            steps: Vec::new(),
        };
        if from == Some(to) {
            return Some(plan);
        }
        // Breadth-first over versions; `None` is the empty database.
        let mut came_from: HashMap<Option<&Version>, &MigrationFile> = HashMap::new();
        let mut queue: VecDeque<Option<&Version>> = VecDeque::from([from]);
        let mut seen: Vec<Option<&Version>> = vec![from];
        while let Some(node) = queue.pop_front() {
            let mut edges: Vec<&MigrationFile> = self
                .files
                .iter()
                .filter(|f| f.from.as_ref() == node)
                .collect();
            edges.sort_by(|a, b| b.to.cmp(&a.to));
            for f in edges {
                let next = Some(&f.to);
                if seen.contains(&next) {
                    continue;
                }
                seen.push(next);
                came_from.insert(next, f);
                if next == Some(to) {
                    let mut at = next;
                    while at != from {
                        let f = came_from[&at];
                        plan.steps.push(f);
                        at = f.from.as_ref();
                    }
                    plan.steps.reverse();
                    return Some(plan);
                }
                queue.push_back(next);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_wrappers_are_cut_both_or_neither() {
        assert_eq!(
            unwrap_transaction("BEGIN;\nSELECT 1;\nCOMMIT;\n"),
            "\nSELECT 1;\n"
        );
        assert_eq!(unwrap_transaction("\n begin ;\nx;\ncommit;"), "\n \nx;\n");
        assert_eq!(unwrap_transaction("BEGIN;\nx;\n"), "BEGIN;\nx;\n");
        assert_eq!(unwrap_transaction("x;\nCOMMIT;"), "x;\nCOMMIT;");
        assert_eq!(unwrap_transaction("BEGINX;\nCOMMIT;"), "BEGINX;\nCOMMIT;");
        assert_eq!(unwrap_transaction("BEGIN;\nXCOMMIT;"), "BEGIN;\nXCOMMIT;");
        assert_eq!(
            unwrap_transaction("DO $$ BEGIN END $$;"),
            "DO $$ BEGIN END $$;"
        );
    }

    fn set(names: &[&str]) -> MigrationSet {
        MigrationSet::from_files(
            "demo",
            Naming::Extension,
            names.iter().map(|n| (n.to_string(), format!("-- {n}"))),
        )
        .unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn steps(set: &MigrationSet, from: Option<&str>, to: &str) -> Option<Vec<String>> {
        let from = from.map(v);
        set.plan(from.as_ref(), &v(to))
            .map(|p| p.steps.iter().map(|f| f.name.clone()).collect())
    }

    const DEMO: &[&str] = &[
        "demo--1.0.0.sql",
        "demo--1.0.0--1.1.0.sql",
        "demo--1.1.0--1.2.0.sql",
        "demo--1.2.0--2.0.0.sql",
        "demo--1.0.0--2.0.0.sql",
        "demo--1.2.0.sql",
    ];

    #[test]
    fn finds_shortest_paths_and_shortcuts() {
        let s = set(DEMO);
        assert_eq!(s.latest(), Some(&v("2.0.0")));
        assert_eq!(
            steps(&s, Some("1.0.0"), "2.0.0").unwrap(),
            ["demo--1.0.0--2.0.0.sql"]
        );
        assert_eq!(
            steps(&s, Some("1.1.0"), "2.0.0").unwrap(),
            ["demo--1.1.0--1.2.0.sql", "demo--1.2.0--2.0.0.sql"]
        );
        assert_eq!(steps(&s, None, "1.2.0").unwrap(), ["demo--1.2.0.sql"]);
        // Two chains of two steps: the one starting from the newer base wins.
        assert_eq!(
            steps(&s, None, "2.0.0").unwrap(),
            ["demo--1.2.0.sql", "demo--1.2.0--2.0.0.sql"]
        );
        assert_eq!(
            steps(&s, Some("2.0.0"), "2.0.0").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(steps(&s, Some("2.0.0"), "1.0.0"), None);
        assert_eq!(steps(&s, Some("0.9.0"), "1.0.0"), None);
    }

    #[test]
    fn reads_both_naming_schemes() {
        let n = Naming::Dotted;
        assert_eq!(
            n.split("pgstac.0.8.6-0.9.0.sql"),
            Some(("pgstac", Some("0.8.6"), "0.9.0"))
        );
        assert_eq!(n.split("pgstac.0.9.0.sql"), Some(("pgstac", None, "0.9.0")));
        assert_eq!(
            n.split("pgstac.unreleased.sql"),
            Some(("pgstac", None, "unreleased"))
        );
        let e = Naming::Extension;
        assert_eq!(
            e.split("host--0.1.0--0.2.0.sql"),
            Some(("host", Some("0.1.0"), "0.2.0"))
        );
        assert_eq!(e.split("host--0.1.0.sql"), Some(("host", None, "0.1.0")));
        assert_eq!(e.split("host--1--2--3.sql"), None);
        assert_eq!(e.split("host--1.txt"), None);
    }

    #[test]
    fn refuses_bad_and_duplicate_names() {
        let bad = |names: &[&str]| {
            MigrationSet::from_files(
                "demo",
                Naming::Extension,
                names.iter().map(|n| (n.to_string(), String::new())),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(bad(&["other--1.0.sql"]).contains("prefix is 'other'"));
        assert!(bad(&["demo--1.0--1.0.sql"]).contains("to itself"));
        assert!(bad(&["demo--1 0.sql"]).contains("not a version"));
        assert!(bad(&["demo.1.0.sql"]).contains("does not follow"));
    }

    #[test]
    fn builtin_set_installs_its_latest_version_in_one_step() {
        let s = MigrationSet::builtin();
        let latest = s.latest().unwrap().clone();
        let plan = s.plan(None, &latest).unwrap();
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].kind(), "base");
        // Every version can be reached from nothing.
        for f in &s.files {
            assert!(s.plan(None, &f.to).is_some(), "{}", f.name);
        }
    }
}
