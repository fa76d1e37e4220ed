"""Peak RSS of a host load of a Python generator of N items into a fresh
pgstac database (host's Python package): flat memory means the same peak for
100,000 and 1,000,000 items.

    .venv/bin/python bench/python_memory.py N       (HOST_DSN, HOST_PGSTAC_MIGRATIONS set)
"""

import resource
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from python_load import collection, drop, fresh, items  # noqa: E402

import host  # noqa: E402

n = int(sys.argv[1])
name, dsn = fresh()
try:
    db = host.connect(dsn)
    db.load_collections(collection())
    t = time.perf_counter()
    s = db.load_items(items(n))
    assert s.loaded == n, s
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} items in {time.perf_counter() - t:.1f}s: peak RSS {rss:.0f} MiB")
finally:
    drop(name)
