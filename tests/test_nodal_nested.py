"""The nested-dissection transfer equals the block elimination and sparse LU (issue 14).

Both fast paths are exact eliminations of the same SPD nodal system, so the stated bound
is rounding: every entry of ``m`` within ``1e-9`` of its column's full-scale transfer
``Σ_i m[i, k]`` (a column-current error of at most 1e-9 of the column's full-scale current
for any input in ``[0, v_read]``: ~3e-7 LSB of the default card's 8-bit ADC), and ``y``
within ``1e-9`` of its largest diagonal entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.nodal import NESTED_MIN, CrossbarNetwork, transfer_nested

BOUND = 1e-9
G_MIN, G_MAX = 0.1e-6, 25e-6


def _check(m, y, m_ref, y_ref):
    full_scale = m_ref.sum(axis=0)  # per volt on every row
    assert np.all(np.abs(m - m_ref) <= BOUND * full_scale[None, :])
    assert np.max(np.abs(y - y_ref)) <= BOUND * np.max(np.diagonal(y_ref))


def _tile(kind, rows, n_lines, seed):
    rng = np.random.default_rng(seed)
    if kind == "gmax":  # the worst IR drop: every device at g_max
        return np.full((rows, n_lines), G_MAX)
    if kind == "sparse":  # mostly g_min, a few devices on, some exactly 0 (off, clipped)
        g = np.where(rng.random((rows, n_lines)) < 0.1, G_MAX, G_MIN)
        g[rng.random((rows, n_lines)) < 0.05] = 0.0
        return g
    return rng.choice(np.linspace(G_MIN, G_MAX, 16), (rows, n_lines))


@pytest.mark.parametrize(
    ("kind", "rows", "n_lines", "sense", "r_wl", "r_bl", "r_drv"),
    [
        ("levels", 1, 1, False, 1.0, 1.0, 100.0),
        ("levels", 3, 2, True, 1.0, 1.0, 100.0),
        ("levels", 12, 9, False, 2.5, 0.5, 100.0),
        ("gmax", 33, 65, True, 1.0, 1.0, 100.0),
        ("sparse", 40, 23, True, 1.0, 1.0, 100.0),
        ("levels", 24, 24, True, 1.0, 1.0, 0.0),
    ],
)
def test_nested_equals_sparse_lu(kind, rows, n_lines, sense, r_wl, r_bl, r_drv):
    g = _tile(kind, rows, n_lines, rows * 31 + n_lines)
    net = CrossbarNetwork(g, r_wl, r_bl, r_drv, sense_first=sense)
    m, y = net.transfer_full(method="nested")
    m_ref, gn_ref = net.transfer_sparse()
    _, y_blk = net.transfer_full(method="blocks")
    _check(m, y, m_ref, y_blk)
    # the Norton conductances against the sparse solve (their own cancellation: see
    # test_nodal's block-elimination test)
    rtol_gn = max(BOUND, 100 * np.finfo(float).eps * net.gb / gn_ref.min())
    np.testing.assert_allclose(np.diagonal(y), gn_ref, rtol=rtol_gn, atol=0)
    np.testing.assert_allclose(y, y.T, rtol=0, atol=BOUND * np.max(np.diagonal(y)))


@pytest.mark.parametrize("kind", ["gmax", "levels"])
def test_nested_equals_blocks_large(kind):
    """A tile past the switch-over, where IR drop is strong (all g_max: the far bitline
    end loses a large fraction of its current), against the row-by-row elimination."""
    rows, n_lines = 130, 129
    assert rows * n_lines >= NESTED_MIN
    g = _tile(kind, rows, n_lines, 7)
    net = CrossbarNetwork(g, 1.0, 1.0, 100.0, sense_first=True)
    m, y = net.transfer_full()  # auto: nested at this size
    m_ref, y_ref = net.transfer_full(method="blocks")
    _check(m, y, m_ref, y_ref)
    if kind == "gmax":  # the comparison is not of two near-ideal arrays
        assert np.min(m.sum(axis=0) / g.sum(axis=0)) < 0.7


def test_nested_stack_is_per_tile():
    """A stack of tiles gives each tile's own transfer (nothing leaks between tiles)."""
    gs = np.stack([_tile("levels", 10, 7, s) for s in range(3)])
    m, y = transfer_nested(gs, 1.0, 1.0, 0.01)
    for k in range(3):
        m1, y1 = transfer_nested(gs[k : k + 1], 1.0, 1.0, 0.01)
        np.testing.assert_array_equal(m[k], m1[0])
        np.testing.assert_array_equal(y[k], y1[0])


def test_nested_results_survive_later_transfers():
    """The transfer reuses per-thread memory between calls (its arenas): what it returned
    must not be part of it, and threads must not share it."""
    from concurrent.futures import ThreadPoolExecutor

    gs = [_tile("levels", 40, 33, s)[None] for s in range(4)]
    first = transfer_nested(gs[0], 1.0, 1.0, 0.01)
    kept = [a.copy() for a in first]
    serial = [transfer_nested(g, 1.0, 1.0, 0.01) for g in gs]
    for a, b in zip(first, kept, strict=True):
        np.testing.assert_array_equal(a, b)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda g: transfer_nested(g, 1.0, 1.0, 0.01), gs * 3))
    for (m, y), (m_ref, y_ref) in zip(threaded, serial * 3, strict=True):
        # (rounding may differ with BLAS threads; shared memory would not be close at all)
        np.testing.assert_allclose(m, m_ref, rtol=1e-12, atol=0)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=0)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown transfer method"):
        CrossbarNetwork(np.full((2, 2), 1e-5), 1.0, 1.0, 1.0).transfer_full(method="lu")


@pytest.mark.ngspice
def test_96_tile_against_ngspice(tmp_path):
    """A 96×96 tile with its sense line (ohmic devices on the card's levels, one column at
    g_max) in ngspice against ``V @ m`` from both transfers, on held-out input vectors: the
    error in LSB of the default card's 8-bit ADC (TIA 50 kΩ, V_ref 1 V: 78 nA of column
    current) must be below 0.001 LSB for both (they are exact; what is left is ngspice's
    12-digit netlist numbers and its convergence stop). Both methods are asked for by name
    (``auto`` takes the row-by-row one below 128×128 devices); the 128×128 check, ~100 s of
    ngspice, is
    ``python benchmarks/tiles.py --spice 128`` (result in benchmarks/results/tiles.json)."""
    from cosim.card import load_card
    from cosim.circuits import crossbar_params, device_model
    from cosim.spice import SpiceJob, SpiceRunner
    from netlists.crossbar import column_currents, crossbar_netlist, crossbar_vectors

    card = load_card()
    dev = device_model(card.with_updates({"device": {"technology": "ideal"}}))
    rows = cols = 96
    p = crossbar_params(card, rows, cols, sense=True)
    rng = np.random.default_rng(128)
    g = dev.level_conductance(rng.integers(0, dev.n_levels, (rows, cols)))
    g[:, 0] = dev.g_max_s
    v_fs = card.dac.v_read_v
    v = np.stack(
        [
            rng.uniform(0, v_fs, rows),
            np.where(rng.random(rows) < 0.7, 0.0, rng.uniform(0, v_fs, rows)),
        ]
    )
    job = SpiceJob(crossbar_netlist(p, dev, g, v), crossbar_vectors(p), timeout_s=300)
    with SpiceRunner(jobs=1, cache_dir=tmp_path) as runner:
        (res,) = runner.run([job], desc="96x96 crossbar")
    i_spice = column_currents(res, p, v.shape[0])
    lsb_a = card.adc.v_ref_v / 2**card.adc.bits / card.tia.r_feedback_ohm
    net = CrossbarNetwork(
        p.with_g_matrix(g), p.r_wire_wl_ohm, p.r_wire_bl_ohm, p.r_driver_ohm, sense_first=True
    )
    for method in ("blocks", "nested"):
        m, _ = net.transfer_full(method=method)
        err_lsb = np.max(np.abs(v @ m - i_spice)) / lsb_a
        assert err_lsb < 1e-3, (method, err_lsb)
    # IR drop at this size is hundreds of LSB: the comparison is not of two ideal arrays
    ideal = v @ p.with_g_matrix(g)
    assert np.max(np.abs(ideal - i_spice)) / lsb_a > 100  # measured: 525 LSB
