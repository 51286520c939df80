"""What every block's characterization receives, and what it returns."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.spice.runner import SpiceRunner
from device_models import DeviceModel


@dataclass
class CharContext:
    """Inputs shared by the block characterizations.

    Parameters
    ----------
    card
        The validated hardware card.
    device
        The device model built from the card.
    runner
        The SPICE runner (worker pool + cache) to submit jobs to.
    quick
        Smaller sweeps (the ``--quick`` budget: the whole characterization in ≤ 3 min on
        2 cores).
    seed
        Base seed; each block derives its own generator with :meth:`rng`.
    """

    card: Card
    device: DeviceModel
    runner: SpiceRunner
    quick: bool = False
    seed: int = 0

    def rng(self, name: str) -> np.random.Generator:
        """A generator for block ``name``, independent of other blocks and of run order."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])


@dataclass
class BlockResult:
    """The outcome of characterizing one block.

    ``surrogate`` is stored in ``library.json``; ``validation`` (held-out errors in the
    units a designer reads) goes to ``validation.json``; ``netlist_hashes`` records which
    netlists produced the data; ``extra`` holds any further JSON-able figures (energy
    tables, Monte-Carlo statistics) that the library keeps beside the surrogate.
    """

    surrogate: Any
    validation: dict[str, Any]
    netlist_hashes: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    n_spice_runs: int = 0
