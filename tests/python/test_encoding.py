"""Records from Python are encoded to JSON by host in Rust, or by json.dumps where
that declines: either way the text host reads is json.dumps' text, byte for byte.
The reject file shows that text (a record refused by validation is written there
as read)."""

import collections
import json

import pytest

import host
from conftest import TESTDATA, read_ndjson

TRICKY = {
    "floats": [0.1, 1e-05, 1e16, 1.5e300, -0.0, 5e-324, 440633.39999999997, 123456789.0, 2.0**53, 1e22],
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64, -(2**70), True, False, None],
    "strings": ["", "é", "日本", "\u2028", 'a"b\\c', "\x01\x02\x1f\x7f", "\b\f\n\r\t", "😀", "/"],
    "tuple": (1, (2, [3.5])),
    "nested": {"a": {"b": {"c": [], "d": {}}}},
}


class Key(str):
    pass


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def test_records_reach_host_as_json_dumps_writes_them(make_pgstac_db, tmp_path):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    db.load_collections([c for c in read_ndjson(TESTDATA / "collections.ndjson")][:1])
    # What the Rust encoder writes, and what it hands to json.dumps (subclasses, other keys).
    others = [None, collections.OrderedDict(x=1), {Key("k"): 1}, {1: "int key", None: 2}, [{"deep": [[[[]]]]}]]
    # No geometry: every record is refused, and written to the reject file as read.
    records = [{"type": "Feature", "id": f"r{i}", "tricky": TRICKY, "other": o} for i, o in enumerate(others)]
    rejects = tmp_path / "rejects.ndjson"
    s = db.load_items(iter(records), method="insert", reject_file=rejects)
    assert (s.read, s.loaded, s.rejected) == (len(records), 0, len(records))
    # Not splitlines(): U+2028 is a line break to Python, not to NDJSON.
    lines = rejects.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert len(lines) == len(records)
    for record, line in zip(records, lines):
        assert line.endswith("}")
        raw = line[line.rindex(',"record":') + len(',"record":'):-1]
        assert raw == dumps(record)


def test_what_json_dumps_refuses_is_refused(make_pgstac_db):
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    loop = {"type": "Feature", "id": "loop"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="[Cc]ircular"):
        db.load_items([loop])
    with pytest.raises(ValueError):
        db.load_items([{"type": "Feature", "id": "inf", "x": float("inf")}])
    with pytest.raises(TypeError):
        db.load_items([{"type": "Feature", "id": "set", "x": {1, 2}}])


def test_floats_are_written_as_float_repr_writes_them(make_pgstac_db, tmp_path):
    """host writes floats itself (not through float.__repr__): every double,
    at every decimal exponent and at the boundaries where repr switches
    between positional and exponent notation, reads back as repr's text."""
    import random
    import struct

    rng = random.Random(20261201)
    floats = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(30000)]
    floats = [f for f in floats if f == f and abs(f) != float("inf")]
    for exp in range(-30, 30):
        for mantissa in (1, 9.999999999999998, 1.5, 1.2345678901234567, 5):
            floats.append(mantissa * 10.0**exp)
            floats.append(-mantissa * 10.0**exp)
    floats += [1e16, 9999999999999998.0, 1e-4, 0.00009999999999999999, 2.0**-1074, 1.7976931348623157e308]
    # Exact ties between two shortest candidates: repr takes the even digit.
    floats += [654980485815801.25, -1282341393599611.25, 1e15 + 0.25, 1e15 + 0.75, 2.0**52 + 0.5, 0.125, 2.5e-5]
    floats += [float(n) for n in range(-20, 20)] + [0.1 * n for n in range(100)]
    pg = make_pgstac_db()
    db = host.connect(pg.dsn)
    record = {"type": "Feature", "id": "floats", "floats": floats}
    rejects = tmp_path / "rejects.ndjson"
    s = db.load_items([record], method="insert", reject_file=rejects)
    assert (s.read, s.rejected) == (1, 1)
    line = rejects.read_text(encoding="utf-8").rstrip("\n")
    raw = line[line.rindex(',"record":') + len(',"record":'):-1]
    assert raw == dumps(record)
