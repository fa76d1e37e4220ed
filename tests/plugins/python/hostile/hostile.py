"""A Python item rewriter that misbehaves on purpose, for the host's sandbox
tests (the Python twin of tests/plugins/hostile). Parameter `mode`:

ok       keeps every item
loop     loops forever
alloc    allocates and fills 1 GiB; if that works, keeps the items with `allocated_bytes`
file     reads /etc/passwd: keeps with `leaked_file` on success, else rejects: `reading /etc/passwd failed: ...`
env      looks for HOST_SECRET, any variable, any argument: keeps with `leaked_env` if one is
         visible, else rejects: `HOST_SECRET: ...; no environment variable and no argument visible`
socket   connects to 127.0.0.1:1 and 127.0.0.1:55432: keeps with `leaked_socket` on success, else
         rejects: `connecting to 127.0.0.1:1 failed: ...; connecting to 127.0.0.1:55432 failed: ...`
raise    raises a KeyError in `rewrite`
"""

import os
import sys

from host_plugin import ItemRewriter, Keep, Reject, export

try:
    import encodings.idna  # noqa: F401 (socket encodes host names with it; only build-time imports exist)
    import socket
except ImportError as e:  # a CPython built without sockets: the attempt fails all the same
    socket = None
    SOCKET_IMPORT_ERROR = f"{type(e).__name__}: {e}"


class Hostile(ItemRewriter):
    def __init__(self, params):
        params.only("mode")
        self.mode = params.require("mode")

    def rewrite(self, item):
        mode = self.mode
        if mode == "ok":
            return Keep(item)
        if mode == "loop":
            n = 0
            while True:
                n += 1
        if mode == "alloc":
            block = bytearray(1 << 30)
            for i in range(0, len(block), 4096):
                block[i] = 1
            item.set("allocated_bytes", len(block))
            return Keep(item)
        if mode == "file":
            try:
                with open("/etc/passwd") as f:
                    item.set("leaked_file", f.read()[:100])
                return Keep(item)
            except Exception as e:
                return Reject(f"reading /etc/passwd failed: {e}")
        if mode == "env":
            seen = []
            secret = os.environ.get("HOST_SECRET")
            if secret is not None:
                seen.append(f"HOST_SECRET={secret}")
            seen += [f"{k}={v}" for k, v in os.environ.items() if k != "HOST_SECRET"]
            seen += sys.argv[1:]
            if seen:
                item.set("leaked_env", seen)
                return Keep(item)
            return Reject("HOST_SECRET: not set; no environment variable and no argument visible")
        if mode == "socket":
            reasons = []
            for port in (1, 55432):
                try:
                    if socket is None:
                        raise OSError(SOCKET_IMPORT_ERROR)
                    s = socket.create_connection(("127.0.0.1", port), timeout=2)
                    s.close()
                    item.set("leaked_socket", port)
                    return Keep(item)
                except Exception as e:
                    reasons.append(f"connecting to 127.0.0.1:{port} failed: {e}")
            return Reject("; ".join(reasons))
        if mode == "raise":
            return {}["no such key"]
        raise ValueError(f"unknown mode `{mode}`")


export(Hostile)
