"""Drives a plugin over a batch exactly as the exported component does; for
native unit tests of a plugin's logic (and used by the component itself).

Kept items come back as `Keep(json_text)`, so tests compare exactly what the
host receives."""

from . import Drop, Keep, Reject
from .copy import rows
from .json import Item

__all__ = ["rewrite_items", "filter_items", "transform_rows", "filter_rows"]


def _outcome(o, what):
    if isinstance(o, (Keep, Drop, Reject)):
        return o
    raise TypeError(f"{what} returned {o!r}; return Keep, DROP or Reject(reason)")


def rewrite_items(plugin, items):
    """One `Keep(json)`, `Drop()` or `Reject(reason)` per item (JSON text); an item
    that is not a JSON object is rejected."""
    out = []
    for text in items:
        try:
            item = Item(text)
        except ValueError as e:
            out.append(Reject(str(e)))
            continue
        o = _outcome(plugin.rewrite(item), "rewrite")
        if isinstance(o, Keep):
            if not isinstance(o.value, Item):
                raise TypeError(f"rewrite returned Keep({o.value!r}); an item rewriter keeps an Item: Keep(item)")
            o = Keep(o.value.to_json())
        out.append(o)
    return out


def filter_items(plugin, items):
    """One outcome per item; an item that is not a JSON object is rejected."""
    out = []
    for text in items:
        try:
            item = Item(text)
        except ValueError as e:
            out.append(Reject(str(e)))
            continue
        out.append(_outcome(plugin.keep_item(item), "keep_item"))
    return out


def transform_rows(plugin, table, buf):
    """(outcomes, kept rows as COPY text bytes) for a batch of `table`'s rows;
    call `plugin.begin_table(table)` first."""
    outcomes, kept = [], []
    for row in rows(table, buf):
        o = _outcome(plugin.transform(row), "transform")
        if isinstance(o, Keep):
            kept.append(row.to_copy())
            kept.append("\n")
        outcomes.append(o)
    return outcomes, "".join(kept).encode("utf-8")


def filter_rows(plugin, table, buf):
    """One outcome per row of a batch of `table`'s rows."""
    return [_outcome(plugin.keep_row(row), "keep_row") for row in rows(table, buf)]

