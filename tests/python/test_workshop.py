"""The eoAPI workshop's notebook flow with `host` from Python, against pgstac on
the local cluster, with pypgstac (0.10.0) doing the same calls on another
database as the oracle: the tables must hold the same rows."""

import copy

import pystac
import pytest
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods

import host
from conftest import TESTDATA, collection_rows, item_rows, read_ndjson

COLLECTION = "pgstac-test-collection"


def collections():
    return [c for c in read_ndjson(TESTDATA / "collections.ndjson") if c["id"] == COLLECTION]


def items():
    return read_ndjson(TESTDATA / "items.ndjson")


def pgstac_search(db, body):
    import json

    (fc,) = db.query("SELECT pgstac.search(%s::text::jsonb)", json.dumps(body))[0]
    return fc["features"]


def test_workshop_flow_matches_pypgstac(make_pgstac_db):
    ours, theirs = make_pgstac_db("ours"), make_pgstac_db("theirs")
    all_items = items()
    gone = all_items[17]["id"]

    db = host.connect(ours.dsn)
    assert db.catalog == "pgstac"
    assert db.version() == "0.10.0"
    s = db.load_collections(collections(), method="upsert")
    assert (s.read, s.loaded, s.catalog, s.kind) == (1, 1, "pgstac", "collections")
    s = db.load_items(iter(all_items), method="insert_ignore")
    assert (s.read, s.loaded, s.skipped, s.rejected) == (100, 100, 0, 0)
    assert s.collections == [COLLECTION]
    s = db.load_items((i for i in all_items), method="insert_ignore")
    assert (s.read, s.loaded, s.skipped) == (100, 0, 100), s
    assert s.to_dict()["skipped"] == 100
    assert db.count(COLLECTION) == 100
    d = db.delete_items(COLLECTION, [gone, "not-there"])
    assert d == {"collection": COLLECTION, "deleted": [gone], "not_found": ["not-there"]}
    assert db.count(COLLECTION) == 99
    s = db.load_items([i for i in all_items if i["id"] == gone], method="insert_ignore")
    assert (s.loaded, s.skipped) == (1, 0)
    assert db.count(COLLECTION) == 100

    # The same calls through pypgstac, and the workshop's hand-written delete.
    loader = Loader(db=PgstacDB(dsn=theirs.dsn))
    loader.load_collections(iter(collections()), insert_mode=Methods.upsert)
    loader.load_items(iter(all_items), insert_mode=Methods.insert_ignore)
    loader.load_items(iter(all_items), insert_mode=Methods.insert_ignore)
    theirs.query("SELECT pgstac.delete_item(%s, %s)", gone, COLLECTION)
    loader.load_items(iter([i for i in all_items if i["id"] == gone]), insert_mode=Methods.insert_ignore)

    assert collection_rows(ours) == collection_rows(theirs)
    assert item_rows(ours) == item_rows(theirs)

    # Search with paging: every page followed, the same features as pgstac's search().
    body = {"collections": [COLLECTION], "limit": 7}
    pages = db.search(body)
    found = list(pages)
    assert pages.pages == 15
    oracle = pgstac_search(ours, {"collections": [COLLECTION], "limit": 100})
    assert len(found) == 100
    assert found == oracle


def test_pystac_objects_and_dicts_give_identical_rows(make_pgstac_db):
    a, b = make_pgstac_db("objects"), make_pgstac_db("dicts")
    objects = [pystac.Item.from_dict(copy.deepcopy(i)) for i in items()]
    # pystac resolves relative links when writing a dict: the fixture's are relative.
    coll = pystac.Collection.from_dict(dict(copy.deepcopy(collections()[0]), links=[]))
    da, db_ = host.connect(a.dsn), host.connect(b.dsn)
    da.load_collections(coll)
    da.load_items(objects, method="insert")
    db_.load_collections([coll.to_dict()])
    db_.load_items([o.to_dict() for o in objects], method="insert")
    assert collection_rows(a) == collection_rows(b)
    assert item_rows(a) == item_rows(b)
    assert len(item_rows(a)) == 100


def test_a_bad_item_names_its_place_and_loads_nothing(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())
    bad = items()[:10]
    bad[6] = dict(bad[6], geometry="nowhere")

    def gen():
        yield from bad

    with pytest.raises(host.RecordError) as e:
        db.load_items(gen())
    err = e.value
    assert (err.source, err.line, err.id, err.plugin) == ("<items>", 7, bad[6]["id"], None)
    assert "geometry" in err.reason
    assert f"no items were loaded into" in str(err) and "<items>:7" in str(err)
    assert db.count(COLLECTION) == 0


def test_insert_refuses_existing_ids_with_a_typed_error(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())
    db.load_items(items()[:3])
    with pytest.raises(host.DuplicateError) as e:
        db.load_items(items()[:5])
    assert isinstance(e.value, host.CatalogError) and isinstance(e.value, host.Error)
    assert "insert_ignore" in str(e.value)
    assert db.count(COLLECTION) == 3


def test_the_iterables_own_exception_is_raised_and_nothing_loaded(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())

    class Boom(Exception):
        pass

    def gen():
        yield from items()[:50]
        raise Boom("the generator failed")

    with pytest.raises(Boom, match="the generator failed") as e:
        db.load_items(gen())
    assert any("no items were loaded" in n for n in e.value.__notes__)
    assert db.count(COLLECTION) == 0


def test_records_that_are_not_dicts_are_refused_by_place(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())
    with pytest.raises(TypeError, match="must be a dict or have to_dict"):
        db.load_items([items()[0], 42])
    with pytest.raises(ValueError):
        db.load_items([dict(items()[0], properties={"x": float("nan"), "datetime": "2020-01-01T00:00:00Z"})])
    assert db.count(COLLECTION) == 0


def test_a_to_dict_that_returns_a_list_is_one_refused_record(make_pgstac_db):
    # Records from Python are handed over whole, never re-split: a list from
    # to_dict() is one record that is not an object, not a batch of items.
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())

    class Listy:
        def to_dict(self):
            return items()[3:5]

    with pytest.raises(host.RecordError) as e:
        db.load_items([items()[0], items()[1], Listy()])
    assert (e.value.source, e.value.line) == ("<items>", 3)
    assert "not a JSON object" in e.value.reason
    assert db.count(COLLECTION) == 0


def test_ctrl_c_cancels_a_load_and_leaves_the_database_as_it_was(make_pgstac_db):
    import signal

    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())
    base = items()

    def gen():
        for n in range(100_000):
            if n == 3_000:
                signal.raise_signal(signal.SIGINT)
            yield dict(base[n % 100], id=f"item-{n}")

    with pytest.raises(KeyboardInterrupt):
        db.load_items(gen())
    assert db.count(COLLECTION) == 0
    # The client works on afterwards.
    assert db.load_items(base[:2]).loaded == 2


def test_search_errors_and_missing_collections_are_typed(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    with pytest.raises(host.SearchError, match="invalid search request"):
        db.search({"limit": "many"})
    with pytest.raises(host.NoSuchCollectionError):
        db.count("nope")
    with pytest.raises(host.ConnectError):
        host.connect("postgresql://host:wrong@127.0.0.1:1/none")


def test_files_and_the_builtin_catalog(fresh_db):
    db = host.connect(fresh_db.dsn)
    db.migrate()
    assert db.catalog == "host"
    db.load_collections(str(TESTDATA / "collections.ndjson"))
    s = db.load_items(TESTDATA / "items.ndjson")
    assert (s.read, s.loaded) == (100, 100)
    assert len(list(db.search({"collections": [COLLECTION], "limit": 30}))) == 100
    assert db.delete_collection(COLLECTION) == {"collection": COLLECTION, "items": 100}


def test_plugins_with_parameters_pinned_by_digest(make_pgstac_db, tmp_path):
    import hashlib

    from conftest import ROOT

    wasm = ROOT / "target" / "wasm32-wasip2" / "release" / "set_collection.wasm"
    if not wasm.exists():
        pytest.skip("scripts/build-plugins has not built set_collection.wasm")
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections(collections())
    other = [dict(i, collection="elsewhere") for i in items()[:5]]
    plugin = {"location": str(wasm), "sha256": digest, "params": {"collection": COLLECTION}}
    s = db.load_items(other, plugins=[plugin])
    assert (s.loaded, s.collections) == (5, [COLLECTION])
    with pytest.raises(host.PluginError, match="SHA-256 .* was pinned; refusing to run it"):
        db.load_items(other, plugins=[f"{wasm}#sha256={'0' * 64}"])
    assert db.count(COLLECTION) == 5
