"""`python -m inference ...`: the subcommands of every model kind under one parser.

A kind plugs in by providing `inference/<kind>/cli.py` with `add_subparsers(subparsers)`
that adds its commands, each setting `func` (the argparse convention) to its handler,
and naming it in COMMAND_MODULES. Bad input exits with status 2 and a one-line error."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable

EXIT_BAD_INPUT = 2
# Kinds whose package is not on this branch (yet) are skipped.
COMMAND_MODULES = ("inference.intents.cli", "inference.replies.cli", "inference.knowledge.cli")

AddSubparsers = Callable[[argparse._SubParsersAction], None]


def installed_commands(modules: Iterable[str] = COMMAND_MODULES) -> list[AddSubparsers]:
    found = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # the kind's package itself is missing
            spec = None
        if spec is not None:
            found.append(importlib.import_module(name).add_subparsers)
    return found


def main(argv: list[str] | None = None, extra: list[AddSubparsers] | None = None) -> int:
    """Parse and run; `extra` are callables that add more subcommands."""
    from .artifact import ArtifactError
    from .intents.data import DataError

    parser = argparse.ArgumentParser(
        prog="python -m inference", description="Inference toolkit: intent classification and reply suggestions"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in [*installed_commands(), *(extra or [])]:
        add(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ArtifactError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
