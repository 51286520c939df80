"""Mapping a trained network onto crossbar tiles of the card's size.

For every hidden weight layer (dense, or conv unrolled by im2col, fan-in ``F`` in
``(C, kh, kw)`` order) the mapping decides:

* **rows**: each tile has ``rows`` wordlines; the bias rows sit in the first row tile and the
  rest carry consecutive chunks of the fan-in. Inputs are DAC voltages on the layer's input
  grid, ``V = k·v_read/2**bits_in``.
* **bias rows**: a bias ``n_b`` (units of ``u·hi_in``) is ``n_b·s`` device levels at the DAC's
  full scale ``v_read``, split over as many rows as needed (each device holds at most
  ``2**level_bits − 1`` levels). Bipolar filters use the differential pair on rows driven
  normally (at ``−v_read``); unipolar filters realise a negative bias on *inverted* bias rows,
  driven at ``+v_read``, whose current flows the other way.
* **columns**: a bipolar filter takes a differential pair ``(p, n)`` (weight level ``n`` →
  ``s·max(n, 0)`` on ``p`` and ``s·max(−n, 0)`` on ``n``); a unipolar filter one column.
  Pairs are never split across column tiles.
* **level scale** ``s = ⌊(2**level_bits − 1)/(2**w_bits − 1)⌋`` device levels per weight unit,
  so a low-precision weight uses the device's whole conductance range on its own grid.
* **transimpedance** ``R_t`` that maps the output grid's full scale ``hi_out`` onto the ADC's
  ``V_ref``: one value for every hidden layer of a globally quantized model (the shared
  periphery), one per layer otherwise.
* **signed operands**: a hidden layer whose output is the signed operand of a residual Add
  (:class:`cosim.model.AddLayer` with ``pair``) holds ``[W; -W]`` and ``[b; -b]`` in the
  model file. Only ``W`` is programmed (``C`` differential pairs, not ``2 C``), and the
  layer map is marked :attr:`LayerMap.signed`: the chip reads the signed ``z`` of each pair
  once, as an offset-binary conversion around half scale (the way a digital partial sum is
  read), and the digital side splits the signed code into the model's two halves
  ``(relu(z), relu(-z))``. The same devices give both halves, as in the model's arithmetic.
  The signed read needs one ADC bit more than the output grid; on a card whose ADC has no
  bit to spare (``a`` bits = ``adc.bits``) both halves are programmed as ``2 C`` filters,
  each converted unsigned.

A model whose precisions the card cannot hold is refused with an error naming both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from cosim.card import Card
from cosim.errors import CosimError
from cosim.model import AddLayer, Model, WeightLayer
from cosim.model.forward import exact_matmul
from cosim.quant import requantize


class MappingError(CosimError, ValueError):
    """The model cannot be mapped onto the card (bits, ranges, sizes)."""


@dataclass(frozen=True)
class Periphery:
    """Periphery settings of one layer (identical for every hidden layer when shared)."""

    r_t_ohm: float  # transimpedance of the column TIAs
    adc_bits: int  # conversion resolution = output grid bits
    in_bits: int  # DAC resolution of this layer's inputs
    v_read_v: float
    v_ref_v: float

    @property
    def v_in_lsb(self) -> float:
        return self.v_read_v / 2**self.in_bits


class TileOutput(NamedTuple):
    """Where one filter's output sits on a tile (immutable; ``o, p, n = out`` unpacks it)."""

    output: int  # the filter (output channel) of the layer
    pos: int  # physical column of its positive device (a unipolar filter's only column)
    neg: int | None  # physical column of its negative device; None for a unipolar filter


@dataclass
class Tile:
    """One crossbar tile: target device levels and what each row and column carries."""

    row_tile: int
    col_tile: int
    levels: np.ndarray  # (rows, cols) int device levels (0 = g_min)
    data_rows: np.ndarray  # physical row of each fan-in index in [f0, f1)
    f0: int
    f1: int
    bias_rows: np.ndarray  # physical rows that are bias rows
    bias_polarity: np.ndarray  # +1 normal (adds current), -1 inverted
    outputs: tuple[TileOutput, ...]  # every filter on the tile, in column order

    @property
    def n_rows_used(self) -> int:
        return int(self.data_rows.size + self.bias_rows.size)


@dataclass
class LayerMap:
    """How one hidden weight layer sits on tiles."""

    index: int
    layer: WeightLayer
    fan_in: int
    n_out: int
    level_scale: int
    periphery: Periphery
    n_bias_normal: int
    n_bias_inverted: int
    row_chunks: list[tuple[int, int]]
    tiles: list[Tile] = field(default_factory=list)
    #: the signed operand of a residual Add: ``layer`` is the model layer's first half
    #: (``W``), read as signed codes; the engine gives ``(relu, relu of the negation)``
    signed: bool = False

    @property
    def n_row_tiles(self) -> int:
        return len(self.row_chunks)

    @property
    def n_col_tiles(self) -> int:
        return 1 + max(t.col_tile for t in self.tiles)

    @property
    def unipolar(self) -> np.ndarray:
        return np.asarray(self.layer.unipolar, dtype=bool)


def transimpedance(card: Card, layer: WeightLayer, level_scale: int) -> float:
    """``R_t`` (ohm) mapping the layer's output full scale onto the ADC reference.

    The differential current of an accumulator ``acc`` is ``acc·s·g_step·v_read/2**bits_in``
    and ``y = acc·u·step_in``; full scale ``y = hi_out`` must give ``V_ref``.
    """
    g_step = (card.device.g_max_s - card.device.g_min_s) / (2**card.device.level_bits - 1)
    # a quantized hidden layer (check_model)
    assert layer.w_grid is not None and layer.in_grid is not None
    assert layer.out_grid is not None
    u = layer.w_grid.unit
    hi_in = layer.in_grid.hi
    hi_out = layer.out_grid.hi
    return card.adc.v_ref_v * u * hi_in / (level_scale * g_step * card.dac.v_read_v * hi_out)


def check_model(model: Model, card: Card) -> None:
    """Refuse models the card cannot run, with an error that names what to change."""
    if not model.quantized:
        raise MappingError(
            f"the model was trained with scheme '{model.scheme}': it has no quantization grid "
            "to map onto device levels and ADC codes; train with --scheme global, per-layer "
            "or fixed"
        )
    for i, lay in enumerate(model.hidden_layers):
        # load_model gives every layer of a quantized model its grids, hidden ones out_grid
        assert lay.w_grid is not None and lay.in_grid is not None
        assert lay.out_grid is not None
        wb = lay.w_grid.bits
        ab = lay.out_grid.bits
        ib = lay.in_grid.bits
        if wb > card.device.level_bits:
            raise MappingError(
                f"hidden layer {i} has {wb}-bit weights but the card's {card.device.technology} "
                f"device holds {card.device.level_bits}-bit levels ({2**card.device.level_bits}); "
                f"use a card with device.level_bits >= {wb} or retrain with --w-bits "
                f"{card.device.level_bits}"
            )
        if ab > card.adc.bits:
            raise MappingError(
                f"hidden layer {i} has {ab}-bit activations but the card's ADC has "
                f"{card.adc.bits} bits; use a card with adc.bits >= {ab} or retrain with "
                f"--a-bits {card.adc.bits}"
            )
        if ib > card.dac.bits:
            raise MappingError(
                f"hidden layer {i} takes {ib}-bit inputs but the card's DAC has {card.dac.bits} "
                f"bits; use a card with dac.bits >= {ib}"
            )


def _bias_split(n: np.ndarray, per_row: int, n_rows: int) -> np.ndarray:
    """Split non-negative level totals ``n`` (per column) over ``n_rows`` rows (rows, cols)."""
    out = np.zeros((n_rows, n.size), dtype=np.int64)
    rest = n.astype(np.int64).copy()
    for r in range(n_rows):
        take = np.minimum(rest, per_row)
        out[r] = take
        rest -= take
    if np.any(rest):
        raise AssertionError("bias split left levels over")  # pragma: no cover
    return out


def map_layer(
    index: int, layer: WeightLayer, card: Card, periphery: Periphery | None = None
) -> LayerMap:
    """Tile one hidden weight layer (see the module docstring)."""
    rows, cols = card.array.rows, card.array.cols
    top = 2**card.device.level_bits - 1
    # a quantized hidden layer (check_model)
    assert layer.n_w is not None and layer.w_grid is not None
    assert layer.in_grid is not None and layer.out_grid is not None
    wb = layer.w_grid.bits
    s = top // (2**wb - 1)
    n_w = np.asarray(layer.n_w, dtype=np.int64).reshape(layer.n_w.shape[0], -1)
    n_out, fan_in = n_w.shape
    n_b = np.asarray(layer.n_b, dtype=np.int64)
    uni = np.asarray(layer.unipolar, dtype=bool)
    if np.any(n_w[uni] < 0):
        raise MappingError(f"layer {index}: a unipolar filter holds a negative weight level")
    # bias rows: normal rows carry |n_b| of bipolar filters and positive n_b of unipolar ones
    bias_lv = np.abs(n_b) * s
    need_norm = np.where(uni, np.maximum(n_b, 0), np.abs(n_b)) * s
    need_inv = np.where(uni, np.maximum(-n_b, 0), 0) * s
    n_bn = max(math.ceil(int(need_norm.max(initial=0)) / top), 0)
    n_bi = max(math.ceil(int(need_inv.max(initial=0)) / top), 0)
    # the card reserves at least array.bias_rows rows for the bias in the first row tile
    n_bn = max(n_bn, card.array.bias_rows - n_bi)
    n_bias = n_bn + n_bi
    data_first = rows - n_bias
    if data_first < 1:
        raise MappingError(
            f"layer {index}: its biases need {n_bias} bias rows, more than the card's {rows} "
            "rows; use a larger array or fewer bias bits (--b-bits)"
        )
    chunks = [(0, min(fan_in, data_first))]
    while chunks[-1][1] < fan_in:
        f0 = chunks[-1][1]
        chunks.append((f0, min(fan_in, f0 + rows)))
    # columns: pairs for bipolar filters, one column for unipolar; never split a pair
    col_of: list[tuple[int, int, int | None]] = []
    ct, c = 0, 0
    for o in range(n_out):
        width = 1 if uni[o] else 2
        if c + width > cols:
            ct, c = ct + 1, 0
        col_of.append((ct, c, None if uni[o] else c + 1))
        c += width
    n_ct = ct + 1
    per_tile: list[list[TileOutput]] = [[] for _ in range(n_ct)]
    for o, (t, p, n) in enumerate(col_of):
        per_tile[t].append(TileOutput(o, p, n))
    if periphery is None:
        periphery = Periphery(
            transimpedance(card, layer, s),
            layer.out_grid.bits,
            layer.in_grid.bits,
            card.dac.v_read_v,
            card.adc.v_ref_v,
        )
    lm = LayerMap(index, layer, fan_in, n_out, s, periphery, n_bn, n_bi, chunks)
    for rt, (f0, f1) in enumerate(chunks):
        first = rt == 0
        data_rows = np.arange(f1 - f0) + (n_bias if first else 0)
        b_rows = np.arange(n_bias) if first else np.zeros(0, dtype=np.int64)
        b_pol = (
            np.concatenate([np.ones(n_bn, np.int64), -np.ones(n_bi, np.int64)])
            if first
            else np.zeros(0, np.int64)
        )
        for t in range(n_ct):
            lev = np.zeros((rows, cols), dtype=np.int64)
            outs = tuple(per_tile[t])
            o_idx = np.array([out.output for out in outs])
            pcol = np.array([out.pos for out in outs])
            w = n_w[o_idx, f0:f1].T * s  # (chunk, n_outs_in_tile)
            lev[np.ix_(data_rows, pcol)] = np.maximum(w, 0)
            bip = np.array([out.neg is not None for out in outs], dtype=bool)
            if bip.any():
                ncol = np.array([out.neg for out in outs if out.neg is not None])
                lev[np.ix_(data_rows, ncol)] = np.maximum(-w[:, bip], 0)
            if first and n_bias:
                bl = bias_lv[o_idx]
                sign = np.sign(n_b[o_idx])
                if n_bn:
                    pos = np.where(bip, np.where(sign > 0, bl, 0), np.maximum(n_b[o_idx], 0) * s)
                    lev[np.ix_(np.arange(n_bn), pcol)] = _bias_split(pos, top, n_bn)
                    if bip.any():
                        neg = np.where(sign < 0, bl, 0)[bip]
                        lev[np.ix_(np.arange(n_bn), ncol)] = _bias_split(neg, top, n_bn)
                if n_bi:
                    inv = np.where(bip, 0, np.maximum(-n_b[o_idx], 0) * s)
                    lev[np.ix_(n_bn + np.arange(n_bi), pcol)] = _bias_split(inv, top, n_bi)
            lm.tiles.append(Tile(rt, t, lev, data_rows, f0, f1, b_rows, b_pol, outs))
    return lm


def signed_half(model: Model, index: int) -> WeightLayer | None:
    """The first half (``W``, ``b``) of hidden layer ``index`` when it is the signed operand
    of a residual Add (the next layer an :class:`~cosim.model.AddLayer` with ``pair``) and
    its second half is exactly ``[-W; -b]`` with no unipolar filter; else None (mapped as
    it is, ``2 C`` filters)."""
    lay = model.layers[index]
    nxt = model.layers[index + 1] if index + 1 < len(model.layers) else None
    if not (isinstance(lay, WeightLayer) and isinstance(nxt, AddLayer) and nxt.pair):
        return None
    if lay.n_w is None or lay.n_b is None:
        return None
    c = lay.n_w.shape[0] // 2
    n_w, n_b = np.asarray(lay.n_w), np.asarray(lay.n_b)
    mirrored = (
        lay.n_w.shape[0] == 2 * c
        and np.array_equal(n_w[c:], -n_w[:c])
        and np.array_equal(n_b[c:], -n_b[:c])
        and not np.any(lay.unipolar)
    )
    if not mirrored:
        return None
    return replace(
        lay,
        out_shape=(c, *lay.out_shape[1:]),
        unipolar=np.asarray(lay.unipolar)[:c],
        n_w=n_w[:c],
        n_b=n_b[:c],
    )


def map_model(model: Model, card: Card) -> list[LayerMap]:
    """Map every hidden layer; a globally quantized model shares one periphery setting."""
    check_model(model, card)
    hidden = [
        (i, lay)
        for i, lay in enumerate(model.layers)
        if isinstance(lay, WeightLayer) and lay.is_hidden
    ]
    maps = []
    for i, lay in hidden:
        # the signed read needs one ADC bit more than the grid (the sign); where the card's
        # ADC has none to spare, both halves are programmed, each read as an unsigned code
        assert lay.out_grid is not None  # check_model
        half = signed_half(model, i) if lay.out_grid.bits < card.adc.bits else None
        lm = map_layer(i, half if half is not None else lay, card)
        lm.signed = half is not None
        maps.append(lm)
    if model.scheme == "global" and maps:
        r = {round(m.periphery.r_t_ohm, 6) for m in maps}
        if len(r) > 1:
            raise MappingError(
                "the model claims global quantization but its hidden layers need different "
                f"transimpedances ({sorted(r)} ohm): its ranges are not shared; retrain it"
            )
    return maps


def ideal_layer(lm: LayerMap, cols: np.ndarray) -> np.ndarray:
    """The layer's output codes for unrolled input codes ``cols`` (n, fan_in) through its
    tiles, columns, bias rows and partial sums in exact integers (no hardware): ideal mode,
    bit-exact with :func:`cosim.model.forward.integer_forward`. A :attr:`~LayerMap.signed`
    layer gives the model's ``2 C`` outputs: the codes of ``acc`` and of ``-acc``."""
    n = cols.shape[0]
    acc = np.zeros((n, lm.n_out), dtype=np.int64)
    full = 1 << lm.periphery.in_bits
    for t in lm.tiles:
        lev = t.levels
        x = cols[:, t.f0 : t.f1]
        cur = exact_matmul(x, lev[t.data_rows])  # (n, cols) device-level currents
        if t.bias_rows.size:
            cur = cur + (t.bias_polarity * full) @ lev[t.bias_rows]
        for o, p, q in t.outputs:
            diff = cur[:, p] - (cur[:, q] if q is not None else 0)
            acc[:, o] += diff // lm.level_scale
    y = requantize(acc, lm.layer.scale, lm.periphery.adc_bits)
    if lm.signed:
        y = np.concatenate([y, requantize(-acc, lm.layer.scale, lm.periphery.adc_bits)], axis=1)
    return y
