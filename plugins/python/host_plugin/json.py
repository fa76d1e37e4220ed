"""Lazily parsed JSON objects: STAC items without the cost of a full rewrite.

The same rules as the Rust SDK's `JsonObject`, so that a Python plugin's output
is byte for byte a Rust plugin's: only the top level is split into keys and
values (the whole text is validated); a value is parsed when asked for;
printing copies untouched values as they were given; an unmodified object
prints as its input. `set` replaces a value in place or appends a new key at
the end; a modified object prints without whitespace at the top level.
"""

import json as _json
import re as _re

__all__ = ["JsonObject", "Item"]

_WS = _re.compile(r"[ \t\n\r]*")


def _refuse_constant(name):
    raise ValueError(f"invalid literal {name}")


# Strict JSON: no NaN/Infinity, no control characters inside strings.
_DECODER = _json.JSONDecoder(parse_constant=_refuse_constant, strict=True)
_scan_value = _DECODER.scan_once
_scan_string = _json.decoder.scanstring


def _dumps(value):
    """Compact JSON, UTF-8 left as is (as serde_json prints it)."""
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _value_end(src, i):
    """The end of the JSON value starting at `i` (a ValueError if there is none)."""
    try:
        _, end = _scan_value(src, i)
    except StopIteration:
        raise ValueError(f"expected a value at byte {_byte(src, i)}") from None
    except RecursionError:
        raise ValueError("nested too deep") from None
    except _json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at byte {_byte(src, e.pos)}") from None
    return end


def _byte(src, i):
    """Character offset `i` as a UTF-8 byte offset (messages say bytes, as Rust's)."""
    return len(src[:i].encode("utf-8", "surrogatepass"))


def _expect(src, i, char, what):
    if src.startswith(char, i):
        return i + 1
    if i >= len(src):
        raise ValueError(f"expected {what}, found the end of the text at byte {_byte(src, i)}")
    raise ValueError(f"expected {what} at byte {_byte(src, i)}")


def _parse_entries(src):
    """[key literal, name, value text] for each top-level member of the object in `src`."""
    i = _WS.match(src, 0).end()
    i = _expect(src, i, "{", "`{`")
    i = _WS.match(src, i).end()
    entries = []
    if src.startswith("}", i):
        i += 1
    else:
        while True:
            if not src.startswith('"', i):
                _expect(src, i, '"', "a string key")
            try:
                name, end = _scan_string(src, i + 1, True)
            except _json.JSONDecodeError as e:
                raise ValueError(f"{e.msg} at byte {_byte(src, e.pos)}") from None
            key = src[i:end]
            i = _WS.match(src, end).end()
            i = _expect(src, i, ":", "`:`")
            i = _WS.match(src, i).end()
            end = _value_end(src, i)
            entries.append([key, name, src[i:end]])
            i = _WS.match(src, end).end()
            if src.startswith(",", i):
                i = _WS.match(src, i + 1).end()
                continue
            i = _expect(src, i, "}", "`,` or `}`")
            break
    if _WS.match(src, i).end() != len(src):
        raise ValueError(f"trailing characters after the object at byte {_byte(src, i)}")
    return entries


def check_value(text):
    """Raises ValueError unless `text` is one JSON value (whitespace around it allowed)."""
    i = _WS.match(text, 0).end()
    end = _value_end(text, i)
    if _WS.match(text, end).end() != len(text):
        raise ValueError(f"trailing characters after the value at byte {_byte(text, end)}")


def split_array(text):
    """The elements of a JSON array, each as its own JSON text, as given."""
    i = _WS.match(text, 0).end()
    if not text.startswith("[", i):
        raise ValueError("expected an array")
    i = _WS.match(text, i + 1).end()
    out = []
    if text.startswith("]", i):
        return out
    while True:
        end = _value_end(text, i)
        out.append(text[i:end])
        i = _WS.match(text, end).end()
        if text.startswith(",", i):
            i = _WS.match(text, i + 1).end()
            continue
        _expect(text, i, "]", "`,` or `]`")
        return out


class JsonObject:
    """A JSON object whose top-level values are parsed only when asked for.

    Keys keep their order; duplicate keys are kept too, and `get`, `set` and
    `remove` act on the first.
    """

    __slots__ = ("_src", "_entries", "_modified")

    def __init__(self, json_text="{}"):
        """Parses `json_text`, which must be one JSON object (a ValueError otherwise)."""
        if isinstance(json_text, (bytes, bytearray)):
            json_text = json_text.decode("utf-8")
        try:
            self._entries = _parse_entries(json_text)
        except ValueError as e:
            raise ValueError(f"invalid JSON object: {e}") from None
        self._src = json_text
        self._modified = False

    @classmethod
    def parse(cls, json_text):
        """Parses one JSON object (a ValueError if it is not one)."""
        return cls(json_text)

    def _find(self, key):
        for e in self._entries:
            if e[1] == key:
                return e
        return None

    def get_raw(self, key):
        """The value of `key` as JSON text, exactly as given (or as set); None if absent."""
        e = self._find(key)
        return None if e is None else e[2]

    def get(self, key, default=None):
        """The value of `key`, parsed (dicts, lists, str, int, float, bool, None)."""
        raw = self.get_raw(key)
        return default if raw is None else _json.loads(raw)

    def get_str(self, key):
        """The value of `key` if it is a JSON string, else None."""
        raw = self.get_raw(key)
        if raw is None or not raw.startswith('"'):
            return None
        if "\\" not in raw:
            return raw[1:-1]
        return _json.loads(raw)

    def get_object(self, key):
        """The value of `key` as a lazily parsed JsonObject; None if absent, ValueError if not an object."""
        raw = self.get_raw(key)
        if raw is None:
            return None
        try:
            return JsonObject(raw)
        except ValueError as e:
            raise ValueError(f"`{key}`: {e}") from None

    def get_array_raw(self, key):
        """The elements of the array at `key`, each as its JSON text as given;
        None if absent, ValueError if not an array."""
        raw = self.get_raw(key)
        if raw is None:
            return None
        try:
            return split_array(raw)
        except ValueError as e:
            raise ValueError(f"`{key}`: {e}") from None

    def set(self, key, value):
        """Sets `key` to `value` (anything `json.dumps` takes, or a JsonObject)."""
        if isinstance(value, JsonObject):
            text = value.to_json()
        else:
            text = _dumps(value)
        self._put(key, text)

    def set_json(self, key, text):
        """Sets `key` to JSON text built by hand (a ValueError, and no change, if it is not one value)."""
        try:
            check_value(text)
        except ValueError as e:
            raise ValueError(f"`{key}`: invalid JSON: {e}") from None
        self._put(key, text.strip(" \n\r\t"))

    def remove(self, key):
        """Removes `key`; returns whether it was there."""
        for i, e in enumerate(self._entries):
            if e[1] == key:
                del self._entries[i]
                self._modified = True
                return True
        return False

    def __contains__(self, key):
        return self._find(key) is not None

    def keys(self):
        """The keys, in order, decoded."""
        return [e[1] for e in self._entries]

    def __len__(self):
        return len(self._entries)

    @property
    def modified(self):
        """Whether anything was set (to a different text) or removed since parsing."""
        return self._modified

    def to_value(self):
        """The whole object as a dict."""
        return _json.loads(self.to_json())

    def to_json(self):
        """The object as JSON text (the input itself if unmodified)."""
        if not self._modified:
            return self._src
        return "{" + ",".join(e[0] + ":" + e[2] for e in self._entries) + "}"

    __str__ = to_json

    def __repr__(self):
        return f"{type(self).__name__}({self.to_json()})"

    def _put(self, key, text):
        e = self._find(key)
        if e is not None:
            if e[2] != text:
                e[2] = text
                self._modified = True
        else:
            self._entries.append([_dumps(key), key, text])
            self._modified = True


class Item(JsonObject):
    """A STAC item (or any JSON object) as a lazily parsed JsonObject."""

    __slots__ = ()

    def id(self):
        """The item's `id`, if it is a string."""
        return self.get_str("id")

    def collection(self):
        """The item's `collection`, if it is a string."""
        return self.get_str("collection")

    def properties(self):
        """The item's `properties`, lazily parsed (None if absent)."""
        return self.get_object("properties")
