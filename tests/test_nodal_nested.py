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


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown transfer method"):
        CrossbarNetwork(np.full((2, 2), 1e-5), 1.0, 1.0, 1.0).transfer_full(method="lu")
