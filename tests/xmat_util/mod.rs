//! Shared by the `xmat*` integration tests: a source and a target database
//! per test, jobs files, and reading rows back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{TestDb, host, stderr, stdout};

/// A source database on cluster 1 and a target database on cluster 2.
pub struct Pair {
    pub src: TestDb,
    pub dst: TestDb,
    pub dir: tempfile::TempDir,
}

impl Pair {
    pub fn new(label: &str, setup: &str) -> Pair {
        let src = TestDb::new(&format!("xs_{label}"));
        let dst = TestDb::new2(&format!("xt_{label}"));
        src.client().batch_execute(setup).expect("source setup");
        Pair {
            src,
            dst,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A job from `src` schema `public` to `dst` schema `target`, with `tables` as written.
    pub fn job(&self, name: &str, target_schema: &str, tables: &str) -> String {
        format!(
            "[\"{name}\"]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
             target = {{ database = \"{}\", schema = \"{target_schema}\" }}\n{tables}\n",
            self.src.dsn, self.dst.dsn
        )
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs `host xmat` with this file and extra args.
    pub fn xmat(&self, file: &Path, args: &[&str]) -> Output {
        host()
            .arg("xmat")
            .args(args)
            .arg("-c")
            .arg(file)
            .output()
            .unwrap()
    }

    pub fn dst_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        rows(&self.dst, sql)
    }
}

/// Every row of a query, as text.
pub fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.client()
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// One column of a query, NULL as "NULL".
pub fn col(db: &TestDb, sql: &str) -> Vec<String> {
    rows(db, sql)
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_else(|| "NULL".into()))
        .collect()
}

pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "host failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

pub fn failed(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "host should have failed\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

pub fn schemas(db: &TestDb) -> Vec<String> {
    col(
        db,
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
         AND nspname NOT IN ('information_schema', 'public') ORDER BY 1",
    )
}
