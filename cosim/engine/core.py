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
   output grid's resolution, with the skip; unipolar columns subtract their ``g_min``
   leakage digitally (estimated from the input codes) after conversion;
6. partial sums over row tiles: ``digital`` (default) converts each row tile's signed sum at
   the card's ADC resolution around half scale (offset binary, half the transimpedance so a
   partial sum spans ±hi), adds the codes and re-quantizes to the Y grid; ``analog`` joins
   the row tiles' bitlines at one TIA and converts once.

Pooling, flattening and the classifier head run digitally, exactly as in
:func:`cosim.integer_forward.integer_forward`. In ideal mode the same mapping is evaluated in
exact integers and reproduces that function bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from cosim.card import Card
from cosim.engine.chip import LayerState, build_layer
from cosim.engine.config import EngineConfig
from cosim.engine.mapping import LayerMap, map_model
from cosim.errors import CosimError, DataError
from cosim.integer_forward import _im2col, _pool, exact_matmul
from cosim.library import SurrogateLibrary
from cosim.quant import requantize
from cosim.surrogates.periphery import TiaModel
from cosim.surrogates.sense_row import thresholds as sense_thresholds
from cosim.train.modelfile import FlattenLayer, Model, PoolLayer, WeightLayer
from device_models import from_card

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

    def merge(self, o: LayerStats) -> None:
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
        ):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        for k, v in o.energy_j.items():
            self.energy_j[k] += v

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

    def __init__(self, model: Model, library: SurrogateLibrary, config: EngineConfig) -> None:
        self.model = model
        self.lib = library
        self.card: Card = library.card
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
                bits = bits_final if rt < 0 else self.card.adc.bits
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
        if self.cfg.ideal or not self.cfg.adc:
            return adcmod.SarAdcModel.ideal(bits, vref)
        if self.cfg.nva > 0:
            return adcmod.comparison_level_variation(bits, vref, self.cfg.nva, rng)
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
        rng: np.random.Generator,
        stats: dict[int, LayerStats],
    ) -> np.ndarray:
        """Logits (float64) of a batch of raw samples on one chip (``None`` in ideal mode)."""
        x = self.check_input(x_raw)
        k = self.model.preprocessing.codes(x)
        states = {s.lmap.index: s for s in chip} if chip is not None else {}
        logits = None
        for i, lay in enumerate(self.model.layers):
            if isinstance(lay, WeightLayer):
                if lay.is_hidden:
                    st = stats.setdefault(i, LayerStats(f"{i}:{lay.kind}"))
                    k = self._hidden(i, lay, k, states.get(i), rng, st)
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
        rng: np.random.Generator,
        stats: LayerStats,
    ) -> np.ndarray:
        n = k.shape[0]
        if lay.kind == "conv2d":
            cols, ho, wo = _im2col(k, lay.kernel, lay.stride, lay.padding)  # type: ignore[arg-type]
        else:
            cols = k.reshape(n, -1)
        lm = self._by_index[i]
        cap = getattr(self, "_capture", None)
        if cap is not None:  # --verify-spice records what each layer saw
            cap[i] = cols if i not in cap else np.concatenate([cap[i], cols])
        if self.cfg.ideal:
            y = self._ideal_layer(lm, cols)
        else:
            assert st is not None
            with threadpool_limits(limits=1):
                y = self._analog_layer(lm, st, cols, rng, stats)
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
        cols: np.ndarray,
        rng: np.random.Generator,
        stats: LayerStats,
    ) -> np.ndarray:
        card, cfg, per = self.card, self.cfg, lm.periphery
        n = cols.shape[0]
        codes_in = np.arange(1 << per.in_bits)
        v_tab = codes_in * per.v_in_lsb
        u_tab = self.crossbar.drive(v_tab) if cfg.nonlinearity else v_tab
        u = u_tab[cols]  # (n, fan_in) effective drive
        u2 = u * u if cfg.read_noise else None
        vu = v_tab[cols] * u  # for read energy
        out = np.zeros((n, lm.n_out), dtype=np.int64)
        split = lm.n_row_tiles > 1 and cfg.partial_sums == "digital"
        for ct in range(lm.n_col_tiles):
            ts_ct = [ts for ts in st.tiles if ts.tile.col_tile == ct]
            currents = []
            for ts in ts_ct:
                t = ts.tile
                m = ts.m_eff[t.data_rows]
                cur = u[:, t.f0 : t.f1] @ m + ts.bias_current
                if ts.read_sigma is not None:
                    var = u2[:, t.f0 : t.f1] @ (ts.read_sigma[t.data_rows] ** 2) + ts.bias_var
                    cur = cur + np.sqrt(var) * rng.standard_normal(cur.shape)
                currents.append(cur)
                self._energy_tile(ts, vu[:, t.f0 : t.f1], n, stats)
            outs = ts_ct[0].tile.outputs
            o_idx = np.array([o for o, _, _ in outs])
            if split:
                total = np.zeros((n, len(outs)), dtype=np.int64)
                for rt, (ts, cur) in enumerate(zip(ts_ct, currents, strict=True)):
                    c = self._convert(
                        lm,
                        st,
                        ct,
                        rt,
                        cur,
                        ts.g_norton,
                        ts.tia_offset_v,
                        self.psum_r_t(lm),
                        card.adc.bits,
                        True,
                        None,
                        stats,
                        ts,
                    )
                    total += c - (1 << (card.adc.bits - 1))
                    stats.energy_j["digital"] += card.digital.e_add_j * c.size
                shift = per.adc_bits + 1 - card.adc.bits
                y = np.floor(total.astype(np.float64) * (cfg.psum_range * 2.0**shift) + 0.5)
                y = np.clip(y, 0, (1 << per.adc_bits) - 1).astype(np.int64)
            else:
                cur = currents[0] if len(currents) == 1 else np.sum(currents, axis=0)
                g_n = np.sum([ts.g_norton for ts in ts_ct], axis=0)
                offs = ts_ct[0].tia_offset_v
                b = self._conv_bits(lm)
                skip = self._skip(lm, st, cur, g_n, offs, b) if self._sense_on() else None
                y = self._convert(
                    lm, st, ct, -1, cur, g_n, offs, per.r_t_ohm, b, False, skip, stats, ts_ct[0]
                )
                y = self._leak_correct(lm, ts_ct, cols, y, b)
                if b != per.adc_bits:  # re-express b-bit codes on the output grid
                    sh = per.adc_bits - b
                    y = (y << sh) if sh > 0 else np.floor(y * 2.0**sh + 0.5).astype(np.int64)
            out[:, o_idx] = y
            stats.energy_j["digital"] += card.digital.e_activation_j * y.size
        return out

    def psum_r_t(self, lm: LayerMap) -> float:
        """Transimpedance of a partial-sum conversion: ``±psum_range·hi`` spans the ADC."""
        return lm.periphery.r_t_ohm / (2.0 * self.cfg.psum_range)

    def _sense_on(self) -> bool:
        return self.sense is not None and self.cfg.sense_skip

    def _skip(
        self,
        lm: LayerMap,
        st: LayerState,
        cur: np.ndarray,
        g_n: np.ndarray,
        offs: np.ndarray,
        bits: int,
    ) -> np.ndarray:
        """MSB cycles each conversion may skip, from the sense line (last column)."""
        sense = self.sense
        card = self.card
        ratio = lm.periphery.r_t_ohm / card.tia.r_feedback_ohm  # keep β: scale R_s with R_t
        s_tia = TiaModel(sense.tia.r_feedback_ohm * ratio, self.tia.opamp)
        v_s = s_tia.predict(cur[:, -1], g_n[-1], st.sense_offset_v)
        th = self.sense_thresholds(bits)
        if th.size == 0:
            return np.zeros(cur.shape[0], dtype=np.int64)
        return np.sum(v_s[:, None] < th[None, :], axis=1).astype(np.int64)

    def sense_thresholds(self, bits: int) -> np.ndarray:
        """``V_th,k`` (V) for a ``bits``-bit conversion, k = 1 .. min(max_skip, bits − 1)."""
        card = self.card
        k_max = min(card.sense_row.max_skip_bits, bits - 1)
        if k_max < 1 or self.sense is None:
            return np.zeros(0)
        lsb = card.adc.v_ref_v / 2**bits
        trans = (np.arange(1, 2**bits) - 0.5) * lsb
        return sense_thresholds(
            self.sense.beta, self.sense.gamma_v, trans, bits, k_max, lsb, card.sense_row.margin_rel
        )

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
    ) -> np.ndarray:
        """Codes of the column tile's ADC instances (with the sense skips)."""
        card = self.card
        n, n_outs = v_out.shape
        adcs = st.adcs[(rt, ct)]
        codes = np.empty((n, n_outs), dtype=np.int64)
        per_adc = card.adc.columns_per_adc
        for a, adc in enumerate(adcs):
            sl = slice(a * per_adc, min((a + 1) * per_adc, n_outs))
            full = adc.convert(v_out[:, sl])
            if skip is not None:
                cap = (1 << (bits - skip)) - 1
                codes[:, sl] = np.minimum(full, cap[:, None])
                stats.bound_violations += int(np.count_nonzero(full > cap[:, None]))
                e = (
                    adc.energy_per_conversion_j(skip[:, None], codes[:, sl])
                    if hasattr(adc, "energy_per_conversion_j")
                    else 0.0
                )
            else:
                codes[:, sl] = full
                e = (
                    adc.energy_per_conversion_j(0, full)
                    if hasattr(adc, "energy_per_conversion_j")
                    else 0.0
                )
            stats.energy_j["adc"] += float(np.sum(np.broadcast_to(e, full.shape)))
        stats.conversions += codes.size
        stats.cycles += codes.size * bits
        if skip is not None:
            stats.skipped_cycles += int(np.sum(skip)) * codes.shape[1]
        if offset_binary:
            stats.psum_clipped += int(np.count_nonzero((codes == 0) | (codes == (1 << bits) - 1)))
        return codes

    def _leak_correct(
        self, lm: LayerMap, ts_ct, cols: np.ndarray, y: np.ndarray, bits: int
    ) -> np.ndarray:
        """Unipolar columns: subtract the g_min leakage, estimated digitally from the codes."""
        outs = ts_ct[0].tile.outputs
        uni = np.array([q is None for _, _, q in outs])
        if not uni.any():
            return y
        card, per = self.card, lm.periphery
        lsb = card.adc.v_ref_v / 2**bits
        k_sum = cols.sum(axis=1).astype(np.float64)  # every data row of every row tile
        bias = sum(float(np.sum(ts.tile.bias_polarity)) for ts in ts_ct) * (1 << per.in_bits)
        leak = per.r_t_ohm * card.device.g_min_s * per.v_in_lsb * (k_sum + bias) / lsb
        y = y.copy()
        y[:, uni] = np.maximum(y[:, uni] - np.floor(leak + 0.5)[:, None].astype(np.int64), 0)
        return y

    def _energy_tile(self, ts, vu: np.ndarray, n: int, stats: LayerStats) -> None:
        """Energy of ``n`` MAC operations on one tile (read, DAC, TIA, subtractor, sense)."""
        card = self.card
        t = ts.tile
        t_read = card.tia.t_read_s
        read = float(np.sum(vu @ ts.row_g_sum[t.data_rows]))
        if t.bias_rows.size:
            v = card.dac.v_read_v
            read += (
                n
                * v
                * float(self.crossbar.drive(np.array([v]))[0])
                * float(np.sum(ts.row_g_sum[t.bias_rows]))
            )
        stats.energy_j["crossbar_read"] += read * t_read
        stats.energy_j["dac"] += card.dac.e_conv_j * n * t.data_rows.size
        p_op = (card.opamp.v_supply_pos_v - card.opamp.v_supply_neg_v) * card.opamp.i_quiescent_a
        n_cols = sum(1 if q is None else 2 for _, _, q in t.outputs)
        n_pairs = sum(q is not None for _, _, q in t.outputs)
        stats.energy_j["tia"] += p_op * t_read * n * n_cols
        stats.energy_j["subtractor"] += p_op * t_read * n * n_pairs
        if self.card.sense_row.enabled:
            e_cmp = card.sense_row.c_comparator_f * card.adc.v_dd_v**2
            stats.energy_j["sense_row"] += n * (
                p_op * t_read + card.sense_row.max_skip_bits * e_cmp
            )


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
