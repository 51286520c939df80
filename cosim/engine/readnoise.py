"""The read noise of a chip instance: per-read draws keyed by what is read, not by the batch.

Each block of MAC vectors of a conversion group draws from its own generator
(:class:`ReadNoise`), so the noise a vector sees is a function of (seed, chip, sample,
layer, tile, read) only (:mod:`cosim.engine.blocks`), whatever ``--batch`` and
``--threads``; :func:`standard_normals` is the fast normal transform it draws with.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np


def standard_normals(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Independent N(0, 1) draws (float32) of ``shape``, by the Box–Muller transform.

    ``sqrt(-2 ln(1 - U)) · (cos 2πV, sin 2πV)`` with ``U`` a float64 uniform on [0, 1) (53
    bits: the radius reaches 8.6 σ) and ``V`` a float32 uniform: exact in distribution up to
    that resolution, and twice as fast as NumPy's float32 ziggurat on these machines (the
    read noise draws one per output per read, 7e7 per 10k LeNet-5 inferences).
    """
    n = math.prod(shape)
    h = (n + 1) // 2
    r = rng.random(h)
    np.subtract(1.0, r, out=r)  # exact: U is a multiple of 2**-53
    np.log(r, out=r)
    r32 = r.astype(np.float32)
    r32 *= np.float32(-2.0)
    np.sqrt(r32, out=r32)
    theta = rng.random(h, dtype=np.float32)
    theta *= np.float32(2 * np.pi)
    out = np.empty(2 * h, dtype=np.float32)
    np.cos(theta, out=out[:h])
    np.sin(theta, out=out[h:])
    out[:h] *= r32
    out[h:] *= r32
    return out[:n].reshape(shape)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on uint64 (a bijection: distinct in, distinct out)."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class ReadNoise:
    """The read noise of one chip instance, keyed by what is read, not by the batching.

    A conversion group's MAC vectors are numbered over the evaluation and cut into blocks
    (:func:`~cosim.engine.blocks.block_rows`); block ``b`` of group ``key`` = (layer,
    column tile, row tile + 1) draws its ``N(0, 1)`` values (:func:`standard_normals`, one
    per vector and output, row-major) from its own SFC64 generator. Its seed: a
    :class:`numpy.random.SeedSequence` of (seed, chip, 2, *key) gives three words ``w``; the
    block's are ``splitmix64(w + b·φ)`` (``φ`` the 64-bit golden ratio), set the way NumPy
    seeds SFC64 (counter 1, 12 outputs discarded). Setting the state costs 2 µs where a
    SeedSequence per block would cost 20 µs. Shared by threads: each keeps its own generator
    object.
    """

    def __init__(self, seed: int, chip: int) -> None:
        self.seed, self.chip = int(seed), int(chip)
        self._keys: dict[tuple[int, ...], np.ndarray] = {}
        self._local = threading.local()

    def states(self, key: tuple[int, ...], b0: int, b1: int) -> np.ndarray:
        """The SFC64 seed words ``(b1 - b0, 3)`` (uint64) of blocks ``b0 .. b1-1``."""
        base = self._keys.get(key)
        if base is None:
            ss = np.random.SeedSequence([self.seed, self.chip, 2, *key])
            base = self._keys[key] = ss.generate_state(3, np.uint64)
        b = np.arange(b0, b1, dtype=np.uint64)[:, None]
        return _mix64(base[None, :] + b * _GOLDEN)

    def draws(self, key: tuple[int, ...], b0: int, b1: int, size: int) -> Iterator[np.ndarray]:
        """``size`` standard normals (float32) for each block ``b0 .. b1-1`` in turn."""
        gen = getattr(self._local, "gen", None)
        if gen is None:
            gen = self._local.gen = np.random.Generator(np.random.SFC64(0))
        bitgen = gen.bit_generator
        for w in self.states(key, b0, b1):
            bitgen.state = {
                "bit_generator": "SFC64",
                "state": {"state": np.array([w[0], w[1], w[2], 1], dtype=np.uint64)},
                "has_uint32": 0,
                "uinteger": 0,
            }
            bitgen.random_raw(12)
            yield standard_normals(gen, (size,))
