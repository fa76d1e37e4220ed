#!/usr/bin/env python3
"""Plugin host benchmarks (issue 2), end to end through `host plugin run`.

Measures, pinned to one core (taskset -c 0), the median of several runs:
  1. set_collection.wasm over ~4.5 KB Sentinel-2-like items (15 assets)   goal >= 35,000 items/s
  2. anonymize.wasm over 5-column rows, one column anonymized              goal >= 1,000,000 rows/s
  3. a cached plugin ready to run (digest, cache load, link, instantiate,
     first call), as `host plugin inspect --json` reports it                goal <= 5 ms
Run from the project root after `cargo build --release -p host` and `scripts/build-plugins`.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "target/release/host")
WASM = os.path.join(ROOT, "target/wasm32-wasip2/release")
DATA = os.path.join(ROOT, ".bench")
RUNS = int(os.environ.get("RUNS", "5"))
N_ITEMS = int(os.environ.get("N_ITEMS", "100000"))
N_ROWS = int(os.environ.get("N_ROWS", "1000000"))


def ensure(path, cmd):
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            subprocess.run(cmd, stdout=f, check=True)
        os.rename(path + ".tmp", path)
    return path


def timed(args, stdin_path, env):
    """(wall seconds, CPU seconds) of one run pinned to core 0. Other work on the
    machine steals wall time from core 0; CPU time is what the run itself used."""
    with open(stdin_path, "rb") as f:
        t = time.perf_counter()
        p = subprocess.Popen(["taskset", "-c", "0", *args], stdin=f, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        if status != 0:
            sys.exit(f"{args[:4]} failed with status {status}")
        return wall, ru.ru_utime + ru.ru_stime


def main():
    items = ensure(os.path.join(DATA, f"s2-{N_ITEMS}.ndjson"),
                   [sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(N_ITEMS)])
    rows = ensure(os.path.join(DATA, f"rows-{N_ROWS}.copy"),
                  [sys.executable, os.path.join(ROOT, "bench/gen_rows.py"), str(N_ROWS)])
    size = os.path.getsize(items) / N_ITEMS
    cache = tempfile.mkdtemp(prefix="host-bench-cache-")
    env = dict(os.environ, HOST_CACHE_DIR=cache)
    sc = os.path.join(WASM, "set_collection.wasm")
    an = os.path.join(WASM, "anonymize.wasm")

    results = []
    # 1. set_collection
    args = [HOST, "plugin", "run", sc, "--plugin-arg", "collection=moved"]
    timed(args, items, env)  # warm the compile cache and the page cache
    runs = [timed(args, items, env) for _ in range(RUNS)]
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    results.append(("set_collection items/s (wall)", N_ITEMS / wall, ">=", 35000, f"{size:.0f} B/item, walls {['%.2fs' % r[0] for r in runs]}"))
    results.append(("set_collection items/CPU-s", N_ITEMS / cpu, ">=", 35000, f"cpu {['%.2fs' % r[1] for r in runs]}"))

    # 2. anonymize
    args = [HOST, "plugin", "run", an, "--rows", "--columns", "id:integer,email,phone,name,created:timestamptz",
            "--plugin-arg", "key=bench-key", "--plugin-arg", "email=email"]
    timed(args, rows, env)
    runs = [timed(args, rows, env) for _ in range(RUNS)]
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    results.append(("anonymize rows/s (wall)", N_ROWS / wall, ">=", 1000000, f"walls {['%.2fs' % r[0] for r in runs]}"))
    results.append(("anonymize rows/CPU-s", N_ROWS / cpu, ">=", 1000000, f"cpu {['%.2fs' % r[1] for r in runs]}"))

    # 3. cached plugin ready
    ms = []
    for i in range(RUNS * 4 + 1):
        out = subprocess.run(["taskset", "-c", "0", HOST, "plugin", "inspect", "--json", sc],
                             capture_output=True, check=True, env=env)
        v = json.loads(out.stdout)
        if i > 0:
            assert v["compile"]["cache"] == "hit", v
            ms.append(v["compile"]["ms"])
    results.append(("cached plugin ready ms", statistics.median(ms), "<=", 5, f"min {min(ms):.2f} max {max(ms):.2f}"))

    print(f"{'measure':32} {'median':>14} {'goal':>12}  ok   notes")
    ok_all = True
    for name, value, op, goal, notes in results:
        ok = value >= goal if op == ">=" else value <= goal
        ok_all &= ok
        print(f"{name:32} {value:14,.2f} {op+' '+format(goal, ','):>12}  {'yes' if ok else 'NO ':3}  {notes}")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
