"""The analog inference engine (issue 4): ideal mode is the trained model bit for bit, the
analog path is the mapping, sparsity-aware conversion changes no code the bound covers,
every non-ideality is a working switch, energy and area are complete, errors are clear.

The engine tests read the committed quick characterization of the default card
(``committed_library``): they need *a* library, not fresh SPICE, so only the one that runs
ngspice itself (``--verify-spice``) carries ``@pytest.mark.ngspice``. Models come from
:mod:`tests.engine_models` (tiny, trained once per process).
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from cosim.engine.config import EngineConfig
from cosim.engine.core import COMPONENTS, Drive, Engine, LayerStats, standard_normals
from cosim.engine.evaluate import evaluate
from cosim.engine.mapping import MappingError, check_model, map_model
from cosim.engine.sweep import SweepSpec, run_sweep
from cosim.engine.verify import verify_spice
from cosim.errors import CosimError, DataError, LibraryError
from cosim.library import load_library
from cosim.quant import WeightGrid

from .engine_models import (
    ALL_OFF,
    dataset,
    evaluate_recording,
    hidden_indices,
    reference_codes,
    trained,
)

DIGITS_MODELS = ("digits-global", "digits-per-layer", "digits-unipolar")


@pytest.fixture(scope="module")
def library(committed_library):
    return load_library(committed_library.path)


def _assert_same_codes(codes, codes_ref, what):
    assert set(codes) == set(codes_ref), what
    for i in codes_ref:
        np.testing.assert_array_equal(codes[i], codes_ref[i], err_msg=f"{what}: layer {i}")


def _changed_fraction(a, b):
    """Fraction of all hidden-layer codes that differ between two recordings."""
    diff = sum(int(np.count_nonzero(a[i] != b[i])) for i in a)
    return diff / sum(a[i].size for i in a)


# ------------------------------------------------------------------ 1. ideal mode is exact
def test_digits_models_exercise_the_mapping(library):
    """The bit-exactness tests below cover partial sums, unipolar columns with inverted bias
    rows and per-layer periphery only if the models really need them."""
    for name in DIGITS_MODELS:
        maps = Engine(trained(name), library, EngineConfig.ideal_mode()).maps
        assert all(m.n_row_tiles >= 2 for m in maps), name  # 64 and 128 inputs on 64 rows
        assert all(m.n_col_tiles >= 2 for m in maps), name
    uni = Engine(trained("digits-unipolar"), library, EngineConfig.ideal_mode()).maps
    assert all(m.unipolar.any() and not m.unipolar.all() for m in uni)
    assert any(m.n_bias_inverted > 0 for m in uni)  # a negative bias of a unipolar filter
    per = Engine(trained("digits-per-layer"), library, EngineConfig.ideal_mode()).maps
    assert len({m.periphery.r_t_ohm for m in per}) == len(per)  # one transimpedance per layer
    glob = Engine(trained("digits-global"), library, EngineConfig.ideal_mode()).maps
    assert len({m.periphery.r_t_ohm for m in glob}) == 1  # one shared setting


@pytest.mark.parametrize("partial_sums", ["digital", "analog"])
@pytest.mark.parametrize("name", DIGITS_MODELS)
def test_ideal_mode_is_bit_exact_on_digits(library, name, partial_sums):
    """Every test image: the same predictions and the same codes in every hidden layer as
    the integer reference, and the accuracy that training reported."""
    model, ds = trained(name), dataset("digits")
    cfg = EngineConfig.ideal_mode(partial_sums=partial_sums)
    res, codes = evaluate_recording(model, library, ds.x_test, ds.y_test, cfg)
    pred_ref, codes_ref = reference_codes(model, ds.x_test)
    assert res.n_samples == len(ds.x_test) == 359
    np.testing.assert_array_equal(res.predictions[0], pred_ref)
    _assert_same_codes(codes, codes_ref, name)
    assert res.accuracy_mean == model.info["test_accuracy"]


def test_ideal_mode_is_bit_exact_on_fashion_mnist(library):
    """LeNet-5 over all 10 000 Fashion-MNIST test images: predictions and the codes of both
    conv layers and both hidden dense layers identical to the integer reference."""
    model, ds = trained("fashion-lenet"), dataset("fashion-mnist")
    assert len(ds.x_test) == 10_000
    res, codes = evaluate_recording(model, library, ds.x_test, ds.y_test, EngineConfig.ideal_mode())
    pred_ref, codes_ref = reference_codes(model, ds.x_test)
    np.testing.assert_array_equal(res.predictions[0], pred_ref)
    assert sorted(codes) == hidden_indices(model) == [0, 2, 5, 6]
    _assert_same_codes(codes, codes_ref, "lenet5")
    assert codes[0].shape == (10_000, 6, 24, 24)


@pytest.mark.parametrize(
    "name, ds_name, n",
    [("digits-global", "digits", None), ("digits-per-layer", "digits", None),
     ("digits-unipolar", "digits", None), ("fashion-lenet", "fashion-mnist", 500)],
)  # fmt: skip
def test_analog_path_with_every_effect_off_gives_the_ideal_codes(library, name, ds_name, n):
    """The analog path itself (DAC voltages, device levels, bias rows, transimpedance,
    subtractors, unipolar columns with their g_min reference line, the ADC's transfer,
    bitlines joined over row tiles) with no hardware effect reproduces the integer codes
    exactly: the mapping's scales are right, not just close."""
    model, ds = trained(name), dataset(ds_name)
    x, y = ds.x_test[:n], ds.y_test[:n]
    cfg = EngineConfig(**ALL_OFF, partial_sums="analog")
    res, codes = evaluate_recording(model, library, x, y, cfg)
    pred_ref, codes_ref = reference_codes(model, x)
    _assert_same_codes(codes, codes_ref, name)
    np.testing.assert_array_equal(res.predictions[0], pred_ref)


# --------------------------------------------------- 2. verify-spice, analog partial sums
@pytest.mark.ngspice
def test_verify_spice_with_analog_partial_sums(library, quick_library_cache):
    """With analog partial sums only single-row-tile layers can be verified; LeNet-5's conv1
    (25 inputs and one bias row) is one. Its 8-bit conversions (W4A8) also exercise the
    sense-row skip decided from the SPICE V_sense."""
    model, ds = trained("fashion-lenet-a8"), dataset("fashion-mnist")
    cfg = EngineConfig(partial_sums="analog")
    maps = Engine(model, library, cfg).maps
    assert [m.index for m in maps if m.n_row_tiles == 1] == [0]
    v = verify_spice(
        model, library, ds.x_test[:200], cfg, 12, jobs=2, cache_dir=quick_library_cache
    )
    # every output of every simulated vector is compared: the tile's outputs, from the maps
    n_out = {(t.row_tile, t.col_tile): len(t.outputs) for t in maps[0].tiles}
    sims = {(*op["tile"], op["vector"]) for op in v["operations"]}
    assert v["codes_compared"] == sum(n_out[s[:2]] for s in sims) == len(v["operations"])
    assert v["vectors_simulated"] == len(sims) <= 12
    assert {op["layer"] for op in v["operations"]} == {0}
    assert v["engine_path"] == "folded"  # the codes forward computed, read by Engine.trace
    assert not any(op["partial_sum"] for op in v["operations"])
    # 1 LSB is 3.9 mV at 8 bits; the MAC unit's surrogates sit within ~0.1 LSB of SPICE
    # (measured rms 0.06 LSB), so every code is within one, and a code differs only where a
    # transition lies between the two voltages (the engine's converter, fed SPICE's
    # voltage, gives SPICE's code): about mean |dv| / LSB ~ 5 % of the codes
    assert v["within_1_lsb_fraction"] == 1.0
    for op in v["operations"]:
        assert op["engine_adc_code_at_spice_voltage"] == op["spice_code"], op
    lo, hi = v["identical_rate_ci95"]
    assert lo <= v["identical_rate"] <= hi and v["identical_rate"] >= 0.85
    # inside the ADC range: a clipped output past it is not modelled up to the rail
    assert v["analog_max_error_lsb"] < 0.5 and 0 < v["analog_outputs_in_range"] <= len(
        v["operations"]
    )


@pytest.mark.ngspice
def test_verify_spice_with_ideal_converters(library, quick_library_cache):
    """``--no-adc-mismatch`` converts with the ideal transfer: no converter circuit is left
    to simulate, so SPICE's MAC-unit voltages go through that same transfer (was: an error
    after the whole evaluation)."""
    model, ds = trained("digits-global"), dataset("digits")
    cfg = EngineConfig(adc=False, programming_noise=False)
    v = verify_spice(model, library, ds.x_test[:50], cfg, 3, jobs=2, cache_dir=quick_library_cache)
    assert v["adc_instances_simulated"] == 0 and v["adc_instances_ideal"] > 0
    assert v["codes_compared"] == len(v["operations"]) > 0
    assert v["within_1_lsb_fraction"] == 1.0
    for op in v["operations"]:  # the same ideal transfer on both sides
        assert op["engine_adc_code_at_spice_voltage"] == op["spice_code"], op


# ------------------------------------------------------- 3. sparsity-aware conversion
@pytest.fixture(scope="module", params=["fashion-lenet", "fashion-lenet-a8"])
def skip_runs(request, library):
    """LeNet-5 (W4A3: 3-bit conversions, up to 2 skipped cycles; W4A8: up to 6) on 300
    Fashion-MNIST images, every effect on except the per-read noise (a random draw per
    read), with and without sense-row skipping, on the same chip."""
    model, ds = trained(request.param), dataset("fashion-mnist")
    x, y = ds.x_test[:300], ds.y_test[:300]
    on = evaluate_recording(model, library, x, y, EngineConfig(read_noise=False))
    off = evaluate_recording(model, library, x, y, EngineConfig(read_noise=False, sense_skip=False))
    return on, off


def test_sense_skip_changes_no_code_where_the_bound_holds(skip_runs):
    """A layer whose conversions all kept the bound (and whose inputs were identical, i.e.
    no earlier layer violated it) gives the same codes with and without skipping; a
    violated bound saturates that conversion and nothing else."""
    (r_on, c_on), (r_off, c_off) = skip_runs
    skipped, inputs_equal = 0, True
    for lay_on, lay_off, i in zip(r_on.layers, r_off.layers, sorted(c_on), strict=True):
        assert lay_off.skipped_cycle_fraction == 0 and lay_off.bound_violations == 0
        skipped += lay_on.skipped_cycle_fraction > 0
        differ = int(np.count_nonzero(c_on[i] != c_off[i]))
        if inputs_equal:
            assert differ <= lay_on.bound_violations, f"layer {i}: {differ} codes changed"
        inputs_equal = inputs_equal and differ == 0
    assert skipped >= 1  # otherwise this test compares nothing
    if all(lay.bound_violations == 0 for lay in r_on.layers):  # measured: none
        np.testing.assert_array_equal(r_on.predictions[0], r_off.predictions[0])


def test_sense_skip_reports_skipped_cycles_and_saves_adc_energy(skip_runs):
    """conv1's zero borders give zero inputs, whose conversions skip MSB cycles."""
    (r_on, _), (r_off, _) = skip_runs
    conv1_on, conv1_off = r_on.layers[0], r_off.layers[0]
    assert conv1_on.layer == "0:conv2d"
    assert conv1_on.skipped_cycle_fraction > 0.005  # measured 8.0 % (W4A3), 5.9 % (W4A8)
    e_on = conv1_on.energy_per_inference_j.adc
    e_off = conv1_off.energy_per_inference_j.adc
    assert 0 < e_on < e_off  # measured 9.5 % (W4A3) and 17 % (W4A8) less
    for lay_on, lay_off in zip(r_on.layers, r_off.layers, strict=True):
        if lay_on.skipped_cycle_fraction == 0:  # same codes, same conversions
            assert lay_on.energy_per_inference_j.adc == pytest.approx(
                lay_off.energy_per_inference_j.adc, rel=1e-12
            )
    assert r_on.energy_per_inference_j["adc"] < r_off.energy_per_inference_j["adc"]
    # the thresholds carry a 4-sigma op-amp offset budget, one LSB of INL and a 2 % margin:
    # a single violation on 300 images would mean the bound is not safe
    assert sum(lay.bound_violations for lay in r_on.layers) == 0


def test_adc_codes_legal_skip_changes_nothing_illegal_one_saturates(library):
    """``Engine._adc_codes`` on constructed voltages: LeNet conv1 has one row tile, so its
    three-bit ADCs convert final codes; with the ADC switch off they are ideal quantizers and
    the code of ``c·LSB`` is ``c``. Skipping ``k`` MSB cycles is legal when the code is below
    ``2**(bits-k)``; otherwise the conversion saturates at ``2**(bits-k) - 1`` and counts as
    a bound violation."""
    model = trained("fashion-lenet")
    eng = Engine(model, library, EngineConfig(**ALL_OFF))
    st = eng.chip(0)[0]
    n_out = len(st.lmap.tiles[0].outputs)
    bits, lsb = 3, library.card.adc.v_ref_v / 2**3
    rows = np.arange(48)
    code = (rows[:, None] + np.arange(n_out)[None, :]) % 8
    skip = rows % 3  # 0, 1, 2 skipped cycles (max: bits - 1)
    v = code * lsb
    full = eng._adc_codes(st, 0, -1, v, bits, False, None, LayerStats("none"))
    np.testing.assert_array_equal(full, code)
    stats = LayerStats("skip")
    out = eng._adc_codes(st, 0, -1, v, bits, False, skip, stats)
    cap = (1 << (bits - skip))[:, None] - 1
    legal = code <= cap
    np.testing.assert_array_equal(out[legal], code[legal])
    np.testing.assert_array_equal(out[~legal], np.broadcast_to(cap, code.shape)[~legal])
    assert stats.bound_violations == int(np.count_nonzero(~legal)) > 0
    assert stats.skipped_cycles == int(skip.sum()) * n_out
    assert stats.cycles == code.size * bits and stats.conversions == code.size


def _rails_case(eng, factor):
    """LeNet conv1 on chip 0 at ``factor`` times the mapped transimpedance, without read
    noise: the engine's voltages for 3000 random input vectors (a third of them small), the
    loop solve's for the same vectors (the TIA and subtractor models on the exact column
    currents), and the statistics of the engine's run."""
    st = eng.chip(0)[0]
    lm, ts = st.lmap, st.tiles[0]
    assert lm.n_row_tiles == 1 and all(q is not None for _, _, q in ts.tile.outputs)
    per = lm.periphery
    r_t = factor * per.r_t_ohm
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 1 << per.in_bits, (3000, lm.fan_in)).astype(np.uint8)
    codes[:1000] //= 4
    v_tab = np.arange(1 << per.in_bits) * per.v_in_lsb
    drive = Drive(codes, eng.crossbar.drive(v_tab), eng.crossbar.quad_drive(v_tab))
    stats = LayerStats("rails")
    v, _ = eng._group_voltages(st, 0, [ts], drive, False, rng, r_t, False, stats)
    m_tia, bias_tia = ts.tia_transfer()
    u = drive.values(np.arange(codes.shape[0]), 0, lm.fan_in)
    cur = u[..., 0] @ m_tia[ts.tile.data_rows] + u[..., 1] @ ts.m_quad[ts.tile.data_rows]
    cur += bias_tia
    want = eng.chain_stages(st, 0, [ts], r_t, False).exact(cur, LayerStats("ref"))
    return st, v, want, stats


def test_tias_and_subtractors_near_their_rails_take_the_exact_solve(library):
    """LeNet conv1's pair TIAs with a transimpedance 3x the mapped one, so that large inputs
    drive them into their rails: the folded path must hand exactly those vectors to the
    loop solve, whatever the bound column says (at the mapped transimpedance no input can
    reach the rails, and the fold proves it: no per-vector check). The subtractors clip
    there too; their rails (±1.1 V) lie outside the ADC's range, where a clipped output
    converts like the linear one, so the voltages agree within [0, V_ref]. With rails
    moved inside the ADC's range (0.7 V) they agree everywhere: the outputs are checked."""
    eng = Engine(trained("fashion-lenet"), library, EngineConfig(read_noise=False))
    st, v, want, stats = _rails_case(eng, 3.0)
    ts, r_t = st.tiles[0], st.lmap.periphery.r_t_ohm
    assert eng._fold(st, 0, [ts], r_t, False, 2).c_pair is None  # proven safe
    fo = eng._fold(st, 0, [ts], 3.0 * r_t, False, 2)
    assert fo.c_pair is not None and fo.sub_limits is None
    v_ref = library.card.adc.v_ref_v
    np.testing.assert_allclose(np.clip(v, 0, v_ref), np.clip(want, 0, v_ref), atol=2e-5)
    assert 0 < stats.tia_saturated < stats.tia_reads / 100  # some TIAs sat in their rails
    assert np.any(want > v_ref) and np.any(v > 1.2)  # the subtractors did clip
    # subtractor rails at ±0.7 V, inside the ADC's range: checked per vector
    narrow = replace(eng.sub.opamp, v_out_min_v=-0.7, v_out_max_v=0.7)
    eng.sub = replace(eng.sub, opamp=narrow)
    st, v, want, _ = _rails_case(eng, 3.0)
    assert eng._fold(st, 0, st.tiles[:1], 3.0 * r_t, False, 2).sub_limits == pytest.approx(
        (-0.65, 0.65)
    )
    np.testing.assert_allclose(v, want, atol=2e-5)
    assert np.any(want > 0.6)


def test_adc_energy_falls_with_skipped_cycles(library):
    """The fitted SAR energy: the same (small) codes converted with two MSB cycles skipped
    cost less than with none."""
    eng = Engine(trained("fashion-lenet"), library, EngineConfig(read_noise=False))
    st = eng.chip(0)[0]
    n_out = len(st.lmap.tiles[0].outputs)
    v = np.full((64, n_out), 0.5 * library.card.adc.v_ref_v / 8)  # code 0 or 1: legal
    energy = []
    for k in (0, 2):
        stats = LayerStats(f"skip {k}")
        eng._adc_codes(st, 0, -1, v, 3, False, np.full(64, k), stats)
        assert stats.bound_violations == 0
        energy.append(stats.energy_j["adc"])
    assert 0 < energy[1] < energy[0]


# --------------------------------------------------------------- 4. non-idealities
# (base overrides, the change): each change alone, from a base with everything else off
SWITCHES = {
    "programming_noise": ({}, {"programming_noise": True}),
    "read_noise": ({}, {"read_noise": True}),
    "stuck_faults": ({}, {"stuck_faults": True}),
    "ir_drop": ({}, {"ir_drop": True}),
    "nonlinearity": ({}, {"nonlinearity": True}),
    "periphery": ({}, {"periphery": True}),
    "adc": ({}, {"adc": True}),
    "nvw": ({}, {"nvw": 0.05}),
    "drift": ({}, {"drift_t_s": 1e4}),
    "nva": ({"adc": True}, {"nva": 0.02}),
    "adc_bits": ({"partial_sums": "analog"}, {"adc_bits": 2}),
    "partial_sums": ({}, {"partial_sums": "analog"}),
    "psum_range": ({}, {"psum_range": 8.0}),
}


#: What a switch predicts for the first hidden layer's codes (later layers also see moved
#: inputs). ``down``: the effect only takes current away (IR drop along the wires, the sinh
#: I-V below V_read, conductance drift), so moved codes move down, at least 3 to 1 (a pair's
#: negative column losing more, or a bias, can move a code up). ``balanced``: zero-mean noise
#: added to each output (read noise, ADC-referred nva): codes strictly inside the grid move
#: up as often as down, within 3 sqrt(n) of n moves (6 binomial sigma; a 10 % bias over the
#: thousands of moves here is far outside it). ``odd``: a 2-bit ADC on the 3-bit output grid
#: (the same full scale) rounds to even codes: exactly the odd codes move, by one step.
#: ``psum``: the switch changes only how a row tile's partial sum is converted (each at the
#: card's resolution, one partial-sum code being ``psum_range·2**(out_bits + 1)/2**psum_bits``
#: output codes): an ADC instance's codes differ from the ideal ones by at most
#: ``ceil(INL_max)`` (the library's largest Monte-Carlo INL), and rounding differs by half a
#: code, so over ``n`` row tiles the pre-activation moves by at most ``e`` output codes and a
#: code by at most ``floor(e) + 1`` (:func:`_psum_bound`).
#: The other switches (programming noise, nvw, stuck faults, periphery) have no prediction
#: this cheap: they must move some code.
PREDICTED = {
    "ir_drop": "down",
    "nonlinearity": "down",
    "drift": "down",
    "read_noise": "balanced",
    "nva": "balanced",
    "adc_bits": "odd",
    "adc": "psum",
    "partial_sums": "psum",
    "psum_range": "psum",
}


def _psum_bound(library, lm, base: EngineConfig, change: dict) -> int:
    """The largest move of a first-layer code that switching ``change`` on can cause through
    the partial sums' conversions alone (see :data:`PREDICTED`)."""
    bits = library.card.adc.bits
    out_bits = lm.periphery.adc_bits
    code = {  # one partial-sum code in output codes, before and after the switch
        p: p * 2.0 ** (out_bits + 1) / 2.0**bits
        for p in (base.psum_range, change.get("psum_range", base.psum_range))
    }
    n = lm.n_row_tiles
    if "adc" in change:  # an instance's codes against the ideal converter's
        inl = library.validation["sar_adc"].extras["mc_inl_max_lsb"]
        e = n * np.ceil(inl) * code[base.psum_range]
    elif "partial_sums" in change:  # analog: one rounding at the output grid
        e = n * 0.5 * code[base.psum_range]
    else:  # two partial-sum grids
        e = n * 0.5 * sum(code.values())
    return int(np.floor(e)) + 1


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_each_non_ideality_changes_codes_on_a_fixed_chip(library, switch):
    """Switching one effect on (seed fixed, everything else off) moves codes as the effect
    predicts (:data:`PREDICTED`). The smallest measured: the mild sinh I-V moves ~1 % of the
    digits MLP's hidden codes."""
    base_kw, change = SWITCHES[switch]
    model, ds = trained("digits-global"), dataset("digits")
    base = EngineConfig(**{**ALL_OFF, **base_kw})
    _, c0 = evaluate_recording(model, library, ds.x_test, ds.y_test, base)
    _, c1 = evaluate_recording(model, library, ds.x_test, ds.y_test, base.with_(**change))
    assert _changed_fraction(c0, c1) > 0
    first = min(c0)
    a, b = c0[first].astype(int), c1[first].astype(int)
    d = b - a
    up, down = int(np.sum(d > 0)), int(np.sum(d < 0))
    kind = PREDICTED.get(switch)
    if kind == "down":
        assert down > 0 and down >= 3 * up, f"{switch}: {down} codes down, {up} up"
    elif kind == "balanced":
        top = int(a.max())
        inner = (a > 0) & (a < top)  # free to move either way (0 and the top code clip)
        up_i, down_i = int(np.sum((d > 0) & inner)), int(np.sum((d < 0) & inner))
        n = up_i + down_i
        assert n >= 100, f"{switch}: only {n} inner codes moved; too few to test the balance"
        assert abs(up_i - down_i) <= 3 * np.sqrt(n), f"{switch}: {up_i} up, {down_i} down"
    elif kind == "odd":
        np.testing.assert_array_equal(d != 0, a % 2 == 1)
        assert set(np.unique(d)) <= {-1, 0, 1}
    elif kind == "psum":
        lm = next(m for m in Engine(model, library, base).maps if m.index == first)
        assert lm.n_row_tiles > 1 and base.partial_sums == "digital"
        bound = _psum_bound(library, lm, base, change)
        assert 0 < int(np.abs(d).max()) <= bound, f"{switch}: moves up to {np.abs(d).max()}"


def test_adc_bits_changes_codes_with_digital_partial_sums(library):
    model, ds = trained("digits-global"), dataset("digits")
    base = EngineConfig(**ALL_OFF)
    _, c0 = evaluate_recording(model, library, ds.x_test, ds.y_test, base)
    _, c1 = evaluate_recording(model, library, ds.x_test, ds.y_test, base.with_(adc_bits=2))
    assert _changed_fraction(c0, c1) > 0


def test_nva_is_not_ignored_without_adc_mismatch(library):
    model, ds = trained("digits-global"), dataset("digits")
    base = EngineConfig(**ALL_OFF)
    _, c0 = evaluate_recording(model, library, ds.x_test, ds.y_test, base)
    _, c1 = evaluate_recording(model, library, ds.x_test, ds.y_test, base.with_(nva=0.02))
    assert _changed_fraction(c0, c1) > 0


def test_adc_bits_finer_than_the_output_grid(library):
    """8-bit conversions re-expressed on LeNet-5's 3-bit output grid give the integer
    model's first-layer codes up to double rounding: the 8-bit code rounds ``x = v/LSB_3``
    to 1/32 of an output code, and rounding that again moves a code only when ``x`` lies
    within 1/64 below a half-integer (the 1/32-step tie rounds up), by exactly +1."""
    model, ds = trained("fashion-lenet"), dataset("fashion-mnist")
    x, y = ds.x_test[:200], ds.y_test[:200]
    per = Engine(model, library, EngineConfig.ideal_mode()).maps
    assert all(m.periphery.adc_bits == 3 for m in per)  # 8 bits is finer than the grid
    cfg = EngineConfig(**ALL_OFF, partial_sums="analog", adc_bits=8)
    _, codes = evaluate_recording(model, library, x, y, cfg)
    _, codes_ref = reference_codes(model, x)
    first = min(codes_ref)  # later layers see the first one's moved codes as inputs
    d = codes[first].astype(int) - codes_ref[first].astype(int)
    assert set(np.unique(d)) <= {0, 1}, "only the double rounding's +1"
    # the double-rounding band is 1/64 of a code wide: at most ~1.6 % of codes with
    # uniformly spread residues; 2.5 % leaves room for residues bunched near the band
    double_rounding_bound = 0.025
    assert np.count_nonzero(d) / d.size <= double_rounding_bound


def test_weight_variation_sweep_degrades_accuracy(library):
    """Accuracy falls as nvw grows (2 chips per point; measured 0.89, 0.86, 0.76, 0.52)."""
    model, ds = trained("digits-global"), dataset("digits")
    spec = SweepSpec.parse("nvw=0:0.3:0.1")
    assert spec.values == pytest.approx((0.0, 0.1, 0.2, 0.3))
    res = run_sweep(model, library, ds.x_test, ds.y_test, EngineConfig(chips=2), spec)
    acc = res["accuracy_mean"]
    # monotone up to chip-to-chip scatter (std over 2 chips measured <= 0.03)
    assert all(b <= a + 0.03 for a, b in itertools.pairwise(acc))
    assert acc[-1] < acc[0] - 0.2
    assert res["reference_accuracy"] == pytest.approx(acc[0])  # nvw=0 is the reference
    assert res["largest_value_within_margin"] in (0.0, 0.1)


def test_chips_seed_and_reproducibility(library):
    model, ds = trained("digits-global"), dataset("digits")
    cfg = EngineConfig(chips=3, nvw=0.05, seed=7)
    a = evaluate(model, library, ds.x_test, ds.y_test, cfg)
    b = evaluate(model, library, ds.x_test, ds.y_test, cfg)
    assert len(a.accuracy_per_chip) == 3 and a.accuracy_std > 0
    assert a.accuracy_std == pytest.approx(np.std(a.accuracy_per_chip))
    assert a.accuracy_per_chip == b.accuracy_per_chip
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.predictions[0], a.predictions[1])  # chips differ
    c = evaluate(model, library, ds.x_test, ds.y_test, cfg.with_(seed=8))
    assert not np.array_equal(a.predictions[0], c.predictions[0])
    # ideal mode is one exact "chip" whatever --chips says
    assert len(evaluate(model, library, ds.x_test, ds.y_test,
                        EngineConfig.ideal_mode(chips=3)).accuracy_per_chip) == 1  # fmt: skip


def test_threads_do_not_change_the_result(library):
    """Batches on 3 threads: the same predictions, statistics and energies as on one (the
    read noise is drawn per block of samples, the energies tallied exactly;
    :mod:`tests.test_engine_streams` varies the batch size too)."""
    model, ds = trained("digits-global"), dataset("digits")
    cfg = EngineConfig(chips=2, nvw=0.05, batch=64)
    a = evaluate(model, library, ds.x_test, ds.y_test, cfg)
    b = evaluate(model, library, ds.x_test, ds.y_test, cfg, threads=3)
    assert ds.x_test.shape[0] > 3 * cfg.batch
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert a.layers == b.layers and a.energy_per_inference_j == b.energy_per_inference_j
    with pytest.raises(CosimError, match="threads"):
        evaluate(model, library, ds.x_test, ds.y_test, cfg, threads=0)


def test_read_energy_sums_equal_the_unrolled_vectors():
    """The read energy's per-input sums of ``V·s(V)`` come from the summed input map, not
    the unrolled vectors: the same sums for convolutions with padding and stride and for
    dense layers; the map is summed in fixed point (exact integers, 2**-38 of the largest
    value), which the sums match to 1e-10."""
    from types import SimpleNamespace

    from cosim.engine.blocks import im2col_columns
    from cosim.engine.energy import read_units, window_sums

    rng = np.random.default_rng(0)
    table = rng.random(8)
    table[0] = 0.0  # code 0 is 0 V
    fixed, scale = read_units(table)
    assert fixed.dtype == np.int64 and fixed[0] == 0 and fixed.max() == 2**38
    for kk, stride, pad in [(5, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 0)]:
        lay = SimpleNamespace(kind="conv2d", kernel=kk, stride=stride, padding=pad)
        k = rng.integers(0, 8, (7, 3, 12, 12))
        want = table[im2col_columns(k, kk, stride, pad)].sum(axis=0)
        np.testing.assert_allclose(window_sums(lay, table[k].sum(axis=0)), want, rtol=1e-12)
        got = window_sums(lay, fixed[k].sum(axis=0) / scale)
        np.testing.assert_allclose(got, want, rtol=1e-10)
    k = rng.integers(0, 8, (9, 20))
    got = window_sums(SimpleNamespace(kind="dense"), table[k].sum(axis=0))
    np.testing.assert_allclose(got, table[k].sum(axis=0), rtol=1e-12)


def test_read_noise_draws_are_standard_normal():
    """The Box–Muller draws: moments, a Kolmogorov–Smirnov test, tails to 5 sigma at the
    expected rate, odd sizes, and reproducibility from the seed."""
    from scipy import stats

    x = standard_normals(np.random.default_rng(3), (1_000_001,)).astype(float)
    assert x.shape == (1_000_001,)
    assert abs(x.mean()) < 5e-3 and abs(x.std() - 1) < 3e-3
    assert abs(stats.skew(x)) < 1e-2 and abs(stats.kurtosis(x)) < 2e-2
    assert stats.kstest(x, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(x) > 4)  # 6.3e-5 for N(0, 1)
    assert 3e-5 < tail < 1.2e-4
    a = standard_normals(np.random.default_rng(4), (7, 3))
    np.testing.assert_array_equal(a, standard_normals(np.random.default_rng(4), (7, 3)))
    assert a.dtype == np.float32 and a.shape == (7, 3)


def _p_op_read_j(card):
    """Energy of one op-amp over one read: supply span · quiescent current · t_read."""
    o = card.opamp
    return (o.v_supply_pos_v - o.v_supply_neg_v) * o.i_quiescent_a * card.tia.t_read_s


def test_energy_per_inference_has_every_component(library):
    """Default (all effects on) digits MLP: every component positive except the sense row,
    which costs nothing here (every layer spans several row tiles and its digital partial
    sums never skip, so the sense TIA and comparators are idle); the DAC, TIA and
    subtractor energies equal the counts of the mapping (64 and 128 inputs; 8 + 6 tiles of
    32 pairs) times the card's figures, to float rounding."""
    model, ds = trained("digits-global"), dataset("digits")
    res = evaluate(model, library, ds.x_test, ds.y_test, EngineConfig())
    e, card = res.energy_per_inference_j, library.card
    assert set(e) == set(COMPONENTS)
    used = [k for k in COMPONENTS if k not in ("sense_row", "layer_tuning")]
    assert all(e[k] > 0 for k in used), e
    assert e["sense_row"] == 0.0
    assert res.to_dict()["energy_total_per_inference_j"] == pytest.approx(sum(e.values()))
    for lay in res.layers:
        assert all(lay.energy_per_inference_j[k] > 0 for k in used), lay.layer
    # DAC: every column tile drives its own copy of the inputs: 64·4 + 128·2 conversions
    assert e["dac"] == pytest.approx(card.dac.e_conv_j * (64 * 4 + 128 * 2), rel=1e-9)
    # TIAs: 64 columns per tile, subtractors: 32 pairs per tile, on 14 tiles
    assert e["tia"] == pytest.approx(_p_op_read_j(card) * 14 * 64, rel=1e-9)
    assert e["subtractor"] == pytest.approx(_p_op_read_j(card) * 14 * 32, rel=1e-9)


def test_analog_partial_sums_count_one_tia_per_column(library):
    model, ds = trained("digits-global"), dataset("digits")
    res = evaluate(model, library, ds.x_test, ds.y_test, EngineConfig(partial_sums="analog"))
    # 4 + 2 column tiles of 64 columns, each read once per inference
    assert res.energy_per_inference_j["tia"] == pytest.approx(
        _p_op_read_j(library.card) * 6 * 64, rel=1e-9
    )


@pytest.mark.parametrize("change", [{"adc": False}, {"nva": 0.02}])
def test_adc_energy_does_not_depend_on_the_mismatch_model(library, change):
    """The mismatch model moves decisions, not the energy model: every (skip, code) costs
    the same with and without it, and the per-inference ADC energy differs only through the
    codes (and, in later layers, the skips) that the mismatch changes."""
    model, ds = trained("digits-global"), dataset("digits")
    x, y = ds.x_test[:100], ds.y_test[:100]
    ref, alt = EngineConfig(), EngineConfig(**change)
    m_ref, m_alt = (
        Engine(model, library, ref)._adc_by_bits,
        Engine(model, library, alt)._adc_by_bits,
    )
    assert set(m_alt) == set(m_ref)
    for bits in m_ref:
        k, c = np.meshgrid(np.arange(bits), np.arange(1 << bits))
        c = np.minimum(c, (1 << (bits - k)) - 1)  # the codes a skip leaves reachable
        e_ref = m_ref[bits].energy_per_conversion_j(k, c)
        e_alt = m_alt[bits].energy_per_conversion_j(k, c)
        np.testing.assert_array_equal(e_alt, e_ref)  # the same fitted model: exactly equal
    a = evaluate(model, library, x, y, ref).energy_per_inference_j["adc"]
    b = evaluate(model, library, x, y, alt).energy_per_inference_j["adc"]
    # per-conversion energy depends on the code only through the fitted reference energy
    # per set bit, and nva moves few codes by few LSB (measured: 1.4 % with nva = 0.02,
    # 0.04 % for the capacitor mismatch); 5 % is ~3.5x the larger of the two
    code_dependence_rel = 0.05
    assert a > 0
    assert b == pytest.approx(a, rel=code_dependence_rel)


def test_area_shared_for_global_dedicated_for_per_layer(library):
    """Component counts of the digits MLP from first principles: layer 1 on 2×4 tiles,
    layer 2 on 3×2 tiles; every tile has 64 TIAs, 32 subtractors, 4 ADCs (8 columns each)
    and a sense row, and uses 66 (layer 1) or 130 (layer 2) DAC rows per column tile."""
    card, ds = library.card, dataset("digits")
    per_tile = {"tia": 64, "subtractor": 32, "adc": 4, "sense_row": 1}
    layer_tiles = (8, 6)
    # data rows and the bias rows (at least the card's array.bias_rows), per column tile
    dac = (4 * (64 + 2), 2 * (128 + 2))
    unit = {k: getattr(card, k).area_m2 for k in ("dac", "tia", "subtractor", "adc", "sense_row")}
    for name, mode in (("digits-global", "shared"), ("digits-per-layer", "dedicated")):
        res = evaluate(trained(name), library, ds.x_test[:50], ds.y_test[:50], EngineConfig())
        a = res.area_m2
        assert a.periphery == mode
        assert res.periphery.shared == (mode == "shared")
        pick = max if mode == "shared" else sum
        want = {k: pick(n * t for t in layer_tiles) for k, n in per_tile.items()}
        want["dac"] = pick(dac)
        for k, n in want.items():
            assert a.counts[k] == n, (name, k)
            assert a.breakdown_m2[k] == pytest.approx(n * unit[k], rel=1e-12)
        assert a.counts["tiles"] == 14
        assert a.counts["crossbar_cells"] == 14 * 64 * 65  # the sense line is a column
        assert a.breakdown_m2["digital"] == pytest.approx(
            (128 + 64) * card.digital.area_per_column_m2
        )
        assert all(v > 0 for v in a.breakdown_m2.values())
        assert a.total_m2 == pytest.approx(sum(a.breakdown_m2.values()))
        assert a.total_m2 == pytest.approx(getattr(a, f"total_{mode}_m2"))
        assert a.total_shared_m2 < a.total_dedicated_m2


# ----------------------------------------------------------------------- 5. clear errors
def test_engine_config_refuses_out_of_range_values():
    bad = [
        ({"partial_sums": "both"}, "partial_sums = 'both'; use one of digital, analog"),
        ({"psum_range": 0.1}, "psum_range = 0.1 must be a finite number in [0.25, 64]"),
        ({"psum_range": 100.0}, "psum_range = 100.0 must be a finite number in [0.25, 64]"),
        ({"nvw": -0.1}, "nvw = -0.1 must be a finite number in [0, 1]"),
        ({"nva": -1e-3}, "nva = -0.001 must be a finite number in [0, 1]"),
        ({"drift_t_s": 0.0}, "drift time t (s) = 0.0 must be a finite number in (0,"),
        ({"chips": 0}, "chips = 0 must be a finite number in [1, 10000]"),
        ({"batch": 0}, "batch = 0 must be a finite number in [1, 1e+06]"),
        ({"adc_bits": 9}, "adc_bits = 9 must be a finite number in [1, 8]"),
        ({"adc_bits": 0}, "adc_bits = 0 must be a finite number in [1, 8]"),
    ]
    for kw, msg in bad:
        with pytest.raises(CosimError) as exc:
            EngineConfig(**kw)
        assert msg in str(exc.value), kw
    with pytest.raises(CosimError, match=r"unknown engine setting 'nwv'; known: .*nvw"):
        EngineConfig().with_(nwv=0.1)


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("nvw", "write NAME=start:stop:step"),
        ("vnw=0:0.3:0.1", "unknown parameter 'vnw'; sweepable: nvw, nva, t, adc_bits"),
        ("nvw=0:x:0.1", "start:stop:step must be numbers"),
        ("nvw=0.3:0:0.1", "need step > 0 and stop >= start"),
        ("nvw=0:0.3:0", "need step > 0 and stop >= start"),
        ("nvw=0:0.3", "write NAME=start:stop:step or NAME=value"),
        ("t=0:10:5", "t = 0.0 must be a finite number in (0, 3.2e+08]"),
        ("nva=-0.1", "nva = -0.1 must be a finite number in [0, 1]"),
    ],
)
def test_bad_sweep_specs(spec, msg):
    with pytest.raises(CosimError) as exc:
        SweepSpec.parse(spec)
    assert msg in str(exc.value)


def test_sweep_spec_values():
    assert SweepSpec.parse("nvw=0:0.3:0.02").values[-1] == pytest.approx(0.3)
    assert len(SweepSpec.parse("nvw=0:0.3:0.02").values) == 16  # stop included
    assert SweepSpec.parse("adc-bits=3:6:1").name == "adc_bits"
    assert SweepSpec.parse("t=100").values == (100.0,)


def test_model_and_card_that_do_not_fit(library):
    """Bits above what the card's device, ADC or DAC hold; a float model."""
    card, model = library.card, trained("digits-global")
    assert card.device.level_bits == 4 and card.adc.bits == 8
    cases = [
        ({"device": {"level_bits": 3}},
         "hidden layer 0 has 4-bit weights but the card's pcm device holds 3-bit levels (8); "
         "use a card with device.level_bits >= 4 or retrain with --w-bits 3"),
        ({"adc": {"bits": 2}, "sense_row": {"max_skip_bits": 1}},
         "hidden layer 0 has 3-bit activations but the card's ADC has 2 bits; use a card "
         "with adc.bits >= 3 or retrain with --a-bits 2"),
        ({"dac": {"bits": 6}}, "hidden layer 0 takes 8-bit inputs but the card's DAC has 6 bits"),
    ]  # fmt: skip
    for update, msg in cases:
        small = card.with_updates(update)
        for fn in (check_model, map_model):
            with pytest.raises(MappingError) as exc:
                fn(model, small)
            assert msg in str(exc.value)
    # level bits and DAC bits are what-if fields: the engine takes such a card and refuses
    # the model the same way; ADC bits were characterized: that card needs a new library
    with pytest.raises(MappingError, match="4-bit weights"):
        Engine(model, library, EngineConfig(), card.with_updates(cases[0][0]))
    with pytest.raises(LibraryError, match=r"changes adc\.bits \(8 -> 2\).*characterize"):
        Engine(model, library, EngineConfig(), card.with_updates(cases[1][0]))
    with pytest.raises(MappingError) as exc:
        check_model(trained("digits-float"), card)
    assert "trained with scheme 'float'" in str(exc.value)
    assert "train with --scheme global, per-layer or fixed" in str(exc.value)
    with pytest.raises(MappingError, match="scheme 'float'"):
        Engine(trained("digits-float"), library, EngineConfig())


def test_biases_that_need_more_rows_than_the_tile(library):
    """A bias of 31 units at 4-bit weights needs ceil(31/15) = 3 rows of 4-bit devices: more
    than a 2-row array holds (array size is a what-if field)."""
    model = trained("digits-global")
    layers = list(model.layers)
    first = hidden_indices(model)[0]
    layers[first] = replace(layers[first], n_b=np.full_like(layers[first].n_b, 31))
    tampered = replace(model, layers=tuple(layers))
    card = library.card.with_updates({"array": {"rows": 2, "bias_rows": 1}})
    with pytest.raises(MappingError) as exc:
        map_model(tampered, card)
    assert "its biases need 3 bias rows, more than the card's 2 rows" in str(exc.value)


def test_global_model_whose_ranges_are_not_shared_is_refused(library):
    model = trained("digits-global")
    layers = list(model.layers)
    first = hidden_indices(model)[0]
    # twice the weight range on the first layer only: its R_t halves
    w = layers[first].w_grid
    layers[first] = replace(layers[first], w_grid=WeightGrid(2 * w.w_max, w.bits))
    tampered = replace(model, layers=tuple(layers))
    with pytest.raises(MappingError, match="ranges are not shared"):
        map_model(tampered, library.card)


def test_data_of_the_wrong_shape_or_with_nan(library):
    model, ds = trained("digits-global"), dataset("digits")
    eng = Engine(model, library, EngineConfig.ideal_mode())
    with pytest.raises(DataError) as exc:
        eng.check_input(np.zeros((3, 1, 28, 28)))
    assert str(exc.value) == (
        "input samples have shape (1, 28, 28) but the model takes (1, 8, 8); "
        "use the dataset the model was trained on"
    )
    with pytest.raises(DataError, match=r"have shape \(64,\) but the model takes \(1, 8, 8\)"):
        eng.check_input(np.zeros((3, 64)))
    assert eng.check_input(ds.x_test[0]).shape == (1, 1, 8, 8)  # one sample is a batch of 1
    x = ds.x_test[:10].astype(np.float64)
    x[3, 0, 2, 2] = np.nan
    with pytest.raises(DataError, match="input samples hold NaN or inf; clean the data first"):
        evaluate(model, library, x, ds.y_test[:10], EngineConfig.ideal_mode())
    x[3, 0, 2, 2] = np.inf
    with pytest.raises(DataError, match="NaN or inf"):
        evaluate(model, library, x, ds.y_test[:10], EngineConfig())
    with pytest.raises(DataError, match="10 samples but 9 labels"):
        evaluate(model, library, ds.x_test[:10], ds.y_test[:9], EngineConfig.ideal_mode())


@pytest.fixture
def lib_copy(committed_library, tmp_path):
    """A private copy of the session's library, free to corrupt."""
    dst = tmp_path / "lib"
    shutil.copytree(committed_library.path, dst)
    return dst


def _edit_json(path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_library_of_another_schema_or_corrupt(lib_copy):
    lib_file = lib_copy / "library.json"
    text = lib_file.read_text()
    _edit_json(lib_file, lambda d: d.update(schema_version=2))
    with pytest.raises(LibraryError) as exc:
        load_library(lib_copy)
    assert "has schema version 2, this cosim reads version 1" in str(exc.value)
    assert "re-run cosim characterize" in str(exc.value)
    lib_file.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(LibraryError, match=r"library\.json is corrupt \(.*re-run cosim"):
        load_library(lib_copy)
    lib_file.write_text(text)
    (lib_copy / "arrays.npz").write_bytes(b"not a zip archive")
    with pytest.raises(LibraryError, match=r"cannot read .*arrays\.npz"):
        load_library(lib_copy)


def test_card_asking_for_a_block_the_library_lacks(lib_copy, library):
    """The library's card enables the sense row, but its block is gone."""
    _edit_json(lib_copy / "library.json", lambda d: d["blocks"].pop("sense_row"))
    lib = load_library(lib_copy)
    assert lib.card.sense_row.enabled and "sense_row" not in lib.surrogates
    with pytest.raises(LibraryError) as exc:
        Engine(trained("digits-global"), lib, EngineConfig())
    assert f"the surrogate library {lib_copy} has no 'sense_row' block" in str(exc.value)
    # the same card passed explicitly (a what-if evaluation) is refused up front
    with pytest.raises(LibraryError) as exc:
        Engine(trained("digits-global"), lib, EngineConfig(), lib.card)
    assert "enables the sense row but the library" in str(exc.value)
    assert "has no sense_row block" in str(exc.value)
    # a card without the sense row runs on what the library has
    off = lib.card.with_updates({"sense_row": {"enabled": False}})
    ds = dataset("digits")
    res = evaluate(trained("digits-global"), lib, ds.x_test[:20], ds.y_test[:20],
                   EngineConfig(), card=off)  # fmt: skip
    assert 0 <= res.accuracy_mean <= 1 and res.energy_per_inference_j["sense_row"] == 0


def test_layer_tuning_costs_the_per_layer_design_what_the_card_states(library):
    """A per-layer model with ``layer_tuning``: the breakdown gains ``layer_tuning`` (a card
    figure) equal to (hidden layers - 1) · tia.tuning_buffers_per_layer op-amps over the
    inference's read time, and the total energy and dedicated area grow by exactly it;
    nothing else changes. A global model refuses it."""
    from cosim.engine.costs import layer_tuning
    from cosim.engine.results import ENERGY_SOURCES
    from cosim.errors import CosimError

    model, ds = trained("digits-per-layer"), dataset("digits")
    x, y = ds.x_test[:50], ds.y_test[:50]
    base = evaluate(model, library, x, y, EngineConfig())
    tuned = evaluate(model, library, x, y, EngineConfig(layer_tuning=True))
    card = library.card
    n_layers = len(tuned.layers)
    assert n_layers == 2  # the digits MLP: two hidden layers of one MAC vector each
    t = layer_tuning(n_layers, card)
    assert t["buffers"] == card.tia.tuning_buffers_per_layer * (n_layers - 1) == 2
    # one MAC vector per layer per inference: the inference reads for 2 · t_read
    expected = t["buffers"] * _p_op_read_j(card) * 2
    e0, e1 = base.energy_per_inference_j, tuned.energy_per_inference_j
    assert e0["layer_tuning"] == 0.0
    assert e1["layer_tuning"] == pytest.approx(expected, rel=1e-9)
    assert e1.total_j - e0.total_j == pytest.approx(expected, rel=1e-9)
    assert all(e1[k] == e0[k] for k in COMPONENTS if k != "layer_tuning")
    assert ENERGY_SOURCES["layer_tuning"][0] == "card"
    a0, a1 = base.area_m2, tuned.area_m2
    tuning_area = 2 * card.tia.area_m2 + 2 * card.dac.area_m2
    assert "layer_tuning" not in a0.breakdown_m2
    assert a1.breakdown_m2["layer_tuning"] == pytest.approx(tuning_area, rel=1e-12)
    assert a1.total_dedicated_m2 - a0.total_dedicated_m2 == pytest.approx(tuning_area)
    assert a1.total_shared_m2 == a0.total_shared_m2
    assert tuned.config["layer_tuning"] is True and "layer_tuning" not in base.config
    # the card's figures are what-if fields: no tuning buffers, no tuning energy
    none = card.with_updates({"tia": {"tuning_buffers_per_layer": 0}})
    off = evaluate(model, library, x, y, EngineConfig(layer_tuning=True), card=none)
    assert off.energy_per_inference_j["layer_tuning"] == 0.0
    with pytest.raises(CosimError, match="layer_tuning"):
        evaluate(trained("digits-global"), library, x, y, EngineConfig(layer_tuning=True))
