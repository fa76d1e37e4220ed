"""`anonymize` in Python: the same pseudonyms as the Rust plugin, byte for byte."""

import hashlib
import hmac

import blake3
import names
from host_plugin import KEEP, RowTransformer, export
from host_plugin.pg import TEXT, text_length_limit, type_class

# Whether each treatment writes text, and the longest text it writes (None: as long as the input).
WRITES_TEXT = {
    "email": len("user-@example.com") + 12,
    "hash": 64,
    "name": names.longest(),
    "phone": None,
}
TREATMENTS = ("email", "phone", "name", "hash", "null", "keep")


class Anonymize(RowTransformer):
    """Pseudonymizes columns with a keyed hash of each value."""

    def __init__(self, params):
        key = params.require("key")
        if not key:
            raise ValueError("parameter `key` must not be empty")
        algorithm = params.get("algorithm", "blake3")
        if algorithm == "blake3":
            key32 = blake3.derive_key("host anonymize plugin v1", key.encode())
            self.digest = lambda value: blake3.keyed_hash(key32, value)
        elif algorithm == "hmac-sha256":
            mac = hmac.new(key.encode(), digestmod=hashlib.sha256)

            def digest(value):
                m = mac.copy()
                m.update(value)
                return m.digest()

            self.digest = digest
        else:
            raise ValueError(f"unknown algorithm `{algorithm}` (use blake3 or hmac-sha256)")
        self.rules = []
        for k, v in params:
            if k in ("key", "algorithm"):
                continue
            column = k.removeprefix("column:")
            if any(c == column for c, _ in self.rules):
                raise ValueError(f"column `{column}` is given more than once")
            if v not in TREATMENTS:
                raise ValueError(f"unknown treatment `{v}` (use email, phone, name, hash, null or keep)")
            self.rules.append((column, v))
        if not self.rules:
            raise ValueError("no column given: add COLUMN=TREATMENT (e.g. email=email)")
        self.active = []

    def begin_table(self, table):
        self.active = []
        for column, t in self.rules:
            i = table.require_column(column)
            ty = table.columns[i].type_name
            if t in WRITES_TEXT:
                if type_class(ty) != TEXT:
                    raise ValueError(f"column `{column}` is {ty}: treatment `{t}` needs a text column")
                limit, length = text_length_limit(ty), WRITES_TEXT[t]
                if limit is not None and length is not None and limit < length:
                    raise ValueError(f"column `{column}` is {ty}: treatment `{t}` writes up to {length} characters")
            if t != "keep":
                self.active.append((i, t))

    def transform(self, row):
        for i, t in self.active:
            value = row[i]
            if value is None:
                continue  # NULL stays NULL
            row[i] = None if t == "null" else self.pseudonym(t, value)
        return KEEP

    def pseudonym(self, t, value):
        d = self.digest(value.encode())
        if t == "email":
            return f"user-{d[:6].hex()}@example.com"
        if t == "hash":
            return d.hex()
        if t == "name":
            first = int.from_bytes(d[0:2], "little") % 64
            last = int.from_bytes(d[2:4], "little") % 64
            return f"{names.FIRST[first]} {names.LAST[last]}"
        # phone: each ASCII digit replaced, everything else kept
        out, k = [], 0
        for c in value:
            if "0" <= c <= "9":
                out.append(chr(48 + (d[k % 32] + k // 32) % 10))
                k += 1
            else:
                out.append(c)
        return "".join(out)


export(Anonymize)
