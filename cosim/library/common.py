"""What every part of the library package shares: the format's constants and the helpers
that put a key path or an exception into a one-line :class:`~cosim.errors.LibraryError`."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.errors import CosimError
from cosim.messages import error_text
from cosim.messages import show_text as show

SCHEMA_VERSION = 1
#: The blocks of a library of the default card; the ADC's block is its architecture's
#: (:attr:`~cosim.library.SurrogateLibrary.adc_architecture`, ``sar_adc`` for the SAR).
BLOCKS = ("crossbar", "tia", "subtractor", "sar_adc", "sense_row")
#: The largest ``library.json`` or ``validation.json`` cosim reads (bytes; a library's are
#: tens of kB, the arrays live in ``arrays.npz``).
LIBRARY_JSON_MAX_BYTES = 16 * 2**20
#: The largest ``arrays.npz`` cosim reads, and the most its arrays may hold together (bytes).
ARRAYS_MAX_BYTES = 4 * 2**30
#: The largest integer a float holds: a stored integer beyond it is no usable number.
FLOAT_MAX = int(np.finfo(float).max)

__all__ = [
    "ARRAYS_MAX_BYTES",
    "BLOCKS",
    "FLOAT_MAX",
    "LIBRARY_JSON_MAX_BYTES",
    "SCHEMA_VERSION",
    "detail",
    "field_path",
    "reason",
    "short",
    "show",
]


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return "<an integer of thousands of digits>"
    return show(text, limit)


def field_path(where: tuple[Any, ...]) -> str:
    """The key path ``("blocks", "sar_adc", "extra", "mc", 0, "bits")`` as
    ``blocks.sar_adc.extra.mc[0].bits``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + show(part, 60)
    return out


def reason(exc: BaseException) -> str:
    """An exception in a few words on one line (an OSError without its path)."""
    return error_text(exc, 300)


def detail(exc: BaseException) -> str:
    """A decoder's exception for a message: a deliberate error's text, anything else's
    class and text (``TypeError: ...``)."""
    if isinstance(exc, CosimError):
        return reason(exc)
    return f"{type(exc).__name__}: {reason(exc)}"
