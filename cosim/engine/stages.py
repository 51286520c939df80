"""One description of a conversion group's periphery chain, and its two evaluations.

After the crossbar, every output of a column tile goes through the same stages: a TIA per
column on the column's Norton equivalent, then either a subtractor (a differential pair:
its two columns' TIAs have feedback ``R_t/gain``, the subtractor supplies the gain) or
nothing (a unipolar column: its TIA has feedback ``R_t``); offset-binary conversions
(digital partial sums) refer every output to ``V_ref/2``. :class:`ChainStages` holds these
facts once per conversion group of a chip: which columns each output reads, each column
TIA's affine transfer, its linear range and its exact loop solve, each subtractor's affine
coefficients ``(a_p, a_n, c, k_ref)``, its range and its exact solve, the reference shift
and the sense line.

Two evaluations are derived from it and from nothing else:

* :meth:`ChainStages.fold` gives the matrix and constants that fold the linear chain into
  the crossbar products (:class:`cosim.engine.fold.FoldedPath`: the fast path
  :meth:`cosim.engine.core.Engine.forward` runs) and the columns whose rails need a check;
* :meth:`ChainStages.exact` evaluates the chain on float64 column currents, solving each
  op-amp loop exactly where it nears a rail (the folded path hands it the vectors near a
  rail; ``tests/test_engine_stages.py`` checks that both give the same codes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from cosim.engine.energy import LayerStats
from cosim.surrogates.periphery import OpampFit, SubtractorModel, TiaModel

#: an op-amp output within this of a rail (V) is solved exactly, not taken as linear
RAIL_MARGIN_V = 0.05
#: an output within this of a rail (V) counts as saturated (statistics only)
SATURATED_MARGIN_V = 0.02


def linear_range(opamp: OpampFit) -> tuple[float, float]:
    """The output range (V) in which an op-amp loop is taken as affine: its rails less
    :data:`RAIL_MARGIN_V`."""
    return opamp.v_out_min_v + RAIL_MARGIN_V, opamp.v_out_max_v - RAIL_MARGIN_V


@dataclass(frozen=True)
class ChainStages:
    """The periphery of one conversion group of a chip, output by output (volts, ohms).

    The TIA columns are numbered in the order of :attr:`cols`: each output's positive (or
    only) column, then each differential pair's negative column.
    """

    p_col: np.ndarray  # (n_out,) int: each output's positive (unipolar: only) column
    n_col: np.ndarray  # (n_out,) int: each pair's negative column; -1 for unipolar outputs
    pair: np.ndarray  # (n_out,) bool: a differential pair (subtractor); else unipolar
    cols: np.ndarray  # (n_tia,) int: the lines the TIAs read, p_col then n_col[pair]
    col_pair: np.ndarray  # (n_tia,) bool: a pair's TIA (feedback R_t/gain)
    g_norton_s: np.ndarray  # (n_tia,) each TIA column's Norton conductance (S)
    offset_v: np.ndarray  # (n_tia,) each TIA's op-amp offset (V)
    tia_gain_ohm: np.ndarray  # (n_tia,) affine transfer V = gain·I + offset, inside range
    tia_offset_v: np.ndarray  # (n_tia,) (V)
    tias: tuple[TiaModel, TiaModel]  # the exact solve: (unipolar, pair) feedback
    tia_range_v: tuple[float, float]  # where the TIAs are affine (V)
    sub_coeffs: np.ndarray  # (n_out, 4): a_p, a_n, c, k_ref (unipolar rows unused)
    subs: tuple[SubtractorModel | None, ...]  # exact solves, referred to ref_shift_v
    sub_range_v: tuple[float, float]  # where the subtractors are affine (V)
    ref_shift_v: float  # V_ref/2 for offset-binary conversions, else 0
    sense_line: int | None  # the sense line's index, None without a sense row
    adc_range_v: tuple[float, float]  # what the ADCs convert, [0, V_ref]
    periphery: bool  # op-amps modelled (offsets, finite gain, rails); else ideal R_t

    def __post_init__(self) -> None:
        # the engine caches one per conversion group and chip: its arrays are read-only so
        # that no caller can change later exact solves behind the fold cached beside it
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v.setflags(write=False)

    @property
    def n_out(self) -> int:
        return int(self.p_col.size)

    def tia_voltages(self, cur: np.ndarray) -> np.ndarray:
        """The TIAs' linear voltages (n, n_tia) for column currents ``cur`` (n, lines) (A)."""
        if not self.periphery:
            return cur[:, self.cols] * self.tia_gain_ohm
        return cur[:, self.cols] * self.tia_gain_ohm + self.tia_offset_v

    def exact(
        self, cur: np.ndarray, stats: LayerStats | None = None, count_reads: bool = True
    ) -> np.ndarray:
        """Voltages the ADCs sample (n, n_out) (V) for float64 column currents ``cur`` (A):
        every stage affine inside its range, its loop solved exactly near a rail.

        ``stats`` counts the saturated TIA reads and, with ``count_reads``, the reads; the
        folded path, which hands over only the vectors near a rail, has counted their
        reads already."""
        v_col = self.tia_voltages(cur)
        if self.periphery:
            lo, hi = self.tia_range_v
            near = (v_col > hi) | (v_col < lo)
            if stats is not None and count_reads:
                stats.tia_reads += v_col.size
            if near.any():
                r_i, c_i = np.nonzero(near)
                pc = self.col_pair[c_i]
                for tia, sel in zip(self.tias, (~pc, pc), strict=True):
                    if sel.any():
                        ri, ci = r_i[sel], c_i[sel]
                        v_col[ri, ci] = tia.predict(
                            cur[:, self.cols][ri, ci], self.g_norton_s[ci], self.offset_v[ci]
                        )
                if stats is not None:
                    o = self.tias[0].opamp
                    sat = (v_col > o.v_out_max_v - SATURATED_MARGIN_V) | (
                        v_col < o.v_out_min_v + SATURATED_MARGIN_V
                    )
                    stats.tia_saturated += int(np.count_nonzero(sat))
        n_out, bip = self.n_out, self.pair
        vp = v_col[:, :n_out]
        v_out = vp.copy()
        v_out[:, ~bip] += self.ref_shift_v  # unipolar: sampled against the reference
        if bip.any():
            vn = v_col[:, n_out:]
            co = self.sub_coeffs[bip]
            a_p, a_n, c, k_ref = co[:, 0], co[:, 1], co[:, 2], co[:, 3]
            v_out[:, bip] = a_p * vp[:, bip] - a_n * vn + c + k_ref * self.ref_shift_v
            if self.periphery:
                lo, hi = self.sub_range_v
                near = ((v_out > hi) | (v_out < lo)) & bip[None, :]
                neg_of = np.cumsum(bip) - 1  # an output's place among the pairs
                for j in np.nonzero(near.any(axis=0))[0]:
                    m = self.subs[j]
                    if m is None:
                        continue
                    rows = near[:, j]
                    v_out[rows, j] = m.predict(vp[rows, j], vn[rows, neg_of[j]])
        return v_out

    def checked_columns(self) -> np.ndarray:
        """Indices into :attr:`cols` of the TIAs whose rails the folded path must check per
        vector (with op-amps modelled: :attr:`periphery`): every pair column (a clipped
        pair TIA moves its subtractor's output), pair by pair, ``p`` then ``n``; then the
        unipolar columns, only where their rails, shifted by the reference, lie inside the
        ADC's range (elsewhere a clipped output converts like the linear one: the top or
        the zero code either way)."""
        n_out = self.n_out
        neg_of = np.cumsum(self.pair) - 1
        out = []
        for k in np.nonzero(self.pair)[0]:
            out += [k, n_out + neg_of[k]]
        lo, hi = self.tia_range_v
        a0, a1 = self.adc_range_v
        if self.periphery and not (lo + self.ref_shift_v < a0 < a1 < hi + self.ref_shift_v):
            out += list(np.nonzero(~self.pair)[0])
        return np.array(out, dtype=np.int64)

    def sub_rails_matter(self) -> bool:
        """Whether the subtractors' rails lie inside the ADC's range, so that their outputs
        need a check per vector (outside it a clipped output converts like the linear one)."""
        lo, hi = self.sub_range_v
        a0, a1 = self.adc_range_v
        return self.periphery and bool(self.pair.any()) and not (lo < a0 < a1 < hi)

    def fold(self, n_lines: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The linear chain as one affine map of the lines' currents (A → V).

        Returns ``F`` (n_lines, n_out + 1 + n_chk), the constants (n_out + 1 + n_chk,) and
        the checked TIA columns (:meth:`checked_columns`, indices into :attr:`cols`):
        ``currents @ F + const`` gives the outputs, the raw sense-line current (column
        ``n_out``, with a sense row) and the checked TIAs' voltages."""
        n_out, g, o = self.n_out, self.tia_gain_ohm, self.tia_offset_v
        chk = self.checked_columns()
        f = np.zeros((n_lines, n_out + 1 + chk.size))
        const = np.zeros(n_out + 1 + chk.size)
        if not self.periphery:
            o = np.zeros_like(o)
        neg_of = np.cumsum(self.pair) - 1
        for k in range(n_out):
            p = self.p_col[k]
            if not self.pair[k]:  # unipolar: sampled against the reference
                f[p, k], const[k] = g[k], o[k]
                const[k] += self.ref_shift_v
                continue
            j = n_out + neg_of[k]
            a_p, a_n, c, k_ref = self.sub_coeffs[k]
            f[p, k] = a_p * g[k]
            f[self.n_col[k], k] = -a_n * g[j]
            const[k] = a_p * o[k] - a_n * o[j] + c + k_ref * self.ref_shift_v
        if self.sense_line is not None:
            f[self.sense_line, n_out] = 1.0  # the raw sense-line current
        for i, j in enumerate(chk):
            f[self.cols[j], n_out + 1 + i], const[n_out + 1 + i] = g[j], o[j]
        return f, const, chk


def chain_stages(
    outputs: list[tuple[int, int, int | None]],
    g_norton_s: np.ndarray,
    offsets_v: np.ndarray,
    sub_coeffs: np.ndarray,
    sub_models: list[SubtractorModel | None],
    *,
    r_t_ohm: float,
    sub_gain: float,
    tia_opamp: OpampFit,
    sub_opamp: OpampFit,
    v_ref_v: float,
    offset_binary: bool,
    sense: bool,
    periphery: bool,
) -> ChainStages:
    """The chain of a conversion group: its ``outputs`` ``(output, p, n or None)``, the
    lines' summed Norton conductances (S) and TIA offsets (V), the column tile's subtractor
    coefficients and instances, the transimpedance ``r_t_ohm`` and the subtractors' gain."""
    p_col = np.array([p for _, p, _ in outputs], dtype=np.int64)
    n_col = np.array([-1 if q is None else q for _, _, q in outputs], dtype=np.int64)
    pair = n_col >= 0
    cols = np.concatenate([p_col, n_col[pair]])
    col_pair = np.concatenate([pair, np.ones(int(pair.sum()), dtype=bool)])
    tia_u = TiaModel(r_t_ohm, tia_opamp)
    tia_p = TiaModel(r_t_ohm / sub_gain, tia_opamp)
    g_n, offs = g_norton_s[cols], offsets_v[cols]
    if periphery:
        gu, ou = tia_u.linear(g_n, offs)
        gp, op_ = tia_p.linear(g_n, offs)
        gain, off = np.where(col_pair, gp, gu), np.where(col_pair, op_, ou)
    else:  # ideal op-amps: the feedback resistor alone
        gain = np.where(col_pair, r_t_ohm / sub_gain, r_t_ohm)
        off = np.zeros(cols.size)
    shift = v_ref_v / 2 if offset_binary else 0.0
    subs = tuple(None if m is None else replace(m, v_ref_v=shift) for m in sub_models)
    return ChainStages(
        p_col,
        n_col,
        pair,
        cols,
        col_pair,
        g_n,
        offs,
        gain,
        off,
        (tia_u, tia_p),
        linear_range(tia_opamp),
        np.asarray(sub_coeffs, dtype=float),
        subs,
        linear_range(sub_opamp),
        shift,
        len(g_norton_s) - 1 if sense else None,
        (0.0, v_ref_v),
        periphery,
    )
