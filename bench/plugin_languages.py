#!/usr/bin/env python3
"""Plugins in Rust and Python against the same transform compiled natively (issue 15).

In one run, each measured as the median CPU time (user+sys) of RUNS runs pinned to core 0
(the machine is shared: CPU time is what the run itself used; walls are printed too):
  1. set_collection over Sentinel-2-like items: native in-process (bench/native), Rust wasm
     through `host plugin run`, Python wasm through `host plugin run`    goal wasm <= 1.25x native
  2. anonymize (three columns: email, phone, name) over 5-column rows: the same three
                                                                        goal wasm <= 1.3x native
  3. a cached Python plugin ready to run (`host plugin inspect --json`'s ms: digest, cache
     check and map, link, instantiate, first call)                      goal <= 50 ms
  4. peak RSS per Python instance: max RSS of `host plugin run` with a chain of 1 and of 5
     instances of the Python plugin; the slope is one instance's cost.
Run from the project root after `cargo build --release -p host -p plugin-bench-native` and
`scripts/build-plugins`.
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
NATIVE = os.path.join(ROOT, "target/release/plugin-bench-native")
WASM = os.path.join(ROOT, "target/wasm32-wasip2/release")
DATA = os.path.join(ROOT, ".bench")
RUNS = int(os.environ.get("RUNS", "5"))
N_ITEMS = int(os.environ.get("N_ITEMS", "20000"))
N_ROWS = int(os.environ.get("N_ROWS", "200000"))
# Python is ~2 orders of magnitude slower: fewer records, rates compared per record.
PY_ITEMS = int(os.environ.get("PY_ITEMS", "2000"))
PY_ROWS = int(os.environ.get("PY_ROWS", "5000"))
COLUMNS = "id:integer,email,phone,name,created:timestamptz"
ANON = ["key=bench-key", "email=email", "phone=phone", "name=name"]


def ensure(path, cmd):
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            subprocess.run(cmd, stdout=f, check=True)
        os.rename(path + ".tmp", path)
    return path


def head(path, n, out):
    if not os.path.exists(out):
        with open(path) as src, open(out + ".tmp", "w") as dst:
            for i, line in enumerate(src):
                if i == n:
                    break
                dst.write(line)
        os.rename(out + ".tmp", out)
    return out


def timed(args, env, stdin=None):
    """(wall s, CPU s, max RSS KiB, stdout bytes) of one run pinned to core 0."""
    f = open(stdin, "rb") if stdin else subprocess.DEVNULL
    out = tempfile.TemporaryFile()
    t = time.perf_counter()
    p = subprocess.Popen(["taskset", "-c", "0", *args], stdin=f, stdout=out, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode()
    if status != 0:
        sys.exit(f"{args[:4]} failed ({status}): {err}")
    out.seek(0)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, out.read()


def peak_rss_kib(args, env):
    """host's own peak RSS, from GNU time. Not `timed`'s ru_maxrss: a child
    forked from this process and exec'd keeps this process's high-water mark
    from before the exec (Linux folds the old image's into the child's
    maxrss), so every run read as this script's own peak (534 MiB, whatever
    the chain)."""
    with tempfile.NamedTemporaryFile("r") as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name, *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(f.read().split()[-1])


def median_run(args, env, stdin=None):
    timed(args, env, stdin)  # warm the compile cache and the page cache
    runs = [timed(args, env, stdin) for _ in range(RUNS)]
    return statistics.median(r[1] for r in runs), statistics.median(r[0] for r in runs), runs[0][3]


def main():
    items = ensure(os.path.join(DATA, f"s2-{N_ITEMS}.ndjson"),
                   [sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(N_ITEMS)])
    py_items = head(items, PY_ITEMS, os.path.join(DATA, f"s2-{N_ITEMS}-head{PY_ITEMS}.ndjson"))
    rows = ensure(os.path.join(DATA, f"rows-{N_ROWS}.copy"),
                  [sys.executable, os.path.join(ROOT, "bench/gen_rows.py"), str(N_ROWS)])
    py_rows = head(rows, PY_ROWS, os.path.join(DATA, f"rows-{N_ROWS}-head{PY_ROWS}.copy"))
    cache = tempfile.mkdtemp(prefix="host-bench-cache-")
    env = dict(os.environ, HOST_CACHE_DIR=cache)
    w = lambda name: os.path.join(WASM, f"{name}.wasm")
    table = []

    # 1. set_collection
    sc_args = ["--plugin-arg", "collection=moved"]
    native = median_run([NATIVE, "items", items, "collection=moved"], env)
    rust = median_run([HOST, "plugin", "run", w("set_collection"), items, *sc_args], env)
    # Pure Python is ~30-1500x slower per record: a batch may take longer than the default 1s.
    slow = ["--plugin-time", "120s"]
    py = median_run([HOST, "plugin", "run", w("py_set_collection"), py_items, *sc_args, *slow], env)
    py_native = median_run([NATIVE, "items", py_items, "collection=moved"], env)
    assert rust[2] == native[2], "Rust wasm and native outputs differ"
    assert py[2] == py_native[2], "Python and native outputs differ"
    per = lambda r, n: r[0] / n * 1e6
    table.append(("set_collection native", per(native, N_ITEMS), "us/item CPU", None, None))
    table.append(("set_collection Rust wasm", per(rust, N_ITEMS), "us/item CPU", rust[0] / native[0], 1.25))
    table.append(("set_collection Python wasm", per(py, PY_ITEMS), "us/item CPU",
                  per(py, PY_ITEMS) / per(native, N_ITEMS), None))
    table.append(("  Python vs Rust wasm", per(py, PY_ITEMS) / per(rust, N_ITEMS), "x", None, None))

    # 2. anonymize
    an_args = ["--rows", "--columns", COLUMNS] + [a for p in ANON for a in ("--plugin-arg", p)]
    native = median_run([NATIVE, "rows", rows, COLUMNS, *ANON], env)
    rust = median_run([HOST, "plugin", "run", w("anonymize"), rows, *an_args], env)
    py = median_run([HOST, "plugin", "run", w("py_anonymize"), py_rows, *an_args, *slow], env)
    py_native = median_run([NATIVE, "rows", py_rows, COLUMNS, *ANON], env)
    assert rust[2] == native[2], "Rust wasm and native outputs differ"
    assert py[2] == py_native[2], "Python and native outputs differ"
    table.append(("anonymize native", per(native, N_ROWS), "us/row CPU", None, None))
    table.append(("anonymize Rust wasm", per(rust, N_ROWS), "us/row CPU", rust[0] / native[0], 1.3))
    table.append(("anonymize Python wasm", per(py, PY_ROWS), "us/row CPU",
                  per(py, PY_ROWS) / per(native, N_ROWS), None))
    table.append(("  Python vs Rust wasm", per(py, PY_ROWS) / per(rust, N_ROWS), "x", None, None))

    # 3. cached Python plugin ready
    ms = []
    for i in range(RUNS * 4 + 1):
        out = subprocess.run(["taskset", "-c", "0", HOST, "plugin", "inspect", "--json", w("py_set_collection")],
                             capture_output=True, check=True, env=env)
        v = json.loads(out.stdout)
        if i > 0:
            assert v["compile"]["cache"] == "hit", v
            ms.append(v["compile"]["ms"])
    table.append(("cached Python plugin ready", statistics.median(ms), "ms", None, 50))

    # 4. RSS per Python instance: chains of 1 and 5 instances over the same 10 items.
    ten = head(items, 10, os.path.join(DATA, "s2-head10.ndjson"))
    def rss(n):
        args = [HOST, "plugin", "run", w("py_set_collection"), ten, "--plugin-arg", "collection=a"]
        for _ in range(n - 1):
            args += ["--plugin", w("py_set_collection"), "--plugin-arg", "collection=a"]
        timed(args, env)
        return statistics.median(peak_rss_kib(args, env) for _ in range(3)) / 1024
    one, five = rss(1), rss(5)
    table.append(("max RSS, 1 Python instance", one, "MiB", None, None))
    table.append(("RSS per extra Python instance", (five - one) / 4, "MiB", None, None))

    print(f"{'measure':34} {'value':>12} {'unit':12} {'x native':>9} {'goal':>6}  ok")
    ok_all = True
    for name, value, unit, ratio, goal in table:
        check = ratio if ratio is not None and goal is not None else value if goal is not None else None
        ok = "" if goal is None else ("yes" if check <= goal else "NO")
        ok_all &= ok != "NO"
        r = f"{ratio:.2f}x" if ratio is not None else ""
        g = f"{goal}" if goal is not None else ""
        print(f"{name:34} {value:12.3f} {unit:12} {r:>9} {g:>6}  {ok}")
    print(f"(items {N_ITEMS}, Python items {PY_ITEMS}, rows {N_ROWS}, Python rows {PY_ROWS}, {RUNS} runs, "
          f"medians of CPU time on core 0)")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
