"""`python -m host_plugin build ...`: see host_plugin.build."""

import sys

from .build import main

if len(sys.argv) < 2 or sys.argv[1] != "build":
    print("usage: python -m host_plugin build [PROJECT] [-o OUT.wasm]", file=sys.stderr)
    sys.exit(2)
sys.exit(main(sys.argv[2:]))
