"""Per-layer statistics and the exact energy tallies of the engine.

A :class:`LayerStats` counts a layer's events (conversions, clipping, saturation, skipped
cycles) and tallies its energies exactly: integer counts of events of a given energy, the
read energy's ``V·s(V)`` summed in fixed point (:func:`read_units`, per input of the
layer's input map: :func:`window_sums`), the ADC's (skip, code) histogram on every 8th
vector. Integers add up the same however the samples are batched; :class:`EnergyTally`
(mixed into :class:`cosim.engine.core.Engine`) turns them into joules once per chip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.card import Card
from cosim.engine.chip import LayerState
from cosim.engine.mapping import LayerMap
from cosim.engine.results import COMPONENTS, EnergyBreakdown, LayerResult
from cosim.model import WeightLayer

ENERGY_STRIDE = 8  # ADC energy is averaged over every 8th MAC vector (of the evaluation)
#: the read energy's sums of V·s(V) are kept in fixed point: the largest value of a layer's
#: table is 2**38 units (exact integer sums for up to 2**25 samples per chip)
READ_SUM_BITS = 38


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
    psum_clipped: int = 0  # offset-binary conversions (partial sums, signed operands) at an end
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

    def summary(self, n_samples: int) -> LayerResult:
        """The layer's rates and its energy per inference over ``n_samples`` inferences
        (samples times chips)."""
        per = max(n_samples, 1)
        return LayerResult(
            layer=self.name,
            adc_clipping_rate=self.adc_clipped / max(self.outputs, 1),
            tia_saturation_rate=self.tia_saturated / max(self.tia_reads, 1),
            skipped_cycle_fraction=self.skipped_cycles / max(self.cycles, 1),
            bound_violations=self.bound_violations,
            psum_clipping_rate=self.psum_clipped / max(self.conversions, 1),
            conversions_per_inference=self.conversions / per,
            energy_per_inference_j=EnergyBreakdown(
                **{k: v / per for k, v in self.energy_j.items()}
            ),
        )


def read_units(table: np.ndarray) -> tuple[np.ndarray, float]:
    """``table`` (V·s(V) per input code, V²) in fixed point: int64 values and the units per
    V² (the largest value is ``2**READ_SUM_BITS``): their sums are exact and do not depend
    on the order in which the batches add them."""
    top = float(np.max(table))
    scale = 2.0**READ_SUM_BITS / top if top > 0 else 1.0
    return np.rint(table * scale).astype(np.int64), scale


def window_sums(layer: WeightLayer, m: np.ndarray) -> np.ndarray:
    """``Σ_n table[x_n,i]`` per MAC input ``i`` over every MAC vector, from ``m``: the same
    sums per input of the layer's input map (``(fan_in,)`` for dense layers, ``(C, H, W)``
    for convolutions), without unrolling: input ``(c, a, b)`` of the unrolled vectors sees
    channel ``c`` at the kernel offset ``(a, b)``, so its sum is the window of the summed
    input map that the offset covers (padding reads code 0: 0 V, no read energy)."""
    if layer.kind != "conv2d":
        return np.asarray(m, dtype=np.float64).reshape(-1)
    assert layer.kernel is not None  # conv2d layers have a kernel
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


def adc_override_energy_j(card: Card, bits: int, skip: np.ndarray | int = 0) -> np.ndarray:
    """Energy (J) of a ``bits``-bit conversion with ``skip`` skipped MSB cycles from the
    card's ``adc.e_conv_j`` (set, > 0): ``e_conv_j·2**(bits − adc.bits)·(bits − skip)/bits``.

    ``adc.e_conv_j`` is a full conversion at the card's ``adc.bits``; a conversion at fewer
    bits costs the same energy per conversion step (the Walden figure of merit
    ``E = FOM_W·2**bits``) and each of its ``bits`` cycles an equal share."""
    e = card.adc.e_conv_j * 2.0 ** (bits - card.adc.bits)
    k = np.asarray(skip, dtype=np.float64)
    return e * (bits - k) / bits


def event_energies(card: Card) -> dict[str, float]:
    """The energies (J) of the card's per-event figures the engine tallies: ``dac`` per
    driven data row and vector, ``tia`` per column read, ``subtractor`` per differential
    pair read, ``sense_row`` per tile and vector (its TIA and ``max_skip_bits``
    comparisons), ``opamp`` per op-amp over one read window."""
    p_op = (card.opamp.v_supply_pos_v - card.opamp.v_supply_neg_v) * card.opamp.i_quiescent_a
    e_op = p_op * card.tia.t_read_s
    e_cmp = card.sense_row.c_comparator_f * card.adc.v_dd_v**2
    return {
        "dac": card.dac.e_conv_j,
        "tia": e_op,
        "subtractor": e_op,
        "sense_row": e_op + card.sense_row.max_skip_bits * e_cmp,
        "opamp": e_op,
    }


class EnergyTally:
    """The engine's energy bookkeeping (a part of :class:`cosim.engine.core.Engine`)."""

    card: Card
    crossbar: Any
    _adc_by_bits: dict[int, Any]

    if TYPE_CHECKING:  # defined by another part of the engine

        def _drive_tables(  # FoldedPath
            self, lm: LayerMap
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

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
                _, scale = read_units(v_tab * u_tab)
                vu = window_sums(st.lmap.layer, s.read_sums / scale)
                for ts in st.tiles:
                    t = ts.tile
                    read = float(vu[t.f0 : t.f1] @ ts.row_g_sum[t.data_rows])
                    s.energy_j["crossbar_read"] += read * t_read
            if s.vectors_sampled:
                ratio = s.vectors / s.vectors_sampled
                for bits, counts in sorted(s.adc_counts.items()):
                    s.energy_j["adc"] += self._adc_energy(bits, counts * ratio)
            s.tally, s.read_sums, s.adc_counts = {}, None, {}

    def _adc_energy(self, bits: int, counts: np.ndarray) -> float:
        """Total energy (J) of conversions at ``bits`` from their (skip, code) histogram
        (index ``skip·2**bits + code``): the fitted per-conversion energy of every distinct
        pair, weighted by how often it occurs."""
        nz = np.nonzero(counts)[0]
        if nz.size == 0:
            return 0.0
        if self.card.adc.e_conv_j > 0:  # the card's figure replaces the simulated energy
            e = adc_override_energy_j(self.card, bits, nz >> bits)
            return float(np.sum(e * counts[nz]))
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
        ev = event_energies(card)
        stats.count("dac", ev["dac"], n * t.data_rows.size)
        n_cols = sum(1 if o.neg is None else 2 for o in t.outputs)
        n_pairs = sum(o.neg is not None for o in t.outputs)
        if periphery:
            stats.count("tia", ev["tia"], n * n_cols)
            stats.count("subtractor", ev["subtractor"], n * n_pairs)
        if self.card.sense_row.enabled and sense:
            stats.count("sense_row", ev["sense_row"], n)
