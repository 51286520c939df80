"""MAC vectors in fixed blocks, and the drive kernels the products read them through.

**Blocks: results that do not depend on the batching.** A layer's MAC vectors are numbered
over the whole evaluation (sample ``s``, output position ``p``: vector ``s·P + p``) and cut,
per conversion group, into fixed blocks that end with samples (a divisor of 1000 samples,
or a whole fraction of one large sample; from the layer's shape and the group's outputs
alone: :func:`block_rows`). Everything that touches a vector is computed a block at a
time:

* the products run on whole blocks (a block that a batch only partly covers is padded with
  zero drives): BLAS rounds a row of a product differently with the number of rows, so a
  batch-sized product would move float32 voltages by an ulp, and now and then a code;
* the read noise of a block comes from its own generator, keyed by (seed, chip, layer,
  column tile, row tile, block) (:class:`~cosim.engine.readnoise.ReadNoise`): the draw a
  vector sees is a function of (seed, chip, sample, layer, tile, read) only, whatever
  ``--batch`` and ``--threads``;
* energies are tallied exactly (integer counts of events, the read energy's ``V·s(V)``
  summed in fixed point, the ADC's (skip, code) histogram on every 8th vector counted over
  the evaluation) and turned into joules once per chip
  (:meth:`~cosim.engine.energy.EnergyTally.finish_energy`).

``evaluate`` rounds ``--batch`` to whole blocks of every layer
(:meth:`~cosim.engine.core.Engine.batch_size`: the default 1000 stays 1000), so that only
small batches pad. Two roundings still see the batch, both far below anything a code
resolves: the exact rail solve runs in float64 on a batch's risky vectors together (1e-16
relative), and a padded block checks the pair rails of fewer candidate vectors (a float32
product; it decides only whether a vector within that rounding of the rails' margin takes
the exact solve or the linear one, which agree there to far less than an LSB).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cosim.engine.mapping import LayerMap
from cosim.model import WeightLayer

#: every block of MAC vectors holds a divisor of this many samples (:func:`block_rows`), so
#: that batches of a multiple of it (the default 1000) hold whole blocks of every layer
BLOCK_SAMPLES = 1000
_DIVISORS = tuple(d for d in range(1, BLOCK_SAMPLES + 1) if BLOCK_SAMPLES % d == 0)
#: ADC codes (at most 8 bits) as the analog path stores them: a quarter of int64's memory
CODE_DTYPE = np.int16


def vectors_per_sample(layer: WeightLayer) -> int:
    """MAC vectors one sample makes in a layer: its output positions (1 for dense)."""
    if layer.kind == "conv2d":
        return math.prod(layer.out_shape[1:])
    return 1


@functools.cache
def block_rows(n_out: int, per_sample: int) -> int:
    """MAC vectors per block of a conversion group with ``n_out`` outputs, in a layer of
    ``per_sample`` vectors per sample, for a block's products and what follows them to stay
    in cache while its fixed costs stay small: at least ``2**16`` values over the outputs
    and their noise (and 1024 vectors), in whole samples, the fewest that make it among the
    divisors of :data:`BLOCK_SAMPLES` (at most all of them); where one sample makes more,
    the smallest whole fraction of a sample that does. A function of the group alone: the
    blocks, and what is computed and drawn per block, do not depend on the batching."""
    want = max(1024, (1 << 16) // (2 * n_out + 2))
    if per_sample > want:  # a divisor of the sample's vectors: blocks still end with samples
        return min(d for d in range(want, per_sample + 1) if per_sample % d == 0)
    samples = next((d for d in _DIVISORS if d >= want / per_sample), BLOCK_SAMPLES)
    return samples * per_sample


def block_samples(maps: Sequence[LayerMap]) -> int:
    """Samples in which every layer's blocks of MAC vectors (:func:`block_rows`) end (a
    divisor of :data:`BLOCK_SAMPLES`): batches that start at multiples of it only ever hold
    whole blocks."""
    a = 1
    for m in maps:
        per = vectors_per_sample(m.layer)
        for t in m.tiles:
            r = block_rows(len(t.outputs), per)
            a = math.lcm(a, r // math.gcd(r, per))
    return a


@dataclass(frozen=True)
class VectorRows:
    """Where a batch's MAC vectors of one layer sit among the evaluation's: the first one's
    index (first sample · vectors per sample) and the vectors per sample."""

    first: int
    per_sample: int


def round_scaled(total: np.ndarray, scale: float) -> np.ndarray:
    """``floor(total·scale + 1/2)`` of integer partial sums (int64): shifts when ``scale`` is
    a power of two (the default ``psum_range`` and resolutions), float64 otherwise (exact
    for sums below 2**53)."""
    m, e = math.frexp(scale)
    if m == 0.5:  # scale = 2**(e - 1)
        k = e - 1
        if k >= 0:
            return total << k
        return (total + (1 << (-k - 1))) >> -k
    return np.floor(total.astype(np.float64) * scale + 0.5).astype(np.int64)


def im2col_columns(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """:func:`cosim.model.forward.im2col`'s matrix, built column-major: one strided copy
    per kernel offset (fast for one-byte codes, where the generic reshape is not)."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    planes = np.empty((c, k, k, n, ho, wo), dtype=x.dtype)
    for ci in range(c):
        for a in range(k):
            for b in range(k):
                rows, cols = slice(a, a + stride * ho, stride), slice(b, b + stride * wo, stride)
                planes[ci, a, b] = x[:, ci, rows, cols]
    return planes.reshape(c * k * k, n * ho * wo).T


class Drive:
    """The crossbar drive of unrolled input codes ``(n, fan_in)``, read through a per-code
    table of float32 values and built a block at a time where the products use it.

    Per code, the drive ``s(V)`` (V) and, when the crossbar surrogate has a second-order
    term, ``s(V)·(V/v_read)²`` (V): ``d`` values. A block of rows and inputs
    ``(rows, d·K)`` interleaves them per input (``[s(V_1), q(V_1), s(V_2), ...]``), the row
    order of the folded weights (:meth:`~cosim.engine.fold.FoldedPath._fold`), so one
    product takes both terms.
    """

    def __init__(self, codes: np.ndarray, u_tab: np.ndarray, q_tab: np.ndarray | None) -> None:
        self.codes = codes
        self.shape = codes.shape
        cols = [u_tab] if q_tab is None else [u_tab, q_tab]
        self.d = len(cols)
        self.table = np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)
        # every value >= 0 (DAC voltages are): the pair columns' bound holds
        self.nonneg = bool(np.all(self.table >= 0))
        # one lookup of d float32 values per code: a 1-D table of 4·d-byte words
        word = {1: np.float32, 2: np.uint64}[self.d]
        self._words = self.table.view(word).ravel()

    def block(
        self, r0: int, r1: int, f0: int, f1: int, rows: int | None = None, at: int = 0
    ) -> np.ndarray:
        """Rows ``r0:r1``, inputs ``f0:f1``: ``(rows, d·(f1 - f0))`` float32, interleaved.

        ``rows``: a block of that many rows instead, with rows ``r0:r1`` at ``at`` and zero
        drive elsewhere."""
        idx = self.codes[r0:r1, f0:f1]
        if rows is None:
            b = np.take(self._words, idx)
        else:
            b = np.zeros((rows, f1 - f0), dtype=self._words.dtype)
            np.take(self._words, idx, out=b[at : at + r1 - r0])
        return b.view(np.float32) if self.d > 1 else b

    def main(self, block: np.ndarray) -> np.ndarray:
        """The drive ``s(V)`` columns of a :meth:`block`."""
        return block[:, :: self.d] if self.d > 1 else block

    def values(self, rows: np.ndarray, f0: int, f1: int) -> np.ndarray:
        """``(len(rows), f1 - f0, d)`` float64 drives of the given rows (the exact path)."""
        return self.table[self.codes[rows, f0:f1]].astype(np.float64)


def interleave(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of ``parts`` (each ``(K, C)``) interleaved into ``(len(parts)·K, C)`` float32."""
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], dtype=np.float32)
    out = np.empty((parts[0].shape[0] * len(parts), parts[0].shape[1]), dtype=np.float32)
    for i, p in enumerate(parts):
        out[i :: len(parts)] = p
    return out
