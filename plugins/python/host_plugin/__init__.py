"""Write `host` plugins in Python.

A plugin is a plain class: its constructor takes the user's parameters once
(raise ValueError to refuse them), then one method is called per item or row:

    from host_plugin import ItemRewriter, Keep, Reject, export

    class Tag(ItemRewriter):
        def __init__(self, params):
            params.only("value")
            self.value = params.require("value")

        def rewrite(self, item):
            if item.id() is None:
                return Reject("the item has no `id`")
            item.set("tag", self.value)  # only the top level is parsed
            return Keep(item)

    export(Tag)

`python -m host_plugin build` turns the project into a WebAssembly component
(see `host_plugin.build`); the batch calls, COPY text and WIT bindings are
hidden, as in the Rust SDK. `host_plugin.run` drives a plugin natively, for
unit tests.
"""

from .copy import Column, Row, Table, decode_field, encode_field
from .json import Item, JsonObject
from .params import Params

__all__ = [
    "Column", "Row", "Table", "decode_field", "encode_field", "Item", "JsonObject", "Params",
    "Keep", "Drop", "Reject", "KEEP", "DROP", "Plugin", "ItemRewriter", "RowTransformer", "WhereFilter",
    "export", "exported",
]


class Keep:
    """Pass the item or row on. An item rewriter returns `Keep(item)`; rows and filters `Keep()` (or KEEP)."""

    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Keep) and self.value == other.value

    def __repr__(self):
        return "Keep()" if self.value is None else f"Keep({self.value!r})"


class Drop:
    """Leave it out; the host counts it as dropped."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, Drop)

    def __repr__(self):
        return "Drop()"


class Reject:
    """It is bad; the host shows `reason` with the item's id or the row's line."""

    __slots__ = ("reason",)

    def __init__(self, reason):
        self.reason = str(reason)

    def __eq__(self, other):
        return isinstance(other, Reject) and self.reason == other.reason

    def __repr__(self):
        return f"Reject({self.reason!r})"


KEEP = Keep()
DROP = Drop()


def keep_if(condition):
    """KEEP if `condition`, else DROP."""
    return KEEP if condition else DROP


class Plugin:
    """What every plugin has: `__init__(self, params)` builds it from the user's
    parameters (a `Params`); raise ValueError with a message for the user to
    refuse them. `DESCRIPTION` overrides the project's description."""

    KIND = None
    DESCRIPTION = None

    def __init__(self, params):
        pass


class ItemRewriter(Plugin):
    """A STAC item rewriter (world `item-rewriter`)."""

    KIND = "item-rewriter"

    def rewrite(self, item):
        """Returns Keep(item) (changed or not), DROP or Reject(reason) for one `Item`."""
        raise NotImplementedError


class RowTransformer(Plugin):
    """A row transformer, e.g. an anonymizer (world `row-transformer`)."""

    KIND = "row-transformer"

    def begin_table(self, table):
        """Called once per table before its rows; raise ValueError to refuse a
        table the parameters do not fit. Look columns up here, not per row."""

    def transform(self, row):
        """Changes the `Row` in place (`row[i] = value`) and returns KEEP, DROP or Reject(reason)."""
        raise NotImplementedError


NO_ITEMS = "this filter does not handle items"
NO_ROWS = "this filter does not handle rows"


class WhereFilter(Plugin):
    """Keep-or-drop decisions for items and rows (world `where-filter`).
    Implement one side or both: the defaults reject items / refuse tables."""

    KIND = "where-filter"

    def keep_item(self, item):
        """KEEP, DROP or Reject(reason) for one `Item`."""
        return Reject(NO_ITEMS)

    def begin_table(self, table):
        """As `RowTransformer.begin_table`."""
        raise ValueError(NO_ROWS)

    def keep_row(self, row):
        """KEEP, DROP or Reject(reason) for one `Row`."""
        return Reject(NO_ROWS)


_exported = None


def export(cls):
    """Makes `cls` (an ItemRewriter, RowTransformer or WhereFilter subclass) the
    plugin this component exports. Call it once, at the end of the module; it
    returns `cls`, so it also works as a class decorator."""
    global _exported
    if not (isinstance(cls, type) and issubclass(cls, Plugin) and cls.KIND):
        raise TypeError(f"export() takes a subclass of ItemRewriter, RowTransformer or WhereFilter, not {cls!r}")
    if _exported is not None and _exported is not cls:
        raise TypeError(f"export() called twice ({_exported.__name__} and {cls.__name__}): a component holds one plugin")
    _exported = cls
    return cls


def exported():
    """The class given to `export`, or None."""
    return _exported
