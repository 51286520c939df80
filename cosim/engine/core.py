"""The analog inference engine: a trained network run the way the chip would run it.

Per hidden layer and chip instance (see :mod:`cosim.engine.mapping` for the mapping and
:mod:`cosim.engine.chip` for the random draws), every input vector of every tile goes
through:

1. DAC: codes → voltages ``k·v_read/2**bits_in``, and the device I–V's effective drive
   ``s(V)`` (a lookup per code);
2. crossbar: ``I = s(V) @ M_eff + I_bias`` with the fitted IR-drop surrogate per programmed
   tile, plus per-read noise ``sqrt(s(V)² @ σ_G²)·N(0, 1)``;
3. TIA per column on the column's Norton equivalent (its offset amplified by
   ``1 + R_t·G_N``), subtractor per differential pair, both affine inside their range and
   solved exactly near the rails;
4. sense row: ``V_sense`` from the sense line and its TIA, thresholds ``V_th,k`` → skipped
   MSB cycles per conversion;
5. ADC instance of the card's architecture (:mod:`cosim.converters`; shared by
   ``columns_per_adc`` columns) with its own mismatch, at the output grid's resolution,
   with the skip;
6. partial sums over row tiles: ``digital`` (default) converts each row tile's signed sum at
   the card's ADC resolution around half scale (offset binary: subtractors and unipolar
   columns refer their output to ``V_ref/2``; a transimpedance ``R_t/(2·psum_range)`` so a
   partial sum spans ±psum_range·hi), adds the codes and re-quantizes to the Y grid;
   ``analog`` joins the row tiles' bitlines at one TIA per column and converts once.

Unipolar columns carry the ``g_min`` leakage of every device on them; the tile's ``g_min``
reference line (:mod:`cosim.engine.chip`) sinks ``g_min·Σ s(V_i)`` at each unipolar column's TIA
input, so the leakage is removed before the conversion, in every row tile's partial sum.

Pooling, flattening, residual Adds and the classifier head run digitally, exactly as in
:func:`cosim.model.forward.integer_forward`. In ideal mode the same mapping is evaluated in
exact integers and reproduces that function bit for bit. A residual Add
(:class:`cosim.model.AddLayer`, :func:`cosim.model.forward.add_codes`) costs
``digital.e_add_j`` per add (one per output: a signed operand, :attr:`LayerMap.signed`, is
read as one signed code, converted offset binary at :meth:`signed_bits` over ``±hi``; two
where a pair is mapped as both halves), tallied
in its own layer row ``"{index}:add"``.

Where it lives: this module holds :class:`Engine` (chip instances, batches, the layer pass,
:meth:`Engine.trace`); its parts are mixed in from one module each: the folded affine path
and its products (:mod:`cosim.engine.fold`, from the one description of the periphery
chain in :mod:`cosim.engine.stages`), the sense row (:mod:`cosim.engine.sense`), the conversions
(:mod:`cosim.engine.convert`) and the energy tallies (:mod:`cosim.engine.energy`). Blocks of
MAC vectors and the drive kernels are in :mod:`cosim.engine.blocks` (why results do not
depend on the batching), the read noise in :mod:`cosim.engine.readnoise`, what-if cards in
:mod:`cosim.engine.whatif`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.blas import single_thread
from cosim.card import Card
from cosim.circuits import device_model
from cosim.engine.blocks import BLOCK_SAMPLES as BLOCK_SAMPLES
from cosim.engine.blocks import (
    CODE_DTYPE,
    Drive,
    VectorRows,
    block_samples,
    im2col_columns,
    round_scaled,
)
from cosim.engine.chip import LayerState, build_layer
from cosim.engine.compensation import SCALE_KEY, DriftCompensation, apply_scale
from cosim.engine.config import EngineConfig
from cosim.engine.convert import Conversions
from cosim.engine.energy import COMPONENTS as COMPONENTS
from cosim.engine.energy import ENERGY_STRIDE, EnergyTally, LayerStats, read_units
from cosim.engine.energy import window_sums as window_sums
from cosim.engine.fold import FoldedPath
from cosim.engine.mapping import LayerMap, ideal_layer, map_model
from cosim.engine.readnoise import ReadNoise
from cosim.engine.readnoise import standard_normals as standard_normals
from cosim.engine.sense import SenseRow
from cosim.engine.streams import ChipStreams, RngFor
from cosim.engine.trace import GroupTrace, Trace, TraceRecorder
from cosim.engine.whatif import WHAT_IF_FIELDS as WHAT_IF_FIELDS
from cosim.engine.whatif import what_if_card
from cosim.errors import CosimError, DataError
from cosim.library import SurrogateLibrary
from cosim.model import AddLayer, FlattenLayer, Model, PoolLayer, WeightLayer
from cosim.model.forward import add_codes, exact_matmul, im2col, pool
from cosim.surrogates.periphery import TiaModel


class Engine(FoldedPath, SenseRow, Conversions, EnergyTally, DriftCompensation):
    """Evaluate a trained model on the chip that a surrogate library describes.

    Parameters
    ----------
    model
        A quantized model from ``cosim train``.
    library
        A surrogate library from ``cosim characterize`` (its card is the chip).
    config
        What to simulate (:class:`EngineConfig`).
    """

    def __init__(
        self,
        model: Model,
        library: SurrogateLibrary,
        config: EngineConfig,
        card: Card | None = None,
    ) -> None:
        if config.layer_tuning and model.scheme == "global":
            raise CosimError(
                "layer_tuning counts the per-layer tuned periphery of a per-layer quantized "
                "model; this model is global (one shared periphery bank): leave layer_tuning "
                "(--layer-tuning) off"
            )
        self.model = model
        self.lib = library
        self.card: Card = library.card if card is None else what_if_card(library, card)
        self.cfg = config
        self.device = device_model(self.card)
        self.maps: list[LayerMap] = map_model(model, self.card)
        self._by_index = {m.index: m for m in self.maps}
        self.crossbar = library.block("crossbar")
        self.tia: TiaModel = library.block("tia")
        self.sub = library.block("subtractor")
        self.adc_arch = library.adc_architecture  # the card's converter (a plug-in)
        self.adc_nominal = library.adc()
        self.sense = library.block("sense_row") if self.card.sense_row.enabled else None
        self._adc_by_bits = library.adc_models_by_bits()
        self.stats: dict[int, LayerStats] = {}
        self.adc_params: dict[int, Any] = {}  # id(ADC model) -> its circuit parameters
        #: threads of a chip's programming (its tiles' IR-drop solves); evaluate() sets it
        #: to its own; the result does not depend on it
        self.threads = 1

    # -- chips ----------------------------------------------------------------------------
    def chip(self, k: int) -> list[LayerState]:
        """Chip instance ``k``: every draw from a generator keyed by (seed, ``k``, layer,
        tile, effect) (:class:`~cosim.engine.streams.ChipStreams`). With drift
        compensation, each layer also keeps the scales of its calibration read
        (:mod:`cosim.engine.compensation`)."""
        chip = self._build_chip(k, self.cfg)
        if self.compensates():
            self.calibrate(k, chip)
        return chip

    def _build_chip(self, k: int, cfg: EngineConfig) -> list[LayerState]:
        """Chip ``k``'s layers under ``cfg`` (the engine's, or the same chip undrifted)."""
        streams = ChipStreams(cfg.seed, k)
        out = []
        for m in self.maps:
            # a signed operand: one offset-binary conversion, a bit more than the grid's
            bits_final = self.signed_bits(m) if m.signed else self._conv_bits(m)

            def factory(rt: int, rng_for: RngFor, bits_final=bits_final):
                bits = bits_final if rt < 0 else self.psum_bits()
                return self._make_adc(bits, rng_for)

            out.append(
                build_layer(
                    m,
                    self.card,
                    self.device,
                    self.crossbar,
                    self.tia,
                    self.sub,
                    factory,
                    cfg,
                    streams,
                    threads=self.threads,
                )
            )
        return out

    # -- blocks -----------------------------------------------------------------------------
    def block_samples(self) -> int:
        """Samples in which every layer's blocks of MAC vectors (:func:`block_rows`) end
        (a divisor of :data:`BLOCK_SAMPLES`): batches that start at multiples of it only
        ever hold whole blocks."""
        return block_samples(self.maps)

    def batch_size(self, batch: int) -> int:
        """Samples per batch for the requested ``batch``: the nearest multiple of
        :meth:`block_samples` (so that no block is computed twice), or ``batch`` itself
        where it is below half of one (small batches pad their blocks instead). The results
        are the same for every batch size; only the time and memory change."""
        if self.cfg.ideal:
            return batch
        a = self.block_samples()
        if batch < a // 2:
            return batch
        return max(1, round(batch / a)) * a

    # -- running --------------------------------------------------------------------------
    def check_input(self, x_raw: np.ndarray) -> np.ndarray:
        shape = tuple(self.model.preprocessing.input_shape)
        x = np.asarray(x_raw)
        if x.ndim == len(shape) and x.shape == shape:
            x = x[None]
        if x.shape[1:] != shape:
            raise DataError(
                f"input samples have shape {x.shape[1:]} but the model takes {shape}; "
                "use the dataset the model was trained on"
            )
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise DataError("input samples hold NaN or inf; clean the data first")
        return x

    def forward(
        self,
        chip: list[LayerState] | None,
        x_raw: np.ndarray,
        noise: ReadNoise | np.random.Generator,
        stats: dict[int, LayerStats],
        start: int = 0,
        record: TraceRecorder | None = None,
    ) -> np.ndarray:
        """Logits (float64) of a batch of raw samples on one chip (``None`` in ideal mode).

        ``noise``: the chip's :class:`ReadNoise` (draws keyed by sample), or a generator
        whose draws are taken in order (they then depend on the batching). ``start``: the
        index of the batch's first sample in the evaluation, which keys the read noise and
        the vectors the ADC energy is estimated on. The energies stay in ``stats``'s exact
        tallies until :meth:`finish_energy` turns them into joules. ``record``: where
        :meth:`trace` collects what each layer computed."""
        x = self.check_input(x_raw)
        k = self.model.preprocessing.codes(x)
        states = {s.lmap.index: s for s in chip} if chip is not None else {}
        logits = None
        sources = self.model.add_sources()
        saved: dict[int, np.ndarray] = {}
        for i, lay in enumerate(self.model.layers):
            if isinstance(lay, WeightLayer):
                if lay.is_hidden:
                    st = stats.setdefault(i, LayerStats(f"{i}:{lay.kind}"))
                    k = self._hidden(i, lay, k, states.get(i), noise, st, start, record)
                else:
                    assert lay.n_w is not None and lay.n_b is not None  # check_model
                    assert lay.w_grid is not None and lay.in_grid is not None
                    bias = lay.n_b * (1 << lay.in_grid.bits)
                    w2 = lay.n_w.reshape(lay.n_w.shape[0], -1)
                    acc = exact_matmul(k.reshape(k.shape[0], -1), w2.T) + bias
                    logits = acc.astype(np.float64) * (lay.w_grid.unit * lay.in_grid.step)
                    k = acc
            elif isinstance(lay, PoolLayer):
                k = pool(lay, k, integer=True)
            elif isinstance(lay, FlattenLayer):
                k = k.reshape(k.shape[0], -1)
            elif isinstance(lay, AddLayer):  # digital, between tiles: the reference's adds
                k = add_codes(self.model, i, k, saved[lay.source])
                st = stats.setdefault(i, LayerStats(f"{i}:add"))
                # a pair's operand: two adds per output, one where the chip read it signed
                n_add = 2 if lay.pair and not self._by_index[i - 1].signed else 1
                if not self.cfg.ideal:  # ideal mode models no energy
                    st.count("digital", self.card.digital.e_add_j, k.size * n_add)
            if i in sources:
                saved[i] = k
        assert logits is not None
        return logits

    def trace(
        self,
        chip: list[LayerState] | None,
        x_raw: np.ndarray,
        noise: ReadNoise | np.random.Generator | None = None,
        layers: list[int] | None = None,
        start: int = 0,
    ) -> Trace:
        """:meth:`forward` on ``x_raw``, keeping what each hidden layer computed: its
        unrolled input codes, and per conversion group the voltages the ADCs sampled, the
        sense-line current, the skips and the codes (:class:`~cosim.engine.trace.Trace`),
        recorded by the path ``forward`` runs. ``noise``: as for :meth:`forward` (``None``:
        chip 0's read noise); ``layers``: the layer indices to keep (``None``: every hidden
        layer). Its statistics are not kept."""
        if noise is None:
            noise = ReadNoise(self.cfg.seed, 0)
        rec = TraceRecorder(None if layers is None else frozenset(layers))
        logits = self.forward(chip, x_raw, noise, {}, start=start, record=rec)
        return Trace(logits, dict(sorted(rec.done.items())))

    def _hidden(
        self,
        i: int,
        lay: WeightLayer,
        k: np.ndarray,
        st: LayerState | None,
        noise: ReadNoise | np.random.Generator,
        stats: LayerStats,
        start: int = 0,
        record: TraceRecorder | None = None,
    ) -> np.ndarray:
        n = k.shape[0]
        lm = self._by_index[i]
        kernel = lay.kernel if lay.kernel is not None else 0  # set on every conv2d layer

        def unroll(a: np.ndarray) -> np.ndarray:
            if lay.kind == "conv2d":
                return im2col(a, kernel, lay.stride, lay.padding)[0]
            return a.reshape(a.shape[0], -1)

        def unroll_codes(a: np.ndarray) -> np.ndarray:  # the same values, column-major
            if lay.kind == "conv2d":
                return im2col_columns(a, kernel, lay.stride, lay.padding)
            return a.reshape(a.shape[0], -1)

        if lay.kind == "conv2d":
            ho = (k.shape[2] + 2 * lay.padding - kernel) // lay.stride + 1
            wo = (k.shape[3] + 2 * lay.padding - kernel) // lay.stride + 1
        if record is not None:
            record.inputs(i, unroll(k))
        if self.cfg.ideal:
            y = ideal_layer(lm, unroll(k))
        else:
            assert st is not None
            per = ho * wo if lay.kind == "conv2d" else 1
            with single_thread():
                y = self._analog_layer(
                    lm, st, k, unroll_codes, noise, stats, VectorRows(start * per, per), record
                )
            if lm.signed:  # the signed codes as the model's halves (relu(z), relu(-z))
                y = np.concatenate([np.maximum(y, 0), np.maximum(-y, 0)], axis=1)
        if record is not None:
            record.outputs(i, y)
        stats.outputs += y.size
        stats.adc_clipped += int(np.count_nonzero(y == (1 << lm.periphery.adc_bits) - 1))
        if lay.kind == "conv2d":
            return y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
        return y

    # -- the analog path --------------------------------------------------------------------
    def _analog_layer(
        self,
        lm: LayerMap,
        st: LayerState,
        k: np.ndarray,
        unroll_codes,
        noise: ReadNoise | np.random.Generator,
        stats: LayerStats,
        rows: VectorRows | None = None,
        record: TraceRecorder | None = None,
    ) -> np.ndarray:
        """One hidden layer on one chip: ``k`` are the input codes as the layer receives
        them (images for convolutions), ``unroll_codes`` turns such an array into MAC
        vectors (column-major); ``rows``: where they sit among the evaluation's vectors;
        ``record``: where each conversion group is traced."""
        rows = rows or VectorRows(0, 1)
        card, cfg, per = self.card, self.cfg, lm.periphery
        v_tab, u_tab, q_tab = self._drive_tables(lm)
        # the DAC and the device I-V act per input value: the unrolled input codes (one byte
        # each) are looked up block by block where the products need them (Drive), so the
        # float drives never make a round trip through memory;
        # float32 currents: 6e-8 relative, far below an LSB (7.8e-8 A of 2e-5 A full scale)
        kc = unroll_codes(k.astype(np.uint8) if per.in_bits <= 8 else k)
        quad = any(ts.m_quad is not None for ts in st.tiles)
        # the crossbar surrogate's second-order drive s(V)·(V/v_read)² beside s(V)
        drive = Drive(kc, u_tab, q_tab if quad else None)
        n = drive.shape[0]
        noisy = cfg.read_noise and any(ts.read_sigma is not None for ts in st.tiles)
        # read energy, exactly: V·s(V) of every input summed over every MAC vector, in fixed
        # point (per input of the layer's input map: the unrolled sums follow at the end)
        fixed, _ = read_units(v_tab * u_tab)
        sums = np.take(fixed, k).sum(axis=0)
        stats.read_sums = sums if stats.read_sums is None else stats.read_sums + sums
        stats.vectors += n
        stats.vectors_sampled += len(range((-rows.first) % ENERGY_STRIDE, n, ENERGY_STRIDE))
        out = np.empty((n, lm.n_out), dtype=CODE_DTYPE)
        split = lm.n_row_tiles > 1 and cfg.partial_sums == "digital"
        # the signed operand of a residual Add: offset-binary conversions, signed codes
        signed = lm.signed
        top = (1 << per.adc_bits) - 1
        low = -top if signed else 0
        # drift compensation's per-output scales, set by the chip's calibration read
        scale = st.derived[SCALE_KEY] if SCALE_KEY in st.derived else None
        hist: dict[int, np.ndarray] = {}  # (skip, code) histograms of the conversions
        for ct in range(lm.n_col_tiles):
            ts_ct = [ts for ts in st.tiles if ts.tile.col_tile == ct]
            for ts in ts_ct:
                t = ts.tile
                self._energy_tile(
                    ts,
                    n,
                    stats,
                    periphery=split or t.row_tile == 0,
                    sense=not split and not signed and t.row_tile == 0 and self._sense_on(),
                )
            outs = ts_ct[0].tile.outputs
            o_idx = np.array([o for o, _, _ in outs])
            o_sel: np.ndarray | slice = o_idx
            if np.array_equal(o_idx, np.arange(o_idx[0], o_idx[0] + o_idx.size)):
                o_sel = slice(int(o_idx[0]), int(o_idx[0]) + o_idx.size)  # a plain copy
            if split or signed:
                # partial sums convert at the card's resolution unless --adc-bits says else,
                # each spanning ±psum_range·hi; a signed operand read whole (every row tile
                # joined, row tile -1) converts once over ±hi (signed_bits, signed_r_t)
                if split:
                    b_ps, r_t, span = self.psum_bits(), self.psum_r_t(lm), cfg.psum_range
                    groups = [(rt, [ts]) for rt, ts in enumerate(ts_ct)]
                else:
                    b_ps, r_t, span = self.signed_bits(lm), self.signed_r_t(lm), 1.0
                    groups = [(-1, ts_ct)]
                total = np.zeros((n, len(outs)), dtype=np.int64)
                for rt, grp in groups:
                    v_out, _ = self._group_voltages(
                        st, ct, grp, drive, noisy, noise, r_t, True, stats,
                        rows=rows, key=(lm.index, ct, rt + 1),
                    )  # fmt: skip
                    c = self._adc_codes(
                        st, ct, rt, v_out, b_ps, True, None, stats, hist, row0=rows.first
                    )
                    if record is not None:
                        g = GroupTrace(ct, rt, r_t, b_ps, True, v_out, None, None, c)
                        record.group(lm.index, g)
                    total += c
                    if split:
                        stats.count("digital", card.digital.e_add_j, c.size)
                total -= len(groups) << (b_ps - 1)  # offset binary: each code less half scale
                shift = per.adc_bits + 1 - b_ps
                neg = None
                if signed:  # round the magnitude (half away from zero), as the reference
                    neg = total < 0  # rounds relu(z) and relu(-z) alike
                    np.abs(total, out=total)
                if scale is None:
                    y = round_scaled(total, span * 2.0**shift)
                else:  # drift compensation: the summed signed code, one rounding
                    y = apply_scale(total, scale[o_idx], span * 2.0**shift)
                if neg is not None:
                    np.negative(y, where=neg, out=y)
                np.clip(y, low, top, out=y)
            else:
                b = self._conv_bits(lm)
                v_out, i_sense = self._group_voltages(
                    st, ct, ts_ct, drive, noisy, noise, per.r_t_ohm, False, stats,
                    rows=rows, key=(lm.index, ct, 0),
                )  # fmt: skip
                skip = None
                if self._sense_on():
                    g_n = np.sum([ts.g_norton for ts in ts_ct], axis=0)
                    th = self.group_thresholds(lm, st, ts_ct, per.r_t_ohm, b)
                    assert i_sense is not None  # the sense line is read where it is on
                    skip = self._skip_from_current(lm, st, i_sense, g_n[-1], th)
                y = self._adc_codes(st, ct, -1, v_out, b, False, skip, stats, hist, row0=rows.first)
                if record is not None:
                    g = GroupTrace(ct, -1, per.r_t_ohm, b, False, v_out, i_sense, skip, y)
                    record.group(lm.index, g)
                if scale is not None:  # drift compensation: the converted code, one rounding
                    y = apply_scale(y, scale[o_idx], 2.0 ** (per.adc_bits - b))
                    y = np.clip(y, 0, (1 << per.adc_bits) - 1)
                elif b != per.adc_bits:  # re-express b-bit codes on the output grid
                    sh = per.adc_bits - b
                    y = (y << sh) if sh > 0 else np.floor(y * 2.0**sh + 0.5).astype(np.int64)
                    y = np.minimum(y, (1 << per.adc_bits) - 1)
            if isinstance(o_sel, slice) and o_sel == slice(0, lm.n_out):
                out = y  # one column tile holds every output, in order
            else:
                out[:, o_sel] = y
            stats.count("digital", card.digital.e_activation_j, y.size)
        for bits, counts in hist.items():
            stats.adc_counts[bits] = (
                stats.adc_counts[bits] + counts if bits in stats.adc_counts else counts
            )
        return out
