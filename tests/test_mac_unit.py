"""The whole MAC unit as one netlist (crossbar, TIAs, subtractors, sense line, comparators,
SAR ADCs in one transient) against the two-stage simulation that --verify-spice uses (DC
analog MAC unit, then each ADC converting the DC voltages with the sense row's skips)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.card import load_card
from cosim.circuits import device_model, mac_analog_params, sar_adc_sample
from cosim.converters import adc_architecture
from cosim.spice import SpiceJob, SpiceRunner
from cosim.surrogates.sense_row import skips
from netlists.mac_unit import (
    decode_mac_unit,
    mac_analog_netlist,
    mac_unit_netlist,
    pair_layout,
)


@pytest.mark.ngspice
def test_one_netlist_mac_unit_agrees_with_the_two_stage_simulation(tmp_path):
    card = load_card().with_updates({"array": {"rows": 8, "cols": 4}})
    dev = device_model(card)
    rng = np.random.default_rng(0)
    p = mac_analog_params(card, pair_layout(4))
    g = p.crossbar.with_g_matrix(dev.level_conductance(rng.integers(0, 16, (8, 4))))
    v = rng.integers(0, 256, (5, 8)) / 256 * card.dac.v_read_v
    v[0] = 0.0  # all-zero input: every threshold fires
    v[1, :6] = 0.0  # sparse input
    adcs = [sar_adc_sample(card, rng) for _ in range(2)]
    th = np.array([0.3, 0.1, 0.05])  # skip 1, 2, 3 MSBs below these V_sense
    arch = adc_architecture(card.adc.architecture)  # the SAR: its sub-circuit and testbench
    net, timing = mac_unit_netlist(p, dev, g, v, adcs, th, adc_arch=arch)
    analog, vectors = mac_analog_netlist(p, dev, g, v)
    with SpiceRunner(jobs=2, cache_dir=tmp_path) as r:
        one, dc = r.run([SpiceJob(net, timing["vectors"], 600.0), SpiceJob(analog, vectors)])
        single = decode_mac_unit(one, timing)
        v_dc = np.stack([np.asarray(dc[f"out{k}"])[:5] for k in range(2)], axis=1)
        vs_dc = np.asarray(dc["vsense"])[:5]
        k_dc = skips(vs_dc, th)
        adc_runs = r.run(
            [
                SpiceJob(arch.testbench_netlist(a, v_dc[:, k], k_dc), arch.testbench_vectors())
                for k, a in enumerate(adcs)
            ]
        )
    two_stage = np.stack(
        [arch.decode_testbench(res, a, 5)["codes"] for res, a in zip(adc_runs, adcs, strict=True)],
        axis=1,
    )
    lsb = card.adc_lsb_v
    # the sense line decides the same skips in both (the thresholds are far from V_sense)
    assert np.array_equal(skips(single["v_sense"], th), k_dc)
    assert k_dc[0] == 3  # the all-zero input skips the most
    # the ADC's sampling charge kicks the subtractor output while it is sampled: the
    # transient's sampled voltage differs from the DC one by that settling error, which the
    # two-stage simulation (an ideal sample-and-hold) leaves out — measured 0.05 LSB here
    assert np.max(np.abs(single["v_out"] - v_dc)) < 0.15 * lsb
    # hence codes agree to ±1 LSB, and exactly unless a voltage sits at a transition
    assert np.max(np.abs(single["codes"] - two_stage)) <= 1
    assert np.mean(single["codes"] == two_stage) >= 0.8
