"""Errors that cosim raises on purpose.

Every error names the thing that is wrong and says what to do about it. The CLI turns a
``CosimError`` into one readable message and a non-zero exit status instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class CosimError(Exception):
    """Base class of every error cosim raises deliberately."""


class CardError(CosimError, ValueError):
    """A hardware card is malformed: unknown key, wrong type or out-of-range value."""


class DataError(CosimError, ValueError):
    """A dataset is missing, malformed, of the wrong shape or holds NaN/inf."""


class ModelFileError(CosimError, ValueError):
    """A model file is corrupt, of another format version, or inconsistent."""


class OnnxImportError(CosimError, ValueError):
    """An ONNX graph cannot be imported: an unsupported operator or structure, or bad input."""


class TrainingDivergedError(CosimError, ArithmeticError):
    """Training diverged: the loss or a parameter became NaN/inf (usually too large a --lr)."""


class LibraryError(CosimError, ValueError):
    """A surrogate library is corrupt, of another schema, or does not fit its use."""


class SimulationError(CosimError, RuntimeError):
    """ngspice failed, did not converge, timed out or could not be loaded.

    Parameters
    ----------
    message
        What went wrong, in words.
    netlist_path
        Where the failing netlist was written (kept for inspection), if any.
    spice_messages
        ngspice's own error/warning lines, newest last.
    tried
        The convergence aids attempted before giving up (e.g. ``["plain", "gmin stepping"]``).
    """

    def __init__(
        self,
        message: str,
        *,
        netlist_path: Path | str | None = None,
        spice_messages: list[str] | tuple[str, ...] = (),
        tried: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.netlist_path = Path(netlist_path) if netlist_path is not None else None
        self.spice_messages = tuple(spice_messages)
        self.tried = tuple(tried)
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.args[0]]
        if self.netlist_path is not None:
            parts.append(f"netlist: {self.netlist_path}")
        if self.tried:
            parts.append("tried: " + ", ".join(self.tried))
        if self.spice_messages:
            tail = list(self.spice_messages)[-8:]
            parts.append("ngspice said:\n    " + "\n    ".join(tail))
        return "\n  ".join(parts)

    def __reduce__(self):  # keep the extra fields across process boundaries
        return (
            _rebuild_simulation_error,
            (self.args[0], self.netlist_path, self.spice_messages, self.tried),
        )


def _rebuild_simulation_error(message, netlist_path, spice_messages, tried) -> SimulationError:
    return SimulationError(
        message, netlist_path=netlist_path, spice_messages=spice_messages, tried=tried
    )
