"""`set_collection` in Python: the same output as the Rust plugin, byte for byte."""

from host_plugin import ItemRewriter, JsonObject, Keep, Reject, export
from host_plugin.stac import relink_collection


class SetCollection(ItemRewriter):
    """Sets `collection` on every item and relinks it."""

    def __init__(self, params):
        params.only("collection")
        self.collection = params.require("collection")
        if not self.collection:
            raise ValueError("parameter `collection` must not be empty")

    def rewrite(self, item):
        if item.id() is None:
            return Reject("the item has no `id` string")
        old = item.collection()
        if old == self.collection:
            return Keep(item)  # nothing to do: the item goes out as it came
        item.set("collection", self.collection)
        if old is not None:
            try:
                links = relink(item, old, self.collection)
                if links is not None:
                    item.set_json("links", links)
            except ValueError as e:
                return Reject(str(e))
        return Keep(item)


def relink(item, old, new):
    """The `links` array as JSON text with links to collection `old` pointed at
    `new`, or None if no link changes. Unchanged links keep their text; a
    changed link, and the array, are printed compactly."""
    links = item.get_array_raw("links")
    if links is None:
        return None
    out, changed = [], False
    for raw in links:
        try:
            link = JsonObject(raw)
        except ValueError as e:
            raise ValueError(f"`links`: {e}") from None
        rel, href = link.get_str("rel"), link.get_str("href")
        new_href = relink_collection(href, rel, old, new) if rel is not None and href is not None else None
        if new_href is not None:
            link.set("href", new_href)
            out.append(link.to_json())
            changed = True
        else:
            out.append(raw)
    return "[" + ",".join(out) + "]" if changed else None


export(SetCollection)
