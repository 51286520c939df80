"""Argument types for the command line: every number is finite and in its documented range.

``argparse`` calls these while parsing, so a bad value stops the command before any work
starts, with one line that names the flag, the value and the allowed range. The ranges are
the documented ones (``cosim COMMAND --help`` prints them) and are shared with the library
API (:class:`cosim.engine.config.EngineConfig` checks the same bounds).

Examples
--------
>>> seed("7")
7
>>> fraction("0.25")
0.25
>>> real(0.0, 1.0)("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: 'nan' is not a finite number
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

#: Seeds are non-negative 32-bit integers (NumPy's SeedSequence entropy words).
SEED_MAX = 2**32 - 1
#: Worker processes or threads: at least one, and no more than a machine could use.
WORKERS_MAX = 256


def show(text: str, limit: int = 40) -> str:
    """User text for a one-line message: control characters escaped, long text cut.

    Examples
    --------
    >>> show("1\\n2")
    "'1\\\\n2'"
    """
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{show(text)} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{show(text)} is not a finite number")
    return value


def _parse_int(text: str) -> int:
    try:
        return int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{show(text)} is not a whole number") from None


def real(
    lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """A parser of finite floats in ``[lo, hi]`` (``lo_open``/``hi_open``: exclude the end).

    Examples
    --------
    >>> real(0.0, 1.0, lo_open=True)("0.5")
    0.5
    """
    left, right = ("(" if lo_open else "["), (")" if hi_open else "]")

    def parse(text: str) -> float:
        value = _parse_float(text)
        if (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi):
            shown = text.strip() if text.isprintable() and len(text) <= 40 else show(text)
            raise argparse.ArgumentTypeError(f"{shown} is outside {left}{lo:g}, {hi:g}{right}")
        return value

    parse.__name__ = "number"  # argparse names the type in its messages
    return parse


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """A parser of integers in ``[lo, hi]``.

    Examples
    --------
    >>> integer(1, 8)("3")
    3
    """

    def parse(text: str) -> int:
        value = _parse_int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value

    parse.__name__ = "integer"
    return parse


#: A random seed, 0 .. 2^32 - 1.
seed = integer(0, SEED_MAX)
#: A count of worker processes or threads, 1 .. 256.
workers = integer(1, WORKERS_MAX)
#: A fraction in [0, 1].
fraction = real(0.0, 1.0)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2.

    argparse's own error prints the whole usage block first; cosim's contract is one line
    naming the problem (``cosim evaluate: error: argument --nvw: 'nan' is not a finite
    number``), with a pointer to ``--help``.
    """

    def error(self, message: str) -> NoReturn:
        """Print one line and exit with status 2."""
        line = " ".join(message.split())  # argparse echoes arguments, newlines included
        self.exit(2, f"{self.prog}: error: {line} (see {self.prog} --help)\n")


def path(text: str) -> Path:
    """A file or directory path; an empty one is an error (``Path("")`` would mean ``.``).

    Examples
    --------
    >>> path("lib")
    PosixPath('lib')
    """
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a file or directory name")
    return Path(text)
