"""PostgreSQL column types, as the Rust SDK's `pg` module classifies them."""

__all__ = ["TEXT", "INTEGER", "NUMBER", "BOOLEAN", "OTHER", "type_class", "text_length_limit"]

TEXT, INTEGER, NUMBER, BOOLEAN, OTHER = "text", "integer", "number", "boolean", "other"

_CLASSES = {
    **dict.fromkeys(("text", "character varying", "varchar", "character", "char", "bpchar", "name", "citext"), TEXT),
    **dict.fromkeys(("smallint", "integer", "bigint", "int", "int2", "int4", "int8"), INTEGER),
    **dict.fromkeys(("numeric", "decimal", "real", "double precision", "float4", "float8"), NUMBER),
    **dict.fromkeys(("boolean", "bool"), BOOLEAN),
}


def type_class(type_name):
    """TEXT, INTEGER, NUMBER, BOOLEAN or OTHER for a type name as `format_type` prints it."""
    t = type_name.strip()
    if t.endswith("]"):
        return OTHER  # arrays
    if "." in t and '"' not in t:
        t = t.rsplit(".", 1)[1]  # `public.citext`: the schema does not matter here
    base = t.split("(", 1)[0].strip()
    return _CLASSES.get(base, OTHER)


def text_length_limit(type_name):
    """The declared length of `character varying(n)` or `character(n)`, else None."""
    if type_class(type_name) != TEXT or "(" not in type_name:
        return None
    rest = type_name.split("(", 1)[1]
    if not rest.endswith(")"):
        return None
    try:
        return int(rest[:-1].strip())
    except ValueError:
        return None
