"""Area model: component counts times the per-component areas of the hardware card.

Two periphery organisations are counted:

* **dedicated** (the traditional design, and what per-layer-quantized models need): every
  tile has its own DACs (one per used row), column TIAs, subtractors (one per differential
  pair), ADCs (one per ``columns_per_adc`` outputs) and sense row, because each layer's
  periphery is tuned to its own ranges;
* **shared** (possible because global quantization gives every hidden layer the same
  ranges): layers run one after the other on one periphery bank sized for the largest layer,
  and every tile connects to it.

Crossbar cells (including sense devices and the ``g_min`` reference line of every tile that
holds unipolar columns, one column of ``rows`` cells) and the digital periphery are counted
per tile in both. Areas come from the card (``area.device_cell_m2``, ``dac.area_m2``,
``tia.area_m2``, ``subtractor.area_m2``, ``adc.area_m2``, ``sense_row.area_m2``,
``digital.area_per_column_m2``). The reference line's current mirrors have no card figure and
are not counted, neither their area nor the energy of the copies they deliver (about the
reference current per unipolar column, ``g_min/g_max`` of a column's full scale).

Residual Adds (:class:`cosim.model.AddLayer`) add no area of their own: their adders are
counted in the digital periphery of the output columns (``digital.area_per_column_m2`` per
column; a signed operand's layer has two columns per output, more than the Add's outputs).
The buffer that holds the skip operand's activations until the Add has no card figure and
is not counted (nor are the buffers between sequential layers); the Adds' energy is
``digital.e_add_j`` per add (:meth:`cosim.engine.core.Engine.forward`).

Per-layer tuning (:func:`layer_tuning`, only when an evaluation sets
``EngineConfig.layer_tuning``): a dedicated design whose layers each have their own ranges
also needs, for every hidden layer beyond the first, its own reference levels (ADC
reference, DAC full scale): ``tia.tuning_buffers_per_layer`` op-amp buffers (area
``tia.area_m2``, quiescent power biased for the whole inference) and
``tia.tuning_dacs_per_layer`` trim DACs (area ``dac.area_m2``). The first layer's set is the
one global set a shared design has too, counted in neither.
"""

from __future__ import annotations

import math
from typing import Any

from cosim.card import Card
from cosim.engine.mapping import LayerMap


def _periphery_counts(lm: LayerMap, card: Card, partial_sums: str) -> dict[str, int]:
    dac = tia = sub = adc = sense = 0
    for t in lm.tiles:
        dac += t.n_rows_used
        if partial_sums == "analog" and t.row_tile > 0:
            continue  # joined bitlines: one set of column periphery per column tile
        n_cols = sum(1 if q is None else 2 for _, _, q in t.outputs)
        tia += n_cols
        sub += sum(q is not None for _, _, q in t.outputs)
        adc += math.ceil(len(t.outputs) / card.adc.columns_per_adc)
        sense += 1 if card.sense_row.enabled else 0
    return {"dac": dac, "tia": tia, "subtractor": sub, "adc": adc, "sense_row": sense}


def layer_tuning(n_layers: int, card: Card) -> dict[str, Any]:
    """The per-layer tuned periphery of a dedicated design of ``n_layers`` hidden layers.

    Every layer beyond the first adds ``tia.tuning_buffers_per_layer`` reference buffers and
    ``tia.tuning_dacs_per_layer`` trim DACs (card figures, not simulated; see
    :class:`cosim.card.sections.TiaCard`).

    Returns
    -------
    dict
        ``sets`` (layers with their own set), ``buffers``, ``dacs``, ``area_m2`` (m²) and
        ``power_w`` (W: the buffers' op-amp quiescent power, drawn for the whole inference).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> t = layer_tuning(4, load_card())
    >>> t["sets"], t["buffers"], t["dacs"]
    (3, 6, 6)
    """
    sets = max(n_layers - 1, 0)
    buffers = sets * card.tia.tuning_buffers_per_layer
    dacs = sets * card.tia.tuning_dacs_per_layer
    p_op = (card.opamp.v_supply_pos_v - card.opamp.v_supply_neg_v) * card.opamp.i_quiescent_a
    return {
        "sets": sets,
        "buffers": buffers,
        "dacs": dacs,
        "area_m2": buffers * card.tia.area_m2 + dacs * card.dac.area_m2,
        "power_w": buffers * p_op,
    }


def area_breakdown(
    maps: list[LayerMap],
    card: Card,
    scheme: str,
    partial_sums: str = "digital",
    tuning: bool = False,
) -> dict[str, Any]:
    """Area per component (m²) for the model's periphery organisation, and both totals.

    With analog partial sums the row tiles of a column share its TIAs, subtractors, ADCs and
    sense row; with digital partial sums every tile has its own. ``tuning``: the dedicated
    organisation also has the per-layer tuned periphery of :func:`layer_tuning` (entry
    ``layer_tuning`` of the breakdown, and in ``total_dedicated_m2``)."""
    unit = {
        "dac": card.dac.area_m2,
        "tia": card.tia.area_m2,
        "subtractor": card.subtractor.area_m2,
        "adc": card.adc.area_m2,
        "sense_row": card.sense_row.area_m2,
    }
    sense = 1 if card.sense_row.enabled else 0
    ref_lines = sum(any(q is None for _, _, q in t.outputs) for m in maps for t in m.tiles)
    cells = (
        sum(card.array.rows * (card.array.cols + sense) for m in maps for _ in m.tiles)
        + card.array.rows * ref_lines
    )
    digital_cols = sum(m.n_out for m in maps)
    per_layer = [_periphery_counts(m, card, partial_sums) for m in maps]
    dedicated = {k: sum(c[k] for c in per_layer) for k in unit}
    shared = {k: max((c[k] for c in per_layer), default=0) for k in unit}
    common = {
        "crossbar_cells": cells * card.area.device_cell_m2,
        "digital": digital_cols * card.digital.area_per_column_m2,
    }

    def total(counts):
        return sum(counts[k] * unit[k] for k in unit) + sum(common.values())

    mode = "shared" if scheme == "global" else "dedicated"
    counts = shared if mode == "shared" else dedicated
    breakdown = {**common, **{k: counts[k] * unit[k] for k in unit}}
    extra_counts: dict[str, int] = {}
    tuned = 0.0
    if tuning:
        t = layer_tuning(len(maps), card)
        tuned = t["area_m2"]
        if mode == "dedicated":
            breakdown["layer_tuning"] = tuned
        extra_counts = {"tuning_buffers": t["buffers"], "tuning_dacs": t["dacs"]}
    return {
        "periphery": mode,
        "breakdown_m2": breakdown,
        "total_m2": sum(breakdown.values()),
        "counts": {
            **counts,
            "crossbar_cells": cells,
            "reference_lines": ref_lines,
            "tiles": sum(len(m.tiles) for m in maps),
            **extra_counts,
        },
        "total_dedicated_m2": total(dedicated) + tuned,
        "total_shared_m2": total(shared),
    }
