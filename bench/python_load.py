"""host's Python package beside pypgstac's Loader.load_items, on the same items
from Python, in one run: each loads N items (dicts made from the pgstac test
items with new ids) into a fresh pgstac database; prints items/s and the ratio.

    eval "$(scripts/pg env)"; HOST_PGSTAC_MIGRATIONS=$(scripts/pgstac-migrations 0.10.0) \\
        .venv/bin/python bench/python_load.py [N] [ROUNDS]

Also reports the peak RSS of a host load of a generator (flat memory: compare N), and the
floor: a bare binary COPY of exactly the rows host wrote into a fresh pgstac's items (partitions
made first, untimed), with the TOAST compression host's rows have — what the server alone costs.
"""

import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods

import host

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "stac" / "pgstac-testdata"
ADMIN = os.environ["HOST_DSN"]
MIGRATIONS = os.environ["HOST_PGSTAC_MIGRATIONS"]


def fresh():
    name = f"bench_py_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(ADMIN, dbname=name)
    host.connect(dsn).migrate(dir=MIGRATIONS)
    return name, dsn


def drop(name):
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def collection():
    return [json.loads(l) for l in open(DATA / "collections.ndjson")][0]


BASE = [json.loads(l) for l in open(DATA / "items.ndjson")]


def items(n):
    for i in range(n):
        yield dict(BASE[i % len(BASE)], id=f"bench-{i}")


ITEM_COLUMNS = "id, geometry, collection, datetime, end_datetime, content, private"
FLOOR_ROWS = os.path.join(tempfile.gettempdir(), "bench-python-floor-rows.bin")


def psql(dsn, sql, env=None):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                       check=True, stdout=subprocess.PIPE, text=True, env=env)
    return r.stdout.strip()


def run_host(n):
    """Loads n items; returns items/s, CPU s and what the floor needs (host's rows saved)."""
    name, dsn = fresh()
    try:
        db = host.connect(dsn)
        db.load_collections(collection())
        t, c = time.perf_counter(), time.process_time()
        s = db.load_items(items(n))
        dt, dc = time.perf_counter() - t, time.process_time() - c
        assert s.loaded == n, s
        psql(dsn, f"\\copy (SELECT {ITEM_COLUMNS} FROM pgstac.items ORDER BY collection, id) "
                  f"TO '{FLOOR_ROWS}' WITH (FORMAT binary)")
        ranges = psql(dsn, "SELECT collection || '|' || tstzrange(min(datetime), max(datetime), '[]') || '|' || "
                           "tstzrange(min(end_datetime), max(end_datetime), '[]') FROM pgstac.items "
                           "GROUP BY collection").splitlines()
        compression = psql(dsn, "SELECT coalesce(min(pg_column_compression(content)), 'pglz') FROM pgstac.items")
        return n / dt, dc, (ranges, compression)
    finally:
        drop(name)


def run_floor(n, rows):
    ranges, compression = rows
    name, dsn = fresh()
    try:
        host.connect(dsn).load_collections(collection())
        for r in ranges:
            c, dt, edt = r.split("|")
            psql(dsn, f"SELECT pgstac.check_partition('{c}', '{dt}', '{edt}')")
        env = dict(os.environ, PGOPTIONS=f"-c default_toast_compression={compression}")
        t = time.perf_counter()
        psql(dsn, f"\\copy pgstac.items ({ITEM_COLUMNS}) FROM '{FLOOR_ROWS}' WITH (FORMAT binary)", env)
        dt = time.perf_counter() - t
        assert psql(dsn, "SELECT count(*) FROM pgstac.items") == str(n)
        return n / dt
    finally:
        drop(name)


def run_pypgstac(n):
    name, dsn = fresh()
    try:
        loader = Loader(db=PgstacDB(dsn=dsn))
        loader.load_collections(iter([collection()]), insert_mode=Methods.insert)
        t, c = time.perf_counter(), time.process_time()
        loader.load_items(items(n), insert_mode=Methods.insert)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        return n / dt, dc
    finally:
        drop(name)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ours, theirs, our_cpu, their_cpu, floors = [], [], [], [], []
    for _ in range(rounds):
        rate, cpu, rows = run_host(n)
        ours.append(rate)
        our_cpu.append(cpu)
        floors.append(run_floor(n, rows))
        rate, cpu = run_pypgstac(n)
        theirs.append(rate)
        their_cpu.append(cpu)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"{n} items from a Python generator, {rounds} rounds, medians:")
    print(f"  host (Python package)   {o:10.0f} items/s  {[round(x) for x in ours]}")
    print(f"  pypgstac Loader         {t:10.0f} items/s  {[round(x) for x in theirs]}")
    print(f"  ratio host/pypgstac     {o / t:10.2f}x")
    f = statistics.median(floors)
    print(f"  floor (bare COPY)       {f:10.0f} items/s  {[round(x) for x in floors]}")
    print(f"  host / floor (time)     {f / o:10.2f}x   floor / pypgstac {f / t:.2f}x")
    # This process's CPU (all its threads; the servers' work is not in it).
    print(f"  client CPU s, host      {statistics.median(our_cpu):10.2f}  {[round(x, 2) for x in our_cpu]}")
    print(f"  client CPU s, pypgstac  {statistics.median(their_cpu):10.2f}  {[round(x, 2) for x in their_cpu]}")
    print(f"  peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
