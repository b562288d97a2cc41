"""Entry point of `python -m inference`. Other parts of the engine plug their own
subcommands in here (e.g. `train-replies` from inference.replies.cli)."""

import importlib
import importlib.util
import sys

from .cli import main


def _extensions() -> list:
    # The reply model lives in its own package, possibly not installed on this branch.
    try:
        found = importlib.util.find_spec("inference.replies.cli") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return []
    return [importlib.import_module("inference.replies.cli").add_subparsers]


if __name__ == "__main__":
    from .knowledge.cli import register as register_knowledge  # kb-eval

    sys.exit(main(extra=[*_extensions(), register_knowledge]))
