"""host from Python: load, search and delete STAC collections and items in
PostgreSQL (host's own schema or pgstac), through the same Rust library the
`host` command line runs.

    import host
    db = host.connect()                      # PG* variables, or host.connect("postgresql://...")
    db.load_collections([collection.to_dict()], method="upsert")
    summary = db.load_items(items, method="insert_ignore")   # dicts, pystac objects, generators, paths, URLs
    for item in db.search({"collections": ["naip"], "limit": 100}):
        ...
    db.delete_items("naip", ["item-1"])
"""

from ._host import (
    CatalogError,
    Client,
    ConnectError,
    DuplicateError,
    Error,
    Items,
    MigrateError,
    NoSuchCollectionError,
    PluginError,
    RecordError,
    SearchError,
    SourceError,
    Summary,
    connect,
)

__all__ = [
    "CatalogError",
    "Client",
    "ConnectError",
    "DuplicateError",
    "Error",
    "Items",
    "MigrateError",
    "NoSuchCollectionError",
    "PluginError",
    "RecordError",
    "SearchError",
    "SourceError",
    "Summary",
    "connect",
]
