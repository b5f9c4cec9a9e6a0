"""The ``aiotbench`` command. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys

# module -> it defines ``register(subparsers)`` which adds its subcommand(s) with ``set_defaults(func=...)``.
SUBCOMMAND_MODULES = (
    "pytest_aiotbench.zoo.cli",
    "pytest_aiotbench.report.compare",
    "pytest_aiotbench.report.rank",
    "pytest_aiotbench.report.html",
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="aiotbench", description="AIoTBench tools: model zoo, compare, rank, report")
    parser.add_argument("--version", action="version", version=f"aiotbench (pytest-aiotbench) {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # subcommand not part of this build
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .inputs.options import CliValueError

    try:
        args = build_parser().parse_args(argv)
    except CliValueError as exc:  # a value the option's declared parser refuses: one line, as for bad input
        print(exc, file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("aiotbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
