"""The user's parameters, as given to `configure`."""

__all__ = ["Params"]


class Params:
    """The user's parameters (`--plugin-arg KEY=VALUE`), in the order given.

    Keys may repeat; `get` and `require` refuse a key given twice, so that
    `collection=a collection=b` is an error rather than a guess. Errors are
    ValueErrors whose message the host shows the user.
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs=()):
        self._pairs = [(str(k), str(v)) for k, v in pairs]

    @classmethod
    def parse(cls, args):
        """Parameters from `KEY=VALUE` strings (as on the command line); handy in tests."""
        pairs = []
        for a in args:
            if "=" not in a:
                raise ValueError(f"parameter `{a}` is not KEY=VALUE")
            pairs.append(tuple(a.split("=", 1)))
        return cls(pairs)

    def get(self, key, default=None):
        """The value of `key` if given once (`default` if not given); a ValueError if given twice."""
        found = None
        for k, v in self._pairs:
            if k == key:
                if found is not None:
                    raise ValueError(f"parameter `{key}` is given more than once")
                found = v
        return default if found is None else found

    def require(self, key):
        """The value of `key`, which must be given exactly once."""
        v = self.get(key)
        if v is None:
            raise ValueError(f"missing required parameter `{key}`")
        return v

    def only(self, *known):
        """Refuses any key not in `known`, naming the keys that are accepted."""
        if len(known) == 1 and not isinstance(known[0], str):
            known = tuple(known[0])
        for k, _ in self._pairs:
            if k not in known:
                raise ValueError(f"unknown parameter `{k}` (this plugin accepts: {', '.join(known)})")

    def items(self):
        """All `(key, value)` pairs, in the order given."""
        return list(self._pairs)

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __repr__(self):
        return f"Params({self._pairs!r})"
