"""``python -m xumx_slicq_v2``: the separation command line (`xumx_slicq_v2.inference`)."""

import sys

from .inference import main

if __name__ == "__main__":
    sys.exit(main())
