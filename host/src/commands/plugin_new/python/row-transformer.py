"""`{{name}}`: a host row transformer. It upper-cases one text column."""

from host_plugin import KEEP, RowTransformer, export


class {{Type}}(RowTransformer):
    """Upper-cases the column named by parameter `column`; NULL stays NULL."""

    def __init__(self, params):
        params.only("column")
        self.column = params.require("column")
        self.index = 0

    def begin_table(self, table):
        # Look the column up once per table, not once per row.
        self.index = table.require_column(self.column)

    def transform(self, row):
        value = row[self.index]
        if value is not None:
            row[self.index] = value.upper()
        return KEEP


export({{Type}})
