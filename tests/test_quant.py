"""The quantizer contract (cosim.quant): rounding, grids, requantization, errors."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosim.quant as q
from cosim.errors import CosimError
from cosim.quant import (
    ActGrid,
    BiasGrid,
    GridError,
    Preprocessing,
    WeightGrid,
    avgpool_round,
    default_bias_bits,
    input_codes,
    layer_scale,
    requantize,
)


def test_doctests():
    import cosim.datasets
    import cosim.datasets.idx
    import cosim.datasets.specs
    import cosim.model.format
    import cosim.model.forward
    import cosim.train.network
    import cosim.train.optim
    import cosim.train.scheme
    import cosim.train.unipolar

    for mod in (
        q,
        q.grids,
        q.arithmetic,
        q.preprocessing,
        cosim.datasets,
        cosim.datasets.idx,
        cosim.datasets.specs,
        cosim.model.forward,
        cosim.model.format,
        cosim.train.network,
        cosim.train.optim,
        cosim.train.scheme,
        cosim.train.unipolar,
    ):
        res = doctest.testmod(mod)
        assert res.failed == 0, mod.__name__


def test_activation_rounds_half_up_at_adc_thresholds():
    g = ActGrid(2.0, 3)  # step 0.25, thresholds at (k - 1/2) * 0.25
    assert g.step == 0.25 and g.top_code == 7
    k = np.arange(8)
    # exactly on the threshold (k + 1/2) * step the code goes up (np.round would go to even)
    assert g.codes((k + 0.5) * 0.25).tolist() == [1, 2, 3, 4, 5, 6, 7, 7]
    assert np.round(0.5) == 0.0  # the trap this contract avoids
    # (1e-12 below: floor(x / step + 1/2) in float64 carries ulp-level rounding at the edge)
    assert g.codes((k + 0.5) * 0.25 - 1e-12).tolist() == k.tolist()
    # clipped: negative -> 0 (ReLU), beyond the top code -> 7; top value is hi - step
    assert g.codes([-5.0, -0.1, 1.75, 2.0, 100.0]).tolist() == [0, 0, 7, 7, 7]
    assert g.values(7) == pytest.approx(1.75)


def test_weight_grid_levels():
    for bits in range(1, 9):
        g = WeightGrid(0.25, bits)
        n_max = 2**bits - 1
        assert g.unit == 0.25 / n_max
        w = np.linspace(-0.4, 0.4, 2001)
        n = g.levels(w)
        assert set(np.unique(n) % 2) == {1}  # odd
        assert n.min() == -n_max and n.max() == n_max
        assert len(np.unique(n)) == 2**bits  # 2**b levels including both ends
        nu = g.levels(w, unipolar=True)
        assert nu.min() == 0 and nu.max() == n_max and len(np.unique(nu)) == 2**bits
    binary = WeightGrid(0.25, 1)
    assert binary.levels([-1e-9, 0.0, 1e-9]).tolist() == [-1, 1, 1]  # +-w_max, tie upward
    g = WeightGrid(0.25, 2)  # u = 1/12; bipolar levels at odd multiples
    u = g.unit
    assert g.levels([2 * u, np.nextafter(2 * u, 0)]).tolist() == [3, 1]  # tie upward


def test_per_filter_unipolar_mask():
    g = WeightGrid(0.25, 3)
    w = np.array([[-0.1, 0.1], [-0.1, 0.1]])
    n = g.levels(w, unipolar=np.array([True, False]))
    assert n[0].tolist() == [0, 3] and n[1, 0] < 0
    assert g.on_grid(n, np.array([True, False]))
    assert not g.on_grid(n, np.array([False, False]))  # 0 and 3... 0 is not odd
    assert not g.on_grid(np.array([[1.0]]))  # float levels are never on the grid


def test_bias_grid_is_tied_to_weight_and_input_grids():
    w, x = WeightGrid(0.25, 4), ActGrid(2.0, 3)
    b = BiasGrid.for_layer(w, x, default_bias_bits(4))
    assert b.step == pytest.approx(w.unit * 2.0)
    assert b.bits == 6 and b.n_max == 31
    assert b.levels([1e9, -1e9, 0.5 * b.step, -0.5 * b.step]).tolist() == [31, -31, 1, 0]


def test_requantize_formula_and_dtypes():
    rng = np.random.default_rng(0)
    acc = rng.integers(-50_000, 50_000, size=10_000)
    scale = layer_scale(WeightGrid(0.25, 4), ActGrid(2.0, 8), ActGrid(2.0, 3))
    ref = np.clip(np.floor(acc.astype(np.float64) * scale + 0.5), 0, 7).astype(np.int64)
    assert np.array_equal(requantize(acc, scale, 3), ref)
    # the training path feeds float32 arrays holding the same integers: identical codes
    assert np.array_equal(requantize(acc.astype(np.float32), scale, 3), ref)
    # a half-way accumulator goes up (acc * scale + 1/2 exactly an integer)
    assert requantize(np.array([2, 6]), 0.25, 3).tolist() == [1, 2]


def test_avgpool_round_half_up_integer_and_float():
    s = np.arange(0, 40)
    ref = (s + 2) // 4
    assert np.array_equal(avgpool_round(s, 4), ref)
    assert np.array_equal(avgpool_round(s.astype(np.float32), 4), ref.astype(np.float32))
    s9 = np.arange(0, 200)
    assert np.array_equal(avgpool_round(s9.astype(np.float32), 9), (s9 + 4) // 9)


def test_input_codes_and_preprocessing():
    assert input_codes([0.0, 0.5 / 256, 1.0, 2.0, -1.0], 8).tolist() == [0, 1, 255, 255, 0]
    p = Preprocessing(offset=-1.0, scale=2.0, in_bits=4, input_shape=(3,))
    assert p.codes(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 8, 15]
    assert Preprocessing.from_dict(p.to_dict()) == p
    # integer samples of 8 and 16 bits (many of them) go through a table: the same codes
    q = Preprocessing(offset=3.0, scale=251.0, in_bits=8, input_shape=(1,))
    rng = np.random.default_rng(0)
    for dt in (np.uint8, np.int8, np.uint16, np.int16):
        info = np.iinfo(dt)
        raw = rng.integers(info.min, info.max, 5000, endpoint=True).astype(dt)
        raw[:2] = info.min, info.max
        np.testing.assert_array_equal(q.codes(raw), input_codes(q.unit(raw), 8))


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5, True, "4", None])
def test_bits_out_of_range_are_clear_errors(bad):
    with pytest.raises(GridError, match="bits"):
        WeightGrid(0.25, bad)
    with pytest.raises(CosimError):
        ActGrid(2.0, bad)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_ranges_must_be_positive(bad):
    with pytest.raises(GridError):
        ActGrid(bad, 3)
    with pytest.raises(GridError):
        WeightGrid(bad, 3)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(1, 8),
    w_max=st.floats(1e-3, 10.0),
    w=st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=50),
)
def test_levels_always_on_grid_and_nearest(bits, w_max, w):
    g = WeightGrid(w_max, bits)
    w = np.array(w)
    n = g.levels(w)
    assert g.on_grid(n)
    inside = np.abs(w) <= w_max
    # inside the range the bipolar level is the nearest one: error <= one unit u
    err = np.abs(n * g.unit - w)[inside]
    assert np.all(err <= g.unit * (1 + 1e-9))
    nu = g.levels(w, unipolar=True)
    assert g.on_grid(nu, True) and np.all(nu >= 0)
