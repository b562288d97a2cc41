"""Entry point of `python -m inference`; inference/cli.py gathers every model kind's
subcommands."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
