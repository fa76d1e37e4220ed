#!/usr/bin/env python3
"""Multi-tenant benchmarks (issue 14), `host load items` pinned to one core (taskset -c 0):

  1. tenant b's items through set_collection, alone under the policy (`--policy P`, b's items only)
     and beside tenant a's hostile plugins in the same process (one a-item per 50 b-items, a's
     tenants looping, allocating past their cap, handing back megabytes, flooding stderr, each
     within its policy limits: 300 ms a call, 1 s of CPU for the run).    goal: >= 0.8x solo
  2. `host xmat`: tenant acme's job copying N_ROWS rows through `anonymize` (its secret key from
     the policy, its row predicate on the SELECT), alone, and beside tenant noisy's job in the
     same process (`--parallel-jobs 2`), whose row_hostile plugin spins on every row until its
     limits stop it (300 ms a call, `cpu = "1s"` for the run). acme's rows/s is its rows over its
     own job's seconds (the --json report).                                 goal: >= 0.8x solo
  3. the cost of the policy itself on a single-tenant load: the same items through the same
     set_collection, once by flags (--plugin ... --plugin-arg ...), once as
     `--policy P --tenant b` (digest check, scope on the way in and out, accounting), and once
     with `--audit FILE` too.                                                goal: <= 3% more time

b's items/s is its N_ITEMS over the load's wall time (the load stages all tenants' rows in one
COPY, so the hostile tenants' batches are in the same clock). Every figure is the median of RUNS
runs (default 3), each into a fresh database. Environment: RUNS, N_ITEMS (100000), N_ROWS
(1000000), PARTS (`load,xmat`), HOST_DSN.
Run through scripts/bench-tenants (builds first).
"""
import hashlib
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
RUNS = int(os.environ.get("RUNS", "3"))
N_ITEMS = int(os.environ.get("N_ITEMS", "100000"))
N_ROWS = int(os.environ.get("N_ROWS", "1000000"))
PARTS = os.environ.get("PARTS", "load,xmat").split(",")
ADMIN = os.environ.get("HOST_DSN", "postgresql://host:host@127.0.0.1:55432/host")
HOSTILE = [("loop", "loop"), ("alloc", "alloc"), ("big", "reject-bytes:2000000"), ("flood", "stderr:4000000")]


def dsn(db):
    return ADMIN.rsplit("/", 1)[0] + "/" + db


def psql(db, *sql):
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn(db)]
    for s in sql:
        args += ["-c", s]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def fresh_db(name):
    admin = ADMIN.rsplit("/", 1)[1]
    psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(admin, f"CREATE DATABASE {name}")
    d = dsn(name)
    subprocess.run([HOST, "migrate", "--dsn", d], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    colls = os.path.join(DATA, "tenant-collections.ndjson")
    with open(colls, "w") as f:
        for c in ["b-in", "b-out"] + [n for n, _ in HOSTILE]:
            f.write(json.dumps({
                "type": "Collection", "stac_version": "1.0.0", "id": c, "description": c, "license": "proprietary",
                "links": [], "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                        "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
            }) + "\n")
    subprocess.run([HOST, "load", "collections", colls, "--dsn", d, "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    return d


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_policy(path):
    hostile, sc = os.path.join(WASM, "hostile.wasm"), os.path.join(WASM, "set_collection.wasm")
    text = (f'[budget]\nmemory = "1GiB"\n\n'
            f'[plugins.hostile]\nsha256 = "{sha256(hostile)}"\nlocation = "{hostile}"\n\n'
            f'[plugins.set_collection]\nsha256 = "{sha256(sc)}"\nlocation = "{sc}"\n\n'
            '[tenants.b]\nplugins = ["set_collection"]\nparams.set_collection = { collection = "b-out" }\n'
            'scope = { collections = ["b-*"] }\nlimits = { memory = "64MiB" }\n\n')
    for name, mode in HOSTILE:
        text += (f'[tenants.{name}]\nplugins = ["hostile"]\nparams.hostile = {{ mode = "{mode}" }}\n'
                 f'scope = {{ collections = ["{name}"] }}\n'
                 'limits = { memory = "64MiB", time = "300ms", cpu = "1s", output = "64KiB" }\n\n')
    with open(path, "w") as f:
        f.write(text)


def items():
    """(solo, mixed): b's N_ITEMS items, and the same with a hostile item after every 50th."""
    solo, mixed = os.path.join(DATA, f"tenant-b-{N_ITEMS}.ndjson"), os.path.join(DATA, f"tenant-mixed-{N_ITEMS}.ndjson")
    if os.path.exists(solo) and os.path.exists(mixed):
        return solo, mixed
    os.makedirs(DATA, exist_ok=True)
    gen = subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_items.py"), str(N_ITEMS), "--collection", "b-in"],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    with open(solo + ".tmp", "w") as s, open(mixed + ".tmp", "w") as m:
        for i, line in enumerate(gen):
            s.write(line + "\n")
            m.write(line + "\n")
            if i % 50 == 0:
                name = HOSTILE[(i // 50) % len(HOSTILE)][0]
                item = json.loads(line)
                item["id"] = f"{name}-{i}"
                item["collection"] = name
                m.write(json.dumps(item, separators=(",", ":")) + "\n")
    os.rename(solo + ".tmp", solo)
    os.rename(mixed + ".tmp", mixed)
    return solo, mixed


def timed(args, expect=(0,)):
    """Wall seconds of one pinned run, and its --json summary."""
    started = time.perf_counter()
    p = subprocess.run(["taskset", "-c", "0", HOST, *args, "--json", "--no-progress"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if p.returncode not in expect:
        sys.exit(f"host {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return wall, json.loads(p.stdout.strip().splitlines()[-1])


def median_run(name, args, expect=(0,)):
    walls = []
    summary = None
    for r in range(RUNS):
        d = fresh_db("bench_tenants")
        wall, summary = timed(["load", "items", *args, "--dsn", d], expect)
        walls.append(wall)
    print(f"  {name}: walls {['%.2f' % w for w in walls]}", flush=True)
    return statistics.median(walls), summary


def xmat_bench(tmp):
    """acme's rows/s through anonymize, alone and beside noisy's hostile job (medians)."""
    src, key = "bench_tenants_src", os.path.join(tmp, "anon.key")
    admin = ADMIN.rsplit("/", 1)[1]
    psql(admin, f"DROP DATABASE IF EXISTS {src} WITH (FORCE)", f"CREATE DATABASE {src}")
    psql(src,
         "CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL, email text, name text)",
         f"INSERT INTO users SELECT g, 1 + g % 2, 'user' || g || '@example.org', 'name ' || g "
         f"FROM generate_series(1, {2 * N_ROWS}) g",
         "CREATE TABLE noise (id int PRIMARY KEY, tenant_id int NOT NULL, v text)",
         "INSERT INTO noise SELECT g, 2, 'x' FROM generate_series(1, 100000) g",
         "VACUUM ANALYZE")
    with open(key, "w") as f:
        f.write("bench-secret-key\n")
    anon, spy = os.path.join(WASM, "anonymize.wasm"), os.path.join(WASM, "row_hostile.wasm")
    policy = os.path.join(tmp, "xmat-policy.toml")
    with open(policy, "w") as f:
        f.write(f'[plugins.anon]\nsha256 = "{sha256(anon)}"\nlocation = "{anon}"\n'
                f'[plugins.spy]\nsha256 = "{sha256(spy)}"\nlocation = "{spy}"\n\n'
                f'[tenants.acme]\nplugins = ["anon"]\nparams.anon = {{ key = {{ file = "{key}" }} }}\n'
                'scope = { tables = ["public.users"], where = "tenant_id = 1" }\nlimits = { instances = 2 }\n\n'
                '[tenants.noisy]\nplugins = ["spy"]\nparams.spy = { spin-on = "x:1" }\n'
                'scope = { tables = ["public.noise"], where = "tenant_id = 2" }\n'
                'limits = { instances = 2, time = "300ms", cpu = "1s" }\n')
    jobs = os.path.join(tmp, "xmat.toml")
    with open(jobs, "w") as f:
        for name, tenant, table, plugins in [("acme", "acme", "users", '[{ plugin = "anon", params = { email = "email" } }]'),
                                             ("noisy", "noisy", "noise", '["spy"]')]:
            f.write(f'["{name}"]\ntenant = "{tenant}"\nsource = {{ database = "{dsn(src)}", schema = "public" }}\n'
                    f'target = {{ database = "{dsn("bench_tenants_dst")}", schema = "{name}" }}\n'
                    f'["{name}".tables.{table}]\nplugins = {plugins}\nallow_uniqueness_loss = true\n\n')

    def run(pattern, expect):
        times = []
        for r in range(RUNS):
            psql(admin, "DROP DATABASE IF EXISTS bench_tenants_dst WITH (FORCE)", "CREATE DATABASE bench_tenants_dst")
            p = subprocess.run(["taskset", "-c", "0", HOST, "xmat", pattern, "-c", jobs, "--policy", policy,
                                "--parallel-jobs", "2", "--json"], capture_output=True, text=True)
            if p.returncode != expect:
                sys.exit(f"xmat {pattern} exited {p.returncode}:\n{p.stderr[-3000:]}")
            out = json.loads(p.stdout.strip().splitlines()[-1])["jobs"]
            acme = next(j for j in out if j["job"] == "acme")
            assert acme["rows_written"] == N_ROWS, acme
            noisy = [j.get("error", "")[:200] for j in out if j["job"] == "noisy"]
            if pattern == "*":
                assert noisy and noisy[0], f"noisy's job did not fail: {out}"
            times.append(acme["seconds"])
        print(f"  xmat {pattern}: acme's job seconds {['%.2f' % t for t in times]}; noisy: {noisy}", flush=True)
        return statistics.median(times)

    solo = run("acme", 0)
    beside = run("*", 1)
    ratio = solo / beside
    print()
    print("| measure | figure | goal | result |")
    print("|---|---|---|---|")
    print(f"| acme alone (xmat --policy) | {N_ROWS / solo:,.0f} rows/s ({solo:.2f} s) | | |")
    print(f"| acme beside noisy (--parallel-jobs 2) | {N_ROWS / beside:,.0f} rows/s ({beside:.2f} s) | | |")
    print(f"| beside / alone | {ratio:.2f}x | >= 0.8x | {'met' if ratio >= 0.8 else 'NOT met'} |")
    print()


def main():
    tmp = tempfile.mkdtemp(prefix="bench-tenants-")
    if "xmat" in PARTS:
        print(f"{N_ROWS:,} rows of tenant acme through anonymize, median of {RUNS}, host on core 0; "
              f"load average at start {os.getloadavg()}", flush=True)
        xmat_bench(tmp)
        print(f"load average at end {os.getloadavg()}", flush=True)
    if "load" not in PARTS:
        return
    policy = os.path.join(tmp, "policy.toml")
    write_policy(policy)
    solo, mixed = items()
    rejects = os.path.join(tmp, "rejects.ndjson")
    audit = os.path.join(tmp, "audit.jsonl")
    sc = os.path.join(WASM, "set_collection.wasm")
    print(f"{N_ITEMS:,} items of tenant b, median of {RUNS}, host on core 0 (taskset -c 0); "
          f"load average at start {os.getloadavg()}", flush=True)

    # 1. Noisy neighbour.
    t_solo, _ = median_run("b alone (--policy)", [solo, "--policy", policy])
    t_mixed, summary = median_run("b beside the hostile tenants (--policy)",
                                  [mixed, "--policy", policy, "--reject-file", rejects], expect=(4,))
    b = next(t for t in summary["tenants"] if t["tenant"] == "b")
    assert b["written"] == N_ITEMS and b["rejected"] == 0, b
    hostile = {t["tenant"]: (t["read"], t["rejected"], t["limit_hits"]) for t in summary["tenants"] if t["tenant"] != "b"}

    # 2. The policy's own cost, one tenant.
    t_flags, _ = median_run("flags (--plugin set_collection.wasm)",
                            [solo, "--plugin", sc, "--plugin-arg", "collection=b-out"])
    t_policy, _ = median_run("--policy P --tenant b", [solo, "--policy", policy, "--tenant", "b"])
    if os.path.exists(audit):
        os.remove(audit)
    t_audit, _ = median_run("--policy P --tenant b --audit FILE",
                            [solo, "--policy", policy, "--tenant", "b", "--audit", audit])

    rate = lambda t: N_ITEMS / t
    print()
    print(f"| measure | figure | goal | result |")
    print(f"|---|---|---|---|")
    ratio = rate(t_mixed) / rate(t_solo)
    print(f"| b alone | {rate(t_solo):,.0f} items/s ({t_solo:.2f} s) | | |")
    print(f"| b beside hostile a | {rate(t_mixed):,.0f} items/s ({t_mixed:.2f} s) | | |")
    print(f"| beside / alone | {ratio:.2f}x | >= 0.8x | {'met' if ratio >= 0.8 else 'NOT met'} |")
    print(f"| flags, one tenant | {rate(t_flags):,.0f} items/s ({t_flags:.2f} s) | | |")
    cost = t_policy / t_flags - 1
    print(f"| --policy --tenant | {rate(t_policy):,.0f} items/s ({t_policy:.2f} s) | <= 3% | "
          f"{cost * 100:+.1f}% {'met' if cost <= 0.03 else 'NOT met'} |")
    cost_a = t_audit / t_flags - 1
    print(f"| --policy --tenant --audit | {rate(t_audit):,.0f} items/s ({t_audit:.2f} s) | | {cost_a * 100:+.1f}% |")
    print()
    print(f"hostile tenants (read, rejected, limit hits): {hostile}")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
