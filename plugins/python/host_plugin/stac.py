"""STAC helpers, as the Rust SDK's `stac` module has them."""

__all__ = ["relink_collection"]

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@")


def _percent_decode(s):
    if "%" not in s:
        return s
    b = s.encode("utf-8")
    out = bytearray()
    i = 0
    hexd = b"0123456789abcdefABCDEF"
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b) and b[i + 1] in hexd and b[i + 2] in hexd:
            out.append(int(b[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode("utf-8", "replace")


def _percent_encode_segment(s):
    return "".join(chr(c) if c in _SAFE else f"%{c:02X}" for c in s.encode("utf-8"))


def relink_collection(href, rel, old, new):
    """Points a link's `href` at collection `new` instead of `old`, if it points at `old`.

    None if it does not (or `rel` is not `collection`, `parent` or `self`).
    `collection`/`parent`: the collection is the last path segment, or the one
    before a last `*.json` segment; `self`: the segment after `collections`
    when `items` follows. Query and fragment are kept; segments compare
    percent-decoded and `new` is percent-encoded as a path segment needs.
    """
    if rel not in ("collection", "parent", "self"):
        return None
    cut = [p for p in (href.find("?"), href.find("#")) if p >= 0]
    split = min(cut) if cut else len(href)
    path, tail = href[:split], href[split:]
    trimmed = path[:-1] if path.endswith("/") else path
    segs = trimmed.split("/")
    n = len(segs)
    if rel in ("collection", "parent"):
        at = n - 2 if n >= 2 and segs[n - 1].endswith(".json") else n - 1
    else:
        at = next((i for i in range(1, max(n - 2, 0)) if segs[i - 1] == "collections" and segs[i + 1] == "items"), None)
        if at is None:
            return None
    if _percent_decode(segs[at]) != old:
        return None
    segs[at] = _percent_encode_segment(new)
    return "/".join(segs) + path[len(trimmed) :] + tail
