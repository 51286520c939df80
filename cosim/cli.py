"""The ``cosim`` command line: ``characterize``, ``train``, ``import``, ``evaluate``,
``report``.

Each sub-command lives in its own module exposing ``configure(parser)`` (adds arguments;
must stay import-light) and ``run(args) -> int``. Deliberate errors (:class:`CosimError`)
become one readable message and exit status 2; anything else is a bug and keeps its
traceback.

Ctrl-C (SIGINT) and SIGTERM both stop the command the same way: the exception unwinds
through every ``finally`` and context manager (atomic writes are abandoned, ngspice workers
stopped, finished work stays cached), one line is printed, and the exit status is 130 or 143.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, cast

from cosim.errors import CosimError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "characterize": (
        "cosim.characterize.command",
        "sweep the circuits in ngspice and fit validated surrogate models",
    ),
    "train": ("cosim.train.command", "train a network for NVM crossbars (global quantization)"),
    "import": (
        "cosim.train.import_command",
        "import an ONNX network: quantize it onto the chip's grids and write a model file",
    ),
    "export": (
        "cosim.train.export_command",
        "write a model file as ONNX (float, or quantized with QuantizeLinear/DequantizeLinear)",
    ),
    "evaluate": (
        "cosim.engine.command",
        "run a trained network through the analog engine: accuracy, energy, area",
    ),
    "report": ("cosim.report.command", "rerun the literature's design-space study on a card"),
}


class _Command(Protocol):
    """What a sub-command's module (``COMMANDS``) defines."""

    def configure(self, p: argparse.ArgumentParser, /) -> None: ...

    def run(self, args: argparse.Namespace, /) -> int | None: ...


def _available() -> dict[str, _Command]:
    mods: dict[str, _Command] = {}
    for name, (modname, _help) in COMMANDS.items():
        try:
            mods[name] = cast(_Command, importlib.import_module(modname))
        except ModuleNotFoundError as exc:  # a sub-command not built yet
            if exc.name is not None and modname.startswith(exc.name):
                continue
            raise
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, _Command]]:
    """Build the argument parser with every available sub-command."""
    from cosim import __version__
    from cosim.argcheck import OneLineParser

    parser = OneLineParser(
        prog="cosim",
        description="How will this trained network behave on this analog NVM crossbar chip?",
    )
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = _available()
    for name, mod in mods.items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        mod.configure(p)
    return parser, mods


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while a command runs.

    A :class:`KeyboardInterrupt` so that it unwinds exactly like Ctrl-C: code that cleans up
    on ``BaseException``/``KeyboardInterrupt`` does so here too, and no ``except Exception``
    swallows it.
    """

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: object) -> None:
    # one exception only: a second SIGTERM must not interrupt the clean-up of the first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration; restore the previous handler.

    Only in the main thread (the only place Python delivers signals), and not when SIGTERM
    was deliberately ignored by whoever started us.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        # None: installed outside Python; the default is the closest we can restore
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _eprint(text: str) -> None:
    """Write one line to stderr; characters it cannot encode (e.g. a path's undecodable
    bytes) are escaped instead of raising."""
    enc = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr.write(text.encode(enc, "backslashreplace").decode(enc, "replace") + "\n")


def _one_line(exc: CosimError) -> str:
    """The error as one line; a simulation error keeps ngspice's own lines below it."""
    from cosim.errors import SimulationError

    text = str(exc)
    return text if isinstance(exc, SimulationError) else " ".join(text.split())


def _nul_argument(args: argparse.Namespace) -> str | None:
    """The flag whose value holds a NUL byte (no file name can), if any."""
    for name, value in vars(args).items():
        if "\x00" in str(value):
            return "--" + name.replace("_", "-")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cosim`` command; returns the process exit status.

    0 on success, 2 for a :class:`~cosim.errors.CosimError` (one line on stderr), 130 after
    Ctrl-C and 143 after SIGTERM (one line on stderr; finished work is kept).
    """
    parser, mods = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error (status 2)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        _eprint("cosim: error: give a command: " + ", ".join(COMMANDS) + " (see cosim --help)")
        return 2
    bad = _nul_argument(args)
    if bad is not None:
        _eprint(f"cosim {args.command}: error: {bad} holds a NUL byte, which no path can hold")
        return 2
    from cosim.memory import tune_malloc

    tune_malloc()  # NumPy's temporaries on the heap, not a fresh mmap each (cosim.memory)
    try:
        with _sigterm_raises():
            return int(mods[args.command].run(args) or 0)
    except CosimError as exc:
        _eprint(f"cosim {args.command}: error: {_one_line(exc)}")
        return 2
    except OSError as exc:  # the system refused a read or write the checks could not foresee
        from cosim.messages import error_text, show_path

        where = f"{show_path(exc.filename)}: " if exc.filename is not None else ""
        _eprint(f"cosim {args.command}: error: {where}{error_text(exc)}")
        return 2
    except Terminated:
        _eprint(f"cosim {args.command}: interrupted (SIGTERM); finished work is kept")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        _eprint(f"cosim {args.command}: interrupted; finished work is kept")
        return 130


if __name__ == "__main__":
    sys.exit(main())
