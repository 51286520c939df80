"""Every example is a test: each example's ``main`` runs for real (SPICE included)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.ngspice
def test_small_chip_study(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path / "cache"))  # simulate for real
    monkeypatch.setenv("COSIM_PROGRESS", "0")
    res = _load("small_chip_study").main(tmp_path / "out", epochs=10)
    assert (tmp_path / "out" / "library" / "library.json").is_file()
    # the 32x32 card's crossbar surrogate holds the fidelity target at its own size
    assert res["crossbar_max_error_lsb"] <= 1.0
    # a 6-bit ADC converts the 3-bit activations exactly in ideal mode: a trained MLP
    # classifies the digits test set well above chance (10 %)
    assert res["ideal_accuracy"] > 0.85
    # the chip may lose accuracy, but not collapse on this small, low-noise network
    assert res["chip_accuracy"] > res["ideal_accuracy"] - 0.10
    assert res["energy_per_inference_j"] > 0
    curve = res["nvw_curve"]
    assert curve[0.2] < curve[0.0]  # 20 % variation of the conductance range hurts


@pytest.mark.slow
def test_pytorch_to_cosim(tmp_path, monkeypatch):
    """The PyTorch example end to end, small (needs the pytorch extra; skipped without it)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")  # the default (dynamo) exporter's dependency
    monkeypatch.setenv("COSIM_PROGRESS", "0")
    res = _load("pytorch_to_cosim").main(
        tmp_path, epochs=1, finetune=0, chips=1, train_limit=3000, test_limit=200
    )
    # the exported graph, read by cosim's evaluator, is PyTorch's network (float32 vs
    # float64 may flip a near-tie or two of the 10000 test images)
    assert abs(res["float_accuracy_graph"] - res["float_accuracy_torch"]) <= 3e-4
    # both exporters' graphs import to the same quantized model
    assert res["torchscript_export"]["ptq_accuracy"] == res["ptq_accuracy"]
    assert "ReduceMean" in res["onnx_ops"] and "Add" in res["onnx_ops"]
    assert 0.0 <= res["chip_accuracy"] <= 1.0 and res["energy_per_inference_j"] > 0
