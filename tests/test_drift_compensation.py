"""Drift compensation (:mod:`cosim.engine.compensation`): no-op without drift, recovers the
undrifted codes after drift, and its CLI flag with its refusals.

All of it reads the committed quick library (``committed_library``; no SPICE).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.engine.compensation import MIN_VALID, SCALE_KEY, apply_scale, drift_scales
from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.errors import CosimError
from cosim.library import load_library
from cosim.model import save_model

from .engine_models import ALL_OFF, dataset, evaluate_recording, trained
from .test_engine_cli import _run


@pytest.fixture(scope="module")
def lib(committed_library):
    return load_library(committed_library.path)


def test_drift_scales_global_column_and_fallback():
    """Readings halved on column 0 and quartered on column 1: global is the ratio of the
    sums (12/4.5), column each column's own; a column with too few valid readings takes
    the global scale."""
    n = MIN_VALID
    ref = np.tile([[2.0, 4.0]], (n, 1))
    drifted = ref * [0.5, 0.25]
    valid = np.ones((n, 2), bool)
    glob = (2.0 + 4.0) / (1.0 + 1.0)
    assert drift_scales(ref, drifted, valid, "global") == pytest.approx([glob, glob])
    assert drift_scales(ref, drifted, valid, "column") == pytest.approx([2.0, 4.0])
    valid[1:, 1] = False  # one valid reading: column 1 falls back to the layer's scale
    g1 = (n * 2.0 + 4.0) / (n * 1.0 + 1.0)
    assert drift_scales(ref, drifted, valid, "column") == pytest.approx([2.0, g1])


def test_apply_scale_rounds_once_half_up():
    codes = np.array([[3, 5, -3]])
    # 3·1.5 = 4.5 -> 5; 5·1.1·2 = 11.000000000000002 -> 11; -3·0.5 = -1.5 -> -1
    assert apply_scale(codes, np.array([1.5, 1.1, 0.5]), 1.0).tolist() == [[5, 6, -1]]
    assert apply_scale(codes[:, 1:2], np.array([1.1]), 2.0).tolist() == [[11]]


def test_config_refuses_an_unknown_mode():
    with pytest.raises(CosimError, match="drift_compensation = 'per-row'"):
        EngineConfig(drift_compensation="per-row")
    assert EngineConfig(drift_compensation="column").describe()["drift_compensation"] == "column"


@pytest.mark.parametrize("mode", ["global", "column"])
def test_no_drift_at_t0_leaves_scales_at_one_and_codes_unchanged(lib, mode):
    """At ``t = t0`` the drift factor ``(t/t0)^-nu`` is 1 for every device: the calibration
    reads at t0 and at t are the same numbers, every scale is exactly 1 and the codes are
    those of the uncompensated chip, bit for bit (only drift on: no read noise to tell the
    two reads apart)."""
    m, ds = trained("digits-global"), dataset("digits")
    x, y = ds.x_test[:300], ds.y_test[:300]
    cfg = EngineConfig(**ALL_OFF, drift_t_s=lib.card.device.drift_t0_s)
    _, plain = evaluate_recording(m, lib, x, y, cfg)
    _, comp = evaluate_recording(m, lib, x, y, cfg.with_(drift_compensation=mode))
    for i in plain:
        np.testing.assert_array_equal(comp[i], plain[i])
    for st in Engine(m, lib, cfg.with_(drift_compensation=mode)).chip(0):
        assert np.all(st.derived[SCALE_KEY] == 1.0)


def test_compensation_recovers_the_undrifted_codes(lib):
    """Drift alone at t = 1e6 s (t0 = 20 s, nu = 0.05 ± 0.01): every device's conductance
    shrinks by (5e4)^-nu, about 1/1.72, so nearly every nonzero code moves (measured: 49 %
    of the first layer's codes equal the undrifted ones, 2 chips). One scale per layer
    restores the mean factor; what it cannot undo is the nu spread, a per-device factor of
    ln(5e4)·0.01 ≈ 11 % that averages down over a column's devices (measured 84.4 % equal,
    global; 85.0 %, column). A column's own scale also removes its column's share of the
    spread, so it is at least as good as the layer's (with 3-bit codes the gain is small:
    the per-column estimate carries the quantization of 1024 calibration readings)."""
    m, ds = trained("digits-global"), dataset("digits")
    x, y = ds.x_test, ds.y_test
    base = EngineConfig(**ALL_OFF, chips=2)
    _, ref = evaluate_recording(m, lib, x, y, base)
    first = min(ref)
    undrifted = ref[first]  # both chips, undrifted
    equal = {}
    for mode in ("none", "global", "column"):
        cfg = base.with_(drift_t_s=1e6, drift_compensation=mode)
        _, codes = evaluate_recording(m, lib, x, y, cfg)
        equal[mode] = float(np.mean(codes[first] == undrifted))
    assert equal["none"] < 0.6  # drift moves about half of the codes
    # global compensation: 75 % is the nu spread's share, with 9 points of margin
    assert equal["global"] > 0.75 and equal["global"] - equal["none"] > 0.25
    assert equal["column"] >= equal["global"]


# ------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("drift-comp") / "digits-global.npz"
    save_model(trained("digits-global"), p)
    return p


def test_cli_flag_reaches_the_json_and_the_table(committed_library, model_file, tmp_path):
    out = tmp_path / "comp.json"
    rc, stdout, stderr = _run(
        ["evaluate", "--model", str(model_file), "--library", str(committed_library.path),
         "--limit", "100", "--t", "1e6", "--drift-compensation", "column", "--json", str(out)]
    )  # fmt: skip
    assert rc == 0, stderr
    assert "drift t = 1e+06 s, compensation column" in stdout.splitlines()[0]
    assert json.loads(out.read_text())["evaluation"]["config"]["drift_compensation"] == "column"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no --t (time since programming) is set"),
        (["--ideal"], "--ideal has no hardware effect, so --drift-compensation would be"),
    ],
)
def test_cli_refusals_are_one_line_exit_2(committed_library, model_file, extra, message):
    rc, stdout, stderr = _run(
        ["evaluate", "--model", str(model_file), "--library", str(committed_library.path),
         "--drift-compensation", "global", *extra]
    )  # fmt: skip
    assert rc == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and message in stderr
