"""Unipolar filters: which ones (search), and how they are driven non-negative (loss).

A unipolar filter (output column) is mapped on single devices instead of differential
pairs: its weights are ``n * u`` with ``n`` in ``[0, 2**b - 1]``. That halves the column's
devices and removes its subtractor, at a cost in accuracy. Only hidden layers (on the
crossbar) get unipolar filters; the digital classifier head stays bipolar. Biases stay
signed: a bias row is a separate, signed contribution.

Schedule over ``E`` epochs (see :func:`phases`)
    * ``[0, e_search)``: ordinary (bipolar) training (:func:`phases`: a quarter of the
      epochs; none when every filter is unipolar);
    * at ``e_search``: the search picks the filters;
    * ``[e_search, e_switch)``: the loss term
      ``L_U = lam_u(e) * sum_l sum_{f unipolar} mean_l(relu(-W_f)**2) / w_max**2`` with
      ``lam_u(e) = unipolar_penalty * 2**min(e - e_search, 6)`` -- stronger every epoch --
      progressively shifts the chosen filters' weights positive, while their forward weights
      move step by step from the bipolar to the unipolar grid:
      ``n = (1 - alpha) * n_bipolar + alpha * n_unipolar`` with ``alpha`` rising linearly
      from 0 to 1 (:func:`transition`);
    * ``[e_switch, E)``: those filters are quantized on the unipolar grid and, after every
      update, their shadow weights are projected onto ``W >= 0`` (the loss keeps acting).
      At the end every level of a unipolar filter is an integer ``0 <= n <= 2**b - 1``, so
      every deployed weight is ``>= 0`` exactly.

Search (:func:`search_unipolar`): greedy sensitivity search in rounds
    ``K = round(fraction * number of candidate filters)`` filters are chosen network-wide in
    ``rounds`` rounds. In each round every remaining filter is scored by the *measured*
    increase of the calibration loss when that filter alone is made unipolar (weights
    projected onto ``W >= 0`` and, in quantized schemes, quantized on the unipolar grid) on
    top of the filters already chosen; the ``ceil(remaining / rounds_left)`` cheapest join
    the set. Re-scoring after each round accounts for interactions between filters. Only the
    layers from the modified one onward are re-run (their inputs are cached). The candidates
    are every hidden filter (scope ``hidden``) or the convolution filters only (scope
    ``conv``, as García-Redondo et al. count their unipolar fraction; the fully connected
    hidden layers then stay bipolar).

    García-Redondo et al. choose their unipolar filters "using NAS methods" (abstract; the
    text we have does not say which); this search measures each candidate's loss increase
    instead, and makes filters all-positive only (the paper allows all-negative ones too).
"""

from __future__ import annotations

import math

import numpy as np

from cosim.train.layers import WeightLayer, softmax_xent
from cosim.train.network import Network


def phases(epochs: int, fraction: float = 0.5) -> tuple[int, int]:
    """``(e_search, e_switch)`` for a run of ``epochs`` epochs.

    The search runs after a quarter of the epochs (it needs a trained network to measure
    sensitivities); with ``fraction`` 1 there is nothing to choose and the transition starts
    at once. The transition lasts a third of the remaining epochs.

    Examples
    --------
    >>> phases(20), phases(20, 1.0), phases(1)
    ((5, 10), (0, 7), (0, 0))
    """
    e_search = 0 if fraction >= 1.0 else epochs // 4
    e_switch = e_search + math.ceil((epochs - e_search) / 3) if epochs > 1 else 0
    return e_search, min(e_switch, max(epochs - 1, 0))


def penalty_strength(base: float, epoch: int, e_search: int) -> float:
    """``lam_u(e) = base * 2**min(e - e_search, 6)`` from the search on, 0 before."""
    return 0.0 if epoch < e_search else base * 2.0 ** min(epoch - e_search, 6)


def transition(epoch: int, step: int, steps: int, e_search: int, e_switch: int) -> float:
    """Blend ``alpha`` of unipolar levels: 0 at the search, rising linearly to 1 at the switch.

    Examples
    --------
    >>> transition(4, 50, 100, 3, 5)
    0.75
    """
    if e_switch <= e_search:
        return 1.0
    t = (epoch + step / steps - e_search) / (e_switch - e_search)
    return float(min(1.0, max(0.0, t)))


def add_unipolar_penalty(net: Network, masks: list[np.ndarray], lam: float, w_norm: float) -> float:
    """Add ``L_U`` gradients to the hidden layers' ``grads['W']``; return ``L_U``."""
    total = 0.0
    if lam <= 0:
        return total
    for lay, mask in zip(net.hidden, masks, strict=False):
        if not mask.any():
            continue
        W = lay.params["W"]
        neg = np.minimum(W[mask], 0)
        total += float(lam * np.sum(neg * neg) / (W.size * w_norm**2))
        lay.grads["W"][mask] += (2 * lam / (W.size * w_norm**2)) * neg
    return total


def project_unipolar(net: Network, masks: list[np.ndarray]) -> None:
    """Shadow weights of unipolar filters onto ``W >= 0`` (in place)."""
    for lay, mask in zip(net.hidden, masks, strict=False):
        if mask.any():
            W = lay.params["W"]
            W[mask] = np.maximum(W[mask], 0)


def _set_filter(lay: WeightLayer, f: int, on: bool, saved: np.ndarray | None) -> np.ndarray:
    """Make filter ``f`` unipolar (``on``) or restore it from ``saved``; return the old row."""
    W = lay.params["W"]
    old = W[f].copy()
    if on:
        W[f] = np.maximum(W[f], 0)
    else:
        W[f] = saved
    if lay.q.unipolar_grid is not None:
        lay.q.unipolar_grid[f] = on
    return old


def search_unipolar(
    net: Network,
    fraction: float,
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    rounds: int = 4,
    apply_grid: bool = True,
    scope: str = "hidden",
) -> list[np.ndarray]:
    """Choose ``round(fraction * candidates)`` unipolar filters (greedy, measured loss).

    The candidates are the hidden filters in ``scope`` (:meth:`Network.filters`: ``hidden``
    or ``conv``). The network's layers must have their quantizers set (``Scheme.apply`` with
    all-False unipolar grids, or float). Weights are left unchanged.

    Returns
    -------
    list of bool arrays, one per hidden layer, True for unipolar filters.
    """
    masks = [np.zeros(lay.n_out, dtype=bool) for lay in net.hidden]
    cands = net.filters(scope)
    k_total = round(fraction * len(cands))
    if k_total <= 0:
        return masks
    if k_total >= len(cands):
        for li, f in cands:
            masks[li][f] = True
        return masks
    grids = [lay.q.unipolar_grid for lay in net.hidden]
    for lay in net.hidden:
        if lay.q.quantized and apply_grid:
            lay.q.unipolar_grid = np.zeros(lay.n_out, dtype=bool)
    saved_rows: dict[tuple[int, int], np.ndarray] = {}
    layer_pos = {id(lay): i for i, lay in enumerate(net.layers)}
    try:
        chosen: set[tuple[int, int]] = set()
        for r in range(rounds):
            need = math.ceil((k_total - len(chosen)) / (rounds - r))
            if need <= 0:
                break
            inputs = net.forward_collect(x_cal)
            base = inputs[-1] * np.float32(net.head.q.acc_unit)
            base_loss, _ = softmax_xent(base, y_cal)
            scores = []
            for li, f in cands:
                if (li, f) in chosen:
                    continue
                lay = net.hidden[li]
                pos = layer_pos[id(lay)]
                old = _set_filter(lay, f, True, None)
                logits = net.forward(inputs[pos], start=pos, internal=True, collected=inputs)
                _set_filter(lay, f, False, old)
                loss, _ = softmax_xent(logits, y_cal)
                scores.append((loss - base_loss, li, f))
            scores.sort()
            for _, li, f in scores[:need]:
                saved_rows[(li, f)] = _set_filter(net.hidden[li], f, True, None)
                chosen.add((li, f))
        for li, f in chosen:
            masks[li][f] = True
    finally:
        for (li, f), row in saved_rows.items():
            _set_filter(net.hidden[li], f, False, row)
        for lay, g in zip(net.hidden, grids, strict=False):
            lay.q.unipolar_grid = g
    return masks
