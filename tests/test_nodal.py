"""The crossbar netlist in ngspice equals the independent SciPy nodal solve (acceptance 4)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.card import load_card
from cosim.circuits import crossbar_params, device_model
from cosim.nodal import CrossbarNetwork
from cosim.spice import SpiceJob, SpiceRunner
from netlists.crossbar import (
    column_currents,
    crossbar_netlist,
    crossbar_vectors,
    driver_currents,
)

CARD = load_card()
# (technology, rows, cols, sense line): ohmic and nonlinear sinh devices, non-square arrays
# with and without the sense line, and a square one large enough for real IR drop
GEOMETRIES = [
    ("ideal", 12, 9, False),
    ("ideal", 12, 9, True),
    ("ideal", 24, 24, True),
    ("pcm", 12, 9, False),
    ("pcm", 12, 9, True),
    ("pcm", 24, 24, True),
]


def _device(tech):
    return device_model(CARD.with_updates({"device": {"technology": tech}}))


def _case(tech, rows, cols, sense, seed):
    """Conductances on the device's level grid and five input vectors (V)."""
    dev = _device(tech)
    rng = np.random.default_rng(seed)
    p = crossbar_params(CARD, rows, cols, sense=sense)
    g = dev.level_conductance(rng.integers(0, dev.n_levels, (rows, cols)))
    g[:, 0] = dev.g_max_s  # one column at the worst IR drop
    v_fs = CARD.dac.v_read_v
    v = np.stack(
        [
            np.full(rows, v_fs),  # full scale on every row
            rng.uniform(0, v_fs, rows),  # dense random
            np.where(rng.random(rows) < 0.7, 0.0, rng.uniform(0, v_fs, rows)),  # sparse
            np.eye(rows)[rows - 1] * v_fs,  # one-hot on the row farthest from the TIAs' row 0
            np.linspace(0.0, 1.5 * v_fs, rows),  # beyond v_read: where sinh bends most
        ]
    )
    return dev, p, g, v


@pytest.fixture(scope="module")
def spice_cases(tmp_path_factory):
    """Every geometry simulated by ngspice in one parallel run."""
    cases = [_case(*geo, seed=k) for k, geo in enumerate(GEOMETRIES)]
    jobs = [
        SpiceJob(crossbar_netlist(p, dev, g, v), crossbar_vectors(p), timeout_s=120, label=str(k))
        for k, (dev, p, g, v) in enumerate(cases)
    ]
    with SpiceRunner(jobs=2, cache_dir=tmp_path_factory.mktemp("spice")) as runner:
        results = runner.run(jobs, desc="crossbar vs nodal")
        assert runner.stats["simulated"] == len(jobs)
    return [(*c, r) for c, r in zip(cases, results, strict=True)]


@pytest.mark.ngspice
@pytest.mark.parametrize(
    "k", range(len(GEOMETRIES)), ids=[f"{t}-{r}x{c}-sense{s}" for t, r, c, s in GEOMETRIES]
)
def test_spice_equals_nodal_solve(spice_cases, k):
    dev, p, g, v, res = spice_cases[k]
    n = v.shape[0]
    i_spice = column_currents(res, p, n)
    assert i_spice.shape == (n, p.n_lines)
    net = CrossbarNetwork(
        p.with_g_matrix(g), p.r_wire_wl_ohm, p.r_wire_bl_ohm, p.r_driver_ohm, sense_first=p.sense
    )
    i_nodal = net.solve(v, dev)
    # both are exact solutions of the same network; what is left is ngspice's Newton stop
    # (quadratic convergence leaves ~1e-9 relative on sinh devices, ~1e-11 on resistors) and
    # the 12 significant digits of the netlist text. 1e-6 relative is the acceptance bound.
    np.testing.assert_allclose(i_spice, i_nodal, rtol=1e-6, atol=0)
    # the network is not trivial: IR drop moves the worst column by more than the tolerance
    ideal = dev.current(1.0, v) @ p.with_g_matrix(g)
    assert np.max(np.abs(i_nodal[:, 0] / ideal[:, 0] - 1)) > 1e-3
    # KCL: what the drivers sink is what the bitlines deliver (12-digit netlist numbers)
    np.testing.assert_allclose(
        driver_currents(res, p, n).sum(axis=1), i_spice.sum(axis=1), rtol=1e-9
    )


@pytest.mark.parametrize(
    ("rows", "cols", "sense", "r_wl", "r_bl", "r_drv"),
    [
        (12, 9, False, 1.0, 1.0, 100.0),
        (9, 12, True, 2.5, 0.5, 100.0),
        (24, 24, True, 1.0, 1.0, 0.0),  # zero driver resistance: the 1 µΩ stand-in
        (64, 64, True, 1.0, 1.0, 100.0),
        (5, 3, False, 0.0, 0.0, 0.0),  # no wires at all: M is G
    ],
)
def test_block_elimination_equals_sparse_lu(rows, cols, sense, r_wl, r_bl, r_drv):
    dev = _device("pcm")
    rng = np.random.default_rng(rows * 100 + cols)
    g = dev.level_conductance(rng.integers(0, 16, (rows, cols + sense)))
    net = CrossbarNetwork(g, r_wl, r_bl, r_drv, sense_first=sense)
    m, gn = net.transfer()
    m_ref, gn_ref = net.transfer_sparse()
    assert m.shape == (rows, cols + sense) and gn.shape == (cols + sense,)
    # two exact eliminations of the same SPD system differ by rounding, amplified by its
    # condition number (~ wire over device conductance, 1e6..1e7): 1e-9 relative covers it
    np.testing.assert_allclose(m, m_ref, rtol=1e-9, atol=0)
    # g_norton = g_b - g_b²·z is a difference of two numbers ~g_b: rounding leaves about
    # 100·eps·g_b/g_norton relative (1e-9 with real wires, ~1e-5 with the 1 µΩ stand-ins)
    g_b = 1.0 / max(r_bl, 1e-6)
    rtol_gn = max(1e-9, 100 * np.finfo(float).eps * g_b / gn_ref.min())
    np.testing.assert_allclose(gn, gn_ref, rtol=rtol_gn, atol=0)
    # passive network: every path carries current into the TIAs, and a row delivers at most
    # what its devices would with the whole input across them (sneak paths can lift a
    # single g_min entry above its own device, so the bound is per row)
    assert np.all(m > 0)
    assert np.all(m.sum(axis=1) <= g.sum(axis=1) * (1 + 1e-12))
    # the transfer matrix is the linear solve: I = V @ M for ohmic devices
    v = rng.uniform(0, 0.2, (3, rows))
    np.testing.assert_allclose(v @ m, net.solve(v), rtol=1e-9, atol=0)
    if r_wl == r_bl == r_drv == 0.0:
        # 1 µΩ stand-ins against ≥ 0.1 µS devices: M = G to ~1e-10 relative, and each TIA
        # sees its column's devices to (virtual) ground
        np.testing.assert_allclose(m, g, rtol=1e-9)
        np.testing.assert_allclose(gn, g.sum(axis=0), rtol=rtol_gn)
    # a conductance matrix passed to transfer() replaces the stored one
    m2, _ = net.transfer(2 * g)
    m2_ref, _ = CrossbarNetwork(2 * g, r_wl, r_bl, r_drv, sense_first=sense).transfer_sparse()
    np.testing.assert_allclose(m2, m2_ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("sense", [False, True])
def test_norton_conductance(sense):
    """A TIA node at v instead of 0 changes its column current by exactly g_norton·v.

    Rows are driven at -V, so lifting a TIA node by v puts v more across its column: the
    current drawn out of the node grows, I = I_N + G_N·v, the convention the TIA testbench
    and surrogate use (``netlists.tia``).
    """
    dev = _device("ideal")
    rng = np.random.default_rng(4)
    rows, cols = 16, 10
    g = dev.level_conductance(rng.integers(0, 16, (rows, cols + sense)))
    net = CrossbarNetwork(g, 1.0, 1.0, 100.0, sense_first=sense)
    _, g_n = net.transfer()
    v_in = rng.uniform(0, 0.2, (2, rows))
    base = net.solve(v_in)
    for k in (0, cols - 1, cols + sense - 1):
        v_os = np.zeros(cols + sense)
        v_os[k] = 1e-3  # a 1 mV op-amp offset
        shifted = net.solve(v_in, v_tia=v_os)
        # linear network: superposition is exact; what remains is rounding on a difference
        # of two ~10 µA currents (~1e-20 A) against a ~1e-7 A change: 1e-9 relative is ample
        np.testing.assert_allclose(shifted[:, k] - base[:, k], g_n[k] * 1e-3, rtol=1e-9)
        assert g_n[k] == pytest.approx(g[:, k].sum(), rel=0.05)  # ≈ the column's devices
        # the other columns move the other way and by far less (sharing the wordlines)
        others = np.delete(np.arange(cols + sense), k)
        d_others = shifted[:, others] - base[:, others]
        assert np.all(d_others < 0) and np.max(-d_others) < 1e-2 * g_n[k] * 1e-3
    # a scalar v_tia lifts every column
    both = net.solve(v_in, v_tia=1e-3)
    assert np.all(both > base)


def test_nodal_rejects_a_vector_of_conductances():
    with pytest.raises(ValueError, match="2-D"):
        CrossbarNetwork(np.ones(4) * 1e-5, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("sense", [False, True])
@pytest.mark.parametrize(
    ("rows", "lines", "r_wl", "r_bl", "r_drv"),
    [
        (64, 65, 1.0, 1.0, 100.0),  # the default card's tile with its sense line
        (7, 5, 2.5, 0.5, 100.0),
        (1, 4, 1.0, 1.0, 100.0),  # one row
        (9, 1, 1.0, 1.0, 100.0),  # one line
        (33, 17, 0.0, 0.0, 0.0),  # 1 µΩ stand-ins everywhere
        (12, 9, 1.0, 1000.0, 100.0),  # kΩ bitline segments: the nested-dissection fallback
    ],
)
def test_stacked_transfer_equals_single_tile_and_sparse(rows, lines, r_wl, r_bl, r_drv, sense):
    """A stack of tiles is solved exactly as each tile alone (and as the sparse LU and the
    nested dissection): random tiles, an all-1.5·g_max one and an all-zero one together."""
    g_max = 1.5 * _device("pcm").g_max_s
    rng = np.random.default_rng(rows * 1000 + lines)
    stack = np.concatenate(
        [
            rng.uniform(0.0, g_max, (3, rows, lines)),
            np.full((1, rows, lines), g_max),
            np.zeros((1, rows, lines)),
        ]
    )
    net = CrossbarNetwork(stack[0], r_wl, r_bl, r_drv, sense_first=sense)
    m, y = net.transfer_stack(stack)
    assert m.shape == stack.shape and y.shape == (len(stack), lines, lines)
    for t, g in enumerate(stack):
        tile = CrossbarNetwork(g, r_wl, r_bl, r_drv, sense_first=sense)
        m1, y1 = tile.transfer_full(method="blocks")
        m_sp, gn_sp = tile.transfer_sparse()
        m_nd, y_nd = tile.transfer_full(method="nested")
        # 1e-12 of each column's full-scale transfer (every row at full input)
        scale = np.maximum(np.abs(m_sp).sum(axis=0), np.finfo(float).tiny)
        for ref in (m1, m_sp, m_nd):
            assert np.max(np.abs(m[t] - ref) / scale) <= 1e-12
        np.testing.assert_array_equal(m[t], m1)  # stacking couples nothing
        np.testing.assert_array_equal(y[t], y1)
        np.testing.assert_allclose(y[t], y[t].T, rtol=0, atol=0)
        if g.any():
            # y's diagonal against the sparse solve's difference g_b - g_b²·z (see above)
            g_b = 1.0 / max(r_bl, 1e-6)
            rtol = max(1e-9, 100 * np.finfo(float).eps * g_b / gn_sp.min())
            np.testing.assert_allclose(np.diagonal(y[t]), gn_sp, rtol=rtol, atol=0)
            np.testing.assert_allclose(y[t], y_nd, rtol=0, atol=rtol * np.abs(y_nd).max())


def test_stacked_transfer_rejects_a_foreign_shape():
    net = CrossbarNetwork(np.full((4, 3), 1e-5), 1.0, 1.0, 100.0)
    with pytest.raises(ValueError, match="g_stack must have shape"):
        net.transfer_stack(np.full((2, 3, 4), 1e-5))
