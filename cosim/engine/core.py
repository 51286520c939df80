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
5. SAR ADC instance (shared by ``columns_per_adc`` columns) with its own mismatch, at the
   output grid's resolution, with the skip;
6. partial sums over row tiles: ``digital`` (default) converts each row tile's signed sum at
   the card's ADC resolution around half scale (offset binary: subtractors and unipolar
   columns refer their output to ``V_ref/2``; a transimpedance ``R_t/(2·psum_range)`` so a
   partial sum spans ±psum_range·hi), adds the codes and re-quantizes to the Y grid;
   ``analog`` joins the row tiles' bitlines at one TIA per column and converts once.

Unipolar columns carry the ``g_min`` leakage of every device on them; the tile's ``g_min``
reference line (:mod:`cosim.engine.chip`) sinks ``g_min·Σ s(V_i)`` at each unipolar column's TIA
input, so the leakage is removed before the conversion, in every row tile's partial sum.

Pooling, flattening and the classifier head run digitally, exactly as in
:func:`cosim.integer_forward.integer_forward`. In ideal mode the same mapping is evaluated in
exact integers and reproduces that function bit for bit.

How it is computed (:meth:`Engine._fold`, :meth:`Engine._group_voltages`): inside their
linear ranges the TIAs and subtractors are affine with per-chip coefficients, so they are
folded into the crossbar matrices and each tile costs one float32 product per block of input
vectors, ``[s(V), s(V)·(V/v_read)²] @ W`` with both drive terms looked up per input code and
interleaved (:class:`_Drive`), plus ``s(V)² @ S`` for the read-noise variance. The exact
loop solve near the rails runs only for the vectors that need it: a pair's single-ended TIA
can reach its rails only where a per-vector bound column says so, and that column is not
even computed where no input the DAC can apply reaches them (the usual case). The ADCs
convert the float32 voltages exactly as the doubles they are
(:class:`cosim.surrogates.adc._Lookup`).

**Blocks: results that do not depend on the batching.** A layer's MAC vectors are numbered
over the whole evaluation (sample ``s``, output position ``p``: vector ``s·P + p``) and cut,
per conversion group, into fixed blocks that end with samples (a divisor of 1000 samples,
or a whole fraction of one large sample; from the layer's shape and the group's outputs
alone: :func:`_block_rows`). Everything that touches a vector is computed a block at a
time:

* the products run on whole blocks (a block that a batch only partly covers is padded with
  zero drives): BLAS rounds a row of a product differently with the number of rows, so a
  batch-sized product would move float32 voltages by an ulp, and now and then a code;
* the read noise of a block comes from its own generator, keyed by (seed, chip, layer,
  column tile, row tile, block) (:class:`ReadNoise`): the draw a vector sees is a function
  of (seed, chip, sample, layer, tile, read) only, whatever ``--batch`` and ``--threads``;
* energies are tallied exactly (integer counts of events, the read energy's ``V·s(V)``
  summed in fixed point, the ADC's (skip, code) histogram on every 8th vector counted over
  the evaluation) and turned into joules once per chip (:meth:`Engine.finish_energy`).

``evaluate`` rounds ``--batch`` to whole blocks of every layer (:meth:`Engine.batch_size`:
the default 1000 stays 1000), so that only small batches pad. Two roundings still see the
batch, both far below anything a code resolves: the exact rail solve runs in float64 on a
batch's risky vectors together (1e-16 relative), and a padded block checks the pair rails
of fewer candidate vectors (a float32 product; it decides only whether a vector within
that rounding of the rails' margin takes the exact solve or the linear one, which agree
there to far less than an LSB).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim.blas import single_thread
from cosim.card import Card
from cosim.engine.chip import LayerState, build_layer
from cosim.engine.config import EngineConfig
from cosim.engine.mapping import LayerMap, map_model
from cosim.errors import CosimError, DataError
from cosim.integer_forward import _im2col, _pool, exact_matmul
from cosim.library import SurrogateLibrary
from cosim.quant import requantize
from cosim.surrogates.adc import SarLevelAdc
from cosim.surrogates.periphery import TiaModel
from cosim.surrogates.sense_row import offset_budget_v, skips
from cosim.surrogates.sense_row import thresholds as sense_thresholds
from cosim.train.modelfile import FlattenLayer, Model, PoolLayer, WeightLayer
from device_models import from_card

ENERGY_STRIDE = 8  # ADC energy is averaged over every 8th MAC vector (of the evaluation)
#: the read energy's sums of V·s(V) are kept in fixed point: the largest value of a layer's
#: table is 2**38 units (exact integer sums for up to 2**25 samples per chip)
READ_SUM_BITS = 38
#: every block of MAC vectors holds a divisor of this many samples (:func:`_block_rows`), so
#: that batches of a multiple of it (the default 1000) hold whole blocks of every layer
BLOCK_SAMPLES = 1000
_DIVISORS = tuple(d for d in range(1, BLOCK_SAMPLES + 1) if BLOCK_SAMPLES % d == 0)
#: ADC codes (at most 8 bits) as the analog path stores them: a quarter of int64's memory
CODE_DTYPE = np.int16

COMPONENTS = ("crossbar_read", "dac", "tia", "subtractor", "adc", "sense_row", "digital")


@dataclass
class LayerStats:
    """Counters of one hidden layer, summed over samples (and chips)."""

    name: str
    outputs: int = 0  # final output codes produced
    adc_clipped: int = 0  # outputs at the top code
    conversions: int = 0  # ADC conversions (partial sums included)
    tia_saturated: int = 0  # column TIAs outside their linear range
    tia_reads: int = 0
    cycles: int = 0  # SAR cycles that a full conversion would take
    skipped_cycles: int = 0
    bound_violations: int = 0  # skipped conversions whose full code needed the MSBs
    psum_clipped: int = 0  # partial-sum conversions at either end of their range
    energy_j: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 0.0))
    # exact tallies of a chip's batches, turned into energy_j by Engine.finish_energy: integers
    # add up the same however the samples are batched, where float sums would not
    tally: dict[tuple[str, float], int] = field(default_factory=dict)  # (part, J/event): events
    read_sums: np.ndarray | None = None  # Σ V·s(V) per layer input (READ_SUM_BITS fixed point)
    adc_counts: dict[int, np.ndarray] = field(default_factory=dict)  # bits: (skip, code) counts
    vectors: int = 0  # MAC vectors of the layer
    vectors_sampled: int = 0  # of them, those the ADC energy is estimated on

    def merge(self, o: LayerStats) -> None:
        """Add ``o``'s counters, tallies and energies to these."""
        for k in (
            "outputs",
            "adc_clipped",
            "conversions",
            "tia_saturated",
            "tia_reads",
            "cycles",
            "skipped_cycles",
            "bound_violations",
            "psum_clipped",
            "vectors",
            "vectors_sampled",
        ):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        for k, v in o.energy_j.items():
            self.energy_j[k] += v
        for key, events in o.tally.items():
            self.tally[key] = self.tally.get(key, 0) + events
        if o.read_sums is not None:
            self.read_sums = (
                o.read_sums.copy() if self.read_sums is None else self.read_sums + o.read_sums
            )
        for bits, counts in o.adc_counts.items():
            self.adc_counts[bits] = (
                self.adc_counts[bits] + counts if bits in self.adc_counts else counts.copy()
            )

    def count(self, part: str, joules: float, events: int) -> None:
        """Tally ``events`` events of ``joules`` each to the component ``part``."""
        key = (part, joules)
        self.tally[key] = self.tally.get(key, 0) + int(events)

    def summary(self, n_samples: int) -> dict[str, Any]:
        return {
            "layer": self.name,
            "adc_clipping_rate": self.adc_clipped / max(self.outputs, 1),
            "tia_saturation_rate": self.tia_saturated / max(self.tia_reads, 1),
            "skipped_cycle_fraction": self.skipped_cycles / max(self.cycles, 1),
            "bound_violations": self.bound_violations,
            "psum_clipping_rate": self.psum_clipped / max(self.conversions, 1),
            "conversions_per_inference": self.conversions / max(n_samples, 1),
            "energy_per_inference_j": {k: v / max(n_samples, 1) for k, v in self.energy_j.items()},
        }


# Card fields that the characterized circuits do not depend on: a what-if study may change
# them without characterizing again. Array size is among them because the crossbar
# surrogate is physical (fitted at other sizes than the card's and validated held out at it);
# evaluations at sizes never validated say so in their results.
WHAT_IF_FIELDS = {
    "device": {
        "level_bits",
        "prog_noise_scale",
        "read_noise_scale",
        "drift_t0_s",
        "drift_nu_mean",
        "drift_nu_sigma",
        "stuck_on_rate",
        "stuck_off_rate",
    },
    "array": {"rows", "cols", "bias_rows"},
    "dac": {"e_conv_j", "area_m2", "bits"},
    "tia": {"area_m2"},
    "subtractor": {"area_m2"},
    "adc": {"area_m2", "columns_per_adc"},
    "sense_row": {"area_m2", "max_skip_bits", "margin_rel", "enabled", "offset_n_sigma"},
    "digital": {"e_add_j", "e_activation_j", "area_per_column_m2"},
    "area": {"device_cell_m2"},
}


def what_if_card(library: SurrogateLibrary, card: Card) -> Card:
    """``card`` if it differs from the library's only in fields the surrogates don't depend
    on (:data:`WHAT_IF_FIELDS`); otherwise a :class:`~cosim.errors.LibraryError` naming the
    first field that needs a new characterization."""
    from cosim.errors import LibraryError

    a, b = library.card.to_dict(), card.to_dict()
    for sec, vals in b.items():
        if sec == "card":
            continue
        for key, v in vals.items():
            if a[sec][key] != v and key not in WHAT_IF_FIELDS.get(sec, set()):
                raise LibraryError(
                    f"card '{card.name}' changes {sec}.{key} ({a[sec][key]!r} -> {v!r}), which "
                    f"the library {library.path} was characterized with; run cosim "
                    "characterize for this card"
                )
    if card.sense_row.enabled and "sense_row" not in library.surrogates:
        raise LibraryError(
            f"card '{card.name}' enables the sense row but the library "
            f"{library.path} has no sense_row block"
        )
    return card


class Engine:
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
        self.model = model
        self.lib = library
        self.card: Card = library.card if card is None else what_if_card(library, card)
        self.cfg = config
        self.device = from_card(self.card)
        self.maps: list[LayerMap] = map_model(model, self.card)
        self._by_index = {m.index: m for m in self.maps}
        self.crossbar = library.block("crossbar")
        self.tia: TiaModel = library.block("tia")
        self.sub = library.block("subtractor")
        self.adc_nominal = library.block("sar_adc")
        self.sense = library.block("sense_row") if self.card.sense_row.enabled else None
        self._adc_by_bits = _adc_models(library)
        self.stats: dict[int, LayerStats] = {}
        self._capture: dict[int, np.ndarray] | None = None
        self.adc_params: dict[int, Any] = {}  # id(ADC model) -> its circuit parameters

    # -- chips ----------------------------------------------------------------------------
    def chip(self, k: int) -> list[LayerState]:
        """Chip instance ``k`` (reproducible from the seed)."""
        rng = np.random.default_rng([self.cfg.seed, k])
        out = []
        for m in self.maps:
            bits_final = self._conv_bits(m)

            def factory(rt, r, bits_final=bits_final):
                bits = bits_final if rt < 0 else self.psum_bits()
                return self._make_adc(bits, r)

            out.append(
                build_layer(
                    m,
                    self.card,
                    self.device,
                    self.crossbar,
                    self.tia,
                    self.sub,
                    factory,
                    self.cfg,
                    rng,
                )
            )
        return out

    def _conv_bits(self, lm: LayerMap) -> int:
        """Resolution of the final conversion (the output grid's unless overridden)."""
        b = self.cfg.adc_bits if self.cfg.adc_bits is not None else lm.periphery.adc_bits
        if b > self.card.adc.bits:
            raise CosimError(
                f"ADC resolution {b} exceeds the card's adc.bits = {self.card.adc.bits}"
            )
        return b

    def _make_adc(self, bits: int, rng: np.random.Generator):
        from cosim.surrogates import adc as adcmod

        vref = self.card.adc.v_ref_v
        if self.cfg.ideal:
            return adcmod.SarAdcModel.ideal(bits, vref)
        if self.cfg.nva > 0:  # Bao et al.'s comparison-level variation replaces the circuit
            return adcmod.comparison_level_variation(bits, vref, self.cfg.nva, rng)
        if not self.cfg.adc:
            return adcmod.SarAdcModel.ideal(bits, vref)
        nominal = self._adc_by_bits.get(bits)
        if nominal is not None and hasattr(adcmod, "sample_instance"):
            import copy

            from netlists.sar_adc import SarAdcParams

            # the same draws as the netlist's Monte-Carlo instance: SPICE can rebuild it
            twin = copy.deepcopy(rng)
            model = adcmod.sample_instance(self._adc_by_bits, self.card, rng, bits)
            self.adc_params[id(model)] = SarAdcParams.sample(self.card, twin, bits)
            return model
        if nominal is None:
            raise CosimError(
                f"the surrogate library {self.lib.path} has no {bits}-bit ADC model; "
                "re-run cosim characterize with this cosim to add every resolution"
            )
        return nominal

    # -- blocks -----------------------------------------------------------------------------
    def block_samples(self) -> int:
        """Samples in which every layer's blocks of MAC vectors (:func:`_block_rows`) end
        (a divisor of :data:`BLOCK_SAMPLES`): batches that start at multiples of it only
        ever hold whole blocks."""
        a = 1
        for m in self.maps:
            per = _vectors_per_sample(m.layer)
            for t in m.tiles:
                r = _block_rows(len(t.outputs), per)
                a = math.lcm(a, r // math.gcd(r, per))
        return a

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
    ) -> np.ndarray:
        """Logits (float64) of a batch of raw samples on one chip (``None`` in ideal mode).

        ``noise``: the chip's :class:`ReadNoise` (draws keyed by sample), or a generator
        whose draws are taken in order (they then depend on the batching). ``start``: the
        index of the batch's first sample in the evaluation, which keys the read noise and
        the vectors the ADC energy is estimated on. The energies stay in ``stats``'s exact
        tallies until :meth:`finish_energy` turns them into joules."""
        x = self.check_input(x_raw)
        k = self.model.preprocessing.codes(x)
        states = {s.lmap.index: s for s in chip} if chip is not None else {}
        logits = None
        for i, lay in enumerate(self.model.layers):
            if isinstance(lay, WeightLayer):
                if lay.is_hidden:
                    st = stats.setdefault(i, LayerStats(f"{i}:{lay.kind}"))
                    k = self._hidden(i, lay, k, states.get(i), noise, st, start)
                else:
                    bias = lay.n_b * (1 << lay.in_grid.bits)  # type: ignore[operator,union-attr]
                    w2 = lay.n_w.reshape(lay.n_w.shape[0], -1)  # type: ignore[union-attr]
                    acc = exact_matmul(k.reshape(k.shape[0], -1), w2.T) + bias
                    logits = acc.astype(np.float64) * (
                        lay.w_grid.unit * lay.in_grid.step  # type: ignore[union-attr]
                    )
                    k = acc
            elif isinstance(lay, PoolLayer):
                k = _pool(lay, k, integer=True)
            elif isinstance(lay, FlattenLayer):
                k = k.reshape(k.shape[0], -1)
        assert logits is not None
        return logits

    def _hidden(
        self,
        i: int,
        lay: WeightLayer,
        k: np.ndarray,
        st: LayerState | None,
        noise: ReadNoise | np.random.Generator,
        stats: LayerStats,
        start: int = 0,
    ) -> np.ndarray:
        n = k.shape[0]
        lm = self._by_index[i]

        def unroll(a: np.ndarray) -> np.ndarray:
            if lay.kind == "conv2d":
                return _im2col(a, lay.kernel, lay.stride, lay.padding)[0]  # type: ignore[arg-type]
            return a.reshape(a.shape[0], -1)

        def unroll_codes(a: np.ndarray) -> np.ndarray:  # the same values, column-major
            if lay.kind == "conv2d":
                return _im2col_columns(a, lay.kernel, lay.stride, lay.padding)  # type: ignore[arg-type]
            return a.reshape(a.shape[0], -1)

        if lay.kind == "conv2d":
            ho = (k.shape[2] + 2 * lay.padding - lay.kernel) // lay.stride + 1  # type: ignore[operator]
            wo = (k.shape[3] + 2 * lay.padding - lay.kernel) // lay.stride + 1  # type: ignore[operator]
        cap = getattr(self, "_capture", None)
        if cap is not None:  # --verify-spice records what each layer saw
            cols = unroll(k)
            cap[i] = cols if i not in cap else np.concatenate([cap[i], cols])
        if self.cfg.ideal:
            y = self._ideal_layer(lm, unroll(k))
        else:
            assert st is not None
            per = ho * wo if lay.kind == "conv2d" else 1
            with single_thread():
                y = self._analog_layer(
                    lm, st, k, unroll_codes, noise, stats, _Rows(start * per, per)
                )
        stats.outputs += y.size
        stats.adc_clipped += int(np.count_nonzero(y == (1 << lm.periphery.adc_bits) - 1))
        if lay.kind == "conv2d":
            return y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
        return y

    # -- ideal mode: the mapping in exact integers ------------------------------------------
    def _ideal_layer(self, lm: LayerMap, cols: np.ndarray) -> np.ndarray:
        """Through tiles, columns, bias rows and partial sums, in integers (no hardware)."""
        n = cols.shape[0]
        acc = np.zeros((n, lm.n_out), dtype=np.int64)
        full = 1 << lm.periphery.in_bits
        for t in lm.tiles:
            lev = t.levels
            x = cols[:, t.f0 : t.f1]
            cur = exact_matmul(x, lev[t.data_rows])  # (n, cols) device-level currents
            if t.bias_rows.size:
                cur = cur + (t.bias_polarity * full) @ lev[t.bias_rows]
            for j, (o, p, q) in enumerate(t.outputs):
                diff = cur[:, p] - (cur[:, q] if q is not None else 0)
                acc[:, o] += diff // lm.level_scale
                del j
        return requantize(acc, lm.layer.scale, lm.periphery.adc_bits)

    # -- the analog path --------------------------------------------------------------------
    def _analog_layer(
        self,
        lm: LayerMap,
        st: LayerState,
        k: np.ndarray,
        unroll_codes,
        noise: ReadNoise | np.random.Generator,
        stats: LayerStats,
        rows: _Rows | None = None,
    ) -> np.ndarray:
        """One hidden layer on one chip: ``k`` are the input codes as the layer receives
        them (images for convolutions), ``unroll_codes`` turns such an array into MAC
        vectors (column-major); ``rows``: where they sit among the evaluation's vectors."""
        rows = rows or _Rows(0, 1)
        card, cfg, per = self.card, self.cfg, lm.periphery
        v_tab, u_tab, q_tab = self._drive_tables(lm)
        # the DAC and the device I-V act per input value: the unrolled input codes (one byte
        # each) are looked up block by block where the products need them (_Drive), so the
        # float drives never make a round trip through memory;
        # float32 currents: 6e-8 relative, far below an LSB (7.8e-8 A of 2e-5 A full scale)
        kc = unroll_codes(k.astype(np.uint8) if per.in_bits <= 8 else k)
        quad = any(ts.m_quad is not None for ts in st.tiles)
        # the crossbar surrogate's second-order drive s(V)·(V/v_read)² beside s(V)
        drive = _Drive(kc, u_tab, q_tab if quad else None)
        n = drive.shape[0]
        noisy = cfg.read_noise and any(ts.read_sigma is not None for ts in st.tiles)
        # read energy, exactly: V·s(V) of every input summed over every MAC vector, in fixed
        # point (per input of the layer's input map: the unrolled sums follow at the end)
        fixed, _ = _read_units(v_tab * u_tab)
        sums = np.take(fixed, k).sum(axis=0)
        stats.read_sums = sums if stats.read_sums is None else stats.read_sums + sums
        stats.vectors += n
        stats.vectors_sampled += len(range((-rows.first) % ENERGY_STRIDE, n, ENERGY_STRIDE))
        out = np.empty((n, lm.n_out), dtype=CODE_DTYPE)
        split = lm.n_row_tiles > 1 and cfg.partial_sums == "digital"
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
                    sense=not split and t.row_tile == 0 and self._sense_on(),
                )
            outs = ts_ct[0].tile.outputs
            o_idx = np.array([o for o, _, _ in outs])
            if np.array_equal(o_idx, np.arange(o_idx[0], o_idx[0] + o_idx.size)):
                o_idx = slice(int(o_idx[0]), int(o_idx[0]) + o_idx.size)  # a plain copy
            if split:
                # partial sums convert at the card's resolution unless --adc-bits says else
                b_ps = self.psum_bits()
                total = np.zeros((n, len(outs)), dtype=np.int64)
                for rt, ts in enumerate(ts_ct):
                    v_out, _ = self._group_voltages(
                        st, ct, [ts], drive, noisy, noise, self.psum_r_t(lm), True, stats,
                        rows=rows, key=(lm.index, ct, rt + 1),
                    )  # fmt: skip
                    c = self._adc_codes(
                        st, ct, rt, v_out, b_ps, True, None, stats, hist, row0=rows.first
                    )
                    total += c
                    stats.count("digital", card.digital.e_add_j, c.size)
                total -= len(ts_ct) << (b_ps - 1)  # offset binary: each code less half scale
                shift = per.adc_bits + 1 - b_ps
                y = _round_scaled(total, cfg.psum_range * 2.0**shift)
                np.clip(y, 0, (1 << per.adc_bits) - 1, out=y)
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
                    skip = self._skip_from_current(lm, st, i_sense, g_n[-1], th)
                y = self._adc_codes(st, ct, -1, v_out, b, False, skip, stats, hist, row0=rows.first)
                if b != per.adc_bits:  # re-express b-bit codes on the output grid
                    sh = per.adc_bits - b
                    y = (y << sh) if sh > 0 else np.floor(y * 2.0**sh + 0.5).astype(np.int64)
                    y = np.minimum(y, (1 << per.adc_bits) - 1)
            if isinstance(o_idx, slice) and o_idx == slice(0, lm.n_out):
                out = y  # one column tile holds every output, in order
            else:
                out[:, o_idx] = y
            stats.count("digital", card.digital.e_activation_j, y.size)
        for bits, counts in hist.items():
            stats.adc_counts[bits] = (
                stats.adc_counts[bits] + counts if bits in stats.adc_counts else counts
            )
        return out

    def finish_energy(self, chip: list[LayerState] | None, stats: dict[int, LayerStats]) -> None:
        """Turn the exact tallies of one chip's batches (merged) into energies (J).

        Events times their energies, the read energy from the summed ``V·s(V)`` of every
        input and the tiles' conductances, the ADC energy from the (skip, code) histogram
        of every 8th vector, scaled to every vector. The tallies are cleared."""
        states = {s.lmap.index: s for s in chip} if chip is not None else {}
        t_read = self.card.tia.t_read_s
        for i, s in stats.items():
            for (part, joules), events in sorted(s.tally.items()):
                s.energy_j[part] += joules * events
            st = states.get(i)
            if s.read_sums is not None and st is not None:
                v_tab, u_tab, _ = self._drive_tables(st.lmap)
                _, scale = _read_units(v_tab * u_tab)
                vu = _window_sums(st.lmap.layer, s.read_sums / scale)
                for ts in st.tiles:
                    t = ts.tile
                    read = float(vu[t.f0 : t.f1] @ ts.row_g_sum[t.data_rows])
                    s.energy_j["crossbar_read"] += read * t_read
            if s.vectors_sampled:
                ratio = s.vectors / s.vectors_sampled
                for bits, counts in sorted(s.adc_counts.items()):
                    s.energy_j["adc"] += self._adc_energy(bits, counts * ratio)
            s.tally, s.read_sums, s.adc_counts = {}, None, {}

    def _fold(
        self, st: LayerState, ct: int, group, r_t: float, offset_binary: bool, d: int = 1
    ) -> _Folded:
        """Fold TIAs and subtractors into the crossbar transfer of a conversion group.

        Inside their linear ranges every stage is affine with coefficients fixed per chip
        (gains depend on each column's Norton conductance, offsets are drawn per
        instance), so ``V_out = s(V) @ W + c`` per output — one matrix product per tile.
        Every weight matrix (float32) has a row per data row and drive term (``d`` = 2: the
        second-order drive's rows interleaved, as :class:`_Drive` lays its blocks out).
        ``W`` holds the outputs; ``W_x`` the sense-line current (for conversions that may
        skip) and, when some input the DAC can apply would take a pair's TIA near its
        rails, a bound on the single-ended TIA voltages of every pair column: with inputs
        ``≥ 0``, ``Σ_i u_i·max_j |W_pc,ij|`` is at least every pair column's distance from
        mid-range, so only the vectors whose bound reaches the rails have their pair
        columns computed (``W_pc``), and the exact loop solve takes over where a pair's TIA
        is near a rail. A subtractor output in its rails is checked per vector only where
        the rails lie inside the ADC's input range (elsewhere it converts like the linear
        value). Also returned: per tile the read-noise fold ``S``, the constants, and the
        rail limits.
        """
        key = (ct, tuple(ts.tile.row_tile for ts in group), round(r_t, 9), offset_binary, d)
        cache = st.__dict__.setdefault("_folds", {})
        if key in cache:
            return cache[key]
        card, cfg = self.card, self.cfg
        outs = group[0].tile.outputs
        n_lines = group[0].m_eff.shape[1]
        g_n = np.sum([ts.g_norton for ts in group], axis=0)
        offs = group[0].tia_offset_v
        gn_sub = card.subtractor.gain_v_per_v
        coeffs = st.sub_coeffs[ct]
        vref_half = card.adc.v_ref_v / 2 if offset_binary else 0.0
        pair_cols = [c for _, p, q in outs if q is not None for c in (p, q)]
        n_out, n_pc = len(outs), len(pair_cols)
        f = np.zeros((n_lines, n_out + 1 + n_pc))
        const = np.zeros(n_out + 1 + n_pc)
        tia_p = TiaModel(r_t / gn_sub, self.tia.opamp)
        tia_u = TiaModel(r_t, self.tia.opamp)

        def lin(tia, col, r_f):
            if cfg.periphery:
                return tia.linear(g_n[col], offs[col])
            return r_f, 0.0

        for k, (_, p, q) in enumerate(outs):
            if q is None:  # offset binary: the ADC samples it against V_ref/2
                f[p, k], const[k] = lin(tia_u, p, r_t)
                const[k] += vref_half
                continue
            g_p, o_p = lin(tia_p, p, r_t / gn_sub)
            g_q, o_q = lin(tia_p, q, r_t / gn_sub)
            a_p, a_n, c, k_ref = coeffs[k]
            f[p, k] = a_p * g_p
            f[q, k] = -a_n * g_q
            const[k] = a_p * o_p - a_n * o_q + c + k_ref * vref_half
        if card.sense_row.enabled:
            f[n_lines - 1, n_out] = 1.0  # raw sense-line current
        for j, col in enumerate(pair_cols):
            f[col, n_out + 1 + j], const[n_out + 1 + j] = lin(tia_p, col, r_t / gn_sub)
        o = self.tia.opamp
        v_lo, v_hi = o.v_out_min_v + 0.05, o.v_out_max_v - 0.05
        # the sense line is read where the conversion may skip (not for partial sums)
        sense = card.sense_row.enabled and not offset_binary
        tiles_parts, ss = [], []
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
        # the pair TIAs' rails need a check per vector only where some input can reach them:
        # the largest distance from mid-range over every input the DAC can apply
        check = n_pc > 0 and cfg.periphery
        if check:
            hi, lo = c_pair.copy(), c_pair.copy()
            for parts in tiles_parts:
                for p, (d_lo, d_hi) in zip(parts, self._drive_range(st.lmap), strict=False):
                    w = p[:, n_out + 1 :]
                    hi += np.maximum(w * d_lo, w * d_hi).sum(axis=0)
                    lo += np.minimum(w * d_lo, w * d_hi).sum(axis=0)
            check = bool(np.max(np.maximum(hi, -lo)) >= 0.5 * (v_hi - v_lo) * (1 - 1e-4))
        # a subtractor output in its rails converts like the linear value wherever the rails
        # lie outside the ADC's input range [0, V_ref] (the top or the zero code either way);
        # otherwise the outputs themselves are checked per vector
        o_sub = self.sub.opamp
        s_lo, s_hi = o_sub.v_out_min_v + 0.05, o_sub.v_out_max_v - 0.05
        pair_out = np.array([q is not None for _, _, q in outs])
        sub_check = (
            cfg.periphery and bool(pair_out.any()) and not (s_lo < 0 < card.adc.v_ref_v < s_hi)
        )
        ws, wx, wpc = [], [], []
        for parts in tiles_parts:
            ws.append(_interleave([p[:, :n_out] for p in parts]))
            # the extra columns: the sense line, and the bound (per drive term, the largest
            # pair-column weight)
            extra = [
                ([p[:, n_out]] if sense else [])
                + ([np.abs(p[:, n_out + 1 :]).max(axis=1)] if check else [])
                for p in parts
            ]
            wx.append(_interleave([np.stack(e, axis=1) for e in extra]) if extra[0] else None)
            wpc.append(_interleave([p[:, n_out + 1 :] for p in parts]) if check else None)
        c_pair = const[n_out + 1 :] - 0.5 * (v_hi + v_lo)
        folded = _Folded(
            ws,
            wx,
            wpc,
            ss,
            const,
            bias_noise,
            n_out,
            n_pc,
            (v_lo, v_hi),
            c_pair if check else None,
            sense,
            (s_lo, s_hi) if sub_check else None,
            pair_out,
        )
        cache[key] = folded
        return folded

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
        drive: _Drive,
        noisy: bool,
        noise: ReadNoise | np.random.Generator | None,
        r_t: float,
        offset_binary: bool,
        stats: LayerStats,
        rows: _Rows | None = None,
        key: tuple[int, int, int] = (0, 0, 0),
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Voltages the ADCs sample (float32, V) for a group of row tiles converted
        together, and the sense-line current (A; None for partial sums, which never skip):
        the folded affine path, and the exact loop solve for the input vectors that drive a
        pair's TIA near its rails. ``noisy``: draw the read noise, from ``noise`` (a
        :class:`ReadNoise`: the group's ``key`` (layer, column tile, row tile + 1; 0 for
        every row tile together) and each block's place among the evaluation's vectors,
        ``rows``, pick the draws).

        The vectors go through in the group's blocks (:func:`_block_rows`), counted from
        ``rows.first``: a block the batch only partly covers is computed whole, its other
        rows at zero drive, so that every product has the same rows whatever the batch."""
        fo = self._fold(st, ct, group, r_t, offset_binary, drive.d)
        n_out = fo.n_out
        n = drive.shape[0]
        rows = rows or _Rows(0, 1)
        noisy = noisy and any(s2 is not None for s2 in fo.ss)
        step = _block_rows(n_out, rows.per_sample)
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
        if check:
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
                np.add(
                    extra[at : at + r1 - r0, 0], fo.const[n_out], out=i_sense[r0:r1],
                    dtype=np.float64,
                )  # fmt: skip
            hits = []
            if check:
                cand = np.nonzero(extra[:, -1] > lim)[0] if drive.nonneg else None
                if cand is None or cand.size:
                    dist = None
                    for ub, wpc in zip(blocks, fo.wpc, strict=True):
                        pd = (ub if cand is None else ub[cand]) @ wpc
                        dist = pd if dist is None else dist + pd
                    dist += c_pair
                    worst = np.abs(dist, out=dist).max(axis=1)
                    hit = np.nonzero(worst > half)[0]
                    hits.append(hit if cand is None else cand[hit])
            if fo.sub_limits is not None:
                po = vo[:, fo.pair_out]
                hits.append(
                    np.nonzero(((po < fo.sub_limits[0]) | (po > fo.sub_limits[1])).any(1))[0]
                )
            hit = np.unique(np.concatenate(hits)) if len(hits) > 1 else (hits or [None])[0]
            if hit is not None and not whole:  # the batch's rows of the block only
                hit = hit[(hit >= at) & (hit < at + r1 - r0)]
            if hit is not None and hit.size:
                risky_at.append(hit - at + r0)
                if var is not None:
                    risky_var.append(var[hit])
        stats.tia_reads += (n_out + fo.n_pc) * n
        risky = np.concatenate(risky_at) if risky_at else np.zeros(0, dtype=np.int64)
        var = np.concatenate(risky_var) if risky_var else None
        if risky.size:
            cur = None
            for ts in group:
                t = ts.tile
                m_tia, bias_tia = ts.tia_transfer()
                uu = drive.values(risky, t.f0, t.f1)
                part = uu[..., 0] @ m_tia[t.data_rows]
                if ts.m_quad is not None and drive.d == 2:
                    part += uu[..., 1] @ ts.m_quad[t.data_rows]
                part += bias_tia
                cur = part if cur is None else cur + part
            g_n = np.sum([ts.g_norton for ts in group], axis=0)
            exact = self._analog_out(
                st, ct, cur, g_n, group[0].tia_offset_v, r_t, offset_binary, stats, group[0]
            )
            if var is not None:  # keep the same read-noise draw, in output units
                exact += var
            v_out[risky] = exact
        return v_out, i_sense

    def psum_bits(self) -> int:
        """Resolution of partial-sum conversions: the card's, unless --adc-bits says else."""
        return self.cfg.adc_bits if self.cfg.adc_bits is not None else self.card.adc.bits

    def psum_r_t(self, lm: LayerMap) -> float:
        """Transimpedance of a partial-sum conversion: ``±psum_range·hi`` spans the ADC."""
        return lm.periphery.r_t_ohm / (2.0 * self.cfg.psum_range)

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
            tuple(ts.tile.row_tile for ts in group),
            group[0].tile.col_tile,
            round(r_t, 9),
            bits,
        )
        cache = st.__dict__.setdefault("_folds", {})
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
        counts of those conversions (per resolution; :meth:`finish_energy` turns them into
        energy); without it the energy is added to ``stats`` at once."""
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

    def _adc_energy(self, bits: int, counts: np.ndarray) -> float:
        """Total energy (J) of conversions at ``bits`` from their (skip, code) histogram
        (index ``skip·2**bits + code``): the fitted per-conversion energy of every distinct
        pair, weighted by how often it occurs."""
        nz = np.nonzero(counts)[0]
        if nz.size == 0:
            return 0.0
        e = self._adc_by_bits[bits].energy_per_conversion_j(nz >> bits, nz & ((1 << bits) - 1))
        return float(np.sum(np.asarray(e) * counts[nz]))

    def _energy_tile(
        self,
        ts,
        n: int,
        stats: LayerStats,
        periphery: bool = True,
        sense: bool = True,
    ) -> None:
        """Tally the energy of ``n`` MAC operations on one tile (bias-row reads, DAC, TIA,
        subtractor, sense); the data rows' read energy follows from the layer's summed
        ``V·s(V)`` (:meth:`finish_energy`).

        ``periphery``: this tile has its own TIAs and subtractors (with analog partial sums
        only the first row tile of a column is counted: the joined bitlines share them);
        ``sense``: the sense TIA and comparators are used (a conversion that can skip)."""
        card = self.card
        t = ts.tile
        t_read = card.tia.t_read_s
        if t.bias_rows.size:
            v = card.dac.v_read_v
            drive = float(self.crossbar.drive(np.array([v]))[0])
            stats.count(
                "crossbar_read", v * drive * float(np.sum(ts.row_g_sum[t.bias_rows])) * t_read, n
            )
        stats.count("dac", card.dac.e_conv_j, n * t.data_rows.size)
        p_op = (card.opamp.v_supply_pos_v - card.opamp.v_supply_neg_v) * card.opamp.i_quiescent_a
        n_cols = sum(1 if q is None else 2 for _, _, q in t.outputs)
        n_pairs = sum(q is not None for _, _, q in t.outputs)
        if periphery:
            stats.count("tia", p_op * t_read, n * n_cols)
            stats.count("subtractor", p_op * t_read, n * n_pairs)
        if self.card.sense_row.enabled and sense:
            e_cmp = card.sense_row.c_comparator_f * card.adc.v_dd_v**2
            stats.count("sense_row", p_op * t_read + card.sense_row.max_skip_bits * e_cmp, n)


def _vectors_per_sample(layer: WeightLayer) -> int:
    """MAC vectors one sample makes in a layer: its output positions (1 for dense)."""
    if layer.kind == "conv2d":
        return math.prod(layer.out_shape[1:])
    return 1


@functools.cache
def _block_rows(n_out: int, per_sample: int) -> int:
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


@dataclass(frozen=True)
class _Rows:
    """Where a batch's MAC vectors of one layer sit among the evaluation's: the first one's
    index (first sample · vectors per sample) and the vectors per sample."""

    first: int
    per_sample: int


def _read_units(table: np.ndarray) -> tuple[np.ndarray, float]:
    """``table`` (V·s(V) per input code, V²) in fixed point: int64 values and the units per
    V² (the largest value is ``2**READ_SUM_BITS``): their sums are exact and do not depend
    on the order in which the batches add them."""
    top = float(np.max(table))
    scale = 2.0**READ_SUM_BITS / top if top > 0 else 1.0
    return np.rint(table * scale).astype(np.int64), scale


def _window_sums(layer: WeightLayer, m: np.ndarray) -> np.ndarray:
    """``Σ_n table[x_n,i]`` per MAC input ``i`` over every MAC vector, from ``m``: the same
    sums per input of the layer's input map (``(fan_in,)`` for dense layers, ``(C, H, W)``
    for convolutions), without unrolling: input ``(c, a, b)`` of the unrolled vectors sees
    channel ``c`` at the kernel offset ``(a, b)``, so its sum is the window of the summed
    input map that the offset covers (padding reads code 0: 0 V, no read energy)."""
    if layer.kind != "conv2d":
        return np.asarray(m, dtype=np.float64).reshape(-1)
    kk, s, pad = layer.kernel, layer.stride, layer.padding
    if pad:
        m = np.pad(m, ((0, 0), (pad, pad), (pad, pad)))
    c, h, w = m.shape
    ho, wo = (h - kk) // s + 1, (w - kk) // s + 1
    out = np.empty((c, kk, kk))
    for a in range(kk):
        for b in range(kk):
            out[:, a, b] = m[:, a : a + s * ho : s, b : b + s * wo : s].sum(axis=(1, 2))
    return out.reshape(-1)


def _round_scaled(total: np.ndarray, scale: float) -> np.ndarray:
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


def _im2col_columns(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """:func:`cosim.integer_forward._im2col`'s matrix, built column-major: one strided copy
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


class _Drive:
    """The crossbar drive of unrolled input codes ``(n, fan_in)``, read through a per-code
    table of float32 values and built a block at a time where the products use it.

    Per code, the drive ``s(V)`` (V) and, when the crossbar surrogate has a second-order
    term, ``s(V)·(V/v_read)²`` (V): ``d`` values. A block of rows and inputs
    ``(rows, d·K)`` interleaves them per input (``[s(V_1), q(V_1), s(V_2), ...]``), the row
    order of the folded weights (:meth:`Engine._fold`), so one product takes both terms.
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


def _interleave(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of ``parts`` (each ``(K, C)``) interleaved into ``(len(parts)·K, C)`` float32."""
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], dtype=np.float32)
    out = np.empty((parts[0].shape[0] * len(parts), parts[0].shape[1]), dtype=np.float32)
    for i, p in enumerate(parts):
        out[i :: len(parts)] = p
    return out


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
    (:func:`_block_rows`); block ``b`` of group ``key`` = (layer, column tile, row tile + 1)
    draws its ``N(0, 1)`` values (:func:`standard_normals`, one per vector and output,
    row-major) from its own SFC64 generator. Its seed: a :class:`numpy.random.SeedSequence`
    of (seed, chip, 2, *key) gives three words ``w``; the block's are
    ``splitmix64(w + b·φ)`` (``φ`` the 64-bit golden ratio), set the way NumPy seeds SFC64
    (counter 1, 12 outputs discarded). Setting the state costs 2 µs where a SeedSequence per
    block would cost 20 µs. Shared by threads: each keeps its own generator object.
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


@dataclass
class _Folded:
    """A conversion group's folded affine path (:meth:`Engine._fold`)."""

    ws: list[np.ndarray]  # per tile (d·K, n_out) float32: the outputs
    wx: list[np.ndarray | None]  # per tile (d·K, ≤ 2) float32: [sense line], [bound]
    wpc: list[np.ndarray | None]  # per tile (d·K, n_pc) float32: pair columns' TIA voltages
    ss: list[np.ndarray | None]  # per tile (K, n_out) float32: read-noise variance fold
    const: np.ndarray  # (n_out + 1 + n_pc,) constants (V; A for the sense line)
    bias_noise: np.ndarray  # (n_out,) read-noise variance of the bias rows (V²)
    n_out: int
    n_pc: int
    limits: tuple[float, float]  # the pair TIAs' linear range (V)
    c_pair: np.ndarray | None  # (n_pc,) pair constants less mid-range; None: no check
    sense: bool  # wx holds the sense-line current first
    sub_limits: tuple[float, float] | None  # the subtractors' linear range (V); None: no check
    pair_out: np.ndarray  # (n_out,) bool: the outputs of differential pairs


def _adc_models(library: SurrogateLibrary) -> dict[int, Any]:
    """ADC surrogates by resolution from the library (the nominal at the card's bits)."""
    from cosim.surrogates import adc as adcmod

    out: dict[int, Any] = {}
    extra = library.extras.get("sar_adc", {})
    if hasattr(adcmod, "models_by_bits") and "by_bits" in extra:
        out.update(adcmod.models_by_bits(extra))
    nominal = library.block("sar_adc")
    out.setdefault(int(nominal.bits), nominal)
    return out
