"""``python -m xumx_slicq_v2.demixui``: the web mixer (`xumx_slicq_v2.demixui.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
