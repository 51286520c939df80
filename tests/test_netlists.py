"""Netlist generators: pure functions, titles, input checks, full-precision numbers; the
TIA and subtractor netlists solve to exactly the circuit their surrogates model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cosim.card import load_card
from cosim.circuits import (
    crossbar_params,
    device_model,
    mac_analog_params,
    opamp_params,
    subtractor_params,
    subtractor_sample,
    tia_params,
)
from cosim.spice import SpiceJob, SpiceRunner
from cosim.surrogates.periphery import OpampFit, SubtractorModel, TiaModel
from netlists.common import index_sweep, netlist_hash, num, pwl_of_index
from netlists.crossbar import CrossbarParams, crossbar_netlist, crossbar_vectors
from netlists.mac_unit import (
    MacAnalogParams,
    mac_analog_netlist,
    pair_layout,
    unipolar_layout,
)
from netlists.opamp import OpampParams, opamp_subckt
from netlists.subtractor import SubtractorParams, subtractor_testbench_netlist
from netlists.tia import TiaParams, tia_subckt, tia_testbench_netlist

CARD = load_card()
DEV = device_model(CARD)
RNG = np.random.default_rng(0)
G8 = DEV.level_conductance(RNG.integers(0, 16, (8, 6)))
V8 = RNG.uniform(0, 0.2, (3, 8))
XB = crossbar_params(CARD, 8, 6, sense=False)
MAC = mac_analog_params(CARD, pair_layout(6), 8, 6)  # with the card's sense row
TIA = tia_params(CARD)
SUB = subtractor_params(CARD)
# numbers that need all their digits: 1/3 and friends
AWKWARD = np.array([1.0 / 3.0, 2.0 / 3.0 * 1e-6, 0.1 + 0.2, np.pi * 1e-7])

# every generator with one fixed input, and a variant differing in one value
GENERATORS = {
    "crossbar": (
        lambda g, v: crossbar_netlist(XB, DEV, g, v),
        "cosim crossbar",
    ),
    "crossbar-sense": (
        lambda g, v: crossbar_netlist(crossbar_params(CARD, 8, 6, sense=True), DEV, g, v),
        "cosim crossbar",
    ),
    "mac": (lambda g, v: mac_analog_netlist(MAC, DEV, g, v)[0], "cosim mac analog"),
    "tia": (
        lambda g, v: tia_testbench_netlist(TIA, v[:, 0] * 1e-4, g[: v.shape[0], 0]),
        "cosim tia testbench",
    ),
    "subtractor": (
        lambda g, v: subtractor_testbench_netlist(SUB, v[:, 0], v[:, 1] + g[: v.shape[0], 0]),
        "cosim subtractor testbench",
    ),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_are_pure_functions(name):
    gen, title = GENERATORS[name]
    g_before, v_before = G8.copy(), V8.copy()
    a = gen(G8, V8)
    b = gen(G8.copy(), V8.copy())
    assert a == b and netlist_hash(a) == netlist_hash(b)
    assert a.splitlines()[0] == title  # the title is the first line
    assert a.rstrip().endswith(".end") and a.endswith("\n")
    g2 = G8.copy()
    g2[0, 0] = DEV.level_conductance(15) if g2[0, 0] != DEV.g_max_s else DEV.g_min_s
    v2 = V8.copy()
    v2[0, 0] += 1e-3
    # a different conductance (one level) or input (1 mV) gives a different netlist and hash
    assert netlist_hash(gen(g2, V8)) != netlist_hash(a)
    assert netlist_hash(gen(G8, v2)) != netlist_hash(a)
    assert len(netlist_hash(a)) == 64
    # inputs are not modified
    np.testing.assert_array_equal(G8, g_before)
    np.testing.assert_array_equal(V8, v_before)


def test_crossbar_titles_and_elements():
    text = crossbar_netlist(XB, DEV, G8, V8, title="my title")
    lines = text.splitlines()
    assert lines[0] == "my title"
    devices = [ln for ln in lines if ln.startswith("Bdev")]
    assert len(devices) == 8 * 6  # every crossing is a sinh B-source for PCM
    assert sum(ln.startswith("Rwl") for ln in lines) == 8 * 6
    assert sum(ln.startswith("Rbl") for ln in lines) == 8 * 6
    assert sum(ln.startswith("Rdrv") for ln in lines) == 8
    assert sum(ln.startswith("Vcol") for ln in lines) == 6
    assert lines[-2] == ".dc Vidx 0 2 1"
    assert crossbar_vectors(XB)[:6] == tuple(f"vcol{j}#branch" for j in range(6))
    # a sense line adds one column of g_sense devices, nearest the drivers
    p = crossbar_params(CARD, 8, 6, sense=True)
    t2 = crossbar_netlist(p, DEV, G8, V8)
    assert sum(ln.startswith("Bdev") for ln in t2.splitlines()) == 8 * 7
    assert "Rwl0_6 d0 w0_6" in t2  # the sense line's segment hangs off the driver node
    assert len(crossbar_vectors(p)) == 7 + 8
    # an ohmic device is a resistor of 1/g; g = 0 an open (1e15 ohm)
    ideal = device_model(CARD.with_updates({"device": {"technology": "ideal"}}))
    g = G8.copy()
    g[0, 0] = 0.0
    t3 = crossbar_netlist(XB, ideal, g, V8).splitlines()
    assert "Rdev0_0 b0_0 w0_0 1e15" in t3
    r01 = next(ln for ln in t3 if ln.startswith("Rdev0_1 "))
    assert float(r01.split()[-1]) == pytest.approx(1.0 / g[0, 1], rel=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: crossbar_netlist(XB, DEV, G8, V8[0]), r"inputs_v must have shape \(n, 8\)"),
        (lambda: crossbar_netlist(XB, DEV, G8, V8[:, :7]), r"inputs_v must have shape"),
        (lambda: crossbar_netlist(XB, DEV, G8[:, :5], V8), r"conductance matrix has shape"),
        (lambda: crossbar_netlist(XB, DEV, G8, V8 * np.nan), "NaN or inf"),
        (lambda: crossbar_netlist(XB, DEV, G8, V8 + np.inf), "NaN or inf"),
        (lambda: mac_analog_netlist(MAC, DEV, G8, V8[:, :5]), r"inputs_v must have shape"),
        (lambda: tia_testbench_netlist(TIA, [1e-6, 2e-6], [0.0]), "same length"),
        (lambda: tia_testbench_netlist(TIA, [1e-6], [-1e-6]), "g_norton_s must be >= 0"),
        (lambda: subtractor_testbench_netlist(SUB, [0.1], [0.1, 0.2]), "same length"),
        (lambda: pwl_of_index([]), "at least one value"),
        (lambda: index_sweep(0), "at least one point"),
        (lambda: CrossbarParams(0, 4, 1.0, 1.0, 1.0), "rows and cols"),
        (lambda: CrossbarParams(4, 4, -1.0, 1.0, 1.0), r"CrossbarParams\.r_wire_wl_ohm"),
        (lambda: CrossbarParams(4, 4, 1.0, 1.0, 1.0, sense=True), r"g_sense_s must be > 0"),
        (lambda: mac_analog_params(CARD, ((0, 6),), 8, 6), "outside the crossbar"),
        (lambda: mac_analog_params(CARD, ((0, 1), (1, 2)), 8, 6), "uses a column twice"),
        (
            lambda: MacAnalogParams(XB.__class__(8, 6, 1, 1, 1, True, 1e-6), TIA, None, SUB, ()),
            "needs sense_tia",
        ),
        (lambda: OpampParams(1.0, 1e8, -1.0, 1.0), "dc_gain_v_per_v must exceed 1"),
        (lambda: OpampParams(1e4, 1e8, 1.0, 1.0), "v_out_min_v must be below"),
        (lambda: TiaParams(0.0, TIA.opamp), "r_feedback_ohm must be positive"),
        (lambda: SubtractorParams(1.0, 1.0, 0.0, 1.0, TIA.opamp), r"r3_ohm must be positive"),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# without these checks a generator wrote 'nan' into the netlist, which crashed the ngspice
# worker (SIGSEGV) instead of raising a ValueError naming the input
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: crossbar_netlist(XB, DEV, np.where(G8 > 1e-5, np.nan, G8), V8),
            id="crossbar-g",
        ),
        pytest.param(lambda: mac_analog_netlist(MAC, DEV, G8, V8 * np.nan), id="mac-inputs"),
        pytest.param(lambda: crossbar_netlist(XB, DEV, G8, V8 * np.nan), id="crossbar-inputs"),
        pytest.param(
            lambda: mac_analog_netlist(MAC, DEV, G8 * np.nan, V8),
            id="mac-g",
        ),
        pytest.param(
            lambda: tia_testbench_netlist(TIA, [1e-6, np.nan], [0.0, 0.0]),
            id="tia-i",
        ),
        pytest.param(
            lambda: tia_testbench_netlist(TIA, [1e-6, 1e-6], [0.0, np.nan]),
            id="tia-g",
        ),
        pytest.param(
            lambda: subtractor_testbench_netlist(SUB, [0.1, np.nan], [0.0, 0.0]),
            id="subtractor",
        ),
    ],
)
def test_nan_inputs_raise_value_error(call):
    with pytest.raises(ValueError, match=r"(?i)nan"):
        call()


def test_pwl_of_index_and_numbers():
    one = pwl_of_index([0.25])
    assert one == "pwl(v(idx), 0, 0.25, 1, 0.25)"  # a single value repeats: two points
    assert pwl_of_index(np.array([[1.0, 2.0]]), node="k") == "pwl(v(k), 0, 1, 1, 2)"
    assert index_sweep(1) == ("Vidx idx 0 0", ".dc Vidx 0 1 1")
    assert index_sweep(5)[1] == ".dc Vidx 0 4 1"
    text = pwl_of_index(AWKWARD)
    vals = [float(x) for x in re.findall(r"[-+]?\d[\d.]*(?:e[-+]?\d+)?", text)[1::2]]
    # 12 significant digits: relative rounding error at most 5e-12
    np.testing.assert_allclose(vals, AWKWARD, rtol=5e-12, atol=0)
    assert not np.allclose(vals, AWKWARD, rtol=1e-16, atol=0)  # rounded, not repr'ed
    for x in AWKWARD[[0, 1, 3]]:  # (0.1 + 0.2 prints as 0.3: trailing zeros are dropped)
        mantissa = num(x).split("e")[0].replace(".", "").replace("-", "").lstrip("0")
        assert len(mantissa) == 12
    assert num(2.5e-6) == "2.5e-06" and num(0.1 + 0.2) == "0.3"


def test_pwl_numbers_in_generated_netlists_keep_12_digits():
    v = np.tile(AWKWARD[:3] * 0.2, (2, 1))
    v = np.concatenate([v, np.zeros((2, 5))], axis=1)
    text = crossbar_netlist(XB, DEV, G8, v)
    line = next(ln for ln in text.splitlines() if ln.startswith("Bdac0 "))
    assert num(AWKWARD[0] * 0.2) in line and len(num(AWKWARD[0] * 0.2)) >= 14


def test_opamp_and_tia_subcircuits():
    a = opamp_params(CARD)
    b = opamp_params(CARD, input_offset_v=-2e-3)
    assert a.subckt_name == b.subckt_name  # the offset is an instance parameter
    assert (
        opamp_params(CARD.with_updates({"opamp": {"dc_gain_v_per_v": 1e5}})).subckt_name
        != a.subckt_name
    )
    sub = opamp_subckt(a).splitlines()
    assert sub[0].startswith(f".subckt {a.subckt_name} inp inn out vdd vss vos=")
    assert sub[-1] == f".ends {a.subckt_name}"
    assert b.instance("u1", "p", "n", "o", "vdd", "vss").endswith("vos=-0.002")
    assert a.instance("u1", "p", "n", "o", "vdd", "vss", offset_v=1e-3).endswith("vos=0.001")
    t = tia_subckt(TIA).splitlines()
    assert t[0].startswith(f".subckt {TIA.subckt_name} in out vdd vss")
    assert f"Rf in out {num(CARD.tia.r_feedback_ohm)}" in t
    s1 = subtractor_sample(CARD, np.random.default_rng(2))
    s2 = subtractor_sample(CARD, np.random.default_rng(2))
    assert s1 == s2 and s1.resistors() != SUB.resistors()


def test_mac_analog_outputs_and_layouts():
    text, vectors = mac_analog_netlist(MAC, DEV, G8, V8)
    assert vectors == ("out0", "out1", "out2", "vsense", "vdd#branch", "vss#branch")
    assert text.splitlines()[0] == "cosim mac analog"
    assert sum(ln.startswith("R1_") for ln in text.splitlines()) == 3  # one subtractor a pair
    assert "Xtias t6 vsense" in text
    assert sum(ln.startswith("Xtia") for ln in text.splitlines()) == 7
    no_sense = CARD.with_updates({"sense_row": {"enabled": False}})
    p = mac_analog_params(no_sense, unipolar_layout(6), 8, 6)
    assert not p.crossbar.sense and p.sense_tia is None
    text2, vec2 = mac_analog_netlist(p, DEV, G8, V8)
    assert vec2 == (*(f"out{k}" for k in range(6)), "vdd#branch", "vss#branch")
    assert "vsense" not in text2 and "R1_" not in text2
    assert sum(ln.startswith("Vbuf") for ln in text2.splitlines()) == 6
    assert pair_layout(5) == ((0, 1), (2, 3))  # an odd column stays unused
    lay = mac_analog_params(no_sense, pair_layout(5), 8, 6)
    assert "Vunused4 t4 0 0" in mac_analog_netlist(lay, DEV, G8, V8)[0]


def _card_tia_model() -> TiaModel:
    o = CARD.opamp
    return TiaModel(
        CARD.tia.r_feedback_ohm,
        OpampFit(o.dc_gain_v_per_v, o.input_offset_v, o.v_out_min_v, o.v_out_max_v, o.r_out_ohm),
    )


_TIGHT = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12"


def _tia_points():
    rng = np.random.default_rng(8)
    n = 60
    i = rng.uniform(-1.5, 1.6, n) * CARD.i_full_scale_a  # into both clipping regions
    g = rng.uniform(0, 1, n) ** 2 * CARD.array.rows * CARD.device.g_max_s
    return i, g


@pytest.fixture(scope="module")
def periphery_runs(tmp_path_factory):
    """TIA and subtractor testbenches in ngspice: as generated, and with tight tolerances."""
    i, g = _tia_points()
    tia = tia_testbench_netlist(TIA, i, g)
    rng = np.random.default_rng(9)
    inst = subtractor_sample(CARD.with_updates({"subtractor": {"mismatch_sigma_rel": 0.02}}), rng)
    # TIA outputs anywhere in their swing, differences spanning the ADC range at the gain
    gain = CARD.subtractor.gain_v_per_v
    vn = rng.uniform(0, 1.0, 60)
    vp = np.clip(vn + rng.uniform(-0.3, 1.4, 60) * CARD.adc.v_ref_v / gain, 0, 1.1)
    vp[:2], vn[:2] = (1.1, 0.0), (0.0, 1.1)  # drive it into both rails
    sub = subtractor_testbench_netlist(inst, vp, vn)

    def tight(t):
        title, _, rest = t.partition("\n")
        return f"{title}\n{_TIGHT}\n{rest}"

    jobs = [
        SpiceJob(tia, ("out", "in"), 60, "tia as generated"),
        SpiceJob(tight(tia), ("out", "in"), 60, "tia tight"),
        SpiceJob(sub, ("out",), 60, "subtractor as generated"),
        SpiceJob(tight(sub), ("out",), 60, "subtractor tight"),
    ]
    with SpiceRunner(jobs=2, cache_dir=tmp_path_factory.mktemp("spice")) as runner:
        res = runner.run(jobs)
    return {"i": i, "g": g, "inst": inst, "vp": vp, "vn": vn, "res": res}


@pytest.mark.ngspice
def test_tia_netlist_is_the_circuit_its_surrogate_solves(periphery_runs):
    r = periphery_runs
    n = r["i"].size
    out = r["res"][1]["out"][:n]
    pred = _card_tia_model().predict(r["i"], r["g"])
    # the surrogate with the card's (unfitted) op-amp solves the same equations as the
    # macro-model; ngspice's gmin (1e-12 S) across each clamp diode against R1 = 1 MΩ moves
    # the output by ~1e-6 V when clipping: 1e-5 V (0.0026 LSB) bounds it
    np.testing.assert_allclose(out, pred, rtol=0, atol=1e-5)
    assert out.max() == pytest.approx(CARD.opamp.v_out_max_v, abs=2e-3)  # clips at the rail
    assert out.min() == pytest.approx(CARD.opamp.v_out_min_v, abs=2e-3)
    # virtual ground: the input sits at offset + V/A, far below a millivolt-scale error
    x = r["res"][1]["in"][:n]
    lin = (out > 0) & (out < CARD.adc.v_ref_v)
    assert np.max(np.abs(x[lin])) < 1e-3


@pytest.mark.ngspice
def test_tia_netlist_as_generated_is_accurate_to_a_hundredth_of_an_lsb(periphery_runs):
    r = periphery_runs
    n = r["i"].size
    as_generated = r["res"][0]["out"][:n]
    exact = r["res"][1]["out"][:n]
    # the characterization judges surrogates to 0.1 LSB against this data: its own solver
    # error should be at least 10x smaller
    assert np.max(np.abs(as_generated - exact)) < 0.01 * CARD.adc_lsb_v


@pytest.mark.ngspice
def test_subtractor_netlist_is_the_circuit_its_surrogate_solves(periphery_runs):
    r = periphery_runs
    inst = r["inst"]
    o = CARD.opamp
    model = SubtractorModel(
        *inst.resistors(),
        opamp=OpampFit(
            o.dc_gain_v_per_v, inst.opamp.input_offset_v, o.v_out_min_v, o.v_out_max_v, o.r_out_ohm
        ),
    )
    n = r["vp"].size
    pred = model.predict(r["vp"], r["vn"])
    out = r["res"][3]["out"][:n]
    # same equations, resistor values read from the instance: what is left is the
    # 12-digit netlist text and the clamp diodes' gmin (~1e-6 V when clipping)
    np.testing.assert_allclose(out, pred, rtol=0, atol=1e-5)
    # as generated (ngspice's default reltol) it is as exact inside the ADC's range, where
    # the loop is linear and Newton converges in one step; 1e-6 V = 0.0003 LSB
    as_generated = r["res"][2]["out"][:n]
    lin = (out > 0) & (out < CARD.adc.v_ref_v)
    assert lin.sum() > 20
    np.testing.assert_allclose(as_generated[lin], pred[lin], rtol=0, atol=1e-6)
    # 2 % mismatch makes the gains visibly differ from the design's: the instance matters
    a_pos, a_neg, _ = model.linear()
    gain = CARD.subtractor.gain_v_per_v
    assert abs(a_pos / gain - 1) > 1e-3 or abs(a_neg / gain - 1) > 1e-3
    # both rails were reached, so the agreement above covers clipping too (the output sits a
    # few mV beyond the clamp level: R_out carries the feedback network's current)
    assert out.max() > CARD.opamp.v_out_max_v - 0.01 and out.min() < CARD.opamp.v_out_min_v + 0.01
