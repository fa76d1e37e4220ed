"""`{{name}}`: a host item rewriter. It sets a top-level `tag` on every item."""

from host_plugin import ItemRewriter, Keep, Reject, export


class {{Type}}(ItemRewriter):
    """Tags every item; parameter `tag` (default `{{name}}`)."""

    def __init__(self, params):
        params.only("tag")
        self.tag = params.get("tag", "{{name}}")

    def rewrite(self, item):
        if item.id() is None:
            return Reject("the item has no `id`")
        # Only the top level is parsed; everything else passes through as given.
        item.set("tag", self.tag)
        return Keep(item)


export({{Type}})
