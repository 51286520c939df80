"""The ``cosim`` command line: ``characterize``, ``train``, ``evaluate``, ``report``.

Each sub-command lives in its own module exposing ``configure(parser)`` (adds arguments;
must stay import-light) and ``run(args) -> int``. Deliberate errors (:class:`CosimError`)
become one readable message and exit status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cosim.errors import CosimError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "characterize": (
        "cosim.characterize.command",
        "sweep the circuits in ngspice and fit validated surrogate models",
    ),
    "train": ("cosim.train.command", "train a network for NVM crossbars (global quantization)"),
    "evaluate": (
        "cosim.engine.command",
        "run a trained network through the analog engine: accuracy, energy, area",
    ),
    "report": ("cosim.report.command", "rerun the literature's design-space study on a card"),
}


def _available() -> dict[str, object]:
    mods = {}
    for name, (modname, _help) in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a sub-command not built yet
            if exc.name is not None and modname.startswith(exc.name):
                continue
            raise
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """Build the argument parser with every available sub-command."""
    from cosim import __version__

    parser = argparse.ArgumentParser(
        prog="cosim",
        description="How will this trained network behave on this analog NVM crossbar chip?",
    )
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = _available()
    for name, mod in mods.items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        mod.configure(p)  # type: ignore[attr-defined]
    return parser, mods


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cosim`` command; returns the process exit status."""
    parser, mods = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(mods[args.command].run(args) or 0)  # type: ignore[attr-defined]
    except CosimError as exc:
        print(f"cosim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cosim {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
