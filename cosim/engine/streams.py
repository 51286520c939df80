"""The random streams of one chip instance, each keyed by what it models.

Every draw that makes a Monte-Carlo chip (:mod:`cosim.engine.chip`) comes from a generator
of its own, seeded by a :class:`numpy.random.SeedSequence` of

    (seed, chip, 1, layer, row tile + 1, column tile + 1, effect, index)

where ``effect`` (:class:`Effect`) names what the draws model (programming noise, stuck
faults, a TIA's offset, an ADC instance, ...), row and column tile say where (``-1``: not
tied to one, e.g. the subtractors of a column tile or a layer's sense TIA) and ``index``
numbers instances of one kind in one place (the ADCs of a conversion group). So:

* switching an effect on or off, or changing its magnitude, moves no other draw: a sweep's
  reference point and every swept point are the same chip but for the swept effect;
* a magnitude scales standard draws (``nvw``, ``nva``: ``σ·N(0, 1)``), so a sweep over it
  uses common random numbers: every point sees the same normals, scaled;
* nothing depends on the order in which the chip is built.

The read noise is keyed the same way per block of MAC vectors, with 2 in the third place
(:class:`cosim.engine.readnoise.ReadNoise`); the two never share a key.

A generator costs a SeedSequence (about 20 µs); a chip makes one per tile and effect and
one per ADC instance.

Examples
--------
>>> s = ChipStreams(seed=0, chip=1)
>>> a = s.rng(Effect.STUCK, layer=0, row_tile=1, col_tile=0).random(3)
>>> b = s.rng(Effect.STUCK, layer=0, row_tile=1, col_tile=0).random(3)
>>> bool((a == b).all())
True
>>> c = s.rng(Effect.PROGRAMMING, layer=0, row_tile=1, col_tile=0).random(3)
>>> bool((a == c).any())
False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: third word of a chip draw's key (the read noise has 2 there)
CHIP_DOMAIN = 1


class Effect(IntEnum):
    """What a chip's draws model: a word of their generator's key (never renumber one:
    the number is part of every seeded result)."""

    PROGRAMMING = 1  # device programming noise, per device (array and sense line)
    NVW = 2  # Bao et al.'s weight variation: standard normals, scaled by nvw
    DRIFT_NU = 3  # drift exponent per device
    STUCK = 4  # stuck-at faults: a uniform per device
    REF_PROGRAMMING = 5  # the g_min reference line's programming noise
    REF_NVW = 6  # ... its nvw normals
    REF_DRIFT_NU = 7  # ... its drift exponents
    TIA_OFFSET = 8  # input offset of every column's TIA (the sense line's last)
    SUB_MISMATCH = 9  # the four resistors of every subtractor
    SUB_OFFSET = 10  # every subtractor op-amp's input offset
    SENSE_OFFSET = 11  # the layer's sense TIA offset
    ADC = 12  # one ADC instance's mismatch (capacitors, comparator offset)
    NVA = 13  # one ADC instance's comparison-level normals, scaled by nva
    DRIFT_CAL_INPUTS = 14  # a layer's drift-calibration input vectors
    DRIFT_CAL_READ = 15  # read noise of its calibration reads (index 0: at t0, 1: at t)


#: a tile's (or an instance's) generator per effect
RngFor = Callable[[Effect], np.random.Generator]


@dataclass(frozen=True)
class ChipStreams:
    """The generators of chip ``chip`` under ``seed`` (see the module docstring)."""

    seed: int
    chip: int

    def rng(
        self,
        effect: Effect,
        layer: int,
        row_tile: int = -1,
        col_tile: int = -1,
        index: int = 0,
    ) -> np.random.Generator:
        """A fresh generator of ``effect``'s draws at (layer, row tile, column tile, index);
        ``-1`` for a tile index: not tied to one."""
        key = [self.seed, self.chip, CHIP_DOMAIN, layer, row_tile + 1, col_tile + 1]
        ss = np.random.SeedSequence([*key, int(effect), index])
        return np.random.Generator(np.random.PCG64(ss))

    def at(self, layer: int, row_tile: int = -1, col_tile: int = -1, index: int = 0) -> RngFor:
        """``effect -> generator`` at one place (a generator is made only when asked for)."""
        return lambda effect: self.rng(effect, layer, row_tile, col_tile, index)
