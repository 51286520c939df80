"""Conversions: TIAs and subtractors solved at their rails, and the ADC instances' codes.

Partial sums convert at :meth:`Conversions.psum_bits` through the transimpedance
:meth:`Conversions.psum_r_t`; the ADC energy is estimated on every 8th vector of the
evaluation (:data:`cosim.engine.energy.ENERGY_STRIDE`). A part of
:class:`cosim.engine.core.Engine`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.card import Card
from cosim.engine.blocks import CODE_DTYPE
from cosim.engine.chip import LayerState
from cosim.engine.config import EngineConfig
from cosim.engine.energy import ENERGY_STRIDE, LayerStats
from cosim.engine.mapping import LayerMap
from cosim.surrogates.adc import SarLevelAdc
from cosim.surrogates.periphery import TiaModel


class Conversions:
    """TIAs, subtractors and ADCs of a column tile (a part of
    :class:`cosim.engine.core.Engine`)."""

    card: Card
    cfg: EngineConfig
    tia: TiaModel
    sub: Any
    _adc_by_bits: dict[int, Any]

    def psum_bits(self) -> int:
        """Resolution of partial-sum conversions: the card's, unless --adc-bits says else."""
        return self.cfg.adc_bits if self.cfg.adc_bits is not None else self.card.adc.bits

    def psum_r_t(self, lm: LayerMap) -> float:
        """Transimpedance of a partial-sum conversion: ``±psum_range·hi`` spans the ADC."""
        return lm.periphery.r_t_ohm / (2.0 * self.cfg.psum_range)

    def _convert(
        self,
        lm: LayerMap,
        st: LayerState,
        ct: int,
        rt: int,
        cur: np.ndarray,
        g_n: np.ndarray,
        offs: np.ndarray,
        r_t: float,
        bits: int,
        offset_binary: bool,
        skip: np.ndarray | None,
        stats: LayerStats,
        ts,
    ) -> np.ndarray:
        """TIAs, subtractors and ADCs of one column tile: codes (n, outputs)."""
        v_out = self._analog_out(st, ct, cur, g_n, offs, r_t, offset_binary, stats, ts)
        return self._adc_codes(st, ct, rt, v_out, bits, offset_binary, skip, stats)

    def _analog_out(
        self,
        st: LayerState,
        ct: int,
        cur: np.ndarray,
        g_n: np.ndarray,
        offs: np.ndarray,
        r_t: float,
        offset_binary: bool,
        stats: LayerStats,
        ts,
    ) -> np.ndarray:
        """Voltages the ADCs sample (n, outputs): TIAs, then subtractors for pairs."""
        cfg, card = self.cfg, self.card
        outs = ts.tile.outputs
        p = np.array([q for _, q, _ in outs])
        nn = np.array([q if q is not None else -1 for _, _, q in outs])
        bip = nn >= 0
        vref_half = card.adc.v_ref_v / 2 if offset_binary else 0.0
        used = np.concatenate([p, nn[bip]])
        # pair columns: TIA feedback r_t / gain (the subtractor supplies the gain)
        pair_col = np.concatenate([bip, np.ones(int(bip.sum()), dtype=bool)])
        rf = np.where(pair_col, r_t / card.subtractor.gain_v_per_v, r_t)
        if cfg.periphery:
            tia_u = TiaModel(r_t, self.tia.opamp)
            tia_p = TiaModel(r_t / card.subtractor.gain_v_per_v, self.tia.opamp)
            gu, ou = tia_u.linear(g_n[used], offs[used])
            gp, op_ = tia_p.linear(g_n[used], offs[used])
            gain, off = np.where(pair_col, gp, gu), np.where(pair_col, op_, ou)
            v_col = cur[:, used] * gain + off
            o = self.tia.opamp
            near = (v_col > o.v_out_max_v - 0.05) | (v_col < o.v_out_min_v + 0.05)
            stats.tia_reads += v_col.size
            if near.any():
                r_i, c_i = np.nonzero(near)
                for tia, sel in ((tia_p, pair_col[c_i]), (tia_u, ~pair_col[c_i])):
                    if sel.any():
                        ri, ci = r_i[sel], c_i[sel]
                        v_col[ri, ci] = tia.predict(
                            cur[:, used][ri, ci], g_n[used][ci], offs[used][ci]
                        )
                stats.tia_saturated += int(
                    np.count_nonzero(
                        (v_col > o.v_out_max_v - 0.02) | (v_col < o.v_out_min_v + 0.02)
                    )
                )
        else:
            v_col = cur[:, used] * rf
        vp = v_col[:, : p.size]
        v_out = vp.copy()
        v_out[:, ~bip] += vref_half  # unipolar columns: sampled against V_ref/2 (offset binary)
        if bip.any():
            vn = v_col[:, p.size :]
            coeffs = st.sub_coeffs[ct][bip]
            a_p, a_n, c, k_ref = coeffs[:, 0], coeffs[:, 1], coeffs[:, 2], coeffs[:, 3]
            v_out[:, bip] = a_p * vp[:, bip] - a_n * vn + c + k_ref * vref_half
            if cfg.periphery:
                o = self.sub.opamp
                near = (v_out > o.v_out_max_v - 0.05) | (v_out < o.v_out_min_v + 0.05)
                near &= bip[None, :]
                if near.any():
                    models = st.sub_models[ct]
                    for j in np.nonzero(near.any(axis=0))[0]:
                        rows_j = near[:, j]
                        m = models[j]
                        if m is None:
                            continue
                        v_out[rows_j, j] = m.__class__(
                            m.r1_ohm, m.r2_ohm, m.r3_ohm, m.r4_ohm, m.opamp, vref_half
                        ).predict(vp[rows_j, j], v_col[rows_j, p.size + int(np.sum(bip[:j]))])
        return v_out

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
