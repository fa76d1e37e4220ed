#!/usr/bin/env python3
"""STAC load benchmarks (issue 3): the same Sentinel-2-like items (~4.5 KB, 15 assets) loaded by

  1. psql \\copy into a plain (id text primary key, content jsonb) table   -- the floor
  2. pypgstac 0.10 (`pypgstac load items`, from PyPI, in a throwaway venv) into pgstac
  3. `host load items` into the built-in schema
  4. the same through set_collection.wasm (every item moved to another collection)
  5. `host load items` of 1,000,000 items streamed on stdin: peak memory

Goals at 100,000 items: host >= 2x pypgstac's items/s, host >= the floor's items/s,
set_collection costs <= 10% more time, peak memory <= 100 MB for 1,000,000 items.

Every figure is the median of RUNS runs (default 3) into empty tables; each system gets a fresh
database of its own on the server HOST_DSN points at. Nothing is pinned: the server needs the
cores. Run from the project root after `cargo build --release -p host` and `scripts/build-plugins`.
Environment: RUNS, N_ITEMS (100000), N_MEM (1000000; 0 skips), HOST_DSN.
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "target/release/host")
WASM = os.path.join(ROOT, "target/wasm32-wasip2/release")
DATA = os.path.join(ROOT, ".bench")
RUNS = int(os.environ.get("RUNS", "3"))
N_ITEMS = int(os.environ.get("N_ITEMS", "100000"))
N_MEM = int(os.environ.get("N_MEM", "1000000"))
ADMIN = os.environ.get("HOST_DSN", "postgresql://host:host@127.0.0.1:55432/host")
COLLECTION = "sentinel-2-l2a"


def dsn(db):
    return ADMIN.rsplit("/", 1)[0] + "/" + db


def psql(db, *sql):
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn(db)]
    for s in sql:
        args += ["-c", s]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def fresh_db(name):
    psql(ADMIN.rsplit("/", 1)[1], f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(ADMIN.rsplit("/", 1)[1], f"CREATE DATABASE {name}")
    return dsn(name)


def ensure_items(n):
    path = os.path.join(DATA, f"s2-{n}.ndjson")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(n)], stdout=f, check=True)
        os.rename(path + ".tmp", path)
    return path


def ensure_pypgstac():
    venv = os.path.join(DATA, "venv-pypgstac-0.10.0")
    exe = os.path.join(venv, "bin", "pypgstac")
    if not os.path.exists(exe):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "pypgstac[psycopg]==0.10.0"], check=True)
    return exe


def collection_file(cid):
    path = os.path.join(DATA, f"collection-{cid}.json")
    with open(path, "w") as f:
        json.dump({"type": "Collection", "stac_version": "1.0.0", "id": cid, "description": "benchmark",
                   "license": "CC-BY-4.0", "links": [],
                   "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                              "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}, f)
    return path


def timed(args, stdin=None):
    """(wall seconds, CPU seconds of the process, peak RSS in KB)."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{args[:3]} failed with status {status}: {p.stderr.read().decode()[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def median_runs(setup, args):
    runs = []
    for _ in range(RUNS):
        setup()
        runs.append(timed(args))
    return runs


def main():
    items = ensure_items(N_ITEMS)
    size = os.path.getsize(items) / N_ITEMS
    pypgstac = ensure_pypgstac()
    results = []

    # 1. The floor.
    floor_db = "bench_floor"
    fresh_db(floor_db)
    psql(floor_db, "CREATE TABLE items (id text PRIMARY KEY GENERATED ALWAYS AS (content->>'id') STORED, content jsonb NOT NULL)")
    copy = f"\\copy items (content) FROM '{items}' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
    floor = median_runs(lambda: psql(floor_db, "TRUNCATE items"), ["psql", "-X", "-q", dsn(floor_db), "-c", copy])
    floor_wall = statistics.median(r[0] for r in floor)

    # 2. pypgstac into pgstac.
    pg_dsn = fresh_db("bench_pgstac")
    subprocess.run([pypgstac, "migrate", "--dsn", pg_dsn], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([pypgstac, "load", "collections", collection_file(COLLECTION), "--dsn", pg_dsn, "--method", "upsert"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pg = median_runs(lambda: psql("bench_pgstac", "DELETE FROM pgstac.items"),
                     [pypgstac, "load", "items", items, "--dsn", pg_dsn, "--method", "insert"])
    pg_wall = statistics.median(r[0] for r in pg)

    # 3. and 4. host, plain and through set_collection.
    host_dsn = fresh_db("bench_host")
    subprocess.run([HOST, "migrate", "--dsn", host_dsn], check=True, stdout=subprocess.DEVNULL)
    for cid in (COLLECTION, "moved"):
        subprocess.run([HOST, "load", "collections", collection_file(cid), "--dsn", host_dsn, "--method", "upsert"],
                       check=True, stdout=subprocess.DEVNULL)
    empty = lambda: psql("bench_host", "TRUNCATE host.items")
    plain = median_runs(empty, [HOST, "load", "items", items, "--dsn", host_dsn, "--no-progress"])
    moved = median_runs(empty, [HOST, "load", "items", items, "--dsn", host_dsn, "--no-progress",
                                "--plugin", os.path.join(WASM, "set_collection.wasm"), "--plugin-arg", "collection=moved"])
    host_wall = statistics.median(r[0] for r in plain)
    moved_wall = statistics.median(r[0] for r in moved)

    walls = lambda runs: ["%.2fs" % r[0] for r in runs]
    results.append(("floor: psql \\copy items/s", N_ITEMS / floor_wall, None, None, f"{size:.0f} B/item, walls {walls(floor)}"))
    results.append(("pypgstac 0.10 items/s", N_ITEMS / pg_wall, None, None, f"walls {walls(pg)}"))
    results.append(("host items/s", N_ITEMS / host_wall, ">=", 2 * N_ITEMS / pg_wall,
                    f"goal 2x pypgstac; walls {walls(plain)}, host CPU {['%.2fs' % r[1] for r in plain]}"))
    results.append(("host / floor (items/s ratio)", floor_wall / host_wall, ">=", 1.0, "goal: no slower than \\copy"))
    results.append(("set_collection extra time %", 100 * (moved_wall / host_wall - 1), "<=", 10,
                    f"walls {walls(moved)}, host CPU {['%.2fs' % r[1] for r in moved]}"))

    # 5. Peak memory at N_MEM items, streamed from the generator.
    if N_MEM:
        empty()
        gen = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(N_MEM)], stdout=subprocess.PIPE)
        wall, cpu, rss = timed([HOST, "load", "items", "-", "--dsn", host_dsn, "--no-progress"], stdin=gen.stdout)
        gen.wait()
        results.append((f"peak RSS MB, {N_MEM:,} items", rss / 1024, "<=", 100, f"{wall:.0f}s wall (generator on the same cores)"))

    print(f"{'measure':32} {'median':>14} {'goal':>14}  ok   notes")
    ok_all = True
    for name, value, op, goal, notes in results:
        if op is None:
            print(f"{name:32} {value:14,.2f} {'':>14}       {notes}")
            continue
        ok = value >= goal if op == ">=" else value <= goal
        ok_all &= ok
        print(f"{name:32} {value:14,.2f} {op + ' ' + format(goal, ',.2f'):>14}  {'yes' if ok else 'NO ':3}  {notes}")
    for db in ("bench_floor", "bench_pgstac", "bench_host"):
        psql(ADMIN.rsplit("/", 1)[1], f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
