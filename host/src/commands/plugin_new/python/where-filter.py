"""`{{name}}`: a host where-filter. Items: keeps those of one collection;
rows: keeps those whose column has one value."""

from host_plugin import Reject, WhereFilter, export, keep_if


class {{Type}}(WhereFilter):
    """Parameters: `collection=ID` for items; `column=NAME` and `value=V` for rows."""

    def __init__(self, params):
        params.only("collection", "column", "value")
        self.collection = params.get("collection")
        self.column, self.value = params.get("column"), params.get("value")
        if (self.column is None) != (self.value is None):
            raise ValueError("give `column` and `value` together")
        self.index = 0

    def keep_item(self, item):
        if self.collection is None:
            return Reject("no `collection` parameter: this filter cannot judge items")
        return keep_if(item.collection() == self.collection)

    def begin_table(self, table):
        if self.column is None:
            raise ValueError("no `column` parameter: this filter cannot judge rows")
        self.index = table.require_column(self.column)

    def keep_row(self, row):
        return keep_if(row[self.index] == self.value)


export({{Type}})
