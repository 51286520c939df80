"""What the runner is asked and what it answers: :class:`SpiceJob` (a netlist, its vectors,
its cache key) and :class:`SpiceResult` (named arrays)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RUNNER_VERSION = "1"


@dataclass(frozen=True)
class SpiceJob:
    """One ngspice run: a complete netlist (with its analysis) and the vectors to return.

    Parameters
    ----------
    netlist
        Netlist text; its first line is the title.
    vectors
        Names of vectors to return (node names, ``vsrc#branch``, ``time``, ``v-sweep``...);
        case-insensitive. Empty means all vectors of the last plot.
    timeout_s
        Wall-clock limit for this job including retries (s).
    label
        Short description for progress bars and errors.
    fallbacks
        Retry with convergence aids when the plain run fails.
    """

    netlist: str
    vectors: tuple[str, ...] = ()
    timeout_s: float = 600.0
    label: str = ""
    fallbacks: bool = True

    def key(self, version: str) -> str:
        h = hashlib.sha256()
        for part in (
            RUNNER_VERSION,
            version,
            self.netlist,
            "|".join(v.lower() for v in self.vectors),
        ):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()


@dataclass
class SpiceResult:
    """Named arrays from one run, plus how it was obtained."""

    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name.lower()]
        except KeyError:
            raise KeyError(f"no vector {name!r} in this result") from None

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.arrays
