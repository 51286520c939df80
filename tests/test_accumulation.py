"""The energy what-if fields, the ADC-dominated example card and the accumulation
experiment's Monte-Carlo (issue 10 items 2 and 3), on the committed quick library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.card import load_card
from cosim.engine.energy import adc_override_energy_j
from cosim.engine.results import energy_sources_for
from cosim.engine.whatif import what_if_card
from cosim.errors import CardError, LibraryError
from cosim.library import load_library
from cosim.report.experiments.accumulation import accumulation_point, sparse_pmf

CARD = Path(__file__).resolve().parent.parent / "examples" / "cards" / "adc-dominated.toml"


def test_adc_e_conv_j_is_validated_and_keeps_the_hash_unset():
    card = load_card()
    assert card.adc.e_conv_j == 0.0
    assert card.with_updates({"adc": {"e_conv_j": 0.0}}).physics_hash() == card.physics_hash()
    assert card.with_updates({"adc": {"e_conv_j": 1e-12}}).physics_hash() != card.physics_hash()
    with pytest.raises(CardError, match=r"adc\.e_conv_j"):
        card.with_updates({"adc": {"e_conv_j": -1e-12}})


def test_energy_fields_are_what_ifs_and_the_rails_are_not(committed_library):
    lib = load_library(committed_library.path)
    card = lib.card.with_updates(
        {"opamp": {"i_quiescent_a": 1e-6}, "tia": {"t_read_s": 20e-9}, "adc": {"e_conv_j": 1e-12}}
    )
    assert what_if_card(lib, card) is card
    with pytest.raises(LibraryError, match=r"opamp\.v_supply_pos_v"):
        what_if_card(lib, lib.card.with_updates({"opamp": {"v_supply_pos_v": 1.5}}))


def test_adc_override_energy_model():
    card = load_card().with_updates({"adc": {"e_conv_j": 8e-12}})  # 8-bit card
    assert adc_override_energy_j(card, 8, 0) == pytest.approx(8e-12)
    assert adc_override_energy_j(card, 3, 0) == pytest.approx(8e-12 / 32)
    assert adc_override_energy_j(card, 8, 2) == pytest.approx(6e-12)
    assert energy_sources_for(card)["adc"][0] == "card"
    assert energy_sources_for(load_card())["adc"][0] == "spice"


def test_adc_dominated_card_loads_on_the_default_library(committed_library):
    lib = load_library(committed_library.path)
    card = load_card(CARD)
    assert card.adc.e_conv_j == pytest.approx(50e-15 * 2**8)  # the survey curve at 8 bits
    assert what_if_card(lib, card).name == "adc-dominated-pcm-64x64"


def _point(lib, pmf, n, card=None, bits=3):
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 16, size=(256, 2))
    return accumulation_point(
        lib,
        lib.card if card is None else card,
        r_t_ohm=50e3,
        in_bits=bits,
        bits=bits,
        levels=levels,
        pmf=pmf,
        n=n,
        trials=300,
        seed=0,
    )


def test_accumulation_skips_most_for_zero_inputs_and_less_when_denser(committed_library):
    lib = load_library(committed_library.path)
    dense = np.full(8, 1 / 8)
    zero, sparse = sparse_pmf(dense, 1.0), sparse_pmf(dense, 0.9)
    e = {
        name: _point(lib, q, 32)["normalized_adc_energy"]
        for name, q in (("zero", zero), ("sparse", sparse), ("dense", dense))
    }
    assert 0 < e["zero"] < e["sparse"] <= e["dense"] <= 1
    assert e["zero"] < 1  # all-zero inputs do skip
    # more inputs per conversion skip no more
    far = [_point(lib, sparse, n)["normalized_adc_energy"] for n in (32, 128, 512)]
    assert far == sorted(far) and all(0 < x <= 1 for x in far)
    pt = _point(lib, sparse, 32)
    assert pt["bound_violations"] == 0
    assert pt["zero_fraction"] == pytest.approx(0.9, abs=0.02)


def test_a_larger_adc_energy_raises_its_share(committed_library):
    lib = load_library(committed_library.path)
    q = sparse_pmf(np.full(8, 1 / 8), 0.99)
    lo = _point(lib, q, 32, lib.card.with_updates({"adc": {"e_conv_j": 1e-13}}))
    hi = _point(lib, q, 32, lib.card.with_updates({"adc": {"e_conv_j": 1e-10}}))
    assert lo["adc_share"] < hi["adc_share"]
    assert hi["mac_efficiency"] > lo["mac_efficiency"]


def test_the_printed_energy_sources_follow_the_card():
    """`cosim evaluate --card` with adc.e_conv_j printed "simulated in SPICE: adc" although
    the JSON (rightly) said the ADC energy was the card's figure."""
    from cosim.engine.tables import energy_provenance

    line = energy_provenance(energy_sources_for(load_card(CARD)))
    assert "simulated in SPICE" not in line and "adc" in line.split("card figures:")[1]
    assert "simulated in SPICE: adc" in energy_provenance(energy_sources_for(load_card()))
