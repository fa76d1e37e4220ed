#!/usr/bin/env python3
"""Loading into pgstac (issues 5 and 11): `host load items` vs `pypgstac load items`, into the
same pgstac 0.10.0 database (installed by `host migrate --dir` from the pypgstac wheel), the same
Sentinel-2-like items (bench/gen_items.py, ~4.5 KB, 15 assets), each method; and the floor: a
bare `COPY` into pgstac.items of exactly the rows host wrote (dehydrated, precomputed, binary
format as host sends them) into the same empty collection, its partition made beforehand.

The collection has item_assets matching the items' assets, so both tools dehydrate every item
against a real base item. Each run starts from a copy of one template database (pgstac and the
collection, no items). SCENARIO=empty (default) loads into the empty collection; SCENARIO=existing
first loads the same items with insert (untimed) and then times the method over them.

After the first run of each method the stored rows of both tools are compared (id, collection,
datetime, end_datetime, geometry, content, private): "same rows" says whether host wrote exactly
what pypgstac wrote.

Goals (issue 11): host >= 3x pypgstac's items/s for every method, and host's insert into an
empty collection within 1.1x of the floor's time. Figures are medians of RUNS (default 3); every
run of every tool starts from a copy of one template database, and the tools alternate.
Run from the project root after `cargo build --release -p host`.
Environment: RUNS, N_ITEMS (100000), SCENARIO, METHODS, HOST_DSN, HOST_BIN (the host binary;
default target/release/host), PYPGSTAC (a pypgstac 0.10.0 binary; default: the project's .venv
from scripts/venv).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.environ.get("HOST_BIN", os.path.join(ROOT, "target/release/host"))
DATA = os.path.join(ROOT, ".bench")
RUNS = int(os.environ.get("RUNS", "3"))
N_ITEMS = int(os.environ.get("N_ITEMS", "100000"))
SCENARIO = os.environ.get("SCENARIO", "empty")
ADMIN = os.environ.get("HOST_DSN", "postgresql://host:host@127.0.0.1:55432/host")
COLLECTION = "sentinel-2-l2a"
METHODS = os.environ.get("METHODS", "insert,insert_ignore,upsert,delsert").split(",")
TEMPLATE = "bench_pgstac_tmpl"
RUN_DB = "bench_pgstac_run"


def dsn(db):
    return ADMIN.rsplit("/", 1)[0] + "/" + db


def psql(db, *sql, out=False):
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", dsn(db)]
    for s in sql:
        args += ["-c", s]
    r = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    return r.stdout.strip() if out else None


def admin(sql):
    psql(ADMIN.rsplit("/", 1)[1], sql)


def ensure_items(n):
    path = os.path.join(DATA, f"s2-{n}.ndjson")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(n)], stdout=f, check=True)
        os.rename(path + ".tmp", path)
    return path


def ensure_pypgstac():
    exe = os.environ.get("PYPGSTAC")
    if exe:
        return exe
    python = subprocess.run([os.path.join(ROOT, "scripts/venv")], check=True, stdout=subprocess.PIPE,
                            text=True).stdout.strip()
    return os.path.join(os.path.dirname(python), "pypgstac")


def collection_file():
    """Sentinel-2 L2A with item_assets like the Planetary Computer's: what items share."""
    bands = [("B01", 60), ("B02", 10), ("B03", 10), ("B04", 10), ("B05", 20), ("B06", 20), ("B07", 20),
             ("B08", 10), ("B8A", 20), ("B09", 60), ("B11", 20), ("B12", 20)]
    item_assets = {name: {"type": "image/tiff; application=geotiff; profile=cloud-optimized",
                          "title": f"Band {name} - {res}m", "roles": ["data"], "gsd": float(res)}
                   for name, res in bands}
    for name in ("AOT", "SCL", "visual"):
        item_assets[name] = {"type": "image/tiff; application=geotiff", "roles": ["data"], "title": name}
    path = os.path.join(DATA, f"collection-{COLLECTION}-item-assets.json")
    with open(path, "w") as f:
        json.dump({"type": "Collection", "stac_version": "1.0.0", "id": COLLECTION, "description": "benchmark",
                   "license": "CC-BY-4.0", "links": [], "item_assets": item_assets,
                   "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                              "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}, f)
    return path


def timed(args, env=None):
    """(wall seconds, CPU seconds of the process and its children)."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{' '.join(args[:4])} failed with status {status}: {p.stderr.read().decode()[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime


def fresh_run_db():
    admin(f"DROP DATABASE IF EXISTS {RUN_DB} WITH (FORCE)")
    admin(f"CREATE DATABASE {RUN_DB} TEMPLATE {TEMPLATE}")
    return dsn(RUN_DB)


ITEM_COLUMNS = "id, geometry, collection, datetime, end_datetime, content, private"
FLOOR_ROWS = os.path.join(DATA, "pgstac-floor-rows.bin")


def host_compression():
    """The TOAST compression host's rows have (host uses lz4 where the server's default is untouched)."""
    return psql(RUN_DB, "SELECT coalesce(min(pg_column_compression(content)), 'pglz') FROM pgstac.items", out=True)


def save_floor_rows():
    """The rows host wrote, as the binary COPY the floor sends, and their time ranges."""
    psql(RUN_DB, f"\\copy (SELECT {ITEM_COLUMNS} FROM pgstac.items ORDER BY collection, id) "
                 f"TO '{FLOOR_ROWS}' WITH (FORMAT binary)")
    return psql(RUN_DB, "SELECT collection || '|' || tstzrange(min(datetime), max(datetime), '[]') || '|' || "
                        "tstzrange(min(end_datetime), max(end_datetime), '[]') FROM pgstac.items GROUP BY collection",
                out=True).splitlines()


def floor_run(ranges, compression):
    """A bare COPY of host's rows into pgstac.items, the partitions made first (untimed), with the
    TOAST compression host's rows have."""
    d = fresh_run_db()
    for r in ranges:
        c, dt, edt = r.split("|")
        psql(RUN_DB, f"SELECT pgstac.check_partition('{c}', '{dt}', '{edt}')")
    env = dict(os.environ, PGOPTIONS=f"-c default_toast_compression={compression}")
    return timed(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", d, "-c",
                  f"\\copy pgstac.items ({ITEM_COLUMNS}) FROM '{FLOOR_ROWS}' WITH (FORMAT binary)"], env)


ROWS_DIGEST = ("SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, collection, datetime, end_datetime, "
               "encode(ST_AsEWKB(geometry), 'hex'), content::text, private::text), E'\\n' ORDER BY collection, id)) "
               "FROM pgstac.items")


def main():
    items = ensure_items(N_ITEMS)
    size = os.path.getsize(items) / N_ITEMS
    pypgstac = ensure_pypgstac()
    migrations = subprocess.run([os.path.join(ROOT, "scripts/pgstac-migrations"), "0.10.0"], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()

    admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    admin(f"CREATE DATABASE {TEMPLATE}")
    subprocess.run([HOST, "migrate", "--dir", migrations, "--dsn", dsn(TEMPLATE)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([HOST, "load", "collections", collection_file(), "--dsn", dsn(TEMPLATE)], check=True,
                   stdout=subprocess.DEVNULL)

    commands = {
        "pypgstac": lambda d, m: [pypgstac, "load", "items", items, "--dsn", d, "--method", m],
        "host": lambda d, m: [HOST, "load", "items", items, "--dsn", d, "--method", m, "--no-progress"],
    }
    rows = []
    floor_ranges = None
    compression = None
    floor_walls, floor_cpus = [], []
    for method in METHODS:
        walls = {"pypgstac": [], "host": []}
        cpus = {"pypgstac": [], "host": []}
        digests = {}
        for run in range(RUNS):
            for system in ("pypgstac", "host"):
                d = fresh_run_db()
                if SCENARIO == "existing":
                    timed(commands[system](d, "insert"))
                wall, cpu = timed(commands[system](d, method))
                walls[system].append(wall)
                cpus[system].append(cpu)
                n = int(psql(RUN_DB, "SELECT count(*) FROM pgstac.items", out=True))
                if n != N_ITEMS:
                    sys.exit(f"{system} {method}: {n} items in pgstac.items, expected {N_ITEMS}")
                if run == 0:
                    digests[system] = psql(RUN_DB, ROWS_DIGEST, out=True)
                if system == "host" and method == "insert" and SCENARIO == "empty":
                    if floor_ranges is None:
                        floor_ranges = save_floor_rows()
                        compression = host_compression()
                        print(f"host's rows are compressed with {compression}; so are the floor's", flush=True)
                    # The floor right after host, on the same rows.
                    fw, fc = floor_run(floor_ranges, compression)
                    n = int(psql(RUN_DB, "SELECT count(*) FROM pgstac.items", out=True))
                    if n != N_ITEMS:
                        sys.exit(f"floor: {n} items in pgstac.items, expected {N_ITEMS}")
                    if run == 0 and psql(RUN_DB, ROWS_DIGEST, out=True) != digests["host"]:
                        sys.exit("floor: the rows differ from host's")
                    floor_walls.append(fw)
                    floor_cpus.append(fc)
        p = statistics.median(walls["pypgstac"])
        h = statistics.median(walls["host"])
        rows.append((method, N_ITEMS / p, N_ITEMS / h, p / h, digests["pypgstac"] == digests["host"],
                     walls, cpus))
        print(f"{method}: pypgstac {N_ITEMS / p:,.0f}/s, host {N_ITEMS / h:,.0f}/s, {p / h:.2f}x", flush=True)

    admin(f"DROP DATABASE IF EXISTS {RUN_DB} WITH (FORCE)")
    admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")

    print()
    print(f"{N_ITEMS:,} items, {size:.0f} B/item, scenario {SCENARIO}, median of {RUNS}; load average {os.getloadavg()}")
    print(f"| method | pypgstac items/s | host items/s | host / pypgstac | goal >= 3x | same rows | runs pypgstac (s) | runs host (s) | CPU s host (median) | CPU s host, runs |")
    print(f"|---|---:|---:|---:|---|---|---|---|---:|---|")
    ok_all = True
    fmt = lambda xs: " ".join(f"{x:.2f}" for x in xs)
    for method, p, h, ratio, same, walls, cpus in rows:
        ok = ratio >= 3
        ok_all &= ok
        print(f"| {method} | {p:,.0f} | {h:,.0f} | **{ratio:.2f}×** | {'yes' if ok else 'NO'} | "
              f"{'yes' if same else 'no'} | {fmt(walls['pypgstac'])} | {fmt(walls['host'])} | "
              f"{statistics.median(cpus['host']):.2f} | {fmt(cpus['host'])} |")
    if floor_walls:
        f = statistics.median(floor_walls)
        h = statistics.median(dict((r[0], r[5]) for r in rows)["insert"]["host"])
        ok = h <= 1.1 * f
        ok_all &= ok
        print()
        print(f"| floor (bare COPY of host's rows) | s | items/s | host insert / floor | goal <= 1.1x | runs floor (s) |")
        print(f"|---|---:|---:|---:|---|---|")
        print(f"| median | {f:.2f} | {N_ITEMS / f:,.0f} | **{h / f:.2f}×** | {'yes' if ok else 'NO'} | {fmt(floor_walls)} |")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
