"""Plugins from Python run in the same sandbox as from the CLI, with limits the
caller chooses (`sandbox={...}`); reject files and URLs work as on the CLI."""

import functools
import http.server
import json
import threading

import pytest

import host
from conftest import ROOT, TESTDATA, read_ndjson

COLLECTION = "pgstac-test-collection"
WASM = ROOT / "target" / "wasm32-wasip2" / "release"


def wasm(name):
    path = WASM / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/build-plugins")
    return str(path)


def hostile(mode):
    return {"location": wasm("hostile"), "params": {"mode": mode}}


def items():
    return read_ndjson(TESTDATA / "items.ndjson")


@pytest.fixture
def db(make_pgstac_db):
    client = host.connect(make_pgstac_db().dsn)
    client.load_collections(
        [c for c in read_ndjson(TESTDATA / "collections.ndjson") if c["id"] == COLLECTION]
    )
    return client


def test_a_plugin_past_the_callers_time_limit_is_stopped_and_nothing_loaded(db):
    with pytest.raises(host.PluginError, match="hostile") as e:
        db.load_items(items()[:5], plugins=[hostile("loop")], sandbox={"time": "200ms"})
    assert 'time limit (200ms, sandbox["time"])' in str(e.value), str(e.value)
    assert db.count(COLLECTION) == 0


def test_a_plugin_past_the_callers_memory_limit_is_stopped(db):
    with pytest.raises(host.PluginError) as e:
        db.load_items(items()[:5], plugins=[hostile("alloc")], sandbox={"memory": "16MiB"})
    assert 'memory limit (16MiB, sandbox["memory"])' in str(e.value), str(e.value)
    assert db.count(COLLECTION) == 0


def test_fuel_and_numbers_for_limits(db):
    with pytest.raises(host.PluginError, match="fuel"):
        db.load_items(items()[:5], plugins=[hostile("loop")], sandbox={"fuel": 1_000_000, "time": 30})
    # No fuel at all: stopped on its first call, not run unmetered.
    with pytest.raises(host.PluginError, match="fuel"):
        db.load_items(items()[:5], plugins=[hostile("ok")], sandbox={"fuel": 0})
    # Within generous limits, given as numbers, the same plugin in `ok` mode loads everything.
    s = db.load_items(items()[:5], plugins=[hostile("ok")], sandbox={"memory": 64 << 20, "time": 5.0})
    assert s.loaded == 5


def test_the_cache_goes_where_the_caller_says_or_nowhere(db, tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_CACHE_DIR", str(tmp_path / "default"))
    chosen = tmp_path / "chosen"
    db.load_items(items()[:2], plugins=[hostile("ok")], sandbox={"cache": str(chosen)})
    assert any(p.is_file() for p in chosen.rglob("*")), "the chosen cache stays empty"
    db.load_items(items()[2:4], plugins=[hostile("ok")], sandbox={"cache": False})
    assert not (tmp_path / "default").exists(), "cache=False wrote the default cache"
    db.load_items(items()[4:6], plugins=[hostile("ok")])
    assert any(p.is_file() for p in (tmp_path / "default").rglob("*")), "HOST_CACHE_DIR is ignored"


@pytest.mark.parametrize(
    "sandbox, message",
    [
        ({"memroy": "1MiB"}, 'unknown key "memroy"'),
        ({"memory": "lots"}, r'sandbox\["memory"\]'),
        ({"time": True}, "not a bool"),
        ({"time": -1}, r'sandbox\["time"\]: -1 seconds'),
        ({"fuel": "many"}, "whole number"),
        ({"cache": 3}, "a directory or False"),
    ],
)
def test_bad_sandbox_settings_are_refused_before_anything_runs(db, sandbox, message):
    with pytest.raises(ValueError, match=message):
        db.load_items(items()[:2], plugins=[hostile("ok")], sandbox=sandbox)
    with pytest.raises(TypeError, match="sandbox"):
        db.load_items(items()[:2], sandbox=["memory"])
    assert db.count(COLLECTION) == 0


def test_rejected_and_invalid_items_go_to_the_reject_file(db, tmp_path):
    batch = items()[:10]
    batch[3] = dict(batch[3], geometry="nowhere")
    rejects = tmp_path / "rejects.ndjson"
    s = db.load_items(batch, reject_file=rejects)
    assert (s.read, s.loaded) == (10, 9)
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["id"] == batch[3]["id"] and lines[0]["line"] == 4, lines[0]
    assert db.count(COLLECTION) == 9
    # A plugin's rejects land there too, named by the plugin.
    seen = tmp_path / "seen.ndjson"
    s = db.load_items(items()[10:12], plugins=[hostile("reject-seen")], reject_file=seen)
    assert s.loaded == 0
    assert len(seen.read_text().splitlines()) == 2
    assert "hostile" in seen.read_text()


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on loopback serving `tmp_path`."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_items_and_plugins_from_urls(db, http_root):
    import hashlib
    import shutil

    root, url = http_root
    shutil.copy(TESTDATA / "items.ndjson", root / "items.ndjson")
    shutil.copy(wasm("set_collection"), root / "set_collection.wasm")
    digest = hashlib.sha256((root / "set_collection.wasm").read_bytes()).hexdigest()
    s = db.load_items(
        f"{url}/items.ndjson",
        plugins=[{"location": f"{url}/set_collection.wasm", "sha256": digest,
                  "params": {"collection": COLLECTION}}],
    )
    assert (s.read, s.loaded) == (100, 100)
    with pytest.raises(host.SourceError, match="missing.ndjson"):
        db.load_items(f"{url}/missing.ndjson", method="upsert")
    with pytest.raises(host.PluginError, match="max"):
        db.load_items(
            items()[:1],
            plugins=[{"location": f"{url}/set_collection.wasm", "params": {"collection": COLLECTION}}],
            sandbox={"max_size": 1024},
        )
    assert db.count(COLLECTION) == 100
