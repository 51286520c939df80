"""The sense row: skipped MSB cycles per conversion from the sense line's current.

Thresholds ``V_th,k`` per conversion group (the characterized bound less the group's
allowance for op-amp offsets and its bias rows' voltage), the sense TIA, and the skips
they decide (:class:`SenseRow`, a part of :class:`cosim.engine.core.Engine`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.card import Card
from cosim.engine.chip import LayerState
from cosim.engine.config import EngineConfig
from cosim.engine.mapping import LayerMap
from cosim.surrogates.periphery import TiaModel
from cosim.surrogates.sense_row import offset_budget_v, skips
from cosim.surrogates.sense_row import thresholds as sense_thresholds


class SenseRow:
    """Sense-row thresholds and skips (a part of :class:`cosim.engine.core.Engine`)."""

    card: Card
    cfg: EngineConfig
    crossbar: Any
    tia: TiaModel
    sense: Any

    def _sense_on(self) -> bool:
        return self.sense is not None and self.cfg.sense_skip

    def _skip(
        self,
        lm: LayerMap,
        st: LayerState,
        group,
        cur: np.ndarray,
        bits: int,
    ) -> np.ndarray:
        """MSB cycles each conversion may skip, from column currents with the sense line last."""
        g_n = np.sum([ts.g_norton for ts in group], axis=0)
        th = self.group_thresholds(lm, st, group, lm.periphery.r_t_ohm, bits)
        return self._skip_from_current(lm, st, cur[:, -1], g_n[-1], th)

    def _sense_tia(self, lm: LayerMap) -> TiaModel:
        """The sense TIA with ``R_s`` scaled like ``R_t`` (so the bound's β is kept)."""
        ratio = lm.periphery.r_t_ohm / self.card.tia.r_feedback_ohm
        return TiaModel(self.sense.tia.r_feedback_ohm * ratio, self.tia.opamp)

    def _skip_from_current(
        self,
        lm: LayerMap,
        st: LayerState,
        i_sense: np.ndarray,
        g_n_sense: float,
        th: np.ndarray,
    ) -> np.ndarray:
        """Skips from the sense-line current through its TIA and the thresholds ``th``."""
        # the affine transfer is exact below the rail; every threshold sits far below it,
        # so a clipped V_sense decides "no skip" either way
        gain, off = self._sense_tia(lm).linear(g_n_sense, st.sense_offset_v)
        v_s = i_sense * gain + off
        if th.size == 0:
            return np.zeros(i_sense.shape[0], dtype=np.int64)
        return skips(v_s, th)

    def group_thresholds(
        self, lm: LayerMap, st: LayerState, group, r_t: float, bits: int
    ) -> np.ndarray:
        """``V_th,k`` (V) of one conversion group, k = 1 .. min(max_skip, bits − 1).

        The characterized bound ``(β, γ)`` minus this group's allowance for random op-amp
        offsets (:func:`cosim.surrogates.sense_row.offset_budget_v`, from its columns'
        Norton conductances): a per-tile setting of the sense comparators' references.
        """
        key = (
            "th",
            group[0].tile.col_tile,
            tuple(ts.tile.row_tile for ts in group),
            round(r_t, 9),
            bits,
        )
        cache = st.derived
        if key in cache:
            return cache[key]
        card = self.card
        k_max = min(card.sense_row.max_skip_bits, bits - 1)
        if k_max < 1 or self.sense is None:
            cache[key] = np.zeros(0)
            return cache[key]
        budget = 0.0
        if self.cfg.periphery and card.opamp.input_offset_sigma_v > 0:
            g_n = np.sum([ts.g_norton for ts in group], axis=0)
            layout = [(p, q) for _, p, q in group[0].tile.outputs]
            budget = offset_budget_v(
                card.opamp.input_offset_sigma_v,
                r_t,
                card.subtractor.gain_v_per_v,
                g_n,
                layout,
                self._sense_tia(lm).r_feedback_ohm,
                float(g_n[-1]),
                self.sense.beta,
                n_sigma=card.sense_row.offset_n_sigma,
            )
        # the bias rows carry no sense devices: add the largest (positive) bias voltage of
        # the group's outputs, which is known once the tile is programmed
        bias_v = self._bias_voltages(st, group, r_t)
        budget += max(0.0, float(np.max(bias_v))) if bias_v.size else 0.0
        lsb = card.adc.v_ref_v / 2**bits
        trans = (np.arange(1, 2**bits) - 0.5) * lsb
        # the INL allowance is one LSB of the physical ADC, whatever resolution it runs at
        lsb_card = card.adc.v_ref_v / 2**card.adc.bits
        th = sense_thresholds(
            self.sense.beta,
            self.sense.gamma_v + budget,
            trans,
            bits,
            k_max,
            lsb_card,
            card.sense_row.margin_rel,
        )
        cache[key] = th
        return th

    def _bias_voltages(self, st: LayerState, group, r_t: float) -> np.ndarray:
        """Each output's voltage from its bias rows alone (V), through the linear chain."""
        card = self.card
        outs = group[0].tile.outputs
        v = card.dac.v_read_v
        drive = float(self.crossbar.drive(np.array([v]))[0]) if self.cfg.nonlinearity else v
        cur = np.zeros(group[0].m_eff.shape[1])
        for ts in group:
            t = ts.tile
            if t.bias_rows.size:
                cur += (t.bias_polarity * drive) @ ts.tia_transfer()[0][t.bias_rows]
                if ts.m_quad is not None:
                    cur += (t.bias_polarity * drive) @ ts.m_quad[t.bias_rows]
        out = np.empty(len(outs))
        for k, (_, p, q) in enumerate(outs):
            out[k] = cur[p] * r_t if q is None else (cur[p] - cur[q]) * r_t  # gain·R_t/gain
        return out
