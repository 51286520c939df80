"""Conversions: the ADC instances' codes (the analog chain before them is described in
:mod:`cosim.engine.stages`).

Partial sums convert at :meth:`Conversions.psum_bits` through the transimpedance
:meth:`Conversions.psum_r_t`; the ADC energy is estimated on every 8th vector of the
evaluation (:data:`cosim.engine.energy.ENERGY_STRIDE`). A part of
:class:`cosim.engine.core.Engine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.card import Card
from cosim.engine.blocks import CODE_DTYPE
from cosim.engine.chip import LayerState
from cosim.engine.config import EngineConfig
from cosim.engine.energy import ENERGY_STRIDE, LayerStats
from cosim.engine.mapping import LayerMap
from cosim.engine.streams import Effect, RngFor
from cosim.errors import CosimError
from cosim.surrogates.adc import SarLevelAdc
from cosim.surrogates.periphery import TiaModel


class Conversions:
    """The ADCs of a column tile (a part of :class:`cosim.engine.core.Engine`)."""

    card: Card
    cfg: EngineConfig
    tia: TiaModel
    sub: Any
    _adc_by_bits: dict[int, Any]
    lib: Any
    adc_arch: Any
    adc_params: dict[int, Any]

    if TYPE_CHECKING:  # defined by another part of the engine

        def _adc_energy(self, bits: int, counts: np.ndarray) -> float: ...  # EnergyTally

    def _conv_bits(self, lm: LayerMap) -> int:
        """Resolution of the final conversion (the output grid's unless overridden)."""
        b = self.cfg.adc_bits if self.cfg.adc_bits is not None else lm.periphery.adc_bits
        if b > self.card.adc.bits:
            how = (
                f"--adc-bits {b} (or a --sweep adc_bits value)"
                if self.cfg.adc_bits is not None
                else f"the model's {b}-bit activations"
            )
            raise CosimError(
                f"{how} exceeds the card's adc.bits = {self.card.adc.bits}: convert at "
                f"{self.card.adc.bits} bits or fewer, or use a card whose ADC has {b}"
            )
        return b

    def _make_adc(self, bits: int, rng_for: RngFor):
        """One ADC instance at ``bits``: ideal, ``nva``'s comparison-level variation, or a
        Monte-Carlo instance of the card's architecture; ``rng_for(effect)`` gives the
        instance's generator of the ``NVA`` or ``ADC`` draws."""
        from cosim.surrogates import adc as adcmod

        vref = self.card.adc.v_ref_v
        if self.cfg.ideal:
            return self.adc_arch.ideal(bits, vref)
        if self.cfg.nva > 0:  # Bao et al.'s comparison-level variation replaces the circuit
            return adcmod.comparison_level_variation(bits, vref, self.cfg.nva, rng_for(Effect.NVA))
        if not self.cfg.adc:
            return self.adc_arch.ideal(bits, vref)
        if bits not in self._adc_by_bits:
            raise CosimError(
                f"the surrogate library {self.lib.path} has no {bits}-bit ADC model; "
                "re-run cosim characterize with this cosim to add every resolution"
            )
        # one draw gives the surrogate and the netlist parameters of the same instance:
        # SPICE can rebuild it (--verify-spice)
        rng = rng_for(Effect.ADC)
        inst = self.adc_arch.sample_instance(self._adc_by_bits, self.card, rng, bits)
        self.adc_params[id(inst.surrogate)] = inst.params
        return inst.surrogate

    def psum_bits(self) -> int:
        """Resolution of partial-sum conversions: the card's, unless --adc-bits says else."""
        return self.cfg.adc_bits if self.cfg.adc_bits is not None else self.card.adc.bits

    def signed_bits(self, lm: LayerMap) -> int:
        """Resolution of a signed operand's conversion (:attr:`LayerMap.signed`, one
        conversion of every row tile joined): one bit more than the final conversion's
        (:meth:`_conv_bits`), so ``±hi`` around half scale keeps the output grid's step;
        at most the card's ``adc.bits`` (then the step doubles)."""
        return min(self._conv_bits(lm) + 1, self.card.adc.bits)

    def signed_r_t(self, lm: LayerMap) -> float:
        """Transimpedance of a signed operand's conversion: ``±hi`` spans the ADC."""
        return lm.periphery.r_t_ohm / 2.0

    def psum_r_t(self, lm: LayerMap) -> float:
        """Transimpedance of a partial-sum conversion: ``±psum_range·hi`` spans the ADC."""
        return lm.periphery.r_t_ohm / (2.0 * self.cfg.psum_range)

    def _adc_codes(
        self,
        st: LayerState,
        ct: int,
        rt: int,
        v_out: np.ndarray,
        bits: int,
        offset_binary: bool,
        skip: np.ndarray | None,
        stats: LayerStats,
        hist: dict[int, np.ndarray] | None = None,
        row0: int = 0,
    ) -> np.ndarray:
        """Codes of the column tile's ADC instances (with the sense skips).

        The energy is estimated on every 8th vector of the evaluation (``row0``: the index
        of the first row of ``v_out`` among them). ``hist``: where to add the (skip, code)
        counts of those conversions (per resolution;
        :meth:`~cosim.engine.energy.EnergyTally.finish_energy` turns them into energy);
        without it the energy is added to ``stats`` at once."""
        card = self.card
        n, n_outs = v_out.shape
        adcs = st.adcs[(rt, ct)]
        codes = np.empty((n, n_outs), dtype=CODE_DTYPE)
        per_adc = card.adc.columns_per_adc
        e0 = (-row0) % ENERGY_STRIDE  # the first row the energy is estimated on
        n_e = len(range(e0, n, ENERGY_STRIDE))
        for a, adc in enumerate(adcs):
            sl = slice(a * per_adc, min((a + 1) * per_adc, n_outs))
            width = sl.stop - sl.start
            # a block of rows at a time: the lookup's passes over the values stay in cache
            step = max(1024, (1 << 15) // max(width, 1))
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                x = v_out[r0:r1, sl]
                if skip is None:
                    codes[r0:r1, sl] = adc.convert(x)
                    continue
                cap = ((1 << (bits - skip[r0:r1])) - 1)[:, None]
                if isinstance(adc, SarLevelAdc):
                    # non-monotone levels (nva): the skipped search never tries the skipped
                    # levels, so capping the full search's code is not the same; a violation
                    # is a sampled voltage above the skip's bound
                    codes[r0:r1, sl] = adc.convert(x, skip[r0:r1, None])
                    top = (cap + 0.5) * (adc.v_ref_v / (1 << bits))
                    stats.bound_violations += int(np.count_nonzero(x >= top))
                else:  # a monotone SAR forced to 0 in its skipped bits saturates at cap
                    full = adc.convert(x)
                    dest = codes[r0:r1, sl]
                    if width == n_outs:  # contiguous: one pass over the block, not per row
                        full, dest = full.reshape(-1), dest.reshape(-1)
                        cap = np.repeat(cap[:, 0], width)
                    np.minimum(full, cap, out=dest)
                    stats.bound_violations += int(np.count_nonzero(full > cap))
        # energy from the SPICE-fitted nominal at this resolution, whichever transfer model
        # converts (instance, ideal, or nva variation); estimated on every 8th vector
        key = codes[e0::ENERGY_STRIDE]
        if skip is not None:
            key = key + (skip[e0::ENERGY_STRIDE, None] << bits)
        counts = np.bincount(key.ravel(), minlength=bits << bits)
        if bits in self._adc_by_bits:
            if hist is None:
                stats.energy_j["adc"] += self._adc_energy(bits, counts * (n / max(n_e, 1)))
            else:
                hist[bits] = hist[bits] + counts if bits in hist else counts
        stats.conversions += codes.size
        stats.cycles += codes.size * bits
        if skip is not None:
            stats.skipped_cycles += int(np.sum(skip)) * codes.shape[1]
        if offset_binary:
            stats.psum_clipped += int(np.count_nonzero((codes == 0) | (codes == (1 << bits) - 1)))
        return codes
