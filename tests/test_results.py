"""The typed result records of an evaluation: immutable, and ``to_dict``/``from_dict``
round trips that give the JSON ``cosim evaluate --json`` wrote before they existed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cosim.engine.energy import LayerStats
from cosim.engine.mapping import TileOutput
from cosim.engine.results import (
    COMPONENTS,
    AreaReport,
    EnergyBreakdown,
    EvalResult,
    LayerResult,
    PeripheryReport,
)

#: joules per component of one layer over all its inferences (distinct, so a swapped
#: component shows)
_ENERGY = {k: (i + 1) * 1.25e-9 for i, k in enumerate(COMPONENTS)}

_AREA = {
    "periphery": "shared",
    "breakdown_m2": {"crossbar_cells": 1.5e-8, "digital": 2e-9, "dac": 3e-9},
    "total_m2": 2.0e-8,
    "counts": {"dac": 66, "crossbar_cells": 4160, "tiles": 1},
    "total_dedicated_m2": 3.0e-8,
    "total_shared_m2": 2.0e-8,
}

_PERIPHERY = {
    "shared": True,
    "transimpedance_ohm": [12000.5, 12000.5],
    "card_r_feedback_ohm": 10000.0,
    "card": "default-pcm-64x64",
    "validated_array": "64x64",
    "array": "64x64",
    "adc_bits": [3, 3],
    "tiles": [8, 6],
    "row_tiles": [4, 2],
}


def _stats(name: str) -> LayerStats:
    s = LayerStats(name, outputs=400, adc_clipped=7, conversions=900, tia_saturated=3)
    s.tia_reads, s.cycles, s.skipped_cycles = 800, 2400, 300
    s.bound_violations, s.psum_clipped = 2, 9
    s.energy_j.update(_ENERGY)
    return s


def test_layer_summary_is_the_reported_dict():
    """The typed summary's JSON is the dict the engine reported: rates over their own
    counts, energies over the inferences, computed here from the counts directly."""
    n = 50
    got = _stats("1:dense").summary(n).to_dict()
    want = {
        "layer": "1:dense",
        "adc_clipping_rate": 7 / 400,
        "tia_saturation_rate": 3 / 800,
        "skipped_cycle_fraction": 300 / 2400,
        "bound_violations": 2,
        "psum_clipping_rate": 9 / 900,
        "conversions_per_inference": 900 / n,
        "energy_per_inference_j": {k: v / n for k, v in _ENERGY.items()},
    }
    assert json.dumps(got) == json.dumps(want)  # same keys, order and values


def test_layer_result_round_trip_and_immutability():
    lay = _stats("0:conv2d").summary(10)
    assert LayerResult.from_dict(lay.to_dict()) == lay
    assert LayerResult.from_dict(json.loads(json.dumps(lay.to_dict()))) == lay
    with pytest.raises(dataclasses.FrozenInstanceError):
        lay.bound_violations = 0  # type: ignore[misc]
    d = lay.to_dict()
    del d["psum_clipping_rate"]
    with pytest.raises(ValueError, match="lacks 'psum_clipping_rate'"):
        LayerResult.from_dict(d)
    with pytest.raises(ValueError, match="bound_violations must be an integer"):
        LayerResult.from_dict({**lay.to_dict(), "bound_violations": 1.5})


def test_energy_breakdown_reads_as_the_dict_it_replaces():
    e = EnergyBreakdown(**_ENERGY)
    assert list(e) == list(COMPONENTS) and dict(e) == _ENERGY == e
    assert e["adc"] == e.adc == _ENERGY["adc"]
    assert e.total_j == pytest.approx(sum(_ENERGY.values()), rel=1e-15)
    assert EnergyBreakdown.from_dict(e.to_dict()) == e
    with pytest.raises(KeyError):
        e["nonsense"]
    with pytest.raises(ValueError, match="unknown component 'laser'"):
        EnergyBreakdown.from_dict({**_ENERGY, "laser": 1.0})
    with pytest.raises(ValueError, match="energy lacks 'digital'"):
        EnergyBreakdown.from_dict({k: v for k, v in _ENERGY.items() if k != "digital"})


def test_area_and_periphery_round_trip():
    area = AreaReport.from_dict(_AREA)
    assert json.dumps(area.to_dict()) == json.dumps(_AREA)
    assert area.counts["tiles"] == 1 and area.periphery == "shared"
    with pytest.raises(TypeError):
        area.counts["tiles"] = 2  # type: ignore[index]
    with pytest.raises(ValueError, match="periphery must be 'shared' or 'dedicated'"):
        AreaReport.from_dict({**_AREA, "periphery": "both"})
    per = PeripheryReport.from_dict(_PERIPHERY)
    assert per.adc_bits == (3, 3) and per.shared is True
    assert json.dumps(per.to_dict()) == json.dumps(_PERIPHERY)
    with pytest.raises(ValueError, match="tiles must be a list"):
        PeripheryReport.from_dict({**_PERIPHERY, "tiles": 8})


def _result() -> EvalResult:
    layers = (_stats("1:dense").summary(20), _stats("2:dense").summary(20))
    energy = dict.fromkeys(COMPONENTS, 0.0)
    for lay in layers:
        for k, v in lay.energy_per_inference_j.items():
            energy[k] += v
    return EvalResult(
        accuracy_per_chip=(0.9, 0.85),
        predictions=(np.zeros(10, np.int64), np.ones(10, np.int64)),
        layers=layers,
        energy_per_inference_j=EnergyBreakdown(**energy),
        area_m2=AreaReport.from_dict(_AREA),
        n_samples=10,
        wall_s=1.5,
        config={"ideal": False, "chips": 2, "adc_bits": None},
        periphery=PeripheryReport.from_dict(_PERIPHERY),
    )


def test_eval_result_to_dict_is_the_evaluate_json():
    r = _result()
    d = r.to_dict()
    assert list(d) == [
        "accuracy_mean",
        "accuracy_std",
        "accuracy_per_chip",
        "n_samples",
        "layers",
        "energy_per_inference_j",
        "energy_total_per_inference_j",
        "energy_sources",
        "energy_provenance",
        "area_m2",
        "periphery",
        "wall_s",
        "config",
    ]
    # every component says where its figure comes from; only the ADC's is simulated
    assert list(d["energy_sources"]) == list(d["energy_per_inference_j"])
    assert d["energy_sources"]["adc"] == "spice" and d["energy_sources"]["tia"] == "card"
    # per entry: the source and the figures it uses, read back by from_dict
    assert list(d["energy_provenance"]) == list(d["energy_per_inference_j"])
    assert d["energy_provenance"]["tia"]["source"] == "card"
    assert "i_quiescent_a" in d["energy_provenance"]["tia"]["figures"]
    assert EvalResult.from_dict(d).to_dict()["energy_provenance"] == d["energy_provenance"]
    assert d["accuracy_mean"] == pytest.approx(0.875) and d["accuracy_std"] == pytest.approx(0.025)
    assert d["accuracy_per_chip"] == [0.9, 0.85]
    assert d["layers"] == [lay.to_dict() for lay in r.layers]
    # the total is the sum over the components, in their order, as before
    assert d["energy_total_per_inference_j"] == float(sum(d["energy_per_inference_j"].values()))
    assert d["area_m2"] == _AREA and d["periphery"] == _PERIPHERY
    json.dumps(d, allow_nan=False)  # plain JSON, no tuples or mapping proxies left


def test_eval_result_round_trip_and_immutability():
    r = _result()
    text = json.dumps(r.to_dict())
    back = EvalResult.from_dict(json.loads(text))
    assert json.dumps(back.to_dict()) == text
    assert back.predictions == ()  # the JSON holds none
    assert back.layers == r.layers and back.periphery == r.periphery
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n_samples = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.config["chips"] = 5  # type: ignore[index]
    with pytest.raises(ValueError, match="an evaluation lacks 'periphery'"):
        EvalResult.from_dict({k: v for k, v in r.to_dict().items() if k != "periphery"})


def test_tile_output_is_an_immutable_typed_triple():
    out = TileOutput(3, 6, 7)
    o, p, n = out  # the unpacking the engine's loops use
    assert (o, p, n) == (out.output, out.pos, out.neg) == (3, 6, 7)
    assert TileOutput(4, 8, None).neg is None
    with pytest.raises(AttributeError):
        out.pos = 1  # type: ignore[misc]


def test_energy_stored_before_layer_tuning_reads_as_zero():
    """A result stored before the ``layer_tuning`` component existed reads back with 0 J
    for it; any other missing component is still an error."""
    old = {k: v for k, v in _ENERGY.items() if k != "layer_tuning"}
    e = EnergyBreakdown.from_dict(old)
    assert e["layer_tuning"] == 0.0 and e.total_j == pytest.approx(sum(old.values()))
    with pytest.raises(ValueError, match="adc"):
        EnergyBreakdown.from_dict({k: v for k, v in old.items() if k != "adc"})
