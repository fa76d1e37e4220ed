"""Rows in PostgreSQL's COPY text format, as the Rust SDK reads and writes them.

A batch is one buffer: every row ends with `\\n`, fields are separated by
`\\t`, NULL is `\\N`, and backslash, tab, newline and carriage return inside
values are escaped. Decoding also accepts the rest of what COPY's input side
does (`\\b`, `\\f`, `\\v`, octal `\\NNN`, hex `\\xHH`, a backslash before any
other character standing for that character). An unchanged row is copied out
as given; a changed row re-encodes only its changed fields.
"""

__all__ = ["Column", "Table", "Row", "decode_field", "encode_field"]


class Column:
    """A column of the table that rows come from."""

    __slots__ = ("name", "type_name")

    def __init__(self, name, type_name="text"):
        self.name = name
        #: The type as PostgreSQL's `format_type` prints it, e.g. `character varying(20)`.
        self.type_name = type_name

    def __repr__(self):
        return f"Column({self.name!r}, {self.type_name!r})"

    def __eq__(self, other):
        return isinstance(other, Column) and (self.name, self.type_name) == (other.name, other.type_name)


class Table:
    """The table that the following row batches belong to."""

    __slots__ = ("schema", "name", "columns")

    def __init__(self, schema, name, columns):
        self.schema = schema
        self.name = name
        #: Columns in the order of the fields of each row; `(name, type)` pairs are accepted.
        self.columns = [c if isinstance(c, Column) else Column(*c) for c in columns]

    def column_index(self, name):
        """The position of the column called `name`, or None."""
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        return None

    def require_column(self, name):
        """The position of the column called `name`; a ValueError naming the table and its columns if absent."""
        i = self.column_index(name)
        if i is None:
            names = ", ".join(c.name for c in self.columns)
            raise ValueError(f"table {self.schema}.{self.name} has no column `{name}` (its columns: {names})")
        return i

    def __str__(self):
        return f"{self.schema}.{self.name}"

    def __repr__(self):
        return f"Table({self.schema!r}, {self.name!r}, {self.columns!r})"


_SIMPLE = {"b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"


def _unescape(raw):
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        i += 1
        if c != "\\":
            out += c.encode("utf-8")
            continue
        if i >= n:
            raise ValueError(f"COPY field `{raw}` ends with a lone backslash")
        e = raw[i]
        i += 1
        if e in _SIMPLE:
            out.append(_SIMPLE[e])
        elif e in _OCT:
            v = int(e)
            for _ in range(2):
                if i < n and raw[i] in _OCT:
                    v = v * 8 + int(raw[i])
                    i += 1
                else:
                    break
            out.append(v & 0xFF)
        elif e == "x" and i < n and raw[i] in _HEX:
            v = 0
            for _ in range(2):
                if i < n and raw[i] in _HEX:
                    v = v * 16 + int(raw[i], 16)
                    i += 1
                else:
                    break
            out.append(v)
        else:
            out += e.encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"COPY field `{raw}` decodes to invalid UTF-8") from None


def decode_field(raw):
    """One field's text (between tabs) decoded: None for NULL (`\\N`)."""
    if raw == "\\N":
        return None
    if "\\" not in raw:
        return raw
    return _unescape(raw)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def encode_field(value):
    """`value` as one COPY text field (`\\N` for None, escapes as needed)."""
    if value is None:
        return "\\N"
    return value.translate(_ESCAPES)


def _split(line):
    """The raw fields of a line: on tabs, except a tab right after a backslash (data)."""
    if "\\" not in line:
        return line.split("\t")
    fields, start, i, n = [], 0, 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
        elif c == "\t":
            fields.append(line[start:i])
            i += 1
            start = i
        else:
            i += 1
    fields.append(line[start:])
    return fields


class Row:
    """One row of a batch: fields by position (`row[i]`, `row[i] = v`) or name.

    None is SQL NULL, distinct from "". Setting a field to a different value
    marks it changed; only changed fields are encoded again when the row is kept.
    """

    __slots__ = ("table", "raw", "_raw_fields", "_values", "_changed")

    def __init__(self, table, line, raw_fields):
        #: The table this row belongs to.
        self.table = table
        #: The row as it came, in COPY text, without its newline.
        self.raw = line
        self._raw_fields = raw_fields
        self._values = [decode_field(f) for f in raw_fields]
        self._changed = None

    def __len__(self):
        return len(self._values)

    def __getitem__(self, i):
        return self._values[i]

    def __setitem__(self, i, value):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"a field is a str or None, not {type(value).__name__}")
        if self._values[i] != value:
            self._values[i] = value
            if self._changed is None:
                self._changed = set()
            self._changed.add(i % len(self._values))

    def get(self, i):
        """Field `i` (None for NULL)."""
        return self._values[i]

    def set(self, i, value):
        """Sets field `i` (None for NULL)."""
        self[i] = value

    def column(self, name):
        """The field of column `name` (None for NULL or no such column). In a
        hot loop, resolve positions once in `begin_table` and use `row[i]`."""
        i = self.table.column_index(name)
        return None if i is None else self._values[i]

    def __iter__(self):
        return iter(self._values)

    @property
    def modified(self):
        """Whether a field was set to a different value."""
        return self._changed is not None

    def to_copy(self):
        """The row in COPY text, without its newline."""
        if self._changed is None:
            return self.raw
        return "\t".join(
            encode_field(v) if i in self._changed else r
            for i, (r, v) in enumerate(zip(self._raw_fields, self._values))
        )

    def __repr__(self):
        return f"Row({self._values!r})"


def rows(table, buf):
    """Yields the rows of `buf` (bytes or str), a batch of `table`'s rows in COPY text.

    A ValueError for a malformed batch: not UTF-8, no final newline, a row with
    the wrong number of fields, a bad escape."""
    if isinstance(buf, (bytes, bytearray, memoryview)):
        try:
            text = bytes(buf).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"row batch is not UTF-8 (at byte {e.start})") from None
    else:
        text = buf
    if not text:
        return
    if not text.endswith("\n"):
        raise ValueError("row batch does not end with a newline")
    ncols = len(table.columns)
    for count, line in enumerate(text[:-1].split("\n"), 1):
        fields = [] if ncols == 0 and line == "" else _split(line)
        if len(fields) != ncols:
            raise ValueError(
                f"row {count} of the batch has {len(fields)} fields, table {table.schema}.{table.name} has {ncols} columns"
            )
        try:
            row = Row(table, line, fields)
        except ValueError as e:
            raise ValueError(f"row {count} of the batch: {e}") from None
        yield row
