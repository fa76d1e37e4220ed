//! The xmat library entry point, as other commands use it: a job run against
//! a snapshot exported elsewhere (what `host stream`'s initial copy does with
//! a replication slot's snapshot), the plan and plugins it gives back, and
//! errors matched by their type, not their text.

mod util;

use std::sync::Arc;

use host::xmat::{self, Failure, JobFile, Options, Quiet, Snapshot, TableError};
use util::TestDb;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_job_reads_the_snapshot_it_is_given() {
    let src = TestDb::new("api_src");
    let dst = TestDb::new2("api_dst");
    src.client()
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i;",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.toml");
    std::fs::write(
        &file,
        format!(
            "[copy]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
             target = {{ database = \"{}\", schema = \"snap\" }}\ntables = [\"*\"]\n\
             [bad]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
             target = {{ database = \"{}\", schema = \"bad\" }}\n\
             [bad.tables.t]\nselect = {{ v = \"no_such_function(v)\" }}\n",
            src.dsn, dst.dsn, src.dsn, dst.dsn
        ),
    )
    .unwrap();
    let jobs = JobFile::load(&file).unwrap();
    let dsn = src.dsn.clone();
    runtime().block_on(async move {
        // Someone else's transaction exports a snapshot, and stays open.
        let (holder, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        holder
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        let snapshot: String = holder
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .unwrap()
            .get(0);
        // Rows written after it are not in the copy.
        let (writer, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        writer
            .batch_execute("INSERT INTO t SELECT i, 'late' FROM generate_series(101, 150) i")
            .await
            .unwrap();

        let opts = Options {
            snapshot: Snapshot::Import(snapshot.clone()),
            ..Options::default()
        };
        let prepared = xmat::prepare(&jobs.jobs[0], &opts).await.unwrap();
        assert_eq!(prepared.snapshot(), snapshot);
        let plan = prepared.plan();
        assert_eq!(plan.tables.len(), 1);
        assert_eq!(plan.tables[0].name, "t");
        assert_eq!(
            plan.tables[0]
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "v"]
        );
        assert!(prepared.plugins().table(0).is_empty());
        let report = prepared.execute(Arc::new(Quiet)).await.unwrap();
        assert_eq!(report.rows_written, 100);
        holder.batch_execute("COMMIT").await.unwrap();

        // A snapshot that does not exist, and a SELECT the server refuses:
        // each failure is its own type, with the server's SQLSTATE.
        let gone = Options {
            snapshot: Snapshot::Import(snapshot),
            ..Options::default()
        };
        let e = xmat::prepare(&jobs.jobs[0], &gone).await.err().unwrap();
        match &*e.failure {
            Failure::Statement { source, .. } => {
                assert_eq!(source.code.as_deref(), Some("22023"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let e = xmat::run(&jobs.jobs[1], &Options::default(), Arc::new(Quiet))
            .await
            .err()
            .unwrap();
        assert_eq!(e.job, "bad");
        match &*e.failure {
            Failure::Table {
                table,
                source: TableError::Select(s),
            } => {
                assert_eq!(table, "t");
                assert_eq!(s.code.as_deref(), Some("42883"), "undefined function: {e}");
            }
            other => panic!("{other:?}"),
        }
    });
    assert_eq!(
        xmat_count(&dst, "SELECT count(*) || '/' || max(id) FROM snap.t"),
        "100/100"
    );
}

fn xmat_count(db: &TestDb, sql: &str) -> String {
    db.client().query_one(sql, &[]).unwrap().get(0)
}
