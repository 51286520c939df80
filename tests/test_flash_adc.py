"""Flash ADC plug-in: netlist text, card keys, surrogate, ngspice against the surrogate on
held-out conversions, its characterization, the MAC-unit netlist and the engine with it."""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import re

import numpy as np
import pytest

from cosim.card import Card, load_card, parse_card
from cosim.characterize.adc.flash import (
    CODE_AGREEMENT_TARGET,
    characterize_flash_adc,
    fit_inputs,
    heldout_inputs,
)
from cosim.characterize.context import CharContext
from cosim.circuits import device_model, flash_adc_params, flash_adc_sample, mac_analog_params
from cosim.cli import main
from cosim.converters import AdcArchitecture, AdcSurrogate, adc_architecture
from cosim.errors import CardError, CosimError, LibraryError
from cosim.library import load_library, write_library
from cosim.model import save_model
from cosim.spice.runner import SpiceJob, SpiceRunner
from cosim.surrogates.adc import ideal_codes
from cosim.surrogates.adc.flash import (
    FlashAdcFitter,
    FlashAdcModel,
    flash_models_by_bits,
    sample_flash_instance_draw,
)
from cosim.surrogates.adc.flash_architecture import FLASH
from cosim.surrogates.base import NotFittedError
from cosim.surrogates.sense_row import skips
from netlists.flash_adc import (
    FlashAdcParams,
    comparator_trip_netlist,
    decode_testbench,
    decode_trip,
    draw_flash_mismatch,
    flash_adc_subckt,
    flash_testbench_netlist,
    flash_testbench_vectors,
    ladder_units,
    subckt_pins,
    trip_vectors,
)
from netlists.mac_unit import decode_mac_unit, mac_analog_netlist, mac_unit_netlist, pair_layout

from .engine_models import trained


def flash_card(bits: int = 3, **adc) -> Card:
    """The default card with a ``bits``-bit flash ADC (the sense row may skip bits - 1)."""
    return load_card().with_updates(
        {
            "adc": {"architecture": "flash", "bits": bits, **adc},
            "sense_row": {"max_skip_bits": max(bits - 1, 0)},
        },
        name=f"flash-{bits}bit",
    )


CARD = flash_card(3)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    with SpiceRunner(jobs=2, cache_dir=tmp_path_factory.mktemp("spice-flash")) as r:
        yield r


# ---------------------------------------------------------------------------------------
# netlist text (no SPICE)
# ---------------------------------------------------------------------------------------
def test_doctests():
    import cosim.characterize.adc.flash
    import cosim.converters
    import cosim.surrogates.adc.flash
    import cosim.surrogates.adc.flash_architecture
    import netlists.flash_adc
    import netlists.flash_adc.params
    import netlists.flash_adc.subckt
    import netlists.flash_adc.testbench

    for mod in (
        netlists.flash_adc,
        netlists.flash_adc.params,
        netlists.flash_adc.subckt,
        netlists.flash_adc.testbench,
        cosim.surrogates.adc.flash,
        cosim.surrogates.adc.flash_architecture,
        cosim.characterize.adc.flash,
        cosim.converters,
    ):
        res = doctest.testmod(mod)
        assert res.failed == 0, mod.__name__


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_subckt_has_the_shared_pins_a_ladder_and_a_comparator_per_code(bits):
    p = flash_adc_params(CARD, bits)
    text = flash_adc_subckt(p)
    head = text.splitlines()[0].split()
    assert head[2:] == subckt_pins(bits) == FLASH.subckt_pins(bits)
    assert head[2:7] == ["vin", "clk", "start", "vref", "vdd"]
    assert head[-1] == "done" and head[-1 - bits : -1] == [f"b{i}" for i in range(bits - 1, -1, -1)]
    assert sum(h.startswith("skip") for h in head) == bits - 1
    # 2**N ladder resistors summing to the card's total, 2**N - 1 comparators, N output bits
    rs = [float(line.split()[3]) for line in text.splitlines() if line.startswith("Rl")]
    assert len(rs) == 2**bits
    assert sum(rs) == pytest.approx(CARD.adc.ladder_r_total_ohm, rel=1e-12)
    comparators = [line for line in text.splitlines() if re.match(r"Bc\d+ ", line)]
    assert len(comparators) == 2**bits - 1
    assert sum(line.startswith("Bb") for line in text.splitlines()) == bits
    # pure: the same parameters give the same text; a draw changes the name and the text
    assert flash_adc_subckt(p) == text
    q = flash_adc_sample(CARD, np.random.default_rng(0), bits)
    assert FLASH.subckt_name(q) != FLASH.subckt_name(p) and flash_adc_subckt(q) != text


def test_ladder_taps_sit_half_an_lsb_below_each_code():
    for bits in (1, 2, 3, 4):
        p = flash_adc_params(CARD, bits)
        k = np.arange(1, 2**bits)
        np.testing.assert_allclose(p.tap_voltages_v(), (k - 0.5) * p.lsb_v, rtol=1e-12)
        assert ladder_units(bits).sum() == 2**bits and ladder_units(bits).size == 2**bits


def test_params_refuse_bad_values_naming_the_field():
    p = flash_adc_params(CARD)
    with pytest.raises(ValueError, match=r"FlashAdcParams\.bits = 5 is out of range \[1, 4\]"):
        p.with_bits(5)
    with pytest.raises(ValueError, match=r"r_ladder_ohm has 3 values; bits = 3 needs 8"):
        FlashAdcParams(**{**p.__dict__, "r_ladder_ohm": (1.0, 2.0, 3.0)})
    with pytest.raises(ValueError, match=r"comparator_offsets_v\[0\] = nan"):
        FlashAdcParams(**{**p.__dict__, "comparator_offsets_v": (float("nan"),) * 7})
    with pytest.raises(ValueError, match=r"r_ladder_ohm\[2\] = -1"):
        FlashAdcParams(**{**p.__dict__, "r_ladder_ohm": (1.0, 1.0, -1.0, *(1.0,) * 5)})
    d = draw_flash_mismatch(np.random.default_rng(0), 2, 0.01, 1e-3)
    with pytest.raises(ValueError, match="a mismatch draw for 2 bits cannot apply to a 3-bit"):
        p.with_mismatch(d)
    with pytest.raises(ValueError, match=r"skip counts must lie in 0\.\.2"):
        flash_testbench_netlist(p, np.array([0.1]), 3)


# ---------------------------------------------------------------------------------------
# the card
# ---------------------------------------------------------------------------------------
def test_card_selects_the_flash_and_checks_its_keys():
    assert CARD.adc.architecture == "flash"
    assert adc_architecture(CARD.adc.architecture) is FLASH
    assert isinstance(FLASH, AdcArchitecture)
    for bad, match in (
        ({"bits": 5}, r"^adc\.bits = 5 is above the 4 bits an adc\.architecture = 'flash'"),
        ({"ladder_r_total_ohm": -1.0}, r"adc\.ladder_r_total_ohm = -1"),
        ({"ladder_r_total_ohm": "1k"}, r"adc\.ladder_r_total_ohm must be a number"),
        ({"ladder_mismatch_sigma_rel": 0.5}, r"adc\.ladder_mismatch_sigma_rel = 0\.5"),
        ({"ladder_mismatch_sigma_rel": float("nan")}, r"ladder_mismatch_sigma_rel must be fin"),
    ):
        with pytest.raises(CardError, match=match) as exc:
            flash_card(3, **bad) if "bits" not in bad else flash_card(bad["bits"])
        assert isinstance(exc.value, CosimError) and "\n" not in str(exc.value)
    with pytest.raises(CardError, match=r"unknown key adc\.ladder_r_unit_ohm"):
        flash_card(3, ladder_r_unit_ohm=1e3)
    # the SAR has no such limit: 8 bits stay a SAR card
    assert load_card().adc.bits == 8


def test_cards_without_the_ladder_keys_load_and_keep_their_hash():
    card = load_card()
    text = card.to_toml()
    assert "ladder_r_total_ohm" in text
    old = "\n".join(line for line in text.splitlines() if not line.startswith("ladder_"))
    back = parse_card(old)
    assert back == card and back.hash() == card.hash()
    assert back.physics_hash() == card.physics_hash()
    # a ladder value that differs from the default is part of the chip
    other = card.with_updates({"adc": {"ladder_r_total_ohm": 1e5}})
    assert other.physics_hash() != card.physics_hash()


# ---------------------------------------------------------------------------------------
# the surrogate
# ---------------------------------------------------------------------------------------
def test_ideal_model_is_the_quantizer_and_follows_the_protocol():
    x = np.random.default_rng(0).uniform(-0.1, 1.1, 20000)
    for bits in (1, 2, 3, 4):
        m = FLASH.ideal(bits, 1.0)
        assert isinstance(m, AdcSurrogate)
        np.testing.assert_array_equal(m.convert(x), ideal_codes(x, bits, 1.0))
        np.testing.assert_array_equal(m.convert(x.astype(np.float32)), m.convert(x))
        stats = m.inl_dnl()
        assert stats["max_abs_inl_lsb"] < 1e-12 and stats["max_abs_dnl_lsb"] < 1e-12
    assert FLASH.ideal(3, 1.0).convert(np.array([np.nan, 0.5])).tolist() == [0, 4]


def test_skip_gates_the_comparators_above_the_kept_codes():
    """Skip ``s``: lossless below code ``2**(N-s)``, saturated at ``2**(N-s) - 1`` above."""
    m = FLASH.ideal(3, 1.0)
    x = np.random.default_rng(1).uniform(-0.1, 1.1, 5000)
    full = m.convert(x)
    for s in range(3):
        cap = 2 ** (3 - s) - 1
        got = m.convert(x, s)
        np.testing.assert_array_equal(got, np.minimum(full, cap))
        assert np.all(got[full < cap] == full[full < cap])
        np.testing.assert_array_equal(m.thresholds(s), m.thresholds()[:cap])
    k = np.arange(x.size) % 3
    np.testing.assert_array_equal(m.convert(x, k), np.minimum(full, np.array([7, 3, 1])[k]))
    with pytest.raises(ValueError, match=r"skip must lie in 0\.\.2"):
        m.convert(x, 3)


def test_swapped_thresholds_are_counted_like_the_encoder():
    """Offsets that swap two thresholds: the encoder counts ones, so the code is the number
    of enabled thresholds at or below the input (checked by brute force)."""
    ideal = FLASH.ideal(3, 1.0)
    offs = np.zeros(7)
    offs[2] = 0.2  # comparator 3 trips above comparators 4 and 5
    m = FlashAdcModel(3, 1.0, ideal.tap_v, offs, np.zeros(3), np.zeros(3), 2e-8)
    x = np.random.default_rng(2).uniform(-0.1, 1.1, 4000)
    k = np.random.default_rng(3).integers(0, 3, x.size)
    t = m.comparator_thresholds_v
    cap = 2 ** (3 - k) - 1
    brute = np.sum((x[:, None] >= t[None, :]) & (np.arange(1, 8)[None, :] <= cap[:, None]), axis=1)
    np.testing.assert_array_equal(m.convert(x, k), brute)
    assert np.all(np.diff(m.thresholds()) >= 0)
    # monotone in the input: the counting encoder never goes back
    xs = np.sort(x)
    assert np.all(np.diff(m.convert(xs)) >= 0)


def test_round_trip_and_energy_table():
    rng = np.random.default_rng(4)
    m = FlashAdcModel(
        3, 1.0, np.sort(rng.uniform(0, 1, 7)), rng.normal(0, 1e-3, 7), [1e-13] * 3,
        [1.2e-13, 6e-14, 3e-14], 2e-8,
    )  # fmt: skip
    back = FLASH.from_dict(m.to_dict())
    for key in ("tap_v", "comparator_offsets_v", "energy_ref_j", "energy_dd_j"):
        np.testing.assert_array_equal(getattr(back, key), getattr(m, key))
    assert (back.bits, back.v_ref_v, back.conversion_time_s) == (3, 1.0, 2e-8)
    json.dumps({k: np.asarray(v).tolist() for k, v in m.to_dict().items()}, allow_nan=False)
    np.testing.assert_allclose(m.energy_per_conversion_j([0, 1, 2]), [2.2e-13, 1.6e-13, 1.3e-13])
    e = m.energy_per_conversion_j(np.array([[0], [2]]), np.array([1, 5, 7]))
    assert e.shape == (2, 3) and np.all(e[1] == 1.3e-13)
    with pytest.raises(ValueError, match=r"codes must lie in 0\.\.7"):
        m.energy_per_conversion_j(0, np.array([8]))
    d = m.to_dict()
    for key, value, match in (
        ("kind", "sar_adc", "expected a 'flash_adc' surrogate"),
        ("tap_v", np.zeros(3), r"tap_v must have shape \(7,\)"),
        ("bits", 2.5, "flash_adc.bits = 2.5 is not an integer"),
        ("energy_dd_j", [np.nan] * 3, "flash_adc.energy_dd_j in the surrogate library holds NaN"),
    ):
        with pytest.raises(LibraryError, match=match):
            FLASH.from_dict({**d, key: value})
    with pytest.raises(LibraryError, match="lacks 'comparator_offsets_v'"):
        FLASH.from_dict({k: v for k, v in d.items() if k != "comparator_offsets_v"})
    extra = {"by_bits": {str(n): FLASH.ideal(n, 1.0).to_dict() for n in (1, 2)}}
    assert sorted(FLASH.models_by_bits(extra)) == [1, 2]
    with pytest.raises(LibraryError, match="lacks the 3-bit model"):
        flash_models_by_bits(extra, 3)
    with pytest.raises(LibraryError, match=r"keys are resolutions 1\.\.4"):
        flash_models_by_bits({"by_bits": {"5": d}})


def test_sample_instance_is_one_draw_for_the_surrogate_and_the_netlist():
    """The surrogate and the netlist parameters of a Monte-Carlo instance come from one
    draw: the same generator state gives :func:`flash_adc_sample`'s netlist, and the
    surrogate built on an ideal nominal has exactly the thresholds that netlist implies."""
    nominal = FlashAdcModel.ideal(3, CARD.adc.v_ref_v)
    nominal = FlashAdcModel(
        3, 1.0, nominal.tap_v, np.full(7, CARD.adc.comparator_offset_v), np.zeros(3),
        np.zeros(3), 2e-8,
    )  # fmt: skip
    inst = FLASH.sample_instance({3: nominal}, CARD, np.random.default_rng(7))
    assert inst.params == flash_adc_sample(CARD, np.random.default_rng(7))
    # a divider's ratios: the surrogate's taps equal the netlist's to rounding (1e-15 V)
    np.testing.assert_allclose(
        inst.surrogate.comparator_thresholds_v, inst.params.thresholds_v(), atol=1e-14
    )
    # the draws have the card's sigmas (1000 instances: sigma to +-5 %)
    rng = np.random.default_rng(8)
    d_os = [sample_flash_instance_draw(nominal, CARD, rng)[1].offset_delta_v for _ in range(1000)]
    assert np.std(d_os) == pytest.approx(CARD.adc.comparator_offset_sigma_v, rel=0.05)
    with pytest.raises(ValueError, match="3-bit nominal model for bits=2"):
        FLASH.sample_instance(nominal, CARD, rng, bits=2)


def test_fitter_refuses_use_before_fit_and_missing_skip_counts():
    f = FlashAdcFitter(2, 1.0, 2e-8)
    with pytest.raises(NotFittedError):
        f.model()
    data = {
        "codes": np.array([0, 1]),
        "v_tap_v": np.zeros((2, 3)),
        "e_ref_j": np.ones(2),
        "e_dd_j": np.ones(2),
    }
    with pytest.raises(ValueError, match="no conversion with skip 1"):
        f.fit(np.array([0.1, 0.2]), np.array([0, 0]), data, np.zeros(3))


# ---------------------------------------------------------------------------------------
# ngspice
# ---------------------------------------------------------------------------------------
@pytest.mark.ngspice
def test_surrogate_matches_spice_on_held_out_conversions(runner):
    """A Monte-Carlo 3-bit instance: fitted on one testbench and its trip sweep, checked on
    another testbench's conversions (half within 0.25 LSB of a threshold, half the skips
    random, legal or not). Energies are those of the circuit's real elements."""
    rng = np.random.default_rng(11)
    p = flash_adc_sample(CARD, rng)
    v_fit, k_fit = fit_inputs(p, 24, rng)
    v_val, k_val = heldout_inputs(p, 160, rng)
    vec = flash_testbench_vectors(p.bits)
    res = runner.run(
        [
            SpiceJob(flash_testbench_netlist(p, v_fit, k_fit), vec),
            SpiceJob(comparator_trip_netlist(p), trip_vectors(p)),
            SpiceJob(flash_testbench_netlist(p, v_val, k_val), vec),
        ]
    )
    fit = decode_testbench(res[0], p, v_fit.size)
    trip = decode_trip(res[1], p)
    f = FlashAdcFitter(p.bits, p.v_ref_v, p.conversion_time_s).fit(v_fit, k_fit, fit, trip)
    # the ladder is resistive (taps exact to ngspice's tolerance) and the trip sweep's 1 uV
    # step with linear interpolation locates each offset far below 1 uV
    np.testing.assert_allclose(f.tap_v_, p.tap_voltages_v(), atol=1e-9)
    np.testing.assert_allclose(trip, p.comparator_offsets_v, atol=1e-7)
    assert f.decision_agreement_ == 1.0
    held = decode_testbench(res[2], p, v_val.size)
    m = f.model()
    agreement = float(np.mean(m.convert(v_val, k_val) == held["codes"]))
    assert agreement >= CODE_AGREEMENT_TARGET
    illegal = np.floor(v_val / p.lsb_v + 0.5) > 2 ** (3 - k_val) - 1
    assert illegal.sum() >= 10  # the saturation of gated comparators was exercised
    # energy: the ladder's static power over the 2-cycle conversion from vref; C V^2 per
    # enabled comparator plus the logic's from vdd (1e-4: the switches settle to e^-20,
    # the charge meters integrate with ngspice's own method)
    e_ladder = p.ladder_power_w() * p.conversion_time_s
    np.testing.assert_allclose(held["e_ref_j"], e_ladder, rtol=1e-4)
    n_on = 2 ** (3 - k_val) - 1
    e_dd = (n_on * p.c_comparator_f + p.c_logic_f) * p.v_dd_v**2
    np.testing.assert_allclose(held["e_dd_j"], e_dd, rtol=1e-4)
    np.testing.assert_allclose(m.energy_per_conversion_j(k_val), e_ladder + e_dd, rtol=1e-4)


@pytest.mark.ngspice
def test_characterize_flash_writes_a_validated_block_at_every_resolution(runner, tmp_path):
    card = flash_card(2)
    res = characterize_flash_adc(CharContext(card, device_model(card), runner, quick=True))
    val = res.validation
    assert val["code_agreement"] >= CODE_AGREEMENT_TARGET and val["n_heldout"] == 4 * 128
    assert val["mc_instances"] == 3 and val["sample_instance_code_agreement"] >= 0.995
    assert min(val["code_agreement_by_bits"].values()) >= CODE_AGREEMENT_TARGET
    assert set(val["code_agreement_by_bits"]) == {"1", "2"}
    assert val["tap_error_max_v"] < 1e-9 and val["trip_error_max_v"] < 1e-7
    assert val["n_illegal_skip_heldout"] > 0
    e = res.extra["energy_vs_skip"]["e_total_j"]
    assert e[1] < e[0]  # a gated comparator group saves its energy
    assert res.extra["energy_vs_bits"]["bits"] == [1, 2, 3, 4]
    assert np.all(np.diff(res.extra["energy_vs_bits"]["e_total_j"]) > 0)
    json.dumps(val, allow_nan=False)
    blocks = {"flash_adc": {"surrogate": res.surrogate, "extra": res.extra}}
    write_library(tmp_path / "lib", card, blocks, {"flash_adc": val}, {})
    lib = load_library(tmp_path / "lib", card)
    assert lib.adc_architecture is FLASH and isinstance(lib.adc(), FlashAdcModel)
    assert sorted(lib.adc_models_by_bits()) == [1, 2]
    assert lib.validation["flash_adc"].code_agreement == val["code_agreement"]


@pytest.mark.ngspice
def test_mac_unit_netlist_takes_the_flash_through_the_plug_in(tmp_path):
    """The one-netlist MAC unit (crossbar, TIAs, subtractors, sense comparators and flash
    ADCs in one transient) against the two stages --verify-spice runs: the flash compares
    the settled output without loading it, so the codes agree exactly unless a voltage sits
    within the analog difference of a threshold."""
    card = flash_card(3).with_updates({"array": {"rows": 8, "cols": 4}})
    dev = device_model(card)
    rng = np.random.default_rng(0)
    p = mac_analog_params(card, pair_layout(4))
    g = p.crossbar.with_g_matrix(dev.level_conductance(rng.integers(0, 16, (8, 4))))
    v = rng.integers(0, 256, (5, 8)) / 256 * card.dac.v_read_v
    v[0] = 0.0
    adcs = [flash_adc_sample(card, rng) for _ in range(2)]
    th = np.array([0.3, 0.1])
    net, timing = mac_unit_netlist(p, dev, g, v, adcs, th, adc_arch=FLASH)
    analog, vectors = mac_analog_netlist(p, dev, g, v)
    with SpiceRunner(jobs=2, cache_dir=tmp_path) as r:
        one, dc = r.run([SpiceJob(net, timing["vectors"], 600.0), SpiceJob(analog, vectors)])
        single = decode_mac_unit(one, timing)
        v_dc = np.stack([np.asarray(dc[f"out{k}"])[:5] for k in range(2)], axis=1)
        k_dc = skips(np.asarray(dc["vsense"])[:5], th)
        runs = r.run(
            [
                SpiceJob(FLASH.testbench_netlist(a, v_dc[:, k], k_dc), FLASH.testbench_vectors())
                for k, a in enumerate(adcs)
            ]
        )
    two = np.stack(
        [FLASH.decode_testbench(x, a, 5)["codes"] for x, a in zip(runs, adcs, strict=True)], 1
    )
    assert k_dc[0] == 2  # the all-zero input skips the most
    assert np.max(np.abs(single["v_out"] - v_dc)) < 0.01 * card.adc_lsb_v
    np.testing.assert_array_equal(single["codes"], two)


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.ngspice
def test_flash_library_evaluates_with_flash_energy_and_verify_spice(
    runner, committed_library, tmp_path
):
    """``cosim evaluate`` (with ``--verify-spice``) on a library of a 3-bit flash card.

    A full ``cosim characterize --quick`` of that card takes about 130 s on 2 cores (the
    crossbar and the sense row: 55 and 75 s), so the library is the committed quick
    library's crossbar, TIA and subtractor blocks — circuits that take nothing from
    ``[adc]``, their netlist hashes checked against today's generators by
    ``test_committed_library.py`` — plus the flash block characterized here, for the card
    with the sense row off (its thresholds depend on the ADC)."""
    card = flash_card(3).with_updates({"sense_row": {"enabled": False}})
    src = load_library(committed_library.path)
    doc = json.loads((committed_library.path / "library.json").read_text())
    blocks = {
        name: {
            "surrogate": src.surrogates[name],
            "netlist_hashes": doc["blocks"][name]["netlist_hashes"],
            "extra": src.extras[name],
        }
        for name in ("crossbar", "tia", "subtractor")
    }
    validation = {name: src.validation[name].to_dict() for name in blocks}
    res = FLASH.characterize(CharContext(card, device_model(card), runner, quick=True))
    blocks["flash_adc"] = {
        "surrogate": res.surrogate,
        "netlist_hashes": res.netlist_hashes,
        "extra": res.extra,
    }
    validation["flash_adc"] = res.validation
    lib = tmp_path / "lib"
    write_library(lib, card, blocks, validation, {"quick": True})
    model = tmp_path / "digits.npz"
    save_model(trained("digits-global"), model)  # W4A3: 3-bit outputs
    out = tmp_path / "eval.json"
    rc, stdout, stderr = _run(
        ["evaluate", "--model", str(model), "--library", str(lib), "--limit", "100",
         "--verify-spice", "2", "--jobs", "2", "--cache-dir", str(tmp_path / "cache"),
         "--json", str(out)]
    )  # fmt: skip
    assert rc == 0, stderr
    assert "card 'flash-3bit'" in stdout
    ev = json.loads(out.read_text())
    e_conv = float(res.surrogate.energy_per_conversion_j(0))  # no sense row: no skips
    for layer in ev["evaluation"]["layers"]:
        e_adc = layer["energy_per_inference_j"]["adc"]
        assert e_adc == pytest.approx(layer["conversions_per_inference"] * e_conv, rel=1e-9)
    assert ev["evaluation"]["accuracy_mean"] > 0.5
    vs = ev["verify_spice"]
    assert vs["codes_compared"] >= 32 and vs["within_1_lsb_fraction"] == 1.0
    for op in vs["operations"]:  # the engine's instance, fed SPICE's voltage, gives its code
        assert op["engine_adc_code_at_spice_voltage"] == op["spice_code"], op
