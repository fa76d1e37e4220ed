"""Fixtures for the Python package's tests: a fresh database per test on the
project's local cluster (HOST_DSN, from `scripts/pg env`), with pgstac
installed from pypgstac's migration files (HOST_PGSTAC_MIGRATIONS)."""

import itertools
import json
import os
import pathlib
import uuid

import psycopg
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "fixtures" / "stac" / "pgstac-testdata"
_names = itertools.count()


def admin_dsn():
    dsn = os.environ.get("HOST_DSN")
    if not dsn:
        pytest.skip("HOST_DSN is not set: run through scripts/test (or eval \"$(scripts/pg env)\")")
    return dsn


def with_dbname(dsn, name):
    return psycopg.conninfo.make_conninfo(dsn, dbname=name)


class Database:
    def __init__(self, label):
        self.name = f"py_{label}_{os.getpid()}_{next(_names)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(admin_dsn(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        self.dsn = with_dbname(admin_dsn(), self.name)

    def query(self, sql, *args):
        with psycopg.connect(self.dsn) as c:
            c.execute("SET search_path TO pgstac, public")
            cur = c.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def drop(self):
        with psycopg.connect(admin_dsn(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(request):
    db = Database(request.node.name[:20].replace("[", "_").replace("]", "").lower())
    yield db
    db.drop()


def pgstac_migrations():
    d = os.environ.get("HOST_PGSTAC_MIGRATIONS")
    if not d:
        pytest.skip("HOST_PGSTAC_MIGRATIONS is not set: run through scripts/test")
    return pathlib.Path(d)


@pytest.fixture
def make_pgstac_db():
    """Fresh databases with pgstac installed by host's migrate (pgstac's own files)."""
    import host

    made = []

    def make(label="pgstac"):
        db = Database(label)
        made.append(db)
        with host.connect(db.dsn) as client:
            client.migrate(dir=pgstac_migrations())
        return db

    yield make
    for db in made:
        db.drop()


def read_ndjson(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def item_rows(db):
    """Every item row pypgstac and host write, as text, in (collection, id) order."""
    return db.query(
        "SELECT collection, id, datetime::text, end_datetime::text, "
        "encode(ST_AsEWKB(geometry), 'hex'), content::text, private::text "
        "FROM pgstac.items ORDER BY collection, id"
    )


def collection_rows(db):
    return db.query(
        "SELECT id, content::text, base_item::text, partition_trunc::text, private::text "
        "FROM pgstac.collections ORDER BY id"
    )
