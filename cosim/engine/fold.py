"""The folded affine path of a conversion group and its block products.

What is folded is the conversion group's chain as :mod:`cosim.engine.stages` describes it
(:meth:`FoldedPath.chain_stages`); the vectors near a rail go through that description's
exact evaluation.

How it is computed (:meth:`FoldedPath._fold`, :meth:`FoldedPath._group_voltages`): inside
their linear ranges the TIAs and subtractors are affine with per-chip coefficients, so they
are folded into the crossbar matrices and each tile costs one float32 product per block of
input vectors, ``[s(V), s(V)·(V/v_read)²] @ W`` with both drive terms looked up per input
code and interleaved (:class:`Drive`), plus ``s(V)² @ S`` for the read-noise variance. The
exact loop solve near the rails runs only for the vectors that need it: a pair's
single-ended TIA (or a unipolar column's, where its rails lie inside the ADC's range) can
reach its rails only where a per-vector bound column says so, and that column is not even
computed where no input the DAC can apply reaches them (the usual case).
The ADCs convert the float32 voltages exactly as the doubles they are
(:class:`cosim.surrogates.adc._Lookup`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.engine.blocks import Drive, VectorRows, block_rows, interleave
from cosim.engine.chip import LayerState
from cosim.engine.config import EngineConfig
from cosim.engine.energy import LayerStats
from cosim.engine.mapping import LayerMap
from cosim.engine.readnoise import ReadNoise, standard_normals
from cosim.engine.stages import ChainStages, chain_stages
from cosim.surrogates.periphery import TiaModel


@dataclass
class _Folded:
    """A conversion group's folded affine path (:meth:`FoldedPath._fold`)."""

    ws: list[np.ndarray]  # per tile (d·K, n_out) float32: the outputs
    wx: list[np.ndarray | None]  # per tile (d·K, ≤ 2) float32: [sense line], [bound]
    wpc: list[np.ndarray | None]  # per tile (d·K, n_chk) float32: checked TIAs' voltages
    ss: list[np.ndarray | None]  # per tile (K, n_out) float32: read-noise variance fold
    const: np.ndarray  # (n_out + 1 + n_chk,) constants (V; A for the sense line)
    bias_noise: np.ndarray  # (n_out,) read-noise variance of the bias rows (V²)
    n_out: int
    n_pc: int  # pair columns (each with its own TIA)
    limits: tuple[float, float]  # the TIAs' linear range (V)
    c_pair: np.ndarray | None  # (n_chk,) checked TIAs' constants less mid-range; None: no check
    sense: bool  # wx holds the sense-line current first
    sub_limits: tuple[float, float] | None  # the subtractors' linear range (V); None: no check
    pair_out: np.ndarray  # (n_out,) bool: the outputs of differential pairs
    stages: ChainStages  # what it was folded from; its exact evaluation near the rails


class FoldedPath:
    """TIAs and subtractors folded into the crossbar products (a part of
    :class:`cosim.engine.core.Engine`)."""

    card: Card
    cfg: EngineConfig
    crossbar: Any
    tia: TiaModel
    sub: Any

    def chain_stages(
        self, st: LayerState, ct: int, group, r_t: float, offset_binary: bool
    ) -> ChainStages:
        """The periphery chain of a conversion group of chip layer ``st`` (column tile
        ``ct``, the row tiles ``group`` joined at its TIAs) at transimpedance ``r_t`` (ohm):
        the one description both the folded and the exact evaluation derive from
        (:mod:`cosim.engine.stages`). Kept with the chip's layer."""
        key = ("stages", ct, tuple(ts.tile.row_tile for ts in group), round(r_t, 9), offset_binary)
        cache = st.derived
        if key not in cache:
            card = self.card
            cache[key] = chain_stages(
                group[0].tile.outputs,
                np.sum([ts.g_norton for ts in group], axis=0),
                group[0].tia_offset_v,
                st.sub_coeffs[ct],
                st.sub_models[ct],
                r_t_ohm=r_t,
                sub_gain=card.subtractor.gain_v_per_v,
                tia_opamp=self.tia.opamp,
                sub_opamp=self.sub.opamp,
                v_ref_v=card.adc.v_ref_v,
                offset_binary=offset_binary,
                sense=card.sense_row.enabled,
                periphery=self.cfg.periphery,
            )
        return cache[key]

    def _fold(
        self, st: LayerState, ct: int, group, r_t: float, offset_binary: bool, d: int = 1
    ) -> _Folded:
        """Fold TIAs and subtractors into the crossbar transfer of a conversion group.

        Inside their linear ranges every stage is affine with coefficients fixed per chip
        (:meth:`ChainStages.fold`), so ``V_out = s(V) @ W + c`` per output — one matrix
        product per tile. Every weight matrix (float32) has a row per data row and drive
        term (``d`` = 2: the second-order drive's rows interleaved, as :class:`Drive` lays
        its blocks out). ``W`` holds the outputs; ``W_x`` the sense-line current (for
        conversions that may skip) and, when some input the DAC can apply would take a
        checked TIA (:meth:`ChainStages.checked_columns`: every pair's) near its rails, a
        bound on those TIAs' voltages: with inputs ``≥ 0``, ``Σ_i u_i·max_j |W_pc,ij|`` is
        at least every checked column's distance from mid-range, so only the vectors whose
        bound reaches the rails have their checked columns computed (``W_pc``), and the
        exact loop solve takes over where a TIA is near a rail. A subtractor output in its
        rails is checked per vector only where the rails lie inside the ADC's input range
        (elsewhere it converts like the linear value). Also returned: per tile the
        read-noise fold ``S``, the constants, and the rail limits.
        """
        key = ("fold", ct, tuple(ts.tile.row_tile for ts in group), round(r_t, 9), offset_binary, d)
        cache = st.derived
        if key in cache:
            return cache[key]
        sc = self.chain_stages(st, ct, group, r_t, offset_binary)
        n_lines = group[0].m_eff.shape[1]
        f, const, chk = sc.fold(n_lines)
        n_out = sc.n_out
        v_lo, v_hi = sc.tia_range_v
        # the sense line is read where the conversion may skip (not for partial sums)
        sense = sc.sense_line is not None and not offset_binary
        tiles_parts: list[list[np.ndarray]] = []
        ss: list[np.ndarray | None] = []
        bias_noise = np.zeros(n_out)
        for ts in group:
            t = ts.tile
            m_tia, bias_tia = ts.tia_transfer()  # unipolar columns: less the g_min reference
            full = m_tia[t.data_rows] @ f
            parts = [full]
            if d == 2:
                parts.append(
                    np.zeros_like(full) if ts.m_quad is None else ts.m_quad[t.data_rows] @ f
                )
            tiles_parts.append(parts)
            const = const + bias_tia @ f
            fo = f[:, :n_out]
            bias_noise += ts.bias_var @ (fo * fo)
            if ts.read_sigma is not None:
                s2 = ts.read_sigma[t.data_rows] ** 2
                ss.append(np.ascontiguousarray(s2 @ (fo * fo), dtype=np.float32))
            else:
                ss.append(None)
        c_pair = const[n_out + 1 :] - 0.5 * (v_hi + v_lo)
        # the checked TIAs' rails need a check per vector only where some input can reach
        # them: the largest distance from mid-range over every input the DAC can apply
        check = chk.size > 0 and sc.periphery
        if check:
            hi, lo = c_pair.copy(), c_pair.copy()
            for parts in tiles_parts:
                for p, (d_lo, d_hi) in zip(parts, self._drive_range(st.lmap), strict=False):
                    w = p[:, n_out + 1 :]
                    hi += np.maximum(w * d_lo, w * d_hi).sum(axis=0)
                    lo += np.minimum(w * d_lo, w * d_hi).sum(axis=0)
            check = bool(np.max(np.maximum(hi, -lo)) >= 0.5 * (v_hi - v_lo) * (1 - 1e-4))
        ws: list[np.ndarray] = []
        wx: list[np.ndarray | None] = []
        wpc: list[np.ndarray | None] = []
        for parts in tiles_parts:
            ws.append(interleave([p[:, :n_out] for p in parts]))
            # the extra columns: the sense line, and the bound (per drive term, the largest
            # checked-column weight)
            extra = [
                ([p[:, n_out]] if sense else [])
                + ([np.abs(p[:, n_out + 1 :]).max(axis=1)] if check else [])
                for p in parts
            ]
            wx.append(interleave([np.stack(e, axis=1) for e in extra]) if extra[0] else None)
            wpc.append(interleave([p[:, n_out + 1 :] for p in parts]) if check else None)
        folded = _Folded(
            ws,
            wx,
            wpc,
            ss,
            const,
            bias_noise,
            n_out,
            int(np.count_nonzero(sc.col_pair)),
            (v_lo, v_hi),
            c_pair if check else None,
            sense,
            sc.sub_range_v if sc.sub_rails_matter() else None,
            sc.pair,
            sc,
        )
        cache[key] = folded
        return folded

    def column_currents(self, lm: LayerMap, group, codes: np.ndarray) -> np.ndarray:
        """The currents (float64, A) each line of a conversion group's row tiles ``group``
        delivers to its TIA for unrolled input codes ``codes`` (n, fan_in) of layer ``lm``:
        the exact path's input (:meth:`ChainStages.exact`), from the same float32 drive
        table as the folded path."""
        _, u_tab, q_tab = self._drive_tables(lm)
        quad = any(ts.m_quad is not None for ts in group)
        drive = Drive(codes, u_tab, q_tab if quad else None)
        return self._group_currents(group, drive, np.arange(codes.shape[0]))

    @staticmethod
    def _group_currents(group, drive: Drive, rows: np.ndarray) -> np.ndarray:
        """Float64 currents (len(rows), lines) (A) at the group's TIA inputs for the drive's
        ``rows``: the crossbar transfer less the g_min reference line on unipolar columns."""
        cur = None
        for ts in group:
            t = ts.tile
            m_tia, bias_tia = ts.tia_transfer()
            uu = drive.values(rows, t.f0, t.f1)
            part = uu[..., 0] @ m_tia[t.data_rows]
            if ts.m_quad is not None and drive.d == 2:
                part += uu[..., 1] @ ts.m_quad[t.data_rows]
            part += bias_tia
            cur = part if cur is None else cur + part
        assert cur is not None
        return cur

    def _drive_tables(self, lm: LayerMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per input code of the layer: the DAC voltage ``V``, the drive ``s(V)`` and the
        second-order drive ``s(V)·(V/v_read)²`` (V)."""
        v_tab = np.arange(1 << lm.periphery.in_bits) * lm.periphery.v_in_lsb
        u_tab = self.crossbar.drive(v_tab) if self.cfg.nonlinearity else v_tab
        return v_tab, u_tab, self.crossbar.quad_drive(v_tab)

    def _drive_range(self, lm: LayerMap) -> list[tuple[float, float]]:
        """The smallest and largest drive ``s(V)`` and second-order drive over the layer's
        input codes (V): the DAC's whole range."""
        _, u_tab, q_tab = self._drive_tables(lm)
        return [(float(u_tab.min()), float(u_tab.max())), (float(q_tab.min()), float(q_tab.max()))]

    def _group_voltages(
        self,
        st: LayerState,
        ct: int,
        group,
        drive: Drive,
        noisy: bool,
        noise: ReadNoise | np.random.Generator | None,
        r_t: float,
        offset_binary: bool,
        stats: LayerStats,
        rows: VectorRows | None = None,
        key: tuple[int, int, int] = (0, 0, 0),
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Voltages the ADCs sample (float32, V) for a group of row tiles converted
        together, and the sense-line current (A; None for partial sums, which never skip):
        the folded affine path, and the exact loop solve for the input vectors that drive a
        pair's TIA near its rails. ``noisy``: draw the read noise, from ``noise`` (a
        :class:`ReadNoise`: the group's ``key`` (layer, column tile, row tile + 1; 0 for
        every row tile together) and each block's place among the evaluation's vectors,
        ``rows``, pick the draws).

        The vectors go through in the group's blocks (:func:`block_rows`), counted from
        ``rows.first``: a block the batch only partly covers is computed whole, its other
        rows at zero drive, so that every product has the same rows whatever the batch."""
        fo = self._fold(st, ct, group, r_t, offset_binary, drive.d)
        n_out = fo.n_out
        n = drive.shape[0]
        rows = rows or VectorRows(0, 1)
        noisy = noisy and any(s2 is not None for s2 in fo.ss)
        step = block_rows(n_out, rows.per_sample)
        first = rows.first
        b0, b1 = first // step, -(-(first + n) // step)  # the blocks the batch touches
        # per-output constants tiled over a block's rows: every pass below runs over whole
        # contiguous blocks (a (rows, outputs) broadcast iterates a handful of values at a time)
        c_out = np.tile(fo.const[:n_out].astype(np.float32), step)
        c_noise = np.tile(fo.bias_noise.astype(np.float32), step)
        draws = None
        if noisy:
            if isinstance(noise, ReadNoise):
                draws = noise.draws(key, b0, b1, step * n_out)
            else:  # a plain generator: its draws in order
                assert noise is not None
                draws = (standard_normals(noise, (step * n_out,)) for _ in range(b0, b1))
        # float32 voltages: 6e-8 relative (6e-8 V of a 1 V reference, 2e-5 LSB at 8 bits)
        v_out = np.empty((n, n_out), dtype=np.float32)
        i_sense = np.empty(n) if fo.sense else None
        risky_at, risky_var = [], []
        check = fo.c_pair is not None
        if fo.c_pair is not None:
            v_lo, v_hi = fo.limits
            half = 0.5 * (v_hi - v_lo)
            c_pair = fo.c_pair.astype(np.float32)
            # a vector is a candidate when its bound comes within 1e-4 of the rails' margin
            # (float32 rounding of the bound and of the pair products is ~1e-6 relative)
            lim = np.float32(half * (1 - 1e-4) - float(np.max(np.abs(fo.c_pair))))
        # blocks of input vectors, so that the products and what follows them stay in cache
        for blk in range(b0, b1):
            # the batch's rows r0:r1 are the block's rows at:at + r1 - r0
            r0 = max(blk * step, first) - first
            r1 = min((blk + 1) * step, first + n) - first
            at = first + r0 - blk * step
            whole = r1 - r0 == step
            vo = v_out[r0:r1] if whole else np.empty((step, n_out), dtype=np.float32)
            pad = None if whole else step
            flat = vo.reshape(-1)
            extra = None
            var = None
            blocks = []
            for j, (ts, w, w_x, s2) in enumerate(zip(group, fo.ws, fo.wx, fo.ss, strict=True)):
                t = ts.tile
                ub = drive.block(r0, r1, t.f0, t.f1, pad, at)
                blocks.append(ub)
                # (rows, K) @ (K, outputs): BLAS's fast layout for these skinny products
                if j == 0:
                    np.matmul(ub, w, out=vo)
                else:
                    vo += ub @ w
                if w_x is not None:
                    px = ub @ w_x
                    extra = px if extra is None else extra + px
                if noisy and s2 is not None:
                    pv = np.square(drive.main(ub)) @ s2
                    var = pv if var is None else var + pv
            flat += c_out
            if var is not None:
                assert draws is not None
                fv = var.reshape(-1)
                fv += c_noise
                np.sqrt(fv, out=fv)
                fv *= next(draws)
                flat += fv
            if not whole:
                v_out[r0:r1] = vo[at : at + r1 - r0]
            if fo.sense:
                assert extra is not None and i_sense is not None  # wx holds the sense line
                np.add(
                    extra[at : at + r1 - r0, 0], fo.const[n_out], out=i_sense[r0:r1],
                    dtype=np.float64,
                )  # fmt: skip
            hits: list[np.ndarray] = []
            if check:
                assert extra is not None  # wx holds the bound column
                cand = np.nonzero(extra[:, -1] > lim)[0] if drive.nonneg else None
                if cand is None or cand.size:
                    dist = None
                    for ub, wpc in zip(blocks, fo.wpc, strict=True):
                        pd = (ub if cand is None else ub[cand]) @ wpc
                        dist = pd if dist is None else dist + pd
                    assert dist is not None  # a group has at least one tile
                    dist += c_pair
                    worst = np.abs(dist, out=dist).max(axis=1)
                    far = np.nonzero(worst > half)[0]
                    hits.append(far if cand is None else cand[far])
            if fo.sub_limits is not None:
                po = vo[:, fo.pair_out]
                hits.append(
                    np.nonzero(((po < fo.sub_limits[0]) | (po > fo.sub_limits[1])).any(1))[0]
                )
            hit = np.unique(np.concatenate(hits)) if len(hits) > 1 else (hits[0] if hits else None)
            if hit is not None and not whole:  # the batch's rows of the block only
                hit = hit[(hit >= at) & (hit < at + r1 - r0)]
            if hit is not None and hit.size:
                risky_at.append(hit - at + r0)
                if var is not None:
                    risky_var.append(var[hit])
        stats.tia_reads += fo.stages.cols.size * n  # every TIA of the group, once a vector
        risky = np.concatenate(risky_at) if risky_at else np.zeros(0, dtype=np.int64)
        var = np.concatenate(risky_var) if risky_var else None
        if risky.size:
            exact = fo.stages.exact(
                self._group_currents(group, drive, risky), stats, count_reads=False
            )  # their reads are counted above, with every vector's
            if var is not None:  # keep the same read-noise draw, in output units
                exact += var
            v_out[risky] = exact
        return v_out, i_sense
