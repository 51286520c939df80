"""One Monte-Carlo chip instance: programmed conductances and periphery instances per tile.

Everything random about a chip is drawn here, once: device programming noise, the Bao et
al. ``nvw`` variation, stuck-at faults, drift exponents, every op-amp's offset, every
subtractor's resistor mismatch, every ADC's capacitor mismatch and comparator offset (or
its ``nva`` comparison-level variation). Each of them per tile (or instance) from its own
generator, keyed by what it models (:mod:`cosim.engine.streams`): switching one effect or
changing its size moves no other draw, and ``nvw`` scales the same normals at every size.
A tile's per-device draws are taken line by line (column-major; the sense line last), so
that the sense line's draws follow the array's. The per-read noise is drawn during
inference (:class:`cosim.engine.readnoise.ReadNoise`).

Programmed conductances stay in the physical range ``[0, 1.5·g_max]`` (the programming
model's own ceiling, :meth:`device_models.base.DeviceModel.program`) whatever the
variation: a large ``nvw`` (or drift and faults on top of it) can spread the draws beyond
any device, and conductances of any size would reach the crossbar's nodal solve, which
needs them finite and non-negative.

A tile that holds unipolar columns also has a **g_min reference line**: one device
programmed to ``g_min`` on every used row (data and bias rows) of the tile, whose current
``Σ G_ref,i·s(V_i)`` a current mirror copies into the input of every unipolar column's TIA,
where it cancels the leakage of the column's devices before the TIA and the ADC (a
differential pair cancels it by subtraction). Its devices are programmed like the array's
(programming noise, ``nvw``, drift), so the reference carries the same mean leakage as the
columns' ``g_min`` devices: PCM programming noise clipped at 0 S puts that mean at
0.165 µS for a 0.1 µS target, and a nominal reference left +0.065 µS per zero weight
uncorrected (an all-unipolar LeNet-5 on Fashion-MNIST: 42 % on the chip; with the
programmed reference 73 %, 76 % in software). Like the sense line it is verified after
programming (no stuck faults); it has no read noise of its own, an exact mirror, and sits
at the DAC's voltages (no IR drop).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.engine.config import EngineConfig
from cosim.engine.mapping import LayerMap, Tile
from cosim.engine.streams import ChipStreams, Effect, RngFor
from cosim.surrogates.crossbar import CrossbarModel
from cosim.surrogates.periphery import SubtractorModel, TiaModel
from device_models import DeviceModel
from device_models.iv import sinh_slope

#: the largest conductance a device can take, in units of g_max (DeviceModel.program's clip)
G_CEILING = 1.5


def physical(g: np.ndarray, device: DeviceModel) -> np.ndarray:
    """``g`` (S) clipped to the physical range ``[0, G_CEILING·g_max]``, NaN to 0."""
    return np.clip(np.nan_to_num(g, nan=0.0), 0.0, G_CEILING * device.g_max_s)


@dataclass
class TileState:
    """A programmed tile of one chip: what the engine needs to run MACs on it."""

    tile: Tile
    g: np.ndarray  # (rows, n_lines) programmed conductances (S), sense line last if present
    m_eff: np.ndarray  # (rows, n_lines) main transfer (S): I = s(V) @ m_eff + ...
    g_norton: np.ndarray  # (n_lines,)
    read_sigma: np.ndarray | None  # (rows, n_lines) per-read conductance sigma (S)
    bias_current: np.ndarray  # (n_lines,) current of the bias rows (A), input-independent
    bias_var: np.ndarray  # (n_lines,) read-noise variance of the bias rows (A^2)
    row_g_sum: np.ndarray  # (rows,) conductance per row (S), reference line included: read energy
    tia_offset_v: np.ndarray  # (n_lines,)
    adc_of_output: np.ndarray  # (n_outputs,) ADC instance index of each output
    extra: dict[str, Any] = field(default_factory=dict)
    m_quad: np.ndarray | None = None  # (rows, n_lines): + s(V)·(V/v_read)² @ m_quad (S)
    ref_g: np.ndarray | None = None  # (rows,) g_min reference line (S); None: no unipolar column
    m_tia: np.ndarray | None = None  # m_eff minus the reference line on unipolar columns
    bias_tia: np.ndarray | None = None  # bias_current minus the reference's bias-row current

    def tia_transfer(self) -> tuple[np.ndarray, np.ndarray]:
        """``M`` and the input-independent current as the TIA inputs see them: the
        crossbar's, minus the g_min reference line's current on every unipolar column."""
        if self.m_tia is None or self.bias_tia is None:
            return self.m_eff, self.bias_current
        return self.m_tia, self.bias_tia


@dataclass
class LayerState:
    """A layer of one chip: its tiles, subtractor instances and ADC instances."""

    lmap: LayerMap
    tiles: list[TileState]
    sub_coeffs: dict[int, np.ndarray]  # col tile -> (n_outputs, 4): a_pos, a_neg, c, k_ref
    sub_models: dict[int, list[SubtractorModel | None]]
    adcs: dict[tuple[int, int], list[Any]]  # (row tile or -1, col tile) -> ADC instances
    sense_offset_v: float = 0.0
    # what the engine derives from these draws, once per chip, keyed explicitly by what it
    # is and for which conversion group: ("stages" | "fold" | "th", column tile, row tiles,
    # ...): the chain descriptions, the folded matrices, the sense thresholds
    derived: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)


def program_tile(
    levels: np.ndarray,
    sense: bool,
    card: Card,
    device: DeviceModel,
    cfg: EngineConfig,
    rng_for: RngFor,
    bias_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Programmed conductances (rows, n_lines) and per-read sigma for target ``levels``.

    The sense line has a device at ``g_sense`` on every data row; on bias rows its device
    stays at ``g_min``: the bias of every column is known when it is programmed, so the
    bound adds it exactly instead of sensing a worst case.

    ``rng_for(effect)``: the tile's generator of each effect (:class:`ChipStreams.at`);
    every effect draws per device, line by line, whether or not the others are on.
    """
    g = device.level_conductance(levels)
    if sense:
        s_col = np.full((g.shape[0], 1), card.sense_row.g_sense_s)
        if bias_rows is not None and bias_rows.size:
            s_col[bias_rows] = device.g_min_s
        g = np.concatenate([g, s_col], axis=1)
    target = g.T  # (n_lines, rows): the draws go line by line, the sense line last
    gt = target
    if cfg.programming_noise:
        gt = device.program(gt, rng_for(Effect.PROGRAMMING))
    if cfg.nvw > 0:
        gt = device.gaussian_variation(gt, cfg.nvw, rng_for(Effect.NVW))
    if cfg.drift_t_s is not None:
        nu = device.sample_nu(target, rng_for(Effect.DRIFT_NU))
        gt = device.drift(gt, nu, cfg.drift_t_s)
    if cfg.stuck_faults:
        mask = device.stuck_mask(gt.shape, rng_for(Effect.STUCK))
        if sense:
            mask[-1] = 0  # the sense line is verified after programming
        gt = device.apply_stuck(gt, mask)
    g = np.ascontiguousarray(physical(gt, device).T)
    sigma = None
    if cfg.read_noise:
        t = cfg.drift_t_s if cfg.drift_t_s is not None else device.drift_t0_s
        sigma = device.read_sigma(g, t, card.tia.t_read_s)
        if not np.any(sigma):
            sigma = None
    return g, sigma


def _program_reference(
    target: np.ndarray, device: DeviceModel, cfg: EngineConfig, rng_for: RngFor
) -> np.ndarray:
    """The reference line's conductances (S): ``target`` (``g_min`` on used rows, 0 where
    no device is) through the array's programming, ``nvw`` and drift (draws of its own)."""
    used = target > 0
    g = target.copy()
    if cfg.programming_noise:
        g[used] = device.program(target[used], rng_for(Effect.REF_PROGRAMMING))
    if cfg.nvw > 0:
        g[used] = device.gaussian_variation(g[used], cfg.nvw, rng_for(Effect.REF_NVW))
    if cfg.drift_t_s is not None:
        nu = device.sample_nu(target[used], rng_for(Effect.REF_DRIFT_NU))
        g[used] = device.drift(g[used], nu, cfg.drift_t_s)
    return physical(g, device)


def build_layer(
    lmap: LayerMap,
    card: Card,
    device: DeviceModel,
    crossbar: CrossbarModel,
    tia: TiaModel,
    sub: SubtractorModel,
    adc_factory: Callable[[int, RngFor], Any],
    cfg: EngineConfig,
    streams: ChipStreams,
    threads: int = 1,
) -> LayerState:
    """Draw one chip's instance of a mapped layer, every effect from its own generator.

    ``adc_factory(row_tile, rng_for)``: the ADC instance of a conversion group (row tile
    ``-1``: every row tile together), drawing from ``rng_for(effect)``. ``threads``: the
    tiles' stacked IR-drop solves split over this many threads (the result does not depend
    on it: a stacked solve gives each tile what it gives the tile alone).
    """
    sense = card.sense_row.enabled
    layer = lmap.index
    o = card.opamp
    tiles = []
    v_read = card.dac.v_read_v
    drive_b = crossbar.drive(np.array([v_read])) if cfg.nonlinearity else np.array([v_read])
    per = lmap.periphery
    c_s, c_q = crossbar.bias_slope_fit(np.arange(1 << per.in_bits) * per.v_in_lsb)
    excess_read = float(
        sinh_slope(1.0, v_read, crossbar.v_read_v, crossbar.iv_alpha_per_v)
        - crossbar.zero_bias_slope()
    )
    programmed = [
        program_tile(
            t.levels,
            sense,
            card,
            device,
            cfg,
            streams.at(layer, t.row_tile, t.col_tile),
            t.bias_rows,
        )
        for t in lmap.tiles
    ]
    parts: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
    if cfg.ir_drop:
        # every tile's IR-drop transfer, one stacked solve per tile shape (edge tiles differ)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for j, (g, _) in enumerate(programmed):
            by_shape.setdefault(g.shape, []).append(j)
        chunks = [
            idx[c :: max(1, threads)]
            for idx in by_shape.values()
            for c in range(min(max(1, threads), len(idx)))
        ]

        def solve(chunk: list[int]):
            return crossbar.transfer_parts_stack(
                np.stack([programmed[j][0] for j in chunk]), sense_first=sense
            )

        if threads > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(threads, len(chunks))) as pool:
                solved = list(pool.map(solve, chunks))
        else:
            solved = [solve(c) for c in chunks]
        for chunk, (m_s, q_s, y_s) in zip(chunks, solved, strict=True):
            for pos, j in enumerate(chunk):
                parts[j] = (m_s[pos], None if q_s is None else q_s[pos], y_s[pos])
    for j, t in enumerate(lmap.tiles):
        rng_for = streams.at(layer, t.row_tile, t.col_tile)
        g, sigma = programmed[j]
        m_quad = None
        if cfg.ir_drop:
            m_eff, m_quad, y_tt = parts[j]
            if not cfg.nonlinearity:
                m_quad = None  # the second-order term models the sinh I-V's small signal
                y_tt = y_tt / crossbar.zero_bias_slope()  # ohmic devices: slope 1
        else:  # wordlines held exactly at the DAC voltage: no coupling between columns
            slope = crossbar.zero_bias_slope() if cfg.nonlinearity else 1.0
            m_eff, y_tt = g, np.diag(g.sum(axis=0) * slope)
        g_n = np.diagonal(y_tt).copy()
        pol = np.zeros(g.shape[0])
        pol[t.bias_rows] = t.bias_polarity
        bias_excess: np.ndarray | float = 0.0
        if cfg.periphery:
            z = rng_for(Effect.TIA_OFFSET).standard_normal(int(g.shape[1]))  # sense line last
            offs = tia.opamp.offset_v + o.input_offset_sigma_v * z
            if cfg.nonlinearity and (c_s or c_q):
                # each TIA input sits at its offset: its devices, biased at the row voltage,
                # conduct g·s'(V) there, more than the zero-bias Norton conductance says.
                # Data rows through the two drives (CrossbarModel.bias_slope_fit); the bias
                # rows at ±v_read exactly (the excess is even in V, the drives odd)
                g_os = g * offs
                bias_excess = (np.abs(pol) * excess_read) @ g_os
                g_os[t.bias_rows] = 0.0
                m_eff = m_eff + c_s * g_os
                m_quad = c_q * g_os if m_quad is None else m_quad + c_q * g_os
        else:
            offs = np.zeros(g.shape[1])
        # inverted rows are driven at +v_read: the odd I-V gives the opposite current
        bias_cur = (pol * drive_b[0]) @ m_eff
        if m_quad is not None:  # bias rows sit at full scale: (V/v_read)² = 1
            bias_cur = bias_cur + (pol * drive_b[0]) @ m_quad
        bias_var = (
            (pol**2 * drive_b[0] ** 2) @ (sigma**2) if sigma is not None else np.zeros(g.shape[1])
        )
        if cfg.periphery:
            # every TIA input sits at its offset, which lifts the wordlines through the
            # drivers and wires: the other columns' currents shift (the TIA model covers
            # each column's own offset through its Norton conductance)
            bias_cur = bias_cur + (y_tt - np.diag(g_n)) @ offs + bias_excess
        n_out = len(t.outputs)
        adc_of = np.arange(n_out) // card.adc.columns_per_adc
        ref_g = m_tia = bias_tia = None
        uni_cols = [p for _, p, q in t.outputs if q is None]
        if uni_cols:
            # the g_min reference line: its current leaves every unipolar column's TIA input
            ref_g = np.zeros(g.shape[0])
            ref_g[t.data_rows] = device.g_min_s
            ref_g[t.bias_rows] = device.g_min_s
            ref_g = _program_reference(ref_g, device, cfg, rng_for)
            sel = np.zeros(g.shape[1])
            sel[uni_cols] = 1.0
            m_tia = m_eff - np.outer(ref_g, sel)
            bias_tia = bias_cur - float((pol * drive_b[0]) @ ref_g) * sel
        tiles.append(
            TileState(
                t,
                g,
                m_eff,
                g_n,
                sigma,
                bias_cur,
                bias_var,
                g.sum(axis=1) + (ref_g if ref_g is not None else 0.0),
                offs,
                adc_of,
                m_quad=m_quad,
                ref_g=ref_g,
                m_tia=m_tia,
                bias_tia=bias_tia,
            )
        )
    sub_coeffs: dict[int, np.ndarray] = {}
    sub_models: dict[int, list[SubtractorModel | None]] = {}
    adcs: dict[tuple[int, int], list[Any]] = {}
    n_ct = lmap.n_col_tiles
    for ct in range(n_ct):
        outs = next(t.tile.outputs for t in tiles if t.tile.col_tile == ct)
        coeffs = np.zeros((len(outs), 4))  # a_pos, a_neg, c, gain of the reference node
        models: list[SubtractorModel | None] = []
        z_r = z_off = None
        if cfg.periphery and any(n is not None for _, _, n in outs):
            # one row of draws per output (unipolar ones unused): an output's subtractor
            # keeps its draws whatever the layout of the others
            at = streams.at(layer, -1, ct)
            z_r = at(Effect.SUB_MISMATCH).standard_normal((len(outs), 4))
            z_off = at(Effect.SUB_OFFSET).standard_normal(len(outs))
        for k, (_, _, n) in enumerate(outs):
            if n is None:
                coeffs[k] = (1.0, 0.0, 0.0, 0.0)
                models.append(None)
                continue
            if z_r is not None and z_off is not None:
                # resistors of this instance: nominal value with the card's mismatch
                r0, gn = card.subtractor.r_ohm, card.subtractor.gain_v_per_v
                r = np.array([r0, gn * r0, r0, gn * r0]) * (
                    1.0 + card.subtractor.mismatch_sigma_rel * z_r[k]
                )
                m = SubtractorModel(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    v_ref_v=sub.v_ref_v,
                    opamp=sub.opamp.__class__(
                        sub.opamp.dc_gain_v_per_v,
                        sub.opamp.offset_v + o.input_offset_sigma_v * z_off[k],
                        sub.opamp.v_out_min_v,
                        sub.opamp.v_out_max_v,
                        sub.opamp.r_out_ohm,
                    ),
                )
                a_p, a_n, c = m.linear()
                k_ref = m.__class__(m.r1_ohm, m.r2_ohm, m.r3_ohm, m.r4_ohm, m.opamp, 1.0).linear()[
                    2
                ]
                coeffs[k] = (a_p, a_n, c, k_ref - c)
                models.append(m)
            else:
                gn = card.subtractor.gain_v_per_v
                coeffs[k] = (gn, gn, 0.0, 1.0)
                models.append(None)
        sub_coeffs[ct] = coeffs
        sub_models[ct] = models
        n_adc = int(np.ceil(len(outs) / card.adc.columns_per_adc))
        split = lmap.n_row_tiles > 1 and cfg.partial_sums == "digital"
        keys = list(range(lmap.n_row_tiles)) if split else [-1]
        for rt in keys:  # each instance from its own generators
            adcs[(rt, ct)] = [adc_factory(rt, streams.at(layer, rt, ct, a)) for a in range(n_adc)]
    sense_off = 0.0
    if cfg.periphery:
        z_s = streams.rng(Effect.SENSE_OFFSET, layer).standard_normal()
        sense_off = tia.opamp.offset_v + o.input_offset_sigma_v * z_s
    return LayerState(lmap, tiles, sub_coeffs, sub_models, adcs, sense_off)
