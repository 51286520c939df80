"""One contract over every fitted surrogate (crossbar, TIA, subtractor, sense row): round trip
through JSON + arrays, any batch shape, monotonicity where physics demands it; the fitters."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cosim.card import load_card
from cosim.errors import LibraryError
from cosim.library import load_library
from cosim.surrogates.base import NotFittedError, Surrogate
from cosim.surrogates.crossbar import CrossbarCase, CrossbarFitter, CrossbarModel
from cosim.surrogates.periphery import (
    OpampFit,
    SubtractorFitter,
    SubtractorModel,
    TiaFitter,
    TiaModel,
)
from cosim.surrogates.sense_row import SenseRowModel, thresholds

CARD = load_card()
KINDS = ("crossbar", "tia", "subtractor", "sense_row")
ROWS, COLS = CARD.array.rows, CARD.array.cols
I_FS, V_REF = CARD.i_full_scale_a, CARD.adc.v_ref_v
_rng = np.random.default_rng(0)
G = _rng.uniform(CARD.device.g_min_s, CARD.device.g_max_s, (ROWS, COLS + 1))  # + sense line


@pytest.fixture(scope="module")
def surrogates(quick_library):
    return load_library(quick_library.path, CARD).surrogates


def _inputs(kind, shape, rng):
    """A batch of inputs of ``shape`` (crossbar: input vectors of that batch shape)."""
    if kind == "crossbar":
        return (rng.uniform(0, CARD.dac.v_read_v, (*shape, ROWS)),)
    if kind == "tia":
        return rng.uniform(-1.5, 1.5, shape) * I_FS, rng.uniform(0, 1.6e-3, shape)
    if kind == "subtractor":
        return rng.uniform(0, 1.1, shape), rng.uniform(0, 1.1, shape)
    return (rng.uniform(0, 0.6, shape),)


def _predict(kind, model, *x):
    if kind == "crossbar":
        return model.column_currents(G, x[0], sense_first=True)
    if kind == "sense_row":
        return np.stack(np.broadcast_arrays(model.bound(x[0]), model.skip_bits(x[0])), axis=-1)
    return model.predict(*x)


def _json_round_trip(d):
    """to_dict() → JSON text + an .npz of its arrays → back, as the library stores it."""
    arrays = {}

    def split(o, key):
        if isinstance(o, np.ndarray):
            arrays[key] = o
            return {"$array": key}
        if isinstance(o, dict):
            return {k: split(v, f"{key}.{k}") for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [split(v, f"{key}.{i}") for i, v in enumerate(o)]
        return o

    text = json.dumps(split(d, "root"), allow_nan=False)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf) as z:
        stored = {k: z[k] for k in z.files}

    def join(o):
        if isinstance(o, dict):
            return (
                stored[o["$array"]] if set(o) == {"$array"} else {k: join(v) for k, v in o.items()}
            )
        if isinstance(o, list):
            return [join(v) for v in o]
        return o

    return join(json.loads(text))


CLASSES = {
    "crossbar": CrossbarModel,
    "tia": TiaModel,
    "subtractor": SubtractorModel,
    "sense_row": SenseRowModel,
}


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_json_and_arrays(surrogates, kind):
    model = surrogates[kind]
    assert isinstance(model, CLASSES[kind]) and model.kind == kind
    assert isinstance(model, Surrogate)
    d = model.to_dict()
    assert d["kind"] == kind
    back = CLASSES[kind].from_dict(_json_round_trip(d))
    x = _inputs(kind, (7,), np.random.default_rng(1))
    # JSON writes floats with repr (exact), npz keeps arrays bit for bit: identical outputs
    np.testing.assert_array_equal(_predict(kind, back, *x), _predict(kind, model, *x))
    with pytest.raises(AttributeError):
        model.kind_of_thing = 1  # frozen


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", KINDS)
def test_vectorized_over_any_batch_shape(surrogates, kind):
    model = surrogates[kind]
    rng = np.random.default_rng(2)
    flat = _inputs(kind, (24,), rng)
    ref = _predict(kind, model, *flat)
    tail = ref.shape[1:]
    for shape in [(2, 3, 4), (24,), (1, 24)]:
        xs = tuple(x.reshape(*shape, *x.shape[1:]) for x in flat)
        out = _predict(kind, model, *xs)
        assert out.shape == (*shape, *tail)
        # each element is computed independently of its batch neighbours
        np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=1e-12, atol=1e-18)
    one = tuple(x[0] for x in flat)  # a single input: scalar (or one input vector)
    out = _predict(kind, model, *one)
    assert out.shape == tail
    np.testing.assert_allclose(out, ref[0], rtol=1e-12, atol=1e-18)


@pytest.mark.ngspice
def test_tia_is_monotone_and_linear_inside_its_range(surrogates):
    tia = surrogates["tia"]
    i = np.linspace(-2.0, 2.0, 801) * I_FS
    for g_n in (0.0, 1e-5, 4e-4, 1.6e-3):
        out = tia.predict(i, g_n)
        # non-decreasing in I_N; solve_loop stops at 1e-13 V, so allow 1e-12 V of jitter
        assert np.all(np.diff(out) >= -1e-12)
        assert out[0] == pytest.approx(tia.opamp.v_out_min_v, abs=0.01)  # clips at the rails
        assert out[-1] == pytest.approx(tia.opamp.v_out_max_v, abs=0.01)
        gain, off = tia.linear(g_n)
        lin = (out > 0.02 * V_REF) & (out < V_REF)
        assert lin.sum() > 100
        # away from the rails the clamp diodes carry < 1e-25 A: the affine coefficients are
        # the loop's exact solution, to the solver's 1e-13 V stop (1e-9 V = 3e-7 LSB)
        np.testing.assert_allclose(gain * i[lin] + off, out[lin], rtol=0, atol=1e-9)
        assert gain == pytest.approx(tia.r_feedback_ohm, rel=0.01)
    # a per-instance offset broadcasts against the inputs
    offs = np.array([[-1e-3], [0.0], [1e-3]])
    out = tia.predict(np.array([0.0, 0.2, 0.4, 0.6]) * I_FS, 4e-4, offset_v=offs)
    assert out.shape == (3, 4) and np.all(np.diff(out, axis=0) > 0)
    np.testing.assert_array_equal(tia.with_offset(1e-3).predict(0.2 * I_FS, 4e-4), out[2, 1])


@pytest.mark.ngspice
def test_subtractor_is_monotone_and_linear_inside_its_range(surrogates):
    sub = surrogates["subtractor"]
    v = np.linspace(0, 1.2, 601)
    for other in (0.0, 0.3, 0.9):
        up = sub.predict(v, other)
        down = sub.predict(other, v)
        assert np.all(np.diff(up) >= -1e-12) and np.all(np.diff(down) <= 1e-12)
        a_pos, a_neg, c = sub.linear()
        lin = (up > 0.02 * V_REF) & (up < V_REF)
        np.testing.assert_allclose(a_pos * v[lin] - a_neg * other + c, up[lin], rtol=0, atol=1e-9)
    a_pos, a_neg, c = sub.linear()
    # the fitted instance has 0.1 % mismatch and a 0.3 mV offset: gains within 1 % of the
    # card's design gain, output offset a few mV (the input offset times the noise gain 1 + G)
    gain = CARD.subtractor.gain_v_per_v
    assert a_pos == pytest.approx(gain, rel=0.01) and a_neg == pytest.approx(gain, rel=0.01)
    assert abs(c) < 5e-3


@pytest.mark.ngspice
def test_crossbar_currents_grow_with_every_input(surrogates):
    xb = surrogates["crossbar"]
    for g in (G, np.full((ROWS, COLS + 1), CARD.device.g_max_s), np.full((ROWS, COLS + 1), 0.0)):
        m, g_n = xb.transfer(g, sense_first=True)
        assert m.shape == (ROWS, COLS + 1) and g_n.shape == (COLS + 1,)
        assert np.all(m >= 0) and np.all(g_n >= 0)  # non-negative G: no input lowers a current
    rng = np.random.default_rng(3)
    v = rng.uniform(0, CARD.dac.v_read_v, (4, ROWS))
    base = xb.column_currents(G, v, sense_first=True)
    for row in (0, ROWS // 2, ROWS - 1):
        bumped = v.copy()
        bumped[:, row] += 0.01
        assert np.all(xb.column_currents(G, bumped, sense_first=True) > base)
    # no wires: the surrogate is the ideal sum of device currents
    ideal = CrossbarModel(0.0, 0.0, 0.0, xb.kappa, xb.iv_alpha_per_v, xb.v_read_v)
    np.testing.assert_allclose(
        ideal.column_currents(G, v, sense_first=True), ideal.ideal_currents(G, v), rtol=1e-6
    )


@pytest.mark.ngspice
def test_sense_row_skips_fewer_bits_as_v_sense_grows(surrogates):
    s = surrogates["sense_row"]
    v = np.linspace(-0.1, 1.2, 2001)
    k = s.skip_bits(v)
    assert np.issubdtype(k.dtype, np.integer) and k.shape == v.shape
    assert np.all(np.diff(k) <= 0)
    assert k[0] == CARD.sense_row.max_skip_bits and k[-1] == 0
    assert np.all(np.diff(s.bound(v)) > 0)
    # the threshold table: non-increasing, and k bits are skipped exactly below V_th,k
    th = s.thresholds_v
    for kk in range(1, th.size + 1):
        assert s.skip_bits(th[kk - 1] * (1 - 1e-9)) >= kk
        assert s.skip_bits(th[kk - 1]) < kk


def test_sense_thresholds_formula():
    trans = (np.arange(1, 256) - 0.5) / 256  # an ideal 8-bit ADC on 1 V
    th = thresholds(1.0, 0.0, trans, 8, 3, 1 / 256, 0.0, lsb_margin=0.0)
    np.testing.assert_allclose(th, [127.5 / 256, 63.5 / 256, 31.5 / 256], rtol=1e-12)
    th2 = thresholds(2.0, 0.01, trans, 8, 3, 1 / 256, 0.1)
    np.testing.assert_allclose(th2, (np.array([126.5, 62.5, 30.5]) / 256 - 0.01) / 2 * 0.9)
    assert thresholds(1.0, 0.6, trans, 8, 2, 1 / 256, 0.0).tolist() == [0.0, 0.0]


def _opamp():
    o = CARD.opamp
    return OpampFit(o.dc_gain_v_per_v, o.input_offset_v, o.v_out_min_v, o.v_out_max_v, o.r_out_ohm)


def test_unfitted_fitters_raise():
    for fitter in (
        CrossbarFitter(1.0, 1.0, 100.0, 1.5, 0.2),
        TiaFitter(50e3, _opamp()),
        SubtractorFitter(40e3, _opamp()),
    ):
        with pytest.raises(NotFittedError, match="is not fitted yet; call fit"):
            fitter.model  # noqa: B018
    with pytest.raises(ValueError, match="at least one case"):
        CrossbarFitter(1.0, 1.0, 100.0, 1.5, 0.2).fit([])


def test_tia_and_subtractor_fitters_recover_known_models():
    rng = np.random.default_rng(6)
    o = _opamp()
    true_tia = TiaModel(50e3 * 1.004, OpampFit(7e3, -0.8e-3, -1.05, 1.08, o.r_out_ohm))
    x = np.stack([rng.uniform(-1.6, 1.6, 300) * I_FS, rng.uniform(0, 1.6e-3, 300)], axis=1)
    fitter = TiaFitter(50e3, o)
    assert fitter.fit(x, true_tia.predict(x[:, 0], x[:, 1])) is fitter
    got = fitter.model
    # noise-free data from the model family itself: every parameter is identifiable
    assert got.r_feedback_ohm == pytest.approx(true_tia.r_feedback_ohm, rel=1e-5)
    assert got.opamp.offset_v == pytest.approx(-0.8e-3, abs=1e-7)
    assert got.opamp.v_out_max_v == pytest.approx(1.08, abs=1e-5)
    assert got.opamp.v_out_min_v == pytest.approx(-1.05, abs=1e-5)
    assert got.opamp.dc_gain_v_per_v == pytest.approx(7e3, rel=0.02)
    assert fitter.theta_.shape == (5,)

    true_sub = SubtractorModel(
        40e3, 40e3 * 1.003, 40e3, 40e3 * 0.998, OpampFit(1.2e4, 0.5e-3, -1.1, 1.1, 50.0)
    )
    xs = rng.uniform(0, 1.2, (300, 2))
    ys = true_sub.predict(xs[:, 0], xs[:, 1])
    sf = SubtractorFitter(40e3, o).fit(xs, ys)
    np.testing.assert_allclose(sf.model.linear(), true_sub.linear(), rtol=1e-5, atol=1e-7)
    # with the instance's resistors known, the op-amp itself is identified, so it transfers
    # to another resistor instance (as the engine uses it); without them the DC gain trades
    # off against the resistor ratios
    r = (40e3, 40e3 * 1.003, 40e3, 40e3 * 0.998)
    known = SubtractorFitter(40e3, o, 1.0, r).fit(xs, ys)
    assert known.theta_.shape == (4,)
    assert known.model.opamp.dc_gain_v_per_v == pytest.approx(1.2e4, rel=0.02)
    other = (40e3 * 0.99, 40e3 * 1.02, 40e3 * 1.01, 40e3 * 0.98)
    want = SubtractorModel(*other, true_sub.opamp).linear()
    got_other = SubtractorModel(*other, known.model.opamp).linear()
    np.testing.assert_allclose(got_other, want, rtol=1e-5, atol=1e-6)  # gains; offset (V)
    with pytest.raises(ValueError, match="four positive resistances"):
        SubtractorFitter(40e3, o, 1.0, (40e3, 0.0, 40e3, 40e3))


def test_crossbar_fitter_recovers_known_parameters():
    from cosim.circuits import device_model

    dev = device_model(CARD)
    true = CrossbarModel(
        1.0, 1.0, 100.0, 1.05, dev.iv_alpha_per_v, dev.v_read_v, drive_a=0.9, drive_b=0.04
    )
    rng = np.random.default_rng(7)
    cases = []
    for k in range(3):
        g = dev.level_conductance(rng.integers(0, 16, (16, 13)))
        v = rng.uniform(0, 0.2, (6, 16))
        cases.append(CrossbarCase(g, v, true.column_currents(g, v, True), True, f"case{k}"))
    fitter = CrossbarFitter(1.0, 1.0, 100.0, dev.iv_alpha_per_v, dev.v_read_v).fit(
        cases, CARD.i_lsb_a
    )
    m = fitter.model
    # noise-free synthetic currents of the model's own form: the fit reproduces them far
    # below an LSB; its parameters are correlated (κ and a trade against each other), so
    # only the currents are held to a tight tolerance and the parameters to a loose one
    assert fitter.rms_fit_ < 0.01 * CARD.i_lsb_a and fitter.n_cases_ == 3
    assert m.kappa == pytest.approx(1.05, rel=0.05) and m.drive_a == pytest.approx(0.9, rel=0.1)
    assert (m.r_wire_wl_ohm, m.r_wire_bl_ohm, m.r_driver_ohm) == (1.0, 1.0, 100.0)


@pytest.mark.parametrize(
    ("cls", "edit", "pattern"),
    [
        (
            TiaModel,
            lambda d: d.pop("opamp"),
            r"the TIA surrogate in the surrogate library lacks 'opamp'",
        ),
        (
            TiaModel,
            lambda d: d["opamp"].pop("offset_v"),
            r"tia\.opamp in the surrogate library lacks 'offset_v'",
        ),
        (TiaModel, lambda d: d["opamp"].update(dc_gain_v_per_v=float("nan")), "holds NaN or inf"),
        (SubtractorModel, lambda d: d.pop("r4_ohm"), "lacks 'r4_ohm'"),
        (CrossbarModel, lambda d: d.update(kappa="one"), r"crossbar\.kappa .* is not numeric"),
        (CrossbarModel, lambda d: d.pop("scales"), "lacks 'scales'"),
        (SenseRowModel, lambda d: d.update(thresholds_v=np.array([0.1, 0.3])), "non-increasing"),
        (SenseRowModel, lambda d: d.update(beta=float("inf")), "holds NaN or inf"),
    ],
)
def test_from_dict_errors_name_the_key(cls, edit, pattern):
    o = _opamp()
    models = {
        TiaModel: TiaModel(50e3, o),
        SubtractorModel: SubtractorModel(1.0, 1.0, 1.0, 1.0, o),
        CrossbarModel: CrossbarModel(1.0, 1.0, 100.0),
        SenseRowModel: SenseRowModel(2.5e-6, TiaModel(5e5, o), 1.0, 0.0, np.array([0.4, 0.2]), 8),
    }
    d = json.loads(json.dumps(models[cls].to_dict(), default=np.ndarray.tolist))
    edit(d)
    with pytest.raises(LibraryError, match=pattern):
        cls.from_dict(d)
