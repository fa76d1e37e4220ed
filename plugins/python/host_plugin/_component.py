"""Glue between componentize-py's generated bindings (`wit_world`) and the
plugin classes; used by the module `host_plugin.build` generates, never by
plugin authors. Only importable inside a component build."""

import traceback

from wit_world import exports
from wit_world.imports import types as t
from componentize_py_types import Err

from . import Keep, Drop, Reject, exported
from . import run
from .copy import Column, Table
from .params import Params

_KINDS = {
    "item-rewriter": t.Kind.ITEM_REWRITER,
    "row-transformer": t.Kind.ROW_TRANSFORMER,
    "where-filter": t.Kind.WHERE_FILTER,
}

NOT_CONFIGURED = "the plugin is not configured: the host must call `configure` first"
NO_TABLE = "no table: the host must call `begin-table` (and it must succeed) first"

_info = None
_plugin = None
_table = None


def bind(name, version, description):
    """Sets what `info` reports (from the project's pyproject.toml)."""
    global _info
    cls = exported()
    _info = t.PluginInfo(
        name=name,
        version=version,
        kind=_KINDS[cls.KIND],
        description=cls.DESCRIPTION or description,
    )


def _message(e):
    """A user-facing message: a ValueError's own text; otherwise the type and where it was raised."""
    if isinstance(e, ValueError):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _plugin_or_err():
    if _plugin is None:
        raise Err(NOT_CONFIGURED)
    return _plugin


def _outcome(o):
    if isinstance(o, Keep):
        return t.Outcome_Keep()
    if isinstance(o, Drop):
        return t.Outcome_Drop()
    return t.Outcome_Reject(o.reason)


class Plugin(exports.Plugin):
    def info(self):
        return _info

    def configure(self, params):
        global _plugin, _table
        _plugin, _table = None, None
        try:
            _plugin = exported()(Params((p.key, p.value) for p in params))
        except Exception as e:
            raise Err(_message(e))


def _begin_table(table):
    global _table
    plugin = _plugin_or_err()
    _table = None
    tb = Table(table.schema, table.name, [Column(c.name, c.type_name) for c in table.columns])
    try:
        plugin.begin_table(tb)
    except Exception as e:
        raise Err(_message(e))
    _table = tb


def _batch(f, *args):
    try:
        return f(*args)
    except Exception as e:
        raise Err(_message(e))


def _table_or_err():
    if _table is None:
        raise Err(NO_TABLE)
    return _table


class ItemRewrite(getattr(exports, "ItemRewrite", object)):
    def rewrite_items(self, items):
        results = _batch(run.rewrite_items, _plugin_or_err(), items)
        return [
            t.ItemOutcome_Keep(o.value) if isinstance(o, Keep)
            else t.ItemOutcome_Drop() if isinstance(o, Drop)
            else t.ItemOutcome_Reject(o.reason)
            for o in results
        ]


class RowTransform(getattr(exports, "RowTransform", object)):
    def begin_table(self, table):
        _begin_table(table)

    def transform_rows(self, rows):
        plugin, table = _plugin_or_err(), _table_or_err()
        outcomes, kept = _batch(run.transform_rows, plugin, table, rows)
        return t.RowBatch(outcomes=[_outcome(o) for o in outcomes], rows=kept)


class Filter(getattr(exports, "Filter", object)):
    def filter_items(self, items):
        return [_outcome(o) for o in _batch(run.filter_items, _plugin_or_err(), items)]

    def begin_table(self, table):
        _begin_table(table)

    def filter_rows(self, rows):
        plugin, table = _plugin_or_err(), _table_or_err()
        return [_outcome(o) for o in _batch(run.filter_rows, plugin, table, rows)]
